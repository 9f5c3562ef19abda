"""Class weights for the training loss: each class contributes equally when `balanced`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from bloodcells.core.files import write_json
from bloodcells.core.paths import CLASS_WEIGHTS_FILE

METHODS = ("balanced", "none")


def compute_class_weights(labels: np.ndarray, n_classes: int, method: str) -> list[float]:
    """Weight per class index, so that each class contributes equally to the loss when balanced."""
    if method not in METHODS:
        raise ValueError(f"Unknown class_weights.method {method!r}. Known: {', '.join(METHODS)}")
    if method == "none":
        return [1.0] * n_classes
    present = np.unique(labels)
    if len(present) != n_classes:
        absent = sorted(set(range(n_classes)) - set(present.tolist()))
        raise ValueError(f"classes {absent} have no training images; balanced weights are undefined")
    weights = compute_class_weight("balanced", classes=np.arange(n_classes), y=labels)
    return [round(float(w), 6) for w in weights]


def read_class_weights(path: Path = CLASS_WEIGHTS_FILE) -> dict[int, float]:
    """Load the stage's output as Keras's `class_weight` mapping."""
    entries = json.loads(path.read_text())["weights"]
    return {int(index): entry["weight"] for index, entry in entries.items()}


def write_class_weights(
    names: list[str], weights: list[float], method: str, path: Path = CLASS_WEIGHTS_FILE
) -> None:
    """Write the weights by class index, with each class's name beside its weight."""
    entries = {
        str(i): {"name": name, "weight": w} for i, (name, w) in enumerate(zip(names, weights, strict=True))
    }
    write_json(path, {"method": method, "weights": entries})
