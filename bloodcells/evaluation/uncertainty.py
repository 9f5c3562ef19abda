"""How sure the figures are: bootstrap intervals and selective prediction.

Pure functions of label and confidence arrays, vectorised with numpy (1,000 resamples take
milliseconds, whatever the number of images). The bootstrap is stratified: every resample keeps each class's
test count, as a fixed test split does, so the interval reflects which images were drawn, not how
many of each class. Selective prediction answers only the images the model is most confident about
and refers the rest to a person: the risk-coverage curve says what each share of answers costs.
"""

from __future__ import annotations

import numpy as np

BOOTSTRAP_METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


def observed_confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix (K, K), rows true classes, columns predicted ones."""
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def resampled_confusions(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, n_resamples: int, seed: int
) -> np.ndarray:
    """Confusion matrices (R, K, K) of R bootstrap resamples drawn with replacement within each class.

    Drawing a class's n images with replacement and counting their predictions is a multinomial
    draw of n over that class's row of the confusion matrix, so each row is drawn as one: the same
    distribution as resampling image indices, at a cost that does not grow with the number of images.
    """
    rng = np.random.default_rng(seed)
    confusion = observed_confusion(y_true, y_pred, n_classes)
    matrices = np.zeros((n_resamples, n_classes, n_classes), dtype=np.int64)
    for c, row in enumerate(confusion):
        if row.sum():
            matrices[:, c] = rng.multinomial(row.sum(), row / row.sum(), size=n_resamples)
    return matrices


def metrics_of_confusions(matrices: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy and macro-F1 of each confusion matrix (R, K, K), as scikit-learn has them.

    Balanced accuracy averages recall over the classes present; macro-F1 averages F1 over all K
    classes, a class never true nor predicted counting 0 (scikit-learn's zero_division=0).
    """
    true_positives = np.diagonal(matrices, axis1=1, axis2=2).astype(float)
    support, predicted = matrices.sum(axis=2), matrices.sum(axis=1)
    present = support > 0
    recall = np.divide(true_positives, support, out=np.zeros_like(true_positives), where=present)
    denominator = support + predicted  # 2TP + FP + FN
    f1 = np.divide(2 * true_positives, denominator, out=np.zeros_like(true_positives), where=denominator > 0)
    return {
        "accuracy": true_positives.sum(axis=1) / matrices.sum(axis=(1, 2)),
        "balanced_accuracy": recall.sum(axis=1) / present.sum(axis=1),
        "macro_f1": f1.mean(axis=1),
    }


def bootstrap_intervals(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int,
    n_resamples: int,
    seed: int,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval (low, high) of each of BOOTSTRAP_METRICS, resampling within classes."""
    values = metrics_of_confusions(resampled_confusions(y_true, y_pred, n_classes, n_resamples, seed))
    tail = 100 * (1 - level) / 2
    return {
        name: (float(np.percentile(values[name], tail)), float(np.percentile(values[name], 100 - tail)))
        for name in BOOTSTRAP_METRICS
    }


def confidence_order(confidence: np.ndarray) -> np.ndarray:
    """Image indices from the most to the least confident (ties in index order, so it is deterministic)."""
    return np.argsort(-confidence, kind="stable")


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coverage k/N and risk (error rate among the k most confident) for k = 1..N."""
    errors = np.cumsum(~correct[confidence_order(confidence)])
    answered = np.arange(1, len(correct) + 1)
    return answered / len(correct), errors / answered


def aurc(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Area under the risk-coverage curve: the mean risk over k = 1..N (lower is better)."""
    return float(risk_coverage(confidence, correct)[1].mean())


def accuracy_at_coverage(confidence: np.ndarray, correct: np.ndarray, coverage: float) -> float:
    """Accuracy on the ceil(coverage * N) most confident images (at least one)."""
    k = max(1, int(np.ceil(coverage * len(correct) - 1e-9)))
    return float(correct[confidence_order(confidence)[:k]].mean())


def curve_rows(confidence: np.ndarray, correct: np.ndarray, points: int = 100) -> list[dict]:
    """The risk-coverage curve at coverage 1/points .. 1: coverage, risk, accuracy, threshold (confidence)."""
    order = confidence_order(confidence)
    errors = np.cumsum(~correct[order])
    rows = []
    for i in range(1, points + 1):
        k = max(1, int(np.ceil(i / points * len(correct) - 1e-9)))
        risk = errors[k - 1] / k
        rows.append(
            {
                "coverage": round(i / points, 6),
                "risk": round(float(risk), 6),
                "accuracy": round(float(1 - risk), 6),
                "threshold": round(float(confidence[order[k - 1]]), 6),
            }
        )
    return rows


def referral_threshold(confidence: np.ndarray, correct: np.ndarray, target_accuracy: float) -> float | None:
    """The lowest confidence threshold t whose accepted images (confidence >= t) reach `target_accuracy`.

    The lowest such t answers the most images. Only thresholds at a drop in confidence are candidates,
    since equal confidences are accepted or referred together. None when no threshold reaches the
    target (refer every image).
    """
    order = confidence_order(confidence)
    ranked = confidence[order]
    accuracy = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    boundary = np.append(ranked[1:] < ranked[:-1], True)  # k accepted images end a run of equal values
    candidates = np.flatnonzero(boundary & (accuracy >= target_accuracy))
    return float(ranked[candidates[-1]]) if len(candidates) else None


def selective_summary(
    confidence: np.ndarray, correct: np.ndarray, threshold: float | None
) -> dict[str, float]:
    """Coverage, accuracy of the accepted images, and the count referred at `threshold` (None: refer all)."""
    accepted = np.zeros(len(correct), bool) if threshold is None else confidence >= threshold
    return {
        "coverage": float(accepted.mean()) if len(correct) else 0.0,
        "accuracy": float(correct[accepted].mean()) if accepted.any() else float("nan"),
        "referred": int((~accepted).sum()),
    }
