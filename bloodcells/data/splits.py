"""The preprocessed layout every stage after download reads: splits, summaries and label names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bloodcells.core.paths import CLASSES_FILE

SPLITS = ("train", "val", "test")


def read_class_names(path: Path = CLASSES_FILE) -> list[str]:
    """Label names in label order, as the download stage wrote them (from INFO or the folder names)."""
    try:
        names = json.loads(path.read_text())["classes"]
    except FileNotFoundError as error:
        raise ValueError(f"{path} not found: run `dvc repro download` first") from error
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a class list ({error})") from error
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"{path}: 'classes' must be a list of names, got {names!r}")
    return names


@dataclass(frozen=True)
class Split:
    """One split held in memory: uint8 images (N, H, W, 3) and int labels (N,)."""

    images: np.ndarray
    labels: np.ndarray


def read_decoding(path: Path = CLASSES_FILE) -> dict[str, Any] | None:
    """How the source images were cropped and resized (None when unknown), as download recorded it."""
    try:
        return json.loads(path.read_text()).get("decoding")
    except (OSError, ValueError, AttributeError):
        return None


def load_split(folder: Path, split: str, mmap: bool = True) -> Split:
    """Load one split written by the preprocess stage."""
    mode = "r" if mmap else None
    return Split(
        images=np.load(folder / f"{split}_images.npy", mmap_mode=mode, allow_pickle=False),
        labels=np.load(folder / f"{split}_labels.npy", allow_pickle=False).astype(np.int64),
    )


def load_summary(folder: Path) -> dict[str, Any]:
    """The preprocess summary (class names, counts, duplicates) of one size."""
    return json.loads((folder / "summary.json").read_text())
