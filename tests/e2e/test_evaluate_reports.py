"""The evaluate stage's outputs after a real `dvc repro`, and `dvc plots show`/`diff` rendered offline;
its refusals and faults (nothing half-written), unloadable models, absent classes and CJK class names.

The rendering checks load the page in headless Chromium (Debian package `chromium`); they skip,
saying so, where no Chromium-family browser is installed.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from bloodcells.evaluation.report import HEADLINE as HEADLINE_KEYS
from tests.chromium import find_chromium, render, scan
from tests.conftest import PROJECT, run, set_params
from tests.stage_failures import one_line_failure, refuse_constant

pytestmark = pytest.mark.slow

HEADLINE = {"accuracy", "balanced_accuracy", "auc", "log_loss", "top2_accuracy", "ece"}
HEADLINE |= {f"{avg}_{m}" for avg in ("macro", "weighted") for m in ("precision", "recall", "f1")}
COST = {"parameters", "model_size_mb", "epochs_run", "train_seconds", "train_peak_memory_mb"}
COST |= {"test_images", "test_seconds", "test_ms_per_image", "eval_peak_memory_mb"}
IMAGES = {"confusion", "roc_pr", "calibration", "training", "samples", "mistakes", "gradcam", "risk_coverage"}
# dvc.yaml's plots drawn by vega: every entry but the folder of PNG images
PLOTS = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["plots"]
VEGA_PLOTS = [plot for plot in PLOTS if not isinstance(plot, str)]
EVALUATE = [sys.executable, "-m", "stages.evaluate"]
EVAL_OUTPUTS = ("metrics/evaluate", "plots/evaluate")
VEGA_DIV = re.compile(r'<div id = "([^"]+)">\s*<script')


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_evaluate_writes_every_metric_curve_and_image(reproduced_repo):
    repo = reproduced_repo
    headline = json.loads((repo / "metrics/evaluate/metrics.json").read_text())
    metrics = json.loads((repo / "metrics/evaluate/report.json").read_text())
    assert set(headline) == set(HEADLINE_KEYS)  # what `dvc exp show` shows: a few columns
    assert headline == {key: metrics[key] for key in HEADLINE_KEYS}
    assert set(metrics) >= HEADLINE | COST
    assert metrics["test_images"] == 48 and metrics["epochs_run"] == 1
    assert metrics["parameters"] == 308008  # the residual CNN of the report
    assert metrics["test_seconds"] > 0 and metrics["eval_peak_memory_mb"] > 100
    card = json.loads((repo / "models/model.json").read_text())
    assert card["peak_memory_mb"] == metrics["train_peak_memory_mb"] > 100
    assert json.loads((repo / "metrics/train/metrics.json").read_text())["peak_memory_mb"] > 100
    assert metrics["model_size_mb"] == pytest.approx(
        (repo / "models/model.keras").stat().st_size / 1e6, abs=1e-3
    )

    per_class = json.loads((repo / "metrics/evaluate/per_class.json").read_text())
    assert [row["class"] for row in per_class][:2] == ["basophil", "eosinophil"] and len(per_class) == 8
    assert sum(row["support"] for row in per_class) == 48
    assert read_csv(repo / "plots/evaluate/per_class.csv")[0].keys() == per_class[0].keys()
    roc = read_csv(repo / "plots/evaluate/roc.csv")
    assert list(roc[0]) == ["class", "point", "fpr", "tpr"] and len({r["class"] for r in roc}) == 8
    assert list(read_csv(repo / "plots/evaluate/pr.csv")[0]) == ["class", "point", "recall", "precision"]
    bins = read_csv(repo / "plots/evaluate/calibration.csv")
    assert sum(int(b["count"]) for b in bins) == 48
    images = repo / "plots/evaluate/images"
    assert {p.stem for p in images.glob("*.png")} == IMAGES
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in images.glob("*.png"))


def committed_images(repo: Path, *revisions: str) -> int:
    """How many report PNGs the revisions hold (plots/evaluate is committed to git: `cache: false`)."""
    listed = [
        run(repo, "git", "ls-tree", "-r", "--name-only", rev, "plots/evaluate/images").stdout
        for rev in revisions
    ]
    return sum(len([line for line in text.splitlines() if line.endswith(".png")]) for text in listed)


def assert_rendered(page: Path, expected_images: int) -> None:
    """Every vega plot on `page` drew an SVG, with rects for the confusion matrix and lines for curves."""
    browser = find_chromium()
    if browser is None:
        pytest.skip("Chromium absent (Debian: apt-get install chromium): the page was built but not loaded")
    html = page.read_text()
    assert "<script src=" not in html and "cdn.jsdelivr" not in html  # the offline page: libraries inlined
    ids = VEGA_DIV.findall(html)
    assert len(ids) == len(VEGA_PLOTS), ids
    dom, console = render(browser, page)
    plots = scan(dom)
    drawn = {plot_id: plots.marks.get(plot_id, set()) for plot_id in ids}
    assert all("svg" in marks for marks in drawn.values()), drawn
    confusion = next(marks for plot_id, marks in drawn.items() if plot_id.startswith("Confusion"))
    assert "mark-rect" in confusion
    curves = [marks for plot_id, marks in drawn.items() if plot_id.startswith(("ROC", "Precision", "Loss"))]
    assert len(curves) == 3 and all("mark-line" in marks for marks in curves)
    errors = [line for line in console if "error" in line.lower()]
    assert not errors, errors
    assert "error" not in " ".join(plots.text).lower()
    shown = re.findall(r'<img src="(static/[^"]+)"', html)
    assert len(shown) == expected_images
    assert all((page.parent / src).is_file() for src in shown)


def test_plots_show_renders_every_plot_offline(reproduced_repo, tmp_path):
    result = run(reproduced_repo, "dvc", "plots", "show", "-o", str(tmp_path / "show"))
    assert "failed" not in (result.stdout + result.stderr).lower()
    assert_rendered(tmp_path / "show/index.html", expected_images=len(IMAGES))


def test_plots_diff_of_two_commits_renders_both_revisions(two_commit_repo, tmp_path):
    run(two_commit_repo, "dvc", "plots", "diff", "HEAD~1", "HEAD", "-o", str(tmp_path / "diff"))
    page = tmp_path / "diff/index.html"
    assert '"rev": "HEAD~1"' in page.read_text() and '"rev": "HEAD"' in page.read_text()
    assert_rendered(page, expected_images=committed_images(two_commit_repo, "HEAD~1", "HEAD"))


def output_bytes(repo: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(repo)): p.read_bytes()
        for folder in EVAL_OUTPUTS
        for p in sorted((repo / folder).rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("key", "value"),
    [("calibration_bins", 0), ("samples_per_class", 0), ("mistakes", -1)],
)
def test_a_bad_evaluate_param_is_refused_before_any_work(project_repo, key, value):
    before = output_bytes(project_repo)
    assert "metrics/evaluate/metrics.json" in before
    set_params(project_repo, {f"evaluate.{key}": value})
    line = one_line_failure(run(project_repo, *EVALUATE, check=False))
    assert line.startswith(f"evaluate failed: params.yaml: evaluate.{key}: ") and f"(got {value})" in line
    assert output_bytes(project_repo) == before  # refused before anything was touched


def test_a_failure_halfway_through_evaluate_leaves_none_of_its_outputs(project_repo):
    repo = project_repo
    curve = repo / "metrics/train/plots/metrics/train/loss.tsv"
    curve.write_text("step\tloss\n0\tbanana\n")  # read after the tables are written, before the figures
    line = one_line_failure(run(repo, *EVALUATE, check=False))
    assert line.startswith(f"evaluate failed: {curve.relative_to(repo)}: not dvclive's step/loss table"), line
    for folder in EVAL_OUTPUTS:
        assert not (repo / folder).exists(), folder
        assert not (repo / folder).with_name(f".{Path(folder).name}.staging").exists()


def test_a_truncated_model_file_is_named_as_truncated_not_missing(project_repo):
    model = project_repo / "models/model.keras"
    model.write_bytes(model.read_bytes()[:5000])
    line = one_line_failure(run(project_repo, *EVALUATE, check=False))
    assert "models/model.keras: not a complete .keras archive (5000 bytes: truncated?)" in line, line
    assert "File not found" not in line


def test_a_model_holding_code_is_refused_in_one_line(project_repo):
    import keras

    layers = [keras.Input((28, 28, 3)), keras.layers.Lambda(lambda x: x * 1.0),
              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(8, activation="softmax")]  # fmt: skip
    keras.Sequential(layers).save(project_repo / "models/model.keras")
    line = one_line_failure(run(project_repo, *EVALUATE, check=False))
    assert "models/model.keras: refused: the file holds Python code (e.g. a Lambda layer)" in line, line


def test_absent_classes_are_named_and_cjk_class_names_are_drawn_or_noted(project_repo):
    """Items 3 and 12 in one evaluate run: the last class removed from the test split, CJK names."""
    repo = project_repo
    card_path, folder = repo / "models/model.json", repo / "data/preprocessed/28"
    card = json.loads(card_path.read_text())
    card["classes"] = [f"细胞{i}" for i in range(len(card["classes"]))]
    card_path.write_text(json.dumps(card))
    labels = np.load(folder / "test_labels.npy")
    keep = labels != len(card["classes"]) - 1
    np.save(folder / "test_labels.npy", labels[keep])
    np.save(folder / "test_images.npy", np.load(folder / "test_images.npy")[keep])

    result = run(repo, *EVALUATE)
    absent = card["classes"][-1]
    assert f"warning: class(es) ['{absent}'] have no test images" in result.stdout
    assert "missing from font" not in result.stderr  # no name drawn as boxes
    report = json.loads((repo / "metrics/evaluate/report.json").read_text(), parse_constant=refuse_constant)
    assert report["absent_classes"] == [absent]
    per_class = json.loads((repo / "metrics/evaluate/per_class.json").read_text())
    assert [row["class"] for row in per_class] == card["classes"]  # real names in the data files
    assert (repo / "plots/evaluate/images/confusion.png").stat().st_size > 0
