"""What the evaluate stage and `validate` both write: the tables DVC plots and the figures as PNG.

Both judge a model on labelled images and write the same files into their own folders
(plots/evaluate/, plots/external/), so the writers live here and neither calls into the other.
Each adds its own calibration figure (the evaluate stage's shows the temperature-scaled curve too).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from bloodcells.core.files import atomic_path, write_csv
from bloodcells.core.params import EvaluateParams
from bloodcells.evaluation import plots
from bloodcells.evaluation.curves import pr_rows, roc_rows
from bloodcells.evaluation.gallery import confident_mistakes, pick_per_class, prediction_titles
from bloodcells.evaluation.metrics import confusion, one_vs_rest_aucs, per_class_report


def confusion_rows(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> str:
    """CSV of (actual, predicted) class names, the input DVC's `confusion` template expects."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["actual", "predicted"])
    writer.writerows((class_names[t], class_names[p]) for t, p in zip(y_true, y_pred, strict=True))
    return buffer.getvalue()


def save_figure(figure: plt.Figure, path: Path, note: str | None = None) -> None:
    """Write a figure as PNG (no timestamp, so identical figures give identical bytes) and free it.

    `note`, when given, is written along the figure's foot (e.g. that a class name could not be drawn).
    """
    if note:
        figure.supxlabel(note, fontsize=7, color="#555555")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, metadata={"Software": None})
    plt.close(figure)


def write_tables(
    folder: Path, y_true: np.ndarray, scores: np.ndarray, classes: list[str], bins: list[dict]
) -> list[dict]:
    """Plot data for DVC: per-class rows, ROC, PR, reliability and confusion CSVs; returns per-class rows."""
    y_pred = scores.argmax(axis=1)
    per_class = [
        row | {"auc": auc}
        for row, auc in zip(
            per_class_report(y_true, y_pred, classes), one_vs_rest_aucs(y_true, scores), strict=True
        )
    ]
    write_csv(folder / "per_class.csv", per_class)
    write_csv(folder / "roc.csv", roc_rows(y_true, scores, classes))
    write_csv(folder / "pr.csv", pr_rows(y_true, scores, classes))
    write_csv(folder / "calibration.csv", bins)
    with atomic_path(folder / "confusion.csv") as tmp:
        tmp.write_text(confusion_rows(y_true, y_pred, classes))
    return per_class


def draw_prediction_figures(
    folder: Path,
    images: np.ndarray,
    y_true: np.ndarray,
    scores: np.ndarray,
    classes: list[str],
    settings: EvaluateParams,
    seed: int,
    samples_title: str,
    samples_columns: int,
    note: str | None = None,
) -> None:
    """confusion.png, roc_pr.png, samples.png and mistakes.png: the figures of any labelled image set.

    `note`, when given, is written along each figure's foot (see `save_figure`).
    """
    y_pred = scores.argmax(axis=1)
    roc, pr = roc_rows(y_true, scores, classes), pr_rows(y_true, scores, classes)
    aucs = dict(zip(classes, one_vs_rest_aucs(y_true, scores), strict=True))
    matrix = confusion(y_true, y_pred, len(classes))
    save_figure(plots.confusion_figure(matrix, classes), folder / "confusion.png", note)
    save_figure(plots.curves_figure(roc, pr, aucs), folder / "roc_pr.png", note)
    samples = pick_per_class(y_true, settings.samples_per_class, seed)
    grid = plots.image_grid(
        images[samples],
        prediction_titles(samples, y_true, scores, classes),
        y_pred[samples] != y_true[samples],
        ncols=samples_columns,
        title=samples_title,
    )
    save_figure(grid, folder / "samples.png", note)
    mistakes = confident_mistakes(y_true, scores, settings.mistakes)
    if len(mistakes):
        grid = plots.image_grid(
            images[mistakes],
            prediction_titles(mistakes, y_true, scores, classes),
            np.ones(len(mistakes), bool),
            ncols=min(8, len(mistakes)),
            title=f"The {len(mistakes)} most confident mistakes",
        )
        save_figure(grid, folder / "mistakes.png", note)
