"""The params schema (bloodcells/core/params.py): params.yaml is the only source of defaults, every key typed.

The stage processes' one-line errors are in test_stages.py; here the schema itself, in-process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from bloodcells.core import params as schema
from bloodcells.core.params import (
    ParamsError,
    apply_overrides,
    load_params,
    parse_class_mapping,
    parse_params,
    read_yaml,
)
from tests.conftest import PROJECT, shipped_params

GROUPS = [
    cls
    for cls in vars(schema).values()
    if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__ == schema.__name__
]


def test_the_shipped_params_file_is_valid():
    params = load_params(PROJECT / "params.yaml")
    assert params.train.lr == 1e-3 and params.model in params.models


@pytest.mark.parametrize("cls", GROUPS, ids=lambda cls: cls.__name__)
def test_no_group_has_a_default_or_takes_unknown_keys(cls):
    """A default here would be a second source of truth beside params.yaml."""
    if not cls.model_fields:  # the shared base
        return
    defaulted = [name for name, field in cls.model_fields.items() if not field.is_required()]
    assert not defaulted, f"{cls.__name__} has defaults for {defaulted}: they belong in params.yaml"
    assert cls.model_config.get("extra") == "forbid"


def test_every_group_of_params_yaml_is_in_the_schema_and_back():
    raw = read_yaml(PROJECT / "params.yaml")
    assert set(raw) == set(schema.Params.model_fields)
    for group, field in schema.Params.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            assert set(raw[group]) == set(field.annotation.model_fields), group


@pytest.mark.parametrize("text", ["1e-5", "1e-06", "3e-4"])
@pytest.mark.parametrize("key", ["train.lr", "train.min_lr", "train.weight_decay", "models.resnet50.l2"])
def test_small_numbers_yaml_reads_as_strings_are_floats(key, text):
    """PyYAML (YAML 1.1) reads `1e-5` without a dot as a string; DVC's `-S` writes `1e-06` so."""
    value = yaml.safe_load(f"x: {text}")["x"]
    assert isinstance(value, str)  # what the schema is given
    overrides = {key: value}
    if key == "train.min_lr":
        overrides["train.lr"] = 1e-3
    params = shipped_params(overrides)
    group, *rest = key.split(".")
    got = getattr(params, group)
    got = got[rest[0]][rest[1]] if group == "models" else getattr(got, rest[0])
    assert isinstance(got, float) and got == float(text)


TRANSFER = ["resnet50", "efficientnet_b0", "inception_v3", "densenet121"]


def test_the_transfer_models_share_one_yaml_anchor_and_dvc_sets_one_model_alone(tmp_path):
    """`<<: *transfer` gives each backbone every key, read by PyYAML and by DVC; `-S` changes one model."""
    from dvc.utils.hydra import apply_overrides as dvc_set
    from dvc.utils.serialize import load_yaml as dvc_load

    models = read_yaml(PROJECT / "params.yaml")["models"]
    assert len(models["resnet50"]) == 8
    assert all(models[name] == models["resnet50"] for name in TRANSFER)
    assert {name: dvc_load(PROJECT / "params.yaml")["models"][name] for name in TRANSFER} == {
        name: models[name] for name in TRANSFER
    }
    copy = tmp_path / "params.yaml"
    copy.write_text((PROJECT / "params.yaml").read_text())
    dvc_set(copy, ["models.resnet50.dropout=0.5", "models.densenet121.l2=0.001"])
    changed = read_yaml(copy)["models"]
    assert changed["resnet50"] == {**models["resnet50"], "dropout": 0.5}
    assert changed["densenet121"] == {**models["densenet121"], "l2": 0.001}
    assert changed["efficientnet_b0"] == changed["inception_v3"] == models["efficientnet_b0"]


def test_a_hand_written_small_number_in_params_yaml_loads(tmp_path):
    text = (PROJECT / "params.yaml").read_text().replace("lr: 1.0e-3", "lr: 3e-4", 1)
    assert "lr: 3e-4" in text
    (tmp_path / "params.yaml").write_text(text)
    assert load_params(tmp_path / "params.yaml").train.lr == 3e-4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train.epochs": 0}, "train.epochs: Input should be greater than or equal to 1 (got 0)"),
        ({"train.lr": -1.0}, "train.lr: Input should be greater than 0"),
        ({"train.optimizer": "sgd"}, "train.optimizer: Input should be 'adam' or 'adamw' (got 'sgd')"),
        ({"train.schedule": "step"}, "train.schedule: Input should be 'plateau' or 'cosine'"),
        ({"train.label_smoothing": 1.5}, "train.label_smoothing: Input should be less than 1"),
        ({"train.min_lr": 0.1}, "train: min_lr (0.1) is above lr (0.001)"),
        ({"runtime.distribute": "horovod"}, "runtime.distribute: Input should be 'none' or 'data_parallel'"),
        ({"evaluate.tta_views": 9}, "evaluate.tta_views: Input should be less than or equal to 8"),
        ({"model": "resnet9000"}, "model 'resnet9000' has no models.resnet9000 group"),
        (
            {"data.sizes": [28, 32], "train.size": 28},
            "data.sizes [32]: MedMNIST publishes [28, 64, 128, 224] px",
        ),
        ({"data.sizes": [28, 28]}, "data.sizes: sizes repeat: [28, 28]"),
        ({"class_weights.method": "inverse"}, "class_weights.method: Input should be 'balanced' or 'none'"),
    ],
)
def test_bad_values_are_named_in_one_line(overrides, message):
    with pytest.raises(ParamsError) as error:
        shipped_params(overrides)
    assert str(error.value).startswith(f"params.yaml: {message}"), str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_key_and_several_faults_are_said_in_one_line():
    raw = read_yaml(PROJECT / "params.yaml")
    del raw["train"]["lr"]
    with pytest.raises(ParamsError, match=r"^params.yaml: train.lr: missing$"):
        parse_params(raw)
    raw = apply_overrides(raw, {"+train.lr": 1e-3, "train.epochs": "abc", "seed": "x"}, "test")
    with pytest.raises(ParamsError, match=r"; and 1 more$"):
        parse_params(raw)


