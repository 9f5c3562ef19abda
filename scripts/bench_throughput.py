"""Benchmark 1: training images/s of our input path against the reference reports' path, side by side.

Three ways to feed the same architecture, each trained by `model.fit` with the project's optimizer,
loss and balanced class weights, timed over a fixed number of batches after a warm-up (tracing and
compilation fall in the warm-up):
  ours + augmentation  the train stage's `make_inputs` (tf.data over uint8 arrays), augmentation as
                       layers inside the model (the `augment` group of params.yaml, with crop-zoom
                       switched on where the project has it, as the counterpart of the reports' zoom)
  ours, no aug         the same without augmentation layers
  ImageDataGenerator   the reports' path: float arrays through `ImageDataGenerator.flow` with random
                       rotations, flips and zoom, into the same model without augmentation layers
The rounds are interleaved (a, b, c, a, b, c, ...) so a change in the machine's load hits every path;
each path's best round is its figure, per wall-clock second and per CPU-second of the process (the
latter barely moves with the load other processes put on the machine). Each input path is also timed
alone, without a model: what it could feed an accelerator (on one, our augmentation layers run on
the device, inside the model, so the CPU's share is the no-augmentation path). Targets: ours >= 5x
ImageDataGenerator, augmentation <= 10% slower than none.

Run: python -m scripts.bench_throughput [--model skip] [--size 28] [--steps 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python scripts/bench_throughput.py): import from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from scripts.bench_common import (  # noqa: E402
    N_CLASSES,
    PROJECT,
    check_model,
    fit_throughput,
    machine_lines,
    markdown_table,
    training_images,
)

# The reports' ImageDataGenerator settings: any rotation angle, both flips, a little zoom.
IDG_SETTINGS = {"rotation_range": 90, "horizontal_flip": True, "vertical_flip": True, "zoom_range": 0.1}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="skip", help="registered model name (default: skip)")
    parser.add_argument("--size", type=int, default=28, help="image side in pixels (default: 28, >= 8)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: train.batch_size")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches per round (default: 5)")
    parser.add_argument("--steps", type=int, default=40, help="timed batches per round (default: 40)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per path (default: 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1 or args.rounds < 1:
        parser.error("--warmup, --steps and --rounds must each be at least 1")
    if args.size < 8:
        parser.error("--size must be at least 8")
    return args


def build(model_name: str, size: int, augment, hparams: dict, train_params, steps_per_epoch: int):
    """The registered model, compiled with the project's recipe (optimizer, schedule, loss)."""
    from bloodcells.architectures import create_model
    from bloodcells.training.recipe import make_loss, make_optimizer

    model = create_model(model_name, (size, size, 3), N_CLASSES, augment, hparams)
    model.compile(
        optimizer=make_optimizer(train_params, steps_per_epoch),
        loss=make_loss(train_params),
        metrics=["accuracy"],
    )
    return model


