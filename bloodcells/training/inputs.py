"""Batches for `model.fit` and `model.predict`: tf.data under TensorFlow, arrays under other backends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from bloodcells.data.splits import Split


@dataclass(frozen=True)
class Inputs:
    """What `model.fit` needs for one split, the same shape on every backend: `fit(**inputs.fit_args())`."""

    x: Any  # a batched tf.data.Dataset, or the images array
    y: np.ndarray | None  # labels when `x` is an array; None when the dataset carries them
    batch_size: int | None  # None when the dataset is already batched
    shuffle: bool  # Keras shuffles the arrays itself (non-TensorFlow backends)
    steps_per_epoch: int | None  # set when one dataset runs through every epoch

    def fit_args(self) -> dict[str, Any]:
        """Keyword arguments of `model.fit` for training data."""
        return {
            "x": self.x,
            "y": self.y,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "steps_per_epoch": self.steps_per_epoch,
        }

    def validation_args(self) -> dict[str, Any]:
        """Keyword arguments of `model.fit` for validation data."""
        data = self.x if self.y is None else (self.x, self.y)
        return {"validation_data": data, "validation_batch_size": self.batch_size}


def epoch_orders(n: int, seed: int, first_epoch: int, epochs: int) -> np.ndarray:
    """The order of the `n` training images in each epoch from `first_epoch` on: (epochs - first, n).

    Each epoch's permutation depends only on (seed, epoch), so a resumed run sees the batches an
    uninterrupted one would.
    """
    return np.stack(
        [np.random.default_rng([seed, epoch]).permutation(n) for epoch in range(first_epoch, epochs)]
    )


def make_inputs(
    split: Split,
    batch_size: int,
    shuffle: bool,
    seed: int,
    one_hot: int = 0,
    replicas: int = 1,
    first_epoch: int = 0,
    epochs: int = 1,
) -> Inputs:
    """Batches of (uint8 image, label) from in-memory arrays.

    Under TensorFlow a tf.data pipeline (shuffled by `epoch_orders` when `shuffle`, prefetched);
    under other backends Keras's own array adapter, so the stage runs where TensorFlow is not
    installed. With `one_hot` set to the number of classes, labels are one-hot (label smoothing
    needs them).
    """
    images, labels = np.asarray(split.images), split.labels.astype("int32")
    if one_hot:
        labels = np.eye(one_hot, dtype="float32")[labels]
    if keras.backend.backend() != "tensorflow":
        images, labels = evenly_split(images, labels, batch_size, replicas)
        return Inputs(x=images, y=labels, batch_size=batch_size, shuffle=shuffle, steps_per_epoch=None)
    import tensorflow as tf

    if not shuffle:
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
        return Inputs(dataset.prefetch(tf.data.AUTOTUNE), None, None, False, None)
    all_images, all_labels = tf.constant(images), tf.constant(labels)
    orders = epoch_orders(len(labels), seed, first_epoch, max(epochs, first_epoch + 1))
    dataset = tf.data.Dataset.from_tensor_slices(orders).flat_map(
        lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch_size)  # no batch spans two epochs
    )
    dataset = dataset.map(
        lambda index: (tf.gather(all_images, index), tf.gather(all_labels, index)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    steps = -(-len(labels) // batch_size)
    return Inputs(dataset.prefetch(tf.data.AUTOTUNE), None, None, False, steps)


def evenly_split(
    images: np.ndarray, labels: np.ndarray, batch_size: int, replicas: int
) -> tuple[np.ndarray, np.ndarray]:
    """Leave out the few last images that would make a last batch the replicas cannot share evenly.

    JAX shards every batch over the devices and refuses a batch whose size they do not divide
    (11,959 training images in batches of 64 end with one of 55); TensorFlow's MirroredStrategy
    splits any batch, so under TensorFlow nothing is left out. At most `replicas - 1` images go.
    """
    if batch_size % replicas:
        raise ValueError(f"train.batch_size ({batch_size}) must be a multiple of the {replicas} replicas")
    extra = len(labels) % batch_size % replicas
    if extra:
        print(f"{replicas} replicas: leaving out the last {extra} of {len(labels)} images (uneven batch)")
        images, labels = images[:-extra], labels[:-extra]
    return images, labels
