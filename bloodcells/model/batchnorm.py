"""BatchNorm statistics re-estimated from images, no labels needed: after training (the moving averages
trail the weights) and on another lab's images (label-free test-time adaptation, `--adapt`)."""

from __future__ import annotations

import keras
import numpy as np

ADAPT_BATCH = 64  # images per BatchNorm re-estimation step on another lab's images
MIN_ADAPT_IMAGES = 2 * ADAPT_BATCH  # fewer, and the re-estimated statistics are noise


def batchnorm_layers(model: keras.Layer) -> list[keras.layers.BatchNormalization]:
    """Every trainable BatchNormalization layer of `model`, nested models (transfer backbones) included."""
    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable:
            found.append(layer)
        found += batchnorm_layers(layer)
    return found


def recompute_batchnorm(model: keras.Model, images: np.ndarray, batch_size: int, seed: int) -> int:
    """Set BatchNorm's moving statistics to their average over one pass of `images` (no labels needed).

    During training the moving averages trail the weights (momentum 0.99 remembers ~100 steps of
    older weights), which matters most on short budgets: a 5-epoch model could score far below the
    same weights with batch statistics. One forward pass in training mode with momentum k/(k+1) at
    step k makes each moving statistic the plain mean of the batch statistics of the final
    weights (PyTorch's `swa_utils.update_bn` does the same). Run on another lab's unlabelled images
    it is label-free test-time adaptation (`--adapt`). Returns the number of batches used.
    """
    norms = batchnorm_layers(model)
    order = np.random.default_rng([seed, 1]).permutation(len(images))
    full = max(1, len(order) // batch_size)  # a short last batch would weigh as much as a full one
    if not norms:
        return 0
    momenta = [layer.momentum for layer in norms]
    try:
        for step in range(full):
            for layer in norms:
                layer.momentum = step / (step + 1)
            batch = order[step * batch_size : (step + 1) * batch_size]
            model(np.asarray(images[batch]), training=True)
    finally:
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum
    return full


def adapt_batchnorm(model: keras.Model, images: np.ndarray, seed: int) -> int:
    """Label-free test-time adaptation: BatchNorm statistics re-estimated on another lab's images.

    Raises ValueError (one line) for a model without BatchNorm or too few images to estimate from.
    """
    if not batchnorm_layers(model):
        raise ValueError("--adapt: the model has no BatchNorm layer to re-estimate")
    if len(images) < MIN_ADAPT_IMAGES:
        raise ValueError(f"--adapt needs {MIN_ADAPT_IMAGES} images at least, got {len(images)}")
    return recompute_batchnorm(model, images, ADAPT_BATCH, seed)
