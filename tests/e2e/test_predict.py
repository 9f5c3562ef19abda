"""`bloodcells predict` on a pipeline's model: npz files, folders, bad files, TTA, Grad-CAM, temperature."""

from __future__ import annotations

import csv
import json
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from bloodcells.inference.predictor import Predictor
from bloodcells.model.temperature import apply_temperature
from tests.conftest import PROJECT, run

pytestmark = pytest.mark.slow  # real dvc pipelines on temporary repos


def bloodcells(*args: str):
    return run(PROJECT, sys.executable, "-m", "bloodcells.cli", *args, check=False)


def read_rows(path):
    with path.open() as f:
        return list(csv.DictReader(f))


def test_predict_on_the_mirror_npz_matches_the_pipeline(reproduced_repo, synthetic_mirror, tmp_path):
    out = tmp_path / "npz.csv"
    result = bloodcells("predict", str(reproduced_repo / "models"), str(synthetic_mirror / "bloodmnist.npz"),
                        "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    rows = read_rows(out)
    classes = json.loads((reproduced_repo / "models" / "model.json").read_text())["classes"]
    assert list(rows[0]) == ["path", "predicted", "confidence", *classes]
    test_rows = [row for row in rows if ":test[" in row["path"]]
    predictor = Predictor(reproduced_repo / "models")
    images = np.load(reproduced_repo / "data" / "preprocessed" / "28" / "test_images.npy")
    temperature = json.loads((reproduced_repo / "models" / "model.json").read_text())["temperature"]
    expected = apply_temperature(predictor.model.predict(images, verbose=0), temperature)  # the card's
    probs = np.array([[float(row[c]) for c in classes] for row in test_rows])
    np.testing.assert_allclose(probs, expected, atol=2e-6)  # the CSV rounds to 6 decimals
    assert [row["predicted"] for row in test_rows] == [classes[i] for i in expected.argmax(1)]
    assert "images/s" in result.stdout


def test_predict_on_a_folder_skips_what_is_not_an_image(reproduced_repo, tmp_path):
    folder = tmp_path / "slides" / "patient 1"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (363, 360, 3), dtype=np.uint8)).save(folder / f"cell{i}.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "notes.txt").write_text("ignored")
    out, cams = tmp_path / "folder.csv", tmp_path / "cams"
    result = bloodcells("predict", str(reproduced_repo / "models"), str(tmp_path / "slides"), "-o", str(out),
                        "--tta", "8", "--gradcam", str(cams))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"skipped {folder / 'broken.png'}: not an image" in result.stderr
    assert "ignored 1 file(s)" in result.stderr
    assert "3 image(s) classified, 1 skipped" in result.stdout and "TTA x8" in result.stdout
    rows = read_rows(out)
    assert [row["path"].rsplit("/", 1)[-1] for row in rows] == ["cell0.jpg", "cell1.jpg", "cell2.jpg"]
    overlays = sorted(cams.glob("*.png"))
    assert [p.name for p in overlays] == ["00000_cell0.png", "00001_cell1.png", "00002_cell2.png"]
    assert Image.open(overlays[0]).size == (224, 224)


def test_predict_fails_in_one_line(reproduced_repo, tmp_path):
    missing = bloodcells("predict", str(tmp_path), str(tmp_path))
    assert missing.returncode != 0 and "model.json not found" in missing.stderr
    assert "Traceback" not in missing.stderr
    nothing = bloodcells("predict", str(reproduced_repo / "models"), str(tmp_path / "nowhere"), "-o",
                         str(tmp_path / "x.csv"), "-q")
    assert nothing.returncode != 0 and "no image could be classified" in nothing.stderr
    assert "Traceback" not in nothing.stderr


def test_predict_applies_the_cards_temperature(reproduced_repo, tmp_path):
    folders = {}
    for name, temperature in (("plain", 1.0), ("calibrated", 2.5)):
        folders[name] = tmp_path / name
        shutil.copytree(reproduced_repo / "models", folders[name], ignore=shutil.ignore_patterns("export"))
        card = json.loads((folders[name] / "model.json").read_text())
        (folders[name] / "model.json").write_text(json.dumps({**card, "temperature": temperature}))
    images = np.load(reproduced_repo / "data" / "preprocessed" / "28" / "test_images.npy")[:16]
    plain = Predictor(folders["plain"]).probabilities(images)
    scaled = Predictor(folders["calibrated"]).probabilities(images)
    np.testing.assert_allclose(scaled, apply_temperature(plain, 2.5), rtol=1e-5, atol=1e-7)
    assert (scaled.argmax(1) == plain.argmax(1)).all()
