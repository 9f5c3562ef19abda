"""The per-image transforms the training arrays went through, replayed on any new image.

Preprocess records them (summary.json, then the model card): first the cell-centred crop
(`cell_crop`: the fill, or None), then the stain normalisation (`stain_normalization`: the method
and its target). `prepare` applies a record in that order; preprocess, `predict`, `validate` and
`serve` all call it, so a new image reaches the model exactly as the training images did.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bloodcells.data.cell_crop import cell_crop
from bloodcells.data.stain import apply_stain_normalization


def prepare(images: np.ndarray, record: dict[str, Any]) -> tuple[np.ndarray, dict[str, int] | None]:
    """(N, S, S, 3) uint8 images at the model's size through the recorded transforms; crop outcomes."""
    outcomes = None
    crop = record.get("cell_crop")
    if crop:
        images, outcomes = cell_crop(images, crop["fill"])
    return apply_stain_normalization(images, record.get("stain_normalization")), outcomes
