"""Load an HTML page in headless Chromium and report which vega plots on it actually rendered."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=15000",  # let vega-embed finish drawing before the DOM is dumped
)
VOID_TAGS = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


def find_chromium() -> str | None:
    """Path of a Chromium-family browser, or None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def render(browser: str, page: Path) -> tuple[str, list[str]]:
    """The page's DOM after its scripts ran, and the console messages the page logged."""
    result = subprocess.run(
        [browser, *FLAGS, "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True, timeout=180
    )
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return result.stdout, console


class PlotScanner(HTMLParser):
    """For each element with an id, the vega mark roles drawn inside it; and the page's visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str | None]] = []
        self.marks: dict[str, set[str]] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        owners = [element_id for _, element_id in self.stack if element_id]
        if values.get("id"):
            self.marks.setdefault(values["id"], set())
        for owner in owners:
            if tag == "svg" and "marks" in classes:
                self.marks[owner].add("svg")
            self.marks[owner].update(c for c in classes if c.startswith("mark-"))
        if tag not in VOID_TAGS:
            self.stack.append((tag, values.get("id")))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if not any(tag in ("script", "style") for tag, _ in self.stack):
            self.text.append(data)


def scan(dom: str) -> PlotScanner:
    """Parse a dumped DOM."""
    scanner = PlotScanner()
    scanner.feed(dom)
    return scanner
