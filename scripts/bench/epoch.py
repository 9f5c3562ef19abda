"""Epoch time: seconds per training epoch of a recipe at a size, on this machine's backend and device.

The model, optimizer, loss, mixed precision, XLA and data parallelism come from the library's own
functions, set up from params.yaml with a named configuration and `-S` overrides on top (default:
the residual-CNN report's recipe, whose 235 s for 20 epochs at 128 px on an NVIDIA L4 is the figure
to beat). Data: the real training split when ../shared/data has the size, else shape-true
synthetic images. The first epoch holds tracing and compilation; the figure is the median of the
others. Runs under KERAS_BACKEND=jax without TensorFlow (a GPU machine):

    KERAS_BACKEND=jax python -m scripts.bench epoch --size 128
    python -m scripts.bench epoch --size 28 --images 3000 --config configs/ours.yaml \
        -S runtime.deterministic=true
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from scripts.bench.common import (
    N_CLASSES,
    PROJECT,
    check_model,
    machine_lines,
    markdown_table,
    parse_overrides,
    recipe_params,
    training_images,
)

REPORT_SECONDS, REPORT_EPOCHS, REPORT_GPU = 235.0, 20, "NVIDIA L4"  # the residual-CNN report, 128 px
BLOODMNIST_TRAIN = 11959


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=PROJECT / "configs/report_skip.yaml")
    parser.add_argument("-S", "--set-param", action="append", default=[], help="param override, key=value")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (default: 128)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs to time, the first included (>= 2)")
    parser.add_argument("--images", type=int, default=BLOODMNIST_TRAIN, help="images per epoch")
    parser.add_argument("--smoke", action="store_true", help="28 px, 2 epochs of 128 synthetic images")


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.smoke:
        args.size, args.epochs, args.images = 28, 2, 128
    if args.epochs < 2 or args.images < 1 or args.size < 8:
        parser.error("--epochs must be at least 2, --images at least 1, --size at least 8")


def run(args: argparse.Namespace) -> None:
    params = recipe_params(
        args.config, {**parse_overrides(args.set_param), "train.size": args.size, "data.sizes": [args.size]}
    )
    train, runtime, model_name = params.train, params.runtime, params.model
    check_model(model_name)

    import keras

    import bloodcells  # noqa: F401  (environment defaults before Keras is imported)
    from bloodcells.architectures import create_model
    from bloodcells.core.params import model_hparams
    from bloodcells.data.class_weights import compute_class_weights
    from bloodcells.data.splits import Split
    from bloodcells.training.devices import (
        accelerators,
        distribution,
        set_determinism,
        set_precision,
        use_xla,
    )
    from bloodcells.training.inputs import make_inputs
    from bloodcells.training.recipe import make_loss, make_optimizer

    set_determinism(params.seed, runtime.deterministic)
    images, labels, source = training_images(args.size, args.images, synthetic=args.smoke)
    images, labels = images[: args.images], labels[: args.images]
    weights = compute_class_weights(labels, N_CLASSES, params.class_weights.method)
    steps = -(-len(labels) // train.batch_size)

    policy = set_precision(runtime.mixed_precision)
    xla = use_xla(runtime.jit_compile)
    with distribution(runtime.distribute) as replicas:
        shape = (args.size, args.size, 3)
        model = create_model(model_name, shape, N_CLASSES, params.augment, model_hparams(params))
        model.compile(
            optimizer=make_optimizer(train, steps),
            loss=make_loss(train),
            metrics=["accuracy"],
            jit_compile=xla,
        )
    one_hot = N_CLASSES if train.label_smoothing else 0
    inputs = make_inputs(
        Split(images, labels), train.batch_size, True, params.seed, one_hot, replicas, epochs=args.epochs
    )
    starts: list[float] = []
    epoch_seconds: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: starts.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: epoch_seconds.append(time.perf_counter() - starts[-1]),
    )
    model.fit(
        **inputs.fit_args(),
        epochs=args.epochs,
        class_weight=dict(enumerate(weights)),
        callbacks=[timer],
        verbose=0,
    )
    steady = statistics.median(epoch_seconds[1:])
    projected = epoch_seconds[0] + (REPORT_EPOCHS - 1) * steady
    devices = ", ".join(accelerators()) or f"CPU ({os.cpu_count()} cores)"

    print(f"## Epoch time: {model_name} at {args.size} px, {args.config.stem} recipe\n")
    rows = [
        [f"{epoch}{' (tracing + compilation)' if epoch == 1 else ''}", f"{s:.2f}", f"{len(labels) / s:,.0f}"]
        for epoch, s in enumerate(epoch_seconds, start=1)
    ]
    print(markdown_table(["epoch", "seconds", "images/s"], rows) + "\n")
    print(f"- steady epoch: {steady:.2f} s, {len(labels) / steady:,.0f} images/s")
    report = f"the report: {REPORT_SECONDS:.0f} s on an {REPORT_GPU} at 128 px"
    if args.size == 128:
        report += f" ({projected / REPORT_SECONDS:.2f}x its time)"
    print(f"- {REPORT_EPOCHS} epochs (first + {REPORT_EPOCHS - 1} steady): {projected:.0f} s; {report}")
    print(
        f"- devices: {devices}; {replicas} replica(s); dtype policy {policy}; XLA {'on' if xla else 'off'}; "
        f"op determinism {'on' if runtime.deterministic else 'off'}; batch {train.batch_size}; "
        f"{len(labels)} images per epoch, no validation"
    )
    print(f"- data: {source}")
    for line in machine_lines():
        print(line)
