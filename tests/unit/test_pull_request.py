"""The pull-request workflow: its YAML, its small configuration, and the report it would post."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import yaml

from scripts.pr_report import IMAGES_ARTIFACT, plots_section
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


# The report publishes nothing by default; a fork's PR does not fail.
OPT_IN = "vars.PR_REPORT_PUBLISH_IMAGES == 'true'"


def steps() -> list[dict]:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]["report"]["steps"]


def test_the_workflow_publishes_images_only_when_the_repository_opts_in():
    publishing = [step for step in steps() if "--publish" in step.get("run", "")]
    assert publishing, "the opt-in publishing step is gone"
    for step in publishing:
        assert OPT_IN in step["if"], step["name"]
        assert "--embed-images" in step["run"]
    default = [step for step in steps() if "cml comment" in step.get("run", "") and step not in publishing]
    assert len(default) == 1 and "!= 'true'" in default[0]["if"]
    assert default[0]["run"].split()[-1] == "report.md"  # the report pr_report wrote without images


def test_the_images_are_kept_as_a_workflow_artifact():
    upload = [step for step in steps() if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert len(upload) == 1 and upload[0]["with"]["name"] == IMAGES_ARTIFACT
    paths = upload[0]["with"]["path"].split()
    assert "plots/evaluate/images" in paths and "report.md" in paths


def test_a_pull_request_from_a_fork_skips_the_comment_instead_of_failing():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    same_repository = "github.event.pull_request.head.repo.full_name == github.repository"
    assert same_repository in workflow["env"]["CAN_COMMENT"]
    for step in steps():
        if "cml" in step.get("run", "") or "setup-cml" in step.get("uses", ""):
            assert "env.CAN_COMMENT == 'true'" in step["if"], step
        if "cml comment" in step.get("run", ""):
            assert step["continue-on-error"] is True  # a failed comment never fails the check


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_the_report_lists_changed_images_by_path_and_embeds_them_only_when_asked(tmp_path, monkeypatch):
    image = tmp_path / "plots/evaluate/images/confusion.png"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"\x89PNG one")
    git(tmp_path, "init", "-q")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    image.write_bytes(b"\x89PNG two")
    monkeypatch.chdir(tmp_path)
    definitions = {"plots/evaluate/images": ["plots/evaluate/images"]}

    default = plots_section(definitions, "HEAD")
    assert "![" not in default and "](" not in default  # nothing a publisher would upload
    assert "- `plots/evaluate/images/confusion.png`" in default and IMAGES_ARTIFACT in default

    embedded = plots_section(definitions, "HEAD", embed_images=True)
    assert "![plots/evaluate/images/confusion.png](plots/evaluate/images/confusion.png)" in embedded
