"""A trained model loaded once, with its card: class probabilities in batches, TTA, Grad-CAM overlays.

`Predictor(folder)` reads `model.keras` and `model.json` from a folder the pipeline wrote (models/, or
models/export/). The card says how images must be decoded (bloodcells.model.card), which transforms
the training arrays went through after decoding (cell crop, stain normalisation: `prepare`), and,
when the model was calibrated, the temperature that divides its log-probabilities. Keras is imported
only once a model is loaded: `predict` decodes its inputs first, in processes forked without it.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from bloodcells.data.decode import Recipe
from bloodcells.data.prepare import prepare
from bloodcells.model.card import MODEL_NAME, input_side, read_card, recipe_from_card
from bloodcells.model.load import load_model
from bloodcells.model.temperature import apply_temperature
from bloodcells.model.tta import BATCH_SIZE, predict_probabilities

OVERLAY_SIDE = 224  # Grad-CAM overlays are drawn at this side: a 28 px image is too small to see


class Predictor:
    """One model, loaded once; every call reuses it."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ValueError(f"{self.folder}: not a folder (give the one holding model.keras and model.json)")
        self.card = read_card(self.folder)
        self.classes: list[str] = list(self.card["classes"])
        self.recipe: Recipe = recipe_from_card(self.card)  # how files are decoded, before `prepare`
        self.size: int = input_side(self.card)
        self.temperature = float(self.card.get("temperature") or 1.0)
        self.model = load_model(self.folder / MODEL_NAME)
        self._gradcam_layer: str | None = None

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """Images decoded with `recipe`, as the training arrays were made: the card's cell crop and
        stain normalisation, at the model's side."""
        prepared, _ = prepare(images, self.card, self.size)
        return prepared

    def adapt(self, images: np.ndarray, seed: int = 0) -> int:
        """Re-estimate BatchNorm statistics on prepared `images` (label-free); the batches used."""
        from bloodcells.model.batchnorm import adapt_batchnorm

        return adapt_batchnorm(self.model, images, seed)

    def probabilities(
        self, images: np.ndarray, batch_size: int = BATCH_SIZE, tta: int = 1, progress: bool = False
    ) -> np.ndarray:
        """Class probabilities (N, n_classes), averaged over `tta` dihedral views (1-8, the schema's
        TtaViews, checked where the value is read), temperature applied."""
        if images.shape[1:] != (self.size, self.size, 3):
            expected = (self.size, self.size, 3)
            raise ValueError(f"images of shape {images.shape[1:]}, the model needs {expected}")
        probs = predict_probabilities(self.model, images, batch_size, tta, progress)
        return apply_temperature(probs, self.temperature)

    def gradcam_layer(self) -> str:
        """The convolution Grad-CAM explains (the deepest one), or why there is none."""
        from bloodcells.model.gradcam import last_conv_layer

        if self._gradcam_layer is None:
            self._gradcam_layer = last_conv_layer(self.model)
            if self._gradcam_layer is None:
                raise ValueError(f"{self.card.get('model')}: no top-level Conv2D layer, so no Grad-CAM")
        return self._gradcam_layer

    def heatmaps(self, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Grad-CAM heat-maps (N, H, W) in [0, 1] for the class given for each image."""
        from bloodcells.model.gradcam import gradcam

        return gradcam(self.model, images, classes, self.gradcam_layer())


def overlay_png(image: np.ndarray, heat: np.ndarray | None, side: int = OVERLAY_SIDE) -> bytes:
    """PNG of `image` enlarged, with its heat-map blended on top (jet colours, red = most influential)."""
    from matplotlib import colormaps
    from PIL import Image

    picture = Image.fromarray(image).resize((side, side), Image.Resampling.NEAREST)
    if heat is None:
        return png_bytes(picture)
    heat_image = Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8)).resize(
        (side, side), Image.Resampling.BILINEAR
    )
    colours = (colormaps["jet"](np.asarray(heat_image) / 255.0)[..., :3] * 255).astype(np.uint8)
    return png_bytes(Image.blend(picture.convert("RGB"), Image.fromarray(colours), alpha=0.45))


def png_bytes(picture) -> bytes:
    """A PIL image encoded as PNG."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
