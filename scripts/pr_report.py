"""Markdown report of what the workspace changes against a base revision: metrics, params and plots.

The pull-request workflow (.github/workflows/pr.yml) reproduces the pipeline and posts this report
as a PR comment; run it yourself the same way, from the project root, after `dvc repro`:
    python -m scripts.pr_report --base main > report.md
Metrics and params come from `dvc metrics diff` / `dvc params diff`, with McNemar's exact test of
the base's and the workspace's outcomes on the same test images under the metrics (is the change in
accuracy more than chance?). A plot counts as changed when one of its files (git-tracked outputs,
cache: false) differs from the base's. Changed images are only listed by path (the workflow attaches
them as an artifact): nothing in the report leaves the machine. `--embed-images` embeds them
instead, for `cml comment ... --publish`, which uploads them to a public host: only ever for
synthetic or public images, never a lab's own.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from scripts.paired import WORKSPACE, compare_revisions, verdict

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg"}
IMAGES_ARTIFACT = "pr-report"  # the artifact .github/workflows/pr.yml attaches the images to


def run(*args: str) -> subprocess.CompletedProcess:
    """Run a command in the current folder and capture its output."""
    return subprocess.run(args, capture_output=True, text=True)


def dvc_markdown(*args: str) -> str:
    """Output of a `dvc ... --md` command; exit with its message if it fails."""
    result = run("dvc", *args, "--md")
    if result.returncode != 0:
        sys.exit(f"pr_report: dvc {' '.join(args)} failed: {result.stderr.strip()}")
    table = result.stdout.strip()
    return table if len(table.splitlines()) > 2 else ""  # a header and no rows: nothing changed


def plot_definitions(dvc_yaml: dict[str, Any]) -> dict[str, list[str]]:
    """Plot id -> the files and folders it reads, from dvc.yaml's top-level `plots:`."""
    definitions: dict[str, list[str]] = {}
    for entry in dvc_yaml.get("plots") or []:
        if isinstance(entry, str):
            definitions[entry] = [entry]
            continue
        for plot_id, props in entry.items():
            y = (props or {}).get("y")
            definitions[plot_id] = list(y) if isinstance(y, dict) else [plot_id]
    return definitions


def files_under(path: str, base: str) -> list[str]:
    """`path` itself, or the files inside it in the workspace or at revision `base`."""
    listed = run("git", "ls-tree", "-r", "--name-only", base, "--", path).stdout.split()
    local = [str(p) for p in Path(path).rglob("*") if p.is_file()] if Path(path).is_dir() else []
    return sorted(set(listed + local)) or [path]


def at_revision(path: str, base: str) -> bytes | None:
    """A file's bytes at revision `base`: from git, or DVC's cache for a cached output; None if absent."""
    before = subprocess.run(["git", "show", f"{base}:{path}"], capture_output=True)
    if before.returncode == 0:
        return before.stdout
    import dvc.api

    try:
        return dvc.api.read(path, rev=base, mode="rb")
    except Exception:  # not tracked at `base`, or its cache is not here: both read as absent
        return None


def changed(path: str, base: str) -> bool:
    """Whether a file differs between revision `base` and the workspace (a missing one differs)."""
    now = Path(path).read_bytes() if Path(path).is_file() else None
    return at_revision(path, base) != now


def plots_section(definitions: dict[str, list[str]], base: str, embed_images: bool = False) -> str:
    """Markdown list of the plots whose files changed; changed images listed by path, or embedded."""
    lines, images = [], []
    for plot_id, paths in definitions.items():
        files = [f for p in paths for f in files_under(p, base) if changed(f, base)]
        images += [f for f in files if Path(f).suffix.lower() in IMAGE_SUFFIXES and Path(f).is_file()]
        if files and not all(Path(f).suffix.lower() in IMAGE_SUFFIXES for f in files):
            lines.append(f"- {plot_id}: {', '.join(f'`{f}`' for f in files)}")
    if not lines and not images:
        return "No plot changed."
    if not images:
        return "\n".join(lines)
    if not embed_images:  # paths only: the images stay where they are (the workflow's artifact)
        listed = "\n".join(f"- `{file}`" for file in images)
        where = f"in the workflow's `{IMAGES_ARTIFACT}` artifact"
        shown = [f"Changed images ({len(images)}), {where}:\n\n{listed}"]
    else:  # folded: a comment full of figures buries the tables
        shown = [f"<details><summary>Changed images ({len(images)})</summary>"]
        shown += [f"#### {file}\n\n![{file}]({file})" for file in images] + ["</details>"]
    return "\n\n".join(["\n".join(lines), *shown]).strip()


def paired_section(base: str) -> str:
    """McNemar's exact test of the base's test outcomes against the workspace's, as one paragraph."""
    test = compare_revisions(base, WORKSPACE)
    if isinstance(test, str):
        return f"Paired test: none ({test})."
    return "Paired test: " + verdict(test, "the base", "this pull request")


def build_report(base: str, title: str, note: str = "", embed_images: bool = False) -> str:
    """The whole comment: metrics diff with the paired test, params diff and changed plots against `base`."""
    metrics = dvc_markdown("metrics", "diff", base) or "No metric changed."
    params = dvc_markdown("params", "diff", base) or "No param changed."
    definitions = plot_definitions(yaml.safe_load(Path("dvc.yaml").read_text()) or {})
    parts = [f"## {title}", note, "### Metrics", metrics, paired_section(base), "### Params", params]
    parts += ["### Plots", plots_section(definitions, base, embed_images)]
    return "\n\n".join(part for part in parts if part) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="revision to compare the workspace with")
    parser.add_argument("--title", help="heading of the report (default: Pipeline results against BASE)")
    parser.add_argument("--note", default="", help="a paragraph under the heading (e.g. the configuration)")
    parser.add_argument(
        "--embed-images",
        action="store_true",
        help="embed changed images (for `cml comment --publish`, which uploads them to a public host: "
        "synthetic or public images only); default: list their paths",
    )
    args = parser.parse_args()
    if not Path("dvc.yaml").exists():
        sys.exit("pr_report: run from the project root (where dvc.yaml is)")
    if run("git", "rev-parse", "--verify", "--quiet", f"{args.base}^{{commit}}").returncode != 0:
        sys.exit(
            f"pr_report: unknown revision {args.base!r} (fetch it first, e.g. git fetch origin main:main)"
        )
    title = args.title or f"Pipeline results against {args.base}"
    print(build_report(args.base, title, args.note, args.embed_images), end="")


if __name__ == "__main__":
    main()
