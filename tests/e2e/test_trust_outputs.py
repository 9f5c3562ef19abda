"""`dvc repro` on a temporary project writes the trust outputs: intervals, temperature, risk-coverage,
referrals and per-image predictions (the PR report's paired test of two commits' predictions:
tests/e2e/test_pull_request.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.chromium import find_chromium, render, scan
from tests.conftest import run

pytestmark = pytest.mark.slow

HEADLINE_CI_KEYS = {f"{m}_ci_{end}" for m in ("accuracy", "macro_f1") for end in ("lower", "upper")}
CI_KEYS = HEADLINE_CI_KEYS | {"balanced_accuracy_ci_lower", "balanced_accuracy_ci_upper"}  # report.json


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_repro_writes_the_card_temperature_and_every_trust_output(reproduced_repo):
    repo = reproduced_repo
    card = json.loads((repo / "models/model.json").read_text())
    assert 0.05 <= card["temperature"] <= 20 and card["temperature_fit"]["split"] == "val"
    headline = json.loads((repo / "metrics/evaluate/metrics.json").read_text())
    assert HEADLINE_CI_KEYS | {"ece_calibrated", "coverage_95_accuracy", "referral_coverage"} <= set(headline)
    assert headline["accuracy_ci_lower"] <= headline["accuracy"] <= headline["accuracy_ci_upper"]
    report = json.loads((repo / "metrics/evaluate/report.json").read_text())
    assert report["temperature_source"] == "refitted on val at 8 views"  # the card's is for 1 view
    assert 0.05 <= report["temperature"] <= 20
    assert {"ece", "ece_calibrated", "log_loss", "log_loss_calibrated", "aurc"} <= set(report)
    assert report["bootstrap"] == {
        "resamples": 1000,
        "level": 0.95,
        "seed": 42,
        "stratified_by": "class",
        "method": "percentile",
    }
    referral = report["referral"]
    assert referral["target_accuracy"] == 0.999 and set(referral) >= {
        "threshold",
        "val_coverage",
        "test_coverage",
    }

    plots = repo / "plots/evaluate"
    predictions = read_csv(plots / "predictions.csv")
    assert list(predictions[0]) == ["index", "true", "predicted", "confidence"] and len(predictions) == 48
    assert sum(r["true"] == r["predicted"] for r in predictions) == round(48 * headline["accuracy"])
    referrals = read_csv(plots / "referrals.csv")
    assert len(referrals) == referral["test_referred"]
    curve = read_csv(plots / "risk_coverage.csv")
    assert list(curve[0]) == ["coverage", "risk", "accuracy", "threshold"] and curve[-1]["coverage"] == "1.0"
    assert float(curve[-1]["risk"]) == pytest.approx(1 - headline["accuracy"], abs=1e-6)
    assert sum(int(b["count"]) for b in read_csv(plots / "calibration_temperature_scaled.csv")) == 48
    for image in ("risk_coverage", "calibration"):
        assert (plots / "images" / f"{image}.png").read_bytes().startswith(b"\x89PNG")
    shown = json.loads(run(repo, "dvc", "plots", "show", "--json").stdout)["data"]
    assert "Risk-coverage (selective prediction)" in shown
    files = {row["filename"] for row in shown["Calibration (reliability)"][0]["content"]["data"]["values"]}
    assert files == {"calibration.csv", "calibration_temperature_scaled.csv"}
    assert "accuracy_ci_lower" in run(repo, "dvc", "metrics", "show", "--md").stdout


def test_the_new_plots_render_offline(reproduced_repo, tmp_path):
    """Risk-coverage, and the reliability diagram with its dashed temperature-scaled curve, draw lines."""
    browser = find_chromium()
    if browser is None:
        pytest.skip("Chromium absent (Debian: apt-get install chromium): the page was not loaded")
    run(reproduced_repo, "dvc", "plots", "show", "-o", str(tmp_path / "show"))
    dom, console = render(browser, tmp_path / "show/index.html")
    marks = scan(dom).marks
    for plot_id in (
        "Risk-coverage__selective_prediction_",
        "Calibration__reliability_",
    ):  # ids as dvc writes them
        assert {"svg", "mark-line"} <= marks.get(plot_id, set()), (plot_id, marks.get(plot_id))
    assert not [line for line in console if "error" in line.lower()]
