"""Every registered model trains a step, saves and reloads identically; the transfer models' builds.

Out of the quick suite: a transfer model writes a ~100 MB file. Keras runs eagerly here (a quarter
of the time); tests/e2e/test_pipeline_models.py trains one model of each family compiled, through
`dvc exp run`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import keras
import numpy as np
import pytest

from bloodcells.architectures import create_model, list_models
from bloodcells.architectures import transfer as transfer_family
from tests.conftest import PROJECT, eager_keras
from tests.unit.test_architectures import (
    N_CLASSES,
    SIZES,
    TRANSFER,
    assert_builds,
    shipped_hparams,
    train_step_save_and_reload,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def eager() -> Iterator[None]:
    with eager_keras():
        yield


@pytest.fixture(autouse=True)
def fresh_keras_session():
    yield
    keras.backend.clear_session(free_memory=False)  # no gc.collect(): a quarter of a second each


@pytest.mark.parametrize("name", [name for name in list_models() if name != "skip"])
def test_trains_a_step_and_reloads_identically(name, tmp_path):
    train_step_save_and_reload(name, tmp_path)


@pytest.mark.parametrize("name", TRANSFER)
def test_transfer_builds_at_every_size(name):
    assert_builds(name, SIZES)


@pytest.mark.parametrize("name", TRANSFER)
def test_transfer_small_inputs_are_padded_and_large_enough_ones_left_alone(name):
    minimum = transfer_family.BACKBONES[name].min_size
    padded = create_model(name, (28, 28, 3), N_CLASSES, hparams=shipped_hparams(name, fit="pad"))
    assert tuple(padded.get_layer("fit_pad").output.shape) == (None, minimum, minimum, 3)
    exact = create_model(name, (minimum, minimum, 3), N_CLASSES, hparams=shipped_hparams(name, fit="none"))
    assert not {"fit_pad", "fit_resize"} & {layer.name for layer in exact.layers}


def test_padding_centres_the_image_in_black():
    model = create_model("resnet50", (28, 28, 3), N_CLASSES, hparams=shipped_hparams("resnet50", fit="pad"))
    probe = keras.Model(model.input, model.get_layer("fit_pad").output)
    padded = probe.predict(np.full((1, 28, 28, 3), 255, np.uint8), verbose=0)[0]  # (32, 32, 3)
    assert padded[2:30, 2:30].min() == 1.0 and padded.sum() == 28 * 28 * 3


@pytest.mark.parametrize(
    ("freeze", "backbone_trains"),
    [("none", "every layer"), ("all", "nothing"), ("all_but_bn", "batch norm only")],
)
def test_transfer_freeze_modes(freeze, backbone_trains):
    model = create_model(
        "resnet50", (32, 32, 3), N_CLASSES, hparams=shipped_hparams("resnet50", freeze=freeze)
    )
    backbone = model.get_layer("backbone")
    trainable = {id(w) for w in backbone.trainable_weights}
    batch_norms = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    bn_weights = {id(w) for layer in batch_norms for w in (layer.gamma, layer.beta)}
    head = [w for w in model.trainable_weights if id(w) not in {id(v) for v in backbone.weights}]
    assert head, "the head always trains"
    if backbone_trains == "nothing":
        assert not trainable
    elif backbone_trains == "batch norm only":
        assert trainable == bn_weights
    else:
        assert bn_weights < trainable


def test_transfer_loads_a_local_weights_file(tmp_path):
    """An offline machine can use a copy of the headless network's weights file."""
    source = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "efficientnetb0_notop.weights.h5"
    source.save_weights(path)
    model = create_model(
        "efficientnet_b0",
        (32, 32, 3),
        N_CLASSES,
        hparams=shipped_hparams("efficientnet_b0", weights=str(path)),
    )
    for loaded, saved in zip(model.get_layer("backbone").get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(loaded, saved)


def test_model_table_counts_and_refusals():
    spec = importlib.util.spec_from_file_location("model_table", PROJECT / "scripts" / "model_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.model_table(
        ["inception", "resnet50"], (28, 64), {"resnet50": shipped_hparams("resnet50", fit="none")}
    )
    header, rule, inception_row, resnet_row = table.splitlines()
    assert header == "| model | family | params @28 px | params @64 px | source |"
    assert inception_row.startswith("| `inception` | inception | 37,164 | 37,164 | residual-CNN report")
    assert "| n/a: resnet50 needs inputs of at least 32x32 px, got 28x28" in resnet_row
    assert "| 25,761,352 |" in resnet_row
