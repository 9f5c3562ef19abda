"""Cell-centred crop: find the stained cell, cut a square around it, so every lab's cell fills the same share.

Another microscope's magnification changes how much of an image the cell fills (docs/data.md), and a
network trained at one scale misreads the other. The crop finds the cell by its stain, not by a
model: the nucleus is the most purple thing on a smear (red and blue high, green low, under
May-Grünwald-Giemsa and its relatives), so the purple excess (R + B) / 2 - G is smoothed,
thresholded at half its 99th percentile, and the largest connected region (scipy.ndimage.label) is
the cell. The square is centred on that region's box, with side box / `fill`, and resized to the model's
side. The same function runs on the training arrays (preprocess, at their own side: a MedMNIST file
holds no finer pixels) and on every image `predict`, `validate` and `serve` decode; those are decoded
at a few times the model's side first (bloodcells.data.prepare), so a cell that fills a third of
another lab's image is cut from pixels as fine as the training cells', not enlarged from a few.

Every image gets an outcome, never an exception:
- `cell`: one region found and cut out;
- `border`: the region touches the image edge; the square is cut all the same, edge pixels
  repeated where it leaves the image;
- `several`: a second region at least half the largest's area; the largest (then the nearest the
  centre) is taken;
- `empty`: nothing stained enough (a blank or background-only field): the whole image is kept.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

OUTCOMES = ("cell", "border", "several", "empty")
MIN_PURPLE = 30.0  # 99th percentile of the purple excess below this (grey levels): no stained cell
SECOND_CELL = 0.5  # a second region this share of the largest's area or more: several cells
MIN_AREA = 0.002  # regions smaller than this share of the image are specks, not cells
SMOOTHING = 1 / 40  # Gaussian sigma as a share of the side: a neutrophil's lobes merge into one region


@dataclass(frozen=True)
class CellBox:
    """The square to cut, in pixels of the image (may extend past its edges), and how it was found."""

    left: float
    top: float
    side: float
    outcome: str


def purple_excess(image: np.ndarray) -> np.ndarray:
    """(R + B) / 2 - G per pixel, as float: high on nuclei, low on background and red cells."""
    rgb = image.astype(np.float32)
    return (rgb[..., 0] + rgb[..., 2]) / 2 - rgb[..., 1]


def find_cell(image: np.ndarray, fill: float) -> CellBox:
    """The square around the cell of one (H, W, 3) uint8 image, whose box fills `fill` of its side."""
    height, width = image.shape[:2]
    purple = ndimage.gaussian_filter(purple_excess(image), sigma=max(height, width) * SMOOTHING)
    top_level = float(np.percentile(purple, 99))
    whole = CellBox(0.0, 0.0, float(min(height, width)), "empty")
    if top_level < MIN_PURPLE:
        return whole
    regions, count = ndimage.label(purple > top_level / 2)
    areas = np.bincount(regions.ravel(), minlength=count + 1)[1:]
    large = np.flatnonzero(areas >= MIN_AREA * height * width)
    if not len(large):
        return whole
    centres = np.asarray(ndimage.center_of_mass(np.ones_like(purple), regions, large + 1))
    distance = np.hypot(centres[:, 0] - height / 2, centres[:, 1] - width / 2)
    order = sorted(range(len(large)), key=lambda i: (-areas[large[i]], distance[i]))
    chosen = large[order[0]]
    rows, cols = ndimage.find_objects(regions)[chosen]
    several = len(order) > 1 and areas[large[order[1]]] >= SECOND_CELL * areas[chosen]
    touches = rows.start == 0 or cols.start == 0 or rows.stop == height or cols.stop == width
    side = max(rows.stop - rows.start, cols.stop - cols.start) / fill
    centre_y, centre_x = (rows.start + rows.stop) / 2, (cols.start + cols.stop) / 2
    outcome = "several" if several else "border" if touches else "cell"
    return CellBox(centre_x - side / 2, centre_y - side / 2, side, outcome)


def cut(image: np.ndarray, box: CellBox, side: int) -> np.ndarray:
    """The box's square of `image`, resized (bicubic) to `side`; edge pixels repeated outside the image."""
    margin = int(np.ceil(max(0.0, -box.left, -box.top, box.left + box.side - image.shape[1],
                             box.top + box.side - image.shape[0])))
    padded = np.pad(image, ((margin, margin), (margin, margin), (0, 0)), mode="edge") if margin else image
    left, top = box.left + margin, box.top + margin
    square = (left, top, left + box.side, top + box.side)
    picture = Image.fromarray(padded).resize((side, side), Image.Resampling.BICUBIC, box=square)
    return np.asarray(picture)


def cell_crop(images: np.ndarray, fill: float, side: int | None = None) -> tuple[np.ndarray, dict[str, int]]:
    """Every (N, S, S, 3) uint8 image cut around its cell and resized to `side` (default S); outcomes counted.

    An `empty` image is kept whole, resized to `side` the same way.
    """
    side = side or images.shape[1]
    out = np.empty((len(images), side, side, 3), dtype=np.uint8)
    outcomes: Counter[str] = Counter()
    for i, image in enumerate(images):
        box = find_cell(image, fill)
        outcomes[box.outcome] += 1
        out[i] = image if box.outcome == "empty" and len(image) == side else cut(image, box, side)
    return out, {outcome: outcomes[outcome] for outcome in OUTCOMES}
