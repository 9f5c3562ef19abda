"""The training loop: fit with the recipe, checkpoint every epoch, and resume exactly where a kill left off.

A run's whole state lives in its backup folder (data/train-backup/<configuration digest>/): Keras's
BackupAndRestore checkpoint (weights, optimizer, epoch), the state of every random generator of the
model (dropout, augmentation: Keras's checkpoint leaves them out), the history of every epoch so far,
and the best epoch's weights. Early stopping, plateau decay, the best-epoch choice and the curves are all
computed from that history, and each epoch's batches come from a permutation seeded by (seed,
epoch), so a killed and resumed run ends where an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
from dvclive import Live

from bloodcells.core.files import write_json
from bloodcells.core.params import TrainParams
from bloodcells.core.paths import BACKUP_ROOT, TRAIN_METRICS_DIR
from bloodcells.core.resources import peak_memory_mb
from bloodcells.core.stage import StageError
from bloodcells.data.splits import Split
from bloodcells.model.batchnorm import adapt_batchnorm, batchnorm_layers, recompute_batchnorm  # noqa: F401
from bloodcells.training.devices import use_xla
from bloodcells.training.inputs import make_inputs
from bloodcells.training.recipe import average_momentum, make_loss, make_optimizer, plateau_decays

PLATEAU_MIN_DELTA = 1e-4  # as Keras's ReduceLROnPlateau


class Diverged(StageError):
    """The loss became NaN or infinite."""


# Called after each epoch is recorded and checkpointed, with the model and the history so far.
EpochHook = Callable[[keras.Model, list[dict[str, float]]], None]


def backup_dir(config: dict[str, Any], root: Path = BACKUP_ROOT) -> Path:
    """Per-configuration folder for epoch checkpoints, so a killed run resumes only its own training."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return root / digest


def completed_epochs(backup: Path) -> int:
    """Epochs the last checkpoint in `backup` holds (0 when there is none)."""
    metadata = backup / "training_metadata.json"
    return int(json.loads(metadata.read_text())["epoch"]) if metadata.exists() else 0


def read_history(backup: Path, epochs: int) -> list[dict[str, float]]:
    """The logs of the first `epochs` epochs, as the run recorded them before it was killed."""
    path = backup / "history.json"
    history = json.loads(path.read_text()) if path.exists() else []
    return history[:epochs]  # a kill between the history and the checkpoint leaves one epoch too many


def best_epoch(history: list[dict[str, float]]) -> int:
    """Index of the epoch with the lowest validation loss (the first, on ties)."""
    return int(np.argmin([entry["val_loss"] for entry in history]))


def write_curves(history: list[dict[str, float]], summary: dict[str, Any] | None, folder: Path) -> None:
    """dvclive's curves of every epoch so far (steps 0..N-1, once each), and the summary when done."""
    with Live(str(folder), dvcyaml=False, save_dvc_exp=False, resume=False, report=None) as live:
        for entry in history:
            for key, value in entry.items():
                if key == "seconds":
                    continue
                name = (
                    key
                    if key == "learning_rate"
                    else f"val/{key[4:]}"
                    if key.startswith("val_")
                    else f"train/{key}"
                )
                live.log_metric(name, value)
            live.next_step()
        for name, value in (summary or {}).items():
            live.log_metric(name, value, plot=False)


SEED_STATES = "seed_states.json"  # in the backup folder: {epochs done: [state of each generator]}


def seed_variables(model: keras.Model) -> list[keras.Variable]:
    """The state of each random generator in the model (dropout masks, augmentation draws), in layer order."""
    return [variable for variable in model.variables if variable.name == "seed_generator_state"]


