"""The schema of params.yaml: one typed, range-checked pydantic model per group, and no defaults.

params.yaml is the only place defaults live; this file says what each key may hold. Every stage
loads the whole file through `load_params`, so a typo, a wrong type or an out-of-range value
anywhere fails at start-up in one line naming the key (`params.yaml: train.lr: ...`), before any
work is done. Numbers are coerced: YAML 1.1 (PyYAML) reads `1e-5` and DVC's `-S` output `1e-06`
as strings, and they are floats here.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from bloodcells.core.paths import PARAMS_FILE

# YAML 1.1 floats need a dot and a signed exponent; these are the forms it leaves as strings.
_FLOAT_STRING = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
ResizeFilter = Literal["nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"]
MEDMNIST_SIZES = (28, 64, 128, 224)

Count = Annotated[int, Field(strict=False, ge=1)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Switch = Literal["auto", "on", "off"] | bool  # YAML reads a bare on/off as a boolean: both count
DIHEDRAL_VIEWS = 8  # a square's symmetries: 4 quarter turns, each flipped or not
TtaViews = Annotated[int, Field(strict=False, ge=1, le=DIHEDRAL_VIEWS)]  # also `bloodcells predict --tta`


def no_repeats(field: str, what: str) -> classmethod:
    """A validator of list field `field`: each item at most once (None passes); `what` names the items."""

    def check(cls, values: list | None) -> list | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError(f"{what} repeat: {values}")
        return values

    return field_validator(field)(classmethod(check))


class ParamsError(ValueError):
    """A params.yaml value is missing, unknown or invalid; the message is one line."""


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class DataParams(_Group):
    """`data`: which dataset, at which sizes, from where."""

    dataset: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    source: Literal["medmnist", "folder"]
    sizes: Annotated[list[Count], Field(min_length=1)]
    mirror: str | None
    path: str | None

    _distinct = no_repeats("sizes", "sizes")


class FolderParams(_Group):
    """`folder`: how a class-per-folder image set becomes arrays (read when `data.source: folder`)."""

    classes: Annotated[list[str], Field(min_length=2)] | None
    split_ratios: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=3, max_length=3)]
    split_seed: int
    crop: Count | None
    resize_filter: ResizeFilter
    follow_external_links: bool
    group_near_duplicates_within: Annotated[int, Field(ge=0, le=32)] | None
    group_pattern: str | None

    @field_validator("group_pattern")
    @classmethod
    def _one_group(cls, pattern: str | None) -> str | None:
        if pattern is None:
            return None
        try:
            groups = re.compile(pattern).groups
        except re.error as error:
            raise ValueError(f"not a regular expression ({error})") from None
        if groups != 1:
            raise ValueError(f"needs exactly one (group) naming the patient or slide, has {groups}")
        return pattern

    _distinct = no_repeats("classes", "class names")


class PreprocessParams(_Group):
    """`preprocess`: validation and cleaning of the raw arrays."""

    check_split_sizes: bool
    drop_cross_split_duplicates: bool
    report_near_duplicates_within: Annotated[int, Field(ge=0, le=32)] | None
    stain_normalization: Literal["none", "reinhard", "macenko"]
    cell_crop: Annotated[float, Field(gt=0.0, le=1.0)] | None


class ClassWeightParams(_Group):
    """`class_weights`: how classes are weighted in the training loss."""

    method: Literal["balanced", "none"]


class AugmentParams(_Group):
    """`augment`: training-time augmentation layers, each switchable."""

    rot90: bool
    flip: bool
    crop_zoom: bool
    crop_min_area: Annotated[float, Field(gt=0.0, le=1.0)]
    color_jitter: bool
    color_jitter_strength: Annotated[float, Field(ge=0.0, le=0.5)]  # gains of 1 +- 0.5 at most
    zoom: bool
    zoom_range: Fraction
    hed_jitter: bool
    hed_jitter_strength: Annotated[float, Field(ge=0.0, le=0.5)]
    gamma: bool
    gamma_range: Fraction
    blur: bool
    blur_sigma: Annotated[float, Field(gt=0.0, le=1.5)]  # RandomBlur's 5 taps hold sigma <= 1.5 px
    hue: bool
    hue_shift: Annotated[float, Field(gt=0.0, le=0.5)]  # a turn of the colour circle each way at most
    saturation: bool
    saturation_range: Annotated[float, Field(gt=0.0, le=4.0)]
    grayscale: bool
    grayscale_probability: Annotated[float, Field(gt=0.0, le=1.0)]


class TrainParams(_Group):
    """`train`: the optimisation recipe shared by every architecture."""

    size: Count
    epochs: Count
    batch_size: Count
    lr: Annotated[float, Field(gt=0.0)]
    early_stopping_patience: Count
    lr_factor: Annotated[float, Field(gt=0.0, lt=1.0)]
    lr_patience: Count
    min_lr: Annotated[float, Field(ge=0.0)]
    optimizer: Literal["adam", "adamw"]
    weight_decay: Annotated[float, Field(ge=0.0)]
    schedule: Literal["plateau", "cosine"]
    warmup_epochs: Annotated[int, Field(ge=0)]
    label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)]
    ema_momentum: Annotated[float, Field(ge=0.0, lt=1.0)]
    recompute_batchnorm: bool
    ensemble: Annotated[int, Field(ge=1, le=16)]

    @model_validator(mode="after")
    def _consistent(self) -> TrainParams:
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr ({self.min_lr}) is above lr ({self.lr})")
        return self


class RuntimeParams(_Group):
    """`runtime`: how the machine trains (precision, XLA, devices, op determinism), not what is learnt."""

    deterministic: bool
    mixed_precision: Switch
    jit_compile: Switch
    distribute: Literal["none", "data_parallel"]


class EvaluateParams(_Group):
    """`evaluate`: how test predictions are made, and how much the report images show."""

    tta_views: TtaViews
    samples_per_class: Count
    mistakes: Annotated[int, Field(ge=0)]
    gradcam_per_class: Annotated[int, Field(ge=0)]
    calibration_bins: Count
    bootstrap_resamples: Annotated[int, Field(strict=False, ge=100)]
    referral_target_accuracy: Annotated[float, Field(gt=0.0, le=1.0)]


class ExportParams(_Group):
    """`export`: the deployment formats written beside the inference .keras model."""

    formats: list[Literal["saved_model", "tflite", "onnx"]]

    _distinct = no_repeats("formats", "formats")


class ExternalParams(_Group):
    """`external`: another labelled image folder to validate the trained model on (`bloodcells validate`)."""

    path: str | None
    classes: dict[str, str] | None


class Params(_Group):
    """The whole of params.yaml."""

    seed: int
    model: str
    data: DataParams
    folder: FolderParams
    preprocess: PreprocessParams
    class_weights: ClassWeightParams
    augment: AugmentParams
    train: TrainParams
    runtime: RuntimeParams
    evaluate: EvaluateParams
    export: ExportParams
    external: ExternalParams
    models: dict[str, dict[str, Any] | None]

    @model_validator(mode="after")
    def _cross_checks(self) -> Params:
        if self.model not in self.models:
            raise ValueError(
                f"model {self.model!r} has no models.{self.model} group; known: {sorted(self.models)}"
            )
        if self.train.size not in self.data.sizes:
            raise ValueError(f"train.size {self.train.size} is not one of data.sizes {self.data.sizes}")
        if self.data.source == "medmnist":
            wrong = [size for size in self.data.sizes if size not in MEDMNIST_SIZES]
            if wrong:
                raise ValueError(f"data.sizes {wrong}: MedMNIST publishes {list(MEDMNIST_SIZES)} px")
        return self


def coerce_numbers(value: Any) -> Any:
    """Turn the float strings YAML 1.1 leaves behind (`1e-5`, `1e-06`) into floats, everywhere."""
    if isinstance(value, dict):
        return {key: coerce_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [coerce_numbers(item) for item in value]
    if isinstance(value, str) and _FLOAT_STRING.fullmatch(value.strip()):
        return float(value)
    return value


def _problem(error: ValidationError) -> str:
    """The first problem of a validation error as `train.lr: why (got 'x')`, and how many more there are."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    why = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        why = "unknown key (a typo?)"
    elif first["type"] == "missing":
        why = "missing"
    quiet = first["type"] in ("missing", "extra_forbidden") or isinstance(first["input"], dict)
    got = "" if quiet else f" (got {first['input']!r})"
    more = f"; and {error.error_count() - 1} more" if error.error_count() > 1 else ""
    return f"{key + ': ' if key else ''}{why}{got}{more}"


