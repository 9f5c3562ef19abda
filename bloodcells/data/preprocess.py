"""Validate one size's MedMNIST-format arrays and summarise them: counts, channel statistics, duplicates.

MedMNIST files must come at MedMNIST's sizes (and split sizes, when checked); files built from an
image folder may have any size and split sizes. Grayscale sets (images (N, H, W)) become three equal
channels, so every later stage and architecture sees (N, H, W, 3). Nothing here unpickles: npz
members load with `allow_pickle=False`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bloodcells.core.files import write_json, write_npy
from bloodcells.core.params import DataParams, PreprocessParams
from bloodcells.core.paths import preprocessed_dir, raw_path
from bloodcells.core.stage import require
from bloodcells.data.cell_crop import cell_crop
from bloodcells.data.medmnist import dataset_info
from bloodcells.data.near_duplicates import dihedral_hashes, near_duplicate_report
from bloodcells.data.splits import SPLITS, Split, read_class_names, read_decoding
from bloodcells.data.stain import apply_stain_normalization, fit_stain_normalization

MAX_LISTED_DUPLICATES = 100
STATS_CHUNK_PIXELS = 1 << 20  # pixels per step of the channel statistics: 25 MB of uint64 for RGB


class PreprocessError(ValueError):
    """The raw file is not a valid MedMNIST array set; the message names the file and the fault."""


def load_raw(path: Path) -> dict[str, np.ndarray]:
    """Load every array of an npz without ever unpickling."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as error:
        raise PreprocessError(f"{path}: not a readable npz ({error})") from error


def gray_to_rgb(images: np.ndarray) -> np.ndarray:
    """Grayscale images (N, H, W) or (N, H, W, 1) as three equal channels (N, H, W, 3), any dtype kept.

    Every architecture, ImageNet's pre-trained ones included, takes three channels; equal channels
    carry exactly the grayscale information.
    """
    gray = images.reshape(images.shape[:3])
    return np.repeat(gray[..., None], 3, axis=-1)


