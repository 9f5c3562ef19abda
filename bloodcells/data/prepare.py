"""The per-image transforms the training arrays went through, replayed on any new image.

Preprocess records them (summary.json, then the model card): first the cell-centred crop
(`cell_crop`: the fill, or None), then the stain normalisation (`stain_normalization`: the method
and its target). `prepare` applies a record in that order; preprocess, `predict`, `validate` and
`serve` all call it, so a new image reaches the model exactly as the training images did.

With a cell crop, a new image file is decoded at `decode_side`, CROP_SOURCE_SCALE times the model's
side, and the crop cuts the cell from those pixels straight to the model's side. Another lab's cell
may fill a third of its image where the training cells fill two thirds: cut from the model-side
image, it would be a blurred enlargement of a few pixels; cut from the finer one, it is as sharp as
the training cells are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bloodcells.data.cell_crop import cell_crop
from bloodcells.data.stain import apply_stain_normalization

CROP_SOURCE_SCALE = 4  # new images are decoded at 4x the model's side when the card crops cells


def decode_side(record: dict[str, Any], side: int) -> int:
    """The side a new image file is decoded at for a model of `side` px with this record."""
    return side * CROP_SOURCE_SCALE if record.get("cell_crop") else side


def prepare(
    images: np.ndarray, record: dict[str, Any], side: int | None = None
) -> tuple[np.ndarray, dict[str, int] | None]:
    """(N, S, S, 3) uint8 images through the recorded transforms, at `side` (default S); crop outcomes.

    S may exceed `side` only with a cell crop (files decoded at `decode_side`); MedMNIST arrays come
    at the model's side and are cropped there, as the training arrays were.
    """
    side = side or images.shape[1]
    outcomes = None
    crop = record.get("cell_crop")
    if crop:
        images, outcomes = cell_crop(images, crop["fill"], side)
    elif images.shape[1] != side:
        raise ValueError(f"images of side {images.shape[1]} px for a model of {side} px without a cell crop")
    return apply_stain_normalization(images, record.get("stain_normalization")), outcomes
