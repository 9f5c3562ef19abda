"""Named configurations hold only what differs from params.yaml, and each is a valid params file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bloodcells.core.params import ParamsError, apply_overrides, parse_params, read_yaml

PROJECT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((PROJECT / "configs").glob("*.yaml"))


def value_at(params: dict, dotted: str):
    for key in dotted.split("."):
        params = params[key]
    return params


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_a_config_differs_from_params_yaml_in_every_key_and_validates(config):
    params = read_yaml(PROJECT / "params.yaml")
    overrides = yaml.safe_load(config.read_text()) or {}
    same = [key for key, value in overrides.items() if value_at(params, key) == value]
    assert same == [], f"{config.name} repeats params.yaml's values for {same}"
    parse_params(apply_overrides(params, overrides, config.name))


def test_an_override_of_a_key_params_yaml_lacks_is_refused():
    params = read_yaml(PROJECT / "params.yaml")
    with pytest.raises(ParamsError, match="train.lrate: no such key"):
        apply_overrides(params, {"train.lrate": 1e-4}, "configs/typo.yaml")
