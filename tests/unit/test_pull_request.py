"""The pull-request workflow: its YAML, its small configuration, and the report it would post."""

from __future__ import annotations

import shlex

import yaml

from tests.conftest import PROJECT, shipped_params

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


def test_the_small_configuration_is_small_and_valid_for_the_params_schema():
    """A renamed param would make `dvc exp run -S` fail in CI only; catch it here."""
    overrides = [arg for arg in shlex.split(load_workflow()["env"]["SMALL"]) if arg != "-S"]
    values = {key: yaml.safe_load(value) for key, value in (arg.split("=", 1) for arg in overrides)}
    assert values["data.sizes"] == [28] and values["train.epochs"] == 1
    params = shipped_params(values)  # raises ParamsError on an unknown key or a bad value
    assert params.data.sizes == [28] and params.train.epochs == 1
