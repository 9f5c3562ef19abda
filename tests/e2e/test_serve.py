"""`bloodcells serve`: a real server on 127.0.0.1, the page in headless Chromium, a real upload."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.chromium import find_chromium
from tests.conftest import PROJECT, SHARED_DATA, dvc_env
from tests.e2e.cdp import Browser

pytestmark = pytest.mark.slow  # real dvc pipelines on temporary repos

PBC_SAMPLE = SHARED_DATA / "pbc-sample"
START_TIMEOUT = 240  # seconds: TensorFlow's import and the model's first call on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(model_dir: Path):
    """`bloodcells serve model_dir` on a free port of 127.0.0.1, until the block ends."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bloodcells.cli", "serve", str(model_dir), "--port", str(port)],
        cwd=PROJECT, env=dvc_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve exited {process.returncode}:\n{process.stdout.read()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert response.status == 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("serve did not answer in time") from None
                time.sleep(1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def cell_image(tmp_path: Path) -> Path:
    """A real PBC image when the shared sample is there, else a synthetic one."""
    if PBC_SAMPLE.is_dir():
        return sorted(PBC_SAMPLE.glob("*/*.jpg"))[0]
    path = tmp_path / "synthetic_cell.png"
    pixels = np.random.default_rng(0).integers(0, 256, (363, 360, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def try_page(browser_path: str, model_dir: Path, files: list[Path], workdir: Path, screenshot: Path) -> dict:
    """Open the page, pick `files`, wait for the results; what the page shows, and a screenshot."""
    with running_server(model_dir) as url:
        browser = Browser(browser_path, workdir / "chromium-profile", timeout=120)
        try:
            browser.open(url)
            before = browser.evaluate("document.querySelectorAll('.card').length")
            browser.choose_files("#files", files)  # its change event submits the form
            browser.wait_for("Page.loadEventFired", timeout=180)
            shown = browser.evaluate("""(() => ({
                predicted: [...document.querySelectorAll('.result .predicted')]
                           .map(e => e.firstChild.textContent.trim()),
                bars: [...document.querySelectorAll('.result')].map(r => r.querySelectorAll('.bar').length),
                widths: [...document.querySelectorAll('.result')].map(r =>
                        [...r.querySelectorAll('.fill')].map(f => parseFloat(f.style.width))),
                overlays: [...document.querySelectorAll('.result img.gradcam')].map(i => i.naturalWidth),
                errors: [...document.querySelectorAll('.error')].map(e => e.textContent),
                external: [...document.querySelectorAll('[src],[href]')]
                          .map(e => e.getAttribute('src') || e.getAttribute('href'))
                          .filter(u => /^(https?:)?\\/\\//.test(u)),
            }))()""")
            browser.screenshot(screenshot)
        finally:
            browser.close()
    return {"before": before, **shown}


@pytest.fixture(scope="module")
def browser_path() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium installed: the serve page test needs a headless browser")
    return path


def test_page_shows_class_probabilities_and_gradcam(browser_path, reproduced_repo, tmp_path):
    from bloodcells.inference.predictor import Predictor
    from bloodcells.inference.preprocessing import load_inputs

    model_dir = reproduced_repo / "models"
    image = cell_image(tmp_path)
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are my notes, not a cell")
    screenshot = tmp_path / "serve.png"
    shown = try_page(browser_path, model_dir, [image, not_an_image], tmp_path, screenshot)

    predictor = Predictor(model_dir)
    expected = predictor.probabilities(load_inputs([image], predictor.card).images)[0]
    assert shown["before"] == 0
    assert shown["predicted"] == [predictor.classes[int(expected.argmax())]]
    assert shown["bars"] == [len(predictor.classes)]
    np.testing.assert_allclose(shown["widths"][0], 100 * expected, atol=0.06)  # drawn at 0.1 % steps
    assert shown["overlays"] == [224]  # the Grad-CAM overlay image loaded
    assert len(shown["errors"]) == 1 and "not an image" in shown["errors"][0]
    assert shown["external"] == []  # nothing fetched from the network
    assert screenshot.stat().st_size > 10_000
