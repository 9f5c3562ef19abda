"""Near-duplicate images: perceptual hashes of all 8 rotations/flips, and pairs within a Hamming distance.

A rotated, flipped, shifted or re-compressed copy of an image has a different md5 but almost the same
perceptual hash (imagehash's `phash`: the signs of an image's lowest 8x8 DCT frequencies against their
median). Copies made by rotating or flipping are caught by hashing all 8 dihedral views of each image:
two images are near-duplicates when some view of one lies within `max_distance` bits of the other.

Speed: the views are not hashed one by one. The DCT of a flipped thumbnail is the DCT with every odd
frequency's sign changed, and of a transposed one the transposed DCT, so one DCT per image gives all 8
views' coefficients (exactly what phash of each view computes, up to the thumbnail's rounding). Pairs
are found with numpy on packed 64-bit hashes, a block of rows at a time: 17,092 images take seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import imagehash
import numpy as np
import scipy.fftpack
from PIL import Image

HASH_SIZE = 8  # imagehash.phash defaults: 8x8 = 64 bits from a 32x32 greyscale thumbnail
THUMB_SIZE = HASH_SIZE * 4
VIEWS = 8
BLOCK_ROWS = 256  # rows of the distance matrix per numpy step: 256 x 17,092 x 8 bytes = 35 MB
_ODD = np.arange(HASH_SIZE) % 2 == 1


def thumbnails(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32) float greyscale thumbnails, made exactly as imagehash.phash makes them."""
    return (
        np.stack(
            [
                np.asarray(
                    Image.fromarray(image).convert("L").resize((THUMB_SIZE, THUMB_SIZE), imagehash.ANTIALIAS),
                    dtype=np.float64,
                )
                for image in images
            ]
        )
        if len(images)
        else np.zeros((0, THUMB_SIZE, THUMB_SIZE))
    )


def low_frequencies(thumbs: np.ndarray) -> np.ndarray:
    """(N, 8, 8) lowest DCT-II frequencies of each thumbnail (scipy.fftpack, as phash computes them)."""
    dct = scipy.fftpack.dct(scipy.fftpack.dct(thumbs, axis=1), axis=2)
    return dct[:, :HASH_SIZE, :HASH_SIZE]


def dihedral_coefficients(low: np.ndarray) -> np.ndarray:
    """(N, 8, 8, 8): the low frequencies of the 8 rotations/flips of each image, view first after N.

    Reversing the rows of an image negates its odd row frequencies, reversing the columns its odd
    column frequencies, and transposing it transposes them; these generate all 8 symmetries.
    """
    rows = np.where(_ODD[:, None], -1.0, 1.0)  # (8, 1): sign of each row frequency under a row flip
    cols = rows.T
    views = []
    for transposed in (low, np.swapaxes(low, 1, 2)):
        for sign in (1.0, rows, cols, rows * cols):
            views.append(transposed * sign)
    return np.stack(views, axis=1)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """(..., 8, 8) booleans -> (...) uint64, row-major, the first bit most significant."""
    packed = np.packbits(bits.reshape(*bits.shape[:-2], HASH_SIZE * HASH_SIZE), axis=-1)
    return packed.view(">u8")[..., 0].astype(np.uint64)


def dihedral_hashes(images: np.ndarray) -> np.ndarray:
    """(N, 8) uint64 perceptual hashes of every rotation/flip of each (H, W, 3) uint8 image.

    Column 0 is imagehash.phash of the image itself; the others are phash of its other 7 views.
    """
    coefficients = dihedral_coefficients(low_frequencies(thumbnails(images)))
    flat = coefficients.reshape(*coefficients.shape[:2], -1)
    medians = np.median(flat, axis=-1, keepdims=True)[..., None]
    return pack_bits(coefficients > medians)


@dataclass(frozen=True)
class NearPairs:
    """Pairs of images (i < j) whose hashes, under the best rotation/flip, differ by `distance` bits."""

    first: np.ndarray  # (P,) int64
    second: np.ndarray  # (P,) int64
    distance: np.ndarray  # (P,) uint8


