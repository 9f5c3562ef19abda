"""One training run from params: load the splits, build the model, train resumably, save model and card.

The card (models/model.json) holds what is needed to rebuild and judge the model without the
pipeline: architecture and hyperparameters, recipe, seed, classes, input shape, how the images were
decoded, the run's summary, and the temperature that calibrates its confidences (fitted on the
validation split once the best epoch's weights are back).
"""

from __future__ import annotations

import shutil
from typing import Any

import keras
import numpy as np

from bloodcells.architectures import create_model
from bloodcells.architectures.ensemble import average_ensemble
from bloodcells.core.files import atomic_path, write_json
from bloodcells.core.params import Params, model_hparams
from bloodcells.core.paths import CLASS_WEIGHTS_FILE, MODEL_CARD, MODEL_FILE, preprocessed_dir
from bloodcells.core.stage import require
from bloodcells.data.class_weights import read_class_weights
from bloodcells.data.splits import Split, load_split, load_summary
from bloodcells.model.temperature import fit_temperature, negative_log_likelihood
from bloodcells.training.devices import distribution, set_determinism, set_precision
from bloodcells.training.loop import backup_dir, split_accuracy, train_resumable

VAL_PREDICT_BATCH = 256


def fit_val_temperature(model: keras.Model, val: Split) -> dict[str, Any]:
    """Temperature scaling fitted on the validation split (one view per image), with the NLL it changes."""
    probs = np.asarray(model.predict(val.images, batch_size=VAL_PREDICT_BATCH, verbose=0), dtype=np.float64)
    temperature = fit_temperature(probs, val.labels)
    before = negative_log_likelihood(probs, val.labels, 1.0)
    after = negative_log_likelihood(probs, val.labels, temperature)
    print(
        f"temperature {temperature:.4f} fitted on {len(val.labels)} val images: "
        f"NLL {before:.4f} -> {after:.4f}"
    )
    return {
        "temperature": temperature,
        "temperature_fit": {"split": "val", "views": 1, "val_nll": before, "val_nll_calibrated": after},
    }


def train_model(params: Params) -> dict[str, Any]:
    """Train `params.model` at `train.size`; write models/model.keras and model.json; return the card."""
    train_params, runtime, seed = params.train, params.runtime, params.seed
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
        "runtime": runtime.model_dump(),
        "augment": params.augment.model_dump(),
    }
    policy = set_precision(runtime.mixed_precision)
    shape, members, results, backups = tuple(summary["image_shape"]), [], [], []
    for member_seed in range(seed, seed + train_params.ensemble):  # one member unless train.ensemble > 1
        set_determinism(member_seed, runtime.deterministic)
        with distribution(runtime.distribute) as replicas:
            model = create_model(params.model, shape, len(classes), params.augment, hparams)
            print(
                f"{model.name} (seed {member_seed}): {model.count_params():,} parameters, "
                f"{len(train.labels)} training images at {train_params.size} px, "
                f"backend {keras.backend.backend()}, {policy}, {replicas} replica(s)"
            )
            backups.append(backup_dir({**config, "seed": member_seed, "data": summary}))
            fitted = train_resumable(
                model,
                train,
                val,
                train_params,
                class_weight,
                member_seed,
                backups[-1],
                replicas,
                jit_compile=runtime.jit_compile,
            )
            results.append(fitted)
        members.append(model)
    model, result = members[0], results[0]
    if len(members) > 1:
        model = average_ensemble(members, shape, f"{params.model}_x{len(members)}")
        result = ensemble_summary(results, model, val)

    with atomic_path(MODEL_FILE) as tmp:
        model.save(tmp)
    card = {
        **config,
        "seed": seed,
        "classes": classes,
        "input_shape": summary["image_shape"],
        "decoding": summary.get("decoding"),
        "cell_crop": summary.get("cell_crop"),  # bloodcells.data.prepare replays both on new images
        "stain_normalization": summary.get("stain_normalization"),
        **result,
        **fit_val_temperature(model, val),
        "backend": keras.backend.backend(),
        "dtype_policy": policy,
    }
    write_json(MODEL_CARD, card)
    for backup in backups:
        shutil.rmtree(backup, ignore_errors=True)  # the run is complete: nothing left to resume
    return card


def ensemble_summary(results: list[dict[str, Any]], model: keras.Model, val: Split) -> dict[str, Any]:
    """Members' summaries kept per member; training time and epochs summed; the ensemble's val accuracy."""
    return {
        "members": results,
        "epochs_run": sum(r["epochs_run"] for r in results),
        "train_seconds": round(sum(r["train_seconds"] for r in results), 1),
        "best/val_accuracy": split_accuracy(model, np.asarray(val.images), val.labels, VAL_PREDICT_BATCH),
        "best/epoch": results[0]["best/epoch"],
        "parameters": model.count_params(),
        "peak_memory_mb": max(r["peak_memory_mb"] for r in results),
    }
