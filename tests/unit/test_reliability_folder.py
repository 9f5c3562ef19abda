"""Image folders that give no dataset say why; links out of data.path are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from bloodcells.core.params import FolderParams, parse_params
from bloodcells.data.folder import build_dataset
from bloodcells.data.folder_layout import FolderError
from tests.conftest import PROJECT

SIZES = [28]


def folder_params(**overrides) -> FolderParams:
    """params.yaml's `folder` group (the defaults users get), with `overrides`."""
    params = parse_params(yaml.safe_load((PROJECT / "params.yaml").read_text()))
    return params.folder.model_copy(update=overrides)


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
            build_dataset(root, SIZES, folder_params(classes=classes))
        message = str(error.value)
        assert "7 file(s) skipped: 6x not an image: format not recognised, 1x cannot decode" in message
        if classes is None:  # the class folders name the classes
            assert message.startswith("need at least two classes with usable images, found []; 7 file(s)")
    assert message.startswith("folder.classes ['basophil', 'eosinophil'] have no usable images")
    assert "\n" not in message


def test_a_missing_class_in_folder_classes_lists_every_class_folder_found(tmp_path):
    write_images(tmp_path / "basophil", 4, 50)
    write_images(tmp_path / "eosinophil", 4, 150)
    with pytest.raises(FolderError) as error:
        build_dataset(tmp_path, SIZES, folder_params(classes=["basophil", "nosuch"]))
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
    summary = build_dataset(linked_folder, SIZES, folder_params()).summary
    refused = [w for w in summary["warnings"] if "symbolic links leading outside data.path" in w]
    assert len(refused) == 1 and refused[0].startswith("2 file(s) refused")
    assert "a/passwd.png" in refused[0] and "b/outside.png" in refused[0]
    assert "folder.follow_external_links: true" in refused[0]
    assert summary["files"]["external_links_refused"] == 2
    assert summary["files"]["used"] == 13  # 12 images and the link inside the folder
    assert summary["skipped"] == []  # /etc/passwd was never opened


def test_external_links_are_read_only_when_asked(linked_folder):
    dataset = build_dataset(linked_folder, SIZES, folder_params(follow_external_links=True))
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
        build_dataset(tmp_path / "images", SIZES, folder_params())
