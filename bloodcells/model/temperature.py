"""Temperature scaling: one number, fitted on the validation split, that makes confidences honest.

Label smoothing caps a model's confidences (near 0.93 with smoothing 0.1) and training can leave them
too high or too low. Dividing the log-probabilities by a temperature T before the softmax keeps
every prediction's class (the order of a row's scores is unchanged) and only rescales how sure it
is: T < 1 sharpens, T > 1 softens. T is the value minimising the validation negative log-likelihood.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

TEMPERATURE_BOUNDS = (0.05, 20.0)
_TINY = 1e-12  # probabilities of exactly 0 (float32 underflow) get a finite logarithm


def _log_probabilities(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), _TINY, 1.0))


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities (N, K) rescaled as softmax(log p / T); T = 1 returns them (renormalised)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return softmax(_log_probabilities(probs) / temperature, axis=1)


def negative_log_likelihood(probs: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean -log of the true class's probability after temperature scaling."""
    scaled = log_softmax(_log_probabilities(probs) / temperature, axis=1)
    return float(-scaled[np.arange(len(labels)), labels].mean())


def fit_temperature(
    probs: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = TEMPERATURE_BOUNDS
) -> float:
    """The temperature in `bounds` minimising the mean NLL of `labels` (bounded Brent search)."""
    if len(labels) == 0:
        raise ValueError("no images to fit a temperature on")
    log_probs = _log_probabilities(probs)
    rows = np.arange(len(labels))

    def nll(temperature: float) -> float:
        return float(-log_softmax(log_probs / temperature, axis=1)[rows, labels].mean())

    result = minimize_scalar(nll, bounds=bounds, method="bounded", options={"xatol": 1e-5})
    return float(result.x)
