"""The folder data source: decoding, layouts, splits and bad input (`dvc repro` on a folder: tests/e2e)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bloodcells.core.params import FolderParams, ParamsError
from bloodcells.data.decode import Recipe, UnreadableImage, decode_bytes, decode_files
from bloodcells.data.folder import (
    FolderError,
    build_dataset,
    build_from_folder,
    check_params,
    write_folder_dataset,
)
from tests.conftest import PROJECT, SHARED_DATA, dvc_env, group, set_params, shipped_params

PBC_SAMPLE = SHARED_DATA / "pbc-sample"
JUNK = b"\x00\x00\x00\x01Bud1" + bytes(200)  # the start of a macOS .DS_Store, as in PBC's neutrophil/
SIDES = [(64, 48), (37, 53), (250, 190), (120, 120), (90, 61)]  # odd sizes, landscape and portrait
SIZES = [8, 16]


def class_image(label: int, width: int, height: int, seed: int) -> Image.Image:
    """An RGB image whose tint and stripe period depend on the class, so a CNN can tell classes apart."""
    rng = np.random.default_rng(seed)
    rows = np.arange(height)[:, None, None]
    tint = np.array([40 + 50 * label, 200 - 40 * label, 80 + 60 * (label % 2)])
    pixels = tint + ((rows // (2 + label)) % 2) * 50 + rng.normal(0, 10, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_class_folder(folder: Path, label: int, n: int, seed: int = 0) -> list[Path]:
    """`n` images of one class: JPEG and PNG, odd sizes, some grayscale and some RGBA."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        image = class_image(label, *SIDES[i % len(SIDES)], seed=seed * 1000 + label * 100 + i)
        if i % 3 == 0:
            path, image = folder / f"img_{i:03d}.png", image.convert("RGBA") if i % 2 else image
        else:
            path, image = folder / f"img_{i:03d}.jpg", image.convert("L") if i % 4 == 1 else image
        image.save(path)
        paths.append(path)
    return paths


