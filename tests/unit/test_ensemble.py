"""train.ensemble: members' probabilities averaged in one saveable model."""

from __future__ import annotations

import keras
import numpy as np

from bloodcells.architectures import create_model
from bloodcells.architectures.augment import NO_AUGMENT
from bloodcells.architectures.ensemble import average_ensemble
from bloodcells.evaluation.report import member_metrics

HPARAMS = {"width": 8, "dropout": 0.1, "stem_stride": 1}


def test_the_ensemble_outputs_the_mean_of_its_members_and_survives_saving(tmp_path):
    keras.utils.set_random_seed(0)
    members = [create_model("skip", (28, 28, 3), 8, NO_AUGMENT, HPARAMS) for _ in range(2)]
    ensemble = average_ensemble(members, (28, 28, 3), "skip_x2")
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 3), dtype=np.uint8)
    expected = np.mean([m.predict(images, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(ensemble.predict(images, verbose=0), expected, atol=1e-6)
    assert not np.allclose(members[0].predict(images, verbose=0), expected)  # members differ
    ensemble.save(tmp_path / "ensemble.keras")
    loaded = keras.saving.load_model(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, atol=1e-6)
    assert loaded.output.dtype == "float32"


def test_evaluate_judges_each_member_of_a_loaded_ensemble_alone(tmp_path):
    keras.utils.set_random_seed(1)
    members = [create_model("skip", (28, 28, 3), 8, NO_AUGMENT, HPARAMS) for _ in range(2)]
    images = np.random.default_rng(1).integers(0, 256, (16, 28, 28, 3), dtype=np.uint8)
    y_true = members[0].predict(images, verbose=0).argmax(axis=1)  # member0 right on every image
    average_ensemble(members, (28, 28, 3), "skip_x2").save(tmp_path / "ensemble.keras")
    loaded = keras.saving.load_model(tmp_path / "ensemble.keras")
    rows = member_metrics(loaded, images, y_true, views=1, first_seed=42)
    assert [(r["member"], r["seed"]) for r in rows] == [("member0", 42), ("member1", 43)]
    assert rows[0]["accuracy"] == 1.0
    second = members[1].predict(images, verbose=0).argmax(axis=1)
    assert rows[1]["accuracy"] == np.mean(second == y_true)
    single = create_model("skip", (28, 28, 3), 8, NO_AUGMENT, HPARAMS)
    assert member_metrics(single, images, y_true, views=1, first_seed=42) == []  # not an ensemble
