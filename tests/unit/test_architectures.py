"""Every registered architecture: builds at each size, trains a step, saves and reloads; the reports' counts.

Parametrized over the registry (as timm's tests are), so a new model is tested without a new test.
Models are built with their shipped params.yaml hyperparameters; transfer models with `weights: none`.
Here the cheap checks; every model's training step and save/reload, and the transfer models' builds
(seconds each, ~100 MB files), are in tests/e2e/test_model_zoo.py. test_mixed_precision.py builds
every model, the transfer ones included, and checks its output.
"""

from __future__ import annotations

import socket
import time

import keras
import numpy as np
import pytest

from bloodcells.architectures import create_model, list_models
from bloodcells.architectures import transfer as transfer_family
from tests.conftest import group, shipped_params

N_CLASSES = 8
SIZES = (28, 64, 128)
TRANSFER = sorted(transfer_family.BACKBONES)
SHIPPED = shipped_params().models

# The residual-CNN report's parameter counts for 8 classes, {model: {size: parameters}}.
REPORT_COUNTS = {
    "baseline": {64: 1_143_880, 128: 4_289_608},
    "baseline_aug": {64: 1_143_880, 128: 4_289_608},
    "unet_encoder": {128: 2_191_880},
    "inception": dict.fromkeys(SIZES, 37_164),
    "skip": dict.fromkeys(SIZES, 308_008),
    "hybrid": dict.fromkeys(SIZES, 45_524),
}


@pytest.fixture(autouse=True)
def fresh_keras_session():
    """Each test's models start from an empty Keras session (memory and layer-name counters)."""
    yield
    keras.backend.clear_session(free_memory=False)  # no gc.collect(): a quarter of a second each


def shipped_hparams(name: str, **overrides) -> dict:
    """params.yaml's models.<name>, offline (no ImageNet download), with `overrides`."""
    hparams = dict(SHIPPED[name])
    if "weights" in hparams:
        hparams["weights"] = None
    return {**hparams, **overrides}


def tiny_batch(size: int = 28, n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), np.arange(n) % N_CLASSES


def test_every_registered_model_has_params_and_no_stray_entries():
    assert sorted(SHIPPED) == list_models()
    for name, hparams in SHIPPED.items():
        assert isinstance(hparams, dict) and hparams, f"models.{name} in params.yaml needs at least one key"


def assert_builds(name: str, sizes: tuple[int, ...]) -> None:
    for size in sizes:
        model = create_model(name, (size, size, 3), N_CLASSES, group("augment"), shipped_hparams(name))
        assert model.name == name
        assert model.input.dtype == "uint8"
        assert tuple(model.output.shape) == (None, N_CLASSES)
        assert model.layers[-1].name == "predictions"


@pytest.mark.parametrize("name", [name for name in list_models() if name not in TRANSFER])
def test_builds_at_every_size(name):
    assert_builds(name, SIZES)


@pytest.mark.parametrize("name", sorted(REPORT_COUNTS))
def test_report_parameter_counts(name):
    for size, expected in REPORT_COUNTS[name].items():
        assert create_model(name, (size, size, 3), N_CLASSES).count_params() == expected, (name, size)


def train_step_save_and_reload(name: str, tmp_path) -> None:
    images, labels = tiny_batch()
    # every augmentation on, so each custom layer goes through training and serialization
    augment = group("augment", crop_zoom=True, color_jitter=True)
    model = create_model(name, (28, 28, 3), N_CLASSES, augment, shipped_hparams(name))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(images, labels)
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))

    predictions = model.predict(images, verbose=0)
    assert predictions.shape == (4, N_CLASSES)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)
    model.save(tmp_path / f"{name}.keras")
    reloaded = keras.saving.load_model(tmp_path / f"{name}.keras")
    np.testing.assert_array_equal(reloaded.predict(images, verbose=0), predictions)
    assert len(reloaded.trainable_weights) == len(model.trainable_weights)  # freezing survives saving


