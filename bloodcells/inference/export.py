"""The export stage's work: the deployable model and its formats, written to models/export/.

- model.keras: the inference network (rescaling kept, the training-only `augment_*` layers removed,
  a transfer model's ImageNet scaling as a fixed Dense), a plain functional model of Keras's own
  layers that `keras.saving.load_model` opens without this project installed;
- saved_model/: TensorFlow SavedModel, signature `serving_default`: uint8 images (N, H, W, 3) in,
  `probabilities` (N, classes) out (TF Serving, TF.js and most converters start from it);
- model.tflite: TFLite/LiteRT flatbuffer (float32 weights, uint8 input), for phones and edge devices;
- model.onnx: ONNX (opset ONNX_OPSET, by tf2onnx from the serving function), for ONNX Runtime and others;
- model.json: the card (data, classes, preprocessing, metrics, intended use, the files above);
- README.md: the same card for people.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np

from bloodcells.architectures.transfer import ImageNetScaling
from bloodcells.core.files import atomic_path, staged_folders, write_json
from bloodcells.core.paths import EVAL_METRICS_FILE, EXPORT_DIR, MODEL_CARD, MODEL_FILE
from bloodcells.core.stage import StageError, require
from bloodcells.inference.export_card import card_markdown, export_card
from bloodcells.model.card import CARD_NAME, MODEL_NAME
from bloodcells.model.load import load_model

AUGMENT_PREFIX = "augment_"
KERAS_NAME, SAVED_MODEL_NAME = MODEL_NAME, "saved_model"
TFLITE_NAME, ONNX_NAME = "model.tflite", "model.onnx"
ONNX_OPSET = 18
README_NAME = "README.md"
SIGNATURE, OUTPUT_NAME = "serving_default", "probabilities"


def channel_map(layer: ImageNetScaling) -> keras.layers.Dense:
    """A plain Dense over the channel axis computing exactly what `layer` does (each mode is affine)."""
    mean, std = np.array(layer.MEAN), np.array(layer.STD)
    kernel, bias = {
        "caffe": (np.eye(3)[::-1] * 255.0, -np.array(layer.CAFFE_MEAN_BGR)),  # RGB -> BGR, 0-255
        "tf": (np.eye(3) * 2.0, -np.ones(3)),
        "torch": (np.diag(1.0 / std), -mean / std),
        "raw": (np.eye(3) * 255.0, np.zeros(3)),
    }[layer.mode]
    dense = keras.layers.Dense(3, name=layer.name, trainable=False, dtype=layer.dtype_policy)
    dense.build((None, 3))
    dense.set_weights([kernel.astype("float32"), bias.astype("float32")])
    return dense


def nested_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer of `model`, inside nested models too (a `train.ensemble` model's members)."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found += nested_layers(layer)
    return found


def needs_rewriting(layer: keras.layers.Layer) -> bool:
    return layer.name.startswith(AUGMENT_PREFIX) or isinstance(layer, ImageNetScaling)


def inference_model(model: keras.Model) -> keras.Model:
    """The same network, weights shared, with only Keras's own layers: the `augment_*` layers
    (identities at inference) removed, the transfer models' ImageNet scaling as a fixed Dense.
    Nested models holding either (an ensemble's members) are rewritten the same way."""

    def call(layer, *args, **kwargs):
        if layer.name.startswith(AUGMENT_PREFIX):
            return args[0]
        if isinstance(layer, ImageNetScaling):
            return channel_map(layer)(*args)
        if isinstance(layer, keras.Model) and any(map(needs_rewriting, nested_layers(layer))):
            return inference_model(layer)(*args, **kwargs)
        return layer(*args, **kwargs)

    plain = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    left = [layer.name for layer in nested_layers(plain) if layer.name.startswith(AUGMENT_PREFIX)]
    if left:
        raise StageError(f"augmentation layers left in the inference model: {', '.join(left)}")
    return keras.Model(plain.inputs, plain.outputs, name=model.name)


def serving_function(model: keras.Model):
    """uint8 images (N, H, W, 3) -> {"probabilities": float32 (N, classes)}, as a tf.function."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.uint8, name="image")])
    def serve(image):
        return {OUTPUT_NAME: tf.cast(model(image, training=False), tf.float32)}

    return serve


def save_saved_model(model: keras.Model, folder: Path) -> None:
    """A SavedModel whose serving signature takes uint8 images and returns class probabilities."""
    import tensorflow as tf

    module = tf.Module()
    module.model = model
    module.serve = serve = serving_function(model)
    tf.saved_model.save(module, str(folder), signatures={SIGNATURE: serve})


def save_tflite(model: keras.Model, path: Path) -> None:
    """The model as a TFLite/LiteRT flatbuffer, by Keras's own exporter.

    Converting the SavedModel instead gives a 28 kB file whose outputs are NaN: its Keras 3
    variables reach the converter as resource handles that are never frozen into constants.
    """
    with atomic_path(path) as tmp:
        model.export(str(tmp), format="litert", verbose=False)


def save_onnx(model: keras.Model, path: Path) -> None:
    """The serving function as ONNX, input `image` (uint8), output `probabilities`, by tf2onnx."""
    import tf2onnx

    serve = serving_function(model)
    with atomic_path(path) as tmp:
        tf2onnx.convert.from_function(
            serve, input_signature=serve.input_signature, opset=ONNX_OPSET, output_path=str(tmp)
        )


EXPORT_FILES = {"saved_model": SAVED_MODEL_NAME, "tflite": TFLITE_NAME, "onnx": ONNX_NAME}  # besides .keras


def export_model(
    dataset: str,
    source: str,
    formats: list[str],
    model_file: Path = MODEL_FILE,
    card_file: Path = MODEL_CARD,
) -> dict[str, Any]:
    """Write models/export/ (the inference .keras and each of `formats`) with the card; return the card."""
    card = json.loads(require(card_file, "train").read_text())
    metrics = json.loads(require(EVAL_METRICS_FILE, "evaluate").read_text())
    try:
        model = inference_model(load_model(require(model_file, "train")))
    except ValueError as error:
        raise StageError(str(error)) from None
    with staged_folders(EXPORT_DIR) as (folder,):
        with atomic_path(folder / KERAS_NAME) as tmp:
            model.save(tmp)
        savers = {"saved_model": save_saved_model, "tflite": save_tflite, "onnx": save_onnx}
        for name in formats:
            savers[name](model, folder / EXPORT_FILES[name])
        files = {"keras": KERAS_NAME, **{name: EXPORT_FILES[name] for name in formats}}
        if "saved_model" in formats:
            files["signature"] = f"{SIGNATURE}: uint8 image (N, H, W, 3) -> {OUTPUT_NAME} (N, classes)"
        exported = export_card(card, metrics, files, dataset, source)
        write_json(folder / CARD_NAME, exported)
        with atomic_path(folder / README_NAME) as tmp:
            tmp.write_text(card_markdown(exported))
    written = [KERAS_NAME, *(EXPORT_FILES[name] for name in formats), CARD_NAME]
    print(f"{EXPORT_DIR}: {', '.join(written)}")
    return exported
