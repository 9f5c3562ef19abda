"""Smoke tests of `python -m scripts.bench`: every benchmark runs end to end on tiny inputs (`--smoke`,
and the smallest registered model, small_cnn, where a model trains).

The figures themselves are never asserted (the machine is small and shared); only that every row is
there with a number in it, and what does not depend on timing: the counted forward FLOPs equal the
analytic count from the layer shapes, the preprocess stage ran and wrote its arrays. Benchmarks
that run Keras run in this process (one TensorFlow start-up for all); those that need a process of
their own (another backend, peak memory) start it themselves.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.bench.__main__ import main as bench
from scripts.bench.pipeline import new_repo

PROJECT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def output_of(capsys, *argv: str) -> str:
    """What `python -m scripts.bench <argv>` prints, run in this process."""
    bench(list(argv))
    return capsys.readouterr().out


def failure_of(capsys, *argv: str) -> tuple[int | str, str]:
    """The exit status (or one-line message) and the output of a benchmark that exits early."""
    with pytest.raises(SystemExit) as exit_info:
        bench(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out + captured.err


def table_row(output: str, first_cell: str) -> list[str]:
    """The cells of the Markdown table row that starts with `first_cell`."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row {first_cell!r} in:\n{output}")


def number(cell: str) -> float:
    return float(re.sub(r"[,%x~s]", "", cell.split()[0]))


def test_one_command_lists_every_benchmark(capsys):
    code, out = failure_of(capsys, "--help")
    assert code == 0
    for name in ("accuracy", "time-to-accuracy", "epoch", "throughput", "efficiency", "folder", "pipeline"):
        assert f"python -m scripts.bench {name}" in out
    assert "preprocess-memory" in out
    code, err = failure_of(capsys, "nope")
    assert code == 2 and "invalid choice: 'nope'" in err


def test_throughput_prints_every_input_path(capsys):
    output = output_of(capsys, "throughput", "--smoke", "--model", "small_cnn")
    for path in ("ours + augmentation", "ours, no augmentation", "ImageDataGenerator"):
        row = table_row(output, path)
        assert number(row[1]) > 0 and number(row[4]) > 0 and number(row[5]) > 0
    assert "vs ImageDataGenerator:" in output and "cost of augmentation" in output


def test_efficiency_counts_flops_and_times_a_setting_in_its_own_process(capsys):
    output = output_of(capsys, "efficiency", "--smoke", "--model", "small_cnn")
    counted = number(table_row(output, "forward, conv + matmul (counted)")[1])
    analytic = number(table_row(output, "forward, conv + dense (analytic, from layer shapes)")[1])
    assert counted == analytic > 0
    training = number(table_row(output, "training step, conv + matmul (used below)")[1])
    # backward ~2x forward, less the first layer's input gradient (pruned), plus TensorFlow counting a
    # "valid" convolution's input gradient over the larger input
    assert 2.5 * counted < training < 3.5 * counted
    row = table_row(output, "default")
    assert number(row[1]) > 0 and row[4].endswith("%")
    code, err = failure_of(capsys, "efficiency", "--settings", "nope")
    assert code == 2 and "unknown setting(s) ['nope']" in err


def test_epoch_timing_runs_the_recipe_of_a_configuration(capsys):
    output = output_of(capsys, "epoch", "--smoke", "--config", "configs/ours.yaml", "-S", "model=small_cnn")
    assert number(table_row(output, "2")[1]) > 0
    assert number(table_row(output, "1 (tracing + compilation)")[2]) > 0
    assert "small_cnn at 28 px, ours recipe" in output and "128 images per epoch" in output


def test_epoch_timing_runs_under_jax():
    pytest.importorskip("jax", reason="JAX is not installed: the JAX epoch timing is not tested")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "scripts.bench", "epoch", "--smoke", "-S", "model=small_cnn"]
    done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "backend jax" in done.stdout and "XLA on" in done.stdout


def test_epoch_timing_refuses_a_missing_or_bad_configuration(capsys, tmp_path):
    code, _ = failure_of(capsys, "epoch", "--config", "configs/nope.yaml")
    assert code == "no such configuration: configs/nope.yaml (see configs/)"
    bad = tmp_path / "bad.yaml"
    bad.write_text("train.optimizer: sgd\n")
    code, _ = failure_of(capsys, "epoch", "--smoke", "--config", str(bad))
    assert str(code).startswith(f"{bad}: train.optimizer: Input should be 'adam' or 'adamw'")


def test_accuracy_refuses_a_bad_override_before_running_anything(capsys):
    code, _ = failure_of(capsys, "accuracy", "configs/ours.yaml", "-S", "train.epochs=abc")
    assert "train.epochs" in str(code) and "\n" not in str(code)


def test_time_to_accuracy_trains_several_a_recipes_and_the_b_recipe_interleaved(capsys):
    """Two A recipes (params.yaml and a configuration) against the B recipe, one epoch of each in turn."""
    budget = str(PROJECT / "configs/budget_3_epochs.yaml")
    output = output_of(
        capsys, "time-to-accuracy", "--smoke", "--target", "0.01", "-S", "model=small_cnn",
        "--a", "params.yaml", "--a", budget,
    )  # fmt: skip
    row = table_row(output, "1")
    assert len(row) == 7  # the epoch, then accuracy and time for each of 3 recipes
    for accuracy, seconds in zip(row[1::2], row[2::2], strict=True):
        assert 0 <= number(accuracy) <= 1 and number(seconds) > 0
    assert "- ours (params.yaml): " in output and "- budget_3_epochs: " in output
    assert "- report_skip: " in output and "(epoch 1)" in output
    assert "- ratio report_skip / ours (params.yaml): " in output
    assert "- ratio report_skip / budget_3_epochs: " in output
    first = [output.index(f"epoch 1 {name}") for name in ("ours", "budget_3_epochs", "report_skip")]
    assert first == sorted(first)  # one epoch of each in turn
    assert "epoch 2 " not in output or max(first) < output.index("epoch 2 ")
    report = str(PROJECT / "configs/report_skip.yaml")
    code, _ = failure_of(capsys, "time-to-accuracy", "--smoke", "--a", report)
    assert code == "recipe report_skip is given twice; give different --a/--b"


def test_folder_decoding_prints_rates_memory_and_pixel_shift(capsys):
    output = output_of(capsys, "folder", "--smoke")
    row = table_row(output, "synthetic 360x363 (16 files)")
    assert number(row[3]) > 0 and number(row[5]) > 0
    assert number(table_row(output, "synthetic 1200x1200 (1 file), crop null")[5]) > 0


def test_pipeline_times_repro_and_status_and_refuses_a_stale_repo(capsys, tmp_path):
    output = output_of(capsys, "pipeline", "--smoke", "--reps", "1")
    for command in ("`dvc repro`, nothing changed", "`dvc status`, nothing changed"):
        assert number(table_row(output, command)[1]) > 0
    stale = new_repo(tmp_path / "repo", real=False)  # never reproduced
    code, _ = failure_of(capsys, "pipeline", "--repo", str(stale), "--reps", "1")
    assert "is not up to date" in str(code)
    code, err = failure_of(capsys, "pipeline", "--repo", str(PROJECT / "stages"))
    assert code == 2 and "no dvc.yaml there" in err


def test_preprocess_memory_runs_the_stage_and_prints_its_peak(capsys):
    output = output_of(capsys, "preprocess-memory", "--smoke", "--sizes", "28", "64")
    for size in (28, 64):
        row = table_row(output, f"{size} px")
        assert number(row[2]) >= 0 and number(row[3]) > 0 and number(row[4]) > 0
