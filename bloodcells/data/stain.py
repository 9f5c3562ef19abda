"""Stain normalisation of inputs (Reinhard in CIELAB, Macenko in optical density) and the HED colour maths.

Another lab's slides differ in stain. Reinhard's method moves each image's per-channel Lab mean and
standard deviation onto a target's; here the target is the train split's average (of per-image means
and of per-image standard deviations). Macenko's method finds each image's two stain vectors in
optical density and re-renders its stain amounts with the target's vectors and maxima; the target
is fitted on a mosaic of train images. Either target is computed once by the preprocess stage and
recorded in summary.json (and the model card), so prediction applies the very same transform to new
images. Colour conversions are scikit-image's (rgb2lab/lab2rgb; rgb2hed's stain matrix); Macenko is
torchstain's numpy implementation (no torch involved).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from skimage.color import hed_from_rgb, lab2rgb, rgb2lab, rgb_from_hed

CHUNK = 2048  # images per conversion step: bounded memory at 128 px
MIN_STD = 1e-3  # a flat channel (a blank image) is shifted, not blown up
METHODS = ("none", "reinhard", "macenko")
MACENKO_FIT_IMAGES = 1024  # train images in the mosaic the Macenko target is fitted on (seeded draw)
# skimage's separate_stains clamps to 1e-6 before the log and divides by log(1e-6): densities in [0, 1]
LOG_ADJUST = float(np.log(1e-6))
HED_FROM_RGB = np.asarray(hed_from_rgb, dtype=np.float64)
RGB_FROM_HED = np.asarray(rgb_from_hed, dtype=np.float64)


def _chunks(n: int):
    return (slice(start, min(start + CHUNK, n)) for start in range(0, n, CHUNK))


def lab_statistics(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) per-image means and (N, 3) standard deviations of L*, a*, b*."""
    means, stds = [], []
    for part in _chunks(len(images)):
        lab = rgb2lab(images[part]).reshape(part.stop - part.start, -1, 3)
        means.append(lab.mean(axis=1))
        stds.append(lab.std(axis=1))
    return np.concatenate(means), np.concatenate(stds)


def reinhard_target(images: np.ndarray) -> dict[str, Any]:
    """The target statistics from a set of (N, H, W, 3) uint8 images (the train split)."""
    means, stds = lab_statistics(images)
    return {
        "method": "reinhard",
        "space": "CIELAB (skimage.color.rgb2lab, D65)",
        "target_mean": [round(float(v), 6) for v in means.mean(axis=0)],
        "target_std": [round(float(v), 6) for v in stds.mean(axis=0)],
    }


def reinhard_normalize(images: np.ndarray, target: dict[str, Any]) -> np.ndarray:
    """Each image's Lab channels standardised, then given the target's mean and std; back to uint8 RGB."""
    mean = np.asarray(target["target_mean"], dtype=np.float64)
    std = np.asarray(target["target_std"], dtype=np.float64)
    out = np.empty_like(images)
    for part in _chunks(len(images)):
        lab = rgb2lab(images[part])
        axes = (1, 2)
        own_mean = lab.mean(axis=axes, keepdims=True)
        own_std = np.maximum(lab.std(axis=axes, keepdims=True), MIN_STD)
        moved = (lab - own_mean) / own_std * std + mean
        moved[..., 0] = np.clip(moved[..., 0], 0.0, 100.0)
        rgb = lab2rgb(moved)
        out[part] = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
    return out


def macenko_target(images: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Macenko's reference stain vectors (3 x 2) and 99th-percentile stain amounts from train images."""
    from torchstain.numpy.normalizers import NumpyMacenkoNormalizer

    pick = np.random.default_rng(seed).permutation(len(images))[:MACENKO_FIT_IMAGES]
    normalizer = NumpyMacenkoNormalizer()
    normalizer.fit(np.concatenate(list(images[np.sort(pick)]), axis=0))  # one tall mosaic image
    return {
        "method": "macenko",
        "implementation": "torchstain.numpy NumpyMacenkoNormalizer (Io 240, alpha 1, beta 0.15)",
        "stain_vectors": [[round(float(v), 6) for v in row] for row in normalizer.HERef],
        "max_concentrations": [round(float(v), 6) for v in normalizer.maxCRef],
    }


def macenko_normalize(images: np.ndarray, target: dict[str, Any]) -> np.ndarray:
    """Each image re-rendered with the target's stain vectors; an image whose stains cannot be
    estimated (a blank field: too few stained pixels) is left as it is."""
    from torchstain.numpy.normalizers import NumpyMacenkoNormalizer

    normalizer = NumpyMacenkoNormalizer()
    normalizer.HERef = np.asarray(target["stain_vectors"], dtype=np.float64)
    normalizer.maxCRef = np.asarray(target["max_concentrations"], dtype=np.float64)
    out = images.copy()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's on the empty pixel set of a blank field
        for i, image in enumerate(images):
            try:
                normalized, _, _ = normalizer.normalize(image, stains=False)
            except (np.linalg.LinAlgError, ValueError, IndexError):
                continue
            if np.isfinite(normalized).all():
                out[i] = normalized
    return out


def fit_stain_normalization(method: str, train_images: np.ndarray) -> dict[str, Any]:
    """The record of `preprocess.stain_normalization` for summary.json: the method and its target."""
    if method == "none":
        return {"method": "none"}
    if method == "reinhard":
        return reinhard_target(train_images)
    if method == "macenko":
        return macenko_target(train_images)
    raise ValueError(f"preprocess.stain_normalization: unknown {method!r}; known: {', '.join(METHODS)}")


def apply_stain_normalization(images: np.ndarray, record: dict[str, Any] | None) -> np.ndarray:
    """Apply a recorded normalisation (from summary.json or the model card) to new uint8 images."""
    method = (record or {}).get("method", "none")
    if method == "none":
        return images
    if method == "reinhard":
        return reinhard_normalize(images, record)
    if method == "macenko":
        return macenko_normalize(images, record)
    raise ValueError(f"stain normalisation {method!r} unknown to this version; known: {', '.join(METHODS)}")


def rgb_to_hed(rgb: np.ndarray) -> np.ndarray:
    """Optical densities of haematoxylin, eosin and DAB, skimage.color.rgb2hed's maths without its clamp."""
    return (np.log(np.maximum(rgb, 1e-6)) / LOG_ADJUST) @ HED_FROM_RGB


def hed_to_rgb(hed: np.ndarray, rgb_from_stains: np.ndarray = RGB_FROM_HED) -> np.ndarray:
    """RGB in [0, 1] from stain densities (skimage.color.hed2rgb's maths), optionally other stain vectors."""
    return np.clip(np.exp(hed * LOG_ADJUST @ rgb_from_stains), 0.0, 1.0)
