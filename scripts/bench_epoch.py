"""Epoch timing: seconds per training epoch of a recipe at a size, on this machine's backend and device.

The model, optimizer, loss, mixed precision, XLA and data parallelism are set up by the train
stage's own functions, from params.yaml with a named configuration on top (default: the
residual-CNN report's recipe, whose 235 s for 20 epochs at 128 px on an NVIDIA L4 is the figure to
beat). Data: the real training split when ../shared/data has the size, else shape-true synthetic
images. The first epoch holds tracing and compilation; the figure is the median of the others.

Needs only Keras, a backend, NumPy and PyYAML (no DVC, no dvclive), so it runs as it is on a GPU
machine with JAX and without TensorFlow:

    KERAS_BACKEND=jax python -m scripts.bench_epoch --size 128
    python -m scripts.bench_epoch --size 28 --epochs 3 --config configs/ours.yaml
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python scripts/bench_epoch.py): import from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bloodcells  # noqa: E402, F401  (environment defaults before Keras is imported)
from scripts.bench_common import (  # noqa: E402
    N_CLASSES,
    PROJECT,
    check_model,
    machine_lines,
    read_config,
    training_images,
)

REPORT_SECONDS, REPORT_EPOCHS, REPORT_GPU = 235.0, 20, "NVIDIA L4"  # the residual-CNN report, 128 px
BLOODMNIST_TRAIN = 11959


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=PROJECT / "configs/report_skip.yaml")
    parser.add_argument("--model", help="a registered model instead of the configuration's")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (default: 128)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs to time, the first included (>= 2)")
    parser.add_argument("--images", type=int, default=BLOODMNIST_TRAIN, help="images per epoch")
    for switch in ("mixed_precision", "jit_compile"):
        parser.add_argument(f"--{switch.replace('_', '-')}", choices=("auto", "on", "off"))
    parser.add_argument("--distribute", choices=("none", "data_parallel"))
    parser.add_argument("--deterministic", choices=("on", "off"), help="TensorFlow's op determinism")
    args = parser.parse_args(argv)
    if args.epochs < 2 or args.images < 1 or args.size < 8:
        parser.error("--epochs must be at least 2, --images at least 1, --size at least 8")
    if not args.config.exists():
        parser.error(f"no such configuration: {args.config} (see configs/)")
    return args


def recipe_params(config: Path) -> dict:
    """params.yaml with the configuration's dotted keys (`train.lr: 1.0e-4`) set on top."""
    from bloodcells.core.params import read_params

    params = read_params(PROJECT / "params.yaml")
    for dotted, value in read_config(config).items():
        *parents, leaf = dotted.split(".")
        node = params
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return params


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = recipe_params(args.config)
    overrides = {k: getattr(args, k) for k in ("mixed_precision", "jit_compile", "distribute")}
    if args.deterministic:
        overrides["deterministic"] = args.deterministic == "on"
    params["train"].update({k: v for k, v in overrides.items() if v is not None})
    model_name = args.model or params["model"]
    check_model(model_name)

    import keras
    import numpy as np

    from bloodcells.architectures import create_model
    from stages.dataset import Split, make_inputs
    from bloodcells.training.devices import accelerators, distribution, set_determinism, set_precision, use_xla
    from bloodcells.core.params import AugmentParams, TrainParams, to_dataclass
    from bloodcells.training.recipe import check_recipe, make_loss, make_optimizer

    try:
        train = to_dataclass({**params["train"], "size": args.size}, TrainParams, "train")
        augment = to_dataclass(params["augment"], AugmentParams, "augment")
        check_recipe(train)
    except ValueError as error:  # a bad key or value in the configuration
        raise SystemExit(f"{args.config}: {error}") from None
    set_determinism(int(params["seed"]), train.deterministic)
    images, labels, source = training_images(args.size, args.images)
    images, labels = images[: args.images], labels[: args.images]
    counts = np.bincount(labels, minlength=N_CLASSES)
    # sklearn's "balanced" weights, as stages.class_weights computes them, without sklearn (which a
    # GPU machine may lack): n / (classes x count)
    class_weight = {c: len(labels) / (N_CLASSES * max(n, 1)) for c, n in enumerate(counts)}
    steps = -(-len(labels) // train.batch_size)

    policy = set_precision(train.mixed_precision)
    xla = use_xla(train.jit_compile)
    with distribution(train.distribute) as replicas:
        model = create_model(
            model_name, (args.size, args.size, 3), N_CLASSES, augment, params["models"].get(model_name)
        )
        optimizer = make_optimizer(train, steps)
        model.compile(optimizer=optimizer, loss=make_loss(train), metrics=["accuracy"], jit_compile=xla)
    one_hot = N_CLASSES if train.label_smoothing else 0
    batches = dict(batch_size=train.batch_size, shuffle=True, seed=0, one_hot=one_hot, replicas=replicas)
    inputs = make_inputs(Split(images, labels), **batches)
    x, y = inputs if isinstance(inputs, tuple) else (inputs, None)

    starts: list[float] = []
    epoch_seconds: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: starts.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: epoch_seconds.append(time.perf_counter() - starts[-1]),
    )
    model.fit(
        x,
        y,
        batch_size=train.batch_size if y is not None else None,
        shuffle=y is not None,  # a tf.data pipeline shuffles itself
        epochs=args.epochs,
        class_weight=class_weight,
        callbacks=[timer],
        verbose=0,
    )
    steady = statistics.median(epoch_seconds[1:])
    projected = epoch_seconds[0] + (REPORT_EPOCHS - 1) * steady
    devices = ", ".join(accelerators()) or f"CPU ({os.cpu_count()} cores)"

    print(f"## Epoch time: {model_name} at {args.size} px, {args.config.stem} recipe\n")
    print("| epoch | seconds | images/s |")
    print("|---|---|---|")
    for epoch, seconds in enumerate(epoch_seconds, start=1):
        note = " (tracing + compilation)" if epoch == 1 else ""
        print(f"| {epoch}{note} | {seconds:.2f} | {len(labels) / seconds:,.0f} |")
    print()
    print(f"- steady epoch: {steady:.2f} s, {len(labels) / steady:,.0f} images/s")
    report = f"the report: {REPORT_SECONDS:.0f} s on an {REPORT_GPU} at 128 px"
    if args.size == 128:
        report += f" ({projected / REPORT_SECONDS:.2f}x its time)"
    print(f"- {REPORT_EPOCHS} epochs (first + {REPORT_EPOCHS - 1} steady): {projected:.0f} s; {report}")
    print(
        f"- devices: {devices}; {replicas} replica(s); dtype policy {policy}; XLA {'on' if xla else 'off'}; "
        f"op determinism {'on' if train.deterministic else 'off'}; batch {train.batch_size}; "
        f"{len(labels)} images per epoch, no validation"
    )
    print(f"- data: {source}")
    for line in machine_lines():
        print(line)


if __name__ == "__main__":
    main()
