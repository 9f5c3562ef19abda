"""Test-time augmentation over the 8 symmetries of a square image (rotations by 90 degrees and flips).

A cell has no "up": its class does not change under these transforms, so averaging the model's
probabilities over them removes orientation noise from each prediction at 8x the inference cost.
The evaluate stage, `validate` and `predict`/`serve` all predict through `predict_probabilities`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

BATCH_SIZE = 256


def dihedral_view(images: np.ndarray, index: int) -> np.ndarray:
    """View `index` (0-7) of a batch (N, H, W, C): `index % 4` quarter turns, then a flip if `index >= 4`."""
    view = np.rot90(images, k=index % 4, axes=(1, 2))
    return np.ascontiguousarray(view[:, :, ::-1] if index >= 4 else view)


def predict_probabilities(
    model: keras.Model,
    images: np.ndarray,
    batch_size: int = BATCH_SIZE,
    views: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Class probabilities (N, n_classes), averaged over the first `views` (1-8, the schema's TtaViews).

    Batch by batch, so a memory-mapped split is read once and only one batch of views is held.
    """
    from tqdm import tqdm

    out = np.zeros((len(images), model.output_shape[-1]), dtype=np.float32)
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, unit="batch", desc="predict", file=sys.stderr, disable=not progress):
        batch = np.asarray(images[start : start + batch_size])
        total = sum(np.asarray(model.predict_on_batch(dihedral_view(batch, i))) for i in range(views))
        out[start : start + len(batch)] = total / views
    return out
