"""Class-weights stage: per-class loss weights from the training labels of the training size.

Reads data/preprocessed/<train.size>/ and params `class_weights.method`, `train.size`.
Writes data/class_weights.json, keyed by class index, each entry with the class name and weight.
`balanced` is scikit-learn's n_samples / (n_classes * count); `none` gives every class 1.0.
Run: python -m stages.class_weights
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from stages.dataset import load_split, load_summary, preprocessed_dir
from stages.files import write_json
from stages.params import ClassWeightParams, TrainParams, load_params

CLASS_WEIGHTS_FILE = Path("data/class_weights.json")
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


def main() -> None:
    params = load_params("class_weights", ClassWeightParams)
    size = load_params("train", TrainParams).size
    folder = preprocessed_dir(size)
    names = load_summary(folder)["classes"]
    try:
        weights = compute_class_weights(load_split(folder, "train").labels, len(names), params.method)
    except ValueError as error:
        sys.exit(f"class_weights failed: {error}")
    named = dict(zip(names, weights, strict=True))
    write_json(
        CLASS_WEIGHTS_FILE,
        {
            "method": params.method,
            "weights": {str(i): {"name": n, "weight": w} for i, (n, w) in enumerate(named.items())},
        },
    )
    print(f"{CLASS_WEIGHTS_FILE}: {params.method} " + ", ".join(f"{n}={w:.3f}" for n, w in named.items()))


if __name__ == "__main__":
    main()
