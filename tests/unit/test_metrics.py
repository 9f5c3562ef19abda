"""Metrics and curves on hand-made predictions: the figures worked out by hand, and scikit-learn's."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from bloodcells.evaluation.calibration import calibration_bins, expected_calibration_error
from bloodcells.evaluation.curves import RECALL_GRID, interpolated_precision, pr_rows, roc_rows
from bloodcells.evaluation.metrics import classification_metrics, medmnist_auc, one_vs_rest_aucs

# Six images, three classes. Predictions (argmax): 0 0 1 1 2 2 against truth 0 0 0 1 1 2.
Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
Y_SCORE = np.array(
    [
        [0.85, 0.10, 0.05],  # right, confidence .85
        [0.65, 0.25, 0.10],  # right, .65
        [0.10, 0.65, 0.25],  # wrong (true 0 is ranked third: a top-2 miss), .65
        [0.15, 0.75, 0.10],  # right, .75
        [0.10, 0.25, 0.65],  # wrong (true 1 ranked second: a top-2 hit), .65
        [0.15, 0.10, 0.75],  # right, .75
    ]
)


def test_headline_metrics_equal_the_hand_computed_values():
    # per class: precision 2/2, 1/2, 1/2; recall 2/3, 1/2, 1/1; F1 .8, .5, 2/3; support 3, 2, 1
    m = classification_metrics(Y_TRUE, Y_SCORE)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["macro_precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert m["macro_recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["weighted_precision"] == pytest.approx((3 * 1 + 2 * 0.5 + 1 * 0.5) / 6)
    assert m["weighted_recall"] == pytest.approx(4 / 6)
    assert m["weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 2 / 3) / 6)
    assert m["top2_accuracy"] == pytest.approx(5 / 6)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.85, 0.65, 0.10, 0.75, 0.25, 0.75])))
    # bins (.6,.7]: 3 images, accuracy 1/3; (.7,.8]: 2, accuracy 1; (.8,.9]: 1, accuracy 1
    assert m["ece"] == pytest.approx((3 * abs(0.65 - 1 / 3) + 2 * 0.25 + 1 * 0.15) / 6)


def test_headline_metrics_equal_scikit_learn_called_directly():
    m = classification_metrics(Y_TRUE, Y_SCORE)
    y_pred = Y_SCORE.argmax(axis=1)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(Y_TRUE, y_pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(Y_TRUE, y_pred))
    for average in ("macro", "weighted"):
        for name, function in (
            ("precision", skm.precision_score),
            ("recall", skm.recall_score),
            ("f1", skm.f1_score),
        ):
            assert m[f"{average}_{name}"] == pytest.approx(function(Y_TRUE, y_pred, average=average))
    assert m["log_loss"] == pytest.approx(skm.log_loss(Y_TRUE, Y_SCORE))
    assert m["top2_accuracy"] == pytest.approx(skm.top_k_accuracy_score(Y_TRUE, Y_SCORE, k=2))
    assert m["auc"] == pytest.approx(skm.roc_auc_score(Y_TRUE, Y_SCORE, multi_class="ovr", average="macro"))


def test_auc_is_medmnists_definition_on_a_hand_computed_case():
    """AUC of a class = share of (positive, negative) pairs its score orders correctly."""
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_score = np.array([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.3, 0.6, 0.1], [0.5, 0.3, 0.2], [0.1, 0.2, 0.7]])
    y_score = np.vstack([y_score, [0.2, 0.35, 0.45]])
    # class 0: .7 beats all 4 negatives, .4 beats 3 of them (not .5) -> 7/8
    # class 1: .6 beats all 4, .3 beats the two .2s -> 6/8;  class 2: both beat all -> 8/8
    assert one_vs_rest_aucs(y_true, y_score) == pytest.approx([7 / 8, 6 / 8, 1.0])
    assert medmnist_auc(y_true, y_score) == pytest.approx((7 / 8 + 6 / 8 + 1) / 3)
    with contextlib.redirect_stdout(io.StringIO()):  # medmnist's package prints a torch warning
        from medmnist.evaluator import getAUC
    assert medmnist_auc(y_true, y_score) == pytest.approx(getAUC(y_true, y_score, "multi-class"))


def test_a_class_missing_from_the_test_labels_is_left_out_of_the_auc_instead_of_failing():
    y_true = np.array([0, 0, 1, 1])
    y_score = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1], [0.1, 0.8, 0.1]])
    assert one_vs_rest_aucs(y_true, y_score) == [0.75, 0.75, None]
    assert medmnist_auc(y_true, y_score) == pytest.approx(0.75)
    assert math.isnan(medmnist_auc(np.zeros(3, int), np.full((3, 2), 0.5)))


def test_calibration_bins_leave_out_empty_bins_and_weight_the_ece_by_count():
    bins = calibration_bins(Y_TRUE, Y_SCORE, n_bins=10)
    assert [(b["bin"], b["count"]) for b in bins] == [(6, 3), (7, 2), (8, 1)]
    assert bins[0]["confidence"] == pytest.approx(0.65) and bins[0]["accuracy"] == pytest.approx(1 / 3)
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(np.array([0, 1]), perfect) == pytest.approx(0.0)


def test_roc_rows_trace_each_class_curve_with_scikit_learns_area():
    names = ["a", "b", "c"]
    rows = roc_rows(Y_TRUE, Y_SCORE, names)
    assert {r["class"] for r in rows} == set(names)
    for c, name in enumerate(names):
        points = [r for r in rows if r["class"] == name]
        assert [r["point"] for r in points] == list(range(len(points)))
        area = np.trapezoid([r["tpr"] for r in points], [r["fpr"] for r in points])
        assert area == pytest.approx(skm.roc_auc_score(np.equal(Y_TRUE, c), Y_SCORE[:, c]), abs=1e-5)


def test_interpolated_precision_is_the_best_precision_at_that_recall_or_more():
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    precision, recall, _ = skm.precision_recall_curve(y, np.linspace(0.9, 0.2, 8))
    # ranked hits 1 0 1 1 0 0 1 0: precision 1 at recall .25, .75 at recall .75, 4/7 at recall 1
    grid = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    assert interpolated_precision(recall, precision, grid) == pytest.approx([1.0, 1.0, 0.75, 0.75, 4 / 7])
    rows = pr_rows(Y_TRUE, Y_SCORE, ["a", "b", "c"])
    assert len(rows) == 3 * len(RECALL_GRID)
    for name in "abc":
        curve = [r["precision"] for r in rows if r["class"] == name]
        assert all(a >= b for a, b in zip(curve, curve[1:], strict=False))  # never rises with recall


# Macro figures over the classes present in the test split.
def scores_for(predicted: list[int], n_classes: int) -> np.ndarray:
    scores = np.full((len(predicted), n_classes), 0.1 / (n_classes - 1))
    scores[np.arange(len(predicted)), predicted] = 0.9
    return scores


def test_macro_figures_leave_out_a_class_absent_from_the_test_split():
    """The issue's case: class `ig` only in train; two classes in test, one of them always right."""
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
