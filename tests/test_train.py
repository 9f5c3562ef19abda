"""Train stage: recipe validation, resuming a killed run, determinism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import replace

import numpy as np
import pytest

from bloodcells.core.params import TrainParams
from bloodcells.training.recipe import check_recipe, learning_rate
from tests.conftest import dvc_env, ran_stages, run, set_params

BASE = TrainParams(size=28, epochs=10, batch_size=32, lr=1e-3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"optimizer": "sgd"}, "Unknown train.optimizer 'sgd'. Known: adam, adamw"),
        ({"schedule": "step"}, "Unknown train.schedule 'step'. Known: plateau, cosine"),
        ({"label_smoothing": 1.5}, r"label_smoothing must be in \[0, 1\)"),
        ({"epochs": 0}, "train.epochs must be at least 1"),
        ({"lr": -1.0}, "train.lr must be positive"),
    ],
)
def test_bad_recipes_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        check_recipe(replace(BASE, **change))


def test_cosine_schedule_warms_up_then_decays_to_min_lr():
    schedule = learning_rate(
        replace(BASE, schedule="cosine", warmup_epochs=1, min_lr=1e-5), steps_per_epoch=10
    )
    assert float(schedule(0)) == pytest.approx(1e-5)
    assert float(schedule(10)) == pytest.approx(1e-3)
    assert float(schedule(100)) == pytest.approx(1e-5, rel=1e-3)
    assert learning_rate(BASE, 10) == 1e-3


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_last_epoch(project_repo):
    set_params(project_repo, {"train.epochs": 4, "train.batch_size": 2, "train.early_stopping_patience": 10})
    process = subprocess.Popen(
        ["dvc", "repro"],
        cwd=project_repo,
        env=dvc_env(),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    metadata = list((project_repo / "data/train-backup").glob("*/training_metadata.json"))
    deadline = time.time() + 120
    while not metadata or json.loads(metadata[0].read_text())["epoch"] < 2:
        assert process.poll() is None and time.time() < deadline, "training ended before it could be killed"
        time.sleep(0.2)
        metadata = list((project_repo / "data/train-backup").glob("*/training_metadata.json"))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (project_repo / "models/model.keras").exists()

    result = run(project_repo, "dvc", "repro")
    assert ran_stages(result.stdout) == ["train", "evaluate", "export"]
    assert "resuming from the last epoch checkpoint" in result.stdout
    assert "Epoch 3/4" in result.stdout and "Epoch 1/4" not in result.stdout
    summary = json.loads((project_repo / "metrics/train/metrics.json").read_text())
    assert summary["epochs_run"] == 4
    curve = (project_repo / "metrics/train/plots/metrics/val/loss.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in curve[1:]] == ["0", "1", "2", "3"]
    assert not list((project_repo / "data/train-backup").glob("*/*.h5")), "checkpoint kept after success"


@pytest.mark.slow
def test_same_seed_gives_identical_metrics(project_repo):
    set_params(project_repo, {"train.deterministic": True, "train.epochs": 2})
    run(project_repo, "dvc", "repro")
    first = (project_repo / "metrics/evaluate/metrics.json").read_text()
    run(project_repo, "dvc", "repro", "--force", "train")
    assert (project_repo / "metrics/evaluate/metrics.json").read_text() == first


TWO_CPU_DEVICES = """
import runpy, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.argv = ["stages.train"]
runpy.run_module("stages.train", run_name="__main__")
"""


@pytest.mark.slow
def test_data_parallel_training_on_two_logical_cpu_devices(project_repo):
    """`train.distribute: data_parallel` mirrors the model over every device (here two CPU halves)."""
    set_params(project_repo, {"train.distribute": "data_parallel", "train.epochs": 2})
    result = run(project_repo, "python", "-c", TWO_CPU_DEVICES)
    assert "2 replica(s)" in result.stdout
    assert "Epoch 2/2" in result.stdout
    assert json.loads((project_repo / "models/model.json").read_text())["epochs_run"] == 2


def test_bad_hardware_switches_are_refused():
    with pytest.raises(ValueError, match="distribute must be one of none, data_parallel, got 'horovod'"):
        check_recipe(replace(BASE, distribute="horovod"))
    with pytest.raises(ValueError, match="train.jit_compile must be one of auto, on, off, got 'yes'"):
        check_recipe(replace(BASE, jit_compile="yes"))


@pytest.mark.parametrize(
    ("switch", "policy"),
    [
        ("auto", "float32"),
        ("off", "float32"),
        (False, "float32"),
        ("on", "mixed_bfloat16"),
        (True, "mixed_bfloat16"),
    ],
)
def test_mixed_precision_on_a_cpu_is_bfloat16_and_yaml_booleans_count(switch, policy):
    """YAML reads `-S train.mixed_precision=on` as true; on a CPU float16 has no fast kernels."""
    from bloodcells.training.devices import accelerators, precision_policy

    if accelerators():
        pytest.skip("this machine has an accelerator: `on` means float16 here")
    assert precision_policy(switch) == policy


def test_a_residual_cnn_trains_under_mixed_bfloat16_with_float32_probabilities():
    import keras
    import numpy as np

    from bloodcells.architectures import create_model

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = create_model("skip", (28, 28, 3), 8, None, {"width": 8})
        model.compile(optimizer="adamw", loss="sparse_categorical_crossentropy")
        images = np.random.default_rng(0).integers(0, 256, (32, 28, 28, 3), dtype=np.uint8)
        history = model.fit(images, np.arange(32) % 8, epochs=2, batch_size=16, verbose=0)
        probabilities = model.predict(images[:4], verbose=0)
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.get_layer("block1_1_conv").compute_dtype == "bfloat16"
    assert probabilities.dtype == np.float32
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
    assert np.isfinite(history.history["loss"]).all()


def test_uneven_last_batches_lose_at_most_replicas_minus_one_images():
    from stages.dataset import evenly_split

    images, labels = np.zeros((11959, 2, 2, 3), "uint8"), np.arange(11959)
    kept_images, kept_labels = evenly_split(images, labels, batch_size=64, replicas=2)
    assert len(kept_labels) == 11958 and (len(kept_labels) % 64) % 2 == 0
    assert (kept_labels == labels[:-1]).all() and len(kept_images) == 11958
    assert len(evenly_split(images, labels, batch_size=64, replicas=1)[1]) == 11959
    with pytest.raises(ValueError, match=r"train.batch_size \(64\) must be a multiple of the 3 replicas"):
        evenly_split(images, labels, batch_size=64, replicas=3)


@pytest.mark.slow
def test_the_pipeline_trains_and_evaluates_under_jax_data_parallel_on_two_cpu_devices(project_repo):
    """The GPU machine's path (Keras on JAX, no TensorFlow needed by the stages), on two CPU devices."""
    pytest.importorskip("jax", reason="JAX is not installed: the JAX backend path is not tested")
    set_params(project_repo, {"train.distribute": "data_parallel", "train.batch_size": 26})
    env = {**dvc_env(), "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    result = subprocess.run(
        ["dvc", "repro"], cwd=project_repo, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert ran_stages(result.stdout) == ["train", "evaluate", "export"]
    assert "backend jax, float32, 2 replica(s)" in result.stdout
    card = json.loads((project_repo / "models/model.json").read_text())
    assert card["backend"] == "jax" and card["epochs_run"] == 1
    assert "accuracy" in json.loads((project_repo / "metrics/evaluate/metrics.json").read_text())
