"""Shared fixtures: temporary git + DVC copies of this project, fed by a synthetic local mirror."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from filelock import FileLock

from bloodcells.core.params import Params, apply_overrides, parse_params, read_yaml
from tests.synthetic import write_mirror

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"
PROJECT_FILES = (
    "dvc.yaml", "params.yaml", "pyproject.toml", "stages", "bloodcells", "scripts", ".dvcignore",
    "data/images/README.md",
)  # fmt: skip
DVC_FILES = (".dvc/config", ".dvc/plots")  # copied after `dvc init`: plot templates, offline page

# Tiny but real: one epoch of the real models on a few hundred synthetic 28 px images.
TINY_PARAMS = {
    "data.sizes": [28],
    "preprocess.check_split_sizes": False,
    "train.size": 28,
    "train.epochs": 1,
    "train.batch_size": 32,
    "export.formats": [],  # the inference .keras only: tests/e2e/test_export.py converts the rest
}


@contextmanager
def eager_keras() -> Iterator[None]:
    """Keras's train and predict functions run eagerly: the same ops on the same kernels, without
    the seconds of graph tracing each small model costs. The compiled path is what the stages run,
    and the tests that run them (tests/e2e) keep it."""
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(False)


def shipped_params(overrides: dict[str, Any] | None = None) -> Params:
    """The project's params.yaml, validated by the real schema, with dotted `overrides` applied first.

    The schema has no defaults, so tests build their params groups from the shipped file:
    `shipped_params({"train.epochs": 2}).train`, or `group("augment", crop_zoom=True)`.
    """
    return parse_params(apply_overrides(read_yaml(PROJECT / "params.yaml"), overrides or {}, "test"))


def group(name: str, **updates: Any) -> Any:
    """One params group of the shipped params.yaml with fields replaced (unvalidated, to test refusals)."""
    return getattr(shipped_params(), name).model_copy(update=updates)


def dvc_env() -> dict[str, str]:
    """Environment for subprocesses: this interpreter's tools first, no analytics, quiet TF."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.pop("PYTHONPATH", None)
    return env


