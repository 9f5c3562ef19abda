"""Is one revision's model really better than another's? McNemar's exact test on their test outcomes.

The evaluate stage writes every test image's outcome to plots/evaluate/predictions.csv, a git-tracked
output (cache: false), so each commit and each experiment ref holds its own; this module reads two of
them (`git show <rev>:<path>`, or the file in the workspace) and pairs them image by image. Used by
scripts/compare_models.py, scripts/pr_report.py and the cross-lab benchmark, not by any stage.
"""

from __future__ import annotations

import csv
import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from bloodcells.core.paths import PREDICTIONS_FILE

WORKSPACE = "workspace"  # `dvc exp show`'s name for the files on disk
SIGNIFICANCE = 0.05


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float | int]:
    """McNemar's exact test of two models' right/wrong outcomes on the same images.

    Only the discordant images count: `a_only` right for A and wrong for B, `b_only` the reverse.
    Under "equally good" each discordant image is a fair coin, so the two-sided p-value is the
    binomial test of a_only out of a_only + b_only at 1/2 (1.0 when no image is discordant).
    """
    if correct_a.shape != correct_b.shape:
        raise ValueError(f"outcomes of {len(correct_a)} and {len(correct_b)} images: not the same test set")
    a_only = int(np.sum(correct_a & ~correct_b))
    b_only = int(np.sum(~correct_a & correct_b))
    p_value = 1.0 if a_only + b_only == 0 else float(binomtest(a_only, a_only + b_only, 0.5).pvalue)
    return {"images": len(correct_a), "a_only": a_only, "b_only": b_only, "p_value": p_value}


@dataclass(frozen=True)
class Outcomes:
    """One revision's test images: their indices, true class and predicted class (names)."""

    index: np.ndarray
    true: np.ndarray
    predicted: np.ndarray


def parse_predictions(text: str, source: str = str(PREDICTIONS_FILE)) -> Outcomes:
    """The outcomes in a predictions.csv text; ValueError naming `source` when it is not one."""
    rows = list(csv.DictReader(io.StringIO(text)))
    missing = {"index", "true", "predicted"} - set(rows[0] if rows else {})
    if missing:
        raise ValueError(f"{source}: no {', '.join(sorted(missing))} column; not a predictions file")
    return Outcomes(
        index=np.array([int(row["index"]) for row in rows], dtype=np.int64),
        true=np.array([row["true"] for row in rows]),
        predicted=np.array([row["predicted"] for row in rows]),
    )


def predictions_text(rev: str, repo: Path | None = None, path: Path = PREDICTIONS_FILE) -> str | None:
    """The predictions file of a git revision (or of the workspace), None where it has none."""
    root = repo or Path.cwd()
    if rev == WORKSPACE:
        file = root / path
        return file.read_text() if file.is_file() else None
    shown = subprocess.run(
        ["git", "show", f"{rev}:{path.as_posix()}"], cwd=root, capture_output=True, text=True
    )
    return shown.stdout if shown.returncode == 0 else None


def paired_test(a: Outcomes, b: Outcomes) -> dict[str, float | int]:
    """McNemar's exact test of A against B: `a_only` images only A gets right, `b_only` only B.

    Refuses outcomes of different test images (another split, size or dataset): pairing them means nothing.
    """
    if not (np.array_equal(a.index, b.index) and np.array_equal(a.true, b.true)):
        raise ValueError(
            f"the two revisions were tested on different images ({len(a.index)} and {len(b.index)} "
            "images, or other labels): no paired test"
        )
    return mcnemar_exact(a.true == a.predicted, b.true == b.predicted)


def compare_revisions(rev_a: str, rev_b: str, repo: Path | None = None) -> dict[str, float | int] | str:
    """McNemar's test of two revisions' predictions, or one line saying why there is none."""
    texts = {rev: predictions_text(rev, repo) for rev in (rev_a, rev_b)}
    absent = [rev for rev, text in texts.items() if text is None]
    if absent:
        return f"{', '.join(absent)} has no {PREDICTIONS_FILE}"
    try:
        return paired_test(
            parse_predictions(texts[rev_a], f"{rev_a}:{PREDICTIONS_FILE}"),
            parse_predictions(texts[rev_b], f"{rev_b}:{PREDICTIONS_FILE}"),
        )
    except ValueError as error:
        return str(error)


def format_p(p_value: float) -> str:
    """A p-value as a table shows it: three decimals, or <0.001."""
    return "<0.001" if p_value < 0.001 else f"{p_value:.3f}"


def verdict(test: dict[str, float | int], name_a: str, name_b: str) -> str:
    """One sentence on what the test says, for reports."""
    a_only, b_only, p_value = test["a_only"], test["b_only"], test["p_value"]
    counts = (
        f"of {test['images']} test images, {a_only} are right only with {name_a} and {b_only} only "
        f"with {name_b}"
    )
    if p_value < SIGNIFICANCE:
        better = name_a if a_only > b_only else name_b
        return f"{counts}: McNemar's exact p = {format_p(p_value)}, {better} is better beyond chance."
    return (
        f"{counts}: McNemar's exact p = {format_p(p_value)}, the difference could be chance "
        f"(not significant at {SIGNIFICANCE})."
    )
