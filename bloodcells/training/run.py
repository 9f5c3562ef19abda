"""One training run from params: load the splits, build the model, train resumably, save model and card.

The card (models/model.json) holds what is needed to rebuild and judge the model without the
pipeline: architecture and hyperparameters, recipe, seed, classes, input shape, how the images were
decoded, and the run's summary.
"""

from __future__ import annotations

import shutil
from typing import Any

import keras

from bloodcells.architectures import create_model
from bloodcells.core.files import atomic_path, write_json
from bloodcells.core.params import Params, model_hparams
from bloodcells.core.paths import CLASS_WEIGHTS_FILE, MODEL_CARD, MODEL_FILE, preprocessed_dir
from bloodcells.core.stage import require
from bloodcells.data.class_weights import read_class_weights
from bloodcells.data.splits import load_split, load_summary
from bloodcells.training.devices import distribution, set_determinism, set_precision
from bloodcells.training.loop import backup_dir, train_resumable


def train_model(params: Params) -> dict[str, Any]:
    """Train `params.model` at `train.size`; write models/model.keras and model.json; return the card."""
    train_params, seed = params.train, params.seed
    set_determinism(seed, train_params.deterministic)
    folder = require(preprocessed_dir(train_params.size), f"preprocess@{train_params.size}")
    summary = load_summary(folder)
    classes = summary["classes"]
    class_weight = read_class_weights(require(CLASS_WEIGHTS_FILE, "class_weights"))
    train, val = load_split(folder, "train", mmap=False), load_split(folder, "val", mmap=False)
    hparams = model_hparams(params)
    config = {
        "model": params.model,
        "hparams": hparams,
        "train": train_params.model_dump(),
        "augment": params.augment.model_dump(),
    }
    policy = set_precision(train_params.mixed_precision)
    with distribution(train_params.distribute) as replicas:
        model = create_model(
            params.model, tuple(summary["image_shape"]), len(classes), params.augment, hparams
        )
        print(
            f"{model.name}: {model.count_params():,} parameters, {len(train.labels)} training images "
            f"at {train_params.size} px, backend {keras.backend.backend()}, {policy}, {replicas} replica(s)"
        )
        backup = backup_dir({**config, "seed": seed, "data": summary})
        result = train_resumable(model, train, val, train_params, class_weight, seed, backup, replicas)

    with atomic_path(MODEL_FILE) as tmp:
        model.save(tmp)
    card = {
        **config,
        "seed": seed,
        "classes": classes,
        "input_shape": summary["image_shape"],
        "decoding": summary.get("decoding"),
        "stain_normalization": summary.get("stain_normalization"),  # apply to new images before predicting
        **result,
        "backend": keras.backend.backend(),
        "dtype_policy": policy,
    }
    write_json(MODEL_CARD, card)
    shutil.rmtree(backup, ignore_errors=True)  # the run is complete: nothing left to resume
    return card
