"""Test-time augmentation over the 8 symmetries of a square image (rotations by 90 degrees and flips).

A cell has no "up": its class does not change under these transforms, so averaging the model's
probabilities over them removes orientation noise from each prediction at 8x the inference cost.
"""

from __future__ import annotations

import keras
import numpy as np


def dihedral_view(images: np.ndarray, index: int) -> np.ndarray:
    """View `index` (0-7) of a batch (N, H, W, C): `index % 4` quarter turns, then a flip if `index >= 4`."""
    view = np.rot90(images, k=index % 4, axes=(1, 2))
    return np.ascontiguousarray(view[:, :, ::-1] if index >= 4 else view)


def predict_probabilities(
    model: keras.Model, images: np.ndarray, batch_size: int, views: int = 1
) -> np.ndarray:
    """Class probabilities (N, n_classes), averaged over the first `views` (1-8, the schema's TtaViews)."""
    total = sum(
        model.predict(dihedral_view(images, i), batch_size=batch_size, verbose=0) for i in range(views)
    )
    return total / views
