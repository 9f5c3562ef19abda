"""Stain levers: HED jitter, hue, saturation, greyscale and zoom layers, Reinhard normalisation, and
the shifted test copy."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image
from skimage.color import hed2rgb, rgb2hed

from bloodcells.architectures import create_model
from bloodcells.architectures.augment import (
    RandomBlur,
    RandomGamma,
    RandomHEDJitter,
    RandomZoom,
    augmentation_layers,
)
from bloodcells.core.params import load_params
from bloodcells.data.prepare import prepare
from bloodcells.data.preprocess import crop_cells, normalize_stains
from bloodcells.data.splits import Split
from bloodcells.data.stain import (
    apply_stain_normalization,
    fit_stain_normalization,
    hed_to_rgb,
    lab_statistics,
    rgb_to_hed,
)
from scripts.bench.shift import Shift, shifted_copy
from tests.augmented_folder import cell
from tests.conftest import SHARED_DATA

PROJECT = Path(__file__).resolve().parents[2]
AUGMENT = load_params(PROJECT / "params.yaml").augment
PBC_SAMPLE, LISC = SHARED_DATA / "pbc-sample", SHARED_DATA / "lisc-external"


def stained(n: int = 16, size: int = 32) -> np.ndarray:
    return np.stack(
        [np.asarray(keras.ops.image.resize(cell(k), (size, size)), dtype=np.uint8) for k in range(n)]
    )


def test_hed_maths_is_skimages():
    rgb = stained().astype(np.float64) / 255
    np.testing.assert_allclose(np.maximum(rgb_to_hed(rgb), 0), rgb2hed(rgb), atol=1e-12)
    hed = rgb2hed(rgb)
    np.testing.assert_allclose(hed_to_rgb(hed), hed2rgb(hed), atol=1e-12)
    np.testing.assert_allclose(hed_to_rgb(rgb_to_hed(rgb)), rgb, atol=1e-9)  # without the clamp: lossless


def test_hed_jitter_is_the_identity_at_zero_and_at_inference():
    images = stained().astype("float32") / 255
    np.testing.assert_allclose(np.asarray(RandomHEDJitter(0.0)(images, training=True)), images, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(RandomHEDJitter(0.2, seed=1)(images, training=False)), images)


def test_hed_jitter_changes_stain_amounts_per_image_and_keeps_white_white():
    images = stained().astype("float32") / 255
    out = np.asarray(RandomHEDJitter(0.2, seed=3)(images, training=True))
    assert out.min() >= 0 and out.max() <= 1
    ratio = rgb_to_hed(out.astype(np.float64)) / np.maximum(rgb_to_hed(images.astype(np.float64)), 1e-3)
    haematoxylin = np.median(ratio[..., 0].reshape(len(images), -1), axis=1)
    assert haematoxylin.std() > 0.02  # each image its own amount
    assert np.abs(out - images).mean() > 0.01
    white = np.ones((4, 8, 8, 3), "float32")
    assert np.abs(np.asarray(RandomHEDJitter(0.2, seed=3)(white, training=True)) - 1).max() < 0.15


def test_zoom_scales_about_the_centre_in_and_out():
    square = np.zeros((64, 32, 32, 3), "float32")
    square[:, 12:20, 12:20] = 1.0
    out = np.asarray(RandomZoom(0.5, seed=0)(square, training=True))
    area = (out[..., 0] > 0.5).sum(axis=(1, 2)) / 64.0  # the bright square's area against the original's
    assert area.min() < 0.8 and area.max() > 1.3  # both out and in
    assert np.all((area > 1 / 1.5**2 - 0.2) & (area < 1.5**2 + 0.3))
    centre = out[:, 15:17, 15:17, 0]
    assert centre.min() > 0.99  # the centre stays put
    np.testing.assert_allclose(np.asarray(RandomZoom(0.0)(square, training=True)), square, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(RandomZoom(0.5)(square, training=False)), square)


def test_hue_saturation_and_greyscale_change_colour_in_training_only_and_within_their_ranges():
    from skimage.color import rgb2hsv

    images = stained(32).astype("float32") / 255
    on = AUGMENT.model_copy(update={"hue": True, "hue_shift": 0.2, "saturation": True, "grayscale": True,
                                    "grayscale_probability": 0.5})
    layers = {layer.name: layer for layer in augmentation_layers(on, seed=1)}
    hue, saturation, grey = (layers[f"augment_{name}"] for name in ("hue", "saturation", "grayscale"))
    for layer in (hue, saturation, grey):
        np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
    turned = rgb2hsv(np.asarray(hue(images, training=True)))[..., 0]
    before = rgb2hsv(images)[..., 0]
    stained_pixels = rgb2hsv(images)[..., 1] > 0.2  # hue is only defined where there is colour
    shift = np.abs((turned - before + 0.5) % 1 - 0.5)[stained_pixels]
    assert shift.max() <= 0.2 + 1e-3 and np.median(shift) > 0.02  # turned, never past the range
    gains = rgb2hsv(np.asarray(saturation(images, training=True)))[..., 1][stained_pixels]
    ratio = gains / rgb2hsv(images)[..., 1][stained_pixels]
    assert ratio.min() >= 1 / 1.5 - 0.02 and ratio.max() <= 1.5 + 0.02 and ratio.std() > 0.02
    out = np.asarray(grey(images, training=True))
    flat = np.all(np.abs(out - out[..., :1]) < 1e-5, axis=(1, 2, 3))
    assert 0 < flat.sum() < len(images)  # some images grey, the rest left in colour


def test_switches_add_the_layers_and_the_model_saves_and_loads_them(tmp_path):
    on = AUGMENT.model_copy(
        update={"zoom": True, "hed_jitter": True, "hue": True, "saturation": True, "grayscale": True}
    )
    names = ["zoom", "hed_jitter", "hue", "saturation", "grayscale"]
    assert [layer.name for layer in augmentation_layers(on)][-5:] == [f"augment_{name}" for name in names]
    assert "augment_zoom" not in [layer.name for layer in augmentation_layers(AUGMENT)]  # off by default
    model = create_model("skip", (28, 28, 3), 8, on, {"width": 8, "dropout": 0.3, "stem_stride": 1})
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("augment_hed_jitter").strength == AUGMENT.hed_jitter_strength
    images = stained(4, 28)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)


def test_reinhard_moves_every_image_to_the_train_target_and_is_recorded():
    rng = np.random.default_rng(0)
    train = stained(12)
    pale = np.clip(train * rng.uniform(0.7, 0.9, 3) + 30, 0, 255).astype(np.uint8)  # another lab's stain
    record = fit_stain_normalization("reinhard", train)
    assert record["method"] == "reinhard" and len(record["target_mean"]) == 3
    means, _ = lab_statistics(apply_stain_normalization(pale, record))
    before, _ = lab_statistics(pale)
    target = np.array(record["target_mean"])
    assert np.abs(means - target).mean() < 0.3 * np.abs(before - target).mean()
    np.testing.assert_array_equal(
        apply_stain_normalization(pale, record), apply_stain_normalization(pale, record)
    )
    assert apply_stain_normalization(pale, {"method": "none"}) is pale
    with pytest.raises(ValueError, match="unknown"):
        apply_stain_normalization(pale, {"method": "vahadane"})


def test_preprocess_normalises_every_split_with_the_train_target():
    images = stained(9)
    splits = {
        s: Split(images[i * 3 : i * 3 + 3], np.zeros(3, int)) for i, s in enumerate(("train", "val", "test"))
    }
    same, record = normalize_stains(splits, "none")
    assert same is splits and record == {"method": "none"}
    moved, record = normalize_stains(splits, "reinhard")
    assert record == fit_stain_normalization("reinhard", splits["train"].images)
    for split in splits:
        np.testing.assert_array_equal(
            moved[split].images, apply_stain_normalization(splits[split].images, record)
        )


def test_the_shifted_copy_is_deterministic_and_shifted():
    images = stained(8, 28)
    copy = shifted_copy(images)
    np.testing.assert_array_equal(copy, shifted_copy(images))
    assert copy.shape == images.shape and copy.dtype == np.uint8
    assert np.abs(copy.astype(int) - images).mean() > 10
    assert not np.array_equal(shifted_copy(images, Shift(seed=1)), copy)


def test_each_part_of_the_shift_alone_changes_only_what_it_names():
    images = stained(6, 28)
    stain, scale, jpeg = (shifted_copy(images, Shift().only(part)) for part in ("stain", "scale", "jpeg"))
    identity = Shift(vector_noise=0.0, amounts=(1.0, 1.0, 1.0), zoom=1.0, jpeg_quality=None)
    np.testing.assert_array_equal(shifted_copy(images, identity), images)
    for part in (stain, scale, jpeg):
        assert np.abs(part.astype(int) - images).mean() > 1
    np.testing.assert_array_equal(stain.shape, images.shape)
    assert np.abs(stain.mean(axis=(0, 1, 2)) - images.mean(axis=(0, 1, 2))).max() > 3  # another colour


def stain_angles(a: list[list[float]], b: list[list[float]]) -> np.ndarray:
    """Degrees between two records' haematoxylin vectors and between their eosin vectors."""
    a, b = np.asarray(a), np.asarray(b)
    cosine = (a * b).sum(axis=0) / np.linalg.norm(a, axis=0) / np.linalg.norm(b, axis=0)
    return np.degrees(np.arccos(np.clip(cosine, -1, 1)))


