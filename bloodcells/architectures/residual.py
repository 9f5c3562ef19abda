"""Residual ("skip connection") networks: the residual-CNN report's best model, and ResNet-18.

Report facts (`skip`): B1 Conv32-BN-Conv32-BN-MaxPool; B2 and B3 two Conv-BN each (64, 128) plus a
linear 1x1 shortcut from the block input, Add, MaxPool after B2 only; GAP, Dense64, Dropout .3;
308,008 parameters for 8 classes at any input size.
`resnet18` is the MedMNIST v2 benchmark's model: He et al.'s ResNet-18 (basic blocks 64/128/256/512),
with the 3x3 stride-1 stem and no max-pool that MedMNIST uses for 28 px images as an option.
"""

from __future__ import annotations

import keras
from keras import layers

from bloodcells.architectures.common import conv_bn, model_inputs, softmax_head
from bloodcells.architectures.registry import MEDMNIST_V2, RESIDUAL_CNN_REPORT, register_model
from bloodcells.core.params import AugmentParams


def residual_block(x, filters: int, name: str):
    """Two Conv-BN layers added to a linear 1x1 projection of the block's input."""
    shortcut = layers.Conv2D(filters, 1, padding="same", name=f"{name}_shortcut")(x)
    x = conv_bn(x, filters, name=f"{name}_1")
    x = conv_bn(x, filters, name=f"{name}_2")
    return layers.Add(name=f"{name}_add")([x, shortcut])


@register_model(source=RESIDUAL_CNN_REPORT)
def skip(
    input_shape, n_classes, augment=None, width: int = 32, dropout: float = 0.3, stem_stride: int = 1
) -> keras.Model:
    """The report's residual CNN; `width` scales every block (32 reproduces the report).

    `stem_stride: 2` strides the first convolution, for 64 px and up: a quarter of the FLOPs, and a
    receptive field twice as large against the cell (the same parameters; 1 is the report's model).
    """
    if stem_stride not in (1, 2):
        raise ValueError(f"models.skip.stem_stride must be 1 or 2, got {stem_stride!r}")
    inputs, x = model_inputs(input_shape, augment)
    x = conv_bn(x, width, name="block1_1", strides=stem_stride)
    x = conv_bn(x, width, name="block1_2")
    x = layers.MaxPooling2D(2, name="block1_pool")(x)
    x = residual_block(x, 2 * width, name="block2")
    x = layers.MaxPooling2D(2, name="block2_pool")(x)
    x = residual_block(x, 4 * width, name="block3")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(64, activation="relu", name="dense")(x)
    x = layers.Dropout(dropout, name="dense_dropout")(x)
    return keras.Model(inputs, softmax_head(x, n_classes), name="skip")


def conv_bn_relu(x, filters: int, name: str, kernel_size: int = 3, strides: int = 1, relu: bool = True):
    """Conv (no bias: BatchNorm has one) -> BatchNorm -> ReLU, the ResNet order."""
    x = layers.Conv2D(filters, kernel_size, strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def basic_block(x, filters: int, strides: int, name: str):
    """ResNet basic block: two 3x3 Conv-BN added to the input (a 1x1 Conv-BN projection if shapes differ)."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv_bn_relu(
            x, filters, name=f"{name}_shortcut", kernel_size=1, strides=strides, relu=False
        )
    x = conv_bn_relu(x, filters, name=f"{name}_1", strides=strides)
    x = conv_bn_relu(x, filters, name=f"{name}_2", relu=False)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _build_resnet(
    name: str,
    input_shape: tuple[int, int, int],
    n_classes: int,
    augment: AugmentParams | None,
    blocks_per_stage: tuple[int, ...],
    small_stem: bool,
    width: int = 64,
) -> keras.Model:
    """ResNet of basic blocks: stem, stages of width x 1, 2, 4, 8 (stride 2 from the second), GAP, softmax.

    Args:
        small_stem: 3x3 stride-1 stem conv and no max-pool (for 28 px images); else the ImageNet stem,
            7x7 stride 2 then 3x3 max-pool stride 2 (32x smaller feature maps in all).
    """
    inputs, x = model_inputs(input_shape, augment)
    if small_stem:
        x = conv_bn_relu(x, width, name="stem")
    else:
        x = conv_bn_relu(x, width, name="stem", kernel_size=7, strides=2)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for i, n_blocks in enumerate(blocks_per_stage, start=1):
        for j in range(1, n_blocks + 1):
            strides = 2 if i > 1 and j == 1 else 1
            x = basic_block(x, width * 2 ** (i - 1), strides, name=f"stage{i}_block{j}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, softmax_head(x, n_classes), name=name)


@register_model(source=MEDMNIST_V2)
def resnet18(input_shape, n_classes, augment=None, small_stem: bool = True, width: int = 64) -> keras.Model:
    """ResNet-18: four stages of two basic blocks, 64/128/256/512 filters (`width` scales them)."""
    return _build_resnet("resnet18", input_shape, n_classes, augment, (2, 2, 2, 2), small_stem, width)
