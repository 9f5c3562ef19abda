"""Benchmark 2: hardware efficiency of training, i.e. useful FLOP/s over the machine's dense matmul rate.

  FLOPs per image  counted in TensorFlow's graph of one training step (forward, loss, gradients) with
                   TensorFlow's own per-op FLOP formulas, only ops the step's outputs depend on (the
                   first layer's unused input gradient is pruned, as TensorFlow prunes it when it runs);
                   the forward part is cross-checked against an analytic count from the layer shapes
  images/s         model.fit through the train stage's input path (tf.data + augmentation layers)
  matmul rate      a 2048x2048 float32 matmul through TensorFlow, median of several, measured in
                   every setting's own process just before and after its training, and at the
                   start and end of the run
  efficiency       conv/matmul FLOPs per image x images/s / matmul rate (elementwise ops, the
                   optimizer update and the input pipeline count as overhead, as in MFU figures),
                   over the best matmul rate of the run; and per CPU-second, training's FLOPs per
                   CPU-second of its process over the best matmul's (robust to the load of other
                   processes, blind to how well the work spreads over the cores). On a shared
                   machine the matmul measured just around a training is not a fair denominator:
                   one descheduled thread stalls a whole matmul, so it is shown but not used

Each setting (XLA, oneDNN on/off, thread pools, batch size, mixed bfloat16) runs in its own process,
because TF_ENABLE_ONEDNN_OPTS and the thread pools are fixed when TensorFlow starts. A last row
combines the float32 levers that each beat the default by more than 5%. Settings are ranked by
images per CPU-second (see `rate_of`), with wall-clock figures beside. Target (issue 6): >= 75%.

Run: python -m scripts.bench_efficiency [--model skip] [--steps 20] [--rounds 1] [--settings default,xla]
     [--full]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python scripts/bench_efficiency.py): import from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from scripts.bench_common import (  # noqa: E402
    N_CLASSES,
    PROJECT,
    check_model,
    fit_throughput,
    machine_lines,
    markdown_table,
    training_images,
)

MATMUL_SIDE = 2048
REFERENCE_BATCH = 64  # --steps is in batches of this size; other batch sizes train on as many images
WIN = 1.05  # a lever joins the combined setting when it beats the default by more than 5% (per CPU-s)

# One setting: batch size, XLA, oneDNN, thread pools (0 = TensorFlow's choice), mixed bfloat16.
DEFAULT = dict(name="default", lever=None, batch=64, xla=False, onednn=True, intra=0, inter=0, bf16=False)
KNOBS = ("batch", "xla", "onednn", "intra", "inter", "bf16")
SPEED_LEVERS = ("xla", "onednn", "threads", "batch")  # same numerics: these may be combined


def _setting(name: str, lever: str, **knobs) -> dict:
    return {**DEFAULT, "name": name, "lever": lever, **knobs}


SETTINGS = {  # key -> setting: the default, then one lever changed at a time
    "default": DEFAULT,
    "xla": _setting("XLA (jit_compile=True)", "xla", xla=True),
    "onednn-off": _setting("oneDNN off", "onednn", onednn=False),
    "threads-2-1": _setting("threads intra 2 / inter 1", "threads", intra=2, inter=1),
    "batch-128": _setting("batch 128", "batch", batch=128),
    "bf16": _setting("mixed bfloat16 (not float32: FLOPs at bf16)", "precision", bf16=True),
    # --full adds these
    "batch-256": _setting("batch 256", "batch", batch=256),
    "threads-1-1": _setting("threads intra 1 / inter 1", "threads", intra=1, inter=1),
    "threads-1-2": _setting("threads intra 1 / inter 2", "threads", intra=1, inter=2),
    "batch-32": _setting("batch 32", "batch", batch=32),
    "xla-onednn-off": _setting("XLA, oneDNN off", "xla+onednn", xla=True, onednn=False),
}
STANDARD = ("default", "xla", "onednn-off", "threads-2-1", "batch-128", "bf16")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="skip", help="registered model name (default: skip)")
    parser.add_argument("--size", type=int, default=28, help="image side in pixels (default: 28, >= 8)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches per setting (default: 5)")
    parser.add_argument(
        "--steps", type=int, default=20, help=f"timed batches of {REFERENCE_BATCH} (default: 20)"
    )
    parser.add_argument("--matmul-reps", type=int, default=5, help="timed matmuls per rate (default: 5)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved runs per setting (default: 1)")
    parser.add_argument("--full", action="store_true", help="every setting (more threads, XLA, batch)")
    parser.add_argument(
        "--settings", default=",".join(STANDARD), help=f"comma-separated, of: {', '.join(SETTINGS)}"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one setting, as JSON, in a child process
    args = parser.parse_args(argv)
    if min(args.warmup, args.steps, args.matmul_reps, args.rounds) < 1:
        parser.error("--warmup, --steps, --matmul-reps and --rounds must each be at least 1")
    if args.size < 8:
        parser.error("--size must be at least 8")
    args.settings = list(SETTINGS) if args.full else list(dict.fromkeys(args.settings.split(",")))
    unknown = [key for key in args.settings if key not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting(s) {unknown}; known: {', '.join(SETTINGS)}")
    return args


def matmul_rate(reps: int) -> dict[str, float]:
    """FLOP/s of a float32 (2048, 2048) @ (2048, 2048) matmul through TensorFlow, median of `reps`.

    Per wall-clock second and per CPU-second of this process (the latter is what it would do per
    core if the other processes on the machine did not compete for the cores).
    """
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


def project_setup(model_name: str) -> tuple:
    """The train and augment params and the model's hyperparameters, from the project's params.yaml."""
    from bloodcells.core.params import AugmentParams, TrainParams, read_params, to_dataclass

    params = read_params(PROJECT / "params.yaml")
    hparams = (params.get("models") or {}).get(model_name) or {}
    return (
        to_dataclass(params["train"], TrainParams, "train"),
        to_dataclass(params["augment"], AugmentParams, "augment"),
        hparams,
    )


# ---------------------------------------------------------------------------------------------------
# Counting FLOPs


def analytic_forward_flops(model) -> int:
    """2 x multiply-adds of every Conv2D and Dense layer per image, from the layer shapes alone."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, height, width, _ = layer.output.shape
            total += 2 * height * width * math.prod(layer.kernel.shape)
        elif isinstance(layer, layers.Dense):
            positions = math.prod(layer.input.shape[1:-1])
            total += 2 * positions * math.prod(layer.kernel.shape)
    return total


