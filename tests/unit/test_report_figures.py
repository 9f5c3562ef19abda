"""Grad-CAM on models whose answer is known, and the report figures and image picks of the evaluate stage."""

from __future__ import annotations

import io
import warnings

import keras
import matplotlib
import numpy as np
import pytest
from keras import layers
from matplotlib.figure import Figure
from matplotlib.text import Text

from bloodcells.architectures import create_model, list_models
from bloodcells.architectures.transfer import BACKBONES
from bloodcells.evaluation import plots
from bloodcells.evaluation.gallery import confident_mistakes, pick_per_class, whole_classes_per_row
from bloodcells.evaluation.report import read_training_curves
from bloodcells.evaluation.writers import save_figure
from bloodcells.model.gradcam import gradcam, last_conv_layer
from tests.conftest import shipped_params


def red_detector() -> keras.Model:
    """1x1 conv copying the red channel, averaged: class 0's logit is the mean redness, class 1's minus it."""
    inputs = keras.Input((8, 8, 3), name="image")
    x = layers.Conv2D(1, 1, activation="relu", name="red", kernel_initializer="zeros")(inputs)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(2, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("red").set_weights([np.array([1.0, 0.0, 0.0]).reshape(1, 1, 3, 1), np.zeros(1)])
    model.get_layer("predictions").set_weights([np.array([[1.0, -1.0]]), np.zeros(2)])
    return model


def test_gradcam_lights_up_the_region_that_raised_the_class_score():
    image = np.zeros((1, 8, 8, 3), np.float32)
    image[0, :3, :3, 0] = 1.0  # a red square in the top-left corner, the only red in the image
    image[0, 5:, 5:, 1] = 1.0  # a green square the model ignores
    model = red_detector()
    assert last_conv_layer(model) == "red"
    heat = gradcam(model, image, np.array([0]), "red")[0]
    assert heat.shape == (8, 8) and heat.max() == pytest.approx(1.0)
    assert heat[:3, :3].min() > 0.9 and heat[4:, 4:].max() < 0.05
    # class 1's score falls as redness rises: no positive evidence anywhere, an all-zero map
    assert np.all(gradcam(model, image, np.array([1]), "red") == 0.0)


@pytest.mark.parametrize(("name", "layer"), [("skip", "block3_2_conv"), ("baseline", "block3_conv")])
def test_the_target_layer_is_the_deepest_convolution_not_the_last_listed(name, layer):
    """The residual model lists its 1x1 shortcut after the block's convolutions; depth decides."""
    model = create_model(name, (28, 28, 3), 8)
    assert isinstance(model.layers[-1], layers.Dense)
    assert last_conv_layer(model) == layer
    images = np.random.default_rng(0).integers(0, 255, (3, 28, 28, 3), dtype=np.uint8)
    heat = gradcam(model, images, np.array([0, 3, 7]), layer)
    assert heat.shape == (3, 28, 28) and heat.min() >= 0.0 and heat.max() <= 1.0


# The transfer models share one builder: one of them (the quickest to build) stands for all.
OTHER_TRANSFER = sorted(set(BACKBONES) - {"efficientnet_b0"})


@pytest.mark.parametrize("name", [name for name in list_models() if name not in OTHER_TRANSFER])
def test_grad_cam_runs_on_every_registered_conv_model_and_skips_only_nested_backbones(name):
    """Transfer models wrap a keras.applications backbone as one layer: no top-level Conv2D to explain."""
    hparams = dict(shipped_params().models.get(name) or {})
    if "weights" in hparams:
        hparams["weights"] = "none"  # no download in tests
    model = create_model(name, (28, 28, 3), 8, None, hparams)
    layer = last_conv_layer(model)
    if layer is None:
        assert any(isinstance(inner, keras.Model) for inner in model.layers)
        return
    images = np.random.default_rng(1).integers(0, 255, (2, 28, 28, 3), dtype=np.uint8)
    heat = gradcam(model, images, np.array([1, 6]), layer)
    assert heat.shape == (2, 28, 28) and np.isfinite(heat).all() and heat.max() <= 1.0


def test_a_model_without_convolutions_has_no_grad_cam_layer():
    inputs = keras.Input((4, 4, 3))
    outputs = layers.Dense(2, activation="softmax")(layers.Flatten()(inputs))
    assert last_conv_layer(keras.Model(inputs, outputs)) is None


def test_image_picks_are_per_class_and_the_mistakes_most_confident_first():
    y_true = np.array([0, 1, 0, 1, 2, 0])
    picks = pick_per_class(y_true, 2, seed=0)
    assert list(y_true[picks]) == [0, 0, 1, 1, 2]
    assert list(picks) == list(pick_per_class(y_true, 2, seed=0))  # seeded: the same every run
    scores = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5], [0.05, 0.95]])
    # wrong: image 2 (0.8 for class 1), 3 (0.6 for class 0), 5 (0.95 for class 1); image 4 is class 2
    assert list(confident_mistakes(np.array([0, 1, 0, 1, 0, 0]), scores, 2)) == [5, 2]
    assert [whole_classes_per_row(n, 6) for n in (1, 3, 4, 8)] == [6, 6, 4, 8]


def test_training_curves_are_read_from_dvclives_files(tmp_path):
    folder = tmp_path / "plots/metrics/val"
    folder.mkdir(parents=True)
    (folder / "loss.tsv").write_text("timestamp\tstep\tloss\n1\t0\t2.5\n2\t1\t1.5\n")
    assert read_training_curves(tmp_path) == {"loss": {"val": [(0, 2.5), (1, 1.5)]}}


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plots.plt.close(figure)
    return buffer.getvalue()


def test_every_report_figure_draws_to_a_png():
    names = ["basophil", "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)"]
    confusion = plots.confusion_figure(np.array([[3, 1], [0, 2]]), names)
    assert confusion.axes[0].get_yticklabels()[1].get_text() == "immature granulocytes (2)"
    roc = [{"class": n, "point": i, "fpr": float(i), "tpr": float(i)} for n in names for i in (0, 1)]
    pr = [{"class": n, "point": 0, "recall": 0.0, "precision": 1.0} for n in names]
    curves = plots.curves_figure(roc, pr, {n: 0.5 for n in names})
    assert [t.get_text() for t in curves.axes[0].get_legend().get_texts()][0] == "basophil (AUC 0.500)"
    bins = [{"bin": 6, "confidence": 0.65, "accuracy": 0.5, "count": 4}]
    images = np.zeros((3, 28, 28, 3), np.uint8)
    grid = plots.image_grid(images, ["a", "b", "c"], np.array([False, True, False]), ncols=2, title="t")
    title_colours = [ax.title.get_color() for ax in grid.axes[:3]]
    assert title_colours == [plots.RIGHT, plots.WRONG, plots.RIGHT]
    figures = [
        confusion,
        curves,
        plots.calibration_figure(bins, 10, 0.15),
        plots.training_figure({"loss": {"train": [(0, 2.0), (1, 1.0)]}}),
        grid,
        plots.gradcam_figure(images, np.zeros((3, 28, 28)), ["a", "b", "c"], ncols=2, layer="conv"),
    ]
    for figure in figures:
        assert png_bytes(figure).startswith(b"\x89PNG")


# Class names are drawn with a font that has them, or replaced and noted.
CJK = "好细胞"  # "good cell"
STIX_ONLY = "\u1d81"  # ᶁ: in matplotlib's STIXGeneral, not in DejaVu Sans


def missing_glyph_warnings(figure: Figure, path) -> list[str]:
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