def check_value(annotation: Any, value: Any) -> Any:
    """`value` (a command-line flag's text, say) checked and coerced by a schema type such as TtaViews.

    Raises ParamsError with the schema's one line, so a flag and the param it mirrors agree.
    """
    try:
        return TypeAdapter(annotation).validate_python(coerce_numbers(value))
    except ValidationError as error:
        raise ParamsError(_problem(error)) from None


def parse_params(raw: Any, path: Path = PARAMS_FILE) -> Params:
    """Validate a params mapping; raises ParamsError with one line naming the key."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of groups, got {type(raw).__name__}")
    try:
        return Params.model_validate(coerce_numbers(raw))
    except ValidationError as error:
        raise ParamsError(f"{path}: {_problem(error)}") from None


def read_yaml(path: Path) -> Any:
    """A YAML file's contents, or a one-line ParamsError when it is missing or not YAML."""
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the project root (the folder holding dvc.yaml)")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}:{where}: not valid YAML ({getattr(error, 'problem', error)})") from None


def parse_class_mapping(text: str) -> dict[str, str]:
    """`bloodcells validate --classes` (`external.classes` on the command line): a JSON/YAML mapping of
    folder name to model class, inline or in a named file. Checked before the model is loaded."""
    source = Path(text)
    try:
        value = yaml.safe_load(source.read_text() if source.is_file() else text)
    except yaml.YAMLError as error:
        reason = str(error).splitlines()[0]
        raise ParamsError(f"--classes: neither a file nor a JSON/YAML mapping ({reason})") from None
    pairs = value.items() if isinstance(value, dict) else []
    if not pairs or not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs):
        raise ParamsError(
            '--classes: expected a mapping of folder name to model class, e.g. \'{"eosi": "eosinophil"}\''
        )
    return value


