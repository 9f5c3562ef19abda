"""The train stage through real `dvc`: killed and resumed exactly (and so deterministic), data parallelism,
the JAX backend; a diverging run and Ctrl-C each end in one line."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.conftest import dvc_env, interruptible, ran_stages, run, set_params
from tests.stage_failures import assert_all_json_strict

pytestmark = pytest.mark.slow

TIMINGS = {"train_seconds", "peak_memory_mb", "train_peak_memory_mb", "eval_peak_memory_mb"}
TIMINGS |= {"test_seconds", "test_ms_per_image"}


def without_timings(path: Path) -> dict:
    """A JSON file's figures, less the ones that measure time or memory."""
    return {key: value for key, value in json.loads(path.read_text()).items() if key not in TIMINGS}


def curves(repo: Path) -> dict[str, list[tuple[int, float]]]:
    """Every dvclive curve of the train stage: {file: [(step, value), ...]}."""
    found = {}
    for path in sorted((repo / "metrics/train/plots/metrics").rglob("*.tsv")):
        with path.open() as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        metric = path.stem
        found[str(path.relative_to(repo))] = [(int(row["step"]), float(row[metric])) for row in rows]
    return found


def weights(repo: Path) -> list[np.ndarray]:
    import bloodcells.architectures  # noqa: F401  (registers the custom layers)

    return keras.saving.load_model(repo / "models/model.keras").get_weights()


def checkpointed_epochs(repo: Path) -> int:
    """Epochs the train stage's checkpoint holds (0 before the first one)."""
    found = list((repo / "data/train-backup").glob("*/training_metadata.json"))
    try:
        return json.loads(found[0].read_text())["epoch"] if found else 0
    except json.JSONDecodeError:  # Keras truncates, then writes it: read in between, it is empty
        return 0


