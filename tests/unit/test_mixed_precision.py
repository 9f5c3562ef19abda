"""Every registered model, built under mixed precision, still outputs float32 probabilities.

A bfloat16 softmax rounds probabilities to 3 significant digits (sums off by ~1e-2, log-loss and
calibration skewed), so each builder's last layer must compute in float32 whatever the global policy.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from bloodcells.architectures import create_model, list_models
from tests.conftest import shipped_params

MODELS = shipped_params().models


@pytest.fixture
def mixed_bfloat16():
    keras.config.set_dtype_policy("mixed_bfloat16")
    yield
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session(free_memory=False)  # no gc.collect(): a quarter of a second each


@pytest.mark.parametrize("name", list_models())
def test_a_model_built_under_mixed_bfloat16_outputs_float32_probabilities(name, mixed_bfloat16):
    hparams = {**(MODELS[name] or {}), **({"weights": None} if "weights" in (MODELS[name] or {}) else {})}
    model = create_model(name, (28, 28, 3), 8, None, hparams)
    assert model.name == name and model.input.dtype == "uint8" and model.layers[-1].name == "predictions"
    assert tuple(model.output.shape) == (None, 8)
    computes_in_bfloat16 = [layer for layer in model.layers if layer.compute_dtype == "bfloat16"]
    assert computes_in_bfloat16, "the policy did not apply: the test would prove nothing"
    assert model.layers[-1].dtype_policy.compute_dtype == "float32", model.layers[-1].dtype_policy
    images = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 3), dtype=np.uint8)
    probabilities = keras.ops.convert_to_numpy(model(images, training=False))
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_a_residual_cnn_trains_under_mixed_bfloat16(mixed_bfloat16):
    model = create_model("skip", (28, 28, 3), 8, None, {**MODELS["skip"], "width": 8})
    model.compile(optimizer="adamw", loss="sparse_categorical_crossentropy")
    images = np.random.default_rng(0).integers(0, 256, (32, 28, 28, 3), dtype=np.uint8)
    history = model.fit(images, np.arange(32) % 8, epochs=2, batch_size=16, verbose=0)
    assert model.get_layer("block1_1_conv").compute_dtype == "bfloat16"
    assert model.predict(images[:4], verbose=0).dtype == np.float32
    assert np.isfinite(history.history["loss"]).all()
