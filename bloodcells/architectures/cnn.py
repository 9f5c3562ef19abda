"""Plain convolutional networks: conv blocks, each ending in MaxPool 2 (and Dropout), then Dense layers.

Residual-CNN report facts: all convs 3x3 'same' + ReLU, each followed by BatchNorm.
`baseline` has 1,143,880 parameters at 64 px and 4,289,608 at 128 px for 8 classes;
`unet_encoder` 2,191,880 at 128 px.
"""

from __future__ import annotations

import keras
from keras import layers

from bloodcells.architectures.augment import NO_AUGMENT
from bloodcells.architectures.common import conv_bn, model_inputs, softmax_head
from bloodcells.architectures.registry import (
    FOUR_CLASS_REPORT,
    OTHER_REPORTS,
    RESIDUAL_CNN_REPORT,
    register_model,
)
from bloodcells.core.params import AugmentParams


def _build_plain_cnn(
    name: str,
    input_shape: tuple[int, int, int],
    n_classes: int,
    augment: AugmentParams | None,
    blocks: tuple[tuple[int, ...], ...],
    block_dropout: tuple[float, ...],
    dense: tuple[tuple[int, float], ...],
    batch_norm: bool = True,
    padding: str = "same",
) -> keras.Model:
    """Conv blocks then Flatten and hidden Dense layers, then softmax.

    Args:
        blocks: the filters of each block's 3x3 convs; every block ends in MaxPool 2.
        block_dropout: the Dropout rate after each block's pooling (0: no Dropout layer).
        dense: (units, dropout rate) of each hidden ReLU Dense layer after Flatten.
        batch_norm: BatchNorm after every conv's ReLU.
        padding: the convs' padding ('same', or 'valid' as in the 4-class report).
    """
    inputs, x = model_inputs(input_shape, augment)
    for i, (widths, rate) in enumerate(zip(blocks, block_dropout, strict=True), start=1):
        for j, width in enumerate(widths, start=1):
            x = conv_bn(
                x,
                width,
                name=f"block{i}" if len(widths) == 1 else f"block{i}_{j}",
                batch_norm=batch_norm,
                padding=padding,
            )
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
        if rate:
            x = layers.Dropout(rate, name=f"block{i}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, (units, rate) in enumerate(dense, start=1):
        suffix = "" if len(dense) == 1 else str(i)
        x = layers.Dense(units, activation="relu", name=f"dense{suffix}")(x)
        x = layers.Dropout(rate, name=f"dense{suffix}_dropout")(x)
    return keras.Model(inputs, softmax_head(x, n_classes), name=name)


# The residual-CNN report's three Conv-BN-MaxPool-Dropout blocks, shared by its baseline variants.
BASELINE_BLOCKS = {"blocks": ((32,), (64,), (128,)), "block_dropout": (0.25, 0.25, 0.30)}


@register_model(source=RESIDUAL_CNN_REPORT)
def baseline(input_shape, n_classes, augment=None, dropout: float = 0.5) -> keras.Model:
    """The report's baseline: Conv 32/64/128, Dropout .25/.25/.30, Dense128, Dropout .5."""
    return _build_plain_cnn(
        "baseline", input_shape, n_classes, augment, dense=((128, dropout),), **BASELINE_BLOCKS
    )


@register_model(source=RESIDUAL_CNN_REPORT)
def baseline_aug(input_shape, n_classes, augment=None, dropout: float = 0.5) -> keras.Model:
    """The baseline with the report's augmentation always on: rot90, flips, crop-zoom (90-100% area).

    Other augment settings (crop_min_area, color_jitter) still come from the `augment` group.
    Flips are horizontal and vertical: with random rot90 that gives the same 8 orientations as
    the report's horizontal flip.
    """
    forced = (augment or NO_AUGMENT).model_copy(update={"rot90": True, "flip": True, "crop_zoom": True})
    return _build_plain_cnn(
        "baseline_aug", input_shape, n_classes, forced, dense=((128, dropout),), **BASELINE_BLOCKS
    )


@register_model(source=RESIDUAL_CNN_REPORT)
def unet_encoder(input_shape, n_classes, augment=None, dropout: float = 0.3) -> keras.Model:
    """The report's U-Net-encoder CNN: Conv 32/64/128, Dropout .10/.15/.20, Dense64, Dropout .3."""
    return _build_plain_cnn(
        "unet_encoder",
        input_shape,
        n_classes,
        augment,
        blocks=((32,), (64,), (128,)),
        block_dropout=(0.10, 0.15, 0.20),
        dense=((64, dropout),),
    )


@register_model(source=FOUR_CLASS_REPORT)
def small_cnn(
    input_shape, n_classes, augment=None, batch_norm: bool = False, dropout: float = 0.5
) -> keras.Model:
    """Conv32, Conv64 ('valid'), MaxPool, Dropout .25, Dense128, Dropout .5; `batch_norm` after each conv.

    The 28 px report found BatchNorm hurt this small net: the switch lets that claim be tested.
    """
    return _build_plain_cnn(
        "small_cnn",
        input_shape,
        n_classes,
        augment,
        blocks=((32, 64),),
        block_dropout=(0.25,),
        dense=((128, dropout),),
        batch_norm=batch_norm,
        padding="valid",
    )


@register_model(source=OTHER_REPORTS)
def deep_cnn(input_shape, n_classes, augment=None, dropout: float = 0.5) -> keras.Model:
    """Four Conv-ReLU-MaxPool blocks (32/64/128/256, no BatchNorm), Dense512, Dropout .25, Dense128."""
    return _build_plain_cnn(
        "deep_cnn",
        input_shape,
        n_classes,
        augment,
        blocks=((32,), (64,), (128,), (256,)),
        block_dropout=(0, 0, 0, 0),
        dense=((512, 0.25), (128, dropout)),
        batch_norm=False,
    )
