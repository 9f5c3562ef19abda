"""The evaluate stage's trust figures from arrays, and the params that steer them."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from bloodcells.core.params import ParamsError, parse_params
from bloodcells.evaluation.calibration import matching_temperature
from bloodcells.evaluation.trust import trust_report
from bloodcells.model.temperature import fit_temperature
from tests.conftest import PROJECT

CLASSES = ["a", "b", "c"]


def scored(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and overconfident scores whose confidence tracks how often they are right."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    sure = rng.random(n)
    right = rng.random(n) < 0.3 + 0.7 * sure
    predicted = np.where(right, labels, (labels + 1) % 3)
    scores = np.full((n, 3), 0.02)
    scores[np.arange(n), predicted] = 0.5 + 0.46 * sure
    return labels, scores / scores.sum(axis=1, keepdims=True)


def report(target: float = 0.95, temperature: float = 1.5):
    y_true, scores = scored(600, seed=1)
    val_true, val_scores = scored(400, seed=2)
    return (
        y_true,
        scores,
        trust_report(y_true, scores, val_true, val_scores, CLASSES, temperature, 10, 200, 42, target),
    )


def test_the_report_holds_intervals_calibration_coverage_and_a_validation_chosen_referral():
    y_true, scores, trust = report()
    m = trust.metrics
    accuracy = float((scores.argmax(axis=1) == y_true).mean())
    assert m["accuracy_ci_lower"] <= accuracy <= m["accuracy_ci_upper"]
    assert m["bootstrap"]["resamples"] == 200 and m["temperature"] == 1.5
    assert m["coverage_90_accuracy"] > m["coverage_99_accuracy"] and m["coverage_90_accuracy"] > accuracy
    referral = m["referral"]
    assert referral["val_accuracy"] >= 0.95 and 0 < referral["val_coverage"] < 1
    assert m["referral_coverage"] == referral["test_coverage"]
    assert len(trust.predictions) == 600 and len(trust.risk_coverage) == 100
    assert len(trust.referrals) == referral["test_referred"] == round(600 * (1 - referral["test_coverage"]))
    confidences = [row["confidence"] for row in trust.referrals]
    assert confidences == sorted(confidences) and max(confidences) < referral["threshold"]
    assert sum(b["count"] for b in trust.calibration_scaled) == 600


def test_an_unreachable_target_refers_every_image():
    """The most confident validation image is wrong: no threshold reaches 100%: refer every image."""
    y_true, scores = scored(50, seed=3)
    val_true = np.array([0, 1])
    val_scores = np.array([[0.1, 0.9, 0.0], [0.2, 0.7, 0.1]])
    trust = trust_report(y_true, scores, val_true, val_scores, CLASSES, 1.0, 10, 200, 42, 1.0)
    assert trust.metrics["referral"]["threshold"] is None and trust.metrics["referral_coverage"] == 0.0
    assert [row["index"] for row in trust.referrals] != list(range(50))  # least confident first
    assert sorted(row["index"] for row in trust.referrals) == list(range(50))


def test_the_temperature_rescales_confidences_but_no_prediction():
    _, _, plain = report(temperature=1.0)
    _, _, softer = report(temperature=3.0)
    assert [r["predicted"] for r in plain.predictions] == [r["predicted"] for r in softer.predictions]
    assert softer.predictions[0]["confidence"] < plain.predictions[0]["confidence"]
    assert softer.metrics["accuracy_ci_lower"] == plain.metrics["accuracy_ci_lower"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "bootstrap_resamples",
            10,
            "evaluate.bootstrap_resamples: Input should be greater than or equal to 100",
        ),
        (
            "referral_target_accuracy",
            1.5,
            "evaluate.referral_target_accuracy: Input should be less than or equal",
        ),
        (
            "referral_target_accuracy",
            "high",
            "evaluate.referral_target_accuracy: Input should be a valid number",
        ),
    ],
)
def test_a_wrong_value_fails_in_one_line_naming_the_key(key, value, message):
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    assert parse_params(raw).evaluate.bootstrap_resamples == 1000  # the default
    raw["evaluate"][key] = value
    with pytest.raises(ParamsError) as error:
        parse_params(raw)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_card_temperature_serves_predictions_like_those_it_was_fitted_on_and_is_refitted_otherwise():
    val_true, val_scores = scored(400, seed=2)
    card = {"temperature": 0.7, "temperature_fit": {"split": "val", "views": 1}}
    assert matching_temperature(card, 1, val_scores, val_true) == (0.7, "model card (val, 1 view)")
    refitted, source = matching_temperature(card, 8, val_scores, val_true)
    assert source == "refitted on val at 8 views" and refitted == fit_temperature(val_scores, val_true)
    assert matching_temperature({}, 1, val_scores, val_true)[1] == "refitted on val at 1 view"
