"""Pieces every architecture shares: the input stem and the classifier head."""

from __future__ import annotations

import keras
from keras import layers

from bloodcells.architectures.augment import augmentation_layers
from bloodcells.core.params import AugmentParams


def model_inputs(input_shape: tuple[int, int, int], augment: AugmentParams | None) -> tuple:
    """uint8 image input, then augmentation (training only), then scaling to [0, 1].

    Returns:
        (inputs, x): the `keras.Input` and the float tensor the architecture builds on.
    """
    inputs = keras.Input(shape=input_shape, dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for layer in augmentation_layers(augment) if augment else []:
        x = layer(x)
    return inputs, x


def conv_bn(
    x,
    filters: int,
    name: str,
    kernel_size: int = 3,
    batch_norm: bool = True,
    activation: str | None = "relu",
    padding: str = "same",
    strides: int = 1,
):
    """Convolution (3x3 'same' unless told) with ReLU, then batch normalisation (the reports' order)."""
    x = layers.Conv2D(
        filters, kernel_size, strides, padding=padding, activation=activation, name=f"{name}_conv"
    )(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x) if batch_norm else x


def softmax_head(x, n_classes: int):
    """The final class-probability layer every model ends with (float32 even under mixed precision)."""
    return layers.Dense(n_classes, activation="softmax", dtype="float32", name="predictions")(x)