def write_image_folder(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    """A class-per-folder set: `counts` maps 'class' or 'split/class' to a number of images."""
    for label, (name, n) in enumerate(sorted(counts.items())):
        write_class_folder(root / name, label % 8, n, seed)
    return root


def build(root: Path, workers: int = 1, **params) -> tuple:
    """Build from `root` at SIZES with `folder` params overridden; return the dataset and its summary."""
    dataset = build_dataset(root, SIZES, group("folder", **params), workers=workers)
    return dataset, dataset.summary


def manifest_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# Decoding: one file, MedMNIST's recipe.


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_decode_crops_the_centre_square_then_resizes_to_every_size():
    image = class_image(3, 360, 363, seed=1)
    arrays, small = decode_bytes(encode(image), Recipe((28, 64), crop=200))
    square = image.crop((80, 81, 280, 281))  # (360 - 200) // 2, (363 - 200) // 2
    for size, array in zip((28, 64), arrays, strict=True):
        expected = np.asarray(square.resize((size, size), Image.Resampling.BICUBIC))
        assert array.dtype == np.uint8 and array.shape == (size, size, 3)
        np.testing.assert_array_equal(array, expected)
    assert not small


def test_an_image_smaller_than_the_crop_uses_its_largest_centred_square():
    image = class_image(1, 50, 70, seed=2)
    (array,), small = decode_bytes(encode(image), Recipe((16,), crop=200))
    expected = np.asarray(image.crop((0, 10, 50, 60)).resize((16, 16), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(array, expected)
    assert small


def test_exif_orientation_is_applied_before_cropping():
    """Stored landscape, left red / right blue, EXIF 6 (rotate 90 clockwise): upright, red is on top."""
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    data = encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif)
    (upright,), _ = decode_bytes(data, Recipe((8,), crop=None))
    (ignored,), _ = decode_bytes(encode(Image.fromarray(stored), "JPEG", quality=95), Recipe((8,), crop=None))
    assert upright[0, 4, 0] > 200 and upright[0, 4, 2] < 60  # top row red
    assert upright[7, 4, 2] > 200 and upright[7, 4, 0] < 60  # bottom row blue
    assert ignored[4, 0, 0] > 200 and ignored[4, 7, 2] > 200  # without EXIF: red left, blue right


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [("L", 100, 100), ("RGBA", (10, 20, 30, 0), (10, 20, 30)), ("P", 7, None), ("I;16", 257 * 100, 100)],
)
def test_grayscale_rgba_palette_and_16_bit_images_become_8_bit_rgb(mode, value, expected):
    (array,), _ = decode_bytes(encode(Image.new(mode, (30, 20), value)), Recipe((8,)))
    assert array.shape == (8, 8, 3) and array.dtype == np.uint8
    if expected is not None:
        assert tuple(array[4, 4]) == ((expected,) * 3 if isinstance(expected, int) else expected)


def test_junk_and_truncated_files_are_unreadable_with_a_reason():
    with pytest.raises(UnreadableImage, match="not an image: format not recognised"):
        decode_bytes(JUNK, Recipe((8,)))
    jpeg = encode(class_image(0, 64, 64, seed=3), "JPEG")
    with pytest.raises(UnreadableImage, match="cannot decode: OSError: image file is truncated"):
        decode_bytes(jpeg[: len(jpeg) // 2], Recipe((8,)))


def test_decoding_does_not_depend_on_the_number_of_workers(tmp_path):
    paths = write_class_folder(tmp_path / "a", 0, 70)  # more than one chunk of 64 files
    (tmp_path / "a" / "junk.jpg").write_bytes(JUNK)
    paths.append(tmp_path / "a" / "junk.jpg")
    one, two = decode_files(paths, Recipe(tuple(SIZES)), 1), decode_files(paths, Recipe(tuple(SIZES)), 2)
    assert one.md5 == two.md5 and one.errors == two.errors and one.errors[-1] is not None
    for size in SIZES:
        np.testing.assert_array_equal(one.images[size], two.images[size])


# Layouts, classes and splits.


def test_manifest_and_arrays_are_byte_identical_across_runs(tmp_path):
    root = write_image_folder(tmp_path / "images", {"a": 12, "b": 15, "c": 9})
    first, second = tmp_path / "raw1", tmp_path / "raw2"
    write_folder_dataset(build(root, workers=1)[0], "cells", first)
    write_folder_dataset(build(root, workers=2)[0], "cells", second)
    names = sorted(p.name for p in first.iterdir())
    assert names == ["cells_16.npz", "cells_8.npz", "classes.json", "folder_summary.json", "manifest.csv"]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    rows = manifest_rows((first / "manifest.csv").read_text())
    assert list(rows[0]) == ["path", "class", "split", "index", "md5"]
    assert rows[0]["path"] == "a/img_000.png" and len(rows) == 36


def test_arrays_follow_the_manifest_in_medmnist_format(tmp_path):
    root = write_image_folder(tmp_path / "images", {"a": 10, "b": 10})
    dataset, summary = build(root)
    write_folder_dataset(dataset, "cells", tmp_path / "raw")
    rows = manifest_rows(dataset.manifest)
    with np.load(tmp_path / "raw" / "cells_16.npz", allow_pickle=False) as npz:
        for split in ("train", "val", "test"):
            images, labels = npz[f"{split}_images"], npz[f"{split}_labels"]
            assert images.dtype == np.uint8 and images.shape[1:] == (16, 16, 3)
            assert labels.dtype == np.uint8 and labels.shape == (len(images), 1)
            assert len(images) == summary["totals"][split]
        row = next(r for r in rows if r["split"] == "test")
        expected, _ = decode_bytes((root / row["path"]).read_bytes(), Recipe((16,)))
        np.testing.assert_array_equal(npz["test_images"][int(row["index"])], expected[0])
        assert npz["test_labels"][int(row["index"]), 0] == dataset.classes.index(row["class"])
    assert json.loads((tmp_path / "raw" / "classes.json").read_text()) == {
        "classes": ["a", "b"],
        "decoding": None,
    }


def test_without_split_folders_each_class_is_split_7_1_2_by_a_seeded_draw(tmp_path):
    root = write_image_folder(tmp_path / "images", {"a": 20, "b": 30})
    _, summary = build(root)
    assert summary["counts"] == {
        "train": {"a": 14, "b": 21},
        "val": {"a": 2, "b": 3},
        "test": {"a": 4, "b": 6},
    }
    assert summary["carved_from_train"] == ["val", "test"] and summary["split_folders"] == {}
    seeded = {r["path"]: r["split"] for r in manifest_rows(build(root, split_seed=42)[0].manifest)}
    other = {r["path"]: r["split"] for r in manifest_rows(build(root, split_seed=7)[0].manifest)}
    assert seeded != other
    halves = build(root, split_ratios=[1, 1, 2])[1]["totals"]
    assert halves == {"train": 5 + 7, "val": 5 + 8, "test": 10 + 15}  # 7.5 rounds up


def test_identical_files_in_one_class_land_in_one_split(tmp_path):
    root = write_image_folder(tmp_path / "images", {"a": 20, "b": 20})
    for i in range(5):
        (root / "a" / f"copy_{i}.jpg").write_bytes((root / "a" / "img_001.jpg").read_bytes())
    dataset, summary = build(root)
    rows = manifest_rows(dataset.manifest)
    md5 = next(r["md5"] for r in rows if r["path"] == "a/img_001.jpg")
    assert len({r["split"] for r in rows if r["md5"] == md5}) == 1
    assert summary["duplicate_files"]["groups"] == 1 and summary["duplicate_files"]["files"] == 6
    assert "1 group(s) of byte-identical files, 0 across splits" in " ".join(summary["warnings"])


def test_split_folders_in_any_case_are_kept_and_val_is_carved_from_train(tmp_path):
    """The Kaggle layout: TRAIN/ and TEST/ class folders, plus a TEST_SIMPLE/ that is not a split."""
    root = write_image_folder(
        tmp_path / "images",
        {"TRAIN/EOSINOPHIL": 16, "TRAIN/LYMPHOCYTE": 16, "TEST/EOSINOPHIL": 5, "TEST/LYMPHOCYTE": 4},
    )
    write_class_folder(root / "TEST_SIMPLE" / "EOSINOPHIL", 0, 2)
    dataset, summary = build(root)
    rows = manifest_rows(dataset.manifest)
    assert {r["path"].split("/")[0] for r in rows if r["split"] == "test"} == {"TEST"}
    assert {r["path"].split("/")[0] for r in rows if r["split"] == "val"} == {"TRAIN"}
    assert summary["split_folders"] == {"train": "TRAIN", "test": "TEST"}
    assert summary["counts"]["val"] == {"EOSINOPHIL": 2, "LYMPHOCYTE": 2}  # 16 * 1/8
    assert summary["totals"] == {"train": 28, "val": 4, "test": 9}
    assert dataset.classes == ["EOSINOPHIL", "LYMPHOCYTE"]
    assert "folder 'TEST_SIMPLE' ignored: not a split name (train, val, test)" in summary["warnings"]


def test_explicit_class_order_sets_the_labels_and_leaves_other_folders_out(tmp_path):
    root = write_image_folder(tmp_path / "images", {"a": 10, "b": 10, "c": 10})
    dataset, summary = build(root, classes=["c", "a"])
    assert dataset.classes == ["c", "a"] and summary["files"]["left_out"] == 10
    assert "class folder(s) ['b'] not in folder.classes: left out" in summary["warnings"]
    labels = dataset.arrays[8]["train_labels"][:, 0]
    train_rows = [r for r in manifest_rows(dataset.manifest) if r["split"] == "train"]
    assert [labels[int(r["index"])] for r in train_rows] == [{"c": 0, "a": 1}[r["class"]] for r in train_rows]


# Bad input: skipped with a counted warning, or refused with a one-line error.


def test_junk_truncated_and_empty_folders_are_skipped_and_counted(tmp_path):
    root = write_image_folder(tmp_path / "images", {"a": 10, "b": 10})
    (root / "b" / ".DS_169665.jpg").write_bytes(JUNK)
    jpeg = (root / "a" / "img_001.jpg").read_bytes()
    (root / "a" / "broken.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "empty").mkdir()
    (root / "README.txt").write_text("not an image")
    (root / "loose.png").write_bytes(encode(class_image(0, 20, 20, seed=4)))
    dataset, summary = build(root)
    assert dataset.classes == ["a", "b"]
    assert summary["files"] == {
        "images_found": 22,
        "used": 20,
        "skipped": 2,
        "left_out": 0,
        "other_files": 1,
        "external_links_refused": 0,
    }
    assert [s["path"] for s in summary["skipped"]] == ["a/broken.jpg", "b/.DS_169665.jpg"]
    assert summary["skipped"][0]["reason"].startswith("cannot decode: OSError: image file is truncated")
    assert summary["skipped"][1]["reason"] == "not an image: format not recognised"
    warnings = "\n".join(summary["warnings"])
    assert "2 file(s) skipped, not decodable images: a/broken.jpg" in warnings
    assert "class folder 'empty' has no images: skipped" in warnings
    assert "1 image file(s) outside class folders ignored" in warnings
    assert all("broken" not in r["path"] and "DS" not in r["path"] for r in manifest_rows(dataset.manifest))


def test_a_class_missing_from_test_is_a_warning(tmp_path):
    root = write_image_folder(tmp_path / "images", {"train/a": 10, "train/b": 10, "test/a": 3})
    _, summary = build(root)
    assert "class(es) ['b'] have no test images: their test metrics are undefined" in summary["warnings"]


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"train/a": 10, "test/a": 3, "test/b": 3}, "class 'b' has no training images (0 val, 3 test)"),
        ({"val/a": 4, "test/a": 3}, "split folders ['test', 'val'] but no train"),
        ({"a": 10}, "need at least two classes with usable images, found ['a']"),
        ({"a": 1, "b": 1}, "the val split is empty"),
        ({"train/a": 10, "train/b": 10, "test/a": 0, "test/b": 0}, "the test split is empty"),
    ],
)
def test_unusable_layouts_are_refused_with_one_line(tmp_path, counts, message):
    root = write_image_folder(tmp_path / "images", counts)
    with pytest.raises(FolderError, match=re.escape(message)) as error:
        build(root)
    assert "\n" not in str(error.value)


