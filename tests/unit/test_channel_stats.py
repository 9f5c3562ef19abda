"""The preprocess summary's channel statistics: a streaming pass equal to the float64 computation."""

from __future__ import annotations

import numpy as np
import pytest

from bloodcells.data.preprocess import channel_stats


@pytest.mark.parametrize("shape", [(300, 28, 28, 3), (40, 64, 64, 3), (7, 13, 11, 3), (1, 2, 2, 3)])
def test_channel_stats_equal_the_float64_result(shape):
    images = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    pixels = images.reshape(-1, 3).astype(np.float64) / 255.0
    for chunk in (1, 1000, 1 << 20):  # chunks of one image, of a few, and of all
        mean, std = channel_stats(images, chunk_pixels=chunk)
        np.testing.assert_allclose(mean, pixels.mean(axis=0), rtol=0, atol=1e-6)
        np.testing.assert_allclose(std, pixels.std(axis=0), rtol=0, atol=1e-6)


def test_channel_stats_of_extreme_images_are_exact():
    images = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    images[:2] = 255
    mean, std = channel_stats(images)
    np.testing.assert_allclose(mean, 0.5, atol=1e-12)
    np.testing.assert_allclose(std, 0.5, atol=1e-12)
