"""Class weights, and the model registry's errors."""

from __future__ import annotations

import numpy as np
import pytest

from bloodcells.data.class_weights import compute_class_weights, read_class_weights, write_class_weights


def test_balanced_weights_are_inverse_frequency():
    labels = np.array([0, 0, 0, 1])  # n / (classes * count): 4 / (2 * 3) and 4 / (2 * 1)
    assert compute_class_weights(labels, 2, "balanced") == pytest.approx([2 / 3, 2.0])
    assert compute_class_weights(labels, 2, "none") == [1.0, 1.0]


def test_bad_class_weight_inputs():
    with pytest.raises(ValueError, match="Unknown class_weights.method 'inverse'. Known: balanced, none"):
        compute_class_weights(np.array([0, 1]), 2, "inverse")
    with pytest.raises(ValueError, match=r"classes \[2\] have no training images"):
        compute_class_weights(np.array([0, 1]), 3, "balanced")


def test_weights_round_trip_as_keras_class_weight(tmp_path):
    path = tmp_path / "class_weights.json"
    write_class_weights(["a", "b"], [0.5, 2.0], "balanced", path)
    assert read_class_weights(path) == {0: 0.5, 1: 2.0}


def test_unknown_model_lists_the_known_ones():
    from bloodcells.architectures import create_model, list_models

    with pytest.raises(ValueError, match="Unknown model 'resnet9000'. Known models: .*skip") as error:
        create_model("resnet9000", (28, 28, 3), 8)
    assert all(name in str(error.value) for name in list_models())
    with pytest.raises(ValueError, match=r"Bad hyperparameters for model 'skip' \(models.skip"):
        create_model("skip", (28, 28, 3), 8, hparams={"depth": 3})
