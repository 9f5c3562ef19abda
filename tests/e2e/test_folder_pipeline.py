"""`dvc repro` of the whole pipeline on a class-per-folder image set."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ran_stages, run, set_params
from tests.unit.test_folder import JUNK, write_class_folder, write_image_folder

pytestmark = pytest.mark.slow


def test_dvc_repro_runs_the_whole_pipeline_on_an_image_folder(tmp_path, new_repo):
    """Any size works for folder data (32 px is not a MedMNIST size); a changed image re-runs download."""
    images = write_image_folder(tmp_path / "images", {"basophil": 40, "eosinophil": 40, "ig": 40})
    (images / "ig" / ".DS_1.jpg").write_bytes(JUNK)
    overrides = {
        "data.source": "folder",
        "data.path": str(images),
        "data.dataset": "cells",
        "data.sizes": [32],
        "train.size": 32,
    }
    repo = new_repo(overrides)
    first = run(repo, "dvc", "repro")
    stages = ["download", "preprocess@32", "class_weights", "train", "evaluate", "export"]
    assert ran_stages(first.stdout) == stages
    assert "warning: 1 file(s) skipped, not decodable images: ig/.DS_1.jpg" in first.stdout
    card = json.loads((repo / "models/model.json").read_text())
    assert card["classes"] == ["basophil", "eosinophil", "ig"] and card["input_shape"] == [32, 32, 3]
    assert set(json.loads((repo / "metrics/evaluate/metrics.json").read_text())) >= {"accuracy", "macro_f1"}
    manifest = (repo / "data/raw/manifest.csv").read_text()
    assert len(manifest.splitlines()) == 121

    assert ran_stages(run(repo, "dvc", "repro").stdout) == []
    write_class_folder(images / "new_class", 3, 1)  # one more image: the download stage is stale
    assert ran_stages(run(repo, "dvc", "repro", "download").stdout) == ["download"]
    assert "new_class/img_000.png" in (repo / "data/raw/manifest.csv").read_text()
    set_params(repo, {"folder.crop": 100})
    assert "download" in run(repo, "dvc", "status").stdout
