"""Stage scripts as real processes: every one refuses a wrong param in one line before working (five
processes, two of them loading TensorFlow: out of the quick suite, which checks the download stage's
lines); on fresh project repos, a stage run before its inputs exist, bad data.sizes and invalid YAML,
the wrong folder, Ctrl-C during a download, and MedMNIST sets other than BloodMNIST (a grayscale one
goes through preprocess; 3D and multi-label ones are refused)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import dvc_env, interruptible, ran_stages, run, set_params
from tests.faulty_servers import bad_server
from tests.stage_failures import one_line_failure
from tests.unit.stage_processes import STAGES, Finished, run_many, stage_workdir

pytestmark = pytest.mark.slow

# What TensorFlow 2.21 itself prints to stderr on import, whatever TF_CPP_MIN_LOG_LEVEL says.
TENSORFLOW_START_UP = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|I0000 .*\] oneDNN)")


def test_every_stage_refuses_a_wrong_param_before_working(tmp_path):
    """Every stage validates the whole file at start-up, not only the download stage. (The stages that
    import Keras also show TensorFlow's own two start-up lines, which it prints before any of our code.)"""
    jobs = {}
    for stage in STAGES:
        folder = stage_workdir(tmp_path / stage)
        set_params(folder, {"+train.epoch": 3})
        jobs[stage] = (stage, ["--size", "28"] if stage == "preprocess" else [], folder)
    for stage, result in run_many(jobs).items():
        assert result.returncode == 1 and "Traceback" not in result.stderr, (stage, result.stderr)
        ours = [line for line in result.stderr.splitlines() if not TENSORFLOW_START_UP.match(line)]
        assert ours == [f"{stage} failed: params.yaml: train.epoch: unknown key (a typo?)"], result.stderr


# The stages by the command lines a user types (`STAGES` above: dvc.yaml's names, export included).
COMMANDS = {
    "download": ["-m", "stages.download"],
    "preprocess": ["-m", "stages.preprocess", "--size", "28"],
    "class_weights": ["-m", "stages.class_weights"],
    "train": ["-m", "stages.train"],
    "evaluate": ["-m", "stages.evaluate"],
}


def in_repo(repo: Path, stages) -> dict[str, Finished]:
    """`python -m stages.<stage>` for each of `stages` in `repo`, three at a time; {stage: result}."""
    return run_many({stage: (stage, COMMANDS[stage][2:], repo) for stage in stages})


def test_a_stage_run_before_its_inputs_exist_says_which_stage_to_run_first(new_repo):
    repo = new_repo()
    expected = {
        "preprocess": "data/raw/classes.json not found: run `dvc repro download` first",
        "class_weights": "data/preprocessed/28 not found: run `dvc repro preprocess@28` first",
        "train": "data/preprocessed/28 not found: run `dvc repro preprocess@28` first",
        "evaluate": "models/model.json not found: run `dvc repro train` first",
    }
    for stage, result in in_repo(repo, expected).items():
        line = one_line_failure(result)
        assert line.startswith(f"{stage} failed: {expected[stage]}"), line


def test_train_size_outside_data_sizes_is_refused_before_anything_runs(new_repo, project_repo):
    repo = new_repo({"data.sizes": [28], "train.size": 64})
    result = run(repo, "dvc", "repro", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert "download failed: params.yaml: train.size 64 is not one of data.sizes [28]" in output
    assert not (repo / "data/raw").exists() and not (repo / "data/preprocessed").exists()

    # The usual case: a workspace that has run, then `-S train.size=64`. DVC used to delete
    # data/class_weights.json and fail on the missing data/preprocessed/64/train_labels.npy.
    kept = ("data/class_weights.json", "models/model.keras", "models/model.json")
    before = {name: (project_repo / name).read_bytes() for name in kept}
    set_params(project_repo, {"train.size": 64})
    result = run(project_repo, "dvc", "repro", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert "class_weights failed: params.yaml: train.size 64 is not one of data.sizes [28]" in output
    assert {name: (project_repo / name).read_bytes() for name in kept} == before  # nothing deleted
    assert ran_stages(result.stdout) == ["class_weights"]


def test_empty_data_sizes_is_refused_before_anything_runs(new_repo):
    repo = new_repo({"data.sizes": []})
    result = run(repo, "dvc", "repro", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "data.sizes" in output
    assert not (repo / "data/raw").exists()  # download no longer succeeds first
    # and run directly, every stage refuses it in one line
    for stage, result in in_repo(repo, COMMANDS).items():
        line = one_line_failure(result)
        assert line.startswith(f"{stage} failed: params.yaml: data.sizes: List should have at least 1 item")


def test_invalid_yaml_in_params_is_one_line_for_every_stage(new_repo):
    repo = new_repo()
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text() + "\ntrain: [unclosed\n")
    for stage, result in in_repo(repo, COMMANDS).items():
        line = one_line_failure(result)
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
            [sys.executable, *COMMANDS["download"]],
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
        line = one_line_failure(run(repo, sys.executable, *COMMANDS["download"], check=False))
        assert f"MedMNIST dataset {dataset!r} is {kind}" in line, line
    assert os.listdir(repo / "data") == ["images"]
