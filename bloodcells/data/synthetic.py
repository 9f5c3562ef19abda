"""Small synthetic MedMNIST-format data that a CNN can learn, for tests and benchmarks without real data.

Each class is a distinct mean colour plus a stripe pattern whose period depends on the class, with
noise on top, so one epoch of a small CNN separates the classes well above chance.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

N_CLASSES = 8


def synthetic_split(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`n` images (n, size, size, 3) uint8 and labels (n, 1) uint8, classes balanced."""
    labels = np.arange(n) % N_CLASSES
    rng.shuffle(labels)
    rows = np.arange(size)[None, :, None, None]
    period = 2 + labels[:, None, None, None]
    stripes = ((rows // period) % 2) * 60.0
    tint = np.stack([labels * 25, 200 - labels * 20, 80 + (labels % 3) * 50], axis=1)[:, None, None, :]
    images = tint + stripes + rng.normal(0, 12, (n, size, size, 3))
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)[:, None]


def write_synthetic_npz(
    path: Path, size: int, counts: tuple[int, int, int] = (96, 32, 48), seed: int = 0
) -> dict[str, np.ndarray]:
    """Write a MedMNIST-format npz (train/val/test images and labels) and return its arrays."""
    rng = np.random.default_rng(seed + size)
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts, strict=True):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = synthetic_split(n, size, rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return arrays


def write_mirror(folder: Path, sizes: list[int], dataset: str = "bloodmnist", md5sums: bool = True) -> Path:
    """A local mirror folder with MedMNIST's file names and, optionally, an MD5SUMS file."""
    lines = []
    for size in sizes:
        name = f"{dataset}.npz" if size == 28 else f"{dataset}_{size}.npz"
        write_synthetic_npz(folder / name, size)
        lines.append(f"{hashlib.md5((folder / name).read_bytes()).hexdigest()}  {name}\n")
    if md5sums:
        (folder / "MD5SUMS").write_text("".join(lines))
    return folder
