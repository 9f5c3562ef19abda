"""Evaluate stage: judge the trained model on the test split of its image size.

Reads models/model.keras, models/model.json and data/preprocessed/<train.size>/.
Writes metrics/evaluate/metrics.json (headline metrics), metrics/evaluate/per_class.json and
plots/evaluate/confusion.csv (one row per test image, for DVC's confusion template).
Run: python -m stages.evaluate
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import keras
import numpy as np

from stages.dataset import load_split, preprocessed_dir
from stages.files import atomic_path, write_json
from stages.metrics import classification_metrics, per_class_report
from stages.params import EvaluateParams, TrainParams, load_params
from stages.train import MODEL_CARD, MODEL_FILE
from stages.tta import predict_probabilities

METRICS_DIR = Path("metrics/evaluate")
PLOTS_DIR = Path("plots/evaluate")
PREDICT_BATCH = 256


def confusion_rows(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> str:
    """CSV of (actual, predicted) class names, the input DVC's `confusion` template expects."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["actual", "predicted"])
    writer.writerows((class_names[t], class_names[p]) for t, p in zip(y_true, y_pred, strict=True))
    return buffer.getvalue()


def main() -> None:
    size = load_params("train", TrainParams).size
    params = load_params("evaluate", EvaluateParams)
    card = json.loads(MODEL_CARD.read_text())
    classes = card["classes"]
    test = load_split(preprocessed_dir(size), "test", mmap=False)
    model = keras.saving.load_model(MODEL_FILE)
    try:
        scores = predict_probabilities(model, np.asarray(test.images), PREDICT_BATCH, params.tta_views)
    except ValueError as error:
        sys.exit(f"evaluate failed: {error}")
    y_pred = scores.argmax(axis=1)

    metrics = classification_metrics(test.labels, scores)
    write_json(METRICS_DIR / "metrics.json", metrics)
    write_json(METRICS_DIR / "per_class.json", per_class_report(test.labels, y_pred, classes))
    with atomic_path(PLOTS_DIR / "confusion.csv") as tmp:
        tmp.write_text(confusion_rows(test.labels, y_pred, classes))
    print(
        f"{card['model']} at {size} px: test accuracy {metrics['accuracy']:.4f}, "
        f"macro-F1 {metrics['macro_f1']:.4f}, AUC {metrics['auc']:.4f}"
    )


if __name__ == "__main__":
    main()
