"""The real BloodMNIST rebuild in ../shared/data, through real `dvc repro` (skipped when absent)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SHARED_DATA, init_project_repo, ran_stages, run

REAL_MIRROR = SHARED_DATA / "bloodmnist-pbc-rebuild"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_data,
    pytest.mark.skipif(
        not (REAL_MIRROR / "bloodmnist.npz").exists(), reason=f"real data absent: {REAL_MIRROR}"
    ),
]


def test_real_28px_data_downloads_from_the_mirror_and_preprocesses(tmp_path):
    repo = init_project_repo(tmp_path / "repo", REAL_MIRROR, {"preprocess.check_split_sizes": True})
    result = run(repo, "dvc", "repro", "preprocess@28")
    assert ran_stages(result.stdout) == ["download", "preprocess@28"]
    summary = json.loads((repo / "data/preprocessed/28/summary.json").read_text())
    assert summary["totals"] == {"train": 11959, "val": 1712, "test": 3421}
    assert summary["classes"][0] == "basophil" and len(summary["classes"]) == 8
    # The source's known quirks (../shared/data/README.md): 17 identical pairs, 5 straddling
    # train and test, one pair with two labels.
    duplicates = summary["duplicates"]
    assert duplicates["pairs"] == 17
    assert duplicates["train_test_groups"] == 5
    assert duplicates["conflicting_label_groups"] == 1
