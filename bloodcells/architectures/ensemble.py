"""`train.ensemble`: one model whose output averages its members' class probabilities.

The train stage builds it; evaluate judges it like any model, and each member alone; export
writes it whole. The members are nested models named member0, member1, ... in seed order.
"""

from __future__ import annotations

import keras

MEMBER_PREFIX = "member"


def average_ensemble(members: list[keras.Model], shape: tuple[int, ...], name: str) -> keras.Model:
    """One model whose output is the mean of its members' class probabilities (evaluated like any model)."""
    images = keras.Input(shape=shape, dtype="uint8", name="images")
    for index, member in enumerate(members):
        member.name = f"{MEMBER_PREFIX}{index}"  # distinct names: a functional model refuses duplicates
    mean = keras.layers.Average(name="mean_probabilities", dtype="float32")([m(images) for m in members])
    return keras.Model(images, mean, name=name)


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The members of an `average_ensemble` model, in seed order; none for any other model."""
    return [layer for layer in model.layers if layer.name.startswith(MEMBER_PREFIX)]