def test_missing_path_a_file_and_a_folder_without_images_are_refused(tmp_path):
    with pytest.raises(FolderError, match="no such folder"):
        build(tmp_path / "nowhere")
    (tmp_path / "file.jpg").write_bytes(JUNK)
    with pytest.raises(FolderError, match="a file, not a folder of class folders"):
        build(tmp_path / "file.jpg")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("")
    with pytest.raises(FolderError, match=r"no images in class folders \(expected <class>/<image>"):
        build(tmp_path / "empty")
    junk = tmp_path / "junk"
    for name in ("a", "b"):
        (junk / name).mkdir(parents=True)
        (junk / name / "x.jpg").write_bytes(JUNK)
    with pytest.raises(FolderError, match=r"need at least two classes with usable images, found \[\]"):
        build(junk)
    with pytest.raises(FolderError, match=r"folder.classes \['x'\] have no usable images"):
        build(write_image_folder(tmp_path / "ok", {"a": 5, "b": 5}), classes=["a", "x"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"data.dataset": "../x"}, "data.dataset: String should match pattern"),
        ({"data.sizes": [28, 0]}, "data.sizes.1: Input should be greater than or equal to 1"),
        ({"folder.crop": -1}, "folder.crop: Input should be greater than or equal to 1"),
        ({"folder.resize_filter": "cubic"}, "folder.resize_filter: Input should be 'nearest', 'box'"),
        ({"folder.split_ratios": [7, 0, 2]}, "folder.split_ratios.1: Input should be greater than 0"),
        ({"folder.classes": ["a", "a"]}, r"folder.classes: class names repeat: \['a', 'a'\]"),
        ({"folder.classes": [1, 2]}, "folder.classes.0: Input should be a valid string"),
    ],
)
def test_bad_folder_params_are_refused_with_one_line_naming_the_key(overrides, message):
    folder_source = {
        "data.source": "folder",
        "data.dataset": "cells",
        "data.sizes": [28],
        "data.path": "images",
    }
    with pytest.raises(ParamsError, match=message) as error:
        shipped_params({**folder_source, **overrides})
    assert "\n" not in str(error.value)


