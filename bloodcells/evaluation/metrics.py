"""Classification metrics as pure functions of arrays: no files, no logging.

AUC follows MedMNIST's definition for multi-class tasks: the mean over classes of the one-vs-rest
ROC AUC of that class's predicted probability. The calibration error (ECE) comes from calibration.py.
Macro averages
are over the classes present in the test split: a class with no test image has no recall, and
counting it as 0 would pull every macro figure down (its name is listed in `absent_classes`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
    top_k_accuracy_score,
)

from bloodcells.evaluation.calibration import expected_calibration_error


def one_vs_rest_aucs(y_true: np.ndarray, y_score: np.ndarray) -> list[float | None]:
    """ROC AUC of each class's probability against the rest; None for a class absent from `y_true`."""
    return [
        float(roc_auc_score(y_true == c, y_score[:, c])) if 0 < (y_true == c).sum() < len(y_true) else None
        for c in range(y_score.shape[1])
    ]


def medmnist_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean one-vs-rest ROC AUC over classes (MedMNIST's `getAUC` for multi-class).

    A class absent from `y_true` has no ROC curve; MedMNIST's code would fail there, this one leaves
    the class out of the mean (NaN when no class is left).
    """
    aucs = [auc for auc in one_vs_rest_aucs(y_true, y_score) if auc is not None]
    return float(np.mean(aucs)) if aucs else float("nan")


def top_k_accuracy(y_true: np.ndarray, y_score: np.ndarray, k: int) -> float:
    """Fraction of images whose true class is among the `k` highest scores."""
    labels = np.arange(y_score.shape[1])
    return float(top_k_accuracy_score(y_true, y_score, k=k, labels=labels))


def absent_classes(y_true: np.ndarray, class_names: list[str]) -> list[str]:
    """Names of the classes without a single image in `y_true`, in label order."""
    present = set(np.unique(y_true).tolist())
    return [name for c, name in enumerate(class_names) if c not in present]


def classification_metrics(
    y_true: np.ndarray, y_score: np.ndarray, n_bins: int = 10, class_names: list[str] | None = None
) -> dict[str, Any]:
    """Headline test metrics from labels (N,) and predicted probabilities (N, n_classes).

    Macro figures average over the classes present in `y_true` (scikit-learn's `labels=`), as
    balanced accuracy does; `absent_classes` names the others.
    """
    y_pred = y_score.argmax(axis=1)
    labels = np.arange(y_score.shape[1])
    names = class_names or [str(c) for c in labels]
    metrics: dict[str, Any] = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "absent_classes": absent_classes(y_true, names),
    }
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=np.unique(y_true), average=average, zero_division=0
        )
        metrics |= {f"{average}_precision": float(precision), f"{average}_recall": float(recall)}
        metrics[f"{average}_f1"] = float(f1)
    return metrics | {
        "auc": medmnist_auc(y_true, y_score),
        "log_loss": float(log_loss(y_true, y_score, labels=labels)),
        "top2_accuracy": top_k_accuracy(y_true, y_score, k=2),
        "ece": expected_calibration_error(y_true, y_score, n_bins),
    }


def per_class_report(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> list[dict]:
    """Precision, recall, F1 and support of every class, by name."""
    labels = np.arange(len(class_names))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return [
        {"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
    ]


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix, rows are true classes and columns predicted ones."""
    return confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))
