"""dvc.yaml's deps cover the code each stage runs: editing any file a stage imports re-runs that stage.

A stage's import closure within the project is measured two ways and joined: at run time (the
modules loaded by `python -m stages.<name> --help` in a subprocess, from `sys.modules`) and
statically (every `import` of a project module in the stage's files, also inside functions, which
run time only sees when the function runs). Each project file in the closure must be one of the
stage's `deps` or inside a folder dep; each code dep must hold something the stage imports; and
code deps are folders (a hand list of files goes stale), but for the stage's own script and the
package's `__init__.py` (the folder holding it would be every package). Run with `-s` to see each
stage's coverage.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT
from tests.unit.stage_processes import STAGES

CODE_ROOTS = ("stages", "bloodcells")  # the project's Python: what a code dep may name
PACKAGE_INIT = "bloodcells/__init__.py"  # run by every import of the package


def stage_deps(stage: str) -> list[str]:
    """The stage's deps as dvc.yaml lists them (a foreach stage's `do` template), templated ones left out."""
    spec = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"][stage]
    deps = spec.get("do", spec)["deps"]
    return [dep for dep in deps if "${" not in dep]


def is_project_file(path: Path) -> bool:
    """A file of this project (not of the interpreter or a virtualenv inside the project folder)."""
    path = path.resolve()
    return path.is_relative_to(PROJECT) and not path.is_relative_to(Path(sys.prefix).resolve())


def module_file(name: str) -> Path | None:
    """The project file of a dotted module name, or None when it is not a project module."""
    parts = name.split(".")
    if parts[0] not in CODE_ROOTS:
        return None
    base = PROJECT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_names(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it; for `from a import b`, both `a` and `a.b`."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def with_parents(name: str) -> list[str]:
    """`a.b.c` and the packages importing it runs: `a`, `a.b`."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def static_closure(start: Path) -> set[Path]:
    """Project files reachable from `start` through import statements (lazy ones included)."""
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path):
            for module in with_parents(name):
                found = module_file(module)
                if found and found not in seen:
                    todo.append(found)
    return seen


def covered_by(path: Path, deps: list[str]) -> str | None:
    """The dep (a file equal to `path` or a folder holding it) that covers `path`, if any."""
    relative = path.resolve().relative_to(PROJECT)
    for dep in deps:
        dep_path = Path(dep)
        if relative == dep_path or relative.is_relative_to(dep_path):
            return dep
    return None


def closure(stage: str, stage_help) -> set[Path]:
    results, _ = stage_help
    loaded = results[stage].modules
    assert loaded, f"stages.{stage} recorded no modules: {results[stage].stderr[-2000:]}"
    runtime = {Path(file).resolve() for file in loaded if is_project_file(Path(file))}
    return runtime | static_closure(PROJECT / "stages" / f"{stage}.py")


def test_the_closure_is_measured_where_the_stage_imports_from():
    """Guards the measurement itself: a lazy import is found, a third-party module is not a project file."""
    loader = static_closure(PROJECT / "bloodcells/model/load.py")
    assert PROJECT / "bloodcells/architectures/__init__.py" in loader  # imported inside a function
    assert PROJECT / PACKAGE_INIT in loader
    assert not is_project_file(Path(yaml.__file__))
    assert covered_by(PROJECT / "bloodcells/data/splits.py", ["bloodcells/data"]) == "bloodcells/data"
    assert covered_by(PROJECT / "bloodcells/data/splits.py", ["bloodcells/dat"]) is None


@pytest.mark.parametrize("stage", STAGES)
def test_every_project_file_a_stage_imports_is_one_of_its_deps(stage, stage_help):
    deps = stage_deps(stage)
    files = sorted(closure(stage, stage_help))
    uncovered = [str(path.relative_to(PROJECT)) for path in files if covered_by(path, deps) is None]
    code_deps = [dep for dep in deps if dep.split("/")[0] in CODE_ROOTS]
    unused = [dep for dep in code_deps if not any(covered_by(path, [dep]) for path in files)]
    print(
        f"\n{stage}: {len(files) - len(uncovered)}/{len(files)} imported project files covered by deps "
        f"{', '.join(code_deps)}"
        + (f"; NOT covered: {', '.join(uncovered)}" if uncovered else "")
        + (f"; deps importing nothing: {', '.join(unused)}" if unused else "")
    )
    assert not uncovered, f"{stage} imports files its dvc.yaml deps miss: {uncovered}"
    assert not unused, f"{stage} depends on code it never imports (needless re-runs): {unused}"
    files_named = [dep for dep in code_deps if dep not in (f"stages/{stage}.py", PACKAGE_INIT)]
    not_folders = [dep for dep in files_named if not (PROJECT / dep).is_dir()]
    assert not not_folders, f"{stage}: code deps must be package folders, not files: {not_folders}"


def test_a_dep_left_out_of_dvc_yaml_would_be_found(stage_help):
    """The check can fail: without `bloodcells/training` the train stage's closure is not covered."""
    deps = [dep for dep in stage_deps("train") if dep != "bloodcells/training"]
    uncovered = [path for path in closure("train", stage_help) if covered_by(path, deps) is None]
    assert PROJECT / "bloodcells/training/loop.py" in uncovered


# What each package may not reach: the model package sits below training, inference and evaluation,
# and only the evaluate stage (and `validate`) import evaluation.
FORBIDDEN = {
    "model": ("training", "inference", "evaluation"),
    "training": ("inference", "evaluation"),
    "inference": ("training", "evaluation"),
}


@pytest.mark.parametrize("package", FORBIDDEN)
def test_the_packages_import_only_downwards(package):
    files = set().union(*(static_closure(path) for path in (PROJECT / "bloodcells" / package).glob("*.py")))
    reached = sorted(
        str(path.relative_to(PROJECT))
        for path in files
        for other in FORBIDDEN[package]
        if path.is_relative_to(PROJECT / "bloodcells" / other)
    )
    assert not reached, f"bloodcells/{package} imports {reached}"