def counted_flops(concrete_function) -> dict[str, float]:
    """FLOPs by op type of a traced function, by TensorFlow's per-op formulas (those tf.profiler uses).

    Only ops that the function's outputs depend on are counted.
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


DENSE_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul", "DepthwiseConv2dNative")


def count_training_flops(model_name: str, size: int, batch: int) -> dict[str, float]:
    """Per-image FLOPs of a training step (loss + gradients) and of the forward pass, counted and analytic."""
    import keras
    import tensorflow as tf

    from bloodcells.architectures import create_model
    from bloodcells.training.recipe import make_loss

    train_params, augment, hparams = project_setup(model_name)
    model = create_model(model_name, (size, size, 3), N_CLASSES, augment, hparams)
    loss_fn = make_loss(train_params)
    label_spec = (
        tf.TensorSpec((batch, N_CLASSES), "float32")
        if train_params.label_smoothing
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


# ---------------------------------------------------------------------------------------------------
# One setting, in its own process


def worker(setting: dict, args: argparse.Namespace) -> dict:
    """Train the model under one setting (thread pools set before any op runs); images/s and matmul rate."""
    import tensorflow as tf

    if setting["intra"]:
        tf.config.threading.set_intra_op_parallelism_threads(setting["intra"])
    if setting["inter"]:
        tf.config.threading.set_inter_op_parallelism_threads(setting["inter"])
    import keras

    from bloodcells.architectures import create_model
    from stages.class_weights import compute_class_weights
    from stages.dataset import Split, make_inputs
    from bloodcells.training.recipe import make_loss, make_optimizer

    keras.utils.set_random_seed(0)
    if setting["bf16"]:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    train_params, augment, hparams = project_setup(args.model)
    batch = setting["batch"]
    steps = max(2, round(args.steps * REFERENCE_BATCH / batch))
    images, labels, source = training_images(args.size, (args.warmup + steps) * batch)
    one_hot = N_CLASSES if train_params.label_smoothing else 0
    inputs = make_inputs(Split(images, labels), batch, shuffle=True, seed=0, one_hot=one_hot)
    class_weight = dict(enumerate(compute_class_weights(labels, N_CLASSES, "balanced")))
    model = create_model(args.model, (args.size, args.size, 3), N_CLASSES, augment, hparams)
    model.compile(
        optimizer=make_optimizer(train_params, -(-len(labels) // batch)),
        loss=make_loss(train_params),
        metrics=["accuracy"],
        jit_compile=setting["xla"],
    )
    before = matmul_rate(args.matmul_reps)
    result = fit_throughput(model, inputs, None, batch, args.warmup, steps, class_weight)
    after = matmul_rate(args.matmul_reps)
    threads = (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )
    return {**result, "matmul": [before, after], "steps": steps, "source": source, "threads": threads}


def run_setting(setting: dict, args: argparse.Namespace) -> dict:
    """Run `worker` for one setting in a fresh Python process and return what it reports."""
    env = {
        **os.environ,
        "TF_ENABLE_ONEDNN_OPTS": "1" if setting["onednn"] else "0",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    command = [sys.executable, "-m", "scripts.bench_efficiency", "--worker", json.dumps(setting)]
    command += ["--model", args.model, "--size", str(args.size), "--warmup", str(args.warmup)]
    command += ["--steps", str(args.steps), "--matmul-reps", str(args.matmul_reps)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"setting {setting['name']!r} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {**report, "wall": time.perf_counter() - start}


def rate_of(result: dict) -> float:
    """Images per CPU-second: what settings are ranked by.

    The load of other processes barely moves it; wall-clock images/s swing by half on a shared machine.
    """
    return result["cpu_images_per_s"]


def combined_setting(results: list[tuple[dict, dict]]) -> dict | None:
    """The default with the best value of every lever that beat it by more than 5%; None if under two did."""
    base = rate_of(results[0][1])
    winners: dict[str, tuple[float, dict]] = {}
    for setting, result in results:
        lever, rate = setting["lever"], rate_of(result)
        single_lever = lever in SPEED_LEVERS
        if single_lever and rate > WIN * base and (lever not in winners or rate > winners[lever][0]):
            winners[lever] = (rate, setting)
    if len(winners) < 2:
        return None
    combined = {**DEFAULT, "lever": "combined"}
    for _, setting in winners.values():
        combined.update({key: setting[key] for key in KNOBS if setting[key] != DEFAULT[key]})
    combined["name"] = "combined: " + " + ".join(setting["name"] for _, setting in winners.values())
    return combined


def efficiencies(per_image: float, result: dict, machine: dict[str, float]) -> dict[str, float]:
    """FLOP/s achieved; efficiency over the machine's matmul rate, per second and per CPU-second."""
    achieved = per_image * result["images_per_s"]
    return {
        "achieved": achieved,
        "best": achieved / machine["wall"],
        "cpu": per_image * result["cpu_images_per_s"] / machine["cpu"],
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker), args)))
        return

    check_model(args.model)
    start = time.perf_counter()
    flops = count_training_flops(args.model, args.size, REFERENCE_BATCH)
    machine_start, load_start = matmul_rate(args.matmul_reps), os.getloadavg()[0]
    settings = [SETTINGS[key] for key in args.settings]
    runs: dict[str, list[dict]] = {setting["name"]: [] for setting in settings}
    for _ in range(args.rounds):  # interleaved, so a change of load hits every setting
        for setting in settings:
            runs[setting["name"]].append(run_setting(setting, args))
    best_of = {name: max(results, key=rate_of) for name, results in runs.items()}
    results = [(setting, best_of[setting["name"]]) for setting in settings]
    combined = combined_setting(results) if args.settings[0] == "default" else None
    if combined:
        results.append(
            (combined, max((run_setting(combined, args) for _ in range(args.rounds)), key=rate_of))
        )
    machine_end, load_end = matmul_rate(args.matmul_reps), os.getloadavg()[0]
    # The machine's rate: the best of every matmul measured in the run, the parent's and the settings'.
    every_matmul = [machine_start, machine_end, *(rate for _, r in results for rate in r["matmul"])]
    machine = {kind: max(rate[kind] for rate in every_matmul) for kind in ("wall", "cpu")}

    per_image = flops["train_dense"]
    rows = []
    for setting, result in results:
        eff = efficiencies(per_image, result, machine)
        intra, inter = result["threads"]
        rows.append(
            [
                setting["name"],
                str(setting["batch"]),
                f"{result['images_per_s']:.0f}",
                f"{eff['achieved'] / 1e9:.1f}",
                " / ".join(f"{rate['wall'] / 1e9:.0f}" for rate in result["matmul"]),
                f"{100 * eff['best']:.0f}%",
                f"{100 * eff['cpu']:.0f}%",
                f"{intra or 'auto'}/{inter or 'auto'}",
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
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    print(
        f"\nDense float32 matmul rate ({MATMUL_SIDE}x{MATMUL_SIDE} through TensorFlow, median of "
        f"{args.matmul_reps}, TF_ENABLE_ONEDNN_OPTS={onednn}): {machine_start['wall'] / 1e9:.0f} GFLOP/s "
        f"at the start (load {load_start:.1f}), {machine_end['wall'] / 1e9:.0f} GFLOP/s at the end (load "
        f"{load_end:.1f}); best of every matmul measured in this run: {machine['wall'] / 1e9:.0f} GFLOP/s, "
        f"{machine['cpu'] / 1e9:.0f} GFLOP per CPU-second.\n"
    )
    print(
        "Efficiency = conv/matmul FLOPs per image x images/s over the best matmul rate of the run (a "
        "lower bound while the machine is shared). Per CPU-s = the same per CPU-second of the process, "
        "training's over the best matmul's (robust to other processes' load; blind to how well work "
        "spreads over the cores). The matmul rate each setting's process measured just before and after "
        "its training is shown as a sign of the load it met.\n"
    )
    header = ["setting", "batch", "images/s", "GFLOP/s", "matmul GFLOP/s before / after"]
    header += ["efficiency", "per CPU-s", "threads intra/inter", "load"]
    print(markdown_table(header, rows))
    print()
    best_setting, best_result = max(results, key=lambda pair: rate_of(pair[1]))
    eff = efficiencies(per_image, best_result, machine)
    print(
        f"- best per CPU-second: {best_setting['name']} (batch {best_setting['batch']}), "
        f"{best_result['images_per_s']:.0f} images/s, efficiency {100 * eff['best']:.0f}%, "
        f"{100 * eff['cpu']:.0f}% per CPU-second (target >= 75%)"
    )
    if not combined and args.settings[0] == "default":
        print(f"- no combined setting: fewer than two levers beat the default by more than {WIN - 1:.0%}")
    print(f"- forward count vs analytic: {flops['forward_dense'] / flops['forward_analytic']:.4f}")
    print(f"- data: {results[0][1]['source']}")
    print(
        f"- each setting in a fresh process: {args.warmup} warm-up batches, then {args.steps} batches' "
        f"worth of {REFERENCE_BATCH} images, timed; best of {args.rounds} interleaved round(s); "
        f"{time.perf_counter() - start:.0f} s in all"
    )
    for line in machine_lines():
        print(line)


if __name__ == "__main__":
    main()
