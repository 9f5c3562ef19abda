"""Turn what a user hands `predict` (image files, folders, MedMNIST npz files) into model-ready arrays.

Images are decoded exactly as the training data was: the crop side and resize filter recorded in the
model card (`decoding`, read by bloodcells.model.card.recipe_from_card), by the folder route's own
decoder (bloodcells.data.decode), so there is one implementation of the recipe; then the card's cell
crop and stain normalisation (bloodcells.data.prepare) bring them to the model's input. As in the
folder route, a file that is not a decodable image is reported and skipped, never fatal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bloodcells.data.decode import Recipe, decode_bytes, decode_files
from bloodcells.data.folder_layout import IMAGE_SUFFIXES
from bloodcells.data.prepare import prepare
from bloodcells.model.card import input_side, recipe_from_card

DECODE_WORKERS = os.cpu_count() or 1
NPZ_SUFFIX = ".npz"


@dataclass
class Batch:
    """Model-ready images with a name for each, and the inputs that were skipped, with the reason."""

    names: list[str] = field(default_factory=list)
    images: np.ndarray | None = None  # (N, size, size, 3) uint8, prepared for the model
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    ignored: int = 0  # files in a folder without an image suffix (the folder route ignores them too)


def decode_image_bytes(data: bytes, recipe: Recipe) -> np.ndarray:
    """One uploaded file -> (size, size, 3) uint8. Raises UnreadableImage when it is not an image."""
    (array,), _ = decode_bytes(data, recipe)
    return array


def expand_inputs(inputs: Sequence[str | Path]) -> tuple[list[Path], list[Path], list[tuple[str, str]], int]:
    """(image files, npz files, missing inputs with reason, ignored count); folders are searched recursively.

    A file named on the command line is tried whatever its suffix (it is reported if it does not
    decode); inside folders only image suffixes count, as in the folder route.
    """
    images: list[Path] = []
    archives: list[Path] = []
    missing: list[tuple[str, str]] = []
    ignored = 0
    for item in map(Path, inputs):
        if item.is_dir():
            for parent, dirs, names in os.walk(item):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
                for name in sorted(names):
                    path = Path(parent) / name
                    if name.lower().endswith(IMAGE_SUFFIXES):
                        images.append(path)
                    elif name.lower().endswith(NPZ_SUFFIX):
                        archives.append(path)
                    elif not name.startswith("."):
                        ignored += 1
        elif item.is_file():
            (archives if item.suffix.lower() == NPZ_SUFFIX else images).append(item)
        else:
            missing.append((str(item), "no such file or folder"))
    return images, archives, missing, ignored


def npz_images(path: Path, size: int) -> tuple[list[str], list[np.ndarray], list[tuple[str, str]]]:
    """Every `<split>_images` array of a MedMNIST-format npz, named `file:split[i]`, or why not."""
    try:
        archive = np.load(path, allow_pickle=False)
        keys = sorted(k for k in archive.files if k.endswith("_images"))
    except Exception as error:  # np.load raises many types on a bad archive
        return [], [], [(str(path), f"not a readable npz: {type(error).__name__}: {error}")]
    if not keys:
        return [], [], [(str(path), "npz without any <split>_images array (MedMNIST format)")]
    names, arrays, skipped = [], [], []
    for key in keys:
        images = archive[key]
        if images.ndim == 3:
            images = np.repeat(images[..., None], 3, axis=-1)  # grayscale MedMNIST sets
        if images.shape[1:] != (size, size, 3) or images.dtype != np.uint8:
            skipped.append((f"{path}:{key}", f"images {images.shape[1:]} {images.dtype}, model needs "
                            f"({size}, {size}, 3) uint8"))
            continue
        split = key.removesuffix("_images")
        names += [f"{path}:{split}[{i}]" for i in range(len(images))]
        arrays.append(images)
    return names, arrays, skipped


def load_inputs(inputs: Sequence[str | Path], card: dict[str, Any], progress: bool = False) -> Batch:
    """Every image under `inputs` decoded and prepared as the card says; npz arrays (at the model's
    side, as MedMNIST's are) prepared as they are."""
    files, archives, skipped, ignored = expand_inputs(inputs)
    recipe, size = recipe_from_card(card), input_side(card)
    names: list[str] = []
    parts: list[np.ndarray] = []
    if files:
        workers = min(DECODE_WORKERS, max(1, len(files) // 64))
        decoded = decode_files(files, recipe, workers=workers, progress=progress and len(files) > 256)
        ok = [i for i, error in enumerate(decoded.errors) if error is None]
        skipped += [(str(files[i]), error) for i, error in enumerate(decoded.errors) if error is not None]
        names += [str(files[i]) for i in ok]
        parts.append(decoded.images[recipe.sizes[0]][ok])
    for archive in archives:
        archive_names, arrays, archive_skipped = npz_images(archive, size)
        names += archive_names
        parts += arrays
        skipped += archive_skipped
    images = [prepare(part, card, size)[0] for part in parts if len(part)]
    images = np.concatenate(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return Batch(names=names, images=images, skipped=skipped, ignored=ignored)


def report_skipped(batch: Batch, stream=sys.stderr, limit: int = 20) -> None:
    """One line per skipped input (the first `limit`), and a count of ignored non-image files."""
    for name, reason in batch.skipped[:limit]:
        print(f"skipped {name}: {reason}", file=stream)
    if len(batch.skipped) > limit:
        print(f"... and {len(batch.skipped) - limit} more skipped", file=stream)
    if batch.ignored:
        print(f"ignored {batch.ignored} file(s) without an image suffix inside folders", file=stream)
