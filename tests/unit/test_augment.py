"""Augmentation layers: what each does in training, that each is a no-op at inference, and the switches."""

from __future__ import annotations

import numpy as np
import pytest

from bloodcells.architectures.augment import RandomCropZoom, RandomStainJitter, augmentation_layers
from bloodcells.core.params import ParamsError
from tests.conftest import group, shipped_params

SIZE = 16


def ramp(n: int = 64) -> np.ndarray:
    """(n, SIZE, SIZE, 3) float images whose value is the column index / (SIZE - 1)."""
    columns = np.arange(SIZE, dtype="float32") / (SIZE - 1)
    return np.broadcast_to(columns[None, None, :, None], (n, SIZE, SIZE, 3)).copy()


def test_the_shipped_recipe_is_rot90_and_flips_only():
    assert [layer.name for layer in augmentation_layers(group("augment"))] == [
        "augment_rot90",
        "augment_flip",
    ]
    everything = group("augment", crop_zoom=True, color_jitter=True)
    assert [layer.name for layer in augmentation_layers(everything)] == [
        "augment_rot90",
        "augment_flip",
        "augment_crop_zoom",
        "augment_color_jitter",
    ]


@pytest.mark.parametrize("layer", [RandomCropZoom(0.5, seed=1), RandomStainJitter(0.2, seed=1)])
def test_inference_leaves_images_alone(layer):
    images = np.random.default_rng(0).random((4, SIZE, SIZE, 3), dtype="float32")
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)


def test_crop_zoom_is_a_random_window_of_90_to_100_percent_of_the_area():
    """On a horizontal ramp each output row is a ramp of slope sqrt(area fraction), starting in the image."""
    out = np.asarray(RandomCropZoom(0.9, seed=3)(ramp(), training=True))[:, 0, :, 0] * (SIZE - 1)  # (N, SIZE)
    scale = np.diff(out, axis=1).mean(axis=1)
    assert np.abs(np.diff(out, axis=1) - scale[:, None]).max() < 1e-4  # one linear map per image
    assert np.all((scale >= np.sqrt(0.9) - 1e-4) & (scale <= 1 + 1e-4))
    assert np.all(out[:, 0] >= -1e-4) and np.all(out[:, -1] <= SIZE - 1 + 1e-4)  # the window is inside
    assert scale.std() > 0.005 and out[:, 0].std() > 0.01  # each image gets its own window


def test_crop_zoom_of_the_whole_area_is_the_identity():
    images = np.random.default_rng(0).random((4, SIZE, SIZE, 3), dtype="float32")
    np.testing.assert_allclose(np.asarray(RandomCropZoom(1.0)(images, training=True)), images, atol=1e-5)


def test_stain_jitter_is_a_small_per_channel_gain_and_shift():
    grey = np.full((64, SIZE, SIZE, 3), 0.5, dtype="float32")
    out = np.asarray(RandomStainJitter(0.1, seed=2)(grey, training=True))
    assert np.all(np.abs(out - 0.5) <= 0.5 * 0.1 + 0.1 + 1e-6)
    assert np.all(out == out[:, :1, :1, :])  # one gain and shift per image and channel, not per pixel
    assert np.abs(out[:, 0, 0, 0] - out[:, 0, 0, 1]).max() > 0.01  # channels differ: a colour shift
    white = np.ones((8, SIZE, SIZE, 3), dtype="float32")
    assert np.asarray(RandomStainJitter(0.1, seed=2)(white, training=True)).max() <= 1.0


def test_layers_round_trip_through_their_config():
    crop = RandomCropZoom.from_config(RandomCropZoom(0.8, seed=5, name="c").get_config())
    jitter = RandomStainJitter.from_config(RandomStainJitter(0.03, seed=5, name="j").get_config())
    assert (crop.min_area, crop.seed, jitter.strength, jitter.seed) == (0.8, 5, 0.03, 5)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("crop_min_area", 0, "greater than 0"),
        ("color_jitter_strength", 0.8, "less than or equal to 0.5"),
        ("hed_jitter_strength", 0.6, "less than or equal to 0.5"),
        ("zoom_range", 1.5, "less than or equal to 1"),
    ],
)
def test_bad_settings_are_refused_by_the_schema_naming_the_key(key, value, message):
    """The layers trust their settings: the params schema is the one range check."""
    with pytest.raises(ParamsError, match=rf"^params.yaml: augment.{key}: Input should be {message}"):
        shipped_params({f"augment.{key}": value})
