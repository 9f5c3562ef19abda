"""The transfer models (keras.applications backbones) build at 64 and 128 px, train a step, save and
reload identically.

Out of the quick suite: each costs seconds of tracing and writes a ~100 MB model file.
"""

from __future__ import annotations

import keras
import pytest

from tests.unit.test_architectures import TRANSFER, assert_builds, train_step_save_and_reload

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def fresh_keras_session():
    yield
    keras.backend.clear_session()


@pytest.mark.parametrize("name", TRANSFER)
def test_transfer_trains_a_step_and_reloads_identically(name, tmp_path):
    train_step_save_and_reload(name, tmp_path)


@pytest.mark.parametrize("name", TRANSFER)
def test_transfer_builds_at_64_and_128_px(name):
    assert_builds(name, (64, 128))
