"""The library installs as one package: a wheel holds bloodcells/ and the `bloodcells` console command."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import copy_project_files, dvc_env

pytestmark = pytest.mark.slow


def pip(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", *args], cwd=cwd, env=dvc_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip wheel .` builds from a copy of the project (built once for both tests)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    copy_project_files(source, ("pyproject.toml", "README.md", "bloodcells", "stages", "tests", "scripts"))
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(root), ".", cwd=source)
    (built,) = root.glob("bloodcells-*.whl")
    return built


def test_the_wheel_holds_the_package_and_the_console_script(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"bloodcells"}, "only the library is installed (not stages/, tests/, scripts/)"
    for module in (
        "__init__.py",
        "cli.py",
        "core/params.py",
        "training/loop.py",
        "architectures/transfer.py",
    ):
        assert f"bloodcells/{module}" in names
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[console_scripts]" in text and "bloodcells = bloodcells.cli:main" in text


def test_the_installed_command_lists_the_models(wheel, tmp_path):
    target = tmp_path / "site"
    pip("install", "--no-deps", "--target", str(target), str(wheel), cwd=tmp_path)
    assert (target / "bin" / "bloodcells").is_file()
    listed = subprocess.run(
        [sys.executable, str(target / "bin" / "bloodcells"), "models"],
        cwd=tmp_path,
        env={**dvc_env(), "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr
    assert "skip" in listed.stdout.split() and "efficientnet_b0" in listed.stdout.split()
