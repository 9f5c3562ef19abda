"""The pull-request workflow: its YAML, its small configuration, and the report it would post."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from bloodcells.core.params import DataParams, PreprocessParams, TrainParams, load_params
from tests.conftest import PROJECT, run, set_params

WORKFLOW = PROJECT / ".github/workflows/pr.yml"


def load_workflow() -> dict:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads a bare `on` as true
    return workflow


def test_the_workflow_runs_on_pull_requests_and_does_every_step_in_order():
    workflow = load_workflow()
    assert "pull_request" in workflow["on"]
    assert workflow["permissions"]["pull-requests"] == "write"
    steps = workflow["jobs"]["report"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@") and steps[0]["with"]["fetch-depth"] == 0
    commands = [step.get("run", "") for step in steps]
    order = [
        "git fetch --no-tags origin main:main",
        "./scripts/install.sh",
        "python -m pytest",
        "write_mirror(",
        "git worktree add",  # main, reproduced with the same small configuration
        "dvc exp run $SMALL",
        "python -m scripts.pr_report --base",
        "dvc plots diff",
        "cml comment update",
    ]
    positions = [next(i for i, c in enumerate(commands) if needle in c) for needle in order]
    assert positions == sorted(positions), dict(zip(order, positions, strict=True))
    assert any(step.get("uses", "").startswith("iterative/setup-cml@") for step in steps)


def test_the_small_configuration_is_small_and_valid_for_the_params_schema(tmp_path):
    """A renamed param would make `dvc exp run -S` fail in CI only; catch it here."""
    overrides = [arg for arg in shlex.split(load_workflow()["env"]["SMALL"]) if arg != "-S"]
    values = {key: yaml.safe_load(value) for key, value in (arg.split("=", 1) for arg in overrides)}
    assert values["data.sizes"] == [28] and values["train.epochs"] == 1
    shutil.copy(PROJECT / "params.yaml", tmp_path / "params.yaml")
    set_params(tmp_path, values)
    for group, cls in (("data", DataParams), ("train", TrainParams), ("preprocess", PreprocessParams)):
        load_params(group, cls, tmp_path / "params.yaml")  # raises on an unknown key


@pytest.mark.slow
def test_the_report_of_two_commits_shows_the_changed_metric_param_and_plots(two_commit_repo):
    repo = two_commit_repo

    report = run(repo, "python", "-m", "scripts.pr_report", "--base", "HEAD~1").stdout
    assert report.startswith("## Pipeline results against HEAD~1\n")
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in report.splitlines()]
    epochs = next(r for r in rows if r[:2] == ["metrics/evaluate/metrics.json", "epochs_run"])
    assert epochs[2:] == ["1", "2", "1"]
    assert next(r for r in rows if r[:2] == ["params.yaml", "train.epochs"])[2:] == ["1", "2"]
    assert "- Loss: `metrics/train/plots/metrics/train/loss.tsv`" in report
    assert "- `plots/evaluate/images/training.png`" in report  # listed, not embedded (issue #11 item 14)
    assert Path(repo / "plots/evaluate/images/training.png").is_file()

    same = run(repo, "python", "-m", "scripts.pr_report", "--base", "HEAD").stdout
    assert "No metric changed." in same and "No param changed." in same and "No plot changed." in same
    missing = run(repo, "python", "-m", "scripts.pr_report", "--base", "nope", check=False)
    assert missing.returncode == 1 and "unknown revision 'nope'" in missing.stderr
