"""Print a Markdown table of every registered model: its parameter count at each size and its source.

Each model is built with its params.yaml hyperparameters (`models.<name>`, what
`dvc exp run -S model=<name>` trains) for BloodMNIST's 8 classes; transfer models are built without
downloading weights, which does not change the count. A size a model refuses shows "n/a: <reason>".
Run from the project root: python scripts/model_table.py [--sizes 28 64 128] [--models skip resnet18]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))  # run as a script: make `bloodcells` importable from this checkout

import keras  # noqa: E402

import bloodcells  # noqa: E402, F401  (environment defaults before Keras is imported)
from bloodcells.architectures import create_model, get_builder, list_models, model_source  # noqa: E402
from bloodcells.core.params import read_yaml  # noqa: E402

N_CLASSES = 8
SIZES = (28, 64, 128)


def parameter_cell(name: str, size: int, hparams: dict) -> str:
    """The parameter count of `name` at `size` px, or "n/a: <reason>" when it refuses that size."""
    if "weights" in hparams:
        hparams = {**hparams, "weights": None}  # same count, no download
    try:
        model = create_model(name, (size, size, 3), N_CLASSES, hparams=hparams)
    except ValueError as error:
        return f"n/a: {error}".replace("|", "/")
    count = model.count_params()
    keras.backend.clear_session()  # free the graph before the next build
    return f"{count:,}"


def model_table(names: list[str], sizes: tuple[int, ...], hparams: dict[str, dict]) -> str:
    """Markdown: one row per model with its family, a parameter count per size, and its source."""
    lines = [
        "| model | family | " + " | ".join(f"params @{size} px" for size in sizes) + " | source |",
        "|---|---|" + "---:|" * len(sizes) + "---|",
    ]
    for name in names:
        family = get_builder(name).__module__.rsplit(".", 1)[-1]
        cells = [parameter_cell(name, size, hparams.get(name) or {}) for size in sizes]
        lines.append(f"| `{name}` | {family} | " + " | ".join(cells) + f" | {model_source(name)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="image sides in px")
    parser.add_argument("--models", nargs="+", default=None, help="model names (default: all registered)")
    args = parser.parse_args()
    hparams = read_yaml(PROJECT / "params.yaml").get("models") or {}
    try:
        table = model_table(args.models or list_models(), tuple(args.sizes), hparams)
    except ValueError as error:
        sys.exit(f"model_table failed: {error}")
    print(table)


if __name__ == "__main__":
    main()
