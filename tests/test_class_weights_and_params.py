"""Class weights, params schema, and the model registry's errors."""

from __future__ import annotations

import numpy as np
import pytest

from stages.class_weights import compute_class_weights
from bloodcells.core.params import ParamsError, TrainParams, load_params, to_dataclass
from tests.conftest import PROJECT


def test_balanced_weights_are_inverse_frequency():
    labels = np.array([0, 0, 0, 1])  # n / (classes * count): 4 / (2 * 3) and 4 / (2 * 1)
    assert compute_class_weights(labels, 2, "balanced") == pytest.approx([2 / 3, 2.0])
    assert compute_class_weights(labels, 2, "none") == [1.0, 1.0]


def test_bad_class_weight_inputs():
    with pytest.raises(ValueError, match="Unknown class_weights.method 'inverse'. Known: balanced, none"):
        compute_class_weights(np.array([0, 1]), 2, "inverse")
    with pytest.raises(ValueError, match=r"classes \[2\] have no training images"):
        compute_class_weights(np.array([0, 1]), 3, "balanced")


def test_params_reject_unknown_and_missing_keys():
    good = {"size": 28, "epochs": 1, "batch_size": 8, "lr": 0.001}
    assert to_dataclass(good, TrainParams, "train").epochs == 1
    with pytest.raises(ParamsError, match=r"unknown key\(s\) \['epoch'\] in train"):
        to_dataclass({**good, "epoch": 3}, TrainParams, "train")
    with pytest.raises(ParamsError, match=r"missing key\(s\) \['lr'\] in train"):
        to_dataclass({k: v for k, v in good.items() if k != "lr"}, TrainParams, "train")


def test_project_params_file_matches_the_schema():
    """Every group of the shipped params.yaml loads: a renamed field cannot go unnoticed."""
    from bloodcells.core.params import AugmentParams, ClassWeightParams, DataParams, PreprocessParams

    for group, cls in [
        ("data", DataParams),
        ("preprocess", PreprocessParams),
        ("class_weights", ClassWeightParams),
        ("augment", AugmentParams),
        ("train", TrainParams),
    ]:
        load_params(group, cls, PROJECT / "params.yaml")


def test_unknown_model_lists_the_known_ones():
    from bloodcells.architectures import create_model, list_models

    with pytest.raises(ValueError, match="Unknown model 'resnet9000'. Known models: .*skip") as error:
        create_model("resnet9000", (28, 28, 3), 8)
    assert all(name in str(error.value) for name in list_models())
    with pytest.raises(ValueError, match=r"Bad hyperparameters for model 'skip' \(models.skip"):
        create_model("skip", (28, 28, 3), 8, hparams={"depth": 3})
