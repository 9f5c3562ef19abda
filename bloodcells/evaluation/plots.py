"""Report figures as pure functions: arrays and rows in, a matplotlib Figure out; the caller saves it.

Uses the Agg backend (no display needed). Class names are shortened to their first words for the
figures ("immature granulocytes(myelocytes, ...)" -> "immature granulocytes"). Names in a script
matplotlib's own font lacks (CJK, say) are drawn with an installed font that has it (`drawable_names`),
or, when none has, replaced by `class <label>` with a note in the figure, never drawn as boxes.
"""

from __future__ import annotations

from functools import cache

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
from matplotlib import font_manager, ft2font  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

WRONG, RIGHT = "#c62828", "#2e7d32"  # title colours of misclassified / correct images
MAIN_FONT = "DejaVu Sans"  # matplotlib's own
PLACEHOLDER_FONTS = ("Last Resort",)  # draws every character as a box: never a fallback


@cache
def font_characters(family: str) -> frozenset[int]:
    """Code points of the file matplotlib would use for `family`."""
    path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    return frozenset(ft2font.FT2Font(path).get_charmap())


def installed_families() -> list[str]:
    """Font families matplotlib knows, sorted, without placeholder fonts."""
    names = {entry.name for entry in font_manager.fontManager.ttflist}
    return sorted(name for name in names if not name.startswith(PLACEHOLDER_FONTS))


def drawable_names(names: list[str]) -> tuple[list[str], str | None]:
    """Class names as the figures can draw them, and a note for the figures (None when all drew).

    Characters the main font lacks are looked up in every installed font; the fonts that have them
    are appended to matplotlib's font list, which it falls back along glyph by glyph. A name that
    no installed font can draw becomes `class <label>`, and the note says so.
    """
    chain, covered = [MAIN_FONT], set(font_characters(MAIN_FONT))
    shown, undrawable = [], []
    for label, name in enumerate(names):
        missing = {ord(ch) for ch in short_name(name) if ch.isprintable()} - covered
        for family in installed_families() if missing else []:
            found = missing & font_characters(family)
            if found:
                chain.append(family)
                covered |= font_characters(family)
                missing -= found
            if not missing:
                break
        shown.append(f"class {label}" if missing else name)
        undrawable += [label] if missing else []
    matplotlib.rcParams["font.family"] = chain
    if not undrawable:
        return shown, None
    return shown, (
        f"class {', '.join(map(str, undrawable))}: name not drawable, no installed font has its characters "
        "(install one, e.g. Noto Sans CJK); the names are in report.json"
    )


def short_name(name: str) -> str:
    """A class name without its parenthesised detail."""
    return name.split("(")[0].strip()