def exchange_averaged_weights(model: keras.Model) -> None:
    """Swap the model's trainable weights with the optimizer's moving average of them (`train.ema_momentum`).

    Its own inverse: called twice, everything is back where it was. Keras keeps the average in the
    optimizer (`use_ema`) and only writes it into the model when `fit` ends; validating and saving
    the average epoch by epoch needs it in the model for a moment. Does nothing without an average.
    """
    optimizer = model.optimizer
    averages = getattr(optimizer, "_model_variables_moving_average", None)  # Keras's use_ema store
    if not (optimizer.use_ema and averages):
        return
    for variable, average in zip(optimizer._trainable_variables, averages, strict=True):
        if average is not None:
            current = keras.ops.convert_to_numpy(variable)
            variable.assign(average)
            average.assign(current)


class ValidateAverage(keras.callbacks.Callback):
    """Validation scores the moving average of the weights (`train.ema_momentum`), not the last step's."""

    def on_test_begin(self, logs: dict | None = None) -> None:
        exchange_averaged_weights(self.model)  # a no-op without an average

    def on_test_end(self, logs: dict | None = None) -> None:
        exchange_averaged_weights(self.model)


class RunState(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that also keeps the run's history and best weights, and decides when to stop.

    At each epoch's end, in this order: refuse a non-finite loss, record the epoch, keep the best
    weights, decay a plateaued learning rate, stop early, rewrite the curves, checkpoint, then call
    `on_epoch`. With a moving average of the weights (`train.ema_momentum`), the best epoch keeps the
    average (which `ValidateAverage` validated); the checkpoint keeps both, as training left them.
    """

    def __init__(
        self,
        backup: Path,
        params: TrainParams,
        history: list[dict[str, float]],
        on_epoch: EpochHook | None = None,
    ):
        super().__init__(str(backup), delete_checkpoint=False)
        self.backup, self.recipe, self.history, self.on_epoch = backup, params, history, on_epoch
        self.epoch_start = time.perf_counter()

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)  # restores weights, optimizer and epoch from the checkpoint
        path = self.backup / SEED_STATES
        saved = json.loads(path.read_text()) if path.exists() else {}
        states = saved.get(str(completed_epochs(self.backup)))
        if states is not None:
            for variable, state in zip(seed_variables(self.model), states, strict=True):
                variable.assign(np.asarray(state, dtype=variable.dtype))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = {key: float(value) for key, value in (logs or {}).items()}
        bad = sorted(key for key, value in logs.items() if not math.isfinite(value))
        if bad:
            raise Diverged(
                f"training diverged: {', '.join(bad)} became {logs[bad[0]]} in epoch {epoch + 1}; "
                f"lower train.lr (now {self.recipe.lr}) or check the data"
            )
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        logs["seconds"] = round(time.perf_counter() - self.epoch_start, 3)
        self.history.append(logs)
        if best_epoch(self.history) == len(self.history) - 1:
            exchange_averaged_weights(self.model)
            self.model.save_weights(str(self.backup / "best.weights.h5"))
            exchange_averaged_weights(self.model)
        val_losses = [entry["val_loss"] for entry in self.history]
        if self.recipe.schedule == "plateau" and plateau_decays(val_losses, self.recipe, PLATEAU_MIN_DELTA):
            optimizer.learning_rate = max(logs["learning_rate"] * self.recipe.lr_factor, self.recipe.min_lr)
        if len(self.history) - 1 - best_epoch(self.history) >= self.recipe.early_stopping_patience:
            self.model.stop_training = True
        write_json(self.backup / "history.json", self.history)
        self.save_seed_states(len(self.history))
        write_curves(self.history, None, TRAIN_METRICS_DIR)
        super().on_epoch_end(epoch, logs)
        if self.on_epoch:
            self.on_epoch(self.model, self.history)

    def save_seed_states(self, epochs_done: int) -> None:
        """Keep the generators' states after `epochs_done` epochs, for a run resumed from that checkpoint."""
        path = self.backup / SEED_STATES
        saved = json.loads(path.read_text()) if path.exists() else {}
        saved[str(epochs_done)] = [
            keras.ops.convert_to_numpy(variable).tolist() for variable in seed_variables(self.model)
        ]
        write_json(path, saved)


def train_resumable(
    model: keras.Model,
    train: Split,
    val: Split,
    params: TrainParams,
    class_weight: dict[int, float] | None,
    seed: int,
    backup: Path,
    replicas: int = 1,
    *,
    jit_compile: str | bool,
    on_epoch: EpochHook | None = None,
    verbose: int = 2,
) -> dict[str, Any]:
    """Fit `model` from where `backup` left off; restore the best epoch's weights; return the summary.

    `jit_compile` is `runtime.jit_compile` (auto | on | off, or YAML's true/false). `on_epoch(model,
    history)` runs after each epoch is recorded and checkpointed, so a caller can watch the run
    epoch by epoch (`history[-1]["seconds"]`: that epoch's training and validation) and end it by
    setting `model.stop_training` (scripts/bench/time_to_accuracy.py). `verbose` is Keras's.
    """
    backup.mkdir(parents=True, exist_ok=True)
    done = completed_epochs(backup)
    history = read_history(backup, done)
    if done and verbose:
        print(f"resuming after epoch {done} from the checkpoint in {backup}")
    steps_per_epoch = -(-len(train.labels) // params.batch_size)
    n_classes = model.output_shape[-1]
    model.compile(
        optimizer=make_optimizer(params, steps_per_epoch),
        loss=make_loss(params),
        metrics=["accuracy"],
        jit_compile=use_xla(jit_compile),
    )
    if params.ema_momentum and verbose:
        momentum = average_momentum(params, steps_per_epoch)
        print(f"weights averaged with momentum {momentum:g} (train.ema_momentum {params.ema_momentum:g})")
    batches = dict(
        batch_size=params.batch_size, seed=seed, one_hot=n_classes if params.label_smoothing else 0
    )
    train_inputs = make_inputs(
        train, shuffle=True, first_epoch=done, epochs=params.epochs, replicas=replicas, **batches
    )
    val_inputs = make_inputs(val, shuffle=False, replicas=replicas, **batches)
    state = RunState(backup, params, history, on_epoch)
    if done < params.epochs and not (history and _stopped_early(history, params)):
        try:
            model.fit(
                **train_inputs.fit_args(),
                **val_inputs.validation_args(),
                epochs=params.epochs,
                class_weight=class_weight,
                callbacks=[ValidateAverage(), state],
                verbose=verbose,
            )
        except Diverged:
            shutil.rmtree(backup, ignore_errors=True)  # a rerun must not resume a diverged run
            raise
    best = best_epoch(state.history)
    if not model.optimizer.built:  # nothing left to fit: the checkpoint holds optimizer variables too
        model.optimizer.build(model.trainable_variables)
    model.load_weights(str(backup / "best.weights.h5"))
    lag: dict[str, float] = {}
    if params.recompute_batchnorm and batchnorm_layers(model):
        val_x, val_y = np.asarray(val.images), val.labels
        lag["bn/val_accuracy_before"] = split_accuracy(model, val_x, val_y, params.batch_size)
        recompute_batchnorm(model, train.images, params.batch_size, seed)
        lag["bn/val_accuracy_after"] = split_accuracy(model, val_x, val_y, params.batch_size)
    summary = {
        "best/epoch": best + 1,
        "best/val_loss": state.history[best]["val_loss"],
        "best/val_accuracy": state.history[best]["val_accuracy"],
        "epochs_run": len(state.history),
        "train_seconds": round(sum(entry["seconds"] for entry in state.history), 1),
        "parameters": model.count_params(),
        **lag,
        "peak_memory_mb": peak_memory_mb(),
    }
    write_curves(state.history, summary, TRAIN_METRICS_DIR)
    return summary


def split_accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int) -> float:
    """Top-1 accuracy of `model` (inference mode) on one split."""
    scores = model.predict(images, batch_size=max(batch_size, 256), verbose=0)
    return round(float((scores.argmax(axis=1) == labels).mean()), 6)


def _stopped_early(history: list[dict[str, float]], params: TrainParams) -> bool:
    """Whether the recorded history already ended the run by early stopping."""
    return len(history) - 1 - best_epoch(history) >= params.early_stopping_patience