def near_pairs(hashes: np.ndarray, max_distance: int) -> NearPairs:
    """Every pair i < j with min over views v of popcount(hash_v(i) xor hash_0(j)) <= max_distance.

    Both directions are tried (views of i against j, views of j against i), so the answer does not
    depend on which image comes first. Cost: 16 popcounts per pair, vectorised in blocks of rows.
    """
    n = len(hashes)
    firsts, seconds, distances = [], [], []
    plain = hashes[:, 0]
    for start in range(0, n, BLOCK_ROWS):
        rows = slice(start, min(start + BLOCK_ROWS, n))
        later = slice(start, n)  # pairs with j >= the block's first row; i < j kept below
        best = np.full((rows.stop - start, n - start), 255, dtype=np.uint8)
        for view in range(VIEWS):
            np.minimum(best, np.bitwise_count(hashes[rows, view, None] ^ plain[None, later]), out=best)
            np.minimum(best, np.bitwise_count(plain[rows, None] ^ hashes[None, later, view]), out=best)
        i, j = np.nonzero(best <= max_distance)
        keep = j > i
        firsts.append(i[keep] + start)
        seconds.append(j[keep] + start)
        distances.append(best[i[keep], j[keep]])
    if not firsts:
        empty = np.zeros(0, dtype=np.int64)
        return NearPairs(empty, empty, np.zeros(0, dtype=np.uint8))
    return NearPairs(
        np.concatenate(firsts).astype(np.int64),
        np.concatenate(seconds).astype(np.int64),
        np.concatenate(distances),
    )


class UnionFind:
    """Disjoint sets over 0..n-1: `union` joins two sets, `groups` labels each item by its set's root."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return int(root)

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)  # the smallest index is the root: deterministic

    def groups(self) -> np.ndarray:
        """(n,) the root (smallest member) of each item's set."""
        return np.array([self.find(i) for i in range(len(self.parent))], dtype=np.int64)


def group_labels(n: int, pairs: NearPairs) -> np.ndarray:
    """(n,) each image's near-duplicate group, named by its smallest member (pairs chain into groups)."""
    sets = UnionFind(n)
    for i, j in zip(pairs.first.tolist(), pairs.second.tolist(), strict=True):
        sets.union(i, j)
    return sets.groups()


def near_duplicate_report(
    hashes: np.ndarray,
    splits: np.ndarray,
    labels: np.ndarray,
    max_distance: int,
    describe: Callable[[int], dict[str, Any]],
    listed: int = 20,
    pairs: NearPairs | None = None,
) -> dict[str, Any]:
    """Near-duplicate pairs counted within and across splits, with label conflicts and a few examples.

    Args:
        hashes: (N, 8) from `dihedral_hashes`.
        splits: (N,) each image's split name.
        labels: (N,) each image's label (int or class name).
        max_distance: the largest Hamming distance (bits of 64) that counts as a near-duplicate.
        describe: image index -> what the examples show of it (split and index, or a file path).
        listed: how many example pairs to list, closest first.
        pairs: `near_pairs(hashes, max_distance)` when already computed.
    """
    pairs = near_pairs(hashes, max_distance) if pairs is None else pairs
    a_split, b_split = splits[pairs.first], splits[pairs.second]
    cross = a_split != b_split
    present = {str(s) for s in splits.tolist()}
    names = [s for s in ("train", "val", "test") if s in present] + sorted(present - {"train", "val", "test"})
    split_pair = {
        f"{a}-{b}": int(((a_split == a) & (b_split == b) | (a_split == b) & (b_split == a)).sum())
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    }
    groups = group_labels(len(hashes), pairs)
    sizes = np.bincount(groups, minlength=len(hashes))
    order = np.lexsort((pairs.second, pairs.first, pairs.distance))[:listed]
    return {
        "hash": f"imagehash.phash ({HASH_SIZE * HASH_SIZE} bits), best of the 8 rotations/flips",
        "max_distance": max_distance,
        "pairs": len(pairs.first),
        "pairs_by_distance": {str(d): int(n) for d, n in enumerate(np.bincount(pairs.distance)) if n},
        "within_split_pairs": {s: int(((a_split == s) & ~cross).sum()) for s in names},
        "cross_split_pairs": int(cross.sum()),
        "split_pairs": split_pair,
        "train_test_pairs": split_pair.get("train-test", 0),
        "conflicting_label_pairs": int((labels[pairs.first] != labels[pairs.second]).sum()),
        "groups": int((sizes > 1).sum()),
        "images_in_groups": int(sizes[sizes > 1].sum()),
        "largest_group": int(sizes.max()) if len(sizes) else 0,
        "examples": [
            {
                "distance": int(pairs.distance[k]),
                "a": describe(int(pairs.first[k])),
                "b": describe(int(pairs.second[k])),
            }
            for k in order
        ],
    }
