"""Sharing a project through remotes: a bare git repository for code and experiments, a local-folder
DVC remote for data and models (the same commands as S3, GCS or SSH remotes)."""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ran_stages, run

pytestmark = pytest.mark.slow  # real dvc pipelines on temporary repos

SHARED = ("models/model.keras", "models/model.json", "metrics/evaluate/metrics.json", "dvc.lock")
EXPERIMENT = "shared-exp"


def same_tree(a: Path, b: Path) -> bool:
    """Every file under `a` exists under `b` with the same bytes, and the other way round."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all(filecmp.cmp(a / f, b / f, shallow=False) for f in files_a)


def find_experiment(node, name: str):
    """The entry named `name` anywhere in `dvc exp show --json` output."""
    if isinstance(node, dict):
        if node.get("name") == name and "data" in node:
            return node
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            if (found := find_experiment(child, name)) is not None:
                return found
    return None


def test_push_then_pull_in_a_fresh_clone_reproduces_nothing(reproduced_repo, tmp_path):
    origin, storage = tmp_path / "origin.git", tmp_path / "dvc-storage"
    run(tmp_path, "git", "init", "-q", "--bare", "-b", "main", str(origin))  # its HEAD: the branch pushed
    first = tmp_path / "first"
    shutil.copytree(reproduced_repo, first, symlinks=True)
    run(first, "git", "remote", "add", "origin", str(origin))
    run(first, "dvc", "remote", "add", "-d", "shared", str(storage))
    run(first, "git", "commit", "-qam", "the team's DVC remote")
    run(first, "git", "push", "-q", "origin", "HEAD:main")
    run(first, "dvc", "push")

    second = tmp_path / "second"
    run(tmp_path, "git", "clone", "-q", "-b", "main", str(origin), str(second))
    assert not (second / "models" / "model.keras").exists()
    run(second, "dvc", "pull")
    for name in SHARED:
        assert filecmp.cmp(first / name, second / name, shallow=False), name
    assert same_tree(first / "models" / "export", second / "models" / "export")
    assert same_tree(first / "data" / "preprocessed", second / "data" / "preprocessed")
    assert "Data and pipelines are up to date" in run(second, "dvc", "status").stdout
    assert ran_stages(run(second, "dvc", "repro").stdout) == []

    # The model registry's way in: a version registered as a GTO tag, fetched by artifact name.
    run(first, "git", "tag", "-a", "bloodcell-classifier@v0.1.0", "-m", "Registering version v0.1.0")
    run(first, "git", "push", "-q", "origin", "--tags")
    run(tmp_path, "dvc", "artifacts", "get", str(origin), "bloodcell-classifier", "-o", str(tmp_path / "got"))
    assert same_tree(first / "models" / "export", tmp_path / "got")

    # An experiment run in one clone, shared through the git remote, shown in the other.
    # (an evaluate-only change: what is shared does not depend on which stages ran)
    exp = run(first, "dvc", "exp", "run", "-n", EXPERIMENT, "-S", "evaluate.tta_views=1")
    assert ran_stages(exp.stdout)[:1] == ["evaluate"] and "train" not in ran_stages(exp.stdout)
    run(first, "dvc", "exp", "push", "origin", EXPERIMENT)
    run(second, "dvc", "exp", "pull", "origin", EXPERIMENT)
    shown = find_experiment(json.loads(run(second, "dvc", "exp", "show", "--json").stdout), EXPERIMENT)
    assert shown is not None, "the pulled experiment is not listed"
    metrics = shown["data"]["metrics"]["metrics/evaluate/metrics.json"]["data"]
    assert 0.0 <= metrics["accuracy"] <= 1.0 and "macro_f1" in metrics
    assert shown["data"]["params"]["params.yaml"]["data"]["evaluate"]["tta_views"] == 1
