"""scripts/compare_models.py's table from `dvc exp show --json` rows (the real queue: tests/e2e)."""

from __future__ import annotations

from scripts.compare_models import comparison, markdown_table


def exp_show_row(rev: str, name: str | None, model: str, accuracy: float | None) -> dict:
    """One row shaped like `dvc exp show --json` output."""
    metrics = {} if accuracy is None else {"metrics/evaluate/metrics.json": {"data": {"accuracy": accuracy}}}
    return {
        "rev": rev,
        "name": name,
        "data": {"params": {"params.yaml": {"data": {"model": model}}}, "metrics": metrics},
    }


def test_the_table_has_one_row_per_distinct_run_best_first_and_skips_runs_without_metrics():
    workspace = exp_show_row("workspace", None, "skip", 0.9)
    head = exp_show_row("a" * 40, "main", "skip", 0.9)  # the same run as the workspace
    head["experiments"] = [
        {"revs": [exp_show_row("b" * 40, "exp-good", "baseline", 0.95)]},
        {"revs": [exp_show_row("c" * 40, None, "inception", None)]},  # failed: no metrics
    ]
    rows = comparison([workspace, head])
    assert [(r["experiment"], r["model"]) for r in rows] == [("exp-good", "baseline"), ("main", "skip")]
    table = markdown_table(rows).splitlines()
    assert table[0].startswith("| experiment | model | params (M) | size (MB) | memory (MB) | accuracy |")
    assert table[2].startswith("| exp-good | baseline |") and "| 0.9500 |" in table[2]
    assert "|  |" in table[2]  # metrics a run lacks are empty cells, not zeros
