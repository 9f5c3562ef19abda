"""Training-time augmentation as Keras layers inside the model, active in training only.

Being layers, augmentation runs on whatever backend and device the model does (no per-image
Python, no ImageDataGenerator), is saved with the model and switches itself off at inference.
Rotations by 90 degrees and flips are exact symmetries of a cell image: a cell has no "up".
Crop-zoom (a little scale change) and colour jitter (stain differences between labs) are off by
default; every switch is in the `augment` params group. Custom layers use keras.ops and
keras.random only, so they run on any backend.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from bloodcells.core.params import AugmentParams


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


@keras.saving.register_keras_serializable(package="bloodcells")
class RandomCropZoom(layers.Layer):
    """Crop a random window of `min_area`..100% of each image's area, resized back (training only).

    One affine transform per image: output pixel (x, y) samples the input at
    (scale * x + x0, scale * y + y0), with scale = sqrt(area fraction) and the window inside the image.
    """

    def __init__(self, min_area: float = 0.9, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0.0 < min_area <= 1.0:
            raise ValueError(f"augment.crop_min_area must be in (0, 1], got {min_area}")
        self.min_area = min_area
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        batch = ops.shape(images)[0]
        height, width = images.shape[1], images.shape[2]
        area = keras.random.uniform((batch, 1), self.min_area, 1.0, seed=self.seed_generator)
        scale = ops.sqrt(area)  # (N, 1): window side / image side
        corner = keras.random.uniform((batch, 2), seed=self.seed_generator) * (1.0 - scale)
        x0, y0 = corner[:, :1] * (width - 1), corner[:, 1:] * (height - 1)
        zero = ops.zeros_like(scale)
        transform = ops.concatenate([scale, zero, x0, zero, scale, y0, zero, zero], axis=1)  # (N, 8)
        return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="nearest")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "min_area": self.min_area, "seed": self.seed}


@keras.saving.register_keras_serializable(package="bloodcells")
class RandomStainJitter(layers.Layer):
    """Multiply each colour channel by a gain in [1 - s, 1 + s], add a shift in [-s, s] (training only).

    Per-image, per-channel gains mimic the stain-intensity differences between slides and labs;
    expects images scaled to [0, 1] and keeps them there.
    """

    def __init__(self, strength: float = 0.05, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= strength <= 0.5:
            raise ValueError(f"augment.color_jitter_strength must be in [0, 0.5], got {strength}")
        self.strength = strength
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        batch, channels = ops.shape(images)[0], images.shape[-1]
        s = self.strength
        gains = keras.random.uniform((batch, 1, 1, channels), 1.0 - s, 1.0 + s, seed=self.seed_generator)
        shift = keras.random.uniform((batch, 1, 1, 1), -s, s, seed=self.seed_generator)
        return ops.clip(images * gains + shift, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "strength": self.strength, "seed": self.seed}


# Every switch off: what a builder given `augment=None` starts from (crop and jitter amounts unused).
NO_AUGMENT = AugmentParams(
    rot90=False, flip=False, crop_zoom=False, crop_min_area=0.9, color_jitter=False,
    color_jitter_strength=0.05,
)


def augmentation_layers(params: AugmentParams, seed: int | None = None) -> list[layers.Layer]:
    """The augmentation layers `params` switches on, in the order they are applied."""
    stack: list[layers.Layer] = []
    if params.rot90:
        stack.append(RandomRot90(seed=seed, name="augment_rot90"))
    if params.flip:
        stack.append(layers.RandomFlip("horizontal_and_vertical", seed=seed, name="augment_flip"))
    if params.crop_zoom:
        stack.append(RandomCropZoom(params.crop_min_area, seed=seed, name="augment_crop_zoom"))
    if params.color_jitter:
        stack.append(RandomStainJitter(params.color_jitter_strength, seed=seed, name="augment_color_jitter"))
    return stack
