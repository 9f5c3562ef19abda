"""Hardware settings for training (params `runtime`): mixed precision, XLA, data parallelism, determinism.

`auto` turns mixed precision and XLA on where they pay (a GPU) and off on CPUs; XLA stays on under
JAX, which has no other compiled mode. Mixed precision computes in float16 on a GPU and in bfloat16
on a CPU (float16 has no fast CPU kernels; bfloat16 has them on AVX512-BF16/AMX CPUs, see
docs/performance.md); variables stay float32 either way. Data parallelism uses the backend's own engine:
`tf.distribute.MirroredStrategy` under TensorFlow, Keras's `DataParallel` distribution under JAX.
Nothing here is home-made scheduling. Values come typed from the params schema (RuntimeParams),
which is where they are checked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras


def accelerators() -> list[str]:
    """Names of the GPUs (or TPUs) the current backend sees; empty on a CPU-only machine."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return [device.name for device in tf.config.list_logical_devices("GPU")]
    if keras.backend.backend() == "jax":
        import jax

        return [str(device) for device in jax.devices() if device.platform != "cpu"]
    return []


def resolve(switch: str | bool) -> bool:
    """`on`/`off` as given; `auto` is on only when there is an accelerator.

    YAML reads a bare on/off (in params.yaml or `-S runtime.jit_compile=on`) as true/false: both count.
    """
    if isinstance(switch, bool):
        return switch
    return bool(accelerators()) if switch == "auto" else switch == "on"


def use_xla(jit_compile: str | bool) -> bool:
    """Whether to XLA-compile the train step: `auto` is on with an accelerator, and always under JAX.

    JAX compiles with XLA or not at all: its uncompiled mode runs op by op, and under a
    data-parallel distribution on CPU devices it deadlocked in a collective.
    """
    if jit_compile == "auto" and keras.backend.backend() == "jax":
        return True
    return resolve(jit_compile)


def precision_policy(mixed_precision: str | bool) -> str:
    """Keras dtype policy for the switch: float32, or mixed float16 (GPU) / bfloat16 (CPU)."""
    if not resolve(mixed_precision):
        return "float32"
    return "mixed_float16" if accelerators() else "mixed_bfloat16"


def set_precision(mixed_precision: str | bool) -> str:
    """Set Keras's global dtype policy before models are built; returns the policy's name."""
    policy = precision_policy(mixed_precision)
    keras.config.set_dtype_policy(policy)
    return policy


@contextlib.contextmanager
def distribution(mode: str) -> Iterator[int]:
    """Context in which to build and compile the model; yields the number of replicas.

    `data_parallel` splits each batch over every accelerator, or over every logical CPU device
    when there is none (how it is tested on a CPU machine).
    """
    if mode == "none":
        yield 1
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        devices = accelerators() or [device.name for device in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            yield strategy.num_replicas_in_sync
    else:
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield len(devices)
        finally:
            keras.distribution.set_distribution(None)


def set_determinism(seed: int, deterministic: bool) -> None:
    """Seed every generator; with `deterministic`, also make TensorFlow's ops reproducible."""
    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
