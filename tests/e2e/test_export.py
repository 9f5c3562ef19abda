"""The export stage in a real pipeline: the inference model loads in a process without the project,
and every deployment format agrees with the pipeline's model on the test split. The model exported is
a two-member ensemble (`train.ensemble=2`), the hardest to convert: nested models and their mean."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from bloodcells.inference.export import KERAS_NAME, ONNX_NAME, SAVED_MODEL_NAME, TFLITE_NAME
from bloodcells.inference.export_check import PROBABILITY_TOLERANCE, check_formats
from bloodcells.model.load import load_model
from tests.conftest import dvc_env, ran_stages, run, set_params

pytestmark = pytest.mark.slow  # real dvc pipelines on temporary repos

# Runs with `python -I` (no cwd, PYTHONPATH or user site on sys.path) from an empty folder, and any
# import of the project fails: the file must load with plain Keras alone.
PLAIN_KERAS = textwrap.dedent("""
    import importlib.abc, sys

    class NoProject(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("bloodcells", "stages", "tests"):
                raise ImportError(f"the project was imported: {name}")
            return None

    sys.meta_path.insert(0, NoProject())
    import keras, numpy as np
    model = keras.saving.load_model(sys.argv[1])
    np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))

    def names(layer):  # the ensemble's members are models: their layers too
        yield layer.name
        for inner in getattr(layer, "layers", []):
            yield from names(inner)

    print("\\n".join(names(model)))
""")


class Exported(NamedTuple):
    repo: Path
    output: str  # what its `dvc repro` printed


@pytest.fixture(scope="module")
def exported(tmp_path_factory, reproduced_repo) -> Exported:
    """The reproduced repo retrained as a two-member ensemble, with every deployment format exported
    (the tiny test params export none)."""
    repo = tmp_path_factory.mktemp("exported") / "repo"
    shutil.copytree(reproduced_repo, repo, symlinks=True)
    set_params(repo, {"train.ensemble": 2, "export.formats": ["saved_model", "tflite", "onnx"]})
    return Exported(repo, run(repo, "dvc", "repro").stdout)


@pytest.fixture(scope="module")
def exported_repo(exported) -> Path:
    return exported.repo


def pipeline_probabilities(repo):
    model = load_model(repo / "models" / "model.keras")
    images = np.load(repo / "data" / "preprocessed" / "28" / "test_images.npy")
    return images, model.predict(images, verbose=0)


def test_export_stage_writes_every_format_and_the_card(exported_repo):
    folder = exported_repo / "models" / "export"
    for name in (KERAS_NAME, TFLITE_NAME, ONNX_NAME, "model.json", "README.md"):
        assert (folder / name).is_file(), name
    assert (folder / SAVED_MODEL_NAME / "saved_model.pb").is_file()
    card = json.loads((folder / "model.json").read_text())
    train_card = json.loads((exported_repo / "models" / "model.json").read_text())
    metrics = json.loads((exported_repo / "metrics" / "evaluate" / "metrics.json").read_text())
    assert card["classes"] == train_card["classes"] and len(card["classes"]) == 8
    assert card["decoding"] == {"crop": 200, "resize_filter": "bicubic"}
    assert card["test_metrics"] == metrics
    assert "200 x 200" in card["preprocessing"] and "bicubic" in card["preprocessing"]
    assert "Not a medical device" in card["intended_use"] and "BloodMNIST" in card["data_description"]
    readme = (folder / "README.md").read_text()
    assert f"| accuracy | {metrics['accuracy']:.4f} |" in readme and "Intended use" in readme


def test_inference_model_loads_with_plain_keras_in_a_fresh_process(exported_repo, tmp_path):
    images, expected = pipeline_probabilities(exported_repo)
    np.save(tmp_path / "images.npy", images)
    script = tmp_path / "plain_keras.py"
    script.write_text(PLAIN_KERAS)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-I", str(script), str(exported_repo / "models" / "export" / KERAS_NAME),
         str(tmp_path / "images.npy"), str(tmp_path / "probs.npy")],
        cwd=empty, env=dvc_env(), capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    layers = result.stdout.split()
    assert "rescale" in layers and not [name for name in layers if name.startswith("augment_")]
    probs = np.load(tmp_path / "probs.npy")
    assert (probs.argmax(1) == expected.argmax(1)).all()
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_every_format_agrees_with_the_pipeline_model(exported_repo):
    images, expected = pipeline_probabilities(exported_repo)
    checks = check_formats(exported_repo / "models" / "export", expected, images, latency_images=5)
    assert {c.name for c in checks} == {"keras (inference)", "savedmodel", "tflite", "onnx"}
    for check in checks:
        assert check.argmax_agree == len(images), check
        assert check.max_abs_diff <= PROBABILITY_TOLERANCE, check
        assert check.size_mb > 0 and check.ms_per_image > 0


def test_an_ensemble_runs_through_train_evaluate_and_export(exported):
    """`train.ensemble=2`: one model averaging two seeds, each member judged alone, exported whole."""
    assert ran_stages(exported.output) == ["train", "evaluate", "export"], exported.output
    assert "skip (seed 42)" in exported.output and "skip (seed 43)" in exported.output
    report = json.loads((exported.repo / "metrics/evaluate/report.json").read_text())
    assert [(m["member"], m["seed"]) for m in report["members"]] == [("member0", 42), ("member1", 43)]
