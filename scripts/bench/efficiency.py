"""Hardware efficiency of training: useful FLOP/s over the machine's dense matmul rate (TensorFlow, CPU).

  FLOPs per image  counted in TensorFlow's graph of one training step (forward, loss, gradients)
                   with TensorFlow's per-op formulas, only ops the step's outputs depend on; the
                   forward part is cross-checked against an analytic count from the layer shapes
  images/s         model.fit through the train stage's input path (tf.data + augmentation layers)
  matmul rate      a 2048x2048 float32 matmul, median of several, in every setting's process just
                   before and after its training, and in this process at the start and end
  efficiency       conv/matmul FLOPs per image x images/s over the best matmul rate of the run, per
                   second and per CPU-second (robust to other processes' load)

Each setting (XLA, oneDNN off, mixed bfloat16) runs in its own process, because
TF_ENABLE_ONEDNN_OPTS is read when TensorFlow starts. Target: >= 75%.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

from scripts.bench.common import (
    N_CLASSES,
    PROJECT,
    check_model,
    fit_throughput,
    machine_lines,
    markdown_table,
    quiet_env,
    recipe_params,
    training_images,
)

MATMUL_SIDE = 2048
REFERENCE_BATCH = 64
SETTINGS = {  # key -> (name, XLA, oneDNN, mixed bfloat16)
    "default": ("default", False, True, False),
    "xla": ("XLA (jit_compile=True)", True, True, False),
    "onednn-off": ("oneDNN off", False, False, False),
    "bf16": ("mixed bfloat16 (not float32: FLOPs at bf16)", False, True, True),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="skip", help="registered model name (default: skip)")
    parser.add_argument("--size", type=int, default=28, help="image side in pixels (default: 28, >= 8)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches per setting (default: 5)")
    parser.add_argument("--steps", type=int, default=20, help="timed batches of 64 (default: 20)")
    parser.add_argument("--matmul-reps", type=int, default=5, help="timed matmuls per rate (default: 5)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved runs per setting (default: 1)")
    parser.add_argument(
        "--settings", default=",".join(SETTINGS), help=f"comma-separated, of: {', '.join(SETTINGS)}"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="the default setting, 1 + 2 batches, synthetic images"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one setting, in a child process


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.smoke:
        args.settings, args.warmup, args.steps, args.matmul_reps, args.rounds = "default", 1, 2, 1, 1
    if min(args.warmup, args.steps, args.matmul_reps, args.rounds) < 1 or args.size < 8:
        parser.error(
            "--warmup, --steps, --matmul-reps and --rounds must each be at least 1, --size at least 8"
        )
    args.settings = list(dict.fromkeys(args.settings.split(",")))
    unknown = [key for key in args.settings if key not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting(s) {unknown}; known: {', '.join(SETTINGS)}")


# Counting FLOPs: TensorFlow's per-op formulas on the traced step, and the layer shapes

DENSE_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul", "DepthwiseConv2dNative")


def analytic_forward_flops(model) -> int:
    """2 x multiply-adds of every Conv2D and Dense layer per image, from the layer shapes alone."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, height, width, _ = layer.output.shape
            total += 2 * height * width * math.prod(layer.kernel.shape)
        elif isinstance(layer, layers.Dense):
            total += 2 * math.prod(layer.input.shape[1:-1]) * math.prod(layer.kernel.shape)
    return total


def counted_flops(concrete_function) -> dict[str, float]:
    """FLOPs by op type of a traced function, by TensorFlow's per-op formulas (those tf.profiler uses).

    Only ops that the function's outputs depend on are counted (the first layer's unused input
    gradient is pruned, as TensorFlow prunes it when it runs).
    """
    from tensorflow.python.framework import ops

    graph = concrete_function.graph
    needed: set[str] = set()
    stack = [tensor.op for tensor in concrete_function.outputs]
    while stack:
        op = stack.pop()
        if op.name not in needed:
            needed.add(op.name)
            stack.extend(tensor.op for tensor in op.inputs)
            stack.extend(op.control_inputs)
    by_type: dict[str, float] = {}
    for op in graph.get_operations():
        if op.name not in needed:
            continue
        try:
            flops = ops.get_stats_for_node_def(graph, op.node_def, "flops").value
        except ValueError:  # an op TensorFlow has no FLOP formula for (reshapes, casts, ...)
            flops = None
        if flops:
            by_type[op.type] = by_type.get(op.type, 0.0) + float(flops)
    return by_type


