"""Accuracy benchmark: train N seeds of a named configuration as DVC experiments, print mean ± std.

A configuration is a YAML file of dotted param overrides (configs/*.yaml). Each seed runs as
`dvc exp run -n <config>-seed<k> -S key=value ...`, so every run stays inspectable with
`dvc exp show` and can be applied with `dvc exp apply`. Extra `-S` overrides go to every run.

    python scripts/bench_accuracy.py configs/report_skip.yaml --seeds 3 -S train.size=28
    python scripts/bench_accuracy.py configs/report_skip.yaml --seeds 3 --report-only
    python scripts/bench_accuracy.py configs/ours.yaml --tag 64px -S train.size=64 -S 'data.sizes=[64]'
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python scripts/bench_accuracy.py): import from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.bench_common import read_config  # noqa: E402
from scripts.compare_models import dvc, experiment_rows  # noqa: E402

METRICS = "metrics/evaluate/metrics.json"
TRAIN_METRICS = "metrics/train/metrics.json"


def config_overrides(path: Path) -> list[str]:
    """`key=value` strings from a config file of dotted keys (YAML values, so lists stay lists)."""
    return [f"{key}={json.dumps(value)}" for key, value in read_config(path).items()]


def named_metrics(names: set[str]) -> dict[str, dict]:
    """Metrics files of the named experiments on any baseline commit, from `dvc exp show`."""
    shown = json.loads(dvc("exp", "show", "--all-commits", "--json"))
    return {
        name: {path: entry["data"] for path, entry in (data.get("metrics") or {}).items()}
        for name, data in experiment_rows(shown)
        if name in names
    }


def summarize(values: list[float], digits: int = 4) -> str:
    """Mean ± sample standard deviation, as text."""
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=42)
    parser.add_argument("--tag", default="", help="added to experiment names, e.g. 64px: ours-64px-seed42")
    parser.add_argument("-S", "--set-param", action="append", default=[], help="extra override for every run")
    parser.add_argument("--report-only", action="store_true", help="only summarize existing experiments")
    args = parser.parse_args()

    overrides = [*config_overrides(args.config), *args.set_param]
    names = {
        f"{args.config.stem}{'-' + args.tag if args.tag else ''}-seed{seed}": seed
        for seed in range(args.first_seed, args.first_seed + args.seeds)
    }
    if not args.report_only:
        for name, seed in names.items():
            command = ["dvc", "exp", "run", "-n", name, "-S", f"seed={seed}"]
            for override in overrides:
                command += ["-S", override]
            print("+", " ".join(command), flush=True)
            subprocess.run(command, check=True)

    rows = named_metrics(set(names))
    missing = sorted(set(names) - set(rows))
    if missing:
        sys.exit(f"experiments not found: {missing} (run without --report-only)")
    evaluated = [rows[name][METRICS] for name in names]
    trained = [rows[name][TRAIN_METRICS] for name in names]
    print("\n| configuration | seeds | test accuracy | macro-F1 | AUC | train time (s) | epochs |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {args.config.stem} | {len(names)} | {summarize([m['accuracy'] for m in evaluated])} "
        f"| {summarize([m['macro_f1'] for m in evaluated])} | {summarize([m['auc'] for m in evaluated])} "
        f"| {summarize([t['train_seconds'] for t in trained], 0)} "
        f"| {summarize([t['epochs_run'] for t in trained], 1)} |"
    )
    print("\noverrides: " + " ".join(overrides))


if __name__ == "__main__":
    main()
