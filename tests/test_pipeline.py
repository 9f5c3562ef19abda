"""End to end: real `dvc` commands on a temporary copy of the project fed by a synthetic mirror."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ran_stages, run, set_params

pytestmark = pytest.mark.slow

ALL_STAGES = ["download", "preprocess@28", "class_weights", "train", "evaluate"]


def test_first_repro_runs_every_stage_and_second_runs_none(new_repo):
    repo = new_repo()
    first = run(repo, "dvc", "repro")
    assert sorted(ran_stages(first.stdout)) == sorted(ALL_STAGES)
    metrics = json.loads((repo / "metrics/evaluate/metrics.json").read_text())
    expected = {"accuracy", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1", "auc"}
    assert expected <= set(metrics)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert (repo / "models/model.keras").stat().st_size > 0
    assert (repo / "plots/evaluate/confusion.csv").read_text().startswith("actual,predicted\n")

    second = run(repo, "dvc", "repro")
    assert ran_stages(second.stdout) == []
    assert "Data and pipelines are up to date" in second.stdout


def test_changing_epochs_reruns_only_train_and_evaluate(project_repo):
    set_params(project_repo, {"train.epochs": 2})
    assert ran_stages(run(project_repo, "dvc", "repro").stdout) == ["train", "evaluate"]
    assert json.loads((project_repo / "metrics/train/metrics.json").read_text())["epochs_run"] == 2


def test_a_new_size_runs_only_its_own_chain(project_repo):
    """Adding 64 px fetches and preprocesses only that size; the 28 px chain and training stay put."""
    set_params(project_repo, {"data.sizes": [28, 64]})
    ran = ran_stages(run(project_repo, "dvc", "repro").stdout)
    assert ran == ["download", "preprocess@64"]
    assert (project_repo / "data/preprocessed/64/train_images.npy").exists()


def test_a_preprocess_param_reruns_preprocessing_and_stops_where_outputs_are_identical(project_repo):
    """Synthetic data has no duplicates, so dropping them rewrites byte-identical arrays: DVC stops there."""
    before = (project_repo / "data/preprocessed/28/train_images.npy").read_bytes()
    set_params(project_repo, {"preprocess.drop_cross_split_duplicates": True})
    assert ran_stages(run(project_repo, "dvc", "repro").stdout) == ["preprocess@28"]
    assert (project_repo / "data/preprocessed/28/train_images.npy").read_bytes() == before
