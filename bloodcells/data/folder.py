"""Folder source: a class-per-folder image set -> the MedMNIST-format files the download stage writes.

Called by the download stage when `data.source: folder`, with params `data` and `folder`. Writes into
data/raw/: <dataset>_<size>.npz per size (MedMNIST's keys, so every later stage is unchanged),
classes.json (label order), manifest.csv (path under data.path, class, split, index in that split,
md5 of each image used: the split assignment, tracked by DVC so it never changes under a user's feet)
and folder_summary.json (counts, skipped files with reasons, warnings, duplicate files, near-duplicate
pairs, and the groups the split assignment kept together).

Layouts and splits: folder_layout.py; decoding: decode.py. A bad file or folder is
skipped with a warning; input that leaves no usable dataset stops with a one-line FolderError before
anything is written.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bloodcells.core.files import atomic_path, write_json, write_npz
from bloodcells.core.params import DataParams, FolderParams
from bloodcells.core.paths import (
    CLASSES_FILE,
    FOLDER_SUMMARY_FILE,
    MANIFEST_FILE,
    RAW_DIR,
    raw_path,
    user_path,
)
from bloodcells.data.decode import Recipe, decode_files
from bloodcells.data.folder_layout import (
    FolderError,
    ImageFile,
    assign_splits,
    check_splits,
    choose_classes,
    file_groups,
    scan_folder,
)
from bloodcells.data.near_duplicates import dihedral_hashes, near_duplicate_report, near_pairs
from bloodcells.data.splits import SPLITS

MAX_LISTED = 100


def check_params(data: DataParams) -> None:
    """What the schema cannot say: the folder source needs `data.path`, and it must be a folder."""
    if data.path is None:
        raise FolderError("data.path is not set: point it at a folder of class folders")


def duplicate_files(files: list[ImageFile], md5s: list[str], splits: list[str]) -> dict[str, Any]:
    """Byte-identical files (same md5): groups, those across splits, those with two classes, the first few."""
    groups: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for file, md5, split in zip(files, md5s, splits, strict=True):
        groups[md5].append((file.path, file.label_name, split))
    dups = sorted(members for members in groups.values() if len(members) > 1)
    return {
        "groups": len(dups),
        "files": sum(len(members) for members in dups),
        "cross_split_groups": sum(len({split for _, _, split in m}) > 1 for m in dups),
        "conflicting_class_groups": sum(len({name for _, name, _ in m}) > 1 for m in dups),
        "listed": [[path for path, _, _ in members] for members in dups[:MAX_LISTED]],
    }


def split_groups(
    files: list[ImageFile], splits: list[str], groups: np.ndarray, params: FolderParams
) -> dict[str, Any]:
    """How the split assignment grouped files: groups of two or more, the largest, splits they straddle."""
    members: dict[int, list[int]] = defaultdict(list)
    for i, group in enumerate(groups.tolist()):
        members[group].append(i)
    multi = [m for m in members.values() if len(m) > 1]
    largest = max(multi, key=len, default=[])
    return {
        "group_near_duplicates_within": params.group_near_duplicates_within,
        "group_pattern": params.group_pattern,
        "groups": len(multi),
        "files_in_groups": sum(len(m) for m in multi),
        "largest_group": {"files": len(largest), "first": files[largest[0]].path if largest else None},
        "straddling_splits": sum(len({splits[i] for i in m}) > 1 for m in multi),  # only split folders do
    }


def manifest_csv(files: list[ImageFile], splits: list[str], md5s: list[str]) -> str:
    """One row per image used, sorted by path; `index` is its row in its split's arrays."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "class", "split", "index", "md5"])
    seen: Counter[str] = Counter()
    for file, split, md5 in zip(files, splits, md5s, strict=True):
        writer.writerow([file.path, file.label_name, split, seen[split], md5])
        seen[split] += 1
    return buffer.getvalue()


