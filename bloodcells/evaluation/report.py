"""Judge the trained model on its test split and write the whole report, or nothing.

Predictions average `evaluate.tta_views` rotations/flips of each test image (test-time
augmentation). The headline figures go to metrics/evaluate/metrics.json (what `dvc exp show` and
`dvc metrics diff` compare); every figure, per-class rows, plot data and images go beside it. All
outputs are written into staging folders that replace the old ones only when everything succeeded.
The validation split is predicted too: the referral threshold is chosen on it (see trust.py).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import keras
import numpy as np

from bloodcells.architectures.ensemble import ensemble_members
from bloodcells.core.files import staged_folders, write_csv, write_json
from bloodcells.core.params import Params
from bloodcells.core.paths import (
    EVAL_METRICS_DIR,
    EVAL_PLOTS_DIR,
    MODEL_DIR,
    MODEL_FILE,
    PREDICTIONS_FILE,
    TRAIN_METRICS_DIR,
    preprocessed_dir,
)
from bloodcells.core.resources import file_size_mb, peak_memory_mb, timed_predict
from bloodcells.core.stage import StageError, require
from bloodcells.data.splits import load_split
from bloodcells.evaluation import plots
from bloodcells.evaluation.calibration import calibration_bins, matching_temperature
from bloodcells.evaluation.gallery import (
    pick_per_class,
    prediction_titles,
    whole_classes_per_row,
)
from bloodcells.evaluation.metrics import classification_metrics
from bloodcells.evaluation.trust import TrustReport, trust_report
from bloodcells.evaluation.writers import draw_prediction_figures, save_figure, write_tables
from bloodcells.model.card import read_card
from bloodcells.model.gradcam import SUPPORTED_BACKENDS, gradcam, last_conv_layer
from bloodcells.model.load import load_model
from bloodcells.model.tta import predict_probabilities

PREDICT_BATCH = 256
# The figures `dvc exp show` and `dvc metrics diff` compare; the rest is in report.json beside them.
HEADLINE = ("accuracy", "accuracy_ci_lower", "accuracy_ci_upper")
HEADLINE += ("macro_f1", "macro_f1_ci_lower", "macro_f1_ci_upper")
HEADLINE += ("auc", "ece", "ece_calibrated", "coverage_95_accuracy", "referral_coverage", "train_seconds")
PREDICTION_COLUMNS = ["index", "true", "predicted", "confidence"]


def read_training_curves(live_dir: Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """dvclive's per-epoch loss and accuracy of the train and val splits: curves[metric][split]."""
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for metric in ("loss", "accuracy"):
        for split in ("train", "val"):
            path = live_dir / "plots/metrics" / split / f"{metric}.tsv"
            if path.exists():
                with path.open() as f:
                    rows = list(csv.DictReader(f, delimiter="\t"))
                try:
                    points = [(int(r["step"]), float(r[metric])) for r in rows]
                except (KeyError, TypeError, ValueError) as error:
                    raise StageError(f"{path}: not dvclive's step/{metric} table ({error})") from None
                curves.setdefault(metric, {})[split] = points
    return curves


def write_trust_tables(folder: Path, trust: TrustReport) -> None:
    """The calibrated reliability curve, the risk-coverage curve, every test outcome and the referrals."""
    write_csv(folder / "calibration_temperature_scaled.csv", trust.calibration_scaled)
    write_csv(folder / "risk_coverage.csv", trust.risk_coverage)
    write_csv(folder / PREDICTIONS_FILE.name, trust.predictions, PREDICTION_COLUMNS)
    write_csv(folder / "referrals.csv", trust.referrals, PREDICTION_COLUMNS)


def draw_figures(
    folder: Path,
    model: keras.Model,
    images: np.ndarray,
    y_true: np.ndarray,
    scores: np.ndarray,
    classes: list[str],
    params: Params,
    ece: float,
    trust: TrustReport,
) -> None:
    """The report's PNGs: confusion, ROC+PR, calibration, training curves, samples, mistakes, Grad-CAM."""
    settings, seed = params.evaluate, params.seed
    classes, note = plots.drawable_names(classes)  # e.g. CJK names without a font: `class 3`, noted
    columns = whole_classes_per_row(settings.samples_per_class, 6)
    title = "Sample test predictions (wrong ones in red)"
    draw_prediction_figures(folder, images, y_true, scores, classes, settings, seed, title, columns, note)
    bins = calibration_bins(y_true, scores, settings.calibration_bins)
    calibration = plots.calibration_figure(
        bins,
        settings.calibration_bins,
        ece,
        trust.calibration_scaled,
        trust.metrics["ece_calibrated"],
        trust.metrics["temperature"],
    )
    save_figure(calibration, folder / "calibration.png")
    risk = plots.risk_coverage_figure(trust.risk_coverage, trust.metrics["aurc"], trust.metrics["referral"])
    save_figure(risk, folder / "risk_coverage.png")
    if curves := read_training_curves(TRAIN_METRICS_DIR):
        save_figure(plots.training_figure(curves), folder / "training.png")
    if settings.gradcam_per_class:
        explain = pick_per_class(y_true, settings.gradcam_per_class, seed + 1)
        titles = prediction_titles(explain, y_true, scores, classes)
        draw_gradcam(
            folder,
            model,
            images,
            explain,
            scores,
            titles,
            whole_classes_per_row(settings.gradcam_per_class, 4),
            note,
        )


