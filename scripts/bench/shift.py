"""A deterministic "another lab" copy of a test split: other stain vectors and amounts, another
magnification, JPEG re-compression. Measures how a model trained on PBC's slides holds up elsewhere.

The shift is one fixed transform for every image (one lab = one stain protocol, one microscope), drawn
from `seed`: the same images and seed always give the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from bloodcells.data.stain import RGB_FROM_HED, hed_to_rgb, rgb_to_hed


@dataclass(frozen=True)
class Shift:
    """How far the copy moves from the original."""

    seed: int = 0
    vector_noise: float = 0.15  # each stain's RGB absorption vector perturbed by this (then unit length)
    amounts: tuple[float, float, float] = (1.3, 0.8, 1.0)  # haematoxylin, eosin, DAB density factors
    zoom: float = 1.2  # magnification: > 1 shows the centre larger (resize, then centre crop)
    jpeg_quality: int | None = 60  # None: not re-compressed

    def only(self, part: str) -> Shift:
        """This shift with one part kept (stain, scale or jpeg), the others switched off."""
        keep = {
            "stain": {"zoom": 1.0, "jpeg_quality": None},
            "scale": {"vector_noise": 0.0, "amounts": (1.0, 1.0, 1.0), "jpeg_quality": None},
            "jpeg": {"vector_noise": 0.0, "amounts": (1.0, 1.0, 1.0), "zoom": 1.0},
        }
        return replace(self, **keep[part])


def shifted_stain_vectors(shift: Shift) -> np.ndarray:
    """The copy's stain matrix: skimage's rgb_from_hed rows perturbed by a seeded draw, unit length."""
    noise = np.random.default_rng(shift.seed).normal(0.0, shift.vector_noise, RGB_FROM_HED.shape)
    vectors = np.abs(RGB_FROM_HED + noise)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def restain(images: np.ndarray, shift: Shift) -> np.ndarray:
    """Separate into H, E and DAB densities with the usual vectors; recombine with the shifted ones."""
    density = rgb_to_hed(images.astype(np.float64) / 255.0) * np.asarray(shift.amounts)
    rgb = hed_to_rgb(density, shifted_stain_vectors(shift))
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def rescale_and_recompress(image: np.ndarray, shift: Shift) -> np.ndarray:
    """One image magnified by `zoom` about its centre (bicubic), then saved and read back as JPEG."""
    side = image.shape[0]
    big = max(side, round(side * shift.zoom))
    picture = Image.fromarray(image)
    if big != side:
        left = (big - side) // 2
        picture = picture.resize((big, big), Image.Resampling.BICUBIC)
        picture = picture.crop((left, left, left + side, left + side))
    if shift.jpeg_quality is None:
        return np.asarray(picture)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=shift.jpeg_quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def shifted_copy(images: np.ndarray, shift: Shift = Shift()) -> np.ndarray:
    """(N, S, S, 3) uint8 images as another lab's slides might show them."""
    restained = restain(images, shift)
    return np.stack([rescale_and_recompress(image, shift) for image in restained]) if len(images) else images
