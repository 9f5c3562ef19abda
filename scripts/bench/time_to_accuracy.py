"""Time to accuracy: recipes trained side by side, epoch by epoch, to a target test accuracy.

Recipes A (default: params.yaml, "ours"; `--a` may be given several times) and recipe B (default:
configs/report_skip.yaml, the residual-CNN report's recipe) train in this one process, interleaved:
one epoch of each A, then one of B, so all meet the same machine and load. Each recipe trains
through the train stage's own loop (bloodcells.training.loop.train_resumable: its model,
optimizer, schedule, loss, class weights, per-epoch shuffling, validation, plateau decay and early
stopping), which calls this benchmark back after every epoch. Then the current weights (their
moving average, with `train.ema_momentum`) are scored on the test split with the recipe's own
`evaluate.tta_views`. A recipe's time at an epoch is the training and validation time of every
epoch so far, as the loop records it (not the test scoring), plus, where it recomputes BatchNorm
statistics, that epoch's pass: a training stopped there would make it once, so earlier epochs'
passes are not counted. A recipe stops once it reaches the target (default 0.9760, the report
recipe's final test accuracy at 28 px), at early stopping or at its `train.epochs`. Prints each
recipe's time to the target and the ratio B / A for each A.

    python -m scripts.bench time-to-accuracy      # the real rebuild at 28 px, ours vs report_skip
    python -m scripts.bench time-to-accuracy --a params.yaml --a configs/budget_4_epochs.yaml
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scripts.bench.common import (
    REAL_DATA,
    BenchError,
    machine_lines,
    markdown_table,
    parse_overrides,
    recipe_params,
)

DEFAULT_DATA = REAL_DATA / "bloodmnist.npz"
PREDICT_BATCH = 256


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--a",
        type=Path,
        action="append",
        help="recipe A, a configs/*.yaml or params.yaml; repeat for several (default: params.yaml)",
    )
    parser.add_argument("--b", type=Path, default=Path("configs/report_skip.yaml"), help="recipe B")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a MedMNIST-format npz at 28 px")
    parser.add_argument(
        "--target", type=float, default=0.9760, help="test accuracy to reach (default 0.9760)"
    )
    parser.add_argument("--max-epochs", type=int, help="cap on each recipe's train.epochs")
    parser.add_argument("--full", action="store_true", help="train every epoch, not only up to the target")
    parser.add_argument("-S", "--set-param", action="append", default=[], help="override for both, key=value")
    parser.add_argument("--smoke", action="store_true", help="synthetic 28 px data, 1 epoch each")


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.smoke:
        args.max_epochs = args.max_epochs or 1
    elif not args.data.exists():
        parser.error(f"--data {args.data}: no such file (the rebuild is in {REAL_DATA})")
    if (args.max_epochs is not None and args.max_epochs < 1) or not 0 < args.target <= 1:
        parser.error("--max-epochs must be at least 1 and --target in (0, 1]")


class Turns:
    """Recipes take turns, one epoch each: every recipe trains in a thread of its own, and only the
    one whose turn it is runs, so all meet the same machine and load."""

    def __init__(self, count: int) -> None:
        self.turn: int | None = 0
        self.running = [True] * count
        self.changed = threading.Condition()

    def wait(self, index: int) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.turn == index)

    def pass_on(self, index: int, finished: bool = False) -> None:
        """Hand the turn to the next recipe still running (after `index`, round the table)."""
        with self.changed:
            self.running[index] = not finished
            count = len(self.running)
            after = [(index + step) % count for step in range(1, count + 1)]
            self.turn = next((i for i in after if self.running[i]), None)
            self.changed.notify_all()


@dataclass
class Runner:
    """One recipe's model and data, trained by the train stage's loop; scored after every epoch."""

    name: str
    params: Any  # bloodcells.core.params.Params
    splits: dict[str, Any]
    max_epochs: int
    target: float
    full: bool
    rows: list[tuple[float, float]] = field(default_factory=list)  # (test accuracy, train s) per epoch
    batchnorm_seconds: float = 0.0  # the latest epoch's BatchNorm pass: a stopped training makes one
    reached: tuple[int, float] | None = None  # (epoch, cumulative seconds) when the target was first met
    stopped: str = ""
    error: BaseException | None = None

    def __post_init__(self) -> None:
        import keras

        from bloodcells.architectures import create_model
        from bloodcells.core.params import model_hparams
        from bloodcells.data.class_weights import compute_class_weights

        labels = self.splits["train"].labels
        self.n_classes = int(max(int(split.labels.max()) for split in self.splits.values()) + 1)
        keras.utils.set_random_seed(self.params.seed)
        shape = tuple(self.splits["train"].images.shape[1:])
        self.model = create_model(
            self.params.model, shape, self.n_classes, self.params.augment, model_hparams(self.params)
        )
        weights = compute_class_weights(labels, self.n_classes, self.params.class_weights.method)
        self.class_weight = dict(enumerate(weights))

    def train(self, backup: Path, turns: Turns, index: int) -> None:
        """The train stage's loop (bloodcells.training.loop.train_resumable), one epoch per turn."""
        from bloodcells.training.loop import train_resumable

        def after_epoch(model, history: list[dict[str, float]]) -> None:
            stopped_early = model.stop_training  # the loop's early stopping
            self.score(history)
            if not self.stopped and stopped_early:
                self.stopped = f"early stopping after epoch {len(history)}"
            elif not self.stopped and len(history) >= self.max_epochs:
                self.stopped = f"last epoch ({len(history)})"
            if self.stopped:
                model.stop_training = True
                return  # the turn passes on when this recipe's training has ended
            turns.pass_on(index)
            turns.wait(index)

        params, splits = self.params, self.splits
        turns.wait(index)
        try:
            train_resumable(
                self.model, splits["train"], splits["val"], params.train, self.class_weight, params.seed,
                backup, jit_compile=params.runtime.jit_compile, on_epoch=after_epoch, verbose=0,
            )  # fmt: skip
        except BaseException as error:  # re-raised in the main thread
            self.error = error
        finally:
            turns.pass_on(index, finished=True)

    def score(self, history: list[dict[str, float]]) -> None:
        """Test accuracy of the model this recipe would hand over if it stopped now; prints it.

        That is the current weights (their moving average, with `train.ema_momentum`) with the
        recipe's test-time augmentation and, where the recipe recomputes BatchNorm statistics at the
        end (`train.recompute_batchnorm`), with them recomputed: that pass is timed as this epoch's,
        and the weights and running statistics are put back after scoring so the next epoch trains
        as the train stage would.
        """
        from bloodcells.model.tta import predict_probabilities
        from bloodcells.training.loop import batchnorm_layers, exchange_averaged_weights, recompute_batchnorm

        model, test, train = self.model, self.splits["test"], self.params.train
        exchange_averaged_weights(model)
        norms = batchnorm_layers(model) if train.recompute_batchnorm else []
        running = [[v.numpy() for v in (layer.moving_mean, layer.moving_variance)] for layer in norms]
        if norms:
            start = time.perf_counter()
            recompute_batchnorm(model, self.splits["train"].images, train.batch_size, self.params.seed)
            self.batchnorm_seconds = time.perf_counter() - start
        scores = predict_probabilities(model, test.images, PREDICT_BATCH, self.params.evaluate.tta_views)
        for layer, (mean, variance) in zip(norms, running, strict=True):
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
        exchange_averaged_weights(model)
        accuracy = float((scores.argmax(axis=1) == test.labels).mean())
        # Time to hand over the current model: every epoch's fit and validation, and one BatchNorm pass.
        seconds = sum(entry["seconds"] for entry in history) + self.batchnorm_seconds
        self.rows.append((accuracy, seconds))
        epoch = len(history)
        if accuracy >= self.target and self.reached is None:
            self.reached = (epoch, seconds)
            if not self.full:
                self.stopped = f"target reached in epoch {epoch}"
        print(f"epoch {epoch} {self.name}: test accuracy {accuracy:.4f}, {seconds:.1f} s", flush=True)


