"""`bloodcells predict`: classify image files, folders or MedMNIST npz files with a trained model.

Writes a CSV (path, predicted class, confidence, one probability column per class) and, on request,
one Grad-CAM overlay PNG per image. Inputs are decoded before the model is loaded: the decoder's
worker processes are forked from a process without TensorFlow's threads.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bloodcells.core.files import atomic_path, write_csv
from bloodcells.inference.predictor import Predictor, overlay_png
from bloodcells.inference.preprocessing import load_inputs, report_skipped
from bloodcells.model.card import CARD_NAME, read_card
from bloodcells.model.tta import BATCH_SIZE

PROGRESS_AFTER = 1024  # images: shorter runs need no progress bar


@dataclass
class Predictions:
    """What one `predict` call produced."""

    rows: list[dict[str, Any]]
    skipped: list[tuple[str, str]]
    seconds: float  # decoding and prediction, model loading excluded


def prediction_rows(names: list[str], probs: np.ndarray, classes: list[str]) -> list[dict[str, Any]]:
    """One CSV row per image: path, predicted class, its probability, then every class's probability."""
    rows = []
    for name, p in zip(names, probs, strict=True):
        best = int(p.argmax())
        row = {"path": name, "predicted": classes[best], "confidence": round(float(p[best]), 6)}
        rows.append(row | {c: round(float(v), 6) for c, v in zip(classes, p, strict=True)})
    return rows


def overlay_name(index: int, name: str) -> str:
    """A file name for image `index`'s overlay that keeps the source's stem recognisable."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name.split(":")[0]).stem)[:60]
    return f"{index:05d}_{stem}.png"


def predict(
    model_dir: Path,
    inputs: list[str],
    out_csv: Path | None = None,
    gradcam_dir: Path | None = None,
    batch_size: int = BATCH_SIZE,
    tta: int = 1,
    progress: bool = True,
    adapt: bool = False,
) -> Predictions:
    """Classify every image under `inputs`; write the CSV (and overlays) when paths are given.

    With `adapt`, the model's BatchNorm statistics are first re-estimated on these images.
    """
    start = time.perf_counter()
    batch = load_inputs(inputs, read_card(model_dir), progress=progress)
    decode_seconds = time.perf_counter() - start
    report_skipped(batch)
    predictor = Predictor(model_dir)
    start = time.perf_counter()
    images = batch.images  # decoded and prepared by load_inputs
    if adapt:
        predictor.adapt(images)
    show_progress = progress and len(batch.names) > PROGRESS_AFTER
    probs = predictor.probabilities(images, batch_size, tta, progress=show_progress)
    rows = prediction_rows(batch.names, probs, predictor.classes)
    seconds = decode_seconds + time.perf_counter() - start
    if out_csv is not None:
        write_csv(out_csv, rows)
    if gradcam_dir is not None and batch.names:
        write_overlays(predictor, images, probs.argmax(axis=1), batch.names, gradcam_dir, batch_size)
    return Predictions(rows=rows, skipped=batch.skipped, seconds=seconds)


def write_overlays(
    predictor: Predictor, images: np.ndarray, classes: np.ndarray, names: list[str], folder: Path, batch: int
) -> None:
    """One Grad-CAM overlay PNG per image, explaining its predicted class."""
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(images), batch):
        chunk = np.asarray(images[start : start + batch])
        heat = predictor.heatmaps(chunk, classes[start : start + batch])
        for offset, (image, cam) in enumerate(zip(chunk, heat, strict=True)):
            index = start + offset
            with atomic_path(folder / overlay_name(index, names[index])) as tmp:
                tmp.write_bytes(overlay_png(image, cam))


def predict_command(args) -> None:
    """The console subcommand: predict, write, and say how it went in a few lines."""
    model_dir = Path(args.model)
    if not (model_dir / CARD_NAME).exists() and (model_dir.parent / CARD_NAME).exists():
        model_dir = model_dir.parent  # `predict models/model.keras ...` means the folder
    result = predict(
        model_dir, args.inputs, Path(args.out), Path(args.gradcam) if args.gradcam else None,
        args.batch_size, args.tta, progress=not args.quiet, adapt=args.adapt,
    )
    n = len(result.rows)
    rate = n / result.seconds if result.seconds > 0 else float("nan")
    print(
        f"{n} image(s) classified, {len(result.skipped)} skipped: {args.out} "
        f"({rate:.0f} images/s decoding + prediction{f', TTA x{args.tta}' if args.tta > 1 else ''})"
    )
    if n == 0:
        sys.exit("bloodcells predict: no image could be classified")
