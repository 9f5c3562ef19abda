"""Fixtures of the quick suite (every test here runs Keras eagerly: see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import eager_keras
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


@pytest.fixture(scope="package", autouse=True)
def quick_keras() -> Iterator[None]:
    """Graph tracing of tiny models was 13 s of the quick suite's 88 s (module fixtures trace too)."""
    with eager_keras():
        yield
