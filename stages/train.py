"""Train stage: fit the architecture named by the `model` param on one image size.

Reads data/preprocessed/<train.size>/, data/class_weights.json and params `seed`, `model`,
`train`, `augment`, `models.<model>`. Writes models/model.keras, models/model.json (what is
needed to rebuild and judge it) and per-epoch curves via dvclive in metrics/train/.
Backend-agnostic Keras 3: runs under KERAS_BACKEND=tensorflow (default) or jax.
Run: python -m stages.train
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import keras
import numpy as np
from dvclive import Live

from stages.architectures import create_model
from stages.class_weights import read_class_weights
from stages.cost import peak_memory_mb
from stages.dataset import Split, load_split, load_summary, make_inputs, preprocessed_dir
from stages.devices import distribution, set_determinism, set_precision, use_xla
from stages.files import atomic_path, write_json
from stages.params import AugmentParams, ParamsError, TrainParams, load_params, load_value, read_params
from stages.recipe import check_recipe, make_loss, make_optimizer, schedule_callbacks

MODEL_DIR = Path("models")
MODEL_FILE = MODEL_DIR / "model.keras"
MODEL_CARD = MODEL_DIR / "model.json"
LIVE_DIR = Path("metrics/train")
BACKUP_ROOT = Path("data/train-backup")


class LiveLogger(keras.callbacks.Callback):
    """Log every epoch's metrics and learning rate to dvclive, on any Keras backend.

    dvclive's own DVCLiveCallback imports TensorFlow; this one only talks to `Live`.
    Keras names validation metrics `val_<name>`; they are logged as `val/<name>` beside `train/<name>`.
    """

    def __init__(self, live: Live) -> None:
        super().__init__()
        self.live = live

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        for key, value in (logs or {}).items():
            if key == "learning_rate":
                name = "learning_rate"
            elif key.startswith("val_"):
                name = f"val/{key[4:]}"
            else:
                name = f"train/{key}"
            self.live.log_metric(name, float(value))
        if "learning_rate" not in (logs or {}):
            self.live.log_metric(
                "learning_rate", float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            )
        self.live.next_step()


def fit(
    model: keras.Model,
    train: Split,
    val: Split,
    params: TrainParams,
    class_weight: dict[int, float] | None,
    seed: int,
    callbacks: list[keras.callbacks.Callback],
    replicas: int = 1,
) -> keras.callbacks.History:
    """Compile with the recipe's optimizer and loss, then fit with early stopping and LR decay."""
    steps_per_epoch = -(-len(train.labels) // params.batch_size)
    n_classes = model.output_shape[-1]
    model.compile(
        optimizer=make_optimizer(params, steps_per_epoch),
        loss=make_loss(params),
        metrics=["accuracy"],
        jit_compile=use_xla(params.jit_compile),
    )
    one_hot = n_classes if params.label_smoothing else 0
    batches = dict(batch_size=params.batch_size, seed=seed, one_hot=one_hot, replicas=replicas)
    train_inputs = make_inputs(train, shuffle=True, **batches)
    val_inputs = make_inputs(val, shuffle=False, **batches)
    array_inputs = isinstance(train_inputs, tuple)
    x, y = train_inputs if array_inputs else (train_inputs, None)
    return model.fit(
        x,
        y,
        batch_size=params.batch_size if array_inputs else None,
        shuffle=array_inputs,
        epochs=params.epochs,
        validation_data=val_inputs,
        class_weight=class_weight,
        callbacks=[*schedule_callbacks(params), *callbacks],
        verbose=2,
    )


def backup_dir(config: dict[str, Any]) -> Path:
    """Per-configuration folder for epoch checkpoints, so a killed run resumes only its own training."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    return BACKUP_ROOT / digest


def train_with_live(
    model: keras.Model,
    train: Split,
    val: Split,
    params: TrainParams,
    seed: int,
    backup: Path,
    replicas: int = 1,
) -> dict[str, Any]:
    """Fit with epoch checkpoints in `backup` and curves in dvclive; return the run's summary."""
    resuming = backup.exists()
    if resuming:
        print(f"resuming from the last epoch checkpoint in {backup}")
    else:
        shutil.rmtree(LIVE_DIR, ignore_errors=True)  # persisted by DVC only for resuming
    with Live(str(LIVE_DIR), dvcyaml=False, save_dvc_exp=False, resume=resuming) as live:
        start = time.perf_counter()
        resume = keras.callbacks.BackupAndRestore(str(backup))
        callbacks = [resume, LiveLogger(live)]
        history = fit(model, train, val, params, read_class_weights(), seed, callbacks, replicas)
        val_losses = history.history["val_loss"]
        best = int(np.argmin(val_losses))
        summary = {
            "best/epoch": history.epoch[best] + 1,
            "best/val_loss": float(val_losses[best]),
            "best/val_accuracy": float(history.history["val_accuracy"][best]),
            "epochs_run": history.epoch[-1] + 1,
            "train_seconds": round(time.perf_counter() - start, 1),
            "parameters": model.count_params(),
            "peak_memory_mb": peak_memory_mb(),
        }
        for name, value in summary.items():
            live.log_metric(name, value, plot=False)
    return summary


def main() -> None:
    all_params = read_params()
    seed = int(load_value("seed"))
    model_name = load_value("model")
    params = load_params("train", TrainParams)
    augment = load_params("augment", AugmentParams)
    hparams = all_params.get("models", {}).get(model_name) or {}
    set_determinism(seed, params.deterministic)
    folder = preprocessed_dir(params.size)
    summary = load_summary(folder)
    classes = summary["classes"]
    train, val = load_split(folder, "train", mmap=False), load_split(folder, "val", mmap=False)
    config = {"model": model_name, "hparams": hparams, "train": asdict(params), "augment": asdict(augment)}

    try:
        check_recipe(params)
        policy = set_precision(params.mixed_precision)
        with distribution(params.distribute) as replicas:
            model = create_model(model_name, tuple(summary["image_shape"]), len(classes), augment, hparams)
            print(
                f"{model.name}: {model.count_params():,} parameters, {len(train.labels)} training images "
                f"at {params.size} px, backend {keras.backend.backend()}, {policy}, {replicas} replica(s)"
            )
            backup = backup_dir({**config, "seed": seed, "data": summary})
            result = train_with_live(model, train, val, params, seed, backup, replicas)
    except (ValueError, ParamsError) as error:
        sys.exit(f"train failed: {error}")

    with atomic_path(MODEL_FILE) as tmp:
        model.save(tmp)
    card = {**config, "seed": seed, "classes": classes, "input_shape": summary["image_shape"]}
    write_json(MODEL_CARD, {**card, **result, "backend": keras.backend.backend(), "dtype_policy": policy})
    print(
        f"{MODEL_FILE}: best epoch {result['best/epoch']} of {result['epochs_run']}, "
        f"val_accuracy {result['best/val_accuracy']:.4f}, {result['train_seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
