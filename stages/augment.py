"""Training-time augmentation as Keras layers inside the model, active in training only.

Being layers, augmentation runs on whatever backend and device the model does (no per-image
Python, no ImageDataGenerator), is saved with the model and switches itself off at inference.
Rotations by 90 degrees and flips are exact symmetries of a cell image: a cell has no "up".
"""

from __future__ import annotations

import keras
from keras import layers, ops

from stages.params import AugmentParams


@keras.saving.register_keras_serializable(package="bloodcells")
class RandomRot90(layers.Layer):
    """Rotate each square image by a random multiple of 90 degrees (training only)."""

    def __init__(self, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        quarter_turns = keras.random.randint((ops.shape(images)[0], 1, 1, 1), 0, 4, seed=self.seed_generator)
        turned = images
        result = images
        for k in range(1, 4):
            # one quarter turn counter-clockwise: transpose H and W, then flip rows
            turned = ops.flip(ops.transpose(turned, (0, 2, 1, 3)), axis=1)
            result = ops.where(quarter_turns == k, turned, result)
        return result

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


def augmentation_layers(params: AugmentParams, seed: int | None = None) -> list[layers.Layer]:
    """The augmentation layers `params` switches on, in the order they are applied."""
    stack: list[layers.Layer] = []
    if params.rot90:
        stack.append(RandomRot90(seed=seed, name="augment_rot90"))
    if params.flip:
        stack.append(layers.RandomFlip("horizontal_and_vertical", seed=seed, name="augment_flip"))
    return stack
