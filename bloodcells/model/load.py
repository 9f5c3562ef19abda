"""Load a model file of this project: its custom layers registered first, every failure one line."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


def load_model(path: Path) -> keras.Model:
    """The model in `path` (a .keras file the train or export stage wrote), or a ValueError saying why not.

    Loading is in Keras's safe mode: a file holding Python code (a Lambda layer) is refused, not run.
    """
    import keras  # here, not at the top: `predict` forks its decoders before TensorFlow starts

    import bloodcells.architectures  # noqa: F401  (registers the augmentation layers a model may name)

    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} not found: run `dvc repro` (or `dvc pull`) first")
    if not zipfile.is_zipfile(path):  # Keras says "File not found" of a file that is there but cut short
        raise ValueError(
            f"{path}: not a complete .keras archive ({path.stat().st_size} bytes: truncated?); "
            f"rerun the stage that writes it or restore it with `dvc checkout {path}`"
        )
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # Keras raises many types on a bad file
        if "safe_mode" in str(error):
            raise ValueError(
                f"{path}: refused: the file holds Python code (e.g. a Lambda layer) that loading would run; "
                "only models this project's train stage writes are loaded"
            ) from None
        raise ValueError(f"{path}: not a loadable Keras model ({str(error).splitlines()[0]})") from None
