"""Models through the real pipeline: `dvc exp run -S model=<name>`, `dvc exp show`, `bloodcells exps`,
scripts/compare_models.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from bloodcells.architectures import create_model, list_models
from tests.conftest import dvc_env, ran_stages, run, set_params

pytestmark = pytest.mark.slow

# The README's `-S model=baseline`, beside the shared repo's `skip` (a multi-branch model). Every
# registered model also trains a step and reloads (tests/e2e/test_model_zoo.py), and Grad-CAM runs on
# every conv model (tests/unit/test_report_figures.py), so the pipeline needs no run per family.
EXPERIMENTS = ("baseline",)


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


class ModelExperiments(NamedTuple):
    repo: Path
    outputs: dict[str, str]  # what each `dvc exp run` printed
    parameters: dict[str, int]  # each experiment's report.json `parameters`


@pytest.fixture(scope="module")
def model_experiments(tmp_path_factory, reproduced_repo) -> ModelExperiments:
    """A copy of the reproduced repo (model `skip`) with one `dvc exp run -S model=<name>` per EXPERIMENTS."""
    repo = tmp_path_factory.mktemp("model_experiments") / "repo"
    shutil.copytree(reproduced_repo, repo, symlinks=True)
    outputs, parameters = {}, {}
    for model in EXPERIMENTS:
        outputs[model] = run(repo, "dvc", "exp", "run", "-n", f"zoo-{model}", "-S", f"model={model}").stdout
        parameters[model] = json.loads((repo / "metrics/evaluate/report.json").read_text())["parameters"]
    return ModelExperiments(repo, outputs, parameters)


def test_other_models_run_as_experiments_listed_by_exp_show(model_experiments):
    """`dvc exp run -S model=<name>` trains, evaluates and exports that model; `dvc exp show` lists it."""
    for model in EXPERIMENTS:
        assert ran_stages(model_experiments.outputs[model]) == ["train", "evaluate", "export"]
    shown = experiments(json.loads(run(model_experiments.repo, "dvc", "exp", "show", "--json").stdout))
    assert set(shown) == {f"zoo-{model}" for model in EXPERIMENTS}
    for model in EXPERIMENTS:
        params, metrics = shown[f"zoo-{model}"]
        assert params["model"] == model
        assert 0.0 <= metrics["accuracy"] <= 1.0
        assert model_experiments.parameters[model] == create_model(model, (28, 28, 3), 8).count_params()


def test_the_accuracy_benchmark_reads_each_named_experiments_metrics(model_experiments, monkeypatch):
    """scripts/bench/accuracy.py's report: the metrics files of the experiments it ran, by name."""
    from scripts.bench.accuracy import METRICS, TRAIN_METRICS, named_metrics

    monkeypatch.chdir(model_experiments.repo)
    rows = named_metrics({"zoo-baseline", "no-such-experiment"})
    assert set(rows) == {"zoo-baseline"}
    for name, metrics in rows.items():
        assert 0 <= metrics[METRICS]["accuracy"] <= 1, name
        assert metrics[TRAIN_METRICS]["epochs_run"] >= 1, name


def test_exps_fits_the_experiments_in_120_columns_every_column_whole(model_experiments):
    """`bloodcells exps`: the params that differ and three headline metrics; `--all`, every column."""
    repo = model_experiments.repo
    env = {**dvc_env(), "COLUMNS": "120"}
    narrow = subprocess.run(
        ["bloodcells", "exps", "--no-pager"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert narrow.returncode == 0, narrow.stderr
    lines = narrow.stdout.splitlines()
    header = next(line for line in lines if "Experiment" in line).split()
    assert header == ["Experiment", "accuracy", "ece_calibrated", "macro_f1", "model"], narrow.stdout
    assert "…" not in narrow.stdout and max(map(len, lines)) <= 120, narrow.stdout
    full = run(repo, "bloodcells", "exps", "--all", "--csv").stdout.splitlines()[0].split(",")
    assert {"accuracy_ci_lower", "Created", "stages/train.py"} <= set(full) and len(full) > 100


def test_compare_models_queues_a_model_and_tabulates_every_experiment(model_experiments):
    """scripts/compare_models.py queues one experiment per model, runs the queue, and tabulates every
    experiment the repo holds. The queued twin repeats `zoo-baseline` (the run cache gives it back),
    and rows with the same params and metrics are one. (A queued run that trains:
    tests/e2e/test_experiments.py.)"""
    repo = model_experiments.repo
    result = run(repo, "python", "-m", "scripts.compare_models", "--models", "baseline", "--poll", "1")
    assert result.stdout.count("Queued experiment") == 1
    shown = experiments(json.loads(run(repo, "dvc", "exp", "show", "--json").stdout))
    assert len(shown) == len(EXPERIMENTS) + 1

    table = (repo / "plots/comparison/model_comparison.md").read_text().splitlines()
    body = {line.split("|")[2].strip(): line for line in table[2:] if line.startswith("|")}
    assert set(body) == {*EXPERIMENTS, "skip"}
    baseline = body["baseline"].split("|")[1].strip()
    params, metrics = shown[baseline]
    assert params["model"] == "baseline"
    assert body["baseline"].startswith(f"| {baseline} | baseline | 0.243 |")
    assert f"| {metrics['accuracy']:.4f} |" in body["baseline"]
    assert (repo / "plots/comparison/model_comparison.png").read_bytes().startswith(b"\x89PNG")
    again = run(repo, "python", "-m", "scripts.compare_models", "--render-only")
    assert "\n".join(table) in again.stdout

    unknown = run(repo, "python", "-m", "scripts.compare_models", "--models", "nope", check=False)
    assert unknown.returncode == 1 and "unknown model(s) ['nope']" in unknown.stderr


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
