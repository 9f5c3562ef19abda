"""Decode image files once and resize each to every configured size, MedMNIST style, on all cores.

MedMNIST's recipe: centre-crop a square of side `crop` (the largest centred square when an image is
smaller, or when `crop` is None), then resize that square to each size with one filter. EXIF
orientation is applied first, and any mode (grayscale, RGBA, palette, 16-bit) becomes 8-bit RGB.
JPEGs decode at 1/2, 1/4 or 1/8 scale (`Image.draft`) as far as the reduced square still holds the
largest size: less time and memory (docs/performance.md), the same sizes.
A file that cannot be decoded is never fatal: its reason is returned in place of its pixels.
Used by the folder data source (bloodcells/data/folder.py) and `python -m scripts.bench folder`.
"""

from __future__ import annotations

import hashlib
import io
import math
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

RESIZE_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
CHUNK_FILES = 64  # files per task handed to a worker: large enough to amortise pickling
SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L")
DRAFT_SCALES = (8, 4, 2, 1)  # the reduced scales libjpeg decodes at, largest first
EXIF_ORIENTATION = 0x0112
QUARTER_TURNS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


class UnreadableImage(ValueError):
    """A file that is not a decodable image; the message is a short, machine-independent reason."""


@dataclass(frozen=True)
class Recipe:
    """How every file becomes arrays: output sides, crop side (None = largest square), filter name."""

    sizes: tuple[int, ...]
    crop: int | None = 200
    resize_filter: str = "bicubic"