def input_rate(batches, batch_size: int, warmup: int, steps: int, transform=None) -> tuple[float, float]:
    """Images/s of an input path alone (no model), per wall-clock second and per CPU-second.

    `warmup` + `steps` batches are drawn, each optionally transformed; the last `steps` are timed.
    """
    iterator = iter(batches)
    for _ in range(warmup):
        images = next(iterator)[0]
        if transform is not None:
            transform(images)
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        images = next(iterator)[0]
        if transform is not None:
            images = transform(images)
        np.asarray(images[:1])  # make sure the batch exists (eager tensors may still be pending)
    count = steps * batch_size
    return count / (time.perf_counter() - start), count / (time.process_time() - start_cpu)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    check_model(args.model)
    import keras
    import tensorflow as tf

    from bloodcells.architectures.augment import augmentation_layers
    from stages.class_weights import compute_class_weights
    from stages.dataset import Split, make_inputs
    from bloodcells.core.params import AugmentParams, TrainParams, read_params, to_dataclass

    params = read_params(PROJECT / "params.yaml")
    train_params = to_dataclass(params["train"], TrainParams, "train")
    augment = to_dataclass(params["augment"], AugmentParams, "augment")
    if "crop_zoom" in {field.name for field in dataclasses.fields(AugmentParams)}:
        augment = dataclasses.replace(augment, crop_zoom=True)  # the counterpart of the reports' zoom
    hparams = (params.get("models") or {}).get(args.model) or {}
    batch = args.batch_size or train_params.batch_size
    keras.utils.set_random_seed(args.seed)

    images, labels, source = training_images(args.size, (args.warmup + args.steps) * batch, args.seed)
    class_weight = dict(enumerate(compute_class_weights(labels, N_CLASSES, "balanced")))
    one_hot = N_CLASSES if train_params.label_smoothing else 0
    targets = np.eye(N_CLASSES, dtype="float32")[labels] if one_hot else labels
    steps_per_epoch = -(-len(labels) // batch)

    def make_model(augmented: bool) -> keras.Model:
        return build(
            args.model, args.size, augment if augmented else None, hparams, train_params, steps_per_epoch
        )

    ours = make_inputs(Split(images, labels), batch, shuffle=True, seed=args.seed, one_hot=one_hot)
    generator = tf.keras.preprocessing.image.ImageDataGenerator(**IDG_SETTINGS)
    reference = generator.flow(
        images.astype("float32"), targets, batch_size=batch, shuffle=True, seed=args.seed
    )
    paths = {
        "ours + augmentation": (make_model(True), ours),
        "ours, no augmentation": (make_model(False), ours),
        "ImageDataGenerator": (make_model(False), reference),
    }

    # The input paths alone, as a model faster than this CPU (a GPU) would see them.
    layers = augmentation_layers(augment)

    @tf.function
    def augment_batch(batch_images):
        x = tf.cast(batch_images, "float32") / 255.0
        for layer in layers:
            x = layer(x, training=True)
        return x

    input_only = {
        "ours + augmentation": input_rate(ours.repeat(), batch, args.warmup, args.steps, augment_batch),
        "ours, no augmentation": input_rate(ours.repeat(), batch, args.warmup, args.steps),
        "ImageDataGenerator": input_rate(reference, batch, args.warmup, args.steps),
    }
    input_load = os.getloadavg()[0]

    results: dict[str, list[dict]] = {name: [] for name in paths}
    start = time.perf_counter()
    for _ in range(args.rounds):
        for name, (model, inputs) in paths.items():
            runs = results[name]
            runs.append(fit_throughput(model, inputs, None, batch, args.warmup, args.steps, class_weight))
    wall = time.perf_counter() - start

    best = {name: max(runs, key=lambda r: r["images_per_s"]) for name, runs in results.items()}
    rate = {name: run["images_per_s"] for name, run in best.items()}
    ours_rate, plain_rate = rate["ours + augmentation"], rate["ours, no augmentation"]
    idg_rate = rate["ImageDataGenerator"]
    rows = [
        [
            name,
            f"{rate[name]:.0f}",
            " / ".join(f"{r['images_per_s']:.0f}" for r in runs),
            f"{best[name]['load']:.1f}/{os.cpu_count()}",
            f"{best[name]['cpu_images_per_s']:.0f}",
            f"{input_only[name][0]:,.0f} ({input_only[name][1]:,.0f})",
        ]
        for name, runs in results.items()
    ]
    print(f"## Training throughput: {args.model} at {args.size} px, batch {batch}\n")
    header = ["input path", "training images/s (best)", "each round", "load", "per CPU-s"]
    header += ["input path alone: images/s (per CPU-s)"]
    print(markdown_table(header, rows))
    print()
    ours_alone, idg_alone = input_only["ours + augmentation"][1], input_only["ImageDataGenerator"][1]
    per_cpu = {name: run["cpu_images_per_s"] for name, run in best.items()}
    speedup = ours_rate / idg_rate
    speedup_cpu = per_cpu["ours + augmentation"] / per_cpu["ImageDataGenerator"]
    print(
        f"- training, ours + augmentation vs ImageDataGenerator: {speedup:.2f}x per second, "
        f"{speedup_cpu:.2f}x per CPU-second (target >= 5x)"
    )
    print(
        f"- input path alone, per CPU-second, ours + augmentation vs ImageDataGenerator: "
        f"{ours_alone / idg_alone:.1f}x with our augmentation on the CPU; "
        f"{input_only['ours, no augmentation'][1] / idg_alone:.1f}x where it runs on an accelerator "
        "(inside the model), leaving the CPU only the uint8 batches to feed"
    )
    cost = 100 * (1 - ours_rate / plain_rate)
    cost_cpu = 100 * (1 - per_cpu["ours + augmentation"] / per_cpu["ours, no augmentation"])
    print(
        f"- cost of augmentation in training: {cost:+.1f}% per second, {cost_cpu:+.1f}% per CPU-second, "
        "vs none (target <= 10%)"
    )
    idg = ", ".join(f"{k}={v}" for k, v in IDG_SETTINGS.items())
    print(f"- our augmentation layers: {', '.join(layer.name for layer in layers) or 'none'}")
    print(f"- reference: ImageDataGenerator({idg}).flow(float32 arrays), fed to model.fit as it is")
    print(f"- data: {source}")
    print(
        f"- training: {args.rounds} interleaved rounds of {args.warmup} warm-up + {args.steps} timed batches "
        f"per path, optimizer {train_params.optimizer}, balanced class weights, seed {args.seed}, "
        f"{wall:.0f} s in all; input path alone: {args.steps} batches, load {input_load:.1f}"
    )
    for line in machine_lines():
        print(line)


if __name__ == "__main__":
    main()
