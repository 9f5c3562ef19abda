"""The exported model's card: what it was trained on, how to feed it, how good it is, what it is for.

Written twice by the export stage: model.json for programs (predict and serve read it) and README.md
for people. Everything in it comes from the train stage's card and the evaluate stage's metrics.
"""

from __future__ import annotations

from typing import Any

from bloodcells.data.prepare import decode_side

INTENDED_USE = (
    "Research and teaching: classifying single, centred white-blood-cell, erythroblast and platelet "
    "images from peripheral blood smears (May-Grunwald-Giemsa stain, PBC-style microscopy) into the "
    "classes below. Not a medical device and not validated for diagnosis: a clinician must review every "
    "result. Images from other stains, scanners or magnifications, or showing several cells, are outside "
    "the training distribution and may be misclassified with high confidence."
)
DATA = {
    "bloodmnist": "BloodMNIST (MedMNIST v2; Acevedo et al. 2020, PBC dataset of 17,092 images from the "
    "Hospital Clinic of Barcelona), its official train/val/test split",
}


def preprocessing_text(card: dict[str, Any]) -> str:
    """How an image must be prepared, in words (the same recipe `predict` applies)."""
    height, width, _ = card["input_shape"]
    decoding = card.get("decoding") or {}
    crop = decoding.get("crop")
    cut = f"a centred {crop} x {crop} px square" if crop else "the largest centred square"
    side = decode_side(card, width)
    return (
        f"EXIF orientation applied, converted to 8-bit RGB; {cut} cut out (the largest centred square when "
        f"the image is smaller); resized to {side} x {side} px with the "
        f"{decoding.get('resize_filter', 'bicubic')} filter;{transforms_text(card)} fed as uint8 (0-255): "
        "the model rescales itself."
        + ("" if decoding else " (decoding unknown: the data source recorded none)")
    )


def transforms_text(card: dict[str, Any]) -> str:
    """The per-image transforms after decoding (bloodcells.data.prepare), in words; empty when none."""
    steps = []
    if card.get("cell_crop"):
        fill = card["cell_crop"]["fill"]
        side = card["input_shape"][0]
        box = f"its box {fill:.0%} of the side"
        steps.append(f"a square cut around the stained cell ({box}), resized to {side} x {side} px")
    method = (card.get("stain_normalization") or {}).get("method", "none")
    if method != "none":
        steps.append(f"{method.capitalize()} stain normalisation to the training set's target (in the card)")
    return "".join(f" {step};" for step in steps)


def export_card(
    card: dict[str, Any], metrics: dict[str, Any], files: dict[str, str], dataset: str, source: str
) -> dict[str, Any]:
    """The train card plus what a user of the exported files needs."""
    described = DATA.get(dataset) if source == "medmnist" else None
    return {
        **card,
        "dataset": dataset,
        "data_description": described or f"{dataset}: class-per-folder images (the folder route)",
        "preprocessing": preprocessing_text(card),
        "test_metrics": metrics,
        "intended_use": INTENDED_USE,
        "files": files,
        "temperature": card.get("temperature", 1.0),
    }


def card_markdown(card: dict[str, Any]) -> str:
    """The card as a README for people."""
    metrics = card["test_metrics"]
    lines = [
        f"# Model card: {card.get('model')} at {card['input_shape'][0]} px",
        "",
        f"**Intended use.** {card['intended_use']}",
        "",
        f"**Data.** {card['data_description']}.",
        "",
        "**Classes** (output order): " + ", ".join(f"{i}: {c}" for i, c in enumerate(card["classes"])),
        "",
        f"**Preprocessing.** {card['preprocessing']}",
        "",
        f"**Training.** {card.get('epochs_run')} epoch(s), seed {card.get('seed')}, "
        f"{card.get('parameters', 0):,} parameters; hyperparameters in model.json.",
        "",
        "**Test metrics** (the test split, from the evaluate stage):",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {key} | {value:.4f} |" for key, value in sorted(metrics.items()) if isinstance(value, float)),
        "",
        f"**Calibration.** Probabilities are divided by temperature {card['temperature']} in log space.",
        "",
        "**Files.** " + "; ".join(f"{k}: `{v}`" for k, v in card["files"].items()),
        "",
        "Load the Keras file with plain `keras.saving.load_model(\"model.keras\")` (no project code needed), "
        "or run `bloodcells predict models/export images/` to apply the preprocessing above.",
        "",
    ]
    return "\n".join(lines)
