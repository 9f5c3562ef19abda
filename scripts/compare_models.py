"""Compare architectures as DVC experiments: queue one per model, run the queue, tabulate the results.

The table (Markdown) and bar chart (PNG) are rendered from `dvc exp show --json`, so they cover
whatever experiments the repository holds, not only the ones this command queued. Each run is tested
against the best with McNemar's exact test on the same test images (their predictions.csv, read from
the experiment's git ref): a small p says the gap in accuracy is not chance.
Run from the project root:
    python -m scripts.compare_models                         # every registered model, then render
    python -m scripts.compare_models --models baseline skip --jobs 2 -S train.epochs=5
    python -m scripts.compare_models --render-only           # only render the experiments that exist
Writes plots/comparison/model_comparison.md and .png (change with --out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from scripts.paired import compare_revisions, format_p

EVALUATE_METRICS = "metrics/evaluate/metrics.json"
EVALUATE_REPORT = "metrics/evaluate/report.json"  # every figure; git-tracked, so any revision has it
# (column title, metrics key, scale, decimals)
COLUMNS = (
    ("params (M)", "parameters", 1e-6, 3),
    ("size (MB)", "model_size_mb", 1, 2),
    ("memory (MB)", "train_peak_memory_mb", 1, 0),
    ("accuracy", "accuracy", 1, 4),
    ("macro-F1", "macro_f1", 1, 4),
    ("epochs", "epochs_run", 1, 0),
    ("train time (s)", "train_seconds", 1, 1),
    ("test time (s)", "test_seconds", 1, 2),
    ("ms/image", "test_ms_per_image", 1, 3),
)


def dvc(*args: str) -> str:
    """Run a dvc command; exit with its message if it fails."""
    result = subprocess.run(["dvc", *args], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(
            f"compare_models: dvc {' '.join(args)} failed:\n{result.stderr.strip() or result.stdout.strip()}"
        )
    return result.stdout


def queue_experiments(models: list[str], overrides: list[str], known_groups: set[str]) -> None:
    """`dvc exp run --queue` one experiment per model, adding an empty `models.<name>` group if absent."""
    for name in models:
        extra = [] if name in known_groups else ["-S", f"+models.{name}={{}}"]
        sets = [arg for override in overrides for arg in ("-S", override)]
        print(dvc("exp", "run", "--queue", "-S", f"model={name}", *extra, *sets).strip().splitlines()[-1])


def wait_for_queue(poll_seconds: float) -> None:
    """Block until the experiment queue has nothing queued or running."""
    while True:
        status = dvc("queue", "status")
        busy = [line for line in status.splitlines() if line.rstrip().endswith(("Queued", "Running"))]
        if not busy:
            return
        print(f"{len(busy)} experiment(s) queued or running ...", flush=True)
        time.sleep(poll_seconds)


def experiment_rows(show: list[dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(name, rev, data) of every commit and experiment in `dvc exp show --json` output."""
    for commit in show:
        for row in [
            commit,
            *(rev for exp in commit.get("experiments") or [] for rev in exp.get("revs") or []),
        ]:
            if row.get("data"):
                yield (
                    row.get("name") or ("workspace" if row["rev"] == "workspace" else row["rev"][:7]),
                    row["rev"],
                    row["data"],
                )