def test_macenko_is_recorded_deterministic_and_spares_a_blank_field():
    train = stained(12)
    record = fit_stain_normalization("macenko", train)
    assert record["method"] == "macenko" and np.shape(record["stain_vectors"]) == (3, 2)
    assert record == fit_stain_normalization("macenko", train)
    moved = apply_stain_normalization(train[::-1], record)
    assert moved.shape == train.shape and moved.dtype == np.uint8
    np.testing.assert_array_equal(moved, apply_stain_normalization(train[::-1], record))
    blank = np.full((2, 32, 32, 3), 245, np.uint8)  # no stained pixel: nothing to estimate
    np.testing.assert_array_equal(apply_stain_normalization(blank, record), blank)


@pytest.mark.skipif(
    not (PBC_SAMPLE.exists() and LISC.exists()), reason="needs ../shared/data's PBC sample and LISC"
)
def test_macenko_gives_another_labs_slides_the_train_labs_stain_vectors():
    def load(files: list[Path]) -> np.ndarray:
        return np.stack([np.asarray(Image.open(f).convert("RGB").resize((64, 64))) for f in files])

    pbc = load(sorted(PBC_SAMPLE.glob("*/[!.]*.jpg"))[::4])
    lisc = load(sorted(LISC.glob("*/*.jpg"))[::30])
    target = fit_stain_normalization("macenko", pbc)
    before = stain_angles(target["stain_vectors"], fit_stain_normalization("macenko", lisc)["stain_vectors"])
    moved = apply_stain_normalization(lisc, target)
    after = stain_angles(target["stain_vectors"], fit_stain_normalization("macenko", moved)["stain_vectors"])
    assert before.min() > 20 and (after < 0.4 * before).all()


