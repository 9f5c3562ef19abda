"""Another lab's slides: each lever trained on PBC, scored on LISC (never trained on), alone and combined.

Each variant is params.yaml with a few `-S`-style overrides (VARIANTS). It preprocesses the real PBC
rebuild at `train.size` as the preprocess stage does (cell crop, then stain normalisation: the
stage's own functions), trains for `--epochs`, and scores (a) the in-domain test split and (b) the
LISC folder exactly as `bloodcells validate` does (the same loader, decoding, `prepare` and
metrics with 95% bootstrap intervals), then (c) LISC again after label-free BatchNorm adaptation
(`validate --adapt`). McNemar's exact test pairs each variant with the first one on LISC's images.

    python -m scripts.bench cross-lab --epochs 8 [--variants baseline,cell_crop] [--out results.json]
    python -m scripts.bench cross-lab --paired results.json more.json   # McNemar of every pair of rows

Prints one Markdown table and the machine; nothing is asserted. LISC labels only score. `--paired`
trains nothing: it pairs the per-image LISC outcomes that earlier runs wrote with `--out`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from scripts.bench.common import (
    PROJECT,
    machine_lines,
    markdown_table,
    read_config,
    real_splits,
    recipe_params,
)

LISC = PROJECT.parent / "shared" / "data" / "lisc-external"
LISC_CLASSES = {
    "Baoso": "basophil", "eosi": "eosinophil", "lymp": "lymphocyte", "mono": "monocyte", "neut": "neutrophil",
}
STAIN_AUGMENT = {
    "augment.hed_jitter": True, "augment.hed_jitter_strength": 0.3, "augment.color_jitter": True,
    "augment.color_jitter_strength": 0.1, "augment.gamma": True, "augment.blur": True,
}
GENTLE_STAIN_AUGMENT = {
    **STAIN_AUGMENT, "augment.hed_jitter_strength": 0.15, "augment.color_jitter_strength": 0.05,
}
HUE = {"augment.hue": True, "augment.saturation": True}  # at params.yaml's hue_shift and saturation_range
COLOUR_AUGMENT = STAIN_AUGMENT | HUE
CELL_CROP = {"preprocess.cell_crop": 0.65}  # PBC's median box share: near the identity on PBC
MACENKO = {"preprocess.stain_normalization": "macenko"}
REINHARD = {"preprocess.stain_normalization": "reinhard"}
ZOOM = {"augment.zoom": True}
AT_64 = {"train.size": 64, "models.skip.stem_stride": 2}
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "cell_crop": CELL_CROP,
    "macenko": MACENKO,
    "reinhard": REINHARD,
    "zoom": ZOOM,
    "stain_augment": STAIN_AUGMENT,
    "cell_crop+stain_augment": CELL_CROP | STAIN_AUGMENT,
    "cell_crop+gentle_stain_augment": CELL_CROP | GENTLE_STAIN_AUGMENT,
    "cell_crop+colour_augment": CELL_CROP | COLOUR_AUGMENT,
    "cell_crop+colour_augment+grayscale": CELL_CROP | COLOUR_AUGMENT | {"augment.grayscale": True},
    "colour_augment": COLOUR_AUGMENT,
    "cell_crop+colour_augment@64": read_config(PROJECT / "configs" / "cross_lab.yaml"),  # the chosen recipe
    "cell_crop+macenko": CELL_CROP | MACENKO,
    "cell_crop+macenko+stain_augment": CELL_CROP | MACENKO | STAIN_AUGMENT,
    "cell_crop+macenko+stain_augment@64": CELL_CROP | MACENKO | STAIN_AUGMENT | AT_64,
}


def run_variant(name: str, epochs: int, work: Path) -> dict[str, Any]:
    """Preprocess, train, and score one variant in-domain and on LISC (plain, then adapted)."""
    import keras

    from bloodcells.architectures import create_model
    from bloodcells.core.params import model_hparams
    from bloodcells.data.class_weights import compute_class_weights
    from bloodcells.data.download import MEDMNIST_DECODING
    from bloodcells.data.medmnist import class_names
    from bloodcells.data.preprocess import crop_cells, normalize_stains
    from bloodcells.evaluation.external import load_external, score_external
    from bloodcells.model.batchnorm import adapt_batchnorm
    from bloodcells.model.tta import predict_probabilities
    from bloodcells.training.loop import train_resumable

    params = recipe_params(None, {**VARIANTS[name], "train.epochs": epochs})
    size = params.train.size
    splits, crop = crop_cells(real_splits(size), params.preprocess.cell_crop)
    splits, stain = normalize_stains(splits, params.preprocess.stain_normalization)
    classes = class_names("bloodmnist")
    card = {
        "classes": classes,
        "input_shape": [size, size, 3],
        "decoding": MEDMNIST_DECODING["bloodmnist"],
        "cell_crop": crop,
        "stain_normalization": stain,
    }
    keras.utils.set_random_seed(params.seed)
    model = create_model(params.model, (size, size, 3), len(classes), params.augment, model_hparams(params))
    weights = compute_class_weights(splits["train"].labels, len(classes), params.class_weights.method)
    start = time.perf_counter()
    with contextlib.chdir(work):  # the loop writes its curves and checkpoints under the working folder
        train_resumable(
            model, splits["train"], splits["val"], params.train, dict(enumerate(weights)), params.seed,
            work / name, jit_compile=params.runtime.jit_compile,
        )
    seconds = time.perf_counter() - start
    views = params.evaluate.tta_views
    test = splits["test"]
    test_scores = predict_probabilities(model, test.images, 256, views)
    in_domain = float((test_scores.argmax(axis=1) == test.labels).mean())
    lisc = load_external(LISC, LISC_CLASSES, card)
    scored = {}
    for adapted in (False, True):
        if adapted:
            adapt_batchnorm(model, lisc["images"], params.seed)
        full = predict_probabilities(model, lisc["images"], 256, views)
        scored[adapted] = score_external(full, lisc, classes, params.evaluate, params.seed)
    return {
        "name": name,
        "overrides": VARIANTS[name],
        "size": size,
        "epochs": epochs,
        "train_seconds": round(seconds),
        "in_domain_test_accuracy": in_domain,
        "lisc": scored[False]["metrics"],
        "lisc_adapted": scored[True]["metrics"],
        "lisc_correct": (scored[False]["scores"].argmax(1) == scored[False]["y_true"]).tolist(),
        "lisc_adapted_correct": (scored[True]["scores"].argmax(1) == scored[True]["y_true"]).tolist(),
        "cell_crop_outcomes": lisc["cell_crop_outcomes"],
    }


def interval(metrics: dict[str, Any], key: str, percent: bool = True) -> str:
    """'value [low, high]' of one metric, as the table shows it."""
    low, high = metrics["intervals_95"][key]
    if percent:
        return f"{metrics[key]:.1%} [{low:.1%}, {high:.1%}]"
    return f"{metrics[key]:.3f} [{low:.3f}, {high:.3f}]"


def table(results: list[dict[str, Any]]) -> str:
    """The cross-lab table: LISC plain and adapted, in-domain test, McNemar against the first row."""
    from scripts.paired import mcnemar_exact

    first = np.asarray(results[0]["lisc_correct"])
    rows = []
    for result in results:
        plain, adapted = result["lisc"], result["lisc_adapted"]
        test = mcnemar_exact(np.asarray(result["lisc_correct"]), first)
        rows.append([
            result["name"], f"{result['size']} px", f"{result['in_domain_test_accuracy']:.2%}",
            interval(plain, "accuracy"), interval(plain, "balanced_accuracy"),
            interval(plain, "macro_f1", percent=False), f"{plain['outside_mapped_classes']:.1%}",
            interval(adapted, "accuracy"), interval(adapted, "macro_f1", percent=False),
            f"{test['a_only']}/{test['b_only']}, p={test['p_value']:.2g}", f"{result['train_seconds']} s",
        ])
    header = [
        "variant", "size", "PBC test", "LISC accuracy", "LISC balanced", "LISC macro-F1", "outside 5",
        "adapted accuracy", "adapted macro-F1", f"vs {results[0]['name']} (McNemar)", "train",
    ]
    return markdown_table(header, rows)


def paired_tables(files: list[Path]) -> str:
    """McNemar's test on LISC between every two rows of `--out` files, and each row adapted against plain."""
    from scripts.paired import mcnemar_exact

    results = [result for path in files for result in json.loads(path.read_text())]
    label = [f"{r['name']} ({r['epochs']} epochs)" for r in results]
    correct = [np.asarray(r["lisc_correct"]) for r in results]
    rows = []
    for i in range(len(results)):
        for j in range(i + 1, len(results)):
            test = mcnemar_exact(correct[i], correct[j])
            counts = [str(test["a_only"]), str(test["b_only"]), f"{test['p_value']:.2g}"]
            rows.append([label[i], label[j], *counts])
    for i, result in enumerate(results):
        test = mcnemar_exact(np.asarray(result["lisc_adapted_correct"]), correct[i])
        rows.append([f"{label[i]}, adapted", "the same, plain", str(test["a_only"]), str(test["b_only"]),
                     f"{test['p_value']:.2g}"])
    return markdown_table(["A", "B", "only A right", "only B right", "p"], rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated; the first is the reference"
    )
    parser.add_argument("--out", type=Path, help="also write every result (JSON) here, after each variant")
    parser.add_argument("--paired", type=Path, nargs="+", help="pair the rows of --out files; no training")


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    unknown = [name for name in args.variants.split(",") if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    missing = [str(path) for path in args.paired or [] if not path.is_file()]
    if missing:
        parser.error(f"--paired: no such file {', '.join(missing)} (write one with --out)")
    if args.epochs < 1:
        parser.error("--epochs must be 1 or more")
    if not args.paired and not LISC.is_dir():
        parser.error(f"needs LISC at {LISC} (see ../shared/data/README.md)")


def run(args: argparse.Namespace) -> None:
    if args.paired:
        print(paired_tables(args.paired))
        return
    results = []
    with tempfile.TemporaryDirectory() as work:
        for name in args.variants.split(","):
            results.append(run_variant(name, args.epochs, Path(work)))
            done = results[-1]
            print(
                f"{name}: PBC test {done['in_domain_test_accuracy']:.2%}, "
                f"LISC {done['lisc']['accuracy']:.2%} "
                f"(adapted {done['lisc_adapted']['accuracy']:.2%})",
                flush=True,
            )
            if args.out:
                args.out.write_text(json.dumps(results, indent=1))
    print(f"\n{results[0]['epochs']} epochs each, seed from params.yaml; LISC: {LISC} (5 mapped classes)\n")
    print(table(results))
    print("\n".join(machine_lines()))
