"""Residual ("skip connection") networks: the residual-CNN report's best model.

Report facts: B1 Conv32-BN-Conv32-BN-MaxPool; B2 and B3 two Conv-BN each (64, 128) plus a linear
1x1 shortcut from the block input, Add, MaxPool after B2 only; GAP, Dense64, Dropout .3;
308,008 parameters for 8 classes at any input size.
"""

from __future__ import annotations

import keras
from keras import layers

from stages.architectures.common import conv_bn, model_inputs, softmax_head
from stages.architectures.registry import register_model


def residual_block(x, filters: int, name: str):
    """Two Conv-BN layers added to a linear 1x1 projection of the block's input."""
    shortcut = layers.Conv2D(filters, 1, padding="same", name=f"{name}_shortcut")(x)
    x = conv_bn(x, filters, name=f"{name}_1")
    x = conv_bn(x, filters, name=f"{name}_2")
    return layers.Add(name=f"{name}_add")([x, shortcut])


@register_model
def skip(input_shape, n_classes, augment=None, width: int = 32, dropout: float = 0.3) -> keras.Model:
    """The report's residual CNN; `width` scales every block (32 reproduces the report)."""
    inputs, x = model_inputs(input_shape, augment)
    x = conv_bn(x, width, name="block1_1")
    x = conv_bn(x, width, name="block1_2")
    x = layers.MaxPooling2D(2, name="block1_pool")(x)
    x = residual_block(x, 2 * width, name="block2")
    x = layers.MaxPooling2D(2, name="block2_pool")(x)
    x = residual_block(x, 4 * width, name="block3")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(64, activation="relu", name="dense")(x)
    x = layers.Dropout(dropout, name="dense_dropout")(x)
    return keras.Model(inputs, softmax_head(x, n_classes), name="skip")
