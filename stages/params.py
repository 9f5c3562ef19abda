"""Typed access to params.yaml: each stage reads its own group into a frozen dataclass.

A typo in params.yaml (an unknown or missing key) fails at start-up with the key named, instead of
being silently ignored while DVC still tracks it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

PARAMS_FILE = Path("params.yaml")
T = TypeVar("T")


class ParamsError(ValueError):
    """A params.yaml value is missing, unknown or invalid."""


def read_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """Read the whole params file as a dict."""
    if not path.exists():
        raise ParamsError(f"{path} not found: run stages from the project root (where dvc.yaml is)")
    with path.open() as f:
        return yaml.safe_load(f) or {}


def to_dataclass(values: dict[str, Any], cls: type[T], where: str) -> T:
    """Build `cls` from `values`, naming any unknown or missing key.

    Args:
        values: the raw mapping from params.yaml.
        cls: a dataclass type whose fields are the allowed keys.
        where: the group's name, used in error messages (e.g. "train").
    """
    if not isinstance(values, dict):
        raise ParamsError(f"params.yaml: {where} must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ParamsError(f"params.yaml: unknown key(s) {unknown} in {where}; allowed: {sorted(fields)}")
    required = {
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - set(values))
    if missing:
        raise ParamsError(f"params.yaml: missing key(s) {missing} in {where}")
    return cls(**values)


def load_params(group: str, cls: type[T], path: Path = PARAMS_FILE) -> T:
    """Load one top-level group of params.yaml into `cls`."""
    params = read_params(path)
    if group not in params:
        raise ParamsError(f"params.yaml: missing group {group!r}")
    return to_dataclass(params[group], cls, group)


def load_value(key: str, path: Path = PARAMS_FILE) -> Any:
    """Load one top-level scalar of params.yaml, such as `seed` or `model`."""
    params = read_params(path)
    if key not in params:
        raise ParamsError(f"params.yaml: missing key {key!r}")
    return params[key]


# The schema of params.yaml: one frozen dataclass per group.


@dataclass(frozen=True)
class DataParams:
    """`data`: which dataset, at which sizes, from where."""

    dataset: str
    sizes: list[int]
    mirror: str | None = None
    source: str = "medmnist"
    path: str | None = None


@dataclass(frozen=True)
class FolderParams:
    """`folder`: how a class-per-folder image set becomes arrays (read when `data.source: folder`)."""

    classes: list[str] | None = None  # label order as folder names; None = sorted folder names
    split_ratios: list[float] = dataclasses.field(default_factory=lambda: [7, 1, 2])  # train:val:test
    split_seed: int = 42  # its own seed: changing `seed` for training never reshuffles the data
    crop: int | None = 200  # side of the centred square cut before resizing; None = largest square
    resize_filter: str = "bicubic"


@dataclass(frozen=True)
class PreprocessParams:
    """`preprocess`: validation of the raw arrays."""

    check_split_sizes: bool = True
    drop_cross_split_duplicates: bool = False


@dataclass(frozen=True)
class ClassWeightParams:
    """`class_weights`: how classes are weighted in the training loss."""

    method: str = "balanced"


@dataclass(frozen=True)
class AugmentParams:
    """`augment`: training-time augmentation layers, each switchable."""

    flip: bool = True
    rot90: bool = True
    crop_zoom: bool = False  # random crop keeping crop_min_area..100% of the area, resized back
    crop_min_area: float = 0.9
    color_jitter: bool = False  # small random per-channel gains and brightness shift (stain variation)
    color_jitter_strength: float = 0.05


@dataclass(frozen=True)
class TrainParams:
    """`train`: the optimisation recipe shared by every architecture."""

    size: int
    epochs: int
    batch_size: int
    lr: float
    early_stopping_patience: int = 5
    lr_factor: float = 0.5
    lr_patience: int = 3
    min_lr: float = 1e-6
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "plateau"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    deterministic: bool = False
    mixed_precision: str | bool = "auto"  # auto: on with a GPU, off on CPU; YAML reads on/off as bools
    jit_compile: str | bool = "auto"  # XLA; auto: on with a GPU or under JAX, else off
    distribute: str = "none"  # data_parallel: one replica per GPU (or logical CPU device)


@dataclass(frozen=True)
class EvaluateParams:
    """`evaluate`: how test predictions are made, and how much the report images show."""

    tta_views: int = 1  # 8 = average over every rotation and flip of each test image
    samples_per_class: int = 3
    mistakes: int = 24
    gradcam_per_class: int = 2
    calibration_bins: int = 10
