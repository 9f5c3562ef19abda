"""`bloodcells serve MODELS`: a local page to try a model on one's own cell images.

FastAPI answers two routes: GET / (the page) and POST / (the page again, with one result card per
uploaded image: predicted class, a bar per class's probability, the Grad-CAM overlay). Everything
is in the HTML the server writes, CSS inline and overlays as data: URIs, so the page needs no
network; the only script makes the drop zone submit the form. The model is loaded once, at start-up.
FastAPI is imported at module level: it reads the route's (string) annotations from these globals.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, UploadFile
from fastapi.responses import HTMLResponse

from bloodcells.data.decode import UnreadableImage
from bloodcells.inference.predictor import Predictor, overlay_png
from bloodcells.inference.preprocessing import decode_image_bytes

MAX_FILES = 64  # per request: the page is for trying a model, `predict` is for batches
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bloodcells: try the model</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }}
h1 {{ font-size: 1.4em; margin-bottom: .2em; }} .meta {{ color: #666; font-size: .9em; }}
#drop {{ border: 2px dashed #888; border-radius: 8px; padding: 2em; text-align: center; margin: 1em 0;
        background: #fafafa; }} #drop.over {{ background: #e8f0ff; border-color: #36c; }}
.results {{ display: flex; flex-wrap: wrap; gap: 1em; }}
.card {{ border: 1px solid #ddd; border-radius: 8px; padding: 1em; width: 520px; display: flex; gap: 1em; }}
.card .info {{ flex: 1; min-width: 0; }} .pics {{ display: flex; flex-direction: column; gap: 6px; }}
.pics img {{ width: 128px; height: 128px; border-radius: 4px; }}
.pics span {{ font-size: .7em; color: #666; }}
.name {{ font-size: .8em; color: #666; word-break: break-all; }}
.predicted {{ font-size: 1.15em; font-weight: 600; margin: .2em 0 .5em; }}
.bar {{ display: grid; grid-template-columns: 120px 1fr 44px; align-items: center; gap: 4px;
        font-size: .78em; margin: 2px 0; }}
.track {{ background: #eee; height: 12px; border-radius: 3px; }}
.fill {{ background: #8aa; height: 12px; border-radius: 3px; }} .top .fill {{ background: #c33; }}
.error {{ color: #b00; }}
</style></head>
<body>
<h1>Try the model</h1>
<div class="meta">{meta}</div>
<form id="upload" method="post" enctype="multipart/form-data">
<div id="drop">Drop cell images here, or <input id="files" type="file" name="files" multiple accept="image/*">
<button type="submit">Classify</button></div>
</form>
<div class="results">{results}</div>
<script>
const form = document.getElementById("upload"), drop = document.getElementById("drop"),
      input = document.getElementById("files");
input.addEventListener("change", () => {{ if (input.files.length) form.submit(); }});
drop.addEventListener("dragover", e => {{ e.preventDefault(); drop.classList.add("over"); }});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => {{
  e.preventDefault(); input.files = e.dataTransfer.files; form.submit();
}});
</script>
</body></html>
"""


def bars_html(probs: np.ndarray, classes: list[str]) -> str:
    """One bar per class, its width the class's probability; the predicted class highlighted."""
    best = int(probs.argmax())
    rows = []
    for i, (name, p) in enumerate(zip(classes, probs, strict=True)):
        short = html.escape(name.split("(")[0].strip())
        rows.append(
            f'<div class="bar{" top" if i == best else ""}" title="{html.escape(name)}"><span>{short}</span>'
            f'<div class="track"><div class="fill" style="width:{100 * float(p):.1f}%"></div></div>'
            f"<span>{float(p):.3f}</span></div>"
        )
    return "".join(rows)


def png_uri(png: bytes) -> str:
    """A PNG as a data: URI, so the page needs no second request."""
    return f"data:image/png;base64,{base64.b64encode(png).decode()}"


def result_html(name: str, probs: np.ndarray, model_input: bytes, overlay: bytes, classes: list[str]) -> str:
    """One image's card: what the model saw and the Grad-CAM overlay, name, predicted class, the bars."""
    best = int(probs.argmax())
    return (
        f'<div class="card result"><div class="pics"><img class="input" alt="model input" '
        f'src="{png_uri(model_input)}"><img class="gradcam" alt="Grad-CAM overlay" src="{png_uri(overlay)}">'
        "<span>model input / Grad-CAM</span></div>"
        f'<div class="info"><div class="name">{html.escape(name)}</div>'
        f'<div class="predicted">{html.escape(classes[best])} '
        f'<span class="meta">{float(probs[best]):.1%}</span></div>'
        f"{bars_html(probs, classes)}</div></div>"
    )


def error_html(name: str, reason: str) -> str:
    """A card for a file that is not an image: skipped, with the reason."""
    return f'<div class="card"><div><div class="name">{html.escape(name)}</div>' \
           f'<div class="error">skipped: {html.escape(reason)}</div></div></div>'


def classify_uploads(predictor: Predictor, uploads: list[tuple[str, bytes]]) -> str:
    """HTML of every upload's result card, in upload order (bad files as error cards)."""
    cards: list[str | None] = []
    good: list[tuple[int, str, np.ndarray]] = []
    for name, data in uploads[:MAX_FILES]:
        try:
            good.append((len(cards), name, decode_image_bytes(data, predictor.recipe)))
            cards.append(None)
        except UnreadableImage as error:
            cards.append(error_html(name, str(error)))
    if len(uploads) > MAX_FILES:
        more = len(uploads) - MAX_FILES
        cards.append(error_html(f"{more} more file(s)", f"at most {MAX_FILES} per upload"))
    if good:
        images = predictor.prepare(np.stack([image for _, _, image in good]))
        probs = predictor.probabilities(images)
        heat = predictor.heatmaps(images, probs.argmax(axis=1))
        for (slot, name, _), image, p, h in zip(good, images, probs, heat, strict=True):
            pictures = overlay_png(image, None), overlay_png(image, h)
            cards[slot] = result_html(name, p, *pictures, predictor.classes)
    return "".join(card or "" for card in cards)


def page(predictor: Predictor, results: str = "") -> str:
    """The whole page: what the model is, the drop zone, and any results."""
    card = predictor.card
    meta = html.escape(
        f"{card.get('model')} at {predictor.size} px, {len(predictor.classes)} classes, "
        f"from {predictor.folder}; "
        "images are cropped and resized as in training. Research use only: not a diagnostic device."
    )
    return PAGE.format(meta=meta, results=results)


def create_app(model_dir: str | Path):
    """The FastAPI application, with the model loaded once."""
    predictor = Predictor(model_dir)
    predictor.probabilities(np.zeros((1, predictor.size, predictor.size, 3), np.uint8))  # warm up
    app = FastAPI(title="bloodcells", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.predictor = predictor

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page(predictor)

    @app.post("/", response_class=HTMLResponse)
    async def classify(files: Annotated[list[UploadFile], File()]) -> str:
        uploads = [(file.filename or "upload", await file.read()) for file in files]
        return page(predictor, classify_uploads(predictor, uploads))

    return app


def serve(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Load the model and serve the page until Ctrl-C."""
    import uvicorn

    app = create_app(model_dir)
    print(f"bloodcells serve: http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
