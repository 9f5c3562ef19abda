"""What the benchmarks share: named recipes, the machine they ran on, the data, a throughput meter.

Benchmarks print figures, they never assert them: the machine is small (2 cores) and shared, so
every figure is printed with the load average that was on the machine while it was measured.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

PROJECT = Path(__file__).resolve().parents[2]
REAL_DATA = PROJECT.parent / "shared" / "data" / "bloodmnist-pbc-rebuild"
N_CLASSES = 8
SYNTHETIC_IMAGES = 8192  # enough for a few hundred steps without repeating an image


class BenchError(SystemExit):
    """A wrong input to a benchmark: exits with its one-line message."""


def check_model(name: str) -> None:
    """Exit with a one-line error, listing the known names, when `name` is not a registered model."""
    from bloodcells.architectures import list_models

    if name not in list_models():
        raise BenchError(f"unknown model {name!r}; known: {', '.join(list_models())}")


def read_config(path: Path) -> dict[str, Any]:
    """A named configuration (configs/*.yaml): dotted param keys to YAML values; exits when unreadable."""
    if not path.exists():
        raise BenchError(f"no such configuration: {path} (see configs/)")
    overrides = yaml.safe_load(path.read_text()) or {}
    if not isinstance(overrides, dict):
        raise BenchError(f"{path}: expected a mapping of dotted param keys to values")
    return overrides


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`-S key=value` strings (as `dvc exp run -S` takes them) as dotted keys to YAML values."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BenchError(f"-S {pair!r}: expected key=value, e.g. -S train.epochs=5")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def recipe_params(config: Path | None, overrides: dict[str, Any] | None = None):
    """params.yaml with a named configuration's dotted keys, then `overrides`, set on top; validated.

    Returns `bloodcells.core.params.Params`; an unknown key or a bad value exits with the schema's one line.
    """
    from bloodcells.core.params import ParamsError, apply_overrides, parse_params, read_yaml

    source = config or PROJECT / "params.yaml"
    try:
        named = read_config(config) if config else {}
        params = apply_overrides(read_yaml(PROJECT / "params.yaml"), named, str(source))
        params = apply_overrides(params, overrides or {}, "-S")
        return parse_params(params, source)
    except ParamsError as error:
        raise BenchError(str(error)) from None


def real_splits(size: int = 28) -> dict:
    """The real PBC rebuild (../shared/data) at `size` as splits of uint8 images and integer labels."""
    from bloodcells.data.splits import Split

    path = REAL_DATA / ("bloodmnist.npz" if size == 28 else f"bloodmnist_{size}.npz")
    if not path.exists():
        raise BenchError(f"needs the real data at {path}")
    with np.load(path) as npz:
        return {
            s: Split(npz[f"{s}_images"], npz[f"{s}_labels"].reshape(-1).astype(np.int64))
            for s in ("train", "val", "test")
        }


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, or what `platform` knows elsewhere."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_lines(frameworks: bool = True) -> list[str]:
    """Where a figure came from: CPU, cores, load, Python and (with `frameworks`) Keras and TensorFlow."""
    lines = [
        f"- machine: {cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        f"- load average (1/5/15 min) at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}",
        f"- Python {platform.python_version()}",
    ]
    if not frameworks:
        return lines
    import keras

    lines[-1] += f", Keras {keras.__version__}, backend {keras.backend.backend()}"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")
        lines.append(f"- TensorFlow {tf.__version__}, TF_ENABLE_ONEDNN_OPTS={onednn}")
    return lines


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def training_images(
    size: int, n_min: int, seed: int = 0, synthetic: bool = False
) -> tuple[np.ndarray, np.ndarray, str]:
    """Training images (N, size, size, 3) uint8 and labels (N,) int32, with where they came from.

    The real training split when ../shared/data has this size (and not `synthetic`), else synthetic
    images of the same shape; tiled until there are at least `n_min`, so no run ends at an epoch end.
    """
    name = "bloodmnist.npz" if size == 28 else f"bloodmnist_{size}.npz"
    if (REAL_DATA / name).exists() and not synthetic:
        with np.load(REAL_DATA / name) as npz:
            images, labels = npz["train_images"], npz["train_labels"].reshape(-1)
        source = f"real: {REAL_DATA.name}/{name} train split ({len(labels)} images)"
    else:
        from bloodcells.data.synthetic import synthetic_split

        count = min(SYNTHETIC_IMAGES, max(n_min, 8 * N_CLASSES))
        images, labels = synthetic_split(count, size, np.random.default_rng(seed))
        labels = labels.reshape(-1)
        source = f"synthetic: {len(labels)} images of {size}x{size}x3"
    if len(labels) < n_min:
        repeats = -(-n_min // len(labels))
        images, labels = np.concatenate([images] * repeats), np.concatenate([labels] * repeats)
    return images, labels.astype("int32"), source


def fit_throughput(model, inputs, batch_size: int, warmup: int, steps: int, class_weight=None) -> dict:
    """Train `model` (compiled) for `warmup` + `steps` batches of `inputs`; images/s over the last `steps`.

    `inputs` is a `bloodcells.training.inputs.Inputs` or anything `model.fit` takes as `x` alone (a
    PyDataset). Returns images/s per wall-clock second and per CPU-second of this process, and the
    mean 1-minute load average over the timed batches.
    """
    import keras

    ends: list[tuple[float, float, float]] = []  # (wall, CPU time of this process, load)
    meter = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: ends.append(
            (time.perf_counter(), time.process_time(), os.getloadavg()[0])
        )
    )
    fit = inputs.fit_args() if hasattr(inputs, "fit_args") else {"x": inputs}
    fit["steps_per_epoch"] = warmup + steps
    model.fit(**fit, epochs=1, class_weight=class_weight, callbacks=[meter], verbose=0)
    timed = ends[warmup - 1 :]
    if warmup < 1 or len(timed) < 2:
        raise ValueError(f"need 1 warm-up and 1 timed batch at least; {len(ends)} ran")
    images = (len(timed) - 1) * batch_size
    return {
        "images_per_s": images / (timed[-1][0] - timed[0][0]),
        "cpu_images_per_s": images / (timed[-1][1] - timed[0][1]),
        "load": float(np.mean([load for _, _, load in timed[1:]])),
        "batches": len(ends),
    }


GNU_TIME = Path("/usr/bin/time")


def run_measured(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, int, str]:
    """Run `command`; its exit status, its peak resident set size in bytes, and its output.

    Through GNU time (`-f %M`) when installed: the kernel's high-water mark of a process started by
    exec also holds its parent's at the exec, so the command is started from GNU time's small
    process rather than from this one. Without GNU time, wait4's figure for the child.
    """
    if GNU_TIME.exists():
        with tempfile.NamedTemporaryFile("r", suffix=".rss") as report:
            timed = [str(GNU_TIME), "-q", "-f", "%M", "-o", report.name, *command]
            done = subprocess.run(
                timed, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            lines = Path(report.name).read_text().split()
        return done.returncode, int(lines[-1]) * 1024 if lines else 0, done.stdout
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024), output


def own_peak_rss() -> int:
    """This process's peak resident set in bytes (VmHWM: its own, not a parent's from before exec)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def quiet_env(**extra: str) -> dict[str, str]:
    """This environment for a child Python: the project importable, TensorFlow's logs quiet."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))
    return env