def test_an_override_sets_only_known_keys_unless_it_says_plus():
    """One override path (configs, `-S`, tests): a typo is refused; `+key` adds one, as in `dvc exp run`."""
    raw = read_yaml(PROJECT / "params.yaml")
    with pytest.raises(ParamsError, match=r"^-S: models.skip.widht: no such key in params.yaml$"):
        apply_overrides(raw, {"models.skip.widht": 16}, "-S")
    with pytest.raises(ParamsError, match="nowhere.lr: no such key"):
        apply_overrides(raw, {"+nowhere.lr": 1.0}, "-S")
    added = apply_overrides(raw, {"+models.new": {}, "+models.skip.extra": 1, "train.lr": 0.1}, "-S")
    assert added["models"]["new"] == {} and added["models"]["skip"]["extra"] == 1
    assert added["train"]["lr"] == 0.1 and raw["train"]["lr"] == 1e-3  # a copy: the input is untouched


def test_a_file_that_is_not_yaml_or_not_there_is_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text("train: [unclosed\n")
    with pytest.raises(ParamsError, match=r"params.yaml: line \d+: not valid YAML"):
        load_params(tmp_path / "params.yaml")
    with pytest.raises(ParamsError, match="not found: run from the project root"):
        load_params(tmp_path / "nowhere.yaml")


# Bad params and params files are refused in one line naming the key.
def project_params(**dotted) -> dict:
    """params.yaml as a mapping, with dotted keys (`evaluate.mistakes`) replaced."""
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for key, value in dotted.items():
        group, leaf = key.split("__")
        raw[group][leaf] = value
    return raw


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("evaluate__calibration_bins", 0, "greater than or equal to 1"),  # was ZeroDivisionError halfway
        ("evaluate__samples_per_class", 0, "greater than or equal to 1"),  # was ZeroDivisionError halfway
        ("evaluate__mistakes", -1, "greater than or equal to 0"),  # was: all mistakes but one shown
        ("evaluate__tta_views", 9, "less than or equal to 8"),
        ("evaluate__gradcam_per_class", -1, "greater than or equal to 0"),
    ],
)
def test_every_evaluate_param_is_range_checked_in_one_line(key, value, why):
    with pytest.raises(ParamsError) as error:
        parse_params(project_params(**{key: value}))
    dotted = key.replace("__", ".")
    assert str(error.value).startswith(f"params.yaml: {dotted}: ") and why in str(error.value)
    assert f"(got {value})" in str(error.value) and "\n" not in str(error.value)


def test_train_size_must_be_one_of_data_sizes():
    with pytest.raises(ParamsError, match=r"train.size 64 is not one of data.sizes \[28\]"):
        parse_params(project_params(data__sizes=[28], train__size=64))


def test_data_sizes_must_not_be_empty():
    with pytest.raises(ParamsError, match=r"^params.yaml: data.sizes: List should have at least 1 item"):
        parse_params(project_params(data__sizes=[]))


def test_invalid_yaml_is_one_line_with_its_line_number(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 42\ntrain:\n  lr: [0.1\n  epochs: 3\n")
    with pytest.raises(ParamsError) as error:
        read_yaml(path)
    assert str(error.value).startswith(f"{path}: line ") and "not valid YAML" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_params_file_says_to_run_from_the_project_root(tmp_path):
    with pytest.raises(ParamsError, match="run from the project root"):
        read_yaml(Path(tmp_path / "params.yaml"))


def test_a_class_mapping_is_read_inline_or_from_a_file(tmp_path):
    named = tmp_path / "mapping.yaml"
    named.write_text("eosi: eosinophil\nlymph: lymphocyte\n")
    expected = {"eosi": "eosinophil", "lymph": "lymphocyte"}
    assert parse_class_mapping(str(named)) == expected
    assert parse_class_mapping('{"eosi": "eosinophil", "lymph": "lymphocyte"}') == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"eosi": ', "--classes: neither a file nor a JSON/YAML mapping"),
        ("[1, 2]", "--classes: expected a mapping of folder name to model class"),
        ("{}", "--classes: expected a mapping"),
        ('{"eosi": 3}', "--classes: expected a mapping"),
        ("no-such-file.yaml", "--classes: expected a mapping"),  # a plain string: not a file, not a mapping
    ],
)
def test_a_wrong_class_mapping_is_one_line(text, message):
    with pytest.raises(ParamsError, match="^" + message) as error:
        parse_class_mapping(text)
    assert "\n" not in str(error.value)


def test_the_params_file_is_read_once_per_process():
    assert load_params(PROJECT / "params.yaml") is load_params(PROJECT / "params.yaml")
