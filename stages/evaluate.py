"""Evaluate stage: judge the trained model on the test split of its image size, and draw the report.

Predictions average `evaluate.tta_views` rotations/flips of each test image (test-time augmentation).

Reads models/model.keras, models/model.json, metrics/train/ (dvclive curves) and
data/preprocessed/<train.size>/; params `seed`, `train.size`, `evaluate`.
Writes metrics/evaluate/metrics.json (quality and cost figures), metrics/evaluate/per_class.json,
the plot data plots/evaluate/{confusion,per_class,roc,pr,calibration}.csv and the images
plots/evaluate/images/*.png (confusion heat-map, curves, calibration, training curves, sample
predictions, most confident mistakes, Grad-CAM).
Run: python -m stages.evaluate
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np

from stages import plots
from stages.cost import file_size_mb, peak_memory_mb, timed_predict
from stages.curves import pr_rows, roc_rows
from stages.dataset import load_split, preprocessed_dir
from stages.files import atomic_path, write_csv, write_json
from stages.gallery import confident_mistakes, pick_per_class, prediction_titles, whole_classes_per_row
from stages.gradcam import SUPPORTED_BACKENDS, gradcam, last_conv_layer
from stages.metrics import (
    calibration_bins,
    classification_metrics,
    confusion,
    one_vs_rest_aucs,
    per_class_report,
)
from stages.params import EvaluateParams, TrainParams, load_params, load_value
from stages.train import LIVE_DIR, MODEL_CARD, MODEL_FILE
from stages.tta import predict_probabilities

METRICS_DIR = Path("metrics/evaluate")
PLOTS_DIR = Path("plots/evaluate")
IMAGES_DIR = PLOTS_DIR / "images"
PREDICT_BATCH = 256


def confusion_rows(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> str:
    """CSV of (actual, predicted) class names, the input DVC's `confusion` template expects."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["actual", "predicted"])
    writer.writerows((class_names[t], class_names[p]) for t, p in zip(y_true, y_pred, strict=True))
    return buffer.getvalue()


