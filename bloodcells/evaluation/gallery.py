"""Which test images the report shows, and how they are titled and laid out: pure functions of arrays."""

from __future__ import annotations

import numpy as np

from bloodcells.evaluation.plots import short_name


def pick_per_class(y_true: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of up to `per_class` images of each class, drawn with `seed`, grouped by class."""
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(y_true == c))[:per_class] for c in np.unique(y_true)]
    return np.concatenate(picks) if picks else np.array([], dtype=int)


def confident_mistakes(y_true: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the `n` wrong predictions made with the highest confidence, most confident first."""
    wrong = np.flatnonzero(scores.argmax(axis=1) != y_true)
    return wrong[np.argsort(-scores[wrong].max(axis=1), kind="stable")][:n]


def prediction_titles(
    index: np.ndarray, y_true: np.ndarray, scores: np.ndarray, names: list[str]
) -> list[str]:
    """'true: X / pred: Y 0.97' for each image in `index`."""
    short = [short_name(n) for n in names]
    return [
        f"true: {short[y_true[i]]}\npred: {short[scores[i].argmax()]} {scores[i].max():.2f}" for i in index
    ]


def whole_classes_per_row(per_class: int, at_least: int) -> int:
    """Grid columns: a multiple of `per_class` (so rows hold whole classes), at least `at_least` if it can."""
    return per_class * max(1, at_least // per_class)
