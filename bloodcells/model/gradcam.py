"""Grad-CAM: which part of the image drove the model's decision (Selvaraju et al., 2017).

For a class c and a convolutional feature map A (H', W', K), the heat-map is
ReLU(sum_k alpha_k A_k) with alpha_k the spatial mean of d score_c / d A_k, upsampled to the image.
The score is the pre-softmax logit when the model ends in a softmax Dense layer (every model of the
registry does), else the log-probability: softmax probabilities saturate and give vanishing gradients.

The model is split at the feature map into (image -> A) and ((image, A) -> score); the second half
also takes the image because skip connections may bypass A. Keras ops do the arithmetic; only the
gradient itself needs the backend: tf.GradientTape under TensorFlow, jax.grad under JAX.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

SUPPORTED_BACKENDS = ("tensorflow", "jax")


def layer_depths(model: keras.Model) -> dict[str, int]:
    """Longest path, in layers, from the model's input to each layer of a functional model."""
    producer = {id(layer.output): layer.name for layer in model.layers}
    depths: dict[str, int] = {}
    for layer in model.layers:  # functional models list layers in topological order
        inputs = layer.input if isinstance(layer.input, list | tuple) else [layer.input]
        parents = [producer[id(t)] for t in inputs if id(t) in producer and producer[id(t)] != layer.name]
        depths[layer.name] = 1 + max((depths[p] for p in parents), default=-1)
    return depths


def last_conv_layer(model: keras.Model) -> str | None:
    """Name of the deepest Conv2D of a functional model (None if it has none at the top level).

    "Deepest" by graph depth, not list order: a residual block's 1x1 shortcut convolution is listed
    after the block's main convolutions but sits closer to the input.
    """
    depths = layer_depths(model)
    convs = [layer.name for layer in model.layers if isinstance(layer, layers.Conv2D)]
    return max(convs, key=lambda name: depths[name]) if convs else None


def split_model(model: keras.Model, layer_name: str) -> tuple[keras.Model, keras.Model]:
    """(image -> feature map) and ((image, feature map) -> class scores) at layer `layer_name`."""
    image, features = model.inputs[0], model.get_layer(layer_name).output
    head = model.layers[-1]
    if isinstance(head, layers.Dense) and head.activation is keras.activations.softmax:
        scores = ops.matmul(head.input, head.kernel) + head.bias  # the logits under the softmax
    else:
        scores = ops.log(model.outputs[0] + 1e-7)
    return keras.Model(image, features), keras.Model([image, features], scores)


def score_gradients(head: keras.Model, images, features, classes: np.ndarray):
    """d score[i, classes[i]] / d features, summed over the batch (each image only moves its own score)."""
    pick = ops.one_hot(ops.convert_to_tensor(classes), head.output.shape[-1])

    def total_score(a):
        return ops.sum(head([images, a], training=False) * pick)

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(features)
            total = total_score(features)
        return tape.gradient(total, features)
    if backend == "jax":
        import jax

        return jax.grad(total_score)(features)
    raise NotImplementedError(
        f"Grad-CAM supports the {' and '.join(SUPPORTED_BACKENDS)} backends, not {backend}"
    )


def gradcam(model: keras.Model, images: np.ndarray, classes: np.ndarray, layer_name: str) -> np.ndarray:
    """Heat-maps (N, H, W) in [0, 1] for `images` (N, H, W, C) and the class of each to explain."""
    features_model, head = split_model(model, layer_name)
    images = ops.convert_to_tensor(images)
    features = features_model(images, training=False)
    grads = score_gradients(head, images, features, np.asarray(classes))
    weights = ops.mean(grads, axis=(1, 2), keepdims=True)  # alpha_k: (N, 1, 1, K)
    cam = ops.relu(ops.sum(weights * features, axis=-1, keepdims=True))  # (N, H', W', 1)
    cam = ops.image.resize(cam, images.shape[1:3], interpolation="bilinear")[..., 0]
    cam = ops.convert_to_numpy(cam)
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, cam / np.maximum(peak, 1e-12), 0.0).astype(np.float32)
