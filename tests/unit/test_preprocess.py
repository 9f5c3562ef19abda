"""Preprocess stage: validation of MedMNIST arrays, duplicates, and byte-identical outputs."""

from __future__ import annotations

import numpy as np
import pytest

from bloodcells.data.preprocess import (
    PreprocessError,
    drop_cross_split_duplicates,
    find_duplicates,
    load_raw,
    summarize,
    validate,
    write_preprocessed,
)
from bloodcells.data.splits import load_split
from tests.synthetic import write_synthetic_npz

NAMES = [f"class{i}" for i in range(8)]


@pytest.fixture
def arrays(tmp_path):
    return write_synthetic_npz(tmp_path / "bloodmnist.npz", 28, counts=(16, 8, 8))


def test_valid_arrays_pass_and_labels_are_flattened(arrays):
    splits = validate(arrays, 28, 8, None, "f.npz")
    assert splits["train"].labels.shape == (16,) and splits["train"].labels.dtype == np.uint8
    assert splits["test"].images.shape == (8, 28, 28, 3)


def as_float(a, key):
    a[key] = a[key].astype(np.float32 if key.endswith("images") else np.float64)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a.pop("val_labels"), r"missing keys \['val_labels'\]"),
        (lambda a: as_float(a, "train_images"), "train_images has dtype float32, expected uint8"),
        (lambda a: a.update(test_images=a["test_images"][..., :2]), r"\(8, 28, 28, 2\), expected \(N, 28"),
        (lambda a: a.update(train_labels=a["train_labels"] + 8), r"16 value\(s\) outside \[0, 7\]"),
        (lambda a: a.update(val_labels=a["val_labels"][:3]), r"expected \(8, 1\)"),
        (lambda a: as_float(a, "val_labels"), "val_labels has dtype float64, expected integers"),
    ],
    ids=["missing-key", "float-images", "two-channels", "label-range", "label-count", "float-labels"],
)
def test_bad_arrays_are_refused_with_the_fault_named(arrays, mutate, message):
    mutate(arrays)
    with pytest.raises(PreprocessError, match=message):
        validate(arrays, 28, 8, None, "f.npz")


def test_wrong_image_size_and_official_split_sizes(arrays):
    with pytest.raises(PreprocessError, match=r"expected \(N, 64, 64, 3\)"):
        validate(arrays, 64, 8, None, "f.npz")
    with pytest.raises(PreprocessError, match="train has 16 images, MedMNIST's split has 11959"):
        validate(arrays, 28, 8, {"train": 11959, "val": 1712, "test": 3421}, "f.npz")


def test_a_non_npz_file_is_refused(tmp_path):
    (tmp_path / "x.npz").write_text("not a zip")
    with pytest.raises(PreprocessError, match="not a readable npz"):
        load_raw(tmp_path / "x.npz")


def test_duplicates_within_and_across_splits_with_conflicting_labels(arrays):
    splits = validate(arrays, 28, 8, None, "f.npz")
    train, test = splits["train"], splits["test"]
    train.images[1] = train.images[0]  # within train, same label
    train.labels[1] = train.labels[0]
    test.images[2] = train.images[5]  # train/test straddler with another label
    test.labels[2] = (train.labels[5] + 1) % 8
    report = find_duplicates(splits)
    assert report["pairs"] == 2 and report["groups"] == 2
    assert report["cross_split_groups"] == 1 and report["train_test_groups"] == 1
    assert report["conflicting_label_groups"] == 1

    cleaned, dropped = drop_cross_split_duplicates(splits)
    assert dropped == {"train": 0, "val": 0, "test": 1}
    assert len(cleaned["test"].labels) == 7 and len(cleaned["train"].labels) == 16


def test_outputs_are_byte_identical_across_runs(arrays, tmp_path):
    splits = validate(arrays, 28, 8, None, "f.npz")
    for run in ("a", "b"):
        write_preprocessed(splits, summarize(splits, NAMES), tmp_path / run)
    for name in sorted(p.name for p in (tmp_path / "a").iterdir()):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    loaded = load_split(tmp_path / "a", "val")
    np.testing.assert_array_equal(loaded.images, arrays["val_images"])


def test_summary_counts_and_channel_statistics(arrays):
    splits = validate(arrays, 28, 8, None, "f.npz")
    summary = summarize(splits, NAMES)
    assert summary["counts"]["train"] == {name: 2 for name in NAMES}
    expected_mean = arrays["train_images"].reshape(-1, 3).mean(axis=0) / 255
    np.testing.assert_allclose(summary["channel_mean"], expected_mean, atol=1e-6)


def test_outputs_get_the_usual_file_mode(tmp_path):
    """Atomic writes go through mkstemp (mode 600); the renamed output must follow the umask."""
    import os

    from bloodcells.core.files import write_json

    write_json(tmp_path / "x.json", {"a": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert list(tmp_path.iterdir()) == [tmp_path / "x.json"]
