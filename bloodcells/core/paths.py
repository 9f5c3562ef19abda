"""Every file and folder the pipeline reads or writes, defined once; dvc.yaml names the same paths.

Paths are relative to the working folder, which DVC makes the project root (or the copy of it that a
queued or `--temp` experiment runs in). Paths a user types (`data.mirror`, `data.path`) are resolved
against the user's own project root by `user_path`, so `../shared/...` means the same thing in a
queued experiment as in the workspace.
"""

from __future__ import annotations

from pathlib import Path

PARAMS_FILE = Path("params.yaml")

RAW_DIR = Path("data/raw")  # download: <dataset>_<size>.npz and classes.json
CLASSES_FILE = RAW_DIR / "classes.json"  # label names in label order, for any source
MANIFEST_FILE = RAW_DIR / "manifest.csv"  # folder source: which file went to which split
FOLDER_SUMMARY_FILE = RAW_DIR / "folder_summary.json"
PREPROCESSED_DIR = Path("data/preprocessed")  # preprocess: <size>/{split}_{images,labels}.npy
CLASS_WEIGHTS_FILE = Path("data/class_weights.json")
BACKUP_ROOT = Path("data/train-backup")  # train: per-configuration checkpoints of a killed run

MODEL_DIR = Path("models")
MODEL_FILE = MODEL_DIR / "model.keras"
MODEL_CARD = MODEL_DIR / "model.json"
TRAIN_METRICS_DIR = Path("metrics/train")  # dvclive's folder of the train stage

EVAL_METRICS_DIR = Path("metrics/evaluate")
EVAL_PLOTS_DIR = Path("plots/evaluate")
# git-tracked (cache: false), so every commit and experiment holds its per-image test outcomes
PREDICTIONS_FILE = EVAL_PLOTS_DIR / "predictions.csv"
EVAL_METRICS_FILE = EVAL_METRICS_DIR / "metrics.json"  # the headline figures

EXPORT_DIR = MODEL_DIR / "export"  # export: the deployable model, its formats and card (the DVC artifact)
EXTERNAL_METRICS_DIR = Path("metrics/external")  # `bloodcells validate`: another lab's labelled folder
EXTERNAL_PLOTS_DIR = Path("plots/external")
ADAPTED_METRICS_DIR = Path("metrics/external-adapted")  # `bloodcells validate --adapt`: kept apart
ADAPTED_PLOTS_DIR = Path("plots/external-adapted")

# DVC runs queued and --temp experiments in a copy of the repository under this folder.
_EXPERIMENT_COPIES = (".dvc", "tmp", "exps")


def raw_path(dataset: str, size: int) -> Path:
    """Where download puts one size (named uniformly so dvc.yaml can template it)."""
    return RAW_DIR / f"{dataset}_{size}.npz"


def preprocessed_dir(size: int) -> Path:
    """Folder of one size's training-ready arrays and summary."""
    return PREPROCESSED_DIR / str(size)


def project_root(cwd: Path | None = None) -> Path:
    """The user's project root, also from inside the copy DVC makes for a queued experiment."""
    here = (cwd or Path.cwd()).resolve()
    parts = here.parts
    for i in range(len(parts) - len(_EXPERIMENT_COPIES), 0, -1):
        if parts[i : i + len(_EXPERIMENT_COPIES)] == _EXPERIMENT_COPIES:
            return Path(*parts[:i])
    return here


def user_path(value: str | Path, cwd: Path | None = None) -> Path:
    """A path a user typed in params: absolute as given; relative to the working folder where it exists
    there (a DVC-tracked folder inside the repository), else to the user's own project root."""
    path = Path(value).expanduser()
    here = (cwd or Path.cwd()).resolve()
    if path.is_absolute() or (here / path).exists():
        return here / path
    return project_root(here) / path
