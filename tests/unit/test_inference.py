"""The inference library's pieces: temperature, the card's decoding recipe, inputs and bad inputs,
the augmentation-free inference model, and the page's bars."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bloodcells.architectures import create_model
from bloodcells.architectures.augment import NO_AUGMENT
from bloodcells.inference.export import inference_model
from bloodcells.inference.preprocessing import load_inputs
from bloodcells.inference.server import bars_html
from bloodcells.model.card import recipe_from_card
from bloodcells.model.temperature import apply_temperature

MEDMNIST_DECODING = {"crop": 200, "resize_filter": "bicubic"}
CARD = {"classes": ["a", "b", "c"], "input_shape": [28, 28, 3], "decoding": MEDMNIST_DECODING}


def test_temperature_is_a_softmax_of_scaled_log_probabilities():
    probs = np.array([[0.7, 0.2, 0.1], [0.05, 0.9, 0.05]], dtype=np.float32)
    np.testing.assert_allclose(apply_temperature(probs, 1.0), probs, rtol=1e-6)
    hot = apply_temperature(probs, 2.0)
    logits = np.log(probs) / 2.0
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(hot, expected, rtol=1e-6)
    np.testing.assert_allclose(hot.sum(axis=1), 1.0, rtol=1e-6)
    assert (hot.argmax(1) == probs.argmax(1)).all() and (hot.max(1) < probs.max(1)).all()
    with pytest.raises(ValueError, match="positive"):
        apply_temperature(probs, 0.0)


def test_recipe_comes_from_the_card():
    recipe = recipe_from_card(CARD)
    assert (recipe.sizes, recipe.crop, recipe.resize_filter) == ((28,), 200, "bicubic")
    unknown = recipe_from_card({**CARD, "decoding": None})
    assert unknown.crop is None  # the largest centred square
    with pytest.raises(ValueError, match="resize filter"):
        recipe_from_card({**CARD, "decoding": {"crop": 200, "resize_filter": "sinc"}})


def test_images_are_cropped_and_resized_as_training_data_was(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (363, 360, 3), dtype=np.uint8)  # PBC's odd size
    Image.fromarray(pixels).save(tmp_path / "cell.png")
    batch = load_inputs([tmp_path / "cell.png"], CARD)
    top, left = (363 - 200) // 2, (360 - 200) // 2
    square = Image.fromarray(pixels[top : top + 200, left : left + 200])
    expected = np.asarray(square.resize((28, 28), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(batch.images[0], expected)


def test_bad_inputs_are_reported_and_skipped(tmp_path):
    folder = tmp_path / "slides"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGBA", (50, 40), (10, 200, 30, 128)).save(folder / "sub" / "good.png")
    Image.new("I;16", (30, 30)).save(folder / "gray16.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    good = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(good, format="JPEG")
    (folder / "truncated.jpg").write_bytes(good.getvalue()[:200])
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    batch = load_inputs([folder, tmp_path / "missing.png", tmp_path / "other.npz"], CARD)
    assert sorted(n.rsplit("/", 1)[-1] for n in batch.names) == ["good.png", "gray16.png"]
    assert batch.images.shape == (2, 28, 28, 3) and batch.images.dtype == np.uint8
    reasons = dict(batch.skipped)
    assert reasons[str(folder / "broken.jpg")].startswith("cannot decode")
    assert reasons[str(folder / "truncated.jpg")].startswith("cannot decode")
    assert reasons[str(tmp_path / "missing.png")] == "no such file or folder"
    assert "MedMNIST" in reasons[str(tmp_path / "other.npz")]
    assert batch.ignored == 1  # notes.txt


def test_npz_images_are_taken_as_they_are_and_checked_for_size(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (5, 28, 28, 3), dtype=np.uint8)
    small = images[:2, :8, :8]
    np.savez(tmp_path / "set.npz", test_images=images, test_labels=np.zeros((5, 1)), val_images=small)
    batch = load_inputs([tmp_path / "set.npz"], CARD)
    np.testing.assert_array_equal(batch.images, images)
    assert batch.names[0].endswith("set.npz:test[0]")
    assert "model needs (28, 28, 3)" in dict(batch.skipped)[f"{tmp_path / 'set.npz'}:val_images"]


def test_inference_model_drops_augmentation_and_keeps_the_function():
    switches = {"rot90": True, "flip": True, "crop_zoom": True, "color_jitter": True}
    augment = NO_AUGMENT.model_copy(update=switches)
    model = create_model("small_cnn", (28, 28, 3), 8, augment, {"batch_norm": True, "dropout": 0.5})
    assert any(layer.name.startswith("augment_") for layer in model.layers)
    plain = inference_model(model)
    assert not any(layer.name.startswith("augment_") for layer in plain.layers)
    assert plain.get_layer("rescale") is not None
    images = np.random.default_rng(2).integers(0, 256, (4, 28, 28, 3), dtype=np.uint8)
    np.testing.assert_allclose(plain.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)


def test_an_ensembles_members_lose_their_augmentation_and_the_saved_model_exports(tmp_path):
    """train.ensemble's model nests its members; their seeded layers once broke the SavedModel."""
    from bloodcells.architectures.ensemble import average_ensemble
    from bloodcells.inference.export import nested_layers, save_saved_model

    augment = NO_AUGMENT.model_copy(update={"rot90": True, "flip": True, "crop_zoom": True})
    hparams = {"batch_norm": True, "dropout": 0.5}
    members = [create_model("small_cnn", (28, 28, 3), 8, augment, hparams) for _ in range(2)]
    ensemble = average_ensemble(members, (28, 28, 3), "small_cnn_x2")
    assert any(layer.name.startswith("augment_") for layer in nested_layers(ensemble))
    plain = inference_model(ensemble)
    assert [layer.name for layer in plain.layers if layer.name.startswith("member")] == ["member0", "member1"]
    assert not any(layer.name.startswith("augment_") for layer in nested_layers(plain))
    images = np.random.default_rng(3).integers(0, 256, (4, 28, 28, 3), dtype=np.uint8)
    expected = ensemble.predict(images, verbose=0)
    np.testing.assert_allclose(plain.predict(images, verbose=0), expected, atol=1e-6)
    save_saved_model(plain, tmp_path / "saved_model")
    import tensorflow as tf

    served = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
    probabilities = served(image=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch", "raw"])
def test_imagenet_scaling_becomes_a_plain_keras_layer(mode, tmp_path):
    import keras

    from bloodcells.architectures.transfer import ImageNetScaling

    inputs = keras.Input((8, 8, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = ImageNetScaling(mode, name="imagenet_scaling")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3)(x))
    plain = inference_model(model)
    assert not any(isinstance(layer, ImageNetScaling) for layer in plain.layers)
    plain.save(tmp_path / "plain.keras")
    # Loadable without the project's classes: nothing in the file names them.
    assert "bloodcells" not in str(keras.saving.load_model(tmp_path / "plain.keras").get_config())
    images = np.random.default_rng(3).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    np.testing.assert_allclose(plain.predict(images, verbose=0), model.predict(images, verbose=0),
                               rtol=1e-5, atol=1e-4)


def test_bars_are_as_wide_as_the_probabilities():
    bars = bars_html(np.array([0.25, 0.7, 0.05]), ["basophil", "eosinophil", "immature granulocytes(x, y)"])
    assert bars.count('class="bar') == 3
    assert 'style="width:70.0%"' in bars and 'class="bar top"' in bars
    assert ">immature granulocytes<" in bars  # the long name shortened, in full in the tooltip


def test_the_cards_preprocessing_names_the_transforms_after_decoding():
    from bloodcells.inference.export_card import preprocessing_text

    plain = {"input_shape": [28, 28, 3], "decoding": {"crop": 200, "resize_filter": "bicubic"}}
    assert "stain" not in preprocessing_text(plain) and "stained cell" not in preprocessing_text(plain)
    assert "resized to 28 x 28 px" in preprocessing_text(plain)
    record = {"cell_crop": {"fill": 0.65}, "stain_normalization": {"method": "macenko", "target": {}}}
    text = preprocessing_text(plain | record)
    assert "stained cell (its box 65% of the side)" in text and "Macenko stain normalisation" in text
    assert "resized to 112 x 112 px" in text and "resized to 28 x 28 px" in text  # finer, then the cell cut
    assert text.index("bicubic") < text.index("stained cell") < text.index("Macenko")  # prepare's order