def test_prepare_replays_preprocess_crop_then_stain_on_new_images():
    images = stained(9, 48)
    splits = {
        s: Split(images[i * 3 : i * 3 + 3], np.zeros(3, int)) for i, s in enumerate(("train", "val", "test"))
    }
    cropped, crop = crop_cells(splits, 0.65)
    moved, stain = normalize_stains(cropped, "reinhard")
    assert crop["fill"] == 0.65 and sum(crop["outcomes"]["test"].values()) == 3
    card = {"cell_crop": crop, "stain_normalization": stain}
    for split in splits:
        prepared, outcomes = prepare(splits[split].images, card)
        np.testing.assert_array_equal(prepared, moved[split].images)
        assert outcomes == crop["outcomes"][split]
    assert not np.array_equal(cropped["test"].images, splits["test"].images)
    untouched, outcomes = prepare(images, {"cell_crop": None, "stain_normalization": {"method": "none"}})
    assert untouched is images and outcomes is None


@pytest.mark.parametrize("layer", [RandomGamma(0.5, seed=3), RandomBlur(1.5, seed=3)])
def test_gamma_and_blur_change_images_in_training_only_and_stay_in_range(layer):
    images = stained(4, 28).astype("float32") / 255
    out = np.asarray(layer(images, training=True))
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    assert np.abs(out - images).mean() > 1e-3
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
    flat = np.full((2, 28, 28, 3), 0.4, "float32")  # blur keeps a flat field flat; gamma keeps it flat too
    out = np.asarray(layer(flat, training=True))
    assert np.ptp(out[0]) < 1e-5


def test_gamma_and_blur_are_switched_on_by_params_and_saved_with_the_model(tmp_path):
    augment = AUGMENT.model_copy(update={"gamma": True, "blur": True, "blur_sigma": 0.8})
    names = [layer.name for layer in augmentation_layers(augment)]
    assert names[-2:] == ["augment_gamma", "augment_blur"]
    model = create_model("small_cnn", (28, 28, 3), 8, augment, {})
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("augment_blur").max_sigma == 0.8
