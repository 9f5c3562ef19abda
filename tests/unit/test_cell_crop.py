"""The cell-centred crop: one cell, a cell on the border, two cells, an empty field, another lab's slides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bloodcells.data.cell_crop import OUTCOMES, cell_crop, find_cell, purple_excess
from bloodcells.data.prepare import CROP_SOURCE_SCALE, prepare
from bloodcells.inference.preprocessing import load_inputs
from bloodcells.model.card import recipe_from_card
from tests.conftest import SHARED_DATA

BACKGROUND = (235, 215, 200)  # PBC's beige plasma
NUCLEUS = (110, 50, 160)  # a May-Grünwald-Giemsa nucleus
LISC = SHARED_DATA / "lisc-external"


def field(side: int = 64, cells: tuple[tuple[float, float, float], ...] = (), seed: int = 0) -> np.ndarray:
    """A (side, side, 3) uint8 smear: plasma with noise and purple discs at (row, col, radius)."""
    image = np.empty((side, side, 3), np.float32)
    image[:] = BACKGROUND
    rows, cols = np.mgrid[:side, :side]
    for row, col, radius in cells:
        image[(rows - row) ** 2 + (cols - col) ** 2 <= radius**2] = NUCLEUS
    image += np.random.default_rng(seed).normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def purple_box_share(image: np.ndarray) -> float:
    """Side of the purple region's bounding box over the image side."""
    rows, cols = np.nonzero(purple_excess(image) > 40)
    return max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) / image.shape[0]


def test_a_centred_cell_is_cut_so_its_box_fills_the_asked_share():
    image = field(cells=((30, 36, 8),))  # 17 px across: a quarter of the side
    box = find_cell(image, fill=0.5)
    assert box.outcome == "cell"
    assert box.side == pytest.approx(17 / 0.5, rel=0.15)  # the smoothed threshold sits inside the edge
    assert box.left + box.side / 2 == pytest.approx(36.5, abs=1.5)
    (out,), outcomes = cell_crop(image[None], fill=0.5)
    assert outcomes == {"cell": 1, "border": 0, "several": 0, "empty": 0}
    assert out.shape == image.shape and out.dtype == np.uint8
    assert purple_box_share(image) < 0.3 and purple_box_share(out) == pytest.approx(0.5, abs=0.08)


def test_a_cell_touching_the_border_is_cut_with_edge_pixels_repeated():
    image = field(cells=((4, 60, 10),))  # leaves the image at the top right
    (out,), outcomes = cell_crop(image[None], fill=0.6)
    assert outcomes["border"] == 1
    assert out.shape == image.shape and np.isfinite(out).all()
    assert purple_excess(out).mean() > purple_excess(image).mean()  # zoomed onto the cell


def test_two_cells_take_the_larger_and_say_so():
    image = field(cells=((32, 14, 9), (32, 50, 7)))
    box = find_cell(image, fill=0.6)
    assert box.outcome == "several"
    assert box.left + box.side / 2 == pytest.approx(14.5, abs=1.5)  # the larger, on the left


def test_an_empty_field_is_left_as_it_is():
    image = field()  # plasma only
    (out,), outcomes = cell_crop(image[None], fill=0.6)
    assert outcomes["empty"] == 1
    np.testing.assert_array_equal(out, image)
    black = np.zeros((1, 28, 28, 3), np.uint8)
    assert cell_crop(black, 0.6)[1]["empty"] == 1


def test_every_image_gets_exactly_one_outcome_and_the_crop_is_deterministic():
    images = np.stack([field(cells=((32, 32, 6 + i),), seed=i) for i in range(5)] + [field(seed=9)])
    first, outcomes = cell_crop(images, 0.65)
    again, _ = cell_crop(images, 0.65)
    assert set(outcomes) == set(OUTCOMES) and sum(outcomes.values()) == len(images)
    np.testing.assert_array_equal(first, again)


def test_a_finer_image_is_cut_straight_to_the_models_side_and_an_empty_one_resized():
    fine = np.stack([field(112, cells=((50, 60, 14),)), field(112)])
    out, outcomes = cell_crop(fine, 0.6, side=28)
    assert out.shape == (2, 28, 28, 3) and outcomes["cell"] == 1 and outcomes["empty"] == 1
    whole = np.asarray(Image.fromarray(fine[1]).resize((28, 28), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(out[1], whole)
    assert purple_box_share(out[0]) == pytest.approx(0.6, abs=0.1)


def test_a_cropping_card_decodes_files_finer_and_cuts_the_cell_from_those_pixels(tmp_path):
    # another lab's magnification: a cell with a pale centre (a nucleus's detail) filling a sixth of the file
    image = field(224, cells=((100, 120, 18),))
    rows, cols = np.mgrid[:224, :224]
    image[(rows - 100) ** 2 + (cols - 120) ** 2 <= 6**2] = (200, 170, 220)
    Image.fromarray(image).save(tmp_path / "cell.png")
    card = {
        "classes": ["a", "b"], "input_shape": [28, 28, 3], "cell_crop": {"fill": 0.65},
        "decoding": {"crop": 200, "resize_filter": "bicubic"}, "stain_normalization": {"method": "none"},
    }
    recipe = recipe_from_card(card)
    assert recipe.sizes == (28 * CROP_SOURCE_SCALE,)
    (ready,) = load_inputs([tmp_path / "cell.png"], card).images
    square = Image.fromarray(image[12:212, 12:212])  # the recorded 200 px centre crop
    fine = np.asarray(square.resize(recipe.sizes * 2, Image.Resampling.BICUBIC))
    coarse = np.asarray(square.resize((28, 28), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(ready, prepare(fine[None], card, 28)[0][0])
    enlarged = prepare(coarse[None], card)[0][0]  # what cutting the model-side image would give
    assert ready.shape == enlarged.shape == (28, 28, 3)
    # the pale centre survives the fine cut as a pale spot; the enlarged few pixels smear it out
    centre = purple_excess(ready)[12:16, 12:16].mean(), purple_excess(enlarged)[12:16, 12:16].mean()
    assert centre[0] < centre[1]


@pytest.mark.skipif(not LISC.exists(), reason=f"needs LISC at {LISC}")
def test_another_labs_cells_come_out_at_the_share_asked():
    files = sorted(Path(LISC, "lymp").glob("*"))[:20] + sorted(Path(LISC, "neut").glob("*"))[:20]
    small = [Image.open(f).convert("RGB").resize((64, 64), Image.Resampling.BICUBIC) for f in files]
    images = np.stack([np.asarray(image) for image in small])
    before = np.median([find_cell(image, 1.0).side / 64 for image in images])
    out, outcomes = cell_crop(images, 0.65)
    after = np.median([find_cell(image, 1.0).side / 64 for image in out])
    assert outcomes["empty"] == 0
    assert before < 0.45 and after == pytest.approx(0.65, abs=0.12)
