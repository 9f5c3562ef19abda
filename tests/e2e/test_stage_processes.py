"""Every stage script refuses a wrong param in one line before working (five processes, two of them
loading TensorFlow: out of the quick suite, which checks the download stage's lines)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import set_params
from tests.unit.stage_processes import STAGES, run_many, stage_workdir

pytestmark = pytest.mark.slow

# What TensorFlow 2.21 itself prints to stderr on import, whatever TF_CPP_MIN_LOG_LEVEL says.
TENSORFLOW_START_UP = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|I0000 .*\] oneDNN)")


def test_every_stage_refuses_a_wrong_param_before_working(tmp_path):
    """Every stage validates the whole file at start-up, not only the download stage. (The stages that
    import Keras also show TensorFlow's own two start-up lines, which it prints before any of our code.)"""
    jobs = {}
    for stage in STAGES:
        folder = stage_workdir(tmp_path / stage)
        set_params(folder, {"+train.epoch": 3})
        jobs[stage] = (stage, ["--size", "28"] if stage == "preprocess" else [], folder)
    for stage, result in run_many(jobs).items():
        assert result.returncode == 1 and "Traceback" not in result.stderr, (stage, result.stderr)
        ours = [line for line in result.stderr.splitlines() if not TENSORFLOW_START_UP.match(line)]
        assert ours == [f"{stage} failed: params.yaml: train.epoch: unknown key (a typo?)"], result.stderr
