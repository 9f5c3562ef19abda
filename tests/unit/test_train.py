"""Training pieces on tiny arrays: the recipe, the plateau rule, the resumable loop's state, the inputs.

The real train stage, killed and resumed, and determinism across two runs: tests/e2e/test_train.py.
"""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest

from bloodcells.core.params import ParamsError
from bloodcells.data.splits import Split
from bloodcells.training.devices import resolve
from bloodcells.training.inputs import Inputs, epoch_orders, evenly_split, make_inputs
from bloodcells.training.loop import (
    PLATEAU_MIN_DELTA,
    Diverged,
    RunState,
    backup_dir,
    best_epoch,
    completed_epochs,
    exchange_averaged_weights,
    read_history,
    train_resumable,
)
from bloodcells.training.recipe import average_momentum, learning_rate, make_optimizer, plateau_decays
from tests.conftest import group, shipped_params

BASE = group("train", size=28, epochs=10, batch_size=32, lr=1e-3, schedule="plateau")


def test_cosine_schedule_warms_up_then_decays_to_min_lr():
    cosine = BASE.model_copy(update={"schedule": "cosine", "warmup_epochs": 1, "min_lr": 1e-5})
    schedule = learning_rate(cosine, steps_per_epoch=10)
    assert float(schedule(0)) == pytest.approx(1e-5)
    assert float(schedule(10)) == pytest.approx(1e-3)
    assert float(schedule(100)) == pytest.approx(1e-5, rel=1e-3)
    assert learning_rate(BASE, 10) == 1e-3


def keras_plateau_rates(val_losses: list[float], params) -> list[float]:
    """The learning rate after each epoch under Keras's own ReduceLROnPlateau, fed the same losses."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(params.lr), loss="mse")
    callback = keras.callbacks.ReduceLROnPlateau(
        factor=params.lr_factor,
        patience=params.lr_patience,
        min_lr=params.min_lr,
        min_delta=PLATEAU_MIN_DELTA,
    )
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, loss in enumerate(val_losses):
        callback.on_epoch_end(epoch, {"val_loss": loss})
        rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    return rates


def test_plateau_decays_where_keras_reduce_lr_on_plateau_does():
    """Replayed from the whole history, the rule decays at the same epochs as Keras's callback."""
    params = BASE.model_copy(update={"lr_patience": 2, "lr_factor": 0.5, "min_lr": 1e-7})
    losses = [1.0, 0.9, 0.95, 0.92, 0.9, 0.91, 0.85, 0.85, 0.84999, 0.86, 0.7, 0.71, 0.72, 0.73]
    rate, ours = params.lr, []
    for n in range(1, len(losses) + 1):
        if plateau_decays(losses[:n], params, PLATEAU_MIN_DELTA):
            rate = max(rate * params.lr_factor, params.min_lr)
        ours.append(rate)
    assert ours == pytest.approx(keras_plateau_rates(losses, params))
    assert len(set(ours)) >= 3, "the sequence must decay more than once to test anything"


def test_plateau_never_decays_while_the_loss_improves():
    improving = [1.0 - 0.01 * i for i in range(20)]
    assert not any(plateau_decays(improving[:n], BASE, PLATEAU_MIN_DELTA) for n in range(1, 21))


def test_backup_folders_differ_by_configuration_and_history_reads_what_the_checkpoint_holds(tmp_path):
    assert backup_dir({"seed": 1}, tmp_path) != backup_dir({"seed": 2}, tmp_path)
    assert backup_dir({"a": 1, "b": 2}, tmp_path) == backup_dir({"b": 2, "a": 1}, tmp_path)
    backup = tmp_path / "b"
    backup.mkdir()
    assert completed_epochs(backup) == 0 and read_history(backup, 0) == []
    (backup / "training_metadata.json").write_text(json.dumps({"epoch": 2}))
    (backup / "history.json").write_text(
        json.dumps([{"val_loss": 3.0}, {"val_loss": 1.0}, {"val_loss": 2.0}])
    )
    assert completed_epochs(backup) == 2
    assert read_history(backup, 2) == [{"val_loss": 3.0}, {"val_loss": 1.0}]  # killed between the two writes
    assert best_epoch([{"val_loss": 2.0}, {"val_loss": 1.0}, {"val_loss": 1.0}]) == 1


