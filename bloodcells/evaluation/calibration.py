"""How honest the model's confidences are: reliability bins, the expected calibration error, and which
temperature to judge test predictions with.

Calibration is measured on the top-label confidence (the probability of the predicted class), the
quantity a reliability diagram plots. Temperature scaling itself (fitting and applying T) is the
model's, in bloodcells.model.temperature: training fits it, inference applies it, and this module
only chooses the one that matches how the test predictions were made. The card's temperature was
fitted on validation with one view per image; predictions averaged over several views are softer,
so for them it is refitted on the validation predictions made the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bloodcells.model.temperature import fit_temperature


def calibration_bins(y_true: np.ndarray, y_score: np.ndarray, n_bins: int = 10) -> list[dict]:
    """Reliability diagram data: per equal-width confidence bin, mean confidence, accuracy, count.

    Empty bins are left out. The confidence is the top-label probability, max over classes.
    """
    confidence = y_score.max(axis=1)
    correct = y_score.argmax(axis=1) == y_true
    # bin i holds confidences in (i/n, (i+1)/n]; a confidence of exactly 0 goes to bin 0
    index = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    return [
        {
            "bin": i,
            "confidence": float(confidence[index == i].mean()),
            "accuracy": float(correct[index == i].mean()),
            "count": int((index == i).sum()),
        }
        for i in range(n_bins)
        if (index == i).any()
    ]


def expected_calibration_error(y_true: np.ndarray, y_score: np.ndarray, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over the bins."""
    bins = calibration_bins(y_true, y_score, n_bins)
    return float(sum(b["count"] * abs(b["confidence"] - b["accuracy"]) for b in bins) / len(y_true))


def matching_temperature(
    card: dict[str, Any], views: int, val_scores: np.ndarray, val_true: np.ndarray
) -> tuple[float, str]:
    """The temperature for predictions averaged over `views` views, and where it comes from."""
    fitted_views = (card.get("temperature_fit") or {}).get("views")
    kind = f"{views} view{'s' * (views > 1)}"
    if "temperature" in card and fitted_views == views:
        return float(card["temperature"]), f"model card (val, {kind})"
    return fit_temperature(val_scores, val_true), f"refitted on val at {kind}"
