"""Training throughput: images/s of our input path against the reference reports' path, side by side.

Three ways to feed the same architecture, each trained by `model.fit` with the project's optimizer,
loss and balanced class weights, timed over a fixed number of batches after a warm-up:
  ours + augmentation  `make_inputs` (tf.data over uint8 arrays), augmentation as layers inside
                       the model (params.yaml's `augment`, with crop-zoom on, the counterpart of
                       the reports' zoom)
  ours, no aug         the same without augmentation layers
  ImageDataGenerator   the reports' path: float arrays through `ImageDataGenerator.flow` with random
                       rotations, flips and zoom, into the same model without augmentation layers
Rounds are interleaved (a, b, c, a, b, c, ...) so a change of load hits every path; each path's
best round is its figure, per second and per CPU-second of the process. Each input path is also
timed alone, without a model: what it could feed an accelerator. TensorFlow backend only.
Targets: ours >= 5x ImageDataGenerator, augmentation <= 10% slower than none.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from scripts.bench.common import (
    N_CLASSES,
    check_model,
    fit_throughput,
    machine_lines,
    markdown_table,
    recipe_params,
    training_images,
)

# The reports' ImageDataGenerator settings: any rotation angle, both flips, a little zoom.
IDG_SETTINGS = {"rotation_range": 90, "horizontal_flip": True, "vertical_flip": True, "zoom_range": 0.1}
PATHS = ("ours + augmentation", "ours, no augmentation", "ImageDataGenerator")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="skip", help="registered model name (default: skip)")
    parser.add_argument("--size", type=int, default=28, help="image side in pixels (default: 28, >= 8)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches per round (default: 5)")
    parser.add_argument("--steps", type=int, default=40, help="timed batches per round (default: 40)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per path (default: 3)")
    parser.add_argument("--smoke", action="store_true", help="1 round of 1 + 2 batches on synthetic images")


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.smoke:
        args.warmup, args.steps, args.rounds = 1, 2, 1
    if min(args.warmup, args.steps, args.rounds) < 1 or args.size < 8:
        parser.error("--warmup, --steps and --rounds must each be at least 1, --size at least 8")


def input_rate(batches, batch_size: int, warmup: int, steps: int, transform=None) -> tuple[float, float]:
    """Images/s of an input path alone (no model), per second and per CPU-second, over `steps` batches."""
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


def run(args: argparse.Namespace) -> None:
    check_model(args.model)
    params = recipe_params(None, {"augment.crop_zoom": True})  # the counterpart of the reports' zoom
    import keras
    import tensorflow as tf

    from bloodcells.architectures import create_model
    from bloodcells.architectures.augment import augmentation_layers
    from bloodcells.data.class_weights import compute_class_weights
    from bloodcells.data.splits import Split
    from bloodcells.training.inputs import make_inputs
    from bloodcells.training.recipe import make_loss, make_optimizer

    train, augment, batch = params.train, params.augment, params.train.batch_size
    hparams = params.models.get(args.model) or {}
    keras.utils.set_random_seed(0)
    images, labels, source = training_images(args.size, (args.warmup + args.steps) * batch, 0, args.smoke)
    class_weight = dict(enumerate(compute_class_weights(labels, N_CLASSES, "balanced")))
    one_hot = N_CLASSES if train.label_smoothing else 0
    steps_per_epoch = -(-len(labels) // batch)

    def make_model(augmented: bool) -> keras.Model:
        model = create_model(
            args.model, (args.size,) * 2 + (3,), N_CLASSES, augment if augmented else None, hparams
        )
        model.compile(
            optimizer=make_optimizer(train, steps_per_epoch), loss=make_loss(train), metrics=["accuracy"]
        )
        return model

    ours = make_inputs(Split(images, labels), batch, shuffle=True, seed=0, one_hot=one_hot)
    targets = np.eye(N_CLASSES, dtype="float32")[labels] if one_hot else labels
    generator = tf.keras.preprocessing.image.ImageDataGenerator(**IDG_SETTINGS)
    reference = generator.flow(images.astype("float32"), targets, batch_size=batch, shuffle=True, seed=0)
    feeds = dict(
        zip(
            PATHS,
            [(make_model(True), ours), (make_model(False), ours), (make_model(False), reference)],
            strict=True,
        )
    )

    layers = augmentation_layers(augment)

    @tf.function
    def augment_batch(batch_images):
        x = tf.cast(batch_images, "float32") / 255.0
        for layer in layers:
            x = layer(x, training=True)
        return x

    alone = {
        PATHS[0]: input_rate(ours.x.repeat(), batch, args.warmup, args.steps, augment_batch),
        PATHS[1]: input_rate(ours.x.repeat(), batch, args.warmup, args.steps),
        PATHS[2]: input_rate(reference, batch, args.warmup, args.steps),
    }
    input_load = os.getloadavg()[0]

    results: dict[str, list[dict]] = {name: [] for name in PATHS}
    start = time.perf_counter()
    for _ in range(args.rounds):
        for name, (model, inputs) in feeds.items():
            results[name].append(fit_throughput(model, inputs, batch, args.warmup, args.steps, class_weight))
    wall = time.perf_counter() - start

    best = {name: max(runs, key=lambda r: r["images_per_s"]) for name, runs in results.items()}
    rows = [
        [
            name,
            f"{best[name]['images_per_s']:.0f}",
            " / ".join(f"{r['images_per_s']:.0f}" for r in runs),
            f"{best[name]['load']:.1f}/{os.cpu_count()}",
            f"{best[name]['cpu_images_per_s']:.0f}",
            f"{alone[name][0]:,.0f} ({alone[name][1]:,.0f})",
        ]
        for name, runs in results.items()
    ]
    print(f"## Training throughput: {args.model} at {args.size} px, batch {batch}\n")
    header = ["input path", "training images/s (best)", "each round", "load", "per CPU-s"]
    print(markdown_table([*header, "input path alone: images/s (per CPU-s)"], rows) + "\n")
    rate = {name: run["images_per_s"] for name, run in best.items()}
    cpu = {name: run["cpu_images_per_s"] for name, run in best.items()}
    print(
        f"- training, ours + augmentation vs ImageDataGenerator: {rate[PATHS[0]] / rate[PATHS[2]]:.2f}x per "
        f"second, {cpu[PATHS[0]] / cpu[PATHS[2]]:.2f}x per CPU-second (target >= 5x)"
    )
    ours_alone, plain_alone, idg_alone = (alone[name][1] for name in PATHS)
    print(
        f"- input path alone, per CPU-second, vs ImageDataGenerator: {ours_alone / idg_alone:.1f}x "
        f"with our augmentation on the CPU; {plain_alone / idg_alone:.1f}x where it runs on an "
        "accelerator (inside the model), leaving the CPU only the uint8 batches to feed"
    )
    cost, cost_cpu = (100 * (1 - r[PATHS[0]] / r[PATHS[1]]) for r in (rate, cpu))
    print(
        f"- cost of augmentation in training: {cost:+.1f}% per second, {cost_cpu:+.1f}% per CPU-second, "
        "vs none (target <= 10%)"
    )
    print(f"- our augmentation layers: {', '.join(layer.name for layer in layers) or 'none'}")
    idg = ", ".join(f"{k}={v}" for k, v in IDG_SETTINGS.items())
    print(f"- reference: ImageDataGenerator({idg}).flow(float32 arrays), fed to model.fit as it is")
    print(f"- data: {source}")
    print(
        f"- training: {args.rounds} interleaved round(s) of {args.warmup} warm-up + {args.steps} timed "
        "batches "
        f"per path, optimizer {train.optimizer}, balanced class weights, {wall:.0f} s in all; "
        f"input path alone: {args.steps} batches, load {input_load:.1f}"
    )
    for line in machine_lines():
        print(line)
