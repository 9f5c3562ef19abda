"""Near-duplicates: imagehash's hashes, rotated/flipped/shifted copies found, groups kept in one split."""

from __future__ import annotations

import csv
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from bloodcells.core.params import ParamsError, load_params, parse_params, read_yaml
from bloodcells.data.folder import build_dataset
from bloodcells.data.folder_layout import ImageFile, assign_splits, file_groups
from bloodcells.data.near_duplicates import HASH_SIZE, dihedral_hashes, near_duplicate_report, near_pairs
from bloodcells.data.preprocess import find_near_duplicates
from bloodcells.data.splits import Split
from bloodcells.model.tta import dihedral_view
from tests.augmented_folder import augmented_copies, cell, write_augmented_folder

PROJECT = Path(__file__).resolve().parents[2]


def cells(n: int) -> np.ndarray:
    return np.stack([cell(seed) for seed in range(n)])


def to_image_hash(value: np.uint64) -> imagehash.ImageHash:
    """A packed hash as imagehash's object, to compare with imagehash's own."""
    bits = np.unpackbits(np.array([value], dtype=">u8").view(np.uint8)).astype(bool)
    return imagehash.ImageHash(bits.reshape(HASH_SIZE, HASH_SIZE))


def test_each_view_is_imagehash_phash_of_that_view():
    """Column 0 is phash itself; the others phash of a rotation/flip (within the thumbnail's rounding)."""
    images = cells(12)
    hashes = dihedral_hashes(images)
    for i, image in enumerate(images):
        assert to_image_hash(hashes[i, 0]) == imagehash.phash(Image.fromarray(image))
    for view in range(8):
        theirs = [imagehash.phash(Image.fromarray(v)) for v in dihedral_view(images, view)]
        best = [min(to_image_hash(h) - t for h in row) for row, t in zip(hashes, theirs, strict=True)]
        assert max(best) <= 2 and np.mean(np.array(best) == 0) >= 0.75


def test_rotated_flipped_and_shifted_copies_pair_up_and_distinct_cells_do_not():
    originals = cells(10)
    copies = [augmented_copies(original, 8, seed=k) for k, original in enumerate(originals)]
    images = np.stack([view for group in copies for view in group])
    owner = np.repeat(np.arange(10), 8)
    pairs = near_pairs(dihedral_hashes(images), 6)
    same = owner[pairs.first] == owner[pairs.second]
    assert same.all()  # no two different cells
    assert (pairs.first < pairs.second).all()
    exact = near_pairs(dihedral_hashes(np.concatenate([originals, dihedral_view(originals, 5)])), 0)
    assert sorted(zip(exact.first.tolist(), exact.second.tolist(), strict=True)) == [
        (i, i + 10) for i in range(10)
    ]


def test_pairs_are_the_same_whichever_image_comes_first():
    images = np.stack([view for k in range(6) for view in augmented_copies(cell(k), 6, seed=k)])
    order = np.random.default_rng(0).permutation(len(images))
    forward = near_pairs(dihedral_hashes(images), 6)
    shuffled = near_pairs(dihedral_hashes(images[order]), 6)
    as_set = {(a, b) for a, b in zip(forward.first.tolist(), forward.second.tolist(), strict=True)}
    back = {
        tuple(sorted((int(order[a]), int(order[b]))))
        for a, b in zip(shuffled.first, shuffled.second, strict=True)
    }
    assert as_set == back


def test_preprocess_report_counts_pairs_within_and_across_splits_and_label_conflicts():
    a, b, c = cell(1), cell(2), cell(3)
    splits = {
        "train": Split(np.stack([a, b]), np.array([0, 1])),
        "val": Split(np.stack([np.rot90(a).copy()]), np.array([0])),
        "test": Split(np.stack([a[:, ::-1].copy(), c, b]), np.array([1, 2, 1])),
    }
    report = find_near_duplicates(splits, 2)
    assert report["pairs"] == 4  # a with its rotation and its flip (3 pairs), b with its copy
    assert report["split_pairs"] == {"train-val": 1, "train-test": 2, "val-test": 1}
    assert report["train_test_pairs"] == 2 and report["cross_split_pairs"] == 4
    assert report["conflicting_label_pairs"] == 2  # the flipped a is labelled 1
    assert report["groups"] == 2 and report["largest_group"] == 3
    reordered = {split: splits[split] for split in ("test", "val", "train")}
    assert find_near_duplicates(reordered, 2)["split_pairs"] == report["split_pairs"]  # named train-val-test
    assert report["examples"][0]["distance"] == 0 and set(report["examples"][0]["a"]) == {
        "split",
        "index",
        "label",
    }