@cache
def load_params(path: Path = PARAMS_FILE) -> Params:
    """The whole params file, validated (read once per process)."""
    return parse_params(read_yaml(path), path)


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any], source: str) -> dict[str, Any]:
    """A copy of params `raw` with dotted keys (`train.lr: 1e-4`, as in configs/*.yaml and `-S`) set.

    A key that `raw` lacks is refused in one line, so a configuration cannot silently drift; a key
    written `+group.key` (DVC's `-S +key=value` syntax) may add a new one under an existing group,
    e.g. the `models.<name>` group of a model params.yaml has none for.
    """
    result = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        dotted = str(dotted)
        adding = dotted.startswith("+")
        *parents, leaf = dotted.removeprefix("+").split(".")
        node = result
        for key in parents:
            if not isinstance(node, dict) or key not in node:
                raise ParamsError(f"{source}: {dotted}: no such key in {PARAMS_FILE}")
            if node[key] is None and adding:  # an empty group (`models.x:`) takes new keys too
                node[key] = {}
            node = node[key]
        if not isinstance(node, dict) or (leaf not in node and not adding):
            raise ParamsError(f"{source}: {dotted}: no such key in {PARAMS_FILE}")
        node[leaf] = value
    return result


def model_hparams(params: Params) -> dict[str, Any]:
    """Hyperparameters of the chosen model (`models.<model>`), passed to its builder."""
    return dict(params.models[params.model] or {})
