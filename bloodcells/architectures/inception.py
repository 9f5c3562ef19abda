"""Inception networks: the residual-CNN report's small Inception CNN and its Inception-residual hybrid.

Report facts: each Inception block has four branches (1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max-pool
stride 1 then 1x1), every conv ReLU, every branch ending in BatchNorm, concatenated on channels
(56, then 112 channels). 8 classes: `inception` has 37,164 parameters, `hybrid` 45,524, at any size.
"""

from __future__ import annotations

import keras
from keras import layers

from bloodcells.architectures.common import conv_bn, model_inputs, softmax_head
from bloodcells.architectures.registry import RESIDUAL_CNN_REPORT, register_model
from bloodcells.core.params import AugmentParams

# Branch widths of the report's two blocks: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection).
BLOCK_WIDTHS = ((16, 16, 24, 4, 8, 8), (32, 32, 48, 8, 16, 16))


def inception_block(x, widths: tuple[int, int, int, int, int, int], name: str):
    """Four parallel branches, each ending in BatchNorm, concatenated: sum(widths[0, 2, 4, 5]) channels."""
    one, reduce3, three, reduce5, five, pool = widths
    branch1 = conv_bn(x, one, name=f"{name}_1x1", kernel_size=1)
    branch3 = conv_bn(x, reduce3, name=f"{name}_3x3_reduce", kernel_size=1, batch_norm=False)
    branch3 = conv_bn(branch3, three, name=f"{name}_3x3", kernel_size=3)
    branch5 = conv_bn(x, reduce5, name=f"{name}_5x5_reduce", kernel_size=1, batch_norm=False)
    branch5 = conv_bn(branch5, five, name=f"{name}_5x5", kernel_size=5)
    branch_pool = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = conv_bn(branch_pool, pool, name=f"{name}_pool_proj", kernel_size=1)
    return layers.Concatenate(name=f"{name}_concat")([branch1, branch3, branch5, branch_pool])


def _build_inception(
    name: str,
    input_shape: tuple[int, int, int],
    n_classes: int,
    augment: AugmentParams | None,
    residual: bool,
    dropout: float,
) -> keras.Model:
    """Conv32 stem, two Inception blocks each followed by MaxPool 2, then GAP, Dense64, Dropout, softmax.

    Args:
        residual: the hybrid: BatchNorm after the stem conv, and each block added to a linear
            1x1-conv projection of its input.
    """
    inputs, x = model_inputs(input_shape, augment)
    x = conv_bn(x, 32, name="stem", batch_norm=residual)
    x = layers.MaxPooling2D(2, name="stem_pool")(x)
    for i, widths in enumerate(BLOCK_WIDTHS, start=1):
        block = inception_block(x, widths, name=f"inception{i}")
        if residual:
            shortcut = layers.Conv2D(block.shape[-1], 1, padding="same", name=f"inception{i}_shortcut")(x)
            block = layers.Add(name=f"inception{i}_add")([block, shortcut])
        x = layers.MaxPooling2D(2, name=f"inception{i}_out_pool")(block)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(64, activation="relu", name="dense")(x)
    x = layers.Dropout(dropout, name="dense_dropout")(x)
    return keras.Model(inputs, softmax_head(x, n_classes), name=name)


@register_model(source=RESIDUAL_CNN_REPORT)
def inception(input_shape, n_classes, augment=None, dropout: float = 0.3) -> keras.Model:
    """The report's Inception CNN (stem conv without BatchNorm)."""
    return _build_inception("inception", input_shape, n_classes, augment, residual=False, dropout=dropout)


@register_model(source=RESIDUAL_CNN_REPORT)
def hybrid(input_shape, n_classes, augment=None, dropout: float = 0.3) -> keras.Model:
    """The report's Inception-residual hybrid: Inception blocks with 1x1-conv shortcuts."""
    return _build_inception("hybrid", input_shape, n_classes, augment, residual=True, dropout=dropout)
