"""The five stage scripts as a user meets them: `--help`, and one line for every wrong param.

Each runs as a real process (`python -m stages.<name>`) in a folder holding only the project's
dvc.yaml and params.yaml, several at once to share the start-up cost.
"""

from __future__ import annotations

import pytest

from tests.conftest import set_params
from tests.unit.stage_processes import STAGES, run_many, stage_workdir


@pytest.mark.parametrize("stage", STAGES)
def test_help_prints_usage_and_exits_without_running(stage, stage_help):
    results, left = stage_help
    result = results[stage]
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ")
    assert f"{stage.replace('_', '-')} stage" in result.stdout.lower().replace("_", "-")  # the docstring
    assert left[stage] == ["dvc.yaml", "params.yaml"], "--help wrote outputs: it ran the stage"


# (override, the start of the one line after "<stage> failed: params.yaml: ").
BAD_PARAMS = {
    "epochs-not-a-number": ({"train.epochs": "abc"}, "train.epochs: Input should be a valid integer"),
    "seed-not-a-number": ({"seed": "abc"}, "seed: Input should be a valid integer"),
    "tta-views-not-a-number": ({"evaluate.tta_views": "abc"}, "evaluate.tta_views: Input should be a valid"),
    "typo-in-train": ({"+train.epoch": 3}, "train.epoch: unknown key (a typo?)"),
    "typo-in-evaluate": ({"+evaluate.tta_view": 8}, "evaluate.tta_view: unknown key (a typo?)"),
    "typo-in-preprocess": (
        {"+preprocess.check_sizes": True},
        "preprocess.check_sizes: unknown key (a typo?)",
    ),
    "train-size-not-prepared": (
        {"train.size": 64, "data.sizes": [28]},
        "train.size 64 is not one of data.sizes",
    ),
    "no-sizes": ({"data.sizes": []}, "data.sizes: List should have at least 1 item"),
}


@pytest.fixture(scope="module")
def bad_param_runs(tmp_path_factory):
    """The download stage (the cheapest to start) run once per bad param."""
    jobs = {}
    for name, (override, _) in BAD_PARAMS.items():
        folder = stage_workdir(tmp_path_factory.mktemp(name))
        set_params(folder, override)
        jobs[name] = ("download", [], folder)
    return run_many(jobs)


@pytest.mark.parametrize("case", BAD_PARAMS)
def test_a_wrong_param_gives_one_line_naming_the_key(case, bad_param_runs):
    result = bad_param_runs[case]
    expected = BAD_PARAMS[case][1]
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"download failed: params.yaml: {expected}"), result.stderr
