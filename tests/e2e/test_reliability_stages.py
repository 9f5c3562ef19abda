"""Issue #11 items 5, 6 and 13 on fresh project repos: refusals before any work, one line each,
Ctrl-C during a download, and a grayscale MedMNIST set through preprocess."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import dvc_env, interruptible, run, set_params
from tests.faulty_servers import bad_server

pytestmark = pytest.mark.slow

STAGES = {
    "download": ["-m", "stages.download"],
    "preprocess": ["-m", "stages.preprocess", "--size", "28"],
    "class_weights": ["-m", "stages.class_weights"],
    "train": ["-m", "stages.train"],
    "evaluate": ["-m", "stages.evaluate"],
}


def one_line_failure(result: subprocess.CompletedProcess, status: int = 1) -> str:
    """The single line a failed stage printed on stderr (asserting there is no traceback)."""
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, result.stdout
    return lines[-1]


def test_a_stage_run_before_its_inputs_exist_says_which_stage_to_run_first(new_repo):
    repo = new_repo()
    expected = {
        "preprocess": "data/raw/classes.json not found: run `dvc repro download` first",
        "class_weights": "data/preprocessed/28 not found: run `dvc repro preprocess@28` first",
        "train": "data/preprocessed/28 not found: run `dvc repro preprocess@28` first",
        "evaluate": "models/model.json not found: run `dvc repro train` first",
    }
    for stage, message in expected.items():
        line = one_line_failure(run(repo, sys.executable, *STAGES[stage], check=False))
        assert line.startswith(f"{stage} failed: {message}"), line


def test_train_size_outside_data_sizes_is_refused_before_anything_runs(new_repo):
    repo = new_repo({"data.sizes": [28], "train.size": 64})
    result = run(repo, "dvc", "repro", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert "download failed: params.yaml: train.size 64 is not one of data.sizes [28]" in output
    assert not (repo / "data/raw").exists() and not (repo / "data/preprocessed").exists()

    # The usual case: a workspace that has run, then `-S train.size=64`. DVC used to delete
    # data/class_weights.json and fail on the missing data/preprocessed/64/train_labels.npy.
    set_params(repo, {"train.size": 28})
    run(repo, "dvc", "repro", "class_weights")
    weights = (repo / "data/class_weights.json").read_bytes()
    set_params(repo, {"train.size": 64})
    result = run(repo, "dvc", "repro", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert "class_weights failed: params.yaml: train.size 64 is not one of data.sizes [28]" in output
    assert (repo / "data/class_weights.json").read_bytes() == weights  # nothing deleted
    assert not (repo / "models").exists()


def test_empty_data_sizes_is_refused_before_anything_runs(new_repo):
    repo = new_repo({"data.sizes": []})
    result = run(repo, "dvc", "repro", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "data.sizes" in output
    assert not (repo / "data/raw").exists()  # download no longer succeeds first
    for stage in STAGES:  # and run directly, every stage refuses it in one line
        line = one_line_failure(run(repo, sys.executable, *STAGES[stage], check=False))
        assert line.startswith(f"{stage} failed: params.yaml: data.sizes: List should have at least 1 item")


def test_invalid_yaml_in_params_is_one_line_for_every_stage(new_repo):
    repo = new_repo()
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text() + "\ntrain: [unclosed\n")
    for stage in STAGES:
        line = one_line_failure(run(repo, sys.executable, *STAGES[stage], check=False))
        assert line.startswith(f"{stage} failed: params.yaml: line ") and "not valid YAML" in line, line


def test_a_stage_run_from_the_wrong_folder_says_where_to_run_it(new_repo, tmp_path):
    repo = new_repo()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dvc_env() | {"PYTHONPATH": str(repo)}  # this checkout's package, as the repo's own would be
    for stage in ("download", "evaluate"):
        result = subprocess.run(
            [sys.executable, str(repo / "stages" / f"{stage}.py")],
            cwd=elsewhere, env=env, capture_output=True, text=True,
        )
        line = one_line_failure(result)
        assert line == f"{stage} failed: no dvc.yaml here: run stages from the project root"
    assert list(elsewhere.iterdir()) == []


def test_ctrl_c_during_a_download_says_interrupted_exits_130_and_leaves_no_partial_file(new_repo):
    with bad_server(stall=True) as (base, started):
        repo = new_repo({"data.mirror": base})
        stage = subprocess.Popen(
            [sys.executable, *STAGES["download"]],
            cwd=repo, env=dvc_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=interruptible,
        )
        try:
            assert started.wait(120), "the download never started"
            stage.send_signal(signal.SIGINT)
            _, stderr = stage.communicate(timeout=60)
        finally:
            stage.kill()
    assert stage.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert stderr.rstrip().splitlines()[-1] == "download: interrupted"
    leftovers = [p.name for p in (repo / "data/raw").iterdir()] if (repo / "data/raw").exists() else []
    assert leftovers == []


def write_grayscale_mirror(folder, dataset: str = "organamnist", n_classes: int = 11) -> dict:
    """A MedMNIST-format npz of grayscale images (N, 28, 28) uint8, as OrganAMNIST ships, and MD5SUMS."""
    rng = np.random.default_rng(3)
    arrays = {}
    for split, n in (("train", 66), ("val", 22), ("test", 22)):
        labels = (np.arange(n) % n_classes).astype(np.uint8)
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = labels[:, None]
    folder.mkdir(parents=True)
    np.savez_compressed(folder / f"{dataset}.npz", **arrays)
    digest = hashlib.md5((folder / f"{dataset}.npz").read_bytes()).hexdigest()
    (folder / "MD5SUMS").write_text(f"{digest}  {dataset}.npz\n")
    return arrays


def test_a_grayscale_medmnist_set_goes_through_preprocess_as_three_equal_channels(new_repo, tmp_path):
    arrays = write_grayscale_mirror(tmp_path / "gray")
    repo = new_repo({"data.dataset": "organamnist", "data.mirror": str(tmp_path / "gray")})
    run(repo, "dvc", "repro", "class_weights")
    folder = repo / "data/preprocessed/28"
    for split in ("train", "val", "test"):
        images = np.load(folder / f"{split}_images.npy")
        assert images.shape == (len(arrays[f"{split}_images"]), 28, 28, 3) and images.dtype == np.uint8
        for channel in range(3):
            np.testing.assert_array_equal(images[..., channel], arrays[f"{split}_images"])
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["image_shape"] == [28, 28, 3] and len(summary["classes"]) == 11
    assert summary["classes"][0] == "bladder"
    assert (repo / "data/class_weights.json").exists()


def test_a_3d_or_multi_label_medmnist_set_is_refused_in_one_line(new_repo):
    repo = new_repo()
    for dataset, kind in (("chestmnist", "multi-label"), ("organmnist3d", "3D")):
        set_params(repo, {"data.dataset": dataset})
        line = one_line_failure(run(repo, sys.executable, *STAGES["download"], check=False))
        assert f"MedMNIST dataset {dataset!r} is {kind}" in line, line
    assert os.listdir(repo / "data") == ["images"]