def read_training_curves(live_dir: Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """dvclive's per-epoch loss and accuracy of the train and val splits: curves[metric][split]."""
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for metric in ("loss", "accuracy"):
        for split in ("train", "val"):
            path = live_dir / "plots/metrics" / split / f"{metric}.tsv"
            if path.exists():
                with path.open() as f:
                    rows = list(csv.DictReader(f, delimiter="\t"))
                curves.setdefault(metric, {})[split] = [(int(r["step"]), float(r[metric])) for r in rows]
    return curves


def save_figure(figure: plt.Figure, name: str) -> None:
    """Write a figure as PNG under plots/evaluate/images/ and free it."""
    with atomic_path(IMAGES_DIR / name) as tmp:
        figure.savefig(tmp, dpi=100, metadata={"Software": None})
    plt.close(figure)


def draw_gradcam(
    model: keras.Model,
    images: np.ndarray,
    index: np.ndarray,
    scores: np.ndarray,
    titles: list[str],
    ncols: int,
) -> None:
    """Grad-CAM figure for the images in `index`, or a message saying why there is none."""
    layer = last_conv_layer(model)
    if layer is None or keras.backend.backend() not in SUPPORTED_BACKENDS:
        why = (
            "the model has no top-level Conv2D layer"
            if layer is None
            else "backend " + keras.backend.backend()
        )
        print(f"Grad-CAM skipped: {why}")
        return
    heatmaps = gradcam(model, images[index], scores[index].argmax(axis=1), layer)
    save_figure(plots.gradcam_figure(images[index], heatmaps, titles, ncols, layer=layer), "gradcam.png")


def main() -> None:
    size = load_params("train", TrainParams).size
    params = load_params("evaluate", EvaluateParams)
    seed = int(load_value("seed"))
    card = json.loads(MODEL_CARD.read_text())
    classes = card["classes"]
    test = load_split(preprocessed_dir(size), "test", mmap=False)
    images, y_true = np.asarray(test.images), test.labels
    model = keras.saving.load_model(MODEL_FILE)
    try:
        scores, seconds = timed_predict(
            lambda x: predict_probabilities(model, x, PREDICT_BATCH, params.tta_views), images, PREDICT_BATCH
        )
    except ValueError as error:
        sys.exit(f"evaluate failed: {error}")
    y_pred = scores.argmax(axis=1)

    metrics = classification_metrics(y_true, scores, params.calibration_bins)
    metrics |= {
        "parameters": card["parameters"],
        "model_size_mb": file_size_mb(MODEL_FILE),
        "epochs_run": card["epochs_run"],
        "train_seconds": card["train_seconds"],
        "test_images": len(y_true),
        "test_views": params.tta_views,  # test time covers every view of test-time augmentation
        "test_seconds": round(seconds, 3),
        "test_ms_per_image": round(1000 * seconds / len(y_true), 4),
    }
    if "peak_memory_mb" in card:  # models trained before the train stage recorded it lack it
        metrics["train_peak_memory_mb"] = card["peak_memory_mb"]
    per_class = [
        row | {"auc": auc}
        for row, auc in zip(
            per_class_report(y_true, y_pred, classes), one_vs_rest_aucs(y_true, scores), strict=True
        )
    ]
    roc, pr = roc_rows(y_true, scores, classes), pr_rows(y_true, scores, classes)
    bins = calibration_bins(y_true, scores, params.calibration_bins)
    write_json(METRICS_DIR / "per_class.json", per_class)
    write_csv(PLOTS_DIR / "per_class.csv", per_class)
    write_csv(PLOTS_DIR / "roc.csv", roc)
    write_csv(PLOTS_DIR / "pr.csv", pr)
    write_csv(PLOTS_DIR / "calibration.csv", bins)
    with atomic_path(PLOTS_DIR / "confusion.csv") as tmp:
        tmp.write_text(confusion_rows(y_true, y_pred, classes))

    aucs = {row["class"]: row["auc"] for row in per_class}
    save_figure(plots.confusion_figure(confusion(y_true, y_pred, len(classes)), classes), "confusion.png")
    save_figure(plots.curves_figure(roc, pr, aucs), "roc_pr.png")
    save_figure(plots.calibration_figure(bins, params.calibration_bins, metrics["ece"]), "calibration.png")
    if curves := read_training_curves(LIVE_DIR):
        save_figure(plots.training_figure(curves), "training.png")
    samples = pick_per_class(y_true, params.samples_per_class, seed)
    save_figure(
        plots.image_grid(
            images[samples],
            prediction_titles(samples, y_true, scores, classes),
            y_pred[samples] != y_true[samples],
            ncols=whole_classes_per_row(params.samples_per_class, 6),
            title="Sample test predictions (wrong ones in red)",
        ),
        "samples.png",
    )
    mistakes = confident_mistakes(y_true, scores, params.mistakes)
    if len(mistakes):
        save_figure(
            plots.image_grid(
                images[mistakes],
                prediction_titles(mistakes, y_true, scores, classes),
                np.ones(len(mistakes), bool),
                ncols=min(8, len(mistakes)),
                title=f"The {len(mistakes)} most confident mistakes",
            ),
            "mistakes.png",
        )
    explain = pick_per_class(y_true, params.gradcam_per_class, seed + 1)
    titles = prediction_titles(explain, y_true, scores, classes)
    draw_gradcam(model, images, explain, scores, titles, whole_classes_per_row(params.gradcam_per_class, 4))

    metrics["eval_peak_memory_mb"] = peak_memory_mb()
    write_json(METRICS_DIR / "metrics.json", metrics)
    print(
        f"{card['model']} at {size} px: test accuracy {metrics['accuracy']:.4f}, "
        f"macro-F1 {metrics['macro_f1']:.4f}, AUC {metrics['auc']:.4f}, "
        f"{metrics['test_ms_per_image']:.3f} ms/image"
    )


if __name__ == "__main__":
    main()
