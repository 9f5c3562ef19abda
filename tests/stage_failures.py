"""What a failed stage must look like: one line on stderr, no traceback; and the JSON files it writes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def one_line_failure(result: subprocess.CompletedProcess, status: int = 1) -> str:
    """The single line a failed stage printed last on stderr (asserting the status and no traceback)."""
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, result.stdout
    return lines[-1]


def refuse_constant(name: str) -> float:
    """json.loads's parse_constant: NaN, Infinity and -Infinity are not strict JSON."""
    raise ValueError(f"not strict JSON: {name}")


def assert_all_json_strict(repo: Path) -> int:
    """Every JSON file the pipeline wrote parses as strict JSON (no NaN, Infinity); returns how many."""
    files = [p for p in repo.rglob("*.json") if not {".git", ".dvc"} & set(p.relative_to(repo).parts)]
    for path in files:
        json.loads(path.read_text(), parse_constant=refuse_constant)
    return len(files)
