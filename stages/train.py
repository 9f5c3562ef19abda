"""Train stage: fit the architecture named by the `model` param on one image size.

Reads data/preprocessed/<train.size>/, data/class_weights.json and params `seed`, `model`,
`train`, `augment`, `models.<model>`. Writes models/model.keras, models/model.json (what is
needed to rebuild and judge it) and per-epoch curves via dvclive in metrics/train/.
Backend-agnostic Keras 3: runs under KERAS_BACKEND=tensorflow (default) or jax.
Run: python -m stages.train
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from dvclive import Live

from stages.architectures import create_model
from stages.class_weights import read_class_weights
from stages.dataset import Split, load_split, load_summary, preprocessed_dir
from stages.files import atomic_path, write_json
from stages.params import AugmentParams, ParamsError, TrainParams, load_params, load_value, read_params

MODEL_DIR = Path("models")
MODEL_FILE = MODEL_DIR / "model.keras"
MODEL_CARD = MODEL_DIR / "model.json"
LIVE_DIR = Path("metrics/train")


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


def make_inputs(split: Split, batch_size: int, shuffle: bool, seed: int) -> Any:
    """Batches of (uint8 image, label) from in-memory arrays.

    Under TensorFlow a tf.data pipeline (shuffled each epoch, prefetched); under other backends
    Keras's own array adapter, so the stage runs where TensorFlow is not installed.
    """
    images, labels = np.asarray(split.images), split.labels.astype("int32")
    if keras.backend.backend() != "tensorflow":
        return images, labels
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def fit(
    model: keras.Model,
    train: Split,
    val: Split,
    params: TrainParams,
    class_weight: dict[int, float] | None,
    seed: int,
    callbacks: list[keras.callbacks.Callback],
) -> keras.callbacks.History:
    """Compile with Adam and sparse cross-entropy, then fit with early stopping and LR decay."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params.lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    train_inputs = make_inputs(train, params.batch_size, shuffle=True, seed=seed)
    val_inputs = make_inputs(val, params.batch_size, shuffle=False, seed=seed)
    array_inputs = isinstance(train_inputs, tuple)
    x, y = train_inputs if array_inputs else (train_inputs, None)
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=params.early_stopping_patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=params.lr_factor, patience=params.lr_patience, min_lr=params.min_lr
        ),
        *callbacks,
    ]
    return model.fit(
        x,
        y,
        batch_size=params.batch_size if array_inputs else None,
        shuffle=array_inputs,
        epochs=params.epochs,
        validation_data=val_inputs,
        class_weight=class_weight,
        callbacks=callbacks,
        verbose=2,
    )


def main() -> None:
    all_params = read_params()
    seed = int(load_value("seed"))
    model_name = load_value("model")
    params = load_params("train", TrainParams)
    augment = load_params("augment", AugmentParams)
    hparams = all_params.get("models", {}).get(model_name) or {}
    keras.utils.set_random_seed(seed)

    folder = preprocessed_dir(params.size)
    summary = load_summary(folder)
    classes = summary["classes"]
    train, val = load_split(folder, "train", mmap=False), load_split(folder, "val", mmap=False)
    try:
        model = create_model(model_name, tuple(summary["image_shape"]), len(classes), augment, hparams)
    except (ValueError, ParamsError) as error:
        sys.exit(f"train failed: {error}")
    print(
        f"{model.name}: {model.count_params():,} parameters, {len(train.labels)} training images "
        f"at {params.size} px, backend {keras.backend.backend()}"
    )

    with Live(str(LIVE_DIR), dvcyaml=False, save_dvc_exp=False) as live:
        start = time.perf_counter()
        history = fit(model, train, val, params, read_class_weights(), seed, [LiveLogger(live)])
        train_seconds = time.perf_counter() - start
        val_losses = history.history["val_loss"]
        best_epoch = int(np.argmin(val_losses)) + 1
        for name, value in {
            "best/epoch": best_epoch,
            "best/val_loss": val_losses[best_epoch - 1],
            "best/val_accuracy": history.history["val_accuracy"][best_epoch - 1],
            "epochs_run": len(val_losses),
            "train_seconds": train_seconds,
            "parameters": model.count_params(),
        }.items():
            live.log_metric(name, float(value) if isinstance(value, float) else value, plot=False)

    with atomic_path(MODEL_FILE) as tmp:
        model.save(tmp)
    write_json(
        MODEL_CARD,
        {
            "model": model_name,
            "hparams": hparams,
            "train": params.__dict__,
            "augment": augment.__dict__,
            "seed": seed,
            "classes": classes,
            "input_shape": summary["image_shape"],
            "parameters": model.count_params(),
            "epochs_run": len(val_losses),
            "best_epoch": best_epoch,
            "train_seconds": round(train_seconds, 1),
            "backend": keras.backend.backend(),
        },
    )
    print(
        f"{MODEL_FILE}: best epoch {best_epoch} of {len(val_losses)}, "
        f"val_accuracy {history.history['val_accuracy'][best_epoch - 1]:.4f}, {train_seconds:.0f} s"
    )


if __name__ == "__main__":
    main()
