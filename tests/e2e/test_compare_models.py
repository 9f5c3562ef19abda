"""scripts/compare_models.py: queue models as DVC experiments, run them, tabulate what exists."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run

pytestmark = pytest.mark.slow


def test_queueing_two_models_runs_them_and_renders_the_comparison(project_repo):
    """The committed run is `skip`: its queued twin changes nothing; `baseline` trains for real."""
    result = run(
        project_repo, "python", "-m", "scripts.compare_models", "--models", "baseline", "skip", "--poll", "1"
    )
    assert result.stdout.count("Queued experiment") == 2
    rows = json.loads(run(project_repo, "dvc", "exp", "show", "--json").stdout)
    experiments = [rev for row in rows for exp in row.get("experiments") or [] for rev in exp["revs"]]
    baseline = next(
        e for e in experiments if e["data"]["params"]["params.yaml"]["data"]["model"] == "baseline"
    )
    accuracy = baseline["data"]["metrics"]["metrics/evaluate/metrics.json"]["data"]["accuracy"]

    table = (project_repo / "plots/comparison/model_comparison.md").read_text().splitlines()
    body = {line.split("|")[2].strip(): line for line in table[2:] if line.startswith("|")}
    assert set(body) == {"baseline", "skip"}  # skip's experiment repeats the commit: one row
    assert body["baseline"].startswith(f"| {baseline['name']} | baseline | 0.243 |")
    assert f"| {accuracy:.4f} |" in body["baseline"]
    assert (project_repo / "plots/comparison/model_comparison.png").read_bytes().startswith(b"\x89PNG")
    again = run(project_repo, "python", "-m", "scripts.compare_models", "--render-only")
    assert "\n".join(table) in again.stdout

    unknown = run(project_repo, "python", "-m", "scripts.compare_models", "--models", "nope", check=False)
    assert unknown.returncode == 1 and "unknown model(s) ['nope']" in unknown.stderr