def confusion_figure(matrix: np.ndarray, class_names: list[str]) -> Figure:
    """Row-normalised confusion matrix (each true class sums to 1), cells annotated with the fraction."""
    totals = matrix.sum(axis=1, keepdims=True)
    fraction = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    names = [short_name(n) for n in class_names]
    size = (max(6.0, 1.0 + 0.75 * len(names)), max(5.0, 0.6 + 0.7 * len(names)))
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    image = ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    for (row, col), value in np.ndenumerate(fraction):
        ax.text(
            col,
            row,
            f"{value:.2f}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if value > 0.5 else "black",
        )
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="predicted", ylabel="true")
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticklabels([f"{n} ({t})" for n, t in zip(names, totals[:, 0], strict=True)])
    ax.set_title("Confusion matrix, rows normalised\n(test images per class in brackets)", fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def curves_figure(roc: list[dict], pr: list[dict], aucs: dict[str, float]) -> Figure:
    """One-vs-rest ROC (left) and precision-recall (right) curves, one line per class."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
    for ax, rows, x, y in ((left, roc, "fpr", "tpr"), (right, pr, "recall", "precision")):
        for name in dict.fromkeys(r["class"] for r in rows):
            points = [r for r in rows if r["class"] == name]
            label = f"{short_name(name)} (AUC {aucs[name]:.3f})" if ax is left else short_name(name)
            ax.plot([p[x] for p in points], [p[y] for p in points], label=label, linewidth=1.2)
        ax.set(xlabel=x, ylabel=y, xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right" if ax is left else "lower left")
    left.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    left.set_title("ROC, one class vs the rest")
    right.set_title("Precision-recall (interpolated), one class vs the rest")
    return fig


def calibration_figure(
    bins: list[dict],
    n_bins: int,
    ece: float,
    scaled_bins: list[dict] | None = None,
    scaled_ece: float | None = None,
    temperature: float | None = None,
) -> Figure:
    """Reliability diagram: accuracy against mean confidence per bin, with the share of images per bin.

    With `scaled_bins`, the temperature-scaled confidences are drawn beside the model's own.
    """
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5, 6), height_ratios=(3, 1), sharex=True, layout="constrained"
    )
    curves = [(bins, f"model (ECE {ece:.3f})")]
    if scaled_bins is not None:
        curves.append((scaled_bins, f"temperature {temperature:.2f} (ECE {scaled_ece:.3f})"))
    top.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    width = 0.9 / n_bins / len(curves)
    for i, (rows, label) in enumerate(curves):
        top.plot([b["confidence"] for b in rows], [b["accuracy"] for b in rows], marker="o", label=label)
        total = sum(b["count"] for b in rows)
        left = [(b["bin"] + 0.05) / n_bins + (i + 0.5) * width for b in rows]
        bottom.bar(left, [b["count"] / total for b in rows], width=width)
    title = f"Calibration (ECE {ece:.3f})" if scaled_bins is None else "Calibration before and after scaling"
    top.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.02), title=title)
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.set(xlabel="confidence (probability of the predicted class)", ylabel="share")
    return fig


def risk_coverage_figure(rows: list[dict], area: float, referral: dict | None = None) -> Figure:
    """Error rate of the answered images against the share answered, most confident first.

    With `referral` (coverage and accuracy on test at the validation-chosen threshold), its point is marked.
    """
    fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    ax.plot([r["coverage"] for r in rows], [100 * r["risk"] for r in rows], label=f"model (AURC {area:.4f})")
    if referral and referral.get("test_coverage"):
        ax.plot(
            referral["test_coverage"],
            100 * (1 - referral["test_accuracy"]),
            marker="o",
            color=WRONG,
            linestyle="none",
            label=f"referral threshold {referral['threshold']:.3f}: "
            f"{100 * referral['test_coverage']:.1f}% answered",
        )
    ax.set(
        xlabel="coverage (share of test images answered, most confident first)",
        ylabel="error rate of the answered images (%)",
        xlim=(0, 1.01),
        title="Risk-coverage",
    )
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def training_figure(curves: dict[str, dict[str, list[tuple[int, float]]]]) -> Figure:
    """Loss and accuracy per epoch for training and validation: curves[metric][split] = [(step, value)]."""
    fig, axes = plt.subplots(
        1, len(curves), figsize=(5 * len(curves), 4), layout="constrained", squeeze=False
    )
    for ax, (metric, splits) in zip(axes[0], curves.items(), strict=True):
        for split, points in splits.items():
            ax.plot([s + 1 for s, _ in points], [v for _, v in points], marker=".", label=split)
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def image_grid(images: np.ndarray, titles: list[str], wrong: np.ndarray, ncols: int, title: str) -> Figure:
    """Images in a grid, each titled; the titles of wrong predictions in red with a red frame."""
    nrows = max(1, -(-len(images) // ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(1.7 * ncols, 1.9 * nrows + 0.3), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, text, bad in zip(axes.flat, images, titles, wrong, strict=False):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(text, fontsize=6.5, color=WRONG if bad else RIGHT)
        if bad:
            ax.axis("on")
            ax.set(xticks=[], yticks=[])
            for spine in ax.spines.values():
                spine.set(color=WRONG, linewidth=2.5)
    fig.suptitle(title, fontsize=10)
    return fig


def gradcam_figure(
    images: np.ndarray, heatmaps: np.ndarray, titles: list[str], ncols: int, layer: str
) -> Figure:
    """Each image beside its Grad-CAM heat-map overlay (jet colours, red = most influential)."""
    pairs = -(-len(images) // ncols)
    fig, axes = plt.subplots(
        pairs, 2 * ncols, figsize=(1.4 * 2 * ncols, 1.6 * pairs + 0.3), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")
    for i, (image, heat, text) in enumerate(zip(images, heatmaps, titles, strict=True)):
        row, col = divmod(i, ncols)
        plain, overlay = axes[row, 2 * col], axes[row, 2 * col + 1]
        plain.imshow(image, interpolation="nearest")
        plain.set_title(text, fontsize=7)
        overlay.imshow(image, interpolation="nearest")
        overlay.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear")
        overlay.set_title("Grad-CAM", fontsize=7)
    fig.suptitle(f"Grad-CAM at layer {layer} for the predicted class", fontsize=10)
    return fig