def validate(
    arrays: dict[str, np.ndarray],
    size: int,
    n_classes: int,
    expected_counts: dict[str, int] | None,
    source: str,
) -> dict[str, Split]:
    """Check keys, shapes, dtypes, label range and split sizes; return the splits.

    Args:
        arrays: the npz contents, MedMNIST keys (`train_images`, `train_labels`, ...).
        size: the image side the file must have.
        n_classes: labels must lie in [0, n_classes).
        expected_counts: images per split to insist on, or None to accept any.
        source: the file's name, for error messages.
    """
    expected_keys = {f"{split}_{kind}" for split in SPLITS for kind in ("images", "labels")}
    missing = sorted(expected_keys - set(arrays))
    if missing:
        raise PreprocessError(f"{source}: missing keys {missing}; found {sorted(arrays)}")
    splits = {}
    for split in SPLITS:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape[1:] in ((size, size), (size, size, 1)):  # grayscale MedMNIST (OrganAMNIST, ...)
            images = gray_to_rgb(images)
        if images.ndim != 4 or images.shape[1:] != (size, size, 3):
            raise PreprocessError(
                f"{source}: {split}_images has shape {images.shape}, expected (N, {size}, {size}, 3) "
                f"or grayscale (N, {size}, {size})"
            )
        if images.dtype != np.uint8:
            raise PreprocessError(f"{source}: {split}_images has dtype {images.dtype}, expected uint8")
        labels = labels.reshape(len(labels), -1) if labels.ndim > 1 else labels[:, None]
        if labels.shape != (len(images), 1):
            raise PreprocessError(
                f"{source}: {split}_labels has shape {arrays[f'{split}_labels'].shape}, "
                f"expected ({len(images)}, 1)"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise PreprocessError(f"{source}: {split}_labels has dtype {labels.dtype}, expected integers")
        bad = (labels < 0) | (labels >= n_classes)
        if bad.any():
            raise PreprocessError(
                f"{source}: {split}_labels has {int(bad.sum())} value(s) outside [0, {n_classes - 1}], "
                f"e.g. {int(labels[bad][0])}"
            )
        if expected_counts and len(images) != expected_counts[split]:
            raise PreprocessError(
                f"{source}: {split} has {len(images)} images, MedMNIST's split has "
                f"{expected_counts[split]} (set preprocess.check_split_sizes: false for a subset)"
            )
        splits[split] = Split(images=images, labels=labels[:, 0].astype(np.uint8))
    return splits


def image_digests(images: np.ndarray) -> list[bytes]:
    """A content hash per image: equal digests mean byte-identical images."""
    return [hashlib.blake2b(image.tobytes(), digest_size=16).digest() for image in images]


def drop_cross_split_duplicates(splits: dict[str, Split]) -> tuple[dict[str, Split], dict[str, int]]:
    """Remove from val and test every image that also appears in an earlier split (train, then val).

    Such copies leak training images into evaluation. Returns the cleaned splits and how many
    images each split lost.
    """
    seen: set[bytes] = set()
    cleaned, dropped = {}, {}
    for split in SPLITS:
        digests = image_digests(splits[split].images)
        keep = np.array([digest not in seen for digest in digests], dtype=bool)
        seen.update(digests)
        cleaned[split] = Split(images=splits[split].images[keep], labels=splits[split].labels[keep])
        dropped[split] = int((~keep).sum())
    return cleaned, dropped


def find_duplicates(splits: dict[str, Split]) -> dict[str, Any]:
    """Exact duplicate images (same bytes) within and across splits, with their labels."""
    groups: dict[bytes, list[tuple[str, int, int]]] = defaultdict(list)
    for split, data in splits.items():
        for index, digest in enumerate(image_digests(data.images)):
            groups[digest].append((split, index, int(data.labels[index])))
    duplicate_groups = [members for members in groups.values() if len(members) > 1]
    duplicate_groups.sort()
    pairs = sum(len(m) * (len(m) - 1) // 2 for m in duplicate_groups)
    cross = [m for m in duplicate_groups if len({split for split, _, _ in m}) > 1]
    conflicting = [m for m in duplicate_groups if len({label for _, _, label in m}) > 1]
    as_records = [[{"split": s, "index": i, "label": lab} for s, i, lab in m] for m in duplicate_groups]
    return {
        "pairs": pairs,
        "groups": len(duplicate_groups),
        "cross_split_groups": len(cross),
        "train_test_groups": sum(1 for m in cross if {"train", "test"} <= {s for s, _, _ in m}),
        "conflicting_label_groups": len(conflicting),
        "listed": as_records[:MAX_LISTED_DUPLICATES],
    }


def channel_stats(
    images: np.ndarray, chunk_pixels: int = STATS_CHUNK_PIXELS
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) std in [0, 1] of uint8 images (N, H, W, C), in one streaming pass.

    Exact integer sums of values and of squares (uint64), a few images at a time, so memory stays
    at one small chunk instead of a float64 copy of every pixel.
    """
    channels = images.shape[-1]
    per_image = max(1, images[0].size // channels) if len(images) else 1
    step = max(1, chunk_pixels // per_image)
    total = np.zeros(channels, dtype=np.uint64)
    squares = np.zeros(channels, dtype=np.uint64)
    for start in range(0, len(images), step):
        block = np.asarray(images[start : start + step]).reshape(-1, channels).astype(np.uint64)
        total += block.sum(axis=0)
        squares += np.einsum("ij,ij->j", block, block)
    count = max(1, images.size // channels)
    # Var = (n * sum(x^2) - sum(x)^2) / n^2, in Python integers: exact, no cancellation.
    variance = [(count * int(sq) - int(t) ** 2) / count**2 for sq, t in zip(squares, total, strict=True)]
    mean = np.array([int(t) / count for t in total])
    return mean / 255.0, np.sqrt(np.array(variance)) / 255.0


def find_near_duplicates(splits: dict[str, Split], max_distance: int) -> dict[str, Any]:
    """Near-duplicate pairs (rotated, flipped, shifted or re-compressed copies) within and across splits."""
    hashes = np.concatenate([dihedral_hashes(data.images) for data in splits.values()])  # no pixel copy
    names = np.array([split for split, data in splits.items() for _ in range(len(data.labels))])
    index = np.concatenate([np.arange(len(data.labels)) for data in splits.values()])
    labels = np.concatenate([data.labels for data in splits.values()])

    def describe(i: int) -> dict[str, Any]:
        return {"split": str(names[i]), "index": int(index[i]), "label": int(labels[i])}

    return near_duplicate_report(hashes, names, labels, max_distance, describe)


def normalize_stains(splits: dict[str, Split], method: str) -> tuple[dict[str, Split], dict[str, Any]]:
    """Stain-normalise every split towards the train split's statistics; the record says how."""
    record = fit_stain_normalization(method, np.asarray(splits["train"].images))
    if record["method"] == "none":
        return splits, record
    return {
        split: Split(images=apply_stain_normalization(np.asarray(data.images), record), labels=data.labels)
        for split, data in splits.items()
    }, record


def crop_cells(
    splits: dict[str, Split], fill: float | None
) -> tuple[dict[str, Split], dict[str, Any] | None]:
    """Cut every image around its stained cell (bloodcells.data.cell_crop); the record says how it went."""
    if fill is None:
        return splits, None
    cropped, outcomes = {}, {}
    for split, data in splits.items():
        images, outcomes[split] = cell_crop(np.asarray(data.images), fill)
        cropped[split] = Split(images=images, labels=data.labels)
    return cropped, {"fill": fill, "outcomes": outcomes}


def summarize(splits: dict[str, Split], names: list[str]) -> dict[str, Any]:
    """Counts per class per split, train channel mean/std in [0, 1], and duplicates."""
    counts = {
        split: {names[c]: int(n) for c, n in enumerate(np.bincount(data.labels, minlength=len(names)))}
        for split, data in splits.items()
    }
    mean, std = channel_stats(splits["train"].images)
    return {
        "classes": names,
        "image_shape": list(splits["train"].images.shape[1:]),
        "counts": counts,
        "totals": {split: len(data.labels) for split, data in splits.items()},
        "channel_mean": [round(float(v), 6) for v in mean],
        "channel_std": [round(float(v), 6) for v in std],
        "duplicates": find_duplicates(splits),
    }


def write_preprocessed(splits: dict[str, Split], summary: dict[str, Any], out_dir: Path) -> None:
    """Write every split's arrays and the summary into `out_dir`."""
    for split, data in splits.items():
        write_npy(out_dir / f"{split}_images.npy", data.images)
        write_npy(out_dir / f"{split}_labels.npy", data.labels)
    write_json(out_dir / "summary.json", summary)


def preprocess(size: int, data: DataParams, params: PreprocessParams) -> dict[str, Any]:
    """Validate data/raw's file of one size, clean it if asked, and write data/preprocessed/<size>/."""
    names = read_class_names()
    source = require(raw_path(data.dataset, size), "download")
    expected = None
    if data.source == "medmnist" and params.check_split_sizes:
        expected = dataset_info(data.dataset)["n_samples"]
    splits = validate(load_raw(source), size, len(names), expected, str(source))
    dropped = {split: 0 for split in SPLITS}
    if params.drop_cross_split_duplicates:
        splits, dropped = drop_cross_split_duplicates(splits)
    near = None
    if params.report_near_duplicates_within is not None:
        near = find_near_duplicates(splits, params.report_near_duplicates_within)  # on the images as given
    splits, crop = crop_cells(splits, params.cell_crop)  # on the colours as decoded, before stains move
    splits, stain = normalize_stains(splits, params.stain_normalization)
    summary = summarize(splits, names)
    summary |= {
        "dropped_cross_split_duplicates": dropped,
        "decoding": read_decoding(),
        "near_duplicates": near,
        "cell_crop": crop,
        "stain_normalization": stain,
    }
    write_preprocessed(splits, summary, preprocessed_dir(size))
    return summary
