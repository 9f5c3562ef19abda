"""Per-class ROC and precision-recall curves as plain rows, the shape DVC plots and matplotlib take.

Both are one-vs-rest: for class c, images of class c are the positives and the score is the
predicted probability of c. Rows are long format (one `class` column) so that one file and one plot
definition serve any number of classes, whatever the dataset.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

RECALL_GRID = np.linspace(0.0, 1.0, 101)  # PR curves are sampled here: thousands of thresholds otherwise


def present_classes(y_true: np.ndarray, n_classes: int) -> list[int]:
    """Classes with at least one positive and one negative image: the ones that have curves."""
    return [c for c in range(n_classes) if 0 < (y_true == c).sum() < len(y_true)]


def roc_rows(y_true: np.ndarray, y_score: np.ndarray, class_names: list[str]) -> list[dict]:
    """ROC curve points of every class: class, point (drawing order), fpr, tpr.

    Collinear points are dropped (scikit-learn's drop_intermediate), so the curve is exact but short.
    """
    rows = []
    for c in present_classes(y_true, len(class_names)):
        fpr, tpr, _ = roc_curve(y_true == c, y_score[:, c])
        rows += [
            {"class": class_names[c], "point": i, "fpr": round(float(f), 6), "tpr": round(float(t), 6)}
            for i, (f, t) in enumerate(zip(fpr, tpr, strict=True))
        ]
    return rows


def interpolated_precision(recall: np.ndarray, precision: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Precision at each grid recall r: the best precision reached at any recall >= r (as in VOC/COCO AP).

    `recall` decreasing and `precision` matching, as scikit-learn's precision_recall_curve returns them.
    """
    best_so_far = np.maximum.accumulate(precision)  # best precision over recall >= recall[i]
    # recall is decreasing: for each grid value take the last index whose recall is still >= it
    index = np.searchsorted(-recall, -grid, side="right") - 1
    return best_so_far[np.clip(index, 0, len(recall) - 1)]


def pr_rows(y_true: np.ndarray, y_score: np.ndarray, class_names: list[str]) -> list[dict]:
    """Precision-recall curve of every class on a 101-point recall grid: class, point, recall, precision."""
    rows = []
    for c in present_classes(y_true, len(class_names)):
        precision, recall, _ = precision_recall_curve(y_true == c, y_score[:, c])
        curve = interpolated_precision(recall, precision, RECALL_GRID)
        rows += [
            {
                "class": class_names[c],
                "point": i,
                "recall": round(float(r), 6),
                "precision": round(float(p), 6),
            }
            for i, (r, p) in enumerate(zip(RECALL_GRID, curve, strict=True))
        ]
    return rows
