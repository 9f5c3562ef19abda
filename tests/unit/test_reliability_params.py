"""Bad params and bad params files are refused in one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bloodcells.core.params import ParamsError, apply_overrides, parse_params, read_yaml
from tests.conftest import PROJECT


def project_params(**dotted) -> dict:
    """params.yaml as a mapping, with keys (`evaluate__mistakes` for `evaluate.mistakes`) replaced."""
    overrides = {key.replace("__", "."): value for key, value in dotted.items()}
    return apply_overrides(read_yaml(PROJECT / "params.yaml"), overrides, "test")


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("evaluate__calibration_bins", 0, "greater than or equal to 1"),  # else a division by zero halfway
        ("evaluate__samples_per_class", 0, "greater than or equal to 1"),  # else a division by zero halfway
        ("evaluate__mistakes", -1, "greater than or equal to 0"),  # else all mistakes but one shown
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
