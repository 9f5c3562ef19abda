"""The GPU install path pins the CUDA builds of exactly the versions the CPU path pins."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def pins(text: str) -> dict[str, str]:
    """Package name (extras dropped) -> pinned version, from a requirements file's text."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]+\])?==([^\s#]+)", line)
        if match:
            found[match.group(1).lower()] = match.group(3)
    return found


def test_gpu_builds_have_the_cpu_builds_versions():
    cpu = pins((PROJECT / "requirements.txt").read_text())
    gpu = pins((PROJECT / "requirements-gpu.txt").read_text())
    assert gpu["tensorflow"] == cpu["tensorflow-cpu"]
    assert gpu["jax"] == cpu["jax"] == cpu["jaxlib"]


def test_install_script_swaps_only_the_cpu_builds():
    """The filter install.sh applies for --gpu removes tensorflow-cpu, jax and jaxlib and nothing else."""
    script = (PROJECT / "scripts/install.sh").read_text()
    pattern = re.search(r"cpu_builds='([^']+)'", script).group(1)
    kept = subprocess.run(
        ["grep", "-vE", pattern, str(PROJECT / "requirements.txt")], capture_output=True, text=True
    ).stdout
    dropped = set(pins((PROJECT / "requirements.txt").read_text())) - set(pins(kept))
    assert dropped == {"tensorflow-cpu", "jax", "jaxlib"}