def test_report_on_nothing_alike_is_empty():
    hashes = dihedral_hashes(cells(5))
    report = near_duplicate_report(hashes, np.array(["train"] * 5), np.zeros(5), 0, lambda i: {"i": i})
    assert report["pairs"] == 0 and report["examples"] == [] and report["groups"] == 0


def files(names: list[str], label: str = "a") -> list[ImageFile]:
    return [ImageFile(f"{label}/{name}", label, None) for name in names]


def test_pattern_groups_span_classes_and_unmatched_names_stand_alone():
    listed = files(["p1_1.png", "p1_2.png", "p2_1.png"], "a") + files(["p1_3.png", "odd.png"], "b")
    groups, unmatched = file_groups(listed, ["m1", "m2", "m3", "m4", "m5"], None, r"^(\w+)_\d+")
    assert groups.tolist() == [0, 0, 2, 0, 4] and unmatched == 1


def test_groups_stay_whole_and_the_assignment_does_not_depend_on_names_order_or_training_seed():
    listed = files([f"f{i:03d}.png" for i in range(200)])
    md5s = [f"md5-{i}" for i in range(200)]
    groups = np.array([i // 10 * 10 for i in range(200)])  # 20 groups of 10
    splits = assign_splits(listed, md5s, set(), [7, 1, 2], seed=3, groups=groups)
    for g in range(0, 200, 10):
        assert len(set(splits[g : g + 10])) == 1
    assert {s: splits.count(s) for s in ("train", "val", "test")} == {"train": 140, "val": 20, "test": 40}
    assert assign_splits(listed, md5s, set(), [7, 1, 2], seed=3, groups=groups) == splits
    assert assign_splits(listed, md5s, set(), [7, 1, 2], seed=4, groups=groups) != splits


def test_a_group_larger_than_twice_a_split_stays_in_train():
    listed = files([f"f{i:03d}.png" for i in range(100)])
    groups = np.array([0] * 50 + list(range(50, 100)))
    splits = assign_splits(listed, [f"m{i}" for i in range(100)], set(), [7, 1, 2], seed=0, groups=groups)
    assert set(splits[:50]) == {"train"} and splits.count("test") == 20 and splits.count("val") == 10


def folder_params(**changes):
    return load_params(PROJECT / "params.yaml").folder.model_copy(update=changes)


def originals_by_split(dataset, owner: dict[str, str]) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for row in csv.DictReader(dataset.manifest.splitlines()):
        seen.setdefault(row["split"], set()).add(owner[row["path"]])
    return seen


@pytest.fixture(scope="module")
def augmented(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("augmented") / "images"
    return root, write_augmented_folder(root, classes=3, originals=8, copies=12)


def test_carved_val_and_test_share_no_originals_with_train(augmented):
    root, owner = augmented
    dataset = build_dataset(root, [28], folder_params())  # the default group_near_duplicates_within
    seen = originals_by_split(dataset, owner)
    assert (
        not seen["train"] & seen["val"]
        and not seen["train"] & seen["test"]
        and not seen["val"] & seen["test"]
    )
    assert dataset.summary["totals"]["val"] > 0 and dataset.summary["totals"]["test"] > 0
    assert (
        dataset.summary["split_groups"]["groups"] == 24
        and dataset.summary["split_groups"]["straddling_splits"] == 0
    )
    near = dataset.summary["near_duplicates"]
    assert near["cross_split_pairs"] == 0 and near["pairs"] > 24 and near["examples"][0]["a"]["path"]


def test_without_grouping_the_carved_splits_leak_and_a_name_pattern_alone_fixes_it(augmented):
    root, owner = augmented
    ungrouped = build_dataset(root, [28], folder_params(group_near_duplicates_within=None))
    leaky = originals_by_split(ungrouped, owner)
    assert leaky["train"] & leaky["val"] and leaky["train"] & leaky["test"]  # what the grouping prevents
    by_name = build_dataset(
        root, [28], folder_params(group_near_duplicates_within=None, group_pattern=r"^(\w+)_\d+")
    )
    seen = originals_by_split(by_name, owner)
    assert not seen["train"] & seen["val"] and not seen["train"] & seen["test"]
    assert by_name.summary["near_duplicates"] is None


@pytest.mark.parametrize(
    ("value", "message"),
    [("(a", "not a regular expression"), ("^\\w+_\\d+", "exactly one (group)"), ("(a)(b)", "has 2")],
)
def test_a_bad_group_pattern_is_one_line_naming_the_key(value, message):
    raw = read_yaml(PROJECT / "params.yaml")
    raw["folder"]["group_pattern"] = value
    with pytest.raises(ParamsError, match="folder.group_pattern") as error:
        parse_params(raw)
    assert message in str(error.value) and "\n" not in str(error.value)