def draw_gradcam(
    folder: Path,
    model: keras.Model,
    images: np.ndarray,
    index: np.ndarray,
    scores: np.ndarray,
    titles: list[str],
    ncols: int,
    note: str | None = None,
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
    figure = plots.gradcam_figure(images[index], heatmaps, titles, ncols, layer=layer)
    save_figure(figure, folder / "gradcam.png", note)


def member_metrics(
    model: keras.Model, images: np.ndarray, y_true: np.ndarray, views: int, first_seed: int
) -> list[dict[str, Any]]:
    """Each member of a `train.ensemble` model judged alone (seeds first_seed, first_seed + 1, ...).

    One ensemble run thus gives the single-seed spread beside the ensemble's own figure.
    """
    rows = []
    for index, member in enumerate(ensemble_members(model)):
        alone = classification_metrics(y_true, predict_probabilities(member, images, PREDICT_BATCH, views))
        rows.append(
            {
                "member": member.name,
                "seed": first_seed + index,
                "accuracy": alone["accuracy"],
                "macro_f1": alone["macro_f1"],  # over the classes present, as the headline's
            }
        )
        print(f"{member.name} (seed {first_seed + index}): test accuracy {rows[-1]['accuracy']:.4f}")
    return rows


def evaluate_model(params: Params) -> dict[str, Any]:
    """Predict the test split at `train.size`; write metrics, plot data and figures; return all metrics."""
    settings, size = params.evaluate, params.train.size
    card = read_card(MODEL_DIR)
    classes = card["classes"]
    folder = require(preprocessed_dir(size), f"preprocess@{size}")
    test = load_split(folder, "test", mmap=False)
    images, y_true = np.asarray(test.images), test.labels
    model = load_model(require(MODEL_FILE, "train"))

    def predict(x: np.ndarray) -> np.ndarray:
        return predict_probabilities(model, x, PREDICT_BATCH, settings.tta_views)

    scores, seconds = timed_predict(predict, images, PREDICT_BATCH)
    val = load_split(folder, "val", mmap=False)
    val_scores = predict(np.asarray(val.images))
    temperature, source = matching_temperature(card, settings.tta_views, val_scores, val.labels)
    trust = trust_report(
        y_true,
        scores,
        val.labels,
        val_scores,
        classes,
        temperature,
        settings.calibration_bins,
        settings.bootstrap_resamples,
        params.seed,
        settings.referral_target_accuracy,
    )
    metrics = classification_metrics(y_true, scores, settings.calibration_bins, classes) | trust.metrics
    metrics["temperature_source"] = source
    if metrics["absent_classes"]:
        print(
            f"warning: class(es) {metrics['absent_classes']} have no test images: left out of the macro "
            "averages and the AUC (listed as absent_classes in report.json)"
        )
    metrics |= {
        "parameters": card["parameters"],
        "model_size_mb": file_size_mb(MODEL_FILE),
        "epochs_run": card["epochs_run"],
        "train_seconds": card["train_seconds"],
        "train_peak_memory_mb": card.get("peak_memory_mb"),
        "test_images": len(y_true),
        "test_views": settings.tta_views,  # test time covers every view of test-time augmentation
        "test_seconds": round(seconds, 3),
        "test_ms_per_image": round(1000 * seconds / len(y_true), 4),
    }
    if members := member_metrics(model, images, y_true, settings.tta_views, card["seed"]):
        metrics["members"] = members
    with staged_folders(EVAL_METRICS_DIR, EVAL_PLOTS_DIR) as (metrics_dir, plots_dir):
        bins = calibration_bins(y_true, scores, settings.calibration_bins)
        per_class = write_tables(plots_dir, y_true, scores, classes, bins)
        write_trust_tables(plots_dir, trust)
        draw_figures(
            plots_dir / "images", model, images, y_true, scores, classes, params, metrics["ece"], trust
        )
        metrics["eval_peak_memory_mb"] = peak_memory_mb()
        write_json(metrics_dir / "per_class.json", per_class)
        write_json(metrics_dir / "report.json", metrics)
        write_json(metrics_dir / "metrics.json", {key: metrics[key] for key in HEADLINE})
    return metrics
