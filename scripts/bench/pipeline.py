"""Pipeline overhead: what `dvc repro` and `dvc status` cost when nothing has changed.

With --real, a temporary git + DVC copy of the project on the real 28 and 64 px files of
../shared/data (one training epoch) is reproduced once; with --repo, an existing, up-to-date
project checkout is timed instead (it must need no stage to run); --smoke times a one-stage DVC
repository (seconds, checks the benchmark itself). Then `dvc repro` (nothing to run) and
`dvc status` are timed alternately, several times each, as a user runs them: fresh processes,
wall clock.
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

import yaml

from scripts.bench.common import PROJECT, REAL_DATA, machine_lines, markdown_table

PROJECT_FILES = ("dvc.yaml", "params.yaml", "stages", "bloodcells", ".dvcignore", "data/images/README.md")
DVC_FILES = (".dvc/config", ".dvc/plots")  # copied after `dvc init`: plot templates, offline page
# The real files at 28 and 64 px, checked against MedMNIST's split sizes; one epoch at 28 px.
REAL_PARAMS = {
    "data.mirror": str(REAL_DATA),
    "data.sizes": [28, 64],
    "preprocess.check_split_sizes": True,
    "train.size": 28,
    "train.epochs": 1,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reps", type=int, default=5, help="timed runs of each command (default: 5)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--real", action="store_true", help="a copy of the project on the real 28 and 64 px data"
    )
    where.add_argument("--repo", type=Path, help="time this up-to-date project checkout")
    where.add_argument("--smoke", action="store_true", help="a one-stage DVC repository (seconds)")


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    if args.real and not (REAL_DATA / "MD5SUMS").exists():
        parser.error(f"--real needs the real data in {REAL_DATA}, which is not there")
    if args.repo and not (args.repo / "dvc.yaml").exists():
        parser.error(f"--repo {args.repo}: no dvc.yaml there")


def run_in(repo: Path, *command: str) -> subprocess.CompletedProcess:
    """A command in `repo` with this interpreter's tools first and no DVC analytics; exits if it fails."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {repo}:\n{result.stdout}\n{result.stderr[-2000:]}")
    return result


def ran_stages(output: str) -> list[str]:
    """Names of the stages `dvc repro` actually ran, from its output."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]


def new_repo(repo: Path, real: bool) -> Path:
    """A committed git + DVC repo: a copy of the project on the real data, or one tiny stage."""
    repo.mkdir(parents=True)
    if real:
        for name in PROJECT_FILES:
            source = PROJECT / name
            if source.is_dir():
                shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
            elif source.exists():
                (repo / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, repo / name)
        from bloodcells.core.params import apply_overrides

        params = apply_overrides(yaml.safe_load((repo / "params.yaml").read_text()), REAL_PARAMS, "bench")
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    else:
        (repo / "input.txt").write_text("one\n")
        stage = {"cmd": "cp input.txt output.txt", "deps": ["input.txt"], "outs": ["output.txt"]}
        (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"copy": stage}}))
    for command in (("git", "init", "-q"), ("git", "config", "user.email", "bench@example.invalid")):
        run_in(repo, *command)
    run_in(repo, "git", "config", "user.name", "bench")
    run_in(repo, "dvc", "init", "-q")
    if real:
        for name in DVC_FILES:
            source = PROJECT / name
            if source.is_dir():
                shutil.copytree(source, repo / name, dirs_exist_ok=True)
            elif source.exists():
                shutil.copy2(source, repo / name)
    run_in(repo, "git", "add", "-A")
    run_in(repo, "git", "commit", "-qm", "project")
    return repo


def timed(repo: Path, *command: str) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds of one command in `repo`, the 1-minute load average after it, and its result."""
    start = time.perf_counter()
    result = run_in(repo, *command)
    return time.perf_counter() - start, os.getloadavg()[0], result


def first_repro(repo: Path) -> list[str]:
    """Reproduce `repo` once and commit; the table row of that first run."""
    seconds, load, result = timed(repo, "dvc", "repro")
    run_in(repo, "git", "add", "-A")
    run_in(repo, "git", "commit", "-qm", "first run")
    stages = ", ".join(ran_stages(result.stdout))
    return [f"first `dvc repro` ({stages})", f"{seconds:.2f}", "1 run", f"{load:.1f}/{os.cpu_count()}"]


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


def run(args: argparse.Namespace) -> None:
    rows = []
    if args.repo:
        repo = args.repo.resolve()
        times, project = time_no_op(repo, args.reps), f"the checkout at {repo}"
    else:
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as root:
            repo = new_repo(Path(root) / "repo", args.real)
            rows.append(first_repro(repo))
            times = time_no_op(repo, args.reps)
        project = (
            f"a temporary git + DVC copy of the project on the real files in {REAL_DATA}; "
            f"params {REAL_PARAMS}"
            if args.real
            else "a temporary one-stage DVC repository (smoke)"
        )
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
    print(
        f"- {args.reps} timed runs of each, alternating; "
        f"DVC {run_in(Path.cwd(), 'dvc', '--version').stdout.strip()}"
    )
    print(f"- project: {project}")
    for line in machine_lines(frameworks=False):
        print(line)