def skip_reasons(skipped: list[dict[str, str]]) -> str:
    """'; N file(s) skipped: 3x not an image: ..., 1x cannot decode: ...' (most common first), or ''."""
    if not skipped:
        return ""
    counts = Counter(entry["reason"] for entry in skipped).most_common()
    listed = ", ".join(f"{n}x {reason}" for reason, n in counts[:5])
    more = f", and {len(counts) - 5} other reason(s)" if len(counts) > 5 else ""
    return f"; {len(skipped)} file(s) skipped: {listed}{more}"


@dataclass
class FolderDataset:
    """Everything the folder source writes, built in memory first so a refusal writes nothing."""

    classes: list[str]
    arrays: dict[int, dict[str, np.ndarray]]  # size -> MedMNIST keys (train_images, train_labels, ...)
    manifest: str
    summary: dict[str, Any]


def build_dataset(root: Path, sizes: list[int], params: FolderParams, workers: int = 1) -> FolderDataset:
    """Scan, decode every file once for all sizes, choose classes, assign splits and stack the arrays."""
    scan = scan_folder(root, params.follow_external_links)
    warnings = list(scan.warnings)
    found = {file.label_name for file in scan.files}
    wanted = [f for f in scan.files if params.classes is None or f.label_name in params.classes]
    left_out = sorted(found - {file.label_name for file in wanted})
    if left_out:
        warnings.append(f"class folder(s) {left_out} not in folder.classes: left out")
    recipe = Recipe(tuple(sizes), params.crop, params.resize_filter)
    decoded = decode_files([root / file.path for file in wanted], recipe, workers, progress=True)
    skipped = [
        {"path": file.path, "reason": error}
        for file, error in zip(wanted, decoded.errors, strict=True)
        if error is not None
    ]
    if skipped:
        warnings.append(
            f"{len(skipped)} file(s) skipped, not decodable images: "
            + ", ".join(f"{s['path']} ({s['reason']})" for s in skipped[:5])
            + (", ..." if len(skipped) > 5 else "")
        )
    keep = [i for i, error in enumerate(decoded.errors) if error is None]  # rows of `decoded`
    usable = {wanted[i].label_name for i in keep}
    for name in sorted({file.label_name for file in wanted} - usable):
        warnings.append(f"class {name!r}: none of its files could be decoded")
    try:
        classes = choose_classes(usable, params.classes, found)
    except FolderError as error:
        raise FolderError(f"{error}{skip_reasons(skipped)}") from None
    files, md5s = [wanted[i] for i in keep], [decoded.md5[i] for i in keep]
    hashes = near = None
    if params.group_near_duplicates_within is not None:  # hashed at the largest size: the most detail
        hashes = dihedral_hashes(decoded.images[max(sizes)][keep])
        near = near_pairs(hashes, params.group_near_duplicates_within)
    groups, unmatched = file_groups(files, md5s, near, params.group_pattern)
    if unmatched:
        warnings.append(
            f"{unmatched} file name(s) do not match folder.group_pattern {params.group_pattern!r}: each "
            "stands alone in the split assignment"
        )
    splits = assign_splits(
        files, md5s, set(scan.split_folders), params.split_ratios, params.split_seed, groups
    )
    counts = {split: dict.fromkeys(classes, 0) for split in SPLITS}
    for file, split in zip(files, splits, strict=True):
        counts[split][file.label_name] += 1
    check_splits(counts, classes, warnings)
    small = int(decoded.smaller_than_crop[keep].sum())
    if small:
        warnings.append(
            f"{small} image(s) smaller than folder.crop={params.crop}: largest centred square used"
        )
    duplicates = duplicate_files(files, md5s, splits)
    grouping = split_groups(files, splits, groups, params)
    near_report = None
    if hashes is not None:
        labels = np.array([file.label_name for file in files])
        near_report = near_duplicate_report(
            hashes,
            np.array(splits),
            labels,
            params.group_near_duplicates_within,
            lambda i: {"path": files[i].path, "class": files[i].label_name, "split": splits[i]},
            pairs=near,
        )
        if near_report["cross_split_pairs"]:
            warnings.append(
                f"{near_report['cross_split_pairs']} near-duplicate pair(s) across splits "
                f"({near_report['split_pairs']}): the split folders as given share images"
            )
    if duplicates["groups"]:
        warnings.append(
            f"{duplicates['groups']} group(s) of byte-identical files, {duplicates['cross_split_groups']} "
            f"across splits, {duplicates['conflicting_class_groups']} with two classes"
        )

    label_of = {name: label for label, name in enumerate(classes)}
    arrays: dict[int, dict[str, np.ndarray]] = {size: {} for size in sizes}
    for split in SPLITS:
        rows = [keep[j] for j, s in enumerate(splits) if s == split]  # rows of `decoded`, in path order
        labels = np.array([label_of[wanted[i].label_name] for i in rows], dtype=np.uint8)[:, None]
        for size in sizes:
            arrays[size][f"{split}_images"] = decoded.images[size][rows]  # (N, size, size, 3)
            arrays[size][f"{split}_labels"] = labels  # (N, 1)
    summary = {
        "classes": classes,
        "counts": counts,
        "totals": {split: sum(counts[split].values()) for split in SPLITS},
        "split_folders": scan.split_folders,
        "carved_from_train": [s for s in ("val", "test") if s not in scan.split_folders],
        "files": {
            "images_found": len(scan.files),
            "used": len(files),
            "skipped": len(skipped),
            "left_out": len(scan.files) - len(wanted),
            "external_links_refused": len(scan.external_links),
            "other_files": scan.other_files,
        },
        "skipped": skipped,
        "smaller_than_crop": small,
        "duplicate_files": duplicates,
        "near_duplicates": near_report,
        "split_groups": grouping,
        "warnings": warnings,
    }
    return FolderDataset(classes, arrays, manifest_csv(files, splits, md5s), summary)


