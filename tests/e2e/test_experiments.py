"""DVC experiments on the real pipeline: the run cache restores a trained configuration, a `runtime`
key changes the train stage only, and queued experiments resolve a relative `data.mirror` against the
project root."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ran_stages, run, set_params

pytestmark = pytest.mark.slow


def digest(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_going_back_to_a_trained_configuration_restores_it_from_the_run_cache(project_repo):
    """A (the committed run, seed 42: `dvc repro` fills the run cache too), then B (another seed and a
    `runtime` key, each given with `-S`), then A again: the third run trains nothing and gives back the
    first run's model. (Experiments of the train stage alone: the stages after it are cached alike.)"""
    assert shipped_seed(project_repo) == 42
    model_a, card_a = (
        digest(project_repo / "models/model.keras"),
        (project_repo / "models/model.json").read_text(),
    )
    curves_a = (project_repo / "metrics/train/plots/metrics/val/loss.tsv").read_text()

    other = run(project_repo, "dvc", "exp", "run", "train", "-S", "seed=43", "-S", "runtime.jit_compile=off")
    assert ran_stages(other.stdout) == ["train"], other.stdout
    assert digest(project_repo / "models/model.keras") != model_a
    card = json.loads((project_repo / "models/model.json").read_text())
    assert card["runtime"]["jit_compile"] in ("off", False)  # YAML reads a bare off as false

    again = run(project_repo, "dvc", "exp", "run", "train", "-S", "seed=42", "-S", "runtime.jit_compile=auto")
    assert "Running stage 'train'" not in again.stdout, again.stdout
    assert "Stage 'train' is cached - skipping run, checking out outputs" in again.stdout
    assert digest(project_repo / "models/model.keras") == model_a
    assert (project_repo / "models/model.json").read_text() == card_a
    assert (project_repo / "metrics/train/plots/metrics/val/loss.tsv").read_text() == curves_a


def test_a_runtime_key_alone_changes_the_train_stage_only(project_repo):
    """The hardware keys are the `runtime` group, which the train stage (and only it) depends on."""
    set_params(project_repo, {"runtime.jit_compile": "off"})
    status = json.loads(run(project_repo, "dvc", "status", "--json").stdout)
    assert status == {"train": [{"changed deps": {"params.yaml": {"runtime": "modified"}}}]}, status


def shipped_seed(repo: Path) -> int:
    return yaml.safe_load((repo / "params.yaml").read_text())["seed"]


def queue_done(repo: Path) -> str:
    """`dvc queue status` once nothing is queued or running (fails after 10 minutes)."""
    deadline = time.time() + 600
    while True:
        status = run(repo, "dvc", "queue", "status").stdout
        if not any(word in status for word in ("Queued", "Running")):
            return status
        assert time.time() < deadline, status
        time.sleep(2)


def test_a_queued_experiment_finds_a_mirror_given_relative_to_the_project_root(
    project_repo, synthetic_mirror
):
    """The queue runs the pipeline in a copy under .dvc/tmp/exps/, where `../x` would point elsewhere."""
    mirror = os.path.relpath(synthetic_mirror, project_repo)
    assert mirror.startswith("..")
    queued = run(
        project_repo, "dvc", "exp", "run", "--queue", "-n", "relative-mirror", "-S", f"data.mirror={mirror}"
    )
    assert "Queued experiment" in queued.stdout
    run(project_repo, "dvc", "queue", "start")
    status = queue_done(project_repo)
    logs = run(project_repo, "dvc", "queue", "logs", "relative-mirror", check=False)
    assert "Success" in status and "Failed" not in status, status + logs.stdout + logs.stderr
    assert "Running stage 'download'" in logs.stdout, logs.stdout
    assert "fetched from file://" in logs.stdout or "present, md5" in logs.stdout

    rows = json.loads(run(project_repo, "dvc", "exp", "show", "--json").stdout)
    experiments = [rev for row in rows for exp in row.get("experiments") or [] for rev in exp["revs"]]
    (experiment,) = [rev for rev in experiments if rev.get("name") == "relative-mirror"]
    data = experiment["data"]
    assert data["params"]["params.yaml"]["data"]["data"]["mirror"] == mirror
    metrics = data["metrics"]["metrics/evaluate/metrics.json"]["data"]
    assert 0.0 <= metrics["accuracy"] <= 1.0
