"""bloodcells: the library behind the pipeline's stages (data, training, evaluation, architectures).

Environment defaults are set here, before anything imports Keras, because TensorFlow reads them
once at import time: oneDNN's kernels are faster on CPUs (docs/performance.md), and
TensorFlow's C++ start-up chatter would otherwise bury each stage's own log lines.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.2.0"
