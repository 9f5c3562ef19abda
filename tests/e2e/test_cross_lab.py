"""Another lab's slides: `validate --classes/--adapt`, `predict --adapt`, and a model trained with the
cell-centred crop and Macenko normalisation seeing new images as its training arrays were made
(`predict`, `validate` and `serve` replay preprocess's transforms: MedMNIST arrays exactly, image
files decoded at bloodcells.data.prepare's finer side and cut from there)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import PROJECT, SHARED_DATA, init_project_repo, run
from tests.e2e.test_external_validation import write_labelled_folder

pytestmark = pytest.mark.slow
VALIDATE = ("python", "-m", "bloodcells.cli", "validate")
CROP_AND_STAIN = {"preprocess.cell_crop": 0.65, "preprocess.stain_normalization": "macenko"}


def bloodcells(*args: str):
    return run(PROJECT, sys.executable, "-m", "bloodcells.cli", *args, check=False)


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


def csv_probabilities(path: Path, classes: list[str]) -> np.ndarray:
    with path.open() as f:
        return np.array([[float(row[c]) for c in classes] for row in csv.DictReader(f)])


def digest(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def crop_stain_repo(tmp_path_factory, synthetic_mirror) -> Path:
    """A repo whose model was trained on cell-cropped, Macenko-normalised arrays (built once)."""
    repo = init_project_repo(tmp_path_factory.mktemp("crop_stain") / "repo", synthetic_mirror, CROP_AND_STAIN)
    run(repo, "dvc", "repro", "train")
    return repo


def raw_and_prepared_test_images(repo: Path, mirror: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(mirror / "bloodmnist.npz") as npz:
        raw, labels = npz["test_images"], npz["test_labels"].reshape(-1)
    prepared = np.load(repo / "data/preprocessed/28/test_images.npy")
    return raw, prepared, labels


def files_prepared(raw: np.ndarray, card: dict) -> np.ndarray:
    """What the card's transforms make of `raw` saved as image files: each decoded at the finer side
    (the whole 28 px square, enlarged bicubic), then cut around its cell to 28 px and normalised."""
    from bloodcells.data.prepare import decode_side, prepare

    side = decode_side(card, 28)
    fine = np.stack([np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC))
                     for image in raw])
    return prepare(fine, card, 28)[0]


def test_the_card_records_the_transforms_and_preprocess_applied_them(crop_stain_repo, synthetic_mirror):
    card = json.loads((crop_stain_repo / "models/model.json").read_text())
    assert card["cell_crop"]["fill"] == 0.65 and card["stain_normalization"]["method"] == "macenko"
    summary = json.loads((crop_stain_repo / "data/preprocessed/28/summary.json").read_text())
    outcomes = summary["cell_crop"]["outcomes"]["test"]
    raw, prepared, _ = raw_and_prepared_test_images(crop_stain_repo, synthetic_mirror)
    assert sum(outcomes.values()) == len(raw) == len(prepared)
    assert (raw != prepared).any()  # the transforms did something, so the tests below can tell


def test_predict_replays_the_training_transforms(crop_stain_repo, synthetic_mirror, tmp_path):
    from bloodcells.inference.predictor import Predictor
    from bloodcells.model.temperature import apply_temperature

    out = tmp_path / "npz.csv"
    result = bloodcells("predict", str(crop_stain_repo / "models"), str(synthetic_mirror / "bloodmnist.npz"),
                        "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    predictor = Predictor(crop_stain_repo / "models")
    with out.open() as f:
        rows = list(csv.DictReader(f))
    test_rows = [row for row in rows if ":test[" in row["path"]]
    _, prepared, _ = raw_and_prepared_test_images(crop_stain_repo, synthetic_mirror)
    expected = apply_temperature(predictor.model.predict(prepared, verbose=0), predictor.temperature)
    probs = np.array([[float(row[c]) for c in predictor.classes] for row in test_rows])
    np.testing.assert_allclose(probs, expected, atol=2e-6)


def test_validate_replays_the_training_transforms(crop_stain_repo, synthetic_mirror, tmp_path):
    from bloodcells.inference.predictor import Predictor

    raw, _, labels = raw_and_prepared_test_images(crop_stain_repo, synthetic_mirror)
    predictor = Predictor(crop_stain_repo / "models")
    prepared = files_prepared(raw, predictor.card)
    external = tmp_path / "other-lab"
    for k, (image, label) in enumerate(zip(raw, labels, strict=True)):
        folder = external / predictor.classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{k:04d}.png")  # lossless: the same pixels as the npz
    result = run(crop_stain_repo, *VALIDATE, "--path", str(external))
    assert f"{len(raw)} images of" in result.stdout
    report = json.loads((crop_stain_repo / "metrics/external/report.json").read_text())
    columns = [predictor.classes.index(name) for name in report["classes"]]
    scores = predictor.probabilities(prepared, tta=report["views"])[:, columns]
    predicted = np.array(columns)[scores.argmax(axis=1)]
    expected = np.zeros((len(columns), len(columns)), dtype=int)
    for truth, guess in zip(labels, predicted, strict=True):
        expected[columns.index(truth), columns.index(guess)] += 1
    assert report["confusion"] == expected.tolist()
    assert sum(report["cell_crop_outcomes"].values()) == len(raw)

    # predict on the same files prepares them the same way (the library call `bloodcells predict` makes)
    from bloodcells.inference.batch_predict import predict

    rows = {int(Path(row["path"]).stem): row for row in predict(crop_stain_repo / "models", [str(external)],
                                                                progress=False).rows}
    probs = np.array([[rows[k][c] for c in predictor.classes] for k in range(len(raw))])
    np.testing.assert_allclose(probs, predictor.probabilities(prepared), atol=2e-6)


def test_serve_replays_the_training_transforms(crop_stain_repo, synthetic_mirror):
    from bloodcells.inference.predictor import Predictor
    from bloodcells.inference.server import classify_uploads

    raw, _, _ = raw_and_prepared_test_images(crop_stain_repo, synthetic_mirror)
    predictor = Predictor(crop_stain_repo / "models")
    prepared = files_prepared(raw[:4], predictor.card)
    uploads = []
    for k, image in enumerate(raw[:4]):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        uploads.append((f"cell{k}.png", buffer.getvalue()))
    page = classify_uploads(predictor, uploads)
    widths = [float(w) for w in re.findall(r'class="fill" style="width:([0-9.]+)%"', page)]
    shown = np.array(widths).reshape(4, len(predictor.classes))
    np.testing.assert_allclose(shown, 100 * predictor.probabilities(prepared[:4]), atol=0.051)


def test_validate_takes_the_mapping_from_a_file(project_repo, tmp_path):
    """A mapping file (inline JSON parses alike: tests/unit/test_params.py); unmapped folders left out."""
    classes = json.loads((project_repo / "models/model.json").read_text())["classes"]
    external = tmp_path / "other-lab"
    write_labelled_folder(external, {0: "Baoso", 1: "eosi", 4: "lymp", 7: "mixt"})
    mapping = {"Baoso": classes[0], "eosi": classes[1], "lymp": classes[4]}
    named = tmp_path / "lisc.yaml"
    named.write_text("".join(f"{folder}: {name}\n" for folder, name in mapping.items()))
    from_file = run(project_repo, *VALIDATE, "--path", str(external), "--classes", str(named))
    assert "36 images of 3 mapped classes" in from_file.stdout
    report = json.loads((project_repo / "metrics/external/report.json").read_text())
    assert report["mapping"] == mapping and report["left_out_classes"] == ["mixt"]
    assert len(report["intervals_95"]["accuracy"]) == 2 and report["adapted"] is False


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ('{"eosi": ', "--classes: neither a file nor a JSON/YAML mapping"),
        ("[1, 2]", "--classes: expected a mapping of folder name to model class"),
        ('{"eosi": "no such class"}', "not classes of the model"),
    ],
)
def test_a_wrong_mapping_is_one_line_and_writes_nothing(project_repo, tmp_path, classes, message):
    external = tmp_path / "other-lab"
    write_labelled_folder(external, {1: "eosi"}, per_class=3)
    result = run(project_repo, *VALIDATE, "--path", str(external), "--classes", classes, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert last_line(result).startswith("bloodcells validate: ") and message in last_line(result)
    assert not (project_repo / "metrics/external").exists()


def test_adapt_is_reported_apart_and_leaves_the_model_file_alone(project_repo, tmp_path):
    classes = json.loads((project_repo / "models/model.json").read_text())["classes"]
    model_file = project_repo / "models/model.keras"
    before = digest(model_file)
    few = tmp_path / "few"
    write_labelled_folder(few, {1: "eosi", 4: "lymp"}, per_class=12)
    two = json.dumps({"eosi": classes[1], "lymp": classes[4]})
    too_few = run(project_repo, *VALIDATE, "--path", str(few), "--classes", two, "--adapt", check=False)
    assert too_few.returncode == 1 and "Traceback" not in too_few.stderr
    assert "--adapt needs 128 images at least, got 24" in last_line(too_few)
    assert not (project_repo / "metrics/external-adapted").exists()

    many = tmp_path / "many"
    write_labelled_folder(many, {1: "eosi", 4: "lymp", 6: "neut", 7: "platelets"}, per_class=40)
    names = {"eosi": 1, "lymp": 4, "neut": 6, "platelets": 7}
    mapping = json.dumps({folder: classes[label] for folder, label in names.items()})
    adapted = run(project_repo, *VALIDATE, "--path", str(many), "--classes", mapping, "--adapt")
    assert "BatchNorm adapted to them" in adapted.stdout and "metrics/external-adapted/" in adapted.stdout
    headline = json.loads((project_repo / "metrics/external-adapted/metrics.json").read_text())
    metrics = headline["external_adapted"]
    assert metrics["adapted"] is True and metrics["images"] == 160
    assert (project_repo / "plots/external-adapted/images/confusion.png").stat().st_size > 0
    assert not (project_repo / "metrics/external").exists()  # the plain figures are never overwritten
    assert digest(model_file) == before

    plain_csv, adapted_csv = tmp_path / "plain.csv", tmp_path / "adapted.csv"
    models = str(project_repo / "models")
    assert bloodcells("predict", models, str(many), "-o", str(plain_csv), "-q").returncode == 0
    result = bloodcells("predict", models, str(many), "-o", str(adapted_csv), "-q", "--adapt")
    assert result.returncode == 0, result.stderr
    plain, moved = csv_probabilities(plain_csv, classes), csv_probabilities(adapted_csv, classes)
    assert plain.shape == moved.shape == (160, len(classes))
    assert np.abs(plain - moved).max() > 1e-4  # the statistics really were re-estimated
    assert digest(model_file) == before


LISC_DIR = SHARED_DATA / "lisc-external"


@pytest.mark.skipif(not LISC_DIR.is_dir(), reason=f"needs ../shared/data (the PBC rebuild and {LISC_DIR})")
def test_the_cross_lab_benchmark_scores_each_variant_on_lisc(capsys, tmp_path):
    from scripts.bench.__main__ import main as bench

    with pytest.raises(SystemExit):
        bench(["cross-lab", "--variants", "no_such_lever"])
    assert "unknown variant(s) ['no_such_lever']" in capsys.readouterr().err
    out = tmp_path / "results.json"
    bench(["cross-lab", "--epochs", "1", "--variants", "cell_crop+macenko+stain_augment", "--out", str(out)])
    printed = capsys.readouterr().out
    (result,) = json.loads(out.read_text())
    assert result["lisc"]["images"] == 1287 and result["lisc"]["classes"] == [
        "basophil", "eosinophil", "lymphocyte", "monocyte", "neutrophil"
    ]
    for scored in (result["lisc"], result["lisc_adapted"]):
        low, high = scored["intervals_95"]["accuracy"]
        assert low <= scored["accuracy"] <= high and np.sum(scored["confusion"]) == 1287
    assert sum(result["cell_crop_outcomes"].values()) == 1287
    assert "| cell_crop+macenko+stain_augment | 28 px |" in printed and "0/0, p=1" in printed
