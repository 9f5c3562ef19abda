"""The report the pull-request workflow posts, built from two real commits: metrics, params, plots and
the paired test of the two commits' per-image predictions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run

pytestmark = pytest.mark.slow


def test_the_report_of_two_commits_shows_the_changed_metric_param_and_plots(two_commit_repo):
    repo = two_commit_repo

    report = run(repo, "python", "-m", "scripts.pr_report", "--base", "HEAD~1").stdout
    assert report.startswith("## Pipeline results against HEAD~1\n")
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in report.splitlines()]
    assert any(r[:2] == ["metrics/evaluate/metrics.json", "accuracy"] for r in rows), report
    assert next(r for r in rows if r[:2] == ["params.yaml", "train.epochs"])[2:] == ["1", "2"]
    assert "- Loss: `metrics/train/plots/metrics/train/loss.tsv`" in report
    assert "- `plots/evaluate/images/training.png`" in report  # listed, not embedded
    assert Path(repo / "plots/evaluate/images/training.png").is_file()
    # the base commit's per-image predictions paired with the workspace's
    metrics = report.split("### Metrics", 1)[1].split("### Params", 1)[0]
    assert "Paired test: of 48 test images, " in metrics and "McNemar's exact p = " in metrics

    same = run(repo, "python", "-m", "scripts.pr_report", "--base", "HEAD").stdout
    assert "No metric changed." in same and "No param changed." in same and "No plot changed." in same
    missing = run(repo, "python", "-m", "scripts.pr_report", "--base", "nope", check=False)
    assert missing.returncode == 1 and "unknown revision 'nope'" in missing.stderr
