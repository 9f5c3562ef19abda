"""Macro figures over the classes in the test split; class names never boxes."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pytest
from matplotlib.text import Text

from bloodcells.evaluation import plots
from bloodcells.evaluation.metrics import classification_metrics
from bloodcells.evaluation.writers import save_figure

CJK = "好细胞"  # "good cell"
STIX_ONLY = "\u1d81"  # ᶁ: in matplotlib's STIXGeneral, not in DejaVu Sans


def scores_for(predicted: list[int], n_classes: int) -> np.ndarray:
    scores = np.full((len(predicted), n_classes), 0.1 / (n_classes - 1))
    scores[np.arange(len(predicted)), predicted] = 0.9
    return scores


def test_macro_figures_leave_out_a_class_absent_from_the_test_split():
    """Class `ig` only in train; two classes in test, one of them always right."""
    y_true = np.array([0, 0, 1, 1])
    scores = scores_for([0, 0, 0, 0], 3)  # class 2 (`ig`) has no test image
    metrics = classification_metrics(y_true, scores, 10, ["basophil", "eosinophil", "ig"])
    assert metrics["balanced_accuracy"] == pytest.approx(0.5)
    assert metrics["macro_recall"] == pytest.approx(0.5)  # was 0.333: ig counted as a recall of 0
    assert metrics["macro_f1"] == pytest.approx(1 / 3)  # (2/3 + 0) / 2, was 0.222
    assert metrics["absent_classes"] == ["ig"]
    assert metrics["weighted_f1"] == pytest.approx(1 / 3)


def test_no_class_absent_leaves_the_macro_figures_as_they_were():
    y_true = np.array([0, 1, 2, 2])
    metrics = classification_metrics(y_true, scores_for([0, 1, 2, 1], 3), 10, ["a", "b", "c"])
    assert metrics["absent_classes"] == []
    assert metrics["macro_recall"] == pytest.approx((1 + 1 + 0.5) / 3)


def missing_glyph_warnings(figure: matplotlib.figure.Figure, path) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figure.savefig(path)
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


@pytest.fixture(autouse=True)
def default_fonts():
    """Each test starts from matplotlib's default font list (drawable_names changes it)."""
    with matplotlib.rc_context():
        yield


def test_names_the_default_font_lacks_are_drawn_with_an_installed_font_that_has_them(tmp_path):
    names = [f"{STIX_ONLY} cell", "basophil"]
    matrix = np.array([[2, 0], [1, 1]])
    assert missing_glyph_warnings(plots.confusion_figure(matrix, names), tmp_path / "before.png")
    shown, note = plots.drawable_names(names)
    assert shown == names and note is None
    assert "STIXGeneral" in matplotlib.rcParams["font.family"]
    assert missing_glyph_warnings(plots.confusion_figure(matrix, shown), tmp_path / "after.png") == []


def cjk_font() -> str | None:
    return next((f for f in plots.installed_families() if ord(CJK[0]) in plots.font_characters(f)), None)


@pytest.mark.skipif(cjk_font() is not None, reason="a CJK font is installed: the names are drawn with it")
def test_cjk_names_without_a_cjk_font_are_replaced_and_the_figure_says_so(tmp_path):
    names = [f"{CJK}(detail)", "basophil"]
    shown, note = plots.drawable_names(names)
    assert shown == ["class 0", "basophil"]
    assert "class 0: name not drawable" in note and "report.json" in note
    figure = plots.confusion_figure(np.array([[2, 0], [1, 1]]), shown)
    assert missing_glyph_warnings(figure, tmp_path / "check.png") == []
    save_figure(figure, tmp_path / "confusion.png", note)
    assert note in [text.get_text() for text in figure.findobj(Text)]
    assert (tmp_path / "confusion.png").stat().st_size > 0


@pytest.mark.skipif(cjk_font() is None, reason="no CJK font installed (fc-list :lang=zh is empty)")
def test_cjk_names_are_drawn_with_an_installed_cjk_font(tmp_path):
    shown, note = plots.drawable_names([CJK, "basophil"])
    assert shown == [CJK, "basophil"] and note is None
    figure = plots.confusion_figure(np.array([[2, 0], [1, 1]]), shown)
    assert missing_glyph_warnings(figure, tmp_path / "cjk.png") == []
