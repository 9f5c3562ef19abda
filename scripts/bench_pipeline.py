"""Benchmark 4: pipeline overhead, i.e. what `dvc repro` and `dvc status` cost when nothing has changed.

In a temporary copy of the project (git + DVC, fed by a synthetic local mirror, tiny params as in
the tests; with --real, the real 28 and 64 px files of ../shared/data and one training epoch) the
whole pipeline is reproduced once; then `dvc repro` (nothing to run) and `dvc status` are timed
alternately, several times each, as a user runs them: fresh processes, wall clock. With --repo, an
existing, up-to-date project checkout is timed instead (it must need no stage to run).

Run: python -m scripts.bench_pipeline [--reps 5] [--real | --repo PATH] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python scripts/bench_pipeline.py): import from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.bench_common import REAL_DATA, machine_lines, markdown_table
from tests.conftest import TINY_PARAMS, init_project_repo, ran_stages, run
from tests.synthetic import write_mirror

# The real files at 28 and 64 px, checked against MedMNIST's split sizes; one epoch at 28 px.
REAL_OVERRIDES = {"data.sizes": [28, 64], "preprocess.check_split_sizes": True, "train.batch_size": 64}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="timed runs of each command (default: 5)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--real", action="store_true", help="the real 28 and 64 px data (about 2 minutes)")
    where.add_argument("--repo", type=Path, help="time this up-to-date project checkout instead")
    parser.add_argument("--keep", action="store_true", help="keep the temporary repo and print where it is")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    if args.real and not (REAL_DATA / "MD5SUMS").exists():
        parser.error(f"--real needs the real data in {REAL_DATA}, which is not there")
    if args.repo and not (args.repo / "dvc.yaml").exists():
        parser.error(f"--repo {args.repo}: no dvc.yaml there")
    return args


def timed(repo: Path, *command: str) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds of one command in `repo`, the 1-minute load average after it, and its result."""
    start = time.perf_counter()
    result = run(repo, *command)
    return time.perf_counter() - start, os.getloadavg()[0], result


def first_repro(root: Path, real: bool) -> tuple[Path, list]:
    """A fresh project repo in `root`, reproduced once and committed; the row that first run makes."""
    if real:
        repo = init_project_repo(root / "repo", REAL_DATA, REAL_OVERRIDES)
    else:
        repo = init_project_repo(root / "repo", write_mirror(root / "mirror", [28]))
    seconds, load, result = timed(repo, "dvc", "repro")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "first run")
    stages = ran_stages(result.stdout)
    return repo, [
        f"first `dvc repro` ({', '.join(stages)})",
        f"{seconds:.2f}",
        "1 run",
        f"{load:.1f}/{os.cpu_count()}",
    ]


def time_no_op(repo: Path, reps: int) -> dict[str, list[tuple[float, float]]]:
    """(seconds, load) of `reps` runs each of `dvc repro` and `dvc status`, alternating, on a clean repo."""
    times: dict[str, list[tuple[float, float]]] = {"dvc repro": [], "dvc status": []}
    for _ in range(reps):
        seconds, load, result = timed(repo, "dvc", "status")
        if "up to date" not in result.stdout:
            raise SystemExit(f"{repo} is not up to date, so `dvc repro` would run stages:\n{result.stdout}")
        times["dvc status"].append((seconds, load))
        seconds, load, result = timed(repo, "dvc", "repro")
        if ran_stages(result.stdout):
            raise SystemExit(f"dvc repro ran stages with nothing changed:\n{result.stdout}")
        times["dvc repro"].append((seconds, load))
    return times


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows = []
    if args.repo:
        repo = args.repo.resolve()
        times = time_no_op(repo, args.reps)
        project = f"the checkout at {repo}"
    else:
        root = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
        try:
            repo, first_row = first_repro(root, args.real)
            times = time_no_op(repo, args.reps)
            rows.append(first_row)
        finally:
            if args.keep:
                print(f"kept: {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)
        overrides = {**TINY_PARAMS, **(REAL_OVERRIDES if args.real else {})}
        data = (
            f"the real files in {REAL_DATA}" if args.real else "a synthetic 28 px mirror (tests/synthetic.py)"
        )
        project = f"a temporary git + DVC copy of the project on {data}; params {overrides}"

    no_op_rows = [
        [
            f"`{command}`, nothing changed",
            f"{statistics.median(s for s, _ in runs):.2f}",
            f"{min(s for s, _ in runs):.2f} - {max(s for s, _ in runs):.2f}",
            f"{statistics.mean(load for _, load in runs):.1f}/{os.cpu_count()}",
        ]
        for command, runs in times.items()
    ]
    print("## Pipeline overhead\n")
    print(markdown_table(["command", "seconds (median)", "range", "load"], no_op_rows + rows))
    print()
    dvc_version = run(Path.cwd(), "dvc", "--version").stdout.strip()
    print(f"- {args.reps} timed runs of each, alternating; DVC {dvc_version}")
    print(f"- project: {project}")
    for line in machine_lines(frameworks=False):
        print(line)


if __name__ == "__main__":
    main()
