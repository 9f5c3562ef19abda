"""The model zoo through the real pipeline: `dvc exp run -S model=<name>` for one model of each family."""

from __future__ import annotations

import json
import sys

import pytest

from bloodcells.architectures import create_model, list_models
from tests.conftest import ran_stages, run, set_params

pytestmark = pytest.mark.slow

# One model per family, with the -S overrides it needs here (no network: no ImageNet weights).
FAMILY_MODELS = {
    "inception": {},
    "unet_encoder": {},
    "resnet18": {"models.resnet18.small_stem": "true"},
    "efficientnet_b0": {"models.efficientnet_b0.weights": "none"},
}


def experiments(show: list[dict]) -> dict[str, tuple[dict, dict]]:
    """{experiment name: (params.yaml params, merged metrics)} from `dvc exp show --json`."""
    found = {}
    for baseline in show:
        for experiment in baseline.get("experiments") or []:
            for rev in experiment["revs"]:
                data = rev.get("data") or {}
                params = data.get("params", {}).get("params.yaml", {}).get("data", {})
                metrics = {}
                for values in data.get("metrics", {}).values():
                    metrics.update(values.get("data", {}))
                found[rev.get("name") or data.get("name")] = (params, metrics)
    return found


def test_one_model_of_each_family_runs_as_an_experiment(project_repo):
    parameters = {}
    for model, overrides in FAMILY_MODELS.items():
        settings = [arg for key, value in overrides.items() for arg in ("-S", f"{key}={value}")]
        result = run(
            project_repo, "dvc", "exp", "run", "-n", f"zoo-{model}", "-S", f"model={model}", *settings
        )
        assert ran_stages(result.stdout) == ["train", "evaluate", "export"], result.stdout
        report = json.loads((project_repo / "metrics/evaluate/report.json").read_text())
        parameters[model] = report["parameters"]

    shown = experiments(json.loads(run(project_repo, "dvc", "exp", "show", "--json").stdout))
    for model in FAMILY_MODELS:
        params, metrics = shown[f"zoo-{model}"]
        assert params["model"] == model
        assert 0.0 <= metrics["accuracy"] <= 1.0
        hparams = {**params["models"][model], "weights": None} if model == "efficientnet_b0" else None
        assert parameters[model] == create_model(model, (28, 28, 3), 8, hparams=hparams).count_params()


def test_one_models_settings_do_not_rerun_another(project_repo):
    """The train stage depends on models.<model> only: the reproduced repo trains `skip`. (That DVC runs the
    stages downstream of a changed one is tested in tests/e2e/test_pipeline.py.)"""
    set_params(project_repo, {"models.inception.dropout": 0.1})
    assert ran_stages(run(project_repo, "dvc", "repro").stdout) == []
    set_params(project_repo, {"models.skip.dropout": 0.1})  # what `dvc repro` would run now (not run here)
    status = json.loads(run(project_repo, "dvc", "status", "--json").stdout)
    assert status == {"train": [{"changed deps": {"params.yaml": {"models.skip": "modified"}}}]}, status


def test_an_unknown_model_fails_clearly(project_repo):
    """DVC itself stops at the missing models.<name> entry; the train stage lists the known models."""
    result = run(project_repo, "dvc", "exp", "run", "-S", "model=resnet9000", check=False)
    assert result.returncode != 0
    assert "Parameters 'models.resnet9000' are missing from 'params.yaml'" in result.stderr + result.stdout

    set_params(project_repo, {"model": "resnet9000"})
    result = run(project_repo, sys.executable, "-m", "stages.train", check=False)
    assert result.returncode == 1
    assert "train failed: params.yaml: model 'resnet9000' has no models.resnet9000 group" in result.stderr
    set_params(project_repo, {"+models.resnet9000": {}})
    result = run(project_repo, sys.executable, "-m", "stages.train", check=False)
    assert result.returncode == 1
    assert (
        "train failed: Unknown model 'resnet9000'. Known models: " + ", ".join(list_models()) in result.stderr
    )
