"""Shared facts about the data: MedMNIST metadata, file names, the preprocessed layout, batches.

Every stage agrees on where files live through the helpers here, so that dvc.yaml and the code
never disagree about a path. `make_inputs` feeds `model.fit` for the train stage and the
benchmarks alike (Keras is imported only there, so the data stages never load it).
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

SPLITS = ("train", "val", "test")
MEDMNIST_SIZES = (28, 64, 128, 224)
SOURCES = ("medmnist", "folder")  # data.source: MedMNIST's npz files, or a class-per-folder image set
RAW_DIR = Path("data/raw")
CLASSES_FILE = RAW_DIR / "classes.json"  # label names in label order, written by download for any source
PREPROCESSED_DIR = Path("data/preprocessed")


@cache
def medmnist_info() -> dict[str, Any]:
    """MedMNIST's INFO table (URLs, MD5s, labels, split sizes) without importing torch."""
    # medmnist's package __init__ prints a warning when torch is missing; we only need its tables.
    with contextlib.redirect_stdout(io.StringIO()):
        from medmnist.info import INFO
    return INFO


def dataset_info(dataset: str) -> dict[str, Any]:
    """INFO entry of one 2D multi-class MedMNIST dataset, with a clear error for unknown names."""
    info = medmnist_info()
    if dataset not in info:
        known = sorted(name for name, entry in info.items() if "url" in entry and "3d" not in name)
        raise ValueError(f"Unknown MedMNIST dataset {dataset!r}. Known: {', '.join(known)}")
    return info[dataset]


def check_size(size: int) -> int:
    """Reject image sizes MedMNIST does not publish."""
    if size not in MEDMNIST_SIZES:
        raise ValueError(f"Unsupported image size {size!r}: MedMNIST publishes {list(MEDMNIST_SIZES)}")
    return size


def medmnist_filename(dataset: str, size: int) -> str:
    """MedMNIST's own file name for a size: `bloodmnist.npz` at 28 px, `bloodmnist_64.npz` above."""
    return f"{dataset}.npz" if check_size(size) == 28 else f"{dataset}_{size}.npz"


def info_url_and_md5(dataset: str, size: int) -> tuple[str, str]:
    """Zenodo URL and MD5 of one file, from INFO."""
    info = dataset_info(dataset)
    suffix = "" if check_size(size) == 28 else f"_{size}"
    return info[f"url{suffix}"], info[f"MD5{suffix}"]


def class_names(dataset: str) -> list[str]:
    """Label names in label order, from INFO."""
    labels = dataset_info(dataset)["label"]
    return [labels[str(i)] for i in range(len(labels))]


def check_source(source: str) -> str:
    """Reject an unknown `data.source`."""
    if source not in SOURCES:
        raise ValueError(f"Unknown data.source {source!r}. Known: {', '.join(SOURCES)}")
    return source


def read_class_names(path: Path = CLASSES_FILE) -> list[str]:
    """Label names in label order, as the download stage wrote them (from INFO or the folder names)."""
    try:
        names = json.loads(path.read_text())["classes"]
    except FileNotFoundError as error:
        raise ValueError(f"{path} not found: run the download stage first") from error
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a class list ({error})") from error
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"{path}: 'classes' must be a list of names, got {names!r}")
    return names


def raw_path(dataset: str, size: int) -> Path:
    """Where download puts one size (named uniformly so dvc.yaml can template it)."""
    return RAW_DIR / f"{dataset}_{size}.npz"


def preprocessed_dir(size: int) -> Path:
    """Folder of one size's training-ready arrays and summary."""
    return PREPROCESSED_DIR / str(size)


@dataclass(frozen=True)
class Split:
    """One split held in memory: uint8 images (N, H, W, 3) and int labels (N,)."""

    images: np.ndarray
    labels: np.ndarray


def load_split(folder: Path, split: str, mmap: bool = True) -> Split:
    """Load one split written by the preprocess stage."""
    mode = "r" if mmap else None
    return Split(
        images=np.load(folder / f"{split}_images.npy", mmap_mode=mode, allow_pickle=False),
        labels=np.load(folder / f"{split}_labels.npy", allow_pickle=False).astype(np.int64),
    )


def load_summary(folder: Path) -> dict[str, Any]:
    """The preprocess summary (class names, counts, duplicates) of one size."""
    return json.loads((folder / "summary.json").read_text())


def make_inputs(
    split: Split, batch_size: int, shuffle: bool, seed: int, one_hot: int = 0, replicas: int = 1
) -> Any:
    """Batches of (uint8 image, label) from in-memory arrays.

    Under TensorFlow a tf.data pipeline (shuffled each epoch, prefetched); under other backends
    Keras's own array adapter, so the stage runs where TensorFlow is not installed. With
    `one_hot` set to the number of classes, labels are one-hot (label smoothing needs them).
    """
    import keras

    images, labels = np.asarray(split.images), split.labels.astype("int32")
    if one_hot:
        labels = np.eye(one_hot, dtype="float32")[labels]
    if keras.backend.backend() != "tensorflow":
        return evenly_split(images, labels, batch_size, replicas)
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


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