def tiny_splits(n: int = 48, seed: int = 0) -> tuple[Split, Split]:
    """Two separable classes of 8 px images (bright vs dark) for a model that learns in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = (labels[:, None, None, None] * 150 + rng.integers(0, 100, (n, 8, 8, 3))).astype(np.uint8)
    cut = n // 2 + 8
    return Split(images[:cut], labels[:cut]), Split(images[cut:], labels[cut:])


def tiny_model() -> keras.Model:
    inputs = keras.Input((8, 8, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def test_run_state_records_every_epoch_keeps_the_best_weights_and_writes_curves(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the curves go to metrics/train under the working folder
    keras.utils.set_random_seed(0)
    train, val = tiny_splits()
    params = BASE.model_copy(update={"epochs": 3, "batch_size": 8, "label_smoothing": 0.0})
    backup = tmp_path / "backup"
    summary = train_resumable(
        tiny_model(), train, val, params, None, seed=0, backup=backup, jit_compile="off"
    )
    history = json.loads((backup / "history.json").read_text())
    assert len(history) == 3 == summary["epochs_run"] == completed_epochs(backup)
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "learning_rate", "seconds"} <= set(history[0])
    assert summary["best/epoch"] == best_epoch(history) + 1
    assert summary["best/val_loss"] == history[best_epoch(history)]["val_loss"]
    assert (backup / "best.weights.h5").is_file()
    with (tmp_path / "metrics/train/plots/metrics/val/loss.tsv").open() as f:
        curve = list(csv.DictReader(f, delimiter="\t"))
    assert [row["step"] for row in curve] == ["0", "1", "2"]
    assert [float(row["loss"]) for row in curve] == pytest.approx([h["val_loss"] for h in history])

    again = train_resumable(tiny_model(), train, val, params, None, seed=0, backup=backup, jit_compile="off")
    assert again["epochs_run"] == 3 and again["best/val_loss"] == summary["best/val_loss"]  # nothing refitted
    assert json.loads((backup / "history.json").read_text()) == history


def test_the_epoch_hook_sees_each_recorded_epoch_and_can_end_the_run(tmp_path, monkeypatch):
    """What scripts/bench/time_to_accuracy.py drives the loop with: called after each checkpoint."""
    monkeypatch.chdir(tmp_path)
    train, val = tiny_splits()
    params = BASE.model_copy(update={"epochs": 3, "batch_size": 8, "label_smoothing": 0.0})
    seen = []

    def stop_after_two(model, history):
        seen.append((len(history), history[-1]["seconds"], completed_epochs(tmp_path / "b")))
        model.stop_training = len(history) == 2

    summary = train_resumable(
        tiny_model(), train, val, params, None, 0, tmp_path / "b", jit_compile="off", on_epoch=stop_after_two
    )
    assert [(epochs, done) for epochs, _, done in seen] == [(1, 1), (2, 2)] and summary["epochs_run"] == 2
    assert all(seconds > 0 for _, seconds, _ in seen)


def test_run_state_stops_early_after_patience_epochs_without_a_better_val_loss(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tiny_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    state = RunState(tmp_path / "b", BASE.model_copy(update={"early_stopping_patience": 2}), [])
    (tmp_path / "b").mkdir()
    state.set_model(model)
    for epoch, loss in enumerate([1.0, 0.5, 0.6]):
        state.on_epoch_end(epoch, {"loss": loss, "val_loss": loss})
        assert not model.stop_training
    state.on_epoch_end(3, {"loss": 0.7, "val_loss": 0.7})
    assert model.stop_training and best_epoch(state.history) == 1


def test_a_nan_loss_stops_training_with_one_line_and_nothing_to_resume(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train, val = tiny_splits()
    params = BASE.model_copy(update={"epochs": 2, "batch_size": 8, "lr": 1e30, "label_smoothing": 0.0})
    with pytest.raises(Diverged, match=r"training diverged: .*loss became nan in epoch 1; lower train.lr"):
        train_resumable(
            tiny_model(), train, val, params, None, seed=0, backup=tmp_path / "backup", jit_compile="off"
        )
    assert not (tmp_path / "backup").exists()


def test_epoch_orders_depend_only_on_seed_and_epoch():
    whole = epoch_orders(10, seed=3, first_epoch=0, epochs=4)
    assert whole.shape == (4, 10) and all(sorted(order) == list(range(10)) for order in whole)
    np.testing.assert_array_equal(epoch_orders(10, seed=3, first_epoch=2, epochs=4), whole[2:])
    assert not np.array_equal(epoch_orders(10, seed=4, first_epoch=0, epochs=4), whole)


def test_a_resumed_run_gets_the_batches_an_uninterrupted_one_would():
    train, _ = tiny_splits()
    full = make_inputs(train, batch_size=7, shuffle=True, seed=5, one_hot=2, first_epoch=0, epochs=3)
    resumed = make_inputs(train, batch_size=7, shuffle=True, seed=5, one_hot=2, first_epoch=1, epochs=3)
    assert isinstance(full, Inputs) and full.steps_per_epoch == resumed.steps_per_epoch == 5  # 32 images
    full_labels = [y.numpy() for _, y in full.x]
    resumed_labels = [y.numpy() for _, y in resumed.x]
    assert len(full_labels) == 15 and len(resumed_labels) == 10 and full_labels[0].shape == (7, 2)
    for a, b in zip(full_labels[5:], resumed_labels, strict=True):
        np.testing.assert_array_equal(a, b)
    val = make_inputs(train, batch_size=7, shuffle=False, seed=5)
    assert val.validation_args()["validation_data"] is val.x and val.fit_args()["steps_per_epoch"] is None


def test_bad_hardware_switches_are_refused_by_the_schema():
    with pytest.raises(ParamsError, match="runtime.distribute: Input should be 'none' or 'data_parallel'"):
        shipped_params({"runtime.distribute": "horovod"})
    with pytest.raises(ParamsError, match="runtime.jit_compile.*: Input should be 'auto', 'on' or 'off'"):
        shipped_params({"runtime.jit_compile": "sometimes"})
    assert resolve(True) and not resolve("off")


@pytest.mark.parametrize(
    ("switch", "policy"),
    [
        ("auto", "float32"),
        ("off", "float32"),
        (False, "float32"),
        ("on", "mixed_bfloat16"),
        (True, "mixed_bfloat16"),
    ],
)
def test_mixed_precision_on_a_cpu_is_bfloat16_and_yaml_booleans_count(switch, policy):
    """YAML reads `-S runtime.mixed_precision=on` as true; on a CPU float16 has no fast kernels."""
    from bloodcells.training.devices import accelerators, precision_policy

    if accelerators():
        pytest.skip("this machine has an accelerator: `on` means float16 here")
    assert precision_policy(switch) == policy


def test_uneven_last_batches_lose_at_most_replicas_minus_one_images():
    images, labels = np.zeros((11959, 2, 2, 3), "uint8"), np.arange(11959)
    kept_images, kept_labels = evenly_split(images, labels, batch_size=64, replicas=2)
    assert len(kept_labels) == 11958 and (len(kept_labels) % 64) % 2 == 0
    assert (kept_labels == labels[:-1]).all() and len(kept_images) == 11958
    assert len(evenly_split(images, labels, batch_size=64, replicas=1)[1]) == 11959
    with pytest.raises(ValueError, match=r"train.batch_size \(64\) must be a multiple of the 3 replicas"):
        evenly_split(images, labels, batch_size=64, replicas=3)


def dropout_model() -> keras.Model:
    """A model with random layers (augmentation and dropout), built from a fixed seed."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.RandomFlip("horizontal")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.5)(keras.layers.Dense(16, activation="relu")(x))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


