"""Accuracy on a shifted copy of the test split (another lab's stain, magnification and JPEG), per lever.

Each variant trains the configured model (params.yaml, `model`) on the real 28 px training split for
`--epochs` (a short budget: this ranks the levers, it does not say where each ends), then predicts
the test split and its shifted copy (scripts/bench/shift.py's shifted_copy, deterministic) with
the evaluate stage's test-time augmentation. A stain-normalising variant normalises train, val, test
and the shifted copy with the train split's Reinhard target, as preprocess and prediction would.

    python -m scripts.bench stain-shift --epochs 3 [--variants baseline,hed_jitter,reinhard]

Prints one Markdown table (and the machine it ran on); nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np

from scripts.bench.common import PROJECT, machine_lines, markdown_table, real_splits

PARTS = ("stain", "scale", "jpeg", "all")  # the shifted copies: each part of the shift alone, then all
# name -> (augment overrides, stain normalisation)
VARIANTS = {
    "baseline": ({}, "none"),
    "hed_jitter": ({"hed_jitter": True}, "none"),
    "hed_jitter_0.2": ({"hed_jitter": True, "hed_jitter_strength": 0.2}, "none"),
    "zoom": ({"zoom": True}, "none"),
    "reinhard": ({}, "reinhard"),
    "reinhard+hed_jitter+zoom": ({"hed_jitter": True, "zoom": True}, "reinhard"),
}


def run_variant(name: str, splits: dict, shifted: dict[str, np.ndarray], epochs: int, work: Path) -> dict:
    import keras

    from bloodcells.architectures import create_model
    from bloodcells.core.params import load_params, model_hparams
    from bloodcells.data.class_weights import compute_class_weights
    from bloodcells.data.splits import Split
    from bloodcells.data.stain import apply_stain_normalization, fit_stain_normalization
    from bloodcells.evaluation.metrics import classification_metrics
    from bloodcells.model.tta import predict_probabilities
    from bloodcells.training.loop import train_resumable

    params = load_params(PROJECT / "params.yaml")
    overrides, method = VARIANTS[name]
    augment = params.augment.model_copy(update=overrides)
    train_params = params.train.model_copy(update={"epochs": epochs})
    record = fit_stain_normalization(method, splits["train"].images)
    norm = {s: Split(apply_stain_normalization(d.images, record), d.labels) for s, d in splits.items()}
    keras.utils.set_random_seed(params.seed)
    model = create_model(params.model, norm["train"].images.shape[1:], 8, augment, model_hparams(params))
    weights = dict(enumerate(compute_class_weights(norm["train"].labels, 8, params.class_weights.method)))
    start = time.perf_counter()
    with contextlib.chdir(work):  # the loop writes its curves and checkpoints under the working folder
        train_resumable(
            model, norm["train"], norm["val"], train_params, weights, params.seed, work / name,
            jit_compile=params.runtime.jit_compile,
        )
    seconds = time.perf_counter() - start
    views = params.evaluate.tta_views
    labels = norm["test"].labels
    clean = classification_metrics(labels, predict_probabilities(model, norm["test"].images, 256, views))
    moved = {
        part: classification_metrics(
            labels, predict_probabilities(model, apply_stain_normalization(images, record), 256, views)
        )
        for part, images in shifted.items()
    }
    return {"name": name, "clean": clean, "shifted": moved, "seconds": seconds, "model": params.model}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))


def run(args: argparse.Namespace) -> None:
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    from scripts.bench.shift import Shift, shifted_copy

    splits = real_splits()
    shift = Shift()
    parts = {part: shift.only(part) for part in PARTS[:-1]} | {"all": shift}
    shifted = {part: shifted_copy(splits["test"].images, s) for part, s in parts.items()}
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in names:
            result = run_variant(name, splits, shifted, args.epochs, Path(work))
            rows.append(
                [name, f"{result['clean']['accuracy']:.2%}"]
                + [f"{result['shifted'][part]['accuracy']:.2%}" for part in PARTS]
                + [f"{result['shifted']['all']['macro_f1']:.4f}", f"{result['seconds']:.0f} s"]
            )
            print(" | ".join(rows[-1]), flush=True)
    print(f"\n{result['model']}, {args.epochs} epochs at 28 px, seed from params.yaml; shift: {shift}")
    header = ["variant", "test"] + [f"shifted: {part}" for part in PARTS] + ["all: macro-F1", "train time"]
    print(markdown_table(header, rows))
    print("\n".join(machine_lines()))

