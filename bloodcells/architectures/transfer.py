"""Transfer learning: keras.applications backbones (ImageNet, local or no weights) with a new head.

From the transfer-learning reports: the 4-class report's head (Flatten-BN-Dense256-Dropout-BN-Dense128-
Dropout-BN-Dense64-Dropout-BN-softmax, L2 on the Dense kernels) and its freezing of everything but
BatchNorm; MedMNIST+'s zero-padding of small images up to the network's input size. Images are scaled
inside the model the way each backbone was trained, so a saved model takes uint8 images like every
other model here. `weights: imagenet` downloads once (into ~/.keras/models); offline, it fails at
once with the alternatives.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import layers, ops, regularizers

from bloodcells.architectures.common import model_inputs, softmax_head
from bloodcells.architectures.registry import TRANSFER_REPORTS, register_model
from bloodcells.core.params import AugmentParams

WEIGHTS_HOST = "storage.googleapis.com"  # where keras.applications downloads ImageNet weights from
REACH_TIMEOUT_S = 5.0
DOWNLOAD_TIMEOUT_S = 60.0  # per socket operation while downloading: a stalled download fails, never hangs
FREEZE_MODES = ("none", "all", "all_but_bn")
HEADS = ("report", "gap")
FIT_MODES = ("resize", "pad", "none")


@dataclass(frozen=True)
class Backbone:
    """A keras.applications network and what it needs from its input."""

    constructor: Callable[..., keras.Model]
    min_size: int  # smallest input side the network accepts
    scaling: str  # how it expects pixels: see ImageNetScaling
    weights_file: str  # its no-top ImageNet weights file, as keras caches it under ~/.keras/models


BACKBONES = {
    "resnet50": Backbone(
        keras.applications.ResNet50, 32, "caffe", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ),
    "efficientnet_b0": Backbone(keras.applications.EfficientNetB0, 32, "raw", "efficientnetb0_notop.h5"),
    "inception_v3": Backbone(
        keras.applications.InceptionV3, 75, "tf", "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ),
    "densenet121": Backbone(
        keras.applications.DenseNet121, 32, "torch", "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ),
}


@keras.saving.register_keras_serializable(package="bloodcells")
class ImageNetScaling(layers.Layer):
    """Map [0, 1] RGB images to the range a keras.applications backbone was trained on.

    Modes as in keras.applications' `preprocess_input`: 'caffe' (BGR, 0-255, ImageNet mean subtracted),
    'tf' ([-1, 1]), 'torch' (ImageNet mean and std), 'raw' (0-255; the network normalises itself).
    """

    CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # on 0-255
    MEAN = (0.485, 0.456, 0.406)  # RGB, on [0, 1]
    STD = (0.229, 0.224, 0.225)

    def __init__(self, mode: str, **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in ("caffe", "tf", "torch", "raw"):
            raise ValueError(f"Unknown ImageNet scaling mode {mode!r}")
        self.mode = mode

    def call(self, images):
        if self.mode == "caffe":
            bgr_mean = ops.convert_to_tensor(self.CAFFE_MEAN_BGR, dtype=images.dtype)
            return ops.flip(images, axis=-1) * 255.0 - bgr_mean
        if self.mode == "tf":
            return images * 2.0 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(self.MEAN, dtype=images.dtype)
            return (images - mean) / ops.convert_to_tensor(self.STD, dtype=images.dtype)
        return images * 255.0

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


def _reachable(host: str, timeout: float) -> bool:
    """Whether a TCP connection to `host`:443 opens within `timeout` s (name lookup included)."""
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    # a thread, because a name lookup ignores socket timeouts and can stall far longer
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _offline_alternatives(name: str, backbone: Backbone) -> str:
    return (
        f"Offline alternatives: set models.{name}.weights to none (train from scratch) or to the path of a "
        f"local copy of {backbone.weights_file} (or put that file in {_weights_cache()})."
    )


def _weights_cache() -> Path:
    """Where keras.applications keeps downloaded weights."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def resolve_weights(name: str, weights: str | None, backbone: Backbone) -> str | None:
    """The `weights` argument for keras.applications, or a ValueError saying why it cannot work here.

    `imagenet` is checked for reachability first (unless already cached), so that a machine
    without network fails in seconds with the alternatives named, instead of hanging.
    """
    if weights is None or str(weights).lower() == "none":
        return None
    if weights == "imagenet":
        if not (_weights_cache() / backbone.weights_file).exists() and not _reachable(
            WEIGHTS_HOST, REACH_TIMEOUT_S
        ):
            raise ValueError(
                f"models.{name}.weights=imagenet: cannot download {backbone.weights_file}, "
                f"{WEIGHTS_HOST} is not reachable from this machine. {_offline_alternatives(name, backbone)}"
            )
        return "imagenet"
    if not Path(weights).is_file():
        raise ValueError(
            f"models.{name}.weights: {weights!r} is neither imagenet, none, nor an existing weights file "
            f"(a copy of {backbone.weights_file})"
        )
    return str(weights)


