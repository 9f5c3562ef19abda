"""Atomic, deterministic file writes: a stage never leaves a half-written output behind.

Each writer fills a temporary file in the destination folder and renames it into place, so a
killed stage leaves either the old file or the new one. JSON is written with sorted keys, and npz
archives with fixed timestamps, so the same content always gives the same bytes (and DVC sees no change).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name keeps the suffix: writers such as Keras check it (".keras").
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp makes files private; outputs get the usual mode
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def strict_json(data: Any) -> Any:
    """`data` with NaN and infinities as None: strict JSON has no such numbers (json.dumps writes `NaN`)."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: strict_json(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [strict_json(value) for value in data]
    return data


def write_json(path: Path, data: Any) -> None:
    """Write `data` as pretty, key-sorted, strict JSON (NaN becomes null)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(strict_json(data), indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_npy(path: Path, array: np.ndarray) -> None:
    """Write one array as .npy (byte-identical for identical arrays, unlike np.savez's zip)."""
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays as an uncompressed .npz that `np.load` reads, byte-identical for identical arrays.

    np.savez stamps each member with the current time; here every member gets a fixed date. No
    compression: image arrays shrink only ~30 % and deflating a gigabyte would cost more than decoding.
    """
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            member = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(member, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)


def write_csv(path: Path, rows: list[dict[str, Any]], fieldnames: list[str] | None = None) -> None:
    """Write rows of equal keys as CSV with a header (`fieldnames`, else the first row's keys, in order)."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        header = fieldnames or (list(rows[0]) if rows else [])
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


@contextmanager
def staged_folders(*folders: Path) -> Iterator[tuple[Path, ...]]:
    """Yield empty staging folders for `folders`; they replace `folders` only if the block succeeds.

    A stage that writes several outputs fails as a whole: on error the staging folders are removed
    and no output is left behind, half-written or stale.
    """
    staging = tuple(folder.with_name(f".{folder.name}.staging") for folder in folders)
    for stage_dir in staging:
        shutil.rmtree(stage_dir, ignore_errors=True)
        stage_dir.mkdir(parents=True)
    try:
        yield staging
        for folder, stage_dir in zip(folders, staging, strict=True):
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(stage_dir, folder)
    except BaseException:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        for stage_dir in staging:
            shutil.rmtree(stage_dir, ignore_errors=True)
