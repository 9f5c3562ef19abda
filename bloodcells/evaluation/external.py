"""External validation: the trained model on another lab's labelled image folder, over the classes it maps.

Another lab's folder has its own class names (EOSINOPHIL, lymph, ...) and usually only some of the
model's classes. `external.classes` maps folder names to the model's class names; folders left out
of the mapping are not scored. Images are decoded exactly as the training images were (the model
card's `decoding`: crop side and filter, at the model's input size), cut around the cell and
stain-normalised as they were (the card's `cell_crop` and `stain_normalization`, through
bloodcells.data.prepare), then predicted with the evaluate stage's test-time augmentation. With
`adapt`, the model's BatchNorm statistics are first re-estimated on the folder's images (labels
unused: label-free test-time adaptation), and everything is written to the `-adapted` folders.
Metrics are over the mapped classes only: the model's probabilities are restricted to those classes
and renormalised (the share of images whose overall top class lies outside them is reported too).
Same metrics, tables and figures as the evaluate stage, in metrics/external/ and plots/external/.
The headline figures are nested under `external` (`external_adapted`) in metrics.json, so that
`dvc exp show` and `dvc metrics diff`, which read it through dvc.yaml's top-level `metrics:`, keep
them apart from the evaluate stage's `accuracy`, `macro_f1`, ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bloodcells.core.files import staged_folders, write_json
from bloodcells.core.params import EvaluateParams, Params
from bloodcells.core.paths import (
    ADAPTED_METRICS_DIR,
    ADAPTED_PLOTS_DIR,
    EXTERNAL_METRICS_DIR,
    EXTERNAL_PLOTS_DIR,
    MODEL_DIR,
    MODEL_FILE,
    user_path,
)
from bloodcells.core.stage import StageError, require
from bloodcells.data.decode import decode_files
from bloodcells.data.folder_layout import FolderError, scan_folder
from bloodcells.data.prepare import prepare
from bloodcells.evaluation import plots
from bloodcells.evaluation.calibration import calibration_bins
from bloodcells.evaluation.metrics import classification_metrics, confusion
from bloodcells.evaluation.uncertainty import bootstrap_intervals
from bloodcells.evaluation.writers import draw_prediction_figures, save_figure, write_tables
from bloodcells.model.card import input_side, read_card, recipe_from_card

PREDICT_BATCH = 256
HEADLINE = (
    "accuracy", "balanced_accuracy", "macro_f1", "auc", "ece", "images", "outside_mapped_classes", "adapted"
)


def class_mapping(
    found: list[str], mapping: dict[str, str] | None, model_classes: list[str]
) -> dict[str, str]:
    """Folder name -> model class name; identity when `mapping` is None. One-line errors for bad names."""
    if mapping is None:
        mapping = {name: name for name in found if name in model_classes}
        if not mapping:
            raise StageError(
                f"none of the folder's classes {found} is a model class {model_classes}: set external.classes"
            )
        return mapping
    unknown = sorted(set(mapping.values()) - set(model_classes))
    if unknown:
        raise StageError(f"external.classes maps to {unknown}, not classes of the model: {model_classes}")
    absent = sorted(set(mapping) - set(found))
    if absent:
        raise StageError(f"external.classes names folder(s) {absent} that {found} does not have")
    return dict(mapping)


def load_external(path: Path, mapping: dict[str, str] | None, card: dict[str, Any]) -> dict[str, Any]:
    """Decode the mapped folders' images as the training images were; labels in the model's numbering."""
    try:
        scan = scan_folder(path)
    except FolderError as error:
        raise StageError(f"external.path: {error}") from None
    found = sorted({file.label_name for file in scan.files})
    classes = card["classes"]
    mapped = class_mapping(found, mapping, classes)
    files = [file for file in scan.files if file.label_name in mapped]
    recipe = recipe_from_card(card)
    decoded = decode_files([path / file.path for file in files], recipe, progress=True)
    keep = [i for i, error in enumerate(decoded.errors) if error is None]
    if not keep:
        raise StageError(f"external.path {str(path)!r}: none of the mapped classes' files could be decoded")
    images, crop_outcomes = prepare(decoded.images[recipe.sizes[0]][keep], card, input_side(card))
    labels = np.array([classes.index(mapped[files[i].label_name]) for i in keep], dtype=np.int64)
    return {
        "images": images,
        "labels": labels,
        "paths": [files[i].path for i in keep],
        "mapping": mapped,
        "skipped": [
            {"path": files[i].path, "reason": decoded.errors[i]} for i, e in enumerate(decoded.errors) if e
        ],
        "left_out_classes": sorted(set(found) - set(mapped)),
        "cell_crop_outcomes": crop_outcomes,
    }


def validate_external(
    params: Params, path: str | None = None, classes: dict[str, str] | None = None, adapt: bool = False
) -> dict[str, Any]:
    """Predict an external labelled folder; write metrics/external/ and plots/external/ (`-adapted`
    with `adapt`); return the metrics. `path` and `classes` override `external.path`/`.classes`."""
    settings = params.external
    folder = path or settings.path
    if folder is None:
        raise StageError(
            "external.path is not set: point it at a class-per-folder image set (or pass --path)"
        )
    card = read_card(MODEL_DIR)
    data = load_external(user_path(folder), classes or settings.classes, card)
    # Keras (and TensorFlow) load only now: a wrong path or mapping above fails in a second.
    from bloodcells.model.batchnorm import adapt_batchnorm
    from bloodcells.model.load import load_model
    from bloodcells.model.tta import predict_probabilities

    model = load_model(require(MODEL_FILE, "train"))
    if adapt:
        adapt_batchnorm(model, data["images"], params.seed)
    views = params.evaluate.tta_views
    full = predict_probabilities(model, data["images"], PREDICT_BATCH, views)
    metrics_folder, plots_folder = (
        (ADAPTED_METRICS_DIR, ADAPTED_PLOTS_DIR) if adapt else (EXTERNAL_METRICS_DIR, EXTERNAL_PLOTS_DIR)
    )
    scored = score_external(full, data, card["classes"], params.evaluate, params.seed)
    y_true, restricted, names = scored["y_true"], scored["scores"], scored["classes"]
    metrics = scored["metrics"]
    metrics |= {
        "mapping": data["mapping"],
        "left_out_classes": data["left_out_classes"],
        "skipped": data["skipped"],
        "path": str(folder),
        "views": views,
        "adapted": adapt,
        "cell_crop_outcomes": data["cell_crop_outcomes"],
    }
    with staged_folders(metrics_folder, plots_folder) as (metrics_dir, plots_dir):
        bins = calibration_bins(y_true, restricted, params.evaluate.calibration_bins)
        per_class = write_tables(plots_dir, y_true, restricted, names, bins)
        draw_external_figures(
            plots_dir / "images", data["images"], y_true, restricted, names, params, metrics
        )
        write_json(metrics_dir / "per_class.json", per_class)
        write_json(metrics_dir / "report.json", metrics)
        headline = {key: metrics[key] for key in HEADLINE}
        write_json(metrics_dir / "metrics.json", {"external_adapted" if adapt else "external": headline})
    return metrics


def score_external(
    full: np.ndarray, data: dict[str, Any], model_classes: list[str], settings: EvaluateParams, seed: int
) -> dict[str, Any]:
    """Metrics over the mapped classes: probabilities restricted to them and renormalised, with 95%
    bootstrap intervals (stratified, `evaluate.bootstrap_resamples`) and the share of images whose
    top class overall lies outside them. Returns labels, restricted scores, class names, metrics."""
    mapped = {model_classes.index(name) for name in data["mapping"].values()}
    columns = sorted(set(data["labels"].tolist()) | mapped)
    names = [model_classes[c] for c in columns]
    restricted = full[:, columns] / np.maximum(full[:, columns].sum(axis=1, keepdims=True), 1e-12)
    y_true = np.searchsorted(columns, data["labels"])
    metrics = classification_metrics(y_true, restricted, settings.calibration_bins)
    intervals = bootstrap_intervals(
        y_true, restricted.argmax(axis=1), len(columns), settings.bootstrap_resamples, seed
    )
    metrics |= {
        "intervals_95": {name: [round(low, 6), round(high, 6)] for name, (low, high) in intervals.items()},
        "confusion": confusion(y_true, restricted.argmax(axis=1), len(columns)).tolist(),
        "images": len(y_true),
        "classes": names,
        "outside_mapped_classes": float(np.mean(~np.isin(full.argmax(axis=1), columns))),
    }
    return {"y_true": y_true, "scores": restricted, "classes": names, "metrics": metrics}


def draw_external_figures(
    folder: Path,
    images: np.ndarray,
    y_true: np.ndarray,
    scores: np.ndarray,
    names: list[str],
    params: Params,
    metrics: dict[str, Any],
) -> None:
    """The evaluate stage's figures that need no training run: confusion, ROC+PR, calibration, images."""
    settings = params.evaluate
    title = "External images (wrong ones in red)"
    draw_prediction_figures(folder, images, y_true, scores, names, settings, params.seed, title, 6)
    bins = calibration_bins(y_true, scores, settings.calibration_bins)
    save_figure(
        plots.calibration_figure(bins, settings.calibration_bins, metrics["ece"]), folder / "calibration.png"
    )