@pytest.mark.parametrize("ema_momentum", [0.0, 0.5])  # 0.5: below the cap of 8 and of 16 steps
def test_a_resumed_run_draws_the_random_numbers_an_uninterrupted_one_would(
    tmp_path, monkeypatch, ema_momentum
):
    """Keras's checkpoint leaves out the generators' states; without them epoch 2's dropout masks and
    flips would differ after a resume, and so would the model. The weights' moving average resumes too."""
    monkeypatch.chdir(tmp_path)
    train, val = tiny_splits()
    params = BASE.model_copy(
        update={
            "epochs": 2,
            "batch_size": 4,
            "label_smoothing": 0.0,
            "ema_momentum": ema_momentum,
        }
    )
    whole = dropout_model()
    train_resumable(whole, train, val, params, None, seed=0, backup=tmp_path / "whole", jit_compile="off")
    interrupted = params.model_copy(update={"epochs": 1})  # stops after epoch 1 as a kill would
    train_resumable(
        dropout_model(), train, val, interrupted, None, seed=0, backup=tmp_path / "resumed", jit_compile="off"
    )
    resumed = dropout_model()
    train_resumable(resumed, train, val, params, None, seed=0, backup=tmp_path / "resumed", jit_compile="off")
    history = json.loads((tmp_path / "whole/history.json").read_text())
    resumed_history = json.loads((tmp_path / "resumed/history.json").read_text())
    for entry in (*history, *resumed_history):
        entry.pop("seconds")
    assert resumed_history == history
    for a, b in zip(resumed.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_average_forgets_the_initial_weights_by_the_end_of_the_run():
    default = BASE.model_copy(update={"epochs": 30, "ema_momentum": 0.99})
    assert average_momentum(default, steps_per_epoch=187) == 0.99  # 28 px: 5,610 steps leave it as it is
    assert average_momentum(default.model_copy(update={"epochs": 2}), 4) == 0.5  # 1 - 4/8
    assert average_momentum(default.model_copy(update={"epochs": 1}), 2) == 0.0  # a smoke run: no average
    assert average_momentum(default.model_copy(update={"ema_momentum": 0.0}), 187) == 0.0
    assert not make_optimizer(default.model_copy(update={"epochs": 1}), 2).use_ema


def test_exchanging_the_averaged_weights_twice_puts_everything_back():
    train, _ = tiny_splits()
    model = tiny_model()
    model.compile(optimizer=make_optimizer(BASE.model_copy(update={"ema_momentum": 0.5}), 4), loss="mse")
    for _ in range(3):  # train_on_batch, not fit: a fit's end writes the average into the model
        model.train_on_batch(train.images[:8], keras.utils.to_categorical(train.labels[:8], 2))
    weights = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    averages = [keras.ops.convert_to_numpy(v) for v in model.optimizer._model_variables_moving_average]
    assert not all(np.array_equal(w, a) for w, a in zip(weights, averages, strict=True))
    exchange_averaged_weights(model)
    for variable, average in zip(model.trainable_variables, averages, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), average)
    exchange_averaged_weights(model)
    for variable, weight in zip(model.trainable_variables, weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), weight)
    plain = tiny_model()
    plain.compile(optimizer=make_optimizer(BASE, 4), loss="mse")
    exchange_averaged_weights(plain)  # no average: nothing to exchange, and no error