def repro_killed_after(repo: Path, epochs: int, timeout: float = 300) -> str:
    """Start `dvc repro train`, SIGKILL it (and its stage) once `epochs` are checkpointed; its output."""
    process = subprocess.Popen(
        ["dvc", "repro", "train"],
        cwd=repo,
        env=dvc_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + timeout
    while checkpointed_epochs(repo) < epochs:
        assert process.poll() is None, "the run ended before it could be killed:\n" + process.stdout.read()
        assert time.time() < deadline, "no checkpoint in time"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    output, _ = process.communicate()
    return output


# Batches of 2 on the shared repo's 28 px data: epochs of 48 steps, long enough to be killed in the middle
# of one (the kill lands within a poll, 20 ms), and no download or preprocessing of another size.
RESUME = {
    "train.epochs": 3,
    "train.batch_size": 2,
    "runtime.deterministic": True,
    "train.early_stopping_patience": 10,
}


def test_a_run_killed_twice_ends_exactly_where_an_uninterrupted_one_does(project_repo, tmp_path):
    """Killed with SIGKILL in epoch 2 and again in epoch 3, each `dvc repro train` resumes from the
    checkpoint; the model, its card and curves equal those of a run that was never interrupted. With
    every epoch trained in another process than its twin, this is also `runtime.deterministic`'s
    promise: two runs give identical weights and every figure but the timings. (The stages after train
    only read its model: they are left out.)"""
    whole = project_repo
    set_params(whole, RESUME)
    killed = tmp_path / "killed"
    shutil.copytree(whole, killed, symlinks=True)
    assert ran_stages(run(whole, "dvc", "repro", "train").stdout) == ["train"]

    repro_killed_after(killed, 1)
    assert checkpointed_epochs(killed) == 1, "killed in epoch 2"
    assert not (killed / "models/model.keras").exists()
    second = repro_killed_after(killed, 2)
    assert "resuming after epoch 1 from the checkpoint" in second
    assert checkpointed_epochs(killed) == 2, "killed in epoch 3"
    last = run(killed, "dvc", "repro", "train")
    assert ran_stages(last.stdout) == ["train"]
    assert "resuming after epoch 2 from the checkpoint" in last.stdout
    assert "Epoch 3/3" in last.stdout and "Epoch 2/3" not in last.stdout

    card = without_timings(killed / "models/model.json")
    assert card == without_timings(whole / "models/model.json")
    assert card["epochs_run"] == 3 and 1 <= card["best/epoch"] <= 3
    resumed_curves = curves(killed)
    assert resumed_curves == curves(whole)
    assert all([step for step, _ in curve] == [0, 1, 2] for curve in resumed_curves.values()), resumed_curves
    for resumed, uninterrupted in zip(weights(killed), weights(whole), strict=True):
        np.testing.assert_array_equal(resumed, uninterrupted)
    assert not list((killed / "data/train-backup").glob("*/*.h5")), "checkpoint kept after success"


TWO_CPU_DEVICES = """
import runpy, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.argv = ["stages.train"]
runpy.run_module("stages.train", run_name="__main__")
"""


def test_data_parallel_training_on_two_logical_cpu_devices(project_repo):
    """`runtime.distribute: data_parallel` mirrors the model over every device (here two CPU halves)."""
    set_params(project_repo, {"runtime.distribute": "data_parallel", "train.epochs": 2})
    result = run(project_repo, "python", "-c", TWO_CPU_DEVICES)
    assert "2 replica(s)" in result.stdout
    assert "Epoch 2/2" in result.stdout
    assert json.loads((project_repo / "models/model.json").read_text())["epochs_run"] == 2


def test_the_pipeline_trains_and_evaluates_under_jax_data_parallel_on_two_cpu_devices(project_repo):
    """The GPU machine's path (Keras on JAX, no TensorFlow needed by the stages), on two CPU devices,
    with every augmentation layer on (ours are written in keras.ops for it; hue, saturation and
    greyscale are Keras's own)."""
    pytest.importorskip("jax", reason="JAX is not installed: the JAX backend path is not tested")
    switches = (
        "crop_zoom", "color_jitter", "zoom", "hed_jitter", "gamma", "blur", "hue", "saturation", "grayscale"
    )
    augment = {f"augment.{name}": True for name in switches}
    set_params(project_repo, {"runtime.distribute": "data_parallel", "train.batch_size": 26, **augment})
    # Two CPU devices; XLA compiles without LLVM's costly passes (a fifth of the train stage's time here).
    flags = "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0"
    flags += " --xla_llvm_disable_expensive_passes=true"
    env = {**dvc_env(), "KERAS_BACKEND": "jax", "XLA_FLAGS": flags}
    result = subprocess.run(
        ["dvc", "repro"], cwd=project_repo, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert ran_stages(result.stdout) == ["train", "evaluate", "export"]
    assert "backend jax, float32, 2 replica(s)" in result.stdout
    card = json.loads((project_repo / "models/model.json").read_text())
    assert card["backend"] == "jax" and card["epochs_run"] == 1
    assert "accuracy" in json.loads((project_repo / "metrics/evaluate/metrics.json").read_text())


def test_a_diverging_run_fails_in_one_line_saying_what_to_try_and_writes_no_model(project_repo):
    repo = project_repo
    set_params(repo, {"train.lr": 1.0e6, "train.epochs": 2})
    result = run(repo, "dvc", "repro", "train", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    line = next(line for line in output.splitlines() if line.startswith("train failed:"))
    assert "training diverged" in line and "lower train.lr (now 1000000.0)" in line
    assert not (repo / "models/model.keras").exists() and not (repo / "models/model.json").exists()
    assert not any((repo / "data/train-backup").glob("*/training_metadata.json"))  # nothing to resume
    assert_all_json_strict(repo)


def test_ctrl_c_during_training_says_interrupted_exits_130_and_keeps_the_checkpoint(project_repo):
    repo = project_repo
    set_params(repo, {"train.epochs": 200})
    stage = subprocess.Popen(
        [sys.executable, "-m", "stages.train"],
        cwd=repo, env=dvc_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=interruptible,
    )
    try:
        deadline = time.monotonic() + 300
        while not list((repo / "data/train-backup").glob("*/training_metadata.json")):
            assert stage.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.5)
        stage.send_signal(signal.SIGINT)
        _, stderr = stage.communicate(timeout=120)
    finally:
        stage.kill()
    assert stage.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert stderr.rstrip().splitlines()[-1] == "train: interrupted"
    checkpoints = list((repo / "data/train-backup").glob("*/training_metadata.json"))
    assert len(checkpoints) == 1 and json.loads(checkpoints[0].read_text())["epoch"] >= 1