def test_the_folder_source_needs_a_path():
    with pytest.raises(FolderError, match="data.path is not set"):
        check_params(group("data", source="folder", path=None))


def test_a_refusal_writes_nothing_and_keeps_the_previous_files(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "old.npz").write_bytes(b"previous run")
    data = group("data", dataset="cells", sizes=[8], source="folder", path=str(tmp_path / "nowhere"))
    with pytest.raises(FolderError):
        build_from_folder(data, group("folder"), raw)
    assert [p.name for p in raw.iterdir()] == ["old.npz"]


def test_the_download_stage_prints_one_line_and_exits_nonzero_on_a_missing_folder(tmp_path):
    for name in ("params.yaml", "dvc.yaml"):
        (tmp_path / name).write_bytes((PROJECT / name).read_bytes())
    set_params(tmp_path, {"data.source": "folder", "data.path": str(tmp_path / "nowhere")})
    env = {**dvc_env(), "PYTHONPATH": str(PROJECT)}
    result = subprocess.run(
        [sys.executable, "-m", "stages.download"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr == f"download failed: data.path '{tmp_path / 'nowhere'}': no such folder\n"
    assert not (tmp_path / "data").exists()


# The real PBC sample, and the whole pipeline.


@pytest.mark.real_data
def test_the_real_pbc_sample_skips_its_junk_file():
    if not PBC_SAMPLE.is_dir():
        pytest.skip(f"real data absent: {PBC_SAMPLE} (see ../shared/data/README.md)")
    dataset, summary = build(PBC_SAMPLE, workers=2)
    assert dataset.classes == [
        "basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet"
    ]  # fmt: skip
    assert summary["skipped"] == [
        {"path": "neutrophil/.DS_169665.jpg", "reason": "not an image: format not recognised"}
    ]
    assert summary["files"]["used"] == 332 and summary["totals"] == {"train": 236, "val": 32, "test": 64}
    assert all(count > 0 for split in summary["counts"].values() for count in split.values())


# Folders that give no dataset say why; links out of data.path are refused.
ONE_SIZE = [28]


def folder_params(**overrides) -> FolderParams:
    """params.yaml's `folder` group (the defaults users get), with `overrides`."""
    return group("folder", **overrides)


def write_images(folder: Path, n: int, value: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    paths = []
    for i in range(n):
        pixels = np.clip(value + rng.normal(0, 10, (40, 40, 3)), 0, 255).astype(np.uint8)
        paths.append(folder / f"img_{i:02d}.png")
        Image.fromarray(pixels).save(paths[-1])
    return paths


def test_an_all_undecodable_folder_prints_the_skip_reasons_counted(tmp_path):
    root = tmp_path / "images"
    for name in ("basophil", "eosinophil"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            (root / name / f"text_{i}.png").write_text("not a picture")
    good = write_images(tmp_path / "scratch", 1, 100)[0].read_bytes()
    (root / "eosinophil" / "cut.png").write_bytes(good[: len(good) // 2])  # a truncated PNG
    for classes in (None, ["basophil", "eosinophil"]):
        with pytest.raises(FolderError) as error:
            build_dataset(root, ONE_SIZE, folder_params(classes=classes))
        message = str(error.value)
        assert "7 file(s) skipped: 6x not an image: format not recognised, 1x cannot decode" in message
        if classes is None:  # the case
            assert message.startswith("need at least two classes with usable images, found []; 7 file(s)")
    assert message.startswith("folder.classes ['basophil', 'eosinophil'] have no usable images")
    assert "\n" not in message


def test_a_missing_class_in_folder_classes_lists_every_class_folder_found(tmp_path):
    write_images(tmp_path / "basophil", 4, 50)
    write_images(tmp_path / "eosinophil", 4, 150)
    with pytest.raises(FolderError) as error:
        build_dataset(tmp_path, ONE_SIZE, folder_params(classes=["basophil", "nosuch"]))
    assert "folder.classes ['nosuch']" in str(error.value)
    assert "class folders found: ['basophil', 'eosinophil']" in str(error.value)


@pytest.fixture
def linked_folder(tmp_path) -> Path:
    """Two classes of 6 images; one link to a system file, one to an image outside, one link inside."""
    root = tmp_path / "images"
    write_images(root / "a", 6, 60)
    write_images(root / "b", 6, 180)
    outside = write_images(tmp_path / "elsewhere", 1, 120)[0]
    (root / "a" / "passwd.png").symlink_to("/etc/passwd")
    (root / "b" / "outside.png").symlink_to(outside)
    (root / "b" / "inside.png").symlink_to(root / "b" / "img_00.png")
    return root


def test_links_leaving_data_path_are_refused_with_a_counted_warning(linked_folder):
    summary = build_dataset(linked_folder, ONE_SIZE, folder_params()).summary
    refused = [w for w in summary["warnings"] if "symbolic links leading outside data.path" in w]
    assert len(refused) == 1 and refused[0].startswith("2 file(s) refused")
    assert "a/passwd.png" in refused[0] and "b/outside.png" in refused[0]
    assert "folder.follow_external_links: true" in refused[0]
    assert summary["files"]["external_links_refused"] == 2
    assert summary["files"]["used"] == 13  # 12 images and the link inside the folder
    assert summary["skipped"] == []  # /etc/passwd was never opened


def test_external_links_are_read_only_when_asked(linked_folder):
    dataset = build_dataset(linked_folder, ONE_SIZE, folder_params(follow_external_links=True))
    summary = dataset.summary
    assert summary["files"]["external_links_refused"] == 0
    assert summary["files"]["used"] == 14  # the outside image too
    assert [s["path"] for s in summary["skipped"]] == ["a/passwd.png"]  # read, found not an image
    assert "b/outside.png" in dataset.manifest


def test_a_folder_of_only_external_links_says_so(tmp_path):
    outside = write_images(tmp_path / "elsewhere", 4, 90)
    for name in ("a", "b"):
        (tmp_path / "images" / name).mkdir(parents=True)
        for path in outside:
            (tmp_path / "images" / name / path.name).symlink_to(path)
    with pytest.raises(FolderError, match="8 link\\(s\\) leading outside it refused"):
        build_dataset(tmp_path / "images", ONE_SIZE, folder_params())
