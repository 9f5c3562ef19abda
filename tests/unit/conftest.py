"""Fixtures of the quick suite.

Keras's train and predict functions run eagerly here: the same ops on the same kernels, without
the seconds of graph tracing each tiny model would cost (a quarter of the suite's time). The
compiled path is what tests/e2e runs, through the real stages.
"""

from __future__ import annotations

import pytest
import tensorflow as tf

from tests.unit.stage_processes import STAGES, Finished, run_many, stage_workdir


@pytest.fixture(scope="session")
def stage_help(tmp_path_factory) -> tuple[dict[str, Finished], dict]:
    """`python -m stages.<name> --help` of every stage, run once per session in an empty project folder:
    ({stage: result with the modules it loaded}, {stage: files in its folder afterwards})."""
    root = tmp_path_factory.mktemp("help")
    folders = {stage: stage_workdir(root / stage) for stage in STAGES}
    results = run_many(
        {stage: (stage, ["--help"], folders[stage], root / f"{stage}.modules.json") for stage in STAGES}
    )
    left = {stage: sorted(p.name for p in folder.iterdir()) for stage, folder in folders.items()}
    return results, left


tf.config.run_functions_eagerly(True)
