"""Test-time augmentation: the 8 views are the 8 symmetries of the square, averaged correctly."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from bloodcells.core.params import ParamsError, TtaViews, check_value
from bloodcells.model.tta import dihedral_view, predict_probabilities
from tests.conftest import shipped_params


def test_the_eight_views_are_distinct_symmetries():
    image = np.arange(3 * 3 * 1).reshape(1, 3, 3, 1)
    views = [dihedral_view(image, i) for i in range(8)]
    assert len({v.tobytes() for v in views}) == 8
    assert np.array_equal(views[1][0, :, :, 0], np.rot90(image[0, :, :, 0]))
    assert np.array_equal(views[4][0, :, :, 0], image[0, :, ::-1, 0])


def test_predictions_average_over_views_and_bad_counts_are_refused():
    inputs = keras.Input((4, 4, 1))
    # Weight only the top-left pixel: the prediction depends on orientation, so TTA changes it.
    x = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="out")(x))
    weights = np.zeros((16, 2), "float32")
    weights[0, 0] = 5.0
    model.get_layer("out").set_weights([weights, np.zeros(2, "float32")])
    images = np.zeros((1, 4, 4, 1), "float32")
    images[0, 0, 0, 0] = 1.0
    single = predict_probabilities(model, images, batch_size=8, views=1)
    averaged = predict_probabilities(model, images, batch_size=8, views=8)
    expected = np.mean([model.predict(dihedral_view(images, i), verbose=0) for i in range(8)], axis=0)
    np.testing.assert_allclose(averaged, expected, rtol=1e-6)
    assert single[0, 0] > averaged[0, 0]


@pytest.mark.parametrize(("text", "message"), [("9", "less than or equal to 8"), ("0", "greater than or")])
def test_a_view_count_is_checked_once_by_the_schema_type_the_flag_shares(text, message):
    """`evaluate.tta_views` and `bloodcells predict --tta` are checked by one type, TtaViews."""
    with pytest.raises(ParamsError, match=f"^Input should be {message}.*got '{text}'"):
        check_value(TtaViews, text)
    assert check_value(TtaViews, "8") == 8
    with pytest.raises(ParamsError, match=f"^params.yaml: evaluate.tta_views: Input should be {message}"):
        shipped_params({"evaluate.tta_views": int(text)})