def interruptible() -> None:
    """Popen's preexec_fn for Ctrl-C tests: SIGINT as a terminal delivers it. A test run started in
    the background inherits SIGINT ignored (the shell's rule), and Python then installs no handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command in `repo`, capturing output; on unexpected failure show what it printed."""
    result = subprocess.run(args, cwd=repo, env=dvc_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def set_params(repo: Path, overrides: dict[str, Any]) -> None:
    """Set dotted keys (`train.epochs`; `+train.epoch` adds one, e.g. a typo) in the repo's params.yaml."""
    path = repo / "params.yaml"
    params = apply_overrides(yaml.safe_load(path.read_text()), overrides, "test")
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def ran_stages(output: str) -> list[str]:
    """Names of the stages `dvc repro`/`dvc exp run` actually ran, from its output."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]


def copy_project_files(repo: Path, names: tuple[str, ...]) -> None:
    """Copy files and folders of this project into `repo`, at the same relative paths."""
    for name in names:
        source, target = PROJECT / name, repo / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        elif source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def init_project_repo(repo: Path, mirror: Path, overrides: dict[str, Any] | None = None) -> Path:
    """Copy the project into `repo`, point it at `mirror`, and make it a committed git + DVC repo."""
    repo.mkdir(parents=True)
    copy_project_files(repo, PROJECT_FILES)
    set_params(repo, {**TINY_PARAMS, "data.mirror": str(mirror), **(overrides or {})})
    run(repo, "git", "init", "-q")
    run(repo, "git", "config", "user.email", "test@example.com")
    run(repo, "git", "config", "user.name", "test")
    run(repo, "dvc", "init", "-q")
    copy_project_files(repo, DVC_FILES)
    run(repo, "dvc", "config", "core.analytics", "false")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "project")
    return repo


# Collection order is the order xdist hands files to workers (`--no-loadscope-reorder`): the longest
# first, so no worker is left with one at the end. The second needs no trained repo, so one worker
# trains the shared one (below) while the other works.
SLOWEST_FIRST = (
    "e2e/test_train.py", "e2e/test_model_zoo.py", "e2e/test_pipeline_models.py", "e2e/test_cross_lab.py",
    "e2e/test_evaluate_reports.py", "e2e/test_export.py", "e2e/test_experiments.py",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(PROJECT / "tests").as_posix()
        return SLOWEST_FIRST.index(path) if path in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder `name`, made by `build(folder)` once in the whole run: the first xdist worker to ask
    builds it under a file lock, the others wait for it. It is read only; copy it to run `dvc` in it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    folder, built = root / "built_once" / name, root / "built_once" / f"{name}.done"
    folder.parent.mkdir(exist_ok=True)
    with FileLock(folder.parent / f"{name}.lock"):
        if not built.exists():
            shutil.rmtree(folder, ignore_errors=True)  # left by a build that failed in another worker
            folder.mkdir()
            build(folder)
            built.touch()
    return folder


@pytest.fixture(scope="session")
def synthetic_mirror(tmp_path_factory) -> Path:
    """A local mirror with synthetic bloodmnist files at 28 and 64 px and an MD5SUMS file."""
    return built_once(tmp_path_factory, "mirror", lambda folder: write_mirror(folder, [28, 64]))


@pytest.fixture(scope="session")
def fresh_template(tmp_path_factory, synthetic_mirror) -> Path:
    """A committed, never-reproduced project repo on the synthetic mirror (built once; tests copy it)."""
    build = lambda folder: init_project_repo(folder / "repo", synthetic_mirror)  # noqa: E731
    return built_once(tmp_path_factory, "fresh", build) / "repo"


class Reproduced(NamedTuple):
    """A repo on which `dvc repro` ran and was committed, with what that `dvc repro` printed."""

    repo: Path
    output: str


def reproduce_and_commit(source: Path, folder: Path, overrides: dict[str, Any], message: str) -> None:
    """Copy the repo `source` to `folder`/repo, set `overrides`, `dvc repro` and commit; keep the output."""
    repo = folder / "repo"
    shutil.copytree(source, repo, symlinks=True)
    if overrides:
        set_params(repo, overrides)
    (folder / "output.txt").write_text(run(repo, "dvc", "repro").stdout)
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", message)


def own_copy(tmp_path_factory, shared: Path, name: str) -> Reproduced:
    """This worker's copy of a repo built once, so that no two workers run `dvc` in the same repo."""
    repo = tmp_path_factory.mktemp(name) / "repo"
    shutil.copytree(shared / "repo", repo, symlinks=True)
    return Reproduced(repo, (shared / "output.txt").read_text())


@pytest.fixture(scope="session")
def first_repro(tmp_path_factory, fresh_template) -> Reproduced:
    """The run's one full `dvc repro` of a fresh project repo, committed; its output kept for tests."""

    def build(folder: Path) -> None:
        reproduce_and_commit(fresh_template, folder, {}, "first run")

    return own_copy(tmp_path_factory, built_once(tmp_path_factory, "first_repro", build), "base")


@pytest.fixture(scope="session")
def reproduced_repo(first_repro) -> Path:
    """A project repo on which `dvc repro` has run once and been committed (tests that change it take
    `project_repo`, a copy)."""
    return first_repro.repo


@pytest.fixture(scope="session")
def second_commit(tmp_path_factory, reproduced_repo) -> Reproduced:
    """The reproduced repo plus a second commit that trains two epochs instead of one, and the output
    of the `dvc repro` that made it."""

    def build(folder: Path) -> None:
        reproduce_and_commit(reproduced_repo, folder, {"train.epochs": 2}, "two epochs")

    return own_copy(tmp_path_factory, built_once(tmp_path_factory, "second_commit", build), "two_commits")


@pytest.fixture(scope="session")
def two_commit_repo(second_commit) -> Path:
    """The reproduced repo plus a second commit that trains two epochs instead of one (do not change it)."""
    return second_commit.repo


@pytest.fixture
def project_repo(tmp_path, reproduced_repo) -> Path:
    """A private copy of the reproduced repo (its DVC cache included) for a test to change."""
    copy = tmp_path / "repo"
    shutil.copytree(reproduced_repo, copy, symlinks=True)
    return copy


@pytest.fixture
def new_repo(tmp_path, fresh_template) -> Callable[..., Path]:
    """Factory for a fresh, never-reproduced project repo with extra param overrides (committed):
    a copy of `fresh_template`, not another `git init` and `dvc init`."""

    def make(overrides: dict[str, Any] | None = None, name: str = "fresh") -> Path:
        repo = tmp_path / name
        shutil.copytree(fresh_template, repo, symlinks=True)
        if overrides:
            set_params(repo, overrides)
            run(repo, "git", "commit", "-qam", "overrides")
        return repo

    return make
