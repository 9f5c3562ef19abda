"""The optimisation recipe: optimizer, learning-rate schedule, loss and their callbacks.

Kept apart from the train stage so each lever the accuracy work measures (AdamW and weight decay,
cosine decay with warm-up, label smoothing) is one param and one small function here.
"""

from __future__ import annotations

import keras

from stages.devices import check_distribution, resolve
from stages.params import TrainParams

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("plateau", "cosine")


def check_recipe(params: TrainParams) -> None:
    """Reject unknown names and impossible values before any work is done."""
    if params.optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown train.optimizer {params.optimizer!r}. Known: {', '.join(OPTIMIZERS)}")
    if params.schedule not in SCHEDULES:
        raise ValueError(f"Unknown train.schedule {params.schedule!r}. Known: {', '.join(SCHEDULES)}")
    if not 0.0 <= params.label_smoothing < 1.0:
        raise ValueError(f"train.label_smoothing must be in [0, 1), got {params.label_smoothing}")
    for name in ("epochs", "batch_size"):
        if getattr(params, name) < 1:
            raise ValueError(f"train.{name} must be at least 1, got {getattr(params, name)}")
    if params.lr <= 0:
        raise ValueError(f"train.lr must be positive, got {params.lr}")
    resolve(params.mixed_precision, "mixed_precision")
    resolve(params.jit_compile, "jit_compile")
    check_distribution(params.distribute)


def learning_rate(
    params: TrainParams, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """A constant rate (decayed on plateau by a callback) or cosine decay after a linear warm-up."""
    if params.schedule == "plateau":
        return params.lr
    warmup_steps = params.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=params.lr / 100 if warmup_steps else params.lr,
        decay_steps=max(1, params.epochs * steps_per_epoch - warmup_steps),
        alpha=params.min_lr / params.lr,
        warmup_target=params.lr if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def make_optimizer(params: TrainParams, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam, or AdamW with decoupled weight decay."""
    rate = learning_rate(params, steps_per_epoch)
    if params.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=params.weight_decay)
    return keras.optimizers.Adam(learning_rate=rate)


def make_loss(params: TrainParams) -> keras.losses.Loss:
    """Cross-entropy; with label smoothing the labels must be one-hot (see `one_hot_labels`)."""
    if params.label_smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=params.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def schedule_callbacks(params: TrainParams) -> list[keras.callbacks.Callback]:
    """Early stopping on validation loss (best weights restored), plus plateau decay if chosen."""
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=params.early_stopping_patience, restore_best_weights=True
        )
    ]
    if params.schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=params.lr_factor, patience=params.lr_patience, min_lr=params.min_lr
            )
        )
    return callbacks
