"""The figures that say how far to trust the test metrics, from arrays: intervals, calibration, referral.

Confidences here are temperature-scaled: they are what a user of the model sees, and temperature
scaling never changes a prediction, only how sure it is (which temperature: calibration.py's
`matching_temperature`). The referral threshold is chosen on the validation split, so the test
figures it achieves are an honest estimate of what it does on new images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import log_loss

from bloodcells.evaluation.calibration import calibration_bins, expected_calibration_error
from bloodcells.evaluation.uncertainty import (
    accuracy_at_coverage,
    aurc,
    bootstrap_intervals,
    curve_rows,
    referral_threshold,
    selective_summary,
)
from bloodcells.model.temperature import apply_temperature

CONFIDENCE_LEVEL = 0.95
COVERAGES = (90, 95, 99)  # percent of test images answered, most confident first


@dataclass(frozen=True)
class TrustReport:
    """Flat figures for report.json, and the rows of the plot and listing files."""

    metrics: dict[str, Any]
    calibration_scaled: list[dict]
    risk_coverage: list[dict]
    predictions: list[dict]
    referrals: list[dict]


def prediction_rows(
    index: np.ndarray, y_true: np.ndarray, scores: np.ndarray, classes: list[str]
) -> list[dict]:
    """index, true and predicted class names, and confidence of each image in `index`."""
    predicted, confidence = scores.argmax(axis=1), scores.max(axis=1)
    return [
        {
            "index": int(i),
            "true": classes[y_true[i]],
            "predicted": classes[predicted[i]],
            "confidence": round(float(confidence[i]), 6),
        }
        for i in index
    ]


def trust_report(
    y_true: np.ndarray,
    scores: np.ndarray,
    val_true: np.ndarray,
    val_scores: np.ndarray,
    classes: list[str],
    temperature: float,
    n_bins: int,
    resamples: int,
    seed: int,
    target_accuracy: float,
) -> TrustReport:
    """Intervals, calibration before/after, risk-coverage and referral of test `scores` (N, K)."""
    labels = np.arange(len(classes))
    y_pred = scores.argmax(axis=1)
    intervals = bootstrap_intervals(y_true, y_pred, len(classes), resamples, seed, CONFIDENCE_LEVEL)
    metrics: dict[str, Any] = {}
    for name, (low, high) in intervals.items():
        metrics |= {f"{name}_ci_lower": round(low, 4), f"{name}_ci_upper": round(high, 4)}
    metrics["bootstrap"] = {
        "resamples": resamples,
        "level": CONFIDENCE_LEVEL,
        "seed": seed,
        "stratified_by": "class",
        "method": "percentile",
    }

    calibrated, val_calibrated = (
        apply_temperature(scores, temperature),
        apply_temperature(val_scores, temperature),
    )
    metrics |= {
        "temperature": temperature,
        "ece_calibrated": expected_calibration_error(y_true, calibrated, n_bins),
        "log_loss_calibrated": float(log_loss(y_true, calibrated, labels=labels)),
    }

    confidence, correct = calibrated.max(axis=1), y_pred == y_true
    metrics["aurc"] = aurc(confidence, correct)
    for percent in COVERAGES:
        metrics[f"coverage_{percent}_accuracy"] = accuracy_at_coverage(confidence, correct, percent / 100)

    val_confidence, val_correct = val_calibrated.max(axis=1), val_calibrated.argmax(axis=1) == val_true
    threshold = referral_threshold(val_confidence, val_correct, target_accuracy)
    on_val = selective_summary(val_confidence, val_correct, threshold)
    on_test = selective_summary(confidence, correct, threshold)
    metrics["referral"] = {
        "target_accuracy": target_accuracy,
        "threshold": threshold,
        "val_coverage": on_val["coverage"],
        "val_accuracy": on_val["accuracy"],
        "test_coverage": on_test["coverage"],
        "test_accuracy": on_test["accuracy"],
        "test_referred": on_test["referred"],
    }
    metrics["referral_coverage"] = on_test["coverage"]

    referred = np.flatnonzero(confidence < threshold) if threshold is not None else np.arange(len(y_true))
    referred = referred[np.argsort(confidence[referred], kind="stable")]  # least confident first
    return TrustReport(
        metrics=metrics,
        calibration_scaled=calibration_bins(y_true, calibrated, n_bins),
        risk_coverage=curve_rows(confidence, correct),
        predictions=prediction_rows(np.arange(len(y_true)), y_true, calibrated, classes),
        referrals=prediction_rows(referred, y_true, calibrated, classes),
    )
