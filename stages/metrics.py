"""Classification metrics as pure functions of arrays: no files, no logging.

AUC follows MedMNIST's definition for multi-class tasks: the mean over classes of the one-vs-rest
ROC AUC of that class's predicted probability.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)


def medmnist_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean one-vs-rest ROC AUC over classes (MedMNIST's `getAUC` for multi-class)."""
    aucs = [roc_auc_score(y_true == c, y_score[:, c]) for c in range(y_score.shape[1])]
    return float(np.mean(aucs))


def classification_metrics(y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float]:
    """Headline test metrics from labels (N,) and predicted probabilities (N, n_classes)."""
    y_pred = y_score.argmax(axis=1)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="macro", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_precision": float(precision),
        "macro_recall": float(recall),
        "macro_f1": float(f1),
        "auc": medmnist_auc(y_true, y_score),
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
