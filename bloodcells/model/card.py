"""The model card (model.json beside model.keras): what the train stage recorded for every later user.

It names the classes and input shape, how images were decoded (`decoding`: crop side and resize
filter) and what was done to them after decoding (`cell_crop`, `stain_normalization`, replayed by
bloodcells.data.prepare), and the temperature that calibrates the model's confidences.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bloodcells.data.decode import RESIZE_FILTERS, Recipe
from bloodcells.data.prepare import decode_side

MODEL_NAME = "model.keras"
CARD_NAME = "model.json"
UNKNOWN_DECODING = {"crop": None, "resize_filter": "bicubic"}  # card without `decoding`: largest square


def read_card(folder: Path) -> dict[str, Any]:
    """The card in `folder` (models/ or models/export/), checked for what every user of it needs."""
    path = Path(folder) / CARD_NAME
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(
            f"{path} not found: run `dvc repro train` first (or point at a folder the pipeline wrote)"
        ) from None
    except ValueError as error:
        raise ValueError(f"{path}: not JSON ({error})") from None
    missing = [key for key in ("classes", "input_shape") if key not in card]
    if missing:
        raise ValueError(f"{path}: no {', '.join(missing)} (not a model card of this project)")
    return card


def input_side(card: dict[str, Any]) -> int:
    """The model's input side in pixels (square RGB models only)."""
    height, width, channels = card["input_shape"]
    if height != width or channels != 3:
        raise ValueError(f"model input {card['input_shape']}: only square RGB models are supported")
    return int(height)


def recipe_from_card(card: dict[str, Any]) -> Recipe:
    """How a new image file is decoded: the recorded crop and resize filter, at the side `prepare`
    takes it from (the model's, or finer when the card crops cells: bloodcells.data.prepare)."""
    side = input_side(card)
    decoding = card.get("decoding") or UNKNOWN_DECODING
    resize_filter = decoding.get("resize_filter", "bicubic")
    if resize_filter not in RESIZE_FILTERS:
        raise ValueError(f"model card: unknown resize filter {resize_filter!r}")
    return Recipe(sizes=(decode_side(card, side),), crop=decoding.get("crop"), resize_filter=resize_filter)
