"""The optimisation recipe: optimizer, learning-rate schedule, loss and the plateau rule.

Kept apart from the train stage so each lever the accuracy work measures (AdamW and weight decay,
cosine decay with warm-up, label smoothing) is one param and one small function here.
"""

from __future__ import annotations

import math

import keras

from bloodcells.core.params import TrainParams


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
    """Adam, or AdamW with decoupled weight decay; with `ema_momentum`, Keras's moving average of the weights.

    The average is Keras's own (`use_ema`): updated after every step, written into the model when
    `fit` ends; `bloodcells.training.loop.exchange_averaged_weights` validates and saves it.
    """
    rate = learning_rate(params, steps_per_epoch)
    momentum = average_momentum(params, steps_per_epoch)
    average = dict(use_ema=momentum > 0, ema_momentum=momentum)
    if params.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=params.weight_decay, **average)
    return keras.optimizers.Adam(learning_rate=rate, **average)


def average_momentum(params: TrainParams, steps_per_epoch: int) -> float:
    """`train.ema_momentum`, capped so that the run's steps forget the initial weights.

    Keras starts the average at the first step's weights, whose share after n steps is momentum**n;
    the cap 1 - 4/n keeps it under e**-4 (2%) by the end of the run. A long run leaves the
    momentum as it is; a run of under 5 steps (a smoke test) averages nothing.
    """
    steps = params.epochs * steps_per_epoch
    return max(0.0, min(params.ema_momentum, 1 - 4 / steps))


def make_loss(params: TrainParams) -> keras.losses.Loss:
    """Cross-entropy; with label smoothing the labels must be one-hot (`make_inputs(one_hot=...)`)."""
    if params.label_smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=params.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def plateau_decays(val_losses: list[float], params: TrainParams, min_delta: float) -> bool:
    """Whether the plateau schedule halves the rate after the last of `val_losses` (Keras's rule).

    A pure function of the whole history, replayed from the first epoch, so a resumed run decays
    exactly where an uninterrupted one would.
    """
    best, wait, decay = math.inf, 0, False
    for loss in val_losses:
        decay = False
        if loss < best - min_delta:
            best, wait = loss, 0
        else:
            wait += 1
            if wait >= params.lr_patience:
                wait, decay = 0, True
    return decay
