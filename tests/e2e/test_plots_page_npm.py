"""The committed offline plots page is what scripts/make_plots_page.py builds from the npm registry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import PROJECT

pytestmark = pytest.mark.slow


def test_the_committed_page_is_what_the_script_builds_from_npm():
    """Needs the npm registry; skipped (saying so) where npm or the network is missing."""
    try:
        probe = subprocess.run(
            ["npm", "view", "vega@6.4.0", "version"], capture_output=True, text=True, timeout=60
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        pytest.skip("npm absent or the registry does not answer")
    if probe.returncode != 0:
        pytest.skip(f"npm registry unreachable: {probe.stderr.strip()[:200]}")
    check = subprocess.run(
        [sys.executable, "scripts/make_plots_page.py", "--check"], cwd=PROJECT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
