"""What every stage script shares: `--help`, one-line failures, and Ctrl-C as "interrupted".

A stage's `main()` builds its parser with `stage_parser` and hands its work to `run_stage`, which
turns the project's expected failures (bad params, bad inputs, missing files) into one line on
stderr and exit status 1, and an interrupt into exit status 130, instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from bloodcells.core.params import ParamsError

INTERRUPTED = 130  # the shell's status for a process ended by SIGINT


class StageError(RuntimeError):
    """An expected failure of a stage (bad input, missing file); the message is one line."""


def stage_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser whose `--help` prints the stage's docstring and exits without working."""
    lines = (doc or "").strip().splitlines()
    return argparse.ArgumentParser(
        description=lines[0] if lines else None,
        epilog="\n".join(lines[1:]).strip() or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def require(path: Path, stage: str) -> Path:
    """`path`, or a StageError saying which stage writes it, when it does not exist."""
    if not path.exists():
        raise StageError(f"{path} not found: run `dvc repro {stage}` first (or `dvc repro` for everything)")
    return path


def run_stage(name: str, work: Callable[[], None]) -> None:
    """Run a stage's work; expected failures end in one line, Ctrl-C in 'interrupted' (exit 130)."""
    if not Path("dvc.yaml").exists():
        sys.exit(f"{name} failed: no dvc.yaml here: run stages from the project root")
    try:
        work()
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        sys.exit(INTERRUPTED)
    except (ParamsError, StageError, ValueError) as error:
        sys.exit(f"{name} failed: {error}")
