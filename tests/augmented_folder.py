"""A folder made the way the 4-class Kaggle set was: a few originals, each augmented into many copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import shift as shift_image

SIDE = 96


def cell(seed: int) -> np.ndarray:
    """A synthetic stained cell: a dark lobed nucleus and pale cytoplasm, off-centre, on pale plasma."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:SIDE, :SIDE].astype(float)
    image = np.ones((SIDE, SIDE, 3)) * (0.93, 0.88, 0.90)
    for _ in range(rng.integers(2, 6)):  # red cells around it, anywhere in the frame
        ry, rx, radius = rng.uniform(0, SIDE), rng.uniform(0, SIDE), rng.uniform(0.1, 0.2) * SIDE
        image[(y - ry) ** 2 + (x - rx) ** 2 < radius**2] = (0.85, 0.55, 0.55)
    cy, cx = rng.uniform(0.35, 0.65, 2) * SIDE
    cytoplasm = (y - cy) ** 2 + (x - cx) ** 2 < (rng.uniform(0.25, 0.35) * SIDE) ** 2
    image[cytoplasm] = rng.uniform(0.6, 0.85, 3)
    for _ in range(rng.integers(1, 4)):  # nucleus lobes
        ly, lx = cy + rng.normal(0, 8), cx + rng.normal(0, 8)
        lobe = ((y - ly) / rng.uniform(5, 12)) ** 2 + ((x - lx) / rng.uniform(5, 12)) ** 2 < 1
        image[lobe] = rng.uniform(0.2, 0.45, 3) * (0.8, 0.5, 1.0)
    return (image * 255).astype(np.uint8)


def augmented_copies(original: np.ndarray, copies: int, seed: int, max_shift: int = 1) -> list[np.ndarray]:
    """`copies` rotations by 90 degrees, flips and small shifts of one original."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(copies):
        view = np.rot90(original, k % 4)
        view = view[:, ::-1] if (k // 4) % 2 else view
        dy, dx = rng.integers(-max_shift, max_shift + 1, 2)
        out.append(shift_image(view, (dy, dx, 0), mode="nearest"))
    return out


def write_augmented_folder(
    root: Path, classes: int = 3, originals: int = 8, copies: int = 12
) -> dict[str, str]:
    """<root>/<class>/<original>_<copy>.png; returns each file's path -> its original's name."""
    owner = {}
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True)
        for o in range(originals):
            name = f"c{c}o{o}"
            for k, image in enumerate(augmented_copies(cell(100 * c + o), copies, seed=o)):
                path = folder / f"{name}_{k:03d}.png"
                Image.fromarray(np.ascontiguousarray(image)).save(path)
                owner[path.relative_to(root).as_posix()] = name
    return owner