def test_the_residual_cnn_trains_a_step_and_reloads_identically(tmp_path):
    """Every custom layer goes through training and saving here; every other model: tests/e2e."""
    train_step_save_and_reload("skip", tmp_path)


@pytest.mark.parametrize("name", TRANSFER)
def test_transfer_small_inputs_are_refused_with_fit_none(name):
    minimum = transfer_family.BACKBONES[name].min_size
    with pytest.raises(
        ValueError, match=f"{name} needs inputs of at least {minimum}x{minimum} px, got 28x28"
    ):
        create_model(name, (28, 28, 3), N_CLASSES, hparams=shipped_hparams(name, fit="none"))


@pytest.mark.parametrize(
    ("mode", "application"),
    [
        ("caffe", keras.applications.resnet50),
        ("raw", keras.applications.efficientnet),
        ("tf", keras.applications.inception_v3),
        ("torch", keras.applications.densenet),
    ],
)
def test_imagenet_scaling_matches_keras_preprocess_input(mode, application):
    images = np.random.default_rng(0).random((2, 8, 8, 3), dtype="float32")  # after Rescaling: [0, 1]
    expected = application.preprocess_input(images * 255.0)
    scaled = np.asarray(transfer_family.ImageNetScaling(mode)(images))
    np.testing.assert_allclose(scaled, expected, rtol=1e-5, atol=1e-4)


def test_bad_transfer_params_are_named():
    with pytest.raises(
        ValueError, match="models.resnet50.freeze must be one of none, all, all_but_bn; got 'some'"
    ):
        create_model("resnet50", (32, 32, 3), N_CLASSES, hparams=shipped_hparams("resnet50", freeze="some"))
    with pytest.raises(
        ValueError, match="'nowhere.h5' is neither imagenet, none, nor an existing weights file"
    ):
        create_model(
            "resnet50", (32, 32, 3), N_CLASSES, hparams=shipped_hparams("resnet50", weights="nowhere.h5")
        )


def test_imagenet_weights_offline_fail_fast_naming_the_alternatives(monkeypatch, tmp_path):
    monkeypatch.setattr(transfer_family, "WEIGHTS_HOST", "weights.invalid")  # never resolves (RFC 2606)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # nothing cached
    with pytest.raises(ValueError, match="weights.invalid is not reachable") as error:
        create_model("densenet121", (32, 32, 3), N_CLASSES, hparams={"weights": "imagenet"})
    message = str(error.value)
    assert "models.densenet121.weights to none" in message
    assert "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5" in message


def test_reachability_check_does_not_wait_for_a_stalled_connection(monkeypatch):
    def stalled(*args, **kwargs):
        time.sleep(30)
        raise OSError("timed out")  # what a real stalled connection ends with

    monkeypatch.setattr(socket, "create_connection", stalled)
    start = time.perf_counter()
    assert transfer_family._reachable("example.org", timeout=0.2) is False
    assert time.perf_counter() - start < 5


def test_cli_lists_every_model(capsys):
    from bloodcells.cli import main

    main(["models"])
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == list_models()


def test_a_strided_stem_quarters_the_skip_models_maps_with_the_same_parameters():
    report = create_model("skip", (64, 64, 3), N_CLASSES, None, shipped_hparams("skip", stem_stride=1))
    strided = create_model("skip", (64, 64, 3), N_CLASSES, None, shipped_hparams("skip", stem_stride=2))
    assert report.count_params() == strided.count_params() == 308_008
    assert report.get_layer("block3_add").output.shape[1:3] == (16, 16)
    assert strided.get_layer("block3_add").output.shape[1:3] == (8, 8)
    with pytest.raises(ValueError, match="models.skip.stem_stride must be 1 or 2, got 4"):
        create_model("skip", (64, 64, 3), N_CLASSES, None, shipped_hparams("skip", stem_stride=4))