@dataclass
class Decoded:
    """Results for a list of files, in order; rows of a file that failed stay zero."""

    md5: list[str]  # of each file's bytes
    errors: list[str | None]  # None when the file decoded
    smaller_than_crop: np.ndarray  # (N,) bool: the image was smaller than the crop side
    images: dict[int, np.ndarray]  # size -> (N, size, size, 3) uint8


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright 8-bit RGB: EXIF orientation applied, 16-bit scaled (not clipped), alpha dropped."""
    image = ImageOps.exif_transpose(image)
    if image.mode in SIXTEEN_BIT_MODES:
        scaled = np.clip(np.asarray(image, dtype=np.float64) / 257.0, 0, 255).round().astype(np.uint8)
        image = Image.fromarray(scaled)  # 2-D uint8 -> mode "L"
    return image if image.mode == "RGB" else image.convert("RGB")


def centre_square(image: Image.Image, crop: int | None) -> tuple[Image.Image, bool]:
    """The centred square of side `crop`, or the largest one when the image is smaller (flagged)."""
    width, height = image.size
    side = min(width, height) if crop is None else min(crop, width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side)), crop is not None and side < crop


def square_side(width: int, height: int, crop: int | None) -> int:
    """Side of the centred square `centre_square` cuts from a width x height image."""
    return min(width, height) if crop is None else min(crop, width, height)


def reduction(image: Image.Image, recipe: Recipe) -> int:
    """The JPEG scale (1, 2, 4 or 8) at which the centred square still holds the largest size requested.

    libjpeg decodes at 1/2, 1/4 or 1/8 scale for a fraction of the time and memory of a full decode
    (a 12000x12000 file holds 432 MB of pixels); any other format decodes at full size (1).
    """
    if image.format != "JPEG":
        return 1
    side, largest = square_side(*image.size, recipe.crop), max(recipe.sizes)
    return next((scale for scale in DRAFT_SCALES if side >= largest * scale), 1)  # 1: enlarged, full decode


def decode_bytes(data: bytes, recipe: Recipe, reduce: bool = True) -> tuple[list[np.ndarray], bool]:
    """One file's bytes -> one (size, size, 3) uint8 array per recipe size, and the smaller-than-crop flag.

    With `reduce`, a JPEG is decoded at the reduced scale `reduction` allows (`Image.draft`) and
    the same centred square is cut from the smaller image, in fractional coordinates; with
    `reduce=False` every file is decoded at full size (the folder benchmark compares the two).

    Raises:
        UnreadableImage: the bytes are not an image Pillow can decode in full.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if image.getexif().get(EXIF_ORIENTATION) in QUARTER_TURNS:
                width, height = height, width  # the size once upright
            raw_width, raw_height = image.size
            scale = reduction(image, recipe) if reduce else 1
            drafted = image.draft("RGB", (raw_width // scale, raw_height // scale)) if scale > 1 else None
            scale = round(raw_width / drafted[1][2]) if drafted else 1  # the scale the decoder chose
            image.load()  # decode now: a truncated file fails here, not later
            upright = to_rgb(image)
    except UnidentifiedImageError as error:
        raise UnreadableImage("not an image: format not recognised") from error
    except Exception as error:  # decoders raise many types; one bad file must not stop the run
        raise UnreadableImage(f"cannot decode: {type(error).__name__}: {error}") from error
    resample = RESIZE_FILTERS[recipe.resize_filter]
    side = square_side(width, height, recipe.crop)
    small = recipe.crop is not None and side < recipe.crop
    if scale == 1:
        square, _ = centre_square(upright, recipe.crop)
        return [np.asarray(square.resize((size, size), resample=resample)) for size in recipe.sizes], small
    # The full-size square's box, in the reduced image's coordinates; crop the pixels that cover it,
    # then resize from the fractional box inside them.
    left, top = (width - side) // 2 / scale, (height - side) // 2 / scale
    right, bottom = left + side / scale, top + side / scale
    region = upright.crop((math.floor(left), math.floor(top), math.ceil(right), math.ceil(bottom)))
    inner = (left % 1, top % 1, right - math.floor(left), bottom - math.floor(top))
    return [
        np.asarray(region.resize((size, size), resample=resample, box=inner)) for size in recipe.sizes
    ], small


def decode_chunk(paths: Sequence[Path], recipe: Recipe) -> Decoded:
    """Read, hash and decode `paths` in this process."""
    n = len(paths)
    decoded = Decoded(
        md5=[],
        errors=[],
        smaller_than_crop=np.zeros(n, dtype=bool),
        images={size: np.zeros((n, size, size, 3), dtype=np.uint8) for size in recipe.sizes},
    )
    for i, path in enumerate(paths):
        data = Path(path).read_bytes()
        decoded.md5.append(hashlib.md5(data).hexdigest())
        try:
            arrays, decoded.smaller_than_crop[i] = decode_bytes(data, recipe)
        except UnreadableImage as error:
            decoded.errors.append(str(error))
            continue
        decoded.errors.append(None)
        for size, array in zip(recipe.sizes, arrays, strict=True):
            decoded.images[size][i] = array
    return decoded


def decode_files(paths: Sequence[Path], recipe: Recipe, workers: int = 1, progress: bool = False) -> Decoded:
    """Decode every file once for all sizes, over `workers` processes (1 = in this process).

    The result does not depend on `workers`: chunks come back in order and are placed by index.
    """
    if recipe.resize_filter not in RESIZE_FILTERS:
        raise ValueError(
            f"Unknown resize filter {recipe.resize_filter!r}. Known: {', '.join(RESIZE_FILTERS)}"
        )
    chunks = [list(paths[i : i + CHUNK_FILES]) for i in range(0, len(paths), CHUNK_FILES)]
    total = Decoded(
        md5=[],
        errors=[],
        smaller_than_crop=np.zeros(len(paths), dtype=bool),
        images={size: np.zeros((len(paths), size, size, 3), dtype=np.uint8) for size in recipe.sizes},
    )
    bar = tqdm(total=len(paths), unit="file", desc="decode", file=sys.stderr, disable=not progress)
    with bar, ProcessPoolExecutor(max_workers=workers) if workers > 1 else _InProcess() as pool:
        start = 0
        for part in pool.map(decode_chunk, chunks, repeat(recipe)):
            stop = start + len(part.md5)
            total.md5 += part.md5
            total.errors += part.errors
            total.smaller_than_crop[start:stop] = part.smaller_than_crop
            for size, images in part.images.items():
                total.images[size][start:stop] = images
            bar.update(stop - start)
            start = stop
    return total


class _InProcess:
    """The `map` of an executor, run serially here: one worker needs no process pool."""

    def __enter__(self) -> _InProcess:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def map(self, fn, *iterables):
        return map(fn, *iterables)
