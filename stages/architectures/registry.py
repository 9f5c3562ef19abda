"""The one place that maps a model name (the `model` param) to the function that builds it.

Families register their variants with `@register_model`; the function's name is the key, as in
timm. Every builder has the signature `(input_shape, n_classes, augment=None, **hparams)` and
returns a functional `keras.Model` that takes uint8 images and outputs class probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from stages.params import AugmentParams

Builder = Callable[..., keras.Model]
_REGISTRY: dict[str, Builder] = {}


def register_model(builder: Builder) -> Builder:
    """Register `builder` under its function name; a second builder with the same name is an error."""
    name = builder.__name__
    if name in _REGISTRY:
        raise ValueError(f"Model {name!r} is registered twice")
    _REGISTRY[name] = builder
    return builder


def list_models() -> list[str]:
    """Every registered model name, sorted."""
    return sorted(_REGISTRY)


def get_builder(name: str) -> Builder:
    """The builder registered as `name`, or a ValueError that lists the known names."""
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model {name!r}. Known models: {', '.join(list_models())}")
    return _REGISTRY[name]


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