def full_report(rev: str) -> dict[str, Any]:
    """Every evaluate figure of a revision (the workspace's file, or `git show <rev>:...`); {} if none."""
    if rev == "workspace":
        path = Path(EVALUATE_REPORT)
        return json.loads(path.read_text()) if path.exists() else {}
    result = subprocess.run(["git", "show", f"{rev}:{EVALUATE_REPORT}"], capture_output=True, text=True)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def comparison(show: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per experiment that has evaluate metrics: its name, rev, model and metrics; best first.

    Rows with the very same params and metrics are one run: the workspace usually repeats HEAD, and
    then the commit's name is kept.
    """
    rows: dict[str, dict[str, Any]] = {}
    for name, rev, data in experiment_rows(show):
        metrics = ((data.get("metrics") or {}).get(EVALUATE_METRICS) or {}).get("data")
        params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
        if not metrics or "accuracy" not in metrics:
            continue
        key = json.dumps([params, metrics], sort_keys=True)
        if key not in rows or rows[key]["experiment"] == "workspace":
            rows[key] = {
                "experiment": name,
                "rev": rev,
                "model": params.get("model", "?"),
                "metrics": {**full_report(rev), **metrics},
            }
    return sorted(rows.values(), key=lambda r: -r["metrics"]["accuracy"])


def cell(value: Any, scale: float, decimals: int) -> str:
    """A table cell: the scaled number, or an empty cell when the metric is missing."""
    return "" if not isinstance(value, int | float) else f"{value * scale:,.{decimals}f}"


PAIRED_NOTE = (
    "p vs best: McNemar's exact test against the first row on the same test images; in brackets, the "
    "images only the best gets right / only this run gets right. p < 0.05: the gap is unlikely to be chance."
)


def add_paired_tests(rows: list[dict[str, Any]], repo: Path | None = None) -> list[dict[str, Any]]:
    """Rows, each but the best (the first) given `paired`: its test against the best, or why there is none."""
    for row in rows[1:]:
        row["paired"] = compare_revisions(rows[0]["rev"], row["rev"], repo)
    return rows


def paired_cell(row: dict[str, Any]) -> str:
    """`p (a/b)`: the p-value and the images only the best / only this run gets right; `best`; or n/a."""
    test = row.get("paired")
    if test is None:
        return "best"
    if isinstance(test, str):
        return "n/a"
    return f"{format_p(test['p_value'])} ({test['a_only']}/{test['b_only']})"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The comparison as a GitHub Markdown table, with the paired test against the best when rows have it."""
    paired = any("paired" in row for row in rows)
    header = ["experiment", "model", *(title for title, *_ in COLUMNS), *(["p vs best"] if paired else [])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * (len(header) - 2)]
    for row in rows:
        values = [cell(row["metrics"].get(key), scale, decimals) for _, key, scale, decimals in COLUMNS]
        values += [paired_cell(row)] if paired else []
        lines.append("| " + " | ".join([row["experiment"], row["model"], *values]) + " |")
    return "\n".join(lines) + "\n"


def paired_note(rows: list[dict[str, Any]]) -> str:
    """What the `p vs best` column means, and why a run has none; empty without the column."""
    if not any("paired" in row for row in rows):
        return ""
    missing = [f"{row['experiment']}: {row['paired']}" for row in rows if isinstance(row.get("paired"), str)]
    return PAIRED_NOTE + "".join(f"\n- n/a, {why}" for why in missing) + "\n"


def bar_chart(rows: list[dict[str, Any]]):
    """Accuracy and macro-F1, parameters, training time and per-image test time, one bar per experiment."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [f"{r['model']}\n{r['experiment']}" for r in rows]
    y = np.arange(len(rows))
    fig, axes = plt.subplots(1, 4, figsize=(16, 1.2 + 0.55 * len(rows)), sharey=True, layout="constrained")

    def value(key: str, scale: float = 1.0) -> list[float]:
        return [(r["metrics"].get(key) or 0) * scale for r in rows]

    for offset, key, label in ((-0.2, "accuracy", "accuracy"), (0.2, "macro_f1", "macro-F1")):
        bars = axes[0].barh(y + offset, value(key), height=0.4, label=label)
        axes[0].bar_label(bars, fmt="%.4f", fontsize=7, padding=2)
    low = min(value("macro_f1") + value("accuracy"))
    axes[0].set(xlim=(max(0.0, low - 0.1 * (1 - low) - 0.02), 1.0), title="test accuracy and macro-F1")
    fig.legend(loc="outside lower left", ncols=2, fontsize=8)
    for ax, key, scale, title, fmt in (
        (axes[1], "parameters", 1e-6, "parameters (M)", "%.3f"),
        (axes[2], "train_seconds", 1.0, "training time (s)", "%.0f"),
        (axes[3], "test_ms_per_image", 1.0, "test time per image (ms)", "%.2f"),
    ):
        bars = ax.barh(y, value(key, scale), height=0.6, color="#607d8b")
        ax.bar_label(bars, fmt=fmt, fontsize=7, padding=2)
        ax.set_title(title)
        ax.margins(x=0.15)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].invert_yaxis()  # best first, at the top
    for ax in axes:
        ax.grid(axis="x", alpha=0.3)
    return fig


def render(out: Path) -> str:
    """Write the Markdown table and bar chart of every experiment with metrics; return the Markdown."""
    rows = add_paired_tests(comparison(json.loads(dvc("exp", "show", "--json"))))
    if not rows:
        sys.exit(
            f"compare_models: no commit or experiment has {EVALUATE_METRICS}; run some experiments first"
        )
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows) + "\n" + paired_note(rows)
    (out / "model_comparison.md").write_text(table)
    figure = bar_chart(rows)
    figure.savefig(out / "model_comparison.png", dpi=110, metadata={"Software": None})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", help="names to queue (default: every registered model)")
    parser.add_argument("-S", "--set-param", action="append", default=[], help="extra override for every run")
    parser.add_argument("--jobs", type=int, default=1, help="experiments run at once (each takes cores)")
    parser.add_argument("--render-only", action="store_true", help="queue and run nothing, only render")
    parser.add_argument("--out", type=Path, default=Path("plots/comparison"), help="output folder")
    parser.add_argument("--poll", type=float, default=10.0, help="seconds between queue checks")
    args = parser.parse_args()
    if not Path("dvc.yaml").exists():
        sys.exit("compare_models: run from the project root (where dvc.yaml is)")
    if not args.render_only:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the registry imports Keras; keep its logs quiet
        from bloodcells.architectures import list_models

        known = list_models()
        models = args.models or known
        unknown = sorted(set(models) - set(known))
        if unknown:
            sys.exit(f"compare_models: unknown model(s) {unknown}; known: {', '.join(known)}")
        groups = set((yaml.safe_load(Path("params.yaml").read_text()) or {}).get("models") or {})
        queue_experiments(models, args.set_param, groups)
        dvc("queue", "start", "--jobs", str(args.jobs))
        wait_for_queue(args.poll)
        failed = [line for line in dvc("queue", "status").splitlines() if line.rstrip().endswith("Failed")]
        for line in failed:
            print(f"failed: {line.split()[0]} (see `dvc queue logs {line.split()[0]}`)")
    print(render(args.out), end="")
    print(f"wrote {args.out / 'model_comparison.md'} and {args.out / 'model_comparison.png'}")


if __name__ == "__main__":
    main()
