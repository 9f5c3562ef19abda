"""The one place that maps a model name (the `model` param) to the function that builds it.

Families register their variants with `@register_model` (or `@register_model(source=...)`, naming the
report the architecture comes from); the function's name is the key, as in timm. Every builder has the
signature `(input_shape, n_classes, augment=None, **hparams)` and returns a functional `keras.Model`
that takes uint8 images and outputs class probabilities. Default hyperparameters live in params.yaml
under `models.<name>`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from bloodcells.core.params import AugmentParams

Builder = Callable[..., keras.Model]
_REGISTRY: dict[str, Builder] = {}
_SOURCES: dict[str, str] = {}

# Where the architectures come from: the `source` each family gives its registered models.
RESIDUAL_CNN_REPORT = "residual-CNN report (BloodMNIST, Keras)"
FOUR_CLASS_REPORT = "4-class report (Blood Cell Images, 60x80 px)"
OTHER_REPORTS = "other reports (deeper plain CNN)"
MEDMNIST_V2 = "MedMNIST v2 benchmark"
TRANSFER_REPORTS = "transfer learning: 4-class report (head, freezing), MedMNIST+ (padding)"


def register_model(builder: Builder | None = None, *, source: str = "") -> Builder | Callable:
    """Register `builder` under its function name; a second builder with the same name is an error.

    Use bare (`@register_model`) or with the report the architecture comes from
    (`@register_model(source=RESIDUAL_CNN_REPORT)`).
    """

    def register(builder: Builder) -> Builder:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"Model {name!r} is registered twice")
        _REGISTRY[name] = builder
        _SOURCES[name] = source
        return builder

    return register if builder is None else register(builder)


def list_models() -> list[str]:
    """Every registered model name, sorted."""
    return sorted(_REGISTRY)


def get_builder(name: str) -> Builder:
    """The builder registered as `name`, or a ValueError that lists the known names."""
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model {name!r}. Known models: {', '.join(list_models())}")
    return _REGISTRY[name]


def model_source(name: str) -> str:
    """The report model `name` comes from ("" when its family did not say)."""
    get_builder(name)
    return _SOURCES[name]


def create_model(
    name: str,
    input_shape: tuple[int, int, int],
    n_classes: int,
    augment: AugmentParams | None = None,
    hparams: dict[str, Any] | None = None,
) -> keras.Model:
    """Build model `name` with its hyperparameters from params.yaml (`models.<name>`)."""
    builder = get_builder(name)
    try:
        return builder(tuple(input_shape), n_classes, augment=augment, **(hparams or {}))
    except TypeError as error:
        raise ValueError(
            f"Bad hyperparameters for model {name!r} (models.{name} in params.yaml): {error}"
        ) from error
