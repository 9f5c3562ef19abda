"""`bloodcells validate` on real DVC-built projects; the preprocess and folder summaries' near-duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import SHARED_DATA, init_project_repo, run, set_params
from tests.synthetic import synthetic_split

pytestmark = pytest.mark.slow
PBC_SAMPLE = SHARED_DATA / "pbc-sample"
VALIDATE = ("python", "-m", "bloodcells.cli", "validate")


def write_labelled_folder(root: Path, names: dict[int, str], per_class: int = 12) -> None:
    """Synthetic images of the test mirror's classes (label -> this lab's folder name), as PNG files."""
    images, labels = synthetic_split(8 * per_class, 28, np.random.default_rng(7))
    for label, name in names.items():
        folder = root / name
        folder.mkdir(parents=True)
        for k, image in enumerate(images[labels[:, 0] == label]):
            Image.fromarray(image).save(folder / f"{name}_{k:03d}.png")


def restricted_accuracy(repo: Path, external: Path, mapping: dict[str, str], classes: list[str]) -> float:
    """The model's accuracy on the mapped folders, its top class chosen among the mapped classes only."""
    import keras

    import bloodcells.architectures  # noqa: F401  (the custom layers)
    from bloodcells.model.tta import predict_probabilities

    model = keras.saving.load_model(repo / "models/model.keras")
    columns = sorted(classes.index(name) for name in mapping.values())
    correct = []
    for folder, name in mapping.items():
        images = np.stack([np.asarray(Image.open(p)) for p in sorted((external / folder).iterdir())])
        scores = predict_probabilities(model, images, 256, views=8)[:, columns]
        correct += (np.array(columns)[scores.argmax(axis=1)] == classes.index(name)).tolist()
    return float(np.mean(correct))


def test_validate_scores_the_mapped_classes_only_with_the_evaluate_outputs(project_repo, tmp_path):
    repo = project_repo
    card = json.loads((repo / "models/model.json").read_text())
    classes = card["classes"]
    assert card["stain_normalization"] == {"method": "none"}
    summary = json.loads((repo / "data/preprocessed/28/summary.json").read_text())
    assert (
        summary["near_duplicates"]["max_distance"] == 2 and "train_test_pairs" in summary["near_duplicates"]
    )

    external = tmp_path / "other-lab"
    write_labelled_folder(external, {0: "BASO", 1: "EOS", 4: "LYMPHO", 6: "NEUTRO", 7: "unmapped"})
    mapping = {"BASO": classes[0], "EOS": classes[1], "LYMPHO": classes[4], "NEUTRO": classes[6]}
    set_params(repo, {"external.path": str(external), "external.classes": mapping})
    result = run(repo, *VALIDATE)
    assert "48 images of 4 mapped classes" in result.stdout

    metrics = json.loads((repo / "metrics/external/metrics.json").read_text())["external"]
    report = json.loads((repo / "metrics/external/report.json").read_text())
    assert metrics["images"] == 48 and report["classes"] == [classes[i] for i in (0, 1, 4, 6)]
    assert report["left_out_classes"] == ["unmapped"] and report["mapping"] == mapping
    assert metrics["accuracy"] == pytest.approx(restricted_accuracy(repo, external, mapping, classes))
    assert 0 <= metrics["outside_mapped_classes"] <= 1
    per_class = json.loads((repo / "metrics/external/per_class.json").read_text())
    assert [row["class"] for row in per_class] == report["classes"] and sum(
        r["support"] for r in per_class
    ) == 48
    for name in ("confusion.csv", "roc.csv", "per_class.csv", "images/confusion.png", "images/roc_pr.png"):
        assert (repo / "plots/external" / name).stat().st_size > 0
    assert len((repo / "plots/external/confusion.csv").read_text().splitlines()) == 49


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"external.path": None}, "external.path is not set"),
        ({"external.classes": {"BASO": "no such class"}}, "not classes of the model"),
        ({"external.classes": {"NOT_THERE": "basophil"}}, "names folder(s) ['NOT_THERE']"),
    ],
)
def test_a_wrong_external_setting_is_one_line_and_writes_nothing(project_repo, tmp_path, overrides, message):
    external = tmp_path / "other-lab"
    write_labelled_folder(external, {0: "BASO"}, per_class=3)
    set_params(project_repo, {"external.path": str(external), **overrides})
    result = run(project_repo, *VALIDATE, check=False)
    assert result.returncode == 1 and message in result.stderr
    last = result.stderr.strip().splitlines()[-1]  # after TensorFlow's start-up lines
    assert "Traceback" not in result.stderr and last.startswith("bloodcells validate: ") and message in last
    assert not (project_repo / "metrics/external").exists()


@pytest.mark.skipif(not PBC_SAMPLE.exists(), reason=f"needs the PBC sample at {PBC_SAMPLE}")
def test_pbc_sample_built_by_the_folder_route_validates_against_itself(tmp_path, synthetic_mirror):
    overrides = {
        "data.source": "folder",
        "data.path": str(PBC_SAMPLE),
        "data.dataset": "pbc",
        "data.sizes": [28],
    }
    repo = init_project_repo(tmp_path / "repo", synthetic_mirror, overrides)
    run(repo, "dvc", "repro")
    folder_summary = json.loads((repo / "data/raw/folder_summary.json").read_text())
    assert folder_summary["near_duplicates"]["max_distance"] == 6
    assert folder_summary["split_groups"]["straddling_splits"] == 0
    result = run(repo, *VALIDATE, "--path", str(PBC_SAMPLE))
    report = json.loads((repo / "metrics/external/report.json").read_text())
    used = folder_summary["files"]["used"]
    assert report["images"] == used and len(report["classes"]) == 8 and report["left_out_classes"] == []
    assert report["mapping"] == {name: name for name in report["classes"]}
    assert f"{used} images of 8 mapped classes" in result.stdout
