"""Smoke tests of the benchmark scripts: each runs end to end with tiny settings and prints its table.

The figures themselves are never asserted (the machine is small and shared); only that every row is
there with a number in it, and what does not depend on timing: the counted forward FLOPs equal the
analytic count from the layer shapes.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import PROJECT, dvc_env, set_params

pytestmark = pytest.mark.slow


def run_script(module: str, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` from the project root, as the README says to run it."""
    command = [sys.executable, "-m", module, *args]
    result = subprocess.run(command, cwd=PROJECT, env={**dvc_env(), **env}, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{module} exited {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}")
    return result


def table_row(output: str, first_cell: str) -> list[str]:
    """The cells of the Markdown table row that starts with `first_cell`."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row {first_cell!r} in:\n{output}")


def number(cell: str) -> float:
    return float(re.sub(r"[,%x]", "", cell.split()[0]))


def test_throughput_prints_every_input_path():
    output = run_script("scripts.bench_throughput", "--steps", "2", "--warmup", "1", "--rounds", "1").stdout
    for path in ("ours + augmentation", "ours, no augmentation", "ImageDataGenerator"):
        row = table_row(output, path)
        assert number(row[1]) > 0 and number(row[4]) > 0 and number(row[5]) > 0
    assert "vs ImageDataGenerator:" in output and "cost of augmentation" in output
    assert "backend tensorflow" in output


def test_efficiency_counts_flops_and_prints_the_setting():
    args = ("--settings", "default", "--steps", "2", "--warmup", "1", "--matmul-reps", "1")
    output = run_script("scripts.bench_efficiency", *args).stdout
    counted = number(table_row(output, "forward, conv + matmul (counted)")[1])
    analytic = number(table_row(output, "forward, conv + dense (analytic, from layer shapes)")[1])
    assert counted == analytic > 0
    training = number(table_row(output, "training step, conv + matmul (used below)")[1])
    assert 2.5 * counted < training < 3 * counted  # backward ~2x forward, less the first layer's dgrad
    row = table_row(output, "default")
    assert row[1] == "64" and number(row[2]) > 0 and row[5].endswith("%")
    assert "- best per CPU-second: default (batch 64)" in output


def test_pipeline_times_repro_and_status_on_a_reproduced_repo(project_repo):
    output = run_script("scripts.bench_pipeline", "--repo", str(project_repo), "--reps", "1").stdout
    for command in ("`dvc repro`, nothing changed", "`dvc status`, nothing changed"):
        assert number(table_row(output, command)[1]) > 0
    assert f"the checkout at {project_repo}" in output


def test_pipeline_refuses_a_repo_that_is_not_up_to_date(project_repo):
    set_params(project_repo, {"train.epochs": 2})
    result = run_script("scripts.bench_pipeline", "--repo", str(project_repo), "--reps", "1", check=False)
    assert result.returncode == 1 and "is not up to date" in result.stderr


def test_bad_arguments_fail_with_one_line():
    result = run_script("scripts.bench_efficiency", "--settings", "nope", check=False)
    assert result.returncode == 2 and "unknown setting(s) ['nope']" in result.stderr
    result = run_script("scripts.bench_pipeline", "--repo", str(PROJECT / "stages"), check=False)
    assert result.returncode == 2 and "no dvc.yaml there" in result.stderr


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_epoch_timing_runs_the_train_stage_recipe_on_either_backend(backend):
    if backend == "jax":
        pytest.importorskip("jax", reason="JAX is not installed: the JAX epoch timing is not tested")
    args = ["--size", "28", "--epochs", "2", "--images", "200", "--config", "configs/ours.yaml"]
    output = run_script("scripts.bench_epoch", *args, KERAS_BACKEND=backend).stdout
    assert number(table_row(output, "2")[1]) > 0
    assert number(table_row(output, "1 (tracing + compilation)")[2]) > 0
    assert f"backend {backend}" in output and "skip at 28 px, ours recipe" in output
    assert "XLA on" in output if backend == "jax" else "XLA off" in output
    assert "200 images per epoch" in output


def test_epoch_timing_refuses_a_missing_or_bad_configuration(tmp_path):
    result = run_script("scripts.bench_epoch", "--config", "configs/nope.yaml", check=False)
    assert result.returncode == 2 and "no such configuration: configs/nope.yaml" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("train.optimizer: sgd\n")
    result = run_script("scripts.bench_epoch", "--config", str(bad), check=False)
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == f"{bad}: Unknown train.optimizer 'sgd'. Known: adam, adamw"