def load_splits(path: Path) -> dict[str, Any]:
    """train/val/test of a MedMNIST-format npz, as `Split`s (labels flat)."""
    from bloodcells.data.splits import SPLITS, Split

    with np.load(path, allow_pickle=False) as npz:
        return {s: Split(npz[f"{s}_images"], npz[f"{s}_labels"].reshape(-1).astype(np.int64)) for s in SPLITS}


def reached_text(runner: Runner) -> str:
    if runner.reached is None:
        return f"not reached ({runner.stopped})"
    return f"{runner.reached[1]:,.1f} s (epoch {runner.reached[0]})"


def run(args: argparse.Namespace) -> None:
    import bloodcells  # noqa: F401  (environment defaults before Keras is imported)

    with tempfile.TemporaryDirectory(prefix="bench-tta-") as tmp:
        data = args.data
        if args.smoke:
            from bloodcells.data.synthetic import write_synthetic_npz

            data = Path(tmp) / "bloodmnist.npz"
            write_synthetic_npz(data, 28)
        splits = load_splits(data)
    size = splits["train"].images.shape[1]
    overrides = {**parse_overrides(args.set_param), "train.size": size, "data.sizes": [size]}
    runners = []
    for config in [*(args.a or [None]), args.b]:
        config = None if config and config.name == "params.yaml" else config
        params = recipe_params(config, overrides)
        epochs = min(params.train.epochs, args.max_epochs or params.train.epochs)
        name = config.stem if config else "ours (params.yaml)"
        if name in [r.name for r in runners]:
            raise BenchError(f"recipe {name} is given twice; give different --a/--b")
        runners.append(Runner(name, params, splits, epochs, args.target, args.full))
    turns = Turns(len(runners))
    with tempfile.TemporaryDirectory(prefix="bench-tta-") as tmp, contextlib.chdir(tmp):
        # the loop writes its checkpoints and curves under the working folder
        threads = [
            threading.Thread(target=runner.train, args=(Path(tmp) / str(i), turns, i), daemon=True)
            for i, runner in enumerate(runners)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for runner in runners:
        if runner.error is not None:
            raise runner.error
    rows = []
    for epoch in range(max(len(r.rows) for r in runners)):
        row = [str(epoch + 1)]
        for runner in runners:
            done = epoch >= len(runner.rows)
            row += ["", ""] if done else [f"{runner.rows[epoch][0]:.4f}", f"{runner.rows[epoch][1]:,.1f}"]
        rows.append(row)

    *recipes_a, b = runners
    names = " and ".join(a.name for a in recipes_a)
    print(f"\n## Time to {args.target:.2%} test accuracy at {size} px: {names} vs {b.name}, interleaved\n")
    header = ["epoch"] + [column for r in runners for column in (f"{r.name}: test acc.", "train s")]
    print(markdown_table(header, rows) + "\n")
    for runner in runners:
        p = runner.params
        print(
            f"- {runner.name}: {reached_text(runner)}; {p.model}, {p.train.optimizer} lr {p.train.lr}, "
            f"{p.train.schedule}, batch {p.train.batch_size}, EMA {p.train.ema_momentum or 'off'}, "
            f"TTA {p.evaluate.tta_views} view(s), "
            f"stopped: {runner.stopped}"
        )
    for a in recipes_a:
        if a.reached and b.reached:
            print(f"- ratio {b.name} / {a.name}: {b.reached[1] / a.reached[1]:.2f}x (target >= 5x)")
        else:
            print(f"- ratio {b.name} / {a.name}: not available (a recipe did not reach the target)")
    print(
        f"- data: {'synthetic 28 px (smoke)' if args.smoke else args.data}; "
        f"{len(splits['train'].labels)} train images"
    )
    print(
        "- train time: model.fit of every epoch so far with its validation, plus one BatchNorm pass "
        "where the recipe has one (the epoch's own); not the test scoring; same process"
    )
    for line in machine_lines():
        print(line)
