"""Temperature scaling: what it keeps, what it changes, and that fitting finds a known temperature."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from bloodcells.model.temperature import apply_temperature, fit_temperature, negative_log_likelihood


def miscalibrated(n: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z), and a model's probabilities softmax(temperature * z).

    Dividing the model's log-probabilities by `temperature` gives back softmax(z), the true ones.
    """
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, (n, 5))
    truth = softmax(logits, axis=1)
    labels = (rng.random((n, 1)) > truth.cumsum(axis=1)).sum(axis=1)
    return softmax(temperature * logits, axis=1), labels


def test_temperature_one_changes_nothing_and_no_temperature_changes_a_prediction():
    probs, _ = miscalibrated(200, 1.0)
    assert apply_temperature(probs, 1.0) == pytest.approx(probs)
    for temperature in (0.3, 3.0):
        scaled = apply_temperature(probs, temperature)
        assert scaled.sum(axis=1) == pytest.approx(np.ones(200))
        assert (scaled.argmax(axis=1) == probs.argmax(axis=1)).all()
    assert (apply_temperature(probs, 0.5).max(axis=1) >= probs.max(axis=1) - 1e-12).all()  # sharper
    assert (apply_temperature(probs, 2.0).max(axis=1) <= probs.max(axis=1) + 1e-12).all()  # softer


def test_zero_probabilities_and_a_bad_temperature():
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]], dtype=np.float32)
    assert np.isfinite(apply_temperature(probs, 2.0)).all()
    with pytest.raises(ValueError, match="temperature must be positive"):
        apply_temperature(probs, 0.0)


@pytest.mark.parametrize("temperature", [0.5, 2.5])
def test_fitting_recovers_the_temperature_of_over_and_underconfident_models(temperature):
    probs, labels = miscalibrated(20000, temperature)
    fitted = fit_temperature(probs, labels)
    assert fitted == pytest.approx(temperature, rel=0.05)
    assert negative_log_likelihood(probs, labels, fitted) < negative_log_likelihood(probs, labels, 1.0)


def test_a_calibrated_model_keeps_a_temperature_near_one():
    probs, labels = miscalibrated(20000, 1.0, seed=3)
    assert fit_temperature(probs, labels) == pytest.approx(1.0, abs=0.05)
