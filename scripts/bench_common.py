"""What the benchmark scripts share: the machine they ran on, the data, a training-throughput meter.

Benchmarks print figures, they never assert them: the machine is small (2 cores) and shared, so
every figure is printed with the load average that was on the machine while it was measured.
Run the scripts from the project root as modules, e.g. `python -m scripts.bench_throughput`.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
REAL_DATA = PROJECT.parent / "shared" / "data" / "bloodmnist-pbc-rebuild"
N_CLASSES = 8
SYNTHETIC_IMAGES = 8192  # enough for a few hundred steps without repeating an image


def check_model(name: str) -> None:
    """Exit with a one-line error, listing the known names, when `name` is not a registered model."""
    from bloodcells.architectures import list_models

    if name not in list_models():
        raise SystemExit(f"unknown model {name!r}; known: {', '.join(list_models())}")


def read_config(path: Path) -> dict[str, Any]:
    """A named configuration (configs/*.yaml): dotted param keys to YAML values; exits when unreadable."""
    import yaml

    if not path.exists():
        sys.exit(f"no such configuration: {path} (see configs/)")
    overrides = yaml.safe_load(path.read_text()) or {}
    if not isinstance(overrides, dict):
        sys.exit(f"{path}: expected a mapping of dotted param keys to values")
    return overrides


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, or what `platform` knows elsewhere."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_lines(frameworks: bool = True) -> list[str]:
    """Where a figure came from: CPU, cores, load, Python and (with `frameworks`) Keras and TensorFlow."""
    lines = [
        f"- machine: {cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        f"- load average (1/5/15 min) at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}",
        f"- Python {platform.python_version()}",
    ]
    if not frameworks:
        return lines
    import keras

    lines[-1] += f", Keras {keras.__version__}, backend {keras.backend.backend()}"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")
        lines.append(f"- TensorFlow {tf.__version__}, TF_ENABLE_ONEDNN_OPTS={onednn}")
    return lines


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def training_images(size: int, n_min: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Training images (N, size, size, 3) uint8 and labels (N,) int32, with where they came from.

    The real training split when ../shared/data has this size, else synthetic images of the same
    shape; repeated (tiled) until there are at least `n_min`, so no run is cut short by an epoch end.
    """
    name = "bloodmnist.npz" if size == 28 else f"bloodmnist_{size}.npz"
    if (REAL_DATA / name).exists():
        with np.load(REAL_DATA / name) as npz:
            images, labels = npz["train_images"], npz["train_labels"].reshape(-1)
        source = f"real: {REAL_DATA.name}/{name} train split ({len(labels)} images)"
    else:
        from tests.synthetic import synthetic_split

        images, labels = synthetic_split(SYNTHETIC_IMAGES, size, np.random.default_rng(seed))
        labels = labels.reshape(-1)
        source = f"synthetic: {len(labels)} images of {size}x{size}x3 (real data not found at {REAL_DATA})"
    if len(labels) < n_min:
        repeats = -(-n_min // len(labels))
        images, labels = np.concatenate([images] * repeats), np.concatenate([labels] * repeats)
    return images, labels.astype("int32"), source


def throughput_meter():
    """A Keras callback that timestamps every training batch, so warm-up batches can be left out.

    Built lazily so importing this module does not import Keras.
    """
    import keras

    class ThroughputMeter(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.batch_ends: list[float] = []
            self.cpu_ends: list[float] = []  # CPU time of this process (all its threads)
            self.loads: list[float] = []

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.batch_ends.append(time.perf_counter())
            self.cpu_ends.append(time.process_time())
            self.loads.append(os.getloadavg()[0])

        def images_per_second(self, warmup: int, batch_size: int) -> float:
            """Images/s over the batches after the first `warmup` (tracing and compilation are in those)."""
            timed = self.batch_ends[warmup - 1 :]
            if warmup < 1 or len(timed) < 2:
                raise ValueError(f"need 1 warm-up and 1 timed batch at least; {len(self.batch_ends)} ran")
            return (len(timed) - 1) * batch_size / (timed[-1] - timed[0])

        def images_per_cpu_second(self, warmup: int, batch_size: int) -> float:
            """Images per CPU-second of this process over the same batches."""
            cpu = self.cpu_ends[warmup - 1 :]
            return (len(cpu) - 1) * batch_size / (cpu[-1] - cpu[0])

        def mean_load(self, warmup: int) -> float:
            return float(np.mean(self.loads[warmup:] or self.loads))

    return ThroughputMeter()


def fit_throughput(model, x, y, batch_size: int, warmup: int, steps: int, class_weight=None) -> dict:
    """Train `model` (already compiled) for `warmup` + `steps` batches; images/s over the last `steps`.

    `x` is whatever `model.fit` takes (a tf.data dataset, a PyDataset, arrays); `y` only with arrays.
    Returns images/s (wall clock and per CPU-second of this process) and the mean 1-minute load
    average over the timed batches.
    """
    meter = throughput_meter()
    model.fit(
        x,
        y,
        batch_size=batch_size if y is not None else None,
        epochs=1,
        steps_per_epoch=warmup + steps,
        class_weight=class_weight,
        callbacks=[meter],
        verbose=0,
    )
    return {
        "images_per_s": meter.images_per_second(warmup, batch_size),
        "cpu_images_per_s": meter.images_per_cpu_second(warmup, batch_size),
        "load": meter.mean_load(warmup),
        "batches": len(meter.batch_ends),
    }
