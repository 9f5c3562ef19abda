"""What a model costs to run: peak memory of this process, file size, inference time.

Shared by the train and evaluate stages so both report memory the same way.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

MB = 1e6  # decimal megabytes, as file sizes are usually quoted


def peak_memory_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak * (1 if sys.platform == "darwin" else 1024) / MB, 1)


def file_size_mb(path: Path) -> float:
    """Size of a file in MB."""
    return round(path.stat().st_size / MB, 3)


def timed_predict(
    predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, warmup: int
) -> tuple[np.ndarray, float]:
    """`predict(images)` and the seconds it took.

    `predict` is first run on `warmup` images and the result thrown away: that pays for tracing and
    compiling the predict function, a one-off cost that is not the model's inference time.
    """
    predict(images[:warmup])
    start = time.perf_counter()
    scores = predict(images)
    return scores, time.perf_counter() - start
