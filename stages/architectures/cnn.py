"""Plain convolutional networks: the residual-CNN report's baseline CNN.

Report facts: all convs 3x3 'same' + ReLU, each followed by BatchNorm, MaxPool 2 and Dropout;
1,143,880 parameters at 64 px and 4,289,608 at 128 px for 8 classes.
"""

from __future__ import annotations

import keras
from keras import layers

from stages.architectures.common import conv_bn, model_inputs, softmax_head
from stages.architectures.registry import register_model
from stages.params import AugmentParams


def _build_plain_cnn(
    name: str,
    input_shape: tuple[int, int, int],
    n_classes: int,
    augment: AugmentParams | None,
    filters: tuple[int, ...],
    block_dropout: tuple[float, ...],
    dense_units: int,
    dense_dropout: float,
) -> keras.Model:
    """Conv-BN-MaxPool-Dropout blocks, then Flatten-Dense-Dropout-softmax."""
    inputs, x = model_inputs(input_shape, augment)
    for i, (width, rate) in enumerate(zip(filters, block_dropout, strict=True), start=1):
        x = conv_bn(x, width, name=f"block{i}")
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
        x = layers.Dropout(rate, name=f"block{i}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    x = layers.Dropout(dense_dropout, name="dense_dropout")(x)
    return keras.Model(inputs, softmax_head(x, n_classes), name=name)


@register_model
def baseline(input_shape, n_classes, augment=None, dropout: float = 0.5) -> keras.Model:
    """The report's baseline: Conv 32/64/128, Dropout .25/.25/.30, Dense128, Dropout .5."""
    return _build_plain_cnn(
        "baseline", input_shape, n_classes, augment, (32, 64, 128), (0.25, 0.25, 0.30), 128, dropout
    )
