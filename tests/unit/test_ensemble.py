"""train.ensemble: members' probabilities averaged in one saveable model."""

from __future__ import annotations

import keras
import numpy as np

from bloodcells.architectures import create_model
from bloodcells.architectures.augment import NO_AUGMENT
from bloodcells.training.run import average_ensemble

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