def test_with_a_weight_average_the_model_handed_over_is_the_average_that_was_validated(tmp_path, monkeypatch):
    """Same seed with and without `ema_momentum`: the same training (the average never leaks into it),
    but the run with it validates, keeps and returns the average, not the last step's weights."""
    monkeypatch.chdir(tmp_path)
    train, val = tiny_splits()
    runs = {}
    for momentum in (0.0, 0.8):
        keras.utils.set_random_seed(0)
        params = BASE.model_copy(
            update={
                "epochs": 3,
                "batch_size": 8,
                "lr": 0.05,
                "label_smoothing": 0.0,
                "ema_momentum": momentum,
            }
        )
        model = tiny_model()
        summary = train_resumable(
            model, train, val, params, None, seed=0, backup=tmp_path / f"b{momentum}", jit_compile="off"
        )
        history = json.loads((tmp_path / f"b{momentum}/history.json").read_text())
        runs[momentum] = model, summary, history
    (plain, _, plain_history), (averaged, summary, history) = runs[0.0], runs[0.8]
    assert [h["loss"] for h in history] == pytest.approx([h["loss"] for h in plain_history], rel=1e-6)
    assert [h["val_loss"] for h in history] != pytest.approx([h["val_loss"] for h in plain_history])
    val_loss = averaged.evaluate(val.images, val.labels, batch_size=8, verbose=0, return_dict=True)["loss"]
    assert val_loss == pytest.approx(summary["best/val_loss"], rel=1e-5)
    assert not all(
        np.array_equal(a, b) for a, b in zip(averaged.get_weights(), plain.get_weights(), strict=True)
    )
