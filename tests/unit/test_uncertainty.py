"""Bootstrap intervals, risk-coverage and the referral threshold, on hand-checkable data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from bloodcells.evaluation.uncertainty import (
    accuracy_at_coverage,
    aurc,
    bootstrap_intervals,
    curve_rows,
    metrics_of_confusions,
    observed_confusion,
    referral_threshold,
    resampled_confusions,
    risk_coverage,
    selective_summary,
)


def noisy_predictions(
    n: int, n_classes: int, accuracy: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions that are right with probability `accuracy`, wrong classes otherwise."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_classes, n)
    wrong = rng.random(n) > accuracy
    y_pred = np.where(wrong, (y_true + rng.integers(1, n_classes, n)) % n_classes, y_true)
    return y_true, y_pred


def test_resamples_keep_each_class_count_and_average_to_the_observed_confusion():
    y_true, y_pred = noisy_predictions(300, 4, 0.8)
    observed = observed_confusion(y_true, y_pred, 4)
    assert (observed == confusion_matrix(y_true, y_pred)).all()
    matrices = resampled_confusions(y_true, y_pred, 4, n_resamples=4000, seed=1)
    assert matrices.shape == (4000, 4, 4)
    assert (matrices.sum(axis=2) == observed.sum(axis=1)).all()  # every resample: each class's count
    assert (matrices[:, observed == 0] == 0).all()  # never a cell no image is in
    assert matrices.mean(axis=0) == pytest.approx(observed, abs=0.5)


def test_metrics_of_one_confusion_matrix_match_scikit_learn():
    y_true, y_pred = noisy_predictions(500, 5, 0.7)
    y_pred[y_pred == 4] = 3  # class 4 never predicted: its F1 is 0
    values = metrics_of_confusions(observed_confusion(y_true, y_pred, 6)[None])  # class 5 absent
    assert values["accuracy"][0] == pytest.approx(accuracy_score(y_true, y_pred))
    assert values["balanced_accuracy"][0] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    macro = f1_score(y_true, y_pred, labels=np.arange(6), average="macro", zero_division=0)
    assert values["macro_f1"][0] == pytest.approx(macro)


def test_intervals_contain_the_point_estimate_and_narrow_with_more_images():
    y_true, y_pred = noisy_predictions(400, 8, 0.9)
    small = bootstrap_intervals(y_true, y_pred, 8, n_resamples=1000, seed=42)
    large = bootstrap_intervals(np.tile(y_true, 16), np.tile(y_pred, 16), 8, n_resamples=1000, seed=42)
    points = {
        "accuracy": accuracy_score(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, average="macro"),
    }
    for name, point in points.items():
        assert small[name][0] < point < small[name][1], name
        assert large[name][0] < point < large[name][1], name
        ratio = (large[name][1] - large[name][0]) / (small[name][1] - small[name][0])
        assert 0.15 < ratio < 0.4, (name, ratio)  # 16x the images: about a quarter of the width
    # the accuracy interval is close to the binomial one, 1.96 * sqrt(p (1 - p) / n) either side
    half_width = 1.96 * np.sqrt(points["accuracy"] * (1 - points["accuracy"]) / 400)
    assert (small["accuracy"][1] - small["accuracy"][0]) / 2 == pytest.approx(half_width, rel=0.25)


def test_intervals_repeat_with_the_seed_and_change_with_another():
    y_true, y_pred = noisy_predictions(300, 4, 0.8)
    first = bootstrap_intervals(y_true, y_pred, 4, 500, seed=7)
    assert bootstrap_intervals(y_true, y_pred, 4, 500, seed=7) == first
    assert bootstrap_intervals(y_true, y_pred, 4, 500, seed=8) != first


CONFIDENCE = np.array([0.6, 0.9, 0.7, 0.8])
CORRECT = np.array([True, True, True, False])  # most confident first: right, wrong, right, right


def test_risk_coverage_and_its_area_on_four_images():
    coverage, risk = risk_coverage(CONFIDENCE, CORRECT)
    assert coverage.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert risk == pytest.approx([0, 1 / 2, 1 / 3, 1 / 4])
    assert aurc(CONFIDENCE, CORRECT) == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    assert accuracy_at_coverage(CONFIDENCE, CORRECT, 0.5) == 0.5
    assert accuracy_at_coverage(CONFIDENCE, CORRECT, 0.7) == pytest.approx(2 / 3)  # 3 images: ceil(2.8)
    assert accuracy_at_coverage(CONFIDENCE, CORRECT, 1.0) == 0.75
    rows = curve_rows(CONFIDENCE, CORRECT, points=4)
    assert [r["coverage"] for r in rows] == [0.25, 0.5, 0.75, 1.0]
    assert [r["risk"] for r in rows] == [0.0, 0.5, 0.333333, 0.25]
    assert [r["threshold"] for r in rows] == [0.9, 0.8, 0.7, 0.6]


def test_referral_threshold_answers_the_most_images_that_reach_the_target():
    confidence = np.array([0.99, 0.95, 0.9, 0.8, 0.7])
    correct = np.array([True, True, False, True, True])  # accuracy of the top k: 1, 1, 2/3, 3/4, 4/5
    assert referral_threshold(confidence, correct, 1.0) == 0.95
    assert referral_threshold(confidence, correct, 0.85) == 0.95
    assert referral_threshold(confidence, correct, 0.8) == 0.7  # all five: 4/5
    summary = selective_summary(confidence, correct, 0.95)
    assert summary == {"coverage": 0.4, "accuracy": 1.0, "referred": 3}


def test_equal_confidences_are_answered_or_referred_together_and_none_means_refer_all():
    confidence = np.array([0.9, 0.9, 0.8])
    correct = np.array([True, False, True])
    assert referral_threshold(confidence, correct, 1.0) is None  # the first 0.9 alone is no threshold
    summary = selective_summary(confidence, correct, None)
    assert summary["coverage"] == 0.0 and summary["referred"] == 3 and np.isnan(summary["accuracy"])
