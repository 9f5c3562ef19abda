"""MedMNIST's metadata (URLs, MD5s, labels, split sizes) from the medmnist package, without torch."""

from __future__ import annotations

import contextlib
import io
from functools import cache
from typing import Any

from bloodcells.core.params import MEDMNIST_SIZES


@cache
def medmnist_info() -> dict[str, Any]:
    """MedMNIST's INFO table (URLs, MD5s, labels, split sizes) without importing torch."""
    # medmnist's package __init__ prints a warning when torch is missing; we only need its tables.
    with contextlib.redirect_stdout(io.StringIO()):
        from medmnist.info import INFO
    return INFO


def dataset_info(dataset: str) -> dict[str, Any]:
    """INFO entry of one 2D multi-class MedMNIST dataset, with a clear error for unknown names."""
    info = medmnist_info()
    if dataset not in info:
        known = sorted(
            name
            for name, entry in info.items()
            if "url" in entry and "3d" not in name and not entry["task"].startswith("multi-label")
        )
        raise ValueError(f"Unknown MedMNIST dataset {dataset!r}. Known: {', '.join(known)}")
    if "3d" in dataset or info[dataset]["task"].startswith("multi-label"):
        raise ValueError(
            f"MedMNIST dataset {dataset!r} is {'3D' if '3d' in dataset else info[dataset]['task']}: "
            "this pipeline classifies 2D images into one class each"
        )
    return info[dataset]


def check_size(size: int) -> int:
    """Reject image sizes MedMNIST does not publish."""
    if size not in MEDMNIST_SIZES:
        raise ValueError(f"Unsupported image size {size!r}: MedMNIST publishes {list(MEDMNIST_SIZES)}")
    return size


def medmnist_filename(dataset: str, size: int) -> str:
    """MedMNIST's own file name for a size: `bloodmnist.npz` at 28 px, `bloodmnist_64.npz` above."""
    return f"{dataset}.npz" if check_size(size) == 28 else f"{dataset}_{size}.npz"


def info_url_and_md5(dataset: str, size: int) -> tuple[str, str]:
    """Zenodo URL and MD5 of one file, from INFO."""
    info = dataset_info(dataset)
    suffix = "" if check_size(size) == 28 else f"_{size}"
    return info[f"url{suffix}"], info[f"MD5{suffix}"]


def class_names(dataset: str) -> list[str]:
    """Label names in label order, from INFO."""
    labels = dataset_info(dataset)["label"]
    return [labels[str(i)] for i in range(len(labels))]
