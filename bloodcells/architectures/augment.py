"""Training-time augmentation as Keras layers inside the model, active in training only.

Being layers, augmentation runs on whatever backend and device the model does (no per-image
Python, no ImageDataGenerator), is saved with the model and switches itself off at inference.
Rotations by 90 degrees and flips are exact symmetries of a cell image: a cell has no "up".
Crop-zoom (a little scale change), zoom in/out (another microscope's magnification), RGB colour
jitter and haematoxylin-eosin-DAB stain jitter (stain differences between labs), gamma (another
camera's response), blur (another microscope's focus), and Keras's own hue, saturation and greyscale
layers (another stain's colour) are off by default; every switch is in the
`augment` params group. Custom layers use keras.ops and
keras.random only, so they run on any backend.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops
from skimage.color import hed_from_rgb, rgb_from_hed

from bloodcells.core.params import AugmentParams


class SeededAugmentation(layers.Layer):
    """What every augmentation layer shares: a seeded generator, the identity outside training,
    the input's shape, and a config holding `seed` and the layer's `settings`.

    Settings are taken as given: their ranges are checked once, where params are typed (AugmentParams).
    """

    settings: tuple[str, ...] = ()  # constructor arguments saved in the config besides `seed`

    def __init__(self, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        return self.augment(images) if training else images

    def augment(self, images):
        """The random transformation of a batch, in training."""
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        settings = {name: getattr(self, name) for name in self.settings}
        return {**super().get_config(), **settings, "seed": self.seed}


@keras.saving.register_keras_serializable(package="bloodcells")
class RandomRot90(SeededAugmentation):
    """Rotate each square image by a random multiple of 90 degrees (training only)."""

    def augment(self, images):
        quarter_turns = keras.random.randint((ops.shape(images)[0], 1, 1, 1), 0, 4, seed=self.seed_generator)
        turned = images
        result = images
        for k in range(1, 4):
            # one quarter turn counter-clockwise: transpose H and W, then flip rows
            turned = ops.flip(ops.transpose(turned, (0, 2, 1, 3)), axis=1)
            result = ops.where(quarter_turns == k, turned, result)
        return result


@keras.saving.register_keras_serializable(package="bloodcells")
class RandomCropZoom(SeededAugmentation):
    """Crop a random window of `min_area`..100% of each image's area, resized back (training only).

    One affine transform per image: output pixel (x, y) samples the input at
    (scale * x + x0, scale * y + y0), with scale = sqrt(area fraction) and the window inside the image.
    """

    settings = ("min_area",)

    def __init__(self, min_area: float = 0.9, seed: int | None = None, **kwargs) -> None:
        super().__init__(seed=seed, **kwargs)
        self.min_area = min_area

    def augment(self, images):
        batch = ops.shape(images)[0]
        height, width = images.shape[1], images.shape[2]
        area = keras.random.uniform((batch, 1), self.min_area, 1.0, seed=self.seed_generator)
        scale = ops.sqrt(area)  # (N, 1): window side / image side
        corner = keras.random.uniform((batch, 2), seed=self.seed_generator) * (1.0 - scale)
        x0, y0 = corner[:, :1] * (width - 1), corner[:, 1:] * (height - 1)
        zero = ops.zeros_like(scale)
        transform = ops.concatenate([scale, zero, x0, zero, scale, y0, zero, zero], axis=1)  # (N, 8)
        return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="nearest")


@keras.saving.register_keras_serializable(package="bloodcells")
class RandomStainJitter(SeededAugmentation):
    """Multiply each colour channel by a gain in [1 - s, 1 + s], add a shift in [-s, s] (training only).

    Per-image, per-channel gains mimic the stain-intensity differences between slides and labs;
    expects images scaled to [0, 1] and keeps them there.
    """

    settings = ("strength",)

    def __init__(self, strength: float = 0.05, seed: int | None = None, **kwargs) -> None:
        super().__init__(seed=seed, **kwargs)
        self.strength = strength

    def augment(self, images):
        batch, channels = ops.shape(images)[0], images.shape[-1]
        s = self.strength
        gains = keras.random.uniform((batch, 1, 1, channels), 1.0 - s, 1.0 + s, seed=self.seed_generator)
        shift = keras.random.uniform((batch, 1, 1, 1), -s, s, seed=self.seed_generator)
        return ops.clip(images * gains + shift, 0.0, 1.0)


@keras.saving.register_keras_serializable(package="bloodcells")
class RandomZoom(SeededAugmentation):
    """Zoom each image in or out about its centre by a factor in [1/(1+r), 1+r] (training only).

    A lab's microscope or camera magnifies differently: cells look larger or smaller. The factor is
    drawn uniformly in log scale, so zooming in and out are equally likely; zooming out fills the
    border by reflection (plasma around the cell, never a black frame).
    """

    settings = ("zoom_range",)

    def __init__(self, zoom_range: float = 0.15, seed: int | None = None, **kwargs) -> None:
        super().__init__(seed=seed, **kwargs)
        self.zoom_range = zoom_range

    def augment(self, images):
        batch = ops.shape(images)[0]
        height, width = images.shape[1], images.shape[2]
        limit = math.log1p(self.zoom_range)
        factor = ops.exp(keras.random.uniform((batch, 1), -limit, limit, seed=self.seed_generator))
        step = 1.0 / factor  # input pixels per output pixel: < 1 zooms in
        zero = ops.zeros_like(step)
        x0, y0 = (1.0 - step) * (width - 1) / 2, (1.0 - step) * (height - 1) / 2  # the centre stays put
        transform = ops.concatenate([step, zero, x0, zero, step, y0, zero, zero], axis=1)  # (N, 8)
        return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="reflect")


# skimage.color's stain matrices (rgb2hed / hed2rgb) and its log scaling: optical densities in [0, 1]
HED_FROM_RGB = [[float(v) for v in row] for row in hed_from_rgb]
RGB_FROM_HED = [[float(v) for v in row] for row in rgb_from_hed]
LOG_ADJUST = math.log(1e-6)


@keras.saving.register_keras_serializable(package="bloodcells")
class RandomHEDJitter(SeededAugmentation):
    """Jitter each image's haematoxylin, eosin and DAB densities: h' = h * a + b (training only).

    The colour is split into stain densities with skimage.color.rgb2hed's maths (Ruifrok-Johnston
    vectors), each stain's density is scaled by a in [1 - s, 1 + s] and shifted by b in [-s, s] / 50
    per image (Tellez et al.'s HED augmentation, with a small shift: a shift stains the unstained
    background too), and recombined as hed2rgb does. Unlike the
    RGB gains of RandomStainJitter this changes a stain's amount, the way slides and labs differ.
    Expects images in [0, 1] and keeps them there; s = 0 is the identity.
    """

    settings = ("strength",)

    def __init__(self, strength: float = 0.05, seed: int | None = None, **kwargs) -> None:
        super().__init__(seed=seed, **kwargs)
        self.strength = strength

    def augment(self, images):
        dtype = images.dtype
        x = ops.cast(images, "float32")
        s, batch = self.strength, ops.shape(x)[0]
        density = ops.matmul(ops.log(ops.maximum(x, 1e-6)) / LOG_ADJUST, ops.convert_to_tensor(HED_FROM_RGB))
        scale = keras.random.uniform((batch, 1, 1, 3), 1.0 - s, 1.0 + s, seed=self.seed_generator)
        shift = keras.random.uniform((batch, 1, 1, 3), -s / 50, s / 50, seed=self.seed_generator)
        density = density * scale + shift
        rgb = ops.exp(ops.matmul(density * LOG_ADJUST, ops.convert_to_tensor(RGB_FROM_HED)))
        return ops.cast(ops.clip(rgb, 0.0, 1.0), dtype)


@keras.saving.register_keras_serializable(package="bloodcells")
class RandomGamma(SeededAugmentation):
    """Raise each image to a power in [1/(1+r), 1+r], drawn in log scale (training only).

    Another camera's response curve or exposure: mid-tones move, black and white stay. Expects
    images in [0, 1] and keeps them there.
    """

    settings = ("gamma_range",)

    def __init__(self, gamma_range: float = 0.3, seed: int | None = None, **kwargs) -> None:
        super().__init__(seed=seed, **kwargs)
        self.gamma_range = gamma_range

    def augment(self, images):
        limit = math.log1p(self.gamma_range)
        batch = ops.shape(images)[0]
        gamma = ops.exp(keras.random.uniform((batch, 1, 1, 1), -limit, limit, seed=self.seed_generator))
        return ops.power(ops.maximum(images, 1e-6), ops.cast(gamma, images.dtype))


@keras.saving.register_keras_serializable(package="bloodcells")
class RandomBlur(SeededAugmentation):
    """Gaussian blur with a sigma in [0, max_sigma] pixels per image (training only).

    Another microscope's focus and optics: a separable 5-tap kernel whose weights are computed per
    image (sigma 0 is the identity), edges reflected.
    """

    settings = ("max_sigma",)
    radius = 2  # taps each side: enough for sigma up to about 1.5 px

    def __init__(self, max_sigma: float = 1.0, seed: int | None = None, **kwargs) -> None:
        super().__init__(seed=seed, **kwargs)
        self.max_sigma = max_sigma

    def augment(self, images):
        batch = ops.shape(images)[0]
        sigma = keras.random.uniform((batch, 1), 0.0, self.max_sigma, seed=self.seed_generator)
        offsets = ops.cast(ops.arange(-self.radius, self.radius + 1), "float32")[None, :]  # (1, 5)
        weights = ops.exp(-(offsets**2) / (2 * ops.maximum(sigma, 1e-3) ** 2))  # (N, 5)
        weights = ops.cast(weights / ops.sum(weights, axis=1, keepdims=True), images.dtype)
        r, height, width = self.radius, images.shape[1], images.shape[2]
        padded = ops.pad(images, [[0, 0], [r, r], [0, 0], [0, 0]], mode="reflect")
        rows = sum(weights[:, k, None, None, None] * padded[:, k : k + height] for k in range(2 * r + 1))
        padded = ops.pad(rows, [[0, 0], [0, 0], [r, r], [0, 0]], mode="reflect")
        return sum(weights[:, k, None, None, None] * padded[:, :, k : k + width] for k in range(2 * r + 1))


# Every switch off: what a builder given `augment=None` starts from (crop and jitter amounts unused).
NO_AUGMENT = AugmentParams(
    rot90=False, flip=False, crop_zoom=False, crop_min_area=0.9, color_jitter=False,
    color_jitter_strength=0.05, zoom=False, zoom_range=0.15, hed_jitter=False, hed_jitter_strength=0.05,
    gamma=False, gamma_range=0.3, blur=False, blur_sigma=1.0, hue=False, hue_shift=0.2, saturation=False,
    saturation_range=0.5, grayscale=False, grayscale_probability=0.2,
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
    if params.zoom:
        stack.append(RandomZoom(params.zoom_range, seed=seed, name="augment_zoom"))
    if params.color_jitter:
        stack.append(RandomStainJitter(params.color_jitter_strength, seed=seed, name="augment_color_jitter"))
    if params.hed_jitter:
        stack.append(RandomHEDJitter(params.hed_jitter_strength, seed=seed, name="augment_hed_jitter"))
    if params.gamma:
        stack.append(RandomGamma(params.gamma_range, seed=seed, name="augment_gamma"))
    if params.blur:
        stack.append(RandomBlur(params.blur_sigma, seed=seed, name="augment_blur"))
    # Keras's own colour layers: a shift of +-h turns is its factor (0, 2h); a gain k in [1/(1+r), 1+r]
    # on saturation is its factor k / (1 + k)
    if params.hue:
        stack.append(
            layers.RandomHue((0.0, 2 * params.hue_shift), value_range=(0, 1), seed=seed, name="augment_hue")
        )
    if params.saturation:
        r = params.saturation_range
        factor = (1 / (2 + r), (1 + r) / (2 + r))
        stack.append(
            layers.RandomSaturation(factor, value_range=(0, 1), seed=seed, name="augment_saturation")
        )
    if params.grayscale:
        probability = params.grayscale_probability
        stack.append(layers.RandomGrayscale(probability, seed=seed, name="augment_grayscale"))
    return stack
