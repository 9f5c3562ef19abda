"""Write the offline page template for `dvc plots show`: vega, vega-lite and vega-embed inlined.

DVC's default page loads the three libraries from a CDN, so its plots stay blank on a machine
without internet. `.dvc/config` points `plots.html_template` at the page this script writes
(.dvc/plots/offline_page.html). The libraries come from the npm registry via `npm pack`, at the
versions and integrity hashes pinned below, so the same command always writes the same bytes.
Run: python scripts/make_plots_page.py [--check]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / ".dvc/plots/offline_page.html"


@dataclass(frozen=True)
class Library:
    """One npm package, pinned: the built browser bundle inside it, and the tarball's integrity."""

    name: str
    version: str
    bundle: str
    integrity: str


# Order matters: vega-lite needs vega, vega-embed needs both.
LIBRARIES = (
    Library(
        "vega",
        "6.4.0",
        "build/vega.min.js",
        "sha512-rHXCq2LpEWCLMjXBEj7hocY9G0/i5TGYRayGGSj06VTF4+l2IG2Z7oeZKCjWbUh/7hTE/mVhbaOPB72wCElh6g==",
    ),
    Library(
        "vega-lite",
        "6.5.0",
        "build/vega-lite.min.js",
        "sha512-fMXF6s0MrIg0UTWnLIfeFtgSLzVhyzSKobzGrh5rhS+mL6FOYFG3m7ouJ4U23gj65EK+gl9FIIT5w7wLNaAzkA==",
    ),
    Library(
        "vega-embed",
        "7.3.0",
        "build/vega-embed.min.js",
        "sha512-wQ8s5GaSzqoKgmRfbRolgBrjE2CP7ZKHXqH7NijxMqPjpdWxSs4Dn8tvp9g0giQvh2cK+3p56sxjWWM0wNngGw==",
    ),
)

# DVC fills {refresh_tag} and {plot_divs}; leaving out {scripts} is what keeps its CDN tags away.
PAGE_TEMPLATE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
{{refresh_tag}}
<title>DVC plots</title>
{scripts}
<style>
body {{ font-family: sans-serif; }}
table {{ border-spacing: 15px; }}
</style>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


def integrity_of(data: bytes) -> str:
    """npm's Subresource-Integrity string (sha512, base64) of a tarball."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def inline_script(library: Library, source: str) -> str:
    """One <script> element holding a library; refuses text that would end the element early."""
    if "</script" in source.lower() or "{plot_divs}" in source or "{refresh_tag}" in source:
        raise ValueError(f"{library.name} {library.version}: bundle contains text the page cannot inline")
    return f"<script>/* {library.name}@{library.version} (BSD-3-Clause) */\n{source}\n</script>"


def build_page(sources: dict[str, str]) -> str:
    """The page template, given each library's bundle text keyed by package name."""
    scripts = "\n".join(inline_script(lib, sources[lib.name]) for lib in LIBRARIES)
    return PAGE_TEMPLATE.format(scripts=scripts)


def fetch_bundles(workdir: Path) -> dict[str, str]:
    """`npm pack` each pinned package into `workdir`, check its integrity, return its bundle text."""
    specs = [f"{lib.name}@{lib.version}" for lib in LIBRARIES]
    try:
        subprocess.run(
            ["npm", "pack", *specs, "--silent", "--pack-destination", str(workdir)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except FileNotFoundError:
        sys.exit("make_plots_page: npm not found; install Node.js (it brings npm) and run again")
    except subprocess.CalledProcessError as error:
        sys.exit(f"make_plots_page: npm pack {' '.join(specs)} failed: {error.stderr.strip()}")
    sources = {}
    for lib in LIBRARIES:
        tarball = workdir / f"{lib.name}-{lib.version}.tgz"
        found = integrity_of(tarball.read_bytes())
        if found != lib.integrity:
            sys.exit(f"make_plots_page: {tarball.name} has integrity {found}, pinned {lib.integrity}")
        with tarfile.open(tarball) as tar:
            member = tar.extractfile(f"package/{lib.bundle}")
            if member is None:
                sys.exit(f"make_plots_page: {tarball.name} has no {lib.bundle}")
            sources[lib.name] = member.read().decode("utf-8")
    return sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page differs from what npm gives")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        page = build_page(fetch_bundles(Path(tmp)))
    if args.check:
        same = PAGE.exists() and PAGE.read_text(encoding="utf-8") == page
        print(f"{PAGE.relative_to(ROOT)}: {'up to date' if same else 'differs from the pinned libraries'}")
        sys.exit(0 if same else 1)
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    tmp_page = PAGE.with_suffix(".tmp")
    tmp_page.write_text(page, encoding="utf-8")
    tmp_page.replace(PAGE)
    versions = ", ".join(f"{lib.name}@{lib.version}" for lib in LIBRARIES)
    print(f"{PAGE.relative_to(ROOT)}: {PAGE.stat().st_size:,} bytes with {versions}")


if __name__ == "__main__":
    main()
