"""A reproduced project repo: divergence, Ctrl-C in training,
evaluate's refusals and faults (nothing half-written), unloadable models, absent classes, CJK names."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import dvc_env, interruptible, run, set_params

pytestmark = pytest.mark.slow

EVALUATE = [sys.executable, "-m", "stages.evaluate"]
EVAL_OUTPUTS = ("metrics/evaluate", "plots/evaluate")


def one_line_failure(result: subprocess.CompletedProcess, status: int = 1) -> str:
    """The single line a failed stage printed last on stderr (asserting there is no traceback)."""
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()][-1]


def refuse_constant(name: str) -> float:
    raise ValueError(f"not strict JSON: {name}")


def assert_all_json_strict(repo: Path) -> int:
    """Every JSON file the pipeline wrote parses as strict JSON (no NaN, Infinity); returns how many."""
    files = [p for p in repo.rglob("*.json") if not {".git", ".dvc"} & set(p.relative_to(repo).parts)]
    for path in files:
        json.loads(path.read_text(), parse_constant=refuse_constant)
    return len(files)


def test_every_json_file_of_a_reproduced_repo_is_strict_json(project_repo):
    assert assert_all_json_strict(project_repo) >= 6  # raw, preprocessed, weights, model card, metrics


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


def output_bytes(repo: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(repo)): p.read_bytes()
        for folder in EVAL_OUTPUTS
        for p in sorted((repo / folder).rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("key", "value"),
    [("calibration_bins", 0), ("samples_per_class", 0), ("mistakes", -1)],
)
def test_a_bad_evaluate_param_is_refused_before_any_work(project_repo, key, value):
    before = output_bytes(project_repo)
    assert "metrics/evaluate/metrics.json" in before
    set_params(project_repo, {f"evaluate.{key}": value})
    line = one_line_failure(run(project_repo, *EVALUATE, check=False))
    assert line.startswith(f"evaluate failed: params.yaml: evaluate.{key}: ") and f"(got {value})" in line
    assert output_bytes(project_repo) == before  # refused before anything was touched


def test_a_failure_halfway_through_evaluate_leaves_none_of_its_outputs(project_repo):
    repo = project_repo
    curve = repo / "metrics/train/plots/metrics/train/loss.tsv"
    curve.write_text("step\tloss\n0\tbanana\n")  # read after the tables are written, before the figures
    line = one_line_failure(run(repo, *EVALUATE, check=False))
    assert line.startswith(f"evaluate failed: {curve.relative_to(repo)}: not dvclive's step/loss table"), line
    for folder in EVAL_OUTPUTS:
        assert not (repo / folder).exists(), folder
        assert not (repo / folder).with_name(f".{Path(folder).name}.staging").exists()


def test_a_truncated_model_file_is_named_as_truncated_not_missing(project_repo):
    model = project_repo / "models/model.keras"
    model.write_bytes(model.read_bytes()[:5000])
    line = one_line_failure(run(project_repo, *EVALUATE, check=False))
    assert "models/model.keras: not a complete .keras archive (5000 bytes: truncated?)" in line, line
    assert "File not found" not in line


def test_a_model_holding_code_is_refused_in_one_line(project_repo, tmp_path):
    script = (
        "import keras\n"
        "model = keras.Sequential([keras.Input((28, 28, 3)), keras.layers.Lambda(lambda x: x * 1.0),\n"
        "    keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(8, activation='softmax')])\n"
        "model.save('models/model.keras')\n"
    )
    run(project_repo, sys.executable, "-c", script)
    line = one_line_failure(run(project_repo, *EVALUATE, check=False))
    assert "models/model.keras: refused: the file holds Python code (e.g. a Lambda layer)" in line, line


def test_absent_classes_are_named_and_cjk_class_names_are_drawn_or_noted(project_repo):
    """Items 3 and 12 in one evaluate run: the last class removed from the test split, CJK names."""
    repo = project_repo
    card_path, folder = repo / "models/model.json", repo / "data/preprocessed/28"
    card = json.loads(card_path.read_text())
    card["classes"] = [f"细胞{i}" for i in range(len(card["classes"]))]
    card_path.write_text(json.dumps(card))
    labels = np.load(folder / "test_labels.npy")
    keep = labels != len(card["classes"]) - 1
    np.save(folder / "test_labels.npy", labels[keep])
    np.save(folder / "test_images.npy", np.load(folder / "test_images.npy")[keep])

    result = run(repo, *EVALUATE)
    absent = card["classes"][-1]
    assert f"warning: class(es) ['{absent}'] have no test images" in result.stdout
    assert "missing from font" not in result.stderr  # no name drawn as boxes
    report = json.loads((repo / "metrics/evaluate/report.json").read_text(), parse_constant=refuse_constant)
    assert report["absent_classes"] == [absent]
    per_class = json.loads((repo / "metrics/evaluate/per_class.json").read_text())
    assert [row["class"] for row in per_class] == card["classes"]  # real names in the data files
    assert (repo / "plots/evaluate/images/confusion.png").stat().st_size > 0
