"""Run stage scripts as real processes, several at once (each pays its own Python and Keras start-up)."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.conftest import PROJECT, dvc_env

STAGES = tuple(yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"])

# `python -m stages.<name> --help`, plus a record of every module loaded when the process exits.
RECORD_MODULES = """
import atexit, json, runpy, sys
def record():
    files = sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)})
    with open(OUT, "w") as f:
        json.dump(files, f)
atexit.register(record)
runpy.run_module(MODULE, run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str
    modules: list[str]  # files of the modules loaded (empty when not recorded)


def stage_workdir(folder: Path) -> Path:
    """A folder holding only the project's dvc.yaml and params.yaml: where a stage may run and write."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "params.yaml"):
        (folder / name).write_bytes((PROJECT / name).read_bytes())
    return folder


def run_stage(stage: str, args: list[str], cwd: Path, record: Path | None = None) -> Finished:
    """`python -m stages.<stage> <args>` in `cwd`, the project importable; with `record`, its modules."""
    env = {**dvc_env(), "PYTHONPATH": str(PROJECT)}
    module = f"stages.{stage}"
    if record is None:
        command = [sys.executable, "-m", module, *args]
    else:
        code = RECORD_MODULES.replace("OUT", repr(str(record))).replace("MODULE", repr(module))
        command = [sys.executable, "-c", code, *args]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    modules = json.loads(record.read_text()) if record and record.exists() else []
    return Finished(result.returncode, result.stdout, result.stderr, modules)


def run_many(jobs: dict[str, tuple], workers: int = 3) -> dict[str, Finished]:
    """Run `run_stage(*args)` for every job at once; {job name: result}."""
    with ThreadPoolExecutor(workers) as pool:
        futures = {name: pool.submit(run_stage, *args) for name, args in jobs.items()}
        return {name: future.result() for name, future in futures.items()}