def _load_backbone(name: str, backbone: Backbone, weights: str | None, shape: tuple[int, int, int]):
    """The headless network, with a download that times out rather than hangs."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return backbone.constructor(include_top=False, weights=weights, input_shape=shape, name="backbone")
    except Exception as error:
        if weights != "imagenet":
            raise
        raise ValueError(
            f"models.{name}.weights=imagenet: getting {backbone.weights_file} failed ({error}). "
            f"{_offline_alternatives(name, backbone)}"
        ) from error
    finally:
        socket.setdefaulttimeout(previous)


def fit_to_size(x, name: str, fit: str, min_size: int):
    """Bring images smaller than `min_size` up to it: 'resize' (bilinear) or 'pad' (black border, centred)."""
    height, width = x.shape[1], x.shape[2]
    if height >= min_size and width >= min_size:
        return x
    if fit == "none":
        raise ValueError(
            f"{name} needs inputs of at least {min_size}x{min_size} px, got {height}x{width}: "
            f"set models.{name}.fit to resize or pad"
        )
    if fit == "resize":
        return layers.Resizing(max(height, min_size), max(width, min_size), name="fit_resize")(x)
    pad_h, pad_w = max(min_size - height, 0), max(min_size - width, 0)
    padding = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
    return layers.ZeroPadding2D(padding, name="fit_pad")(x)


def freeze_layers(network: keras.Model, freeze: str) -> None:
    """'all': nothing trains (BatchNorm then runs in inference mode); 'all_but_bn': only BatchNorm trains."""
    if freeze == "all":
        network.trainable = False
    elif freeze == "all_but_bn":
        for layer in network.layers:
            layer.trainable = isinstance(layer, layers.BatchNormalization)


def classifier_head(x, n_classes: int, head: str, dense_units: int, dropout: float, l2: float):
    """'report': the 4-class report's Flatten-BN-(Dense-Dropout-BN) x3 (256/128/64) with L2;
    'gap': GlobalAveragePooling, one ReLU Dense of `dense_units`, Dropout. Then softmax."""
    if head == "gap":
        x = layers.GlobalAveragePooling2D(name="gap")(x)
        x = layers.Dense(dense_units, activation="relu", name="dense")(x)
        x = layers.Dropout(dropout, name="dense_dropout")(x)
        return softmax_head(x, n_classes)
    x = layers.Flatten(name="flatten")(x)
    x = layers.BatchNormalization(name="flatten_bn")(x)
    for units in (256, 128, 64):
        x = layers.Dense(
            units, activation="relu", kernel_regularizer=regularizers.L2(l2), name=f"dense{units}"
        )(x)
        x = layers.Dropout(dropout, name=f"dense{units}_dropout")(x)
        x = layers.BatchNormalization(name=f"dense{units}_bn")(x)
    return layers.Dense(  # float32 even under mixed precision, as softmax_head
        n_classes,
        activation="softmax",
        kernel_regularizer=regularizers.L2(l2),
        dtype="float32",
        name="predictions",
    )(x)


def _build_transfer(
    name: str,
    input_shape: tuple[int, int, int],
    n_classes: int,
    augment: AugmentParams | None,
    *,
    weights: str | None = "imagenet",
    freeze: str = "all_but_bn",
    head: str = "report",
    fit: str = "resize",
    min_size: int | None = None,
    dense_units: int = 256,
    dropout: float = 0.3,
    l2: float = 1e-4,
) -> keras.Model:
    """uint8 images -> augmentation -> fit to the network's size -> its scaling -> backbone -> head.

    Args:
        weights: 'imagenet', a local weights file of the headless network, or None/'none'.
        freeze: 'none', 'all' or 'all_but_bn' (the backbone's layers; the head always trains).
        head: 'report' or 'gap' (see classifier_head); `dense_units` is the gap head's width.
        fit: how inputs below `min_size` reach it: 'resize', 'pad' or 'none' (refuse them).
        min_size: the side smaller inputs are brought up to; None: the network's minimum.
        dropout, l2: the head's Dropout rate and L2 factor (the report gives neither: our defaults).
    """
    backbone = BACKBONES[name]
    for key, value, allowed in (
        ("freeze", freeze, FREEZE_MODES),
        ("head", head, HEADS),
        ("fit", fit, FIT_MODES),
    ):
        if value not in allowed:
            raise ValueError(f"models.{name}.{key} must be one of {', '.join(allowed)}; got {value!r}")
    target = max(min_size or backbone.min_size, backbone.min_size)
    inputs, x = model_inputs(input_shape, augment)
    x = fit_to_size(x, name, fit, target)
    x = ImageNetScaling(backbone.scaling, name="imagenet_scaling")(x)
    network = _load_backbone(name, backbone, resolve_weights(name, weights, backbone), tuple(x.shape[1:]))
    freeze_layers(network, freeze)
    x = network(x)
    return keras.Model(inputs, classifier_head(x, n_classes, head, dense_units, dropout, l2), name=name)


@register_model(source=TRANSFER_REPORTS)
def resnet50(input_shape, n_classes, augment=None, **hparams) -> keras.Model:
    """ResNet-50 (He et al. 2016) from keras.applications, with a new head."""
    return _build_transfer("resnet50", input_shape, n_classes, augment, **hparams)


@register_model(source=TRANSFER_REPORTS)
def efficientnet_b0(input_shape, n_classes, augment=None, **hparams) -> keras.Model:
    """EfficientNet-B0 (Tan and Le 2019) from keras.applications, with a new head."""
    return _build_transfer("efficientnet_b0", input_shape, n_classes, augment, **hparams)


@register_model(source=TRANSFER_REPORTS)
def inception_v3(input_shape, n_classes, augment=None, **hparams) -> keras.Model:
    """Inception-v3 (Szegedy et al. 2016) from keras.applications, with a new head; needs 75 px or more."""
    return _build_transfer("inception_v3", input_shape, n_classes, augment, **hparams)


@register_model(source=TRANSFER_REPORTS)
def densenet121(input_shape, n_classes, augment=None, **hparams) -> keras.Model:
    """DenseNet-121 (Huang et al. 2017) from keras.applications, with a new head."""
    return _build_transfer("densenet121", input_shape, n_classes, augment, **hparams)
