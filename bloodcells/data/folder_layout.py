"""The layout of a class-per-folder image set: which files, which classes, which split each goes to.

Layouts: <root>/<class>/.../<image>, or <root>/<split>/<class>/.../<image> with split folders named
train, val (valid, validation) and test in any case. Splits the folder lacks are carved from train,
per class and seeded, a group at a time: copies, near-duplicates and (by a file-name pattern) one
patient's or slide's images never straddle two splits. Hidden folders and `__MACOSX` are never
classes. Only names are read here: decoding is decode.py's job, and folder.py puts the two together.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from bloodcells.data.near_duplicates import NearPairs, UnionFind
from bloodcells.data.splits import SPLITS

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


class FolderError(ValueError):
    """The folder or the `folder` params give no usable dataset; the message is one line."""


@dataclass(frozen=True)
class ImageFile:
    """One file with an image suffix, where the layout puts it."""

    path: str  # relative to data.path, POSIX separators
    label_name: str  # its class folder's name
    split: str | None  # from its split folder; None when the folder has none


@dataclass
class Scan:
    """What the folder holds, before any file is opened."""

    files: list[ImageFile]  # sorted by path
    split_folders: dict[str, str]  # split -> folder name as found, e.g. {"train": "TRAIN"}
    other_files: int  # files without an image suffix, ignored
    warnings: list[str]
    external_links: list[str] = field(default_factory=list)  # links leaving data.path, refused


def _skip_folder(name: str) -> bool:
    """Hidden folders and macOS archive debris are never classes."""
    return name.startswith(".") or name == "__MACOSX"


def _images_under(folder: Path, root: Path) -> tuple[list[str], int]:
    """Image-suffix files anywhere under `folder` (as paths relative to `root`) and the count of others."""
    images, others = [], 0
    for parent, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _skip_folder(d))
        for name in names:
            if name.lower().endswith(IMAGE_SUFFIXES):
                images.append((Path(parent) / name).relative_to(root).as_posix())
            else:
                others += 1
    return images, others


def leaves_root(path: Path, root: Path) -> bool:
    """Whether `path`, with every symbolic link on the way resolved, lies outside `root`."""
    return not path.resolve().is_relative_to(root.resolve())


def refuse_external_links(root: Path, files: list[ImageFile], warnings: list[str]) -> list[str]:
    """Drop the files whose links lead outside `root` (a counted warning); return their paths."""
    outside = [file.path for file in files if leaves_root(root / file.path, root)]
    if outside:
        warnings.append(
            f"{len(outside)} file(s) refused: symbolic links leading outside data.path, e.g. "
            + ", ".join(outside[:5])
            + " (set folder.follow_external_links: true to read them)"
        )
    return outside


def scan_folder(root: Path, follow_external_links: bool = False) -> Scan:
    """Find the layout, the split folders, the class folders and every image-suffix file.

    A file reached through a symbolic link that leaves `root` (a link to a system file, or to an image
    elsewhere) is left out with a counted warning unless `follow_external_links`; `root` itself may
    be a link.
    """
    if not root.exists():
        raise FolderError(f"data.path {str(root)!r}: no such folder")
    if not root.is_dir():
        raise FolderError(f"data.path {str(root)!r}: a file, not a folder of class folders")
    warnings: list[str] = []
    top = sorted(p.name for p in root.iterdir() if p.is_dir() and not _skip_folder(p.name))
    split_folders: dict[str, str] = {}
    for name in top:
        split = SPLIT_FOLDERS.get(name.lower())
        if split in split_folders:
            raise FolderError(
                f"data.path {str(root)!r}: two {split} folders, {split_folders[split]} and {name}"
            )
        if split:
            split_folders[split] = name
    if split_folders and "train" not in split_folders:
        raise FolderError(
            f"data.path {str(root)!r}: split folders {sorted(split_folders.values())} but no train"
        )
    for name in top:
        if split_folders and name not in split_folders.values():
            warnings.append(f"folder {name!r} ignored: not a split name (train, val, test)")
    parents = [(s, root / split_folders[s]) for s in SPLITS if s in split_folders] or [(None, root)]
    files, other_files, loose = [], 0, 0
    for split, parent in parents:
        for entry in sorted(parent.iterdir()):
            if entry.is_file():
                loose += entry.name.lower().endswith(IMAGE_SUFFIXES)
                other_files += not entry.name.lower().endswith(IMAGE_SUFFIXES)
                continue
            if _skip_folder(entry.name):
                continue
            images, others = _images_under(entry, root)
            other_files += others
            if not images:
                warnings.append(f"class folder {entry.relative_to(root).as_posix()!r} has no images: skipped")
            files += [ImageFile(path, entry.name, split) for path in images]
    if loose:
        warnings.append(f"{loose} image file(s) outside class folders ignored")
    external = [] if follow_external_links else refuse_external_links(root, files, warnings)
    refused = set(external)
    files = [file for file in files if file.path not in refused]
    if not files:
        raise FolderError(
            f"data.path {str(root)!r}: no images in class folders (expected <class>/<image> or "
            f"<split>/<class>/<image>, suffixes {', '.join(IMAGE_SUFFIXES)})"
            + (f"; {len(external)} link(s) leading outside it refused" if external else "")
        )
    return Scan(sorted(files, key=lambda f: f.path), split_folders, other_files, warnings, external)


def choose_classes(usable: set[str], explicit: list[str] | None, found: set[str] | None = None) -> list[str]:
    """Label order: `explicit` when given (each must have usable images), else the sorted folder names.

    `found` is every class folder the scan saw, listed when an explicit name is not among the usable.
    """
    names = sorted(usable) if explicit is None else [str(name) for name in explicit]
    missing = [name for name in names if name not in usable]
    if missing:
        raise FolderError(
            f"folder.classes {missing} have no usable images; class folders found: "
            f"{sorted(found if found is not None else usable)}"
        )
    if len(names) < 2:
        raise FolderError(f"need at least two classes with usable images, found {names}")
    if len(names) > 256:
        raise FolderError(f"{len(names)} classes: MedMNIST's uint8 labels allow at most 256")
    return names


def split_key(seed: int, md5: str, path: str) -> tuple[str, str]:
    """A seeded order independent of file names and of other files: content hash, then path on ties."""
    return hashlib.blake2b(f"{seed}:{md5}".encode(), digest_size=8).hexdigest(), path


def file_groups(
    files: list[ImageFile],
    md5s: list[str],
    near: NearPairs | None = None,
    pattern: str | None = None,
) -> tuple[np.ndarray, int]:
    """Files that must share a split: byte-identical copies, near-duplicates, and one patient or slide.

    `pattern` is a regular expression searched in each file's name; its one group (e.g. `^(\\w+)_\\d+`
    -> the patient id) names the file's group, across class folders. Returns (N,) group ids (the
    smallest member's index) and how many files the pattern did not match (each then stands alone).
    """
    sets = UnionFind(len(files))
    first_of: dict[str, int] = {}
    for i, md5 in enumerate(md5s):
        sets.union(first_of.setdefault(md5, i), i)
    if near is not None:
        for i, j in zip(near.first.tolist(), near.second.tolist(), strict=True):
            sets.union(i, j)
    unmatched = 0
    if pattern is not None:
        regex, first_with = re.compile(pattern), {}
        for i, file in enumerate(files):
            match = regex.search(PurePosixPath(file.path).name)
            if match is None or match.group(1) is None:
                unmatched += 1
                continue
            sets.union(first_with.setdefault(match.group(1), i), i)
    return sets.groups(), unmatched


def assign_splits(
    files: list[ImageFile],
    md5s: list[str],
    present: set[str],
    ratios: list[float],
    seed: int,
    groups: np.ndarray | None = None,
) -> list[str]:
    """Each file's split: its split folder's, or, for splits the folder lacks, carved from train per class.

    The train folder's files are taken a group at a time (`groups`: near-duplicates, a patient; by
    default each set of identical files), so a group never straddles two splits. Each group belongs
    to its most common class and is put, in a seeded order (`split_key` of its first member, so
    independent of file names and of the training seed), into the first carved split (test, then val)
    that taking it brings closer to its share of the class; the rest stay in train. With single files
    this is the first round(n * share) of a class to test, the next to val; a group of more than
    twice a split's share stays in train. Adding a file moves few others.
    """
    share = dict(zip(SPLITS, ratios, strict=True))
    missing = [split for split in ("test", "val") if split not in present]
    splits = [file.split or "train" for file in files]
    if groups is None:
        groups, _ = file_groups(files, md5s)
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(files)):
        if splits[i] == "train":
            members[int(groups[i])].append(i)
    pools: dict[str, list[list[int]]] = defaultdict(list)
    for group in members.values():
        names = Counter(files[i].label_name for i in group)
        pools[min(names, key=lambda name: (-names[name], name))].append(group)
    whole = share["train"] + sum(share[split] for split in missing)
    for name in sorted(pools):
        pool = sorted(pools[name], key=lambda g: min(split_key(seed, md5s[i], files[i].path) for i in g))
        total = sum(len(group) for group in pool)
        room = {split: int(total * share[split] / whole + 0.5) for split in missing}
        for group in pool:  # a group goes where taking it brings a split closer to its share
            split = next((s for s in missing if len(group) < 2 * room[s]), None)
            if split is not None:
                room[split] -= len(group)
                for i in group:
                    splits[i] = split
    return splits


def check_splits(counts: dict[str, dict[str, int]], classes: list[str], warnings: list[str]) -> None:
    """Refuse a class without training images or an empty split; warn about classes absent from val/test."""
    for name in classes:
        if counts["train"][name] == 0:
            raise FolderError(
                f"class {name!r} has no training images ({counts['val'][name]} val, {counts['test'][name]} "
                "test): add some, or leave it out with folder.classes"
            )
    for split in ("val", "test"):
        if sum(counts[split].values()) == 0:
            raise FolderError(f"the {split} split is empty: too few images, or an empty {split} folder")
        absent = [name for name in classes if counts[split][name] == 0]
        if absent:
            warnings.append(f"class(es) {absent} have no {split} images: their {split} metrics are undefined")