def count_training_flops(params, model_name: str, size: int, batch: int) -> dict[str, float]:
    """Per-image FLOPs of a training step (loss + gradients) and of the forward pass, counted and analytic."""
    import keras
    import tensorflow as tf

    from bloodcells.architectures import create_model
    from bloodcells.training.recipe import make_loss

    hparams = params.models.get(model_name) or {}
    model = create_model(model_name, (size, size, 3), N_CLASSES, params.augment, hparams)
    loss_fn = make_loss(params.train)
    label_spec = (
        tf.TensorSpec((batch, N_CLASSES), "float32")
        if params.train.label_smoothing
        else tf.TensorSpec((batch,), "int32")
    )
    image_spec = tf.TensorSpec((batch, size, size, 3), "uint8")

    @tf.function
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        return loss, tape.gradient(loss, model.trainable_variables)

    @tf.function
    def forward(images):
        return model(images, training=True)

    step = counted_flops(train_step.get_concrete_function(image_spec, label_spec))
    fwd = counted_flops(forward.get_concrete_function(image_spec))
    analytic = analytic_forward_flops(model)
    keras.backend.clear_session()
    return {
        "train_dense": sum(v for k, v in step.items() if k in DENSE_OPS) / batch,
        "train_all": sum(step.values()) / batch,
        "forward_dense": sum(v for k, v in fwd.items() if k in DENSE_OPS) / batch,
        "forward_analytic": analytic,
        "train_by_op": {k: v / batch for k, v in step.items() if k in DENSE_OPS},
    }


# One setting, in its own process


def matmul_rate(reps: int) -> dict[str, float]:
    """FLOP/s of a float32 2048² matmul through TensorFlow, median of `reps`, per second and CPU-second."""
    import tensorflow as tf

    a = tf.random.normal((MATMUL_SIDE, MATMUL_SIDE), seed=1)
    b = tf.random.normal((MATMUL_SIDE, MATMUL_SIDE), seed=2)
    tf.linalg.matmul(a, b).numpy()  # warm-up: thread pools, kernel selection
    wall, cpu = [], []
    for _ in range(reps):
        start, start_cpu = time.perf_counter(), time.process_time()
        tf.linalg.matmul(a, b)[0, 0].numpy()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    flops = 2 * MATMUL_SIDE**3
    return {"wall": flops / statistics.median(wall), "cpu": flops / statistics.median(cpu)}