def write_folder_dataset(
    dataset: FolderDataset, name: str, raw_dir: Path = RAW_DIR, decoding: dict[str, Any] | None = None
) -> list[Path]:
    """Write every file of the folder source into `raw_dir`, then remove files a previous run left there."""
    written = []
    for size, arrays in dataset.arrays.items():
        written.append(raw_dir / raw_path(name, size).name)
        write_npz(written[-1], arrays)
    written += [raw_dir / CLASSES_FILE.name, raw_dir / MANIFEST_FILE.name, raw_dir / FOLDER_SUMMARY_FILE.name]
    write_json(written[-3], {"classes": dataset.classes, "decoding": decoding})
    with atomic_path(written[-2]) as tmp:
        tmp.write_text(dataset.manifest)
    write_json(written[-1], dataset.summary)
    for stale in set(raw_dir.iterdir()) - set(written):
        stale.unlink()
    return written


def available_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def build_from_folder(data: DataParams, params: FolderParams, raw_dir: Path = RAW_DIR) -> dict[str, Any]:
    """The download stage for `data.source: folder`: check params, build in memory, write, report."""
    check_params(data)
    dataset = build_dataset(user_path(data.path), data.sizes, params, workers=available_cores())
    decoding = {"crop": params.crop, "resize_filter": params.resize_filter}
    write_folder_dataset(dataset, data.dataset, raw_dir, decoding)
    summary = dataset.summary
    for warning in summary["warnings"]:
        print(f"warning: {warning}")
    print(
        f"{raw_dir}: {summary['files']['used']} images of {len(dataset.classes)} classes from {data.path} "
        f"at {data.sizes} px, {summary['totals']}; {len(summary['warnings'])} warning(s), "
        f"{summary['files']['skipped']} file(s) skipped (see {raw_dir / FOLDER_SUMMARY_FILE.name})"
    )
    return summary
