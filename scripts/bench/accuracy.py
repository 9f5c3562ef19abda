"""Accuracy: train N seeds of a named configuration as DVC experiments, print mean ± std.

A configuration is a YAML file of dotted param overrides (configs/*.yaml). Each seed runs as
`dvc exp run -n <config>-seed<k> -S key=value ...`, so every run stays inspectable with
`dvc exp show` and can be applied with `dvc exp apply`. Extra `-S` overrides go to every run.

    python -m scripts.bench accuracy configs/report_skip.yaml --seeds 3 -S train.size=28
    python -m scripts.bench accuracy configs/report_skip.yaml --seeds 3 --report-only
    python -m scripts.bench accuracy configs/ours.yaml --tag 64px -S train.size=64 -S 'data.sizes=[64]'
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path

from scripts.bench.common import BenchError, markdown_table, parse_overrides, read_config, recipe_params

METRICS = "metrics/evaluate/metrics.json"
TRAIN_METRICS = "metrics/train/metrics.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=42)
    parser.add_argument("--tag", default="", help="added to experiment names, e.g. 64px: ours-64px-seed42")
    parser.add_argument("-S", "--set-param", action="append", default=[], help="extra override for every run")
    parser.add_argument("--report-only", action="store_true", help="only summarize existing experiments")


def named_metrics(names: set[str]) -> dict[str, dict]:
    """Metrics files of the named experiments on any baseline commit, from `dvc exp show`."""
    from scripts.compare_models import dvc, experiment_rows

    shown = json.loads(dvc("exp", "show", "--all-commits", "--json"))
    return {
        # a declared metrics file an experiment did not write (validate's) comes as an error, no data
        name: {path: entry["data"] for path, entry in (data.get("metrics") or {}).items() if "data" in entry}
        for name, _, data in experiment_rows(shown)
        if name in names
    }


def mean_std(values: list[float], digits: int = 4) -> str:
    """Mean ± sample standard deviation, as text."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {spread:.{digits}f}"


def run(args: argparse.Namespace) -> None:
    config = read_config(args.config)
    recipe_params(args.config, parse_overrides(args.set_param))  # a bad key fails here, not in run 3
    overrides = [f"{key}={json.dumps(value)}" for key, value in config.items()] + args.set_param
    names = {
        f"{args.config.stem}{'-' + args.tag if args.tag else ''}-seed{seed}": seed
        for seed in range(args.first_seed, args.first_seed + args.seeds)
    }
    if not args.report_only:
        for name, seed in names.items():
            command = ["dvc", "exp", "run", "-n", name, "-S", f"seed={seed}"]
            command += [arg for override in overrides for arg in ("-S", override)]
            print("+", " ".join(command), flush=True)
            subprocess.run(command, check=True)

    rows = named_metrics(set(names))
    missing = sorted(set(names) - set(rows))
    if missing:
        raise BenchError(f"experiments not found: {missing} (run without --report-only)")
    evaluated = [rows[name][METRICS] for name in names]
    trained = [rows[name][TRAIN_METRICS] for name in names]
    header = ["configuration", "seeds", "test accuracy", "macro-F1", "AUC", "train time (s)", "epochs"]
    row = [
        args.config.stem,
        str(len(names)),
        mean_std([m["accuracy"] for m in evaluated]),
        mean_std([m["macro_f1"] for m in evaluated]),
        mean_std([m["auc"] for m in evaluated]),
        mean_std([t["train_seconds"] for t in trained], 0),
        mean_std([t["epochs_run"] for t in trained], 1),
    ]
    print("\n" + markdown_table(header, [row]))
    print("\noverrides: " + " ".join(overrides))