def worker(key: str, args: argparse.Namespace) -> dict:
    """Train the model under one setting in this process; images/s and the matmul rate around it."""
    import keras

    from bloodcells.architectures import create_model
    from bloodcells.data.class_weights import compute_class_weights
    from bloodcells.data.splits import Split
    from bloodcells.training.inputs import make_inputs
    from bloodcells.training.recipe import make_loss, make_optimizer

    _, xla, _, bf16 = SETTINGS[key]
    keras.utils.set_random_seed(0)
    if bf16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    params = recipe_params(None)
    train = params.train
    images, labels, source = training_images(
        args.size, (args.warmup + args.steps) * REFERENCE_BATCH, 0, args.smoke
    )
    one_hot = N_CLASSES if train.label_smoothing else 0
    inputs = make_inputs(Split(images, labels), REFERENCE_BATCH, shuffle=True, seed=0, one_hot=one_hot)
    class_weight = dict(enumerate(compute_class_weights(labels, N_CLASSES, "balanced")))
    shape = (args.size, args.size, 3)
    model = create_model(args.model, shape, N_CLASSES, params.augment, params.models.get(args.model) or {})
    optimizer = make_optimizer(train, -(-len(labels) // REFERENCE_BATCH))
    model.compile(optimizer=optimizer, loss=make_loss(train), metrics=["accuracy"], jit_compile=xla)
    before = matmul_rate(args.matmul_reps)
    result = fit_throughput(model, inputs, REFERENCE_BATCH, args.warmup, args.steps, class_weight)
    after = matmul_rate(args.matmul_reps)
    return {**result, "matmul": [before, after], "source": source}


def run_setting(key: str, args: argparse.Namespace) -> dict:
    """Run `worker` for one setting in a fresh Python process and return what it reports."""
    import subprocess

    env = quiet_env(TF_ENABLE_ONEDNN_OPTS="1" if SETTINGS[key][2] else "0")
    command = [sys.executable, "-m", "scripts.bench", "efficiency", "--worker", key, "--model", args.model]
    command += ["--size", str(args.size), "--warmup", str(args.warmup), "--steps", str(args.steps)]
    command += ["--matmul-reps", str(args.matmul_reps)] + (["--smoke"] if args.smoke else [])
    done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"setting {key!r} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> None:
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return
    check_model(args.model)
    start = time.perf_counter()
    flops = count_training_flops(recipe_params(None), args.model, args.size, REFERENCE_BATCH)
    machine_start, load_start = matmul_rate(args.matmul_reps), os.getloadavg()[0]
    runs: dict[str, list[dict]] = {key: [] for key in args.settings}
    for _ in range(args.rounds):  # interleaved, so a change of load hits every setting
        for key in args.settings:
            runs[key].append(run_setting(key, args))
    best = {key: max(results, key=lambda r: r["cpu_images_per_s"]) for key, results in runs.items()}
    machine_end, load_end = matmul_rate(args.matmul_reps), os.getloadavg()[0]
    every = [machine_start, machine_end, *(rate for r in best.values() for rate in r["matmul"])]
    machine = {kind: max(rate[kind] for rate in every) for kind in ("wall", "cpu")}

    per_image = flops["train_dense"]
    rows = []
    for key, result in best.items():
        rows.append(
            [
                SETTINGS[key][0],
                f"{result['images_per_s']:.0f}",
                f"{per_image * result['images_per_s'] / 1e9:.1f}",
                " / ".join(f"{rate['wall'] / 1e9:.0f}" for rate in result["matmul"]),
                f"{100 * per_image * result['images_per_s'] / machine['wall']:.0f}%",
                f"{100 * per_image * result['cpu_images_per_s'] / machine['cpu']:.0f}%",
                f"{result['load']:.1f}/{os.cpu_count()}",
            ]
        )
    print(f"## Hardware efficiency: {args.model} at {args.size} px, TensorFlow backend, CPU\n")
    print(f"Training FLOPs per image (counted in the graph of one training step, batch {REFERENCE_BATCH}):\n")
    flop_rows = [
        ["forward, conv + matmul (counted)", f"{flops['forward_dense']:,.0f}"],
        ["forward, conv + dense (analytic, from layer shapes)", f"{flops['forward_analytic']:,.0f}"],
        *[[f"training step: {op}", f"{value:,.0f}"] for op, value in flops["train_by_op"].items()],
        ["training step, conv + matmul (used below)", f"{per_image:,.0f}"],
        ["training step, every op with a FLOP formula", f"{flops['train_all']:,.0f}"],
    ]
    print(markdown_table(["part", "FLOPs per image"], flop_rows))
    print(
        f"\nDense float32 matmul rate ({MATMUL_SIDE}² through TensorFlow, median of {args.matmul_reps}): "
        f"{machine_start['wall'] / 1e9:.0f} GFLOP/s at the start (load {load_start:.1f}), "
        f"{machine_end['wall'] / 1e9:.0f} at the end (load {load_end:.1f}); best of every matmul of the run: "
        f"{machine['wall'] / 1e9:.0f} GFLOP/s, {machine['cpu'] / 1e9:.0f} GFLOP per CPU-second.\n"
    )
    header = [
        "setting",
        "images/s",
        "GFLOP/s",
        "matmul GFLOP/s before / after",
        "efficiency",
        "per CPU-s",
        "load",
    ]
    print(markdown_table(header, rows) + "\n")
    print(f"- forward count vs analytic: {flops['forward_dense'] / flops['forward_analytic']:.4f}")
    print(f"- data: {next(iter(best.values()))['source']}")
    print(
        f"- each setting in a fresh process: {args.warmup} warm-up + {args.steps} timed batches of "
        f"{REFERENCE_BATCH}; best of {args.rounds} interleaved round(s); "
        f"{time.perf_counter() - start:.0f} s in all"
    )
    for line in machine_lines():
        print(line)
