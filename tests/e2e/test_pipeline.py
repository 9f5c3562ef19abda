"""End to end: real `dvc` commands on a temporary copy of the project fed by a synthetic mirror."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ran_stages, run, set_params
from tests.stage_failures import assert_all_json_strict

pytestmark = pytest.mark.slow

ALL_STAGES = ["download", "preprocess@28", "class_weights", "train", "evaluate", "export"]


def test_first_repro_runs_every_stage_and_second_runs_none(first_repro, project_repo):
    """The session's first `dvc repro` (tests/conftest.py) ran every stage; a second, on a copy, none."""
    repo = first_repro.repo
    assert sorted(ran_stages(first_repro.output)) == sorted(ALL_STAGES)
    metrics = json.loads((repo / "metrics/evaluate/metrics.json").read_text())
    assert {"accuracy", "accuracy_ci_lower", "accuracy_ci_upper", "macro_f1", "auc", "ece"} <= set(metrics)
    report = json.loads((repo / "metrics/evaluate/report.json").read_text())
    expected = {"accuracy", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1", "auc"}
    assert expected <= set(report) and set(metrics) < set(report)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert (repo / "models/model.keras").stat().st_size > 0
    assert (repo / "plots/evaluate/confusion.csv").read_text().startswith("actual,predicted\n")

    second = run(project_repo, "dvc", "repro")
    assert ran_stages(second.stdout) == []
    assert "Data and pipelines are up to date" in second.stdout


def test_changing_epochs_reruns_only_train_and_evaluate(second_commit):
    """The session's second commit (tests/conftest.py) is `train.epochs: 2` on the reproduced repo."""
    assert ran_stages(second_commit.output) == ["train", "evaluate", "export"]
    repo = second_commit.repo
    assert json.loads((repo / "metrics/train/metrics.json").read_text())["epochs_run"] == 2
    assert json.loads((repo / "metrics/evaluate/report.json").read_text())["epochs_run"] == 2


def test_a_new_size_runs_only_its_own_chain(project_repo):
    """Adding 64 px fetches and preprocesses only that size; training stays put.

    class_weights depends on the whole data/preprocessed folder (so that a `train.size` outside
    `data.sizes` is refused by our one line before DVC deletes its output), so it re-runs, writes
    byte-identical weights, and DVC stops there.
    """
    set_params(project_repo, {"data.sizes": [28, 64]})
    ran = ran_stages(run(project_repo, "dvc", "repro").stdout)
    assert ran == ["download", "preprocess@64", "class_weights"]
    assert (project_repo / "data/preprocessed/64/train_images.npy").exists()


def test_a_preprocess_param_reruns_preprocessing_and_stops_where_outputs_are_identical(project_repo):
    """Synthetic data has no duplicates, so dropping them rewrites byte-identical arrays: DVC stops there."""
    before = (project_repo / "data/preprocessed/28/train_images.npy").read_bytes()
    set_params(project_repo, {"preprocess.drop_cross_split_duplicates": True})
    assert ran_stages(run(project_repo, "dvc", "repro").stdout) == ["preprocess@28"]
    assert (project_repo / "data/preprocessed/28/train_images.npy").read_bytes() == before


def test_metrics_diff_between_two_commits_shows_the_changed_accuracy(two_commit_repo):
    """One and two epochs, committed one after the other (tests/conftest.py)."""
    repo = two_commit_repo
    before = json.loads(run(repo, "git", "show", "HEAD~1:metrics/evaluate/metrics.json").stdout)["accuracy"]
    after = json.loads((repo / "metrics/evaluate/metrics.json").read_text())["accuracy"]
    diff = json.loads(run(repo, "dvc", "metrics", "diff", "HEAD~1", "HEAD", "--all", "--json").stdout)
    change = diff["metrics/evaluate/metrics.json"]["accuracy"]
    assert change["old"] == pytest.approx(before) and change["new"] == pytest.approx(after)
    # the headline figures and the train stage's summary, not report.json's every figure
    assert set(diff) == {"metrics/evaluate/metrics.json", "metrics/train/metrics.json"}
    assert diff["metrics/train/metrics.json"]["epochs_run"] == {"old": 1, "new": 2, "diff": 1}
    table = run(repo, "dvc", "metrics", "diff", "HEAD~1", "--all", "--md").stdout  # against the workspace
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines() if line]
    accuracy_row = next(row for row in rows if row[:2] == ["metrics/evaluate/metrics.json", "accuracy"])
    assert float(accuracy_row[2]) == pytest.approx(before, abs=1e-5)
    assert float(accuracy_row[3]) == pytest.approx(after, abs=1e-5)


def test_every_json_file_of_a_reproduced_repo_is_strict_json(reproduced_repo):
    assert assert_all_json_strict(reproduced_repo) >= 6  # raw, preprocessed, weights, model card, metrics
