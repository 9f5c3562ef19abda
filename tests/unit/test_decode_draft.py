"""JPEGs decode at reduced scale (Image.draft), only as far as the centred square holds the largest size."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bloodcells.data.decode import Recipe, decode_bytes, reduction


def smooth_jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    """A JPEG of smooth gradients and a few discs: content a downscale keeps, as cell photos."""
    x, y = np.meshgrid(np.linspace(0, 1, width), np.linspace(0, 1, height))
    pixels = np.stack([200 * x + 30, 150 * y + 50, 120 * (1 - x * y) + 60], axis=-1)
    for cx, cy, r in ((0.5, 0.5, 0.2), (0.3, 0.6, 0.08), (0.7, 0.35, 0.1)):
        pixels[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = (110, 60, 150)
    image = Image.fromarray(pixels.astype(np.uint8))
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, exif=exif.tobytes())
    return buffer.getvalue()


def test_a_large_jpeg_decodes_at_reduced_scale_to_the_right_size_and_close_to_a_full_decode():
    data = smooth_jpeg(2048, 1536)
    recipe = Recipe((28, 64, 128), crop=None, resize_filter="bicubic")
    with Image.open(io.BytesIO(data)) as image:
        assert reduction(image, recipe) == 8  # 1536 / 8 = 192 >= 128
    reduced, small = decode_bytes(data, recipe)
    full, _ = decode_bytes(data, recipe, reduce=False)
    assert not small
    for size, a, b in zip(recipe.sizes, reduced, full, strict=True):
        assert a.shape == (size, size, 3) and a.dtype == np.uint8
        difference = np.abs(a.astype(int) - b.astype(int))
        assert difference.mean() < 1.5 and difference.max() < 40, (size, difference.mean(), difference.max())
    again, _ = decode_bytes(data, recipe)
    assert all(np.array_equal(a, b) for a, b in zip(reduced, again, strict=True))  # deterministic


def test_the_scale_stops_where_the_crop_would_no_longer_hold_the_largest_size():
    data = smooth_jpeg(360, 363)  # PBC's size; crop 200
    with Image.open(io.BytesIO(data)) as image:
        assert reduction(image, Recipe((128,), 200)) == 1  # 200 / 2 = 100 < 128: full size
        assert reduction(image, Recipe((28, 64), 200)) == 2  # 100 >= 64 > 50
        assert reduction(image, Recipe((28,), 200)) == 4  # 50 >= 28 > 25
    full_size_only, _ = decode_bytes(data, Recipe((28, 64, 128), 200))
    unreduced, _ = decode_bytes(data, Recipe((28, 64, 128), 200), reduce=False)
    assert all(np.array_equal(a, b) for a, b in zip(full_size_only, unreduced, strict=True))


def test_a_jpeg_smaller_than_the_size_asked_is_enlarged_not_refused():
    data = smooth_jpeg(224, 224)  # another lab's crops, decoded finer than they are for the cell crop
    recipe = Recipe((256,), crop=200, resize_filter="bicubic")
    with Image.open(io.BytesIO(data)) as image:
        assert reduction(image, recipe) == 1
    (array,), small = decode_bytes(data, recipe)
    assert array.shape == (256, 256, 3) and not small


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_jpegs_cut_the_same_square_at_reduced_scale(orientation):
    data = smooth_jpeg(1600, 1000, orientation)
    recipe = Recipe((64,), crop=None)
    reduced, full = decode_bytes(data, recipe)[0][0], decode_bytes(data, recipe, reduce=False)[0][0]
    assert reduced.shape == (64, 64, 3)
    assert np.abs(reduced.astype(int) - full.astype(int)).mean() < 1.5


def test_other_formats_decode_at_full_size():
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 2000), (10, 20, 30)).save(buffer, "PNG")
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        assert reduction(image, Recipe((28,), None)) == 1
