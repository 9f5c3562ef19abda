"""The `bloodcells` console command: what is not a DVC stage.

    bloodcells models            the registered architectures and the report each comes from
    bloodcells exps [--all]      `dvc exp show`, narrowed to what differs (any dvc flag passes through)
    bloodcells predict MODELS INPUT...   classify image files, folders or npz files -> CSV
    bloodcells export --check MODELS/export   size, latency and agreement of each exported format
    bloodcells serve MODELS      a local page to drop cell images on and see the model's answer
    bloodcells validate          the trained model on another lab's labelled folder (params `external`)

The pipeline itself runs through DVC (`dvc repro`, `dvc exp run`); its stage scripts are in stages/.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

# `dvc exp show` lists every param, metric and dependency hash: 121 columns after two experiments.
# `exps` keeps the params that differ between the rows and three headline metrics (test accuracy,
# macro-F1, calibrated ECE); DVC matches each pattern at the start of a column's name. Intervals,
# the other headline figures, the train stage's summary (metrics/train/metrics.json), the code and
# data hashes and the creation time are one `--all` away.
NARROW_DROP = (
    "Created$",
    "(bloodcells|stages|data|models|plots|metrics)/",  # dependency hashes; `file:key` of shared keys
    ".*_ci_(lower|upper)$",
    "(auc|ece|coverage_95_accuracy|referral_coverage|train_seconds)$",
    "(train|val)[.](accuracy|loss)$",  # the train stage's summary, as dvclive writes it
    "(learning_rate|step|epochs_run|parameters|peak_memory_mb)$",
    "(best|bn)[.]",
    "external(_adapted)?[.]",  # `bloodcells validate`'s figures, of the workspace's model only
)
NARROW_SHOW = ("--only-changed", "--drop", "|".join(NARROW_DROP))


def list_models_command(args: argparse.Namespace) -> None:
    """Print every registered model name with its source."""
    from bloodcells.architectures import list_models, model_source

    names = list_models()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {model_source(name)}")


def experiments_command(args: argparse.Namespace) -> None:
    """Run `dvc exp show`, narrowed unless `--all`; extra arguments go to dvc unchanged."""
    command = ["dvc", "exp", "show", *([] if args.all else NARROW_SHOW), *args.dvc_args]
    sys.exit(subprocess.run(command).returncode)


def predict_command(args: argparse.Namespace) -> None:
    """Classify images; see bloodcells.inference.batch_predict."""
    from bloodcells.inference.batch_predict import predict_command as run

    run(args)


def export_command(args: argparse.Namespace) -> None:
    """Measure the exported formats against the Keras model (the files come from `dvc repro export`)."""
    from bloodcells.inference.export_check import check_command

    check_command(args)


def serve_command(args: argparse.Namespace) -> None:
    """Serve the try-a-model page; see bloodcells.inference.server."""
    from bloodcells.inference.server import serve

    serve(args.model, args.host, args.port)


def tta_views(text: str) -> int:
    """`--tta`'s value, checked by the params schema's type for `evaluate.tta_views`."""
    from bloodcells.core.params import ParamsError, TtaViews, check_value

    try:
        return check_value(TtaViews, text)
    except ParamsError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_predict(commands) -> None:
    """`bloodcells predict` and its options."""
    predict = commands.add_parser(
        "predict",
        help="classify images with a trained model (CSV of classes and probabilities)",
        description="Classify image files, folders (searched recursively) or MedMNIST npz files with the "
        "preprocessing the model was trained with (read from its model.json).",
    )
    predict.add_argument("model", help="folder with model.keras and model.json (models/ or models/export/)")
    predict.add_argument("inputs", nargs="+", help="image files, folders or .npz files")
    predict.add_argument("-o", "--out", default="predictions.csv", help="CSV to write (default %(default)s)")
    predict.add_argument("--gradcam", metavar="FOLDER", help="also write one Grad-CAM overlay PNG per image")
    predict.add_argument("--tta", type=tta_views, default=1, metavar="VIEWS",
                         help="average over this many rotations/flips, 1-8 (default 1: none)")
    predict.add_argument("--batch-size", type=int, default=256, help="images per batch (default %(default)s)")
    predict.add_argument(
        "--adapt", action="store_true",
        help="re-estimate BatchNorm statistics on these images first (label-free test-time adaptation to "
        "another lab's slides; needs 128 images at least)",
    )
    predict.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    predict.set_defaults(run=predict_command)


def add_export(commands) -> None:
    """`bloodcells export --check`."""
    export = commands.add_parser(
        "export",
        help="check the exported formats (write them with `dvc repro export`)",
        description="The export stage (`dvc repro export`) writes models/export/. With --check, print each "
        "format's file size, per-image latency and agreement with the Keras model on a MedMNIST npz split.",
    )
    export.add_argument("folder", nargs="?", default="models/export", help="default %(default)s")
    export.add_argument("--check", metavar="NPZ", required=True,
                        help="MedMNIST-format npz whose test_images to compare on")
    export.add_argument("--split", default="test", help="which <split>_images to use (default %(default)s)")
    export.add_argument("--latency-images", type=int, default=200,
                        help="images timed one at a time per format (default %(default)s)")
    export.set_defaults(run=export_command)


def add_serve(commands) -> None:
    """`bloodcells serve`."""
    serve = commands.add_parser(
        "serve",
        help="a local page to try a model: drop cell images, see class, probabilities and Grad-CAM",
    )
    serve.add_argument("model", help="folder with model.keras and model.json (models/ or models/export/)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    serve.set_defaults(run=serve_command)
def validate_command(args: argparse.Namespace) -> None:
    """Score the trained model on an external labelled folder (params `external`, `evaluate`)."""
    from bloodcells.core.params import load_params, parse_class_mapping
    from bloodcells.core.paths import (
        ADAPTED_METRICS_DIR,
        ADAPTED_PLOTS_DIR,
        EXTERNAL_METRICS_DIR,
        EXTERNAL_PLOTS_DIR,
    )
    from bloodcells.core.stage import StageError

    classes = parse_class_mapping(args.classes) if args.classes else None  # a typo fails in a second
    from bloodcells.evaluation.external import validate_external  # the model's imports (TensorFlow)

    try:
        metrics = validate_external(load_params(), args.path, classes, args.adapt)
    except StageError as error:
        raise ValueError(str(error)) from None
    adapted = (ADAPTED_METRICS_DIR, ADAPTED_PLOTS_DIR)
    folders = adapted if args.adapt else (EXTERNAL_METRICS_DIR, EXTERNAL_PLOTS_DIR)
    where = ", ".join(f"{folder}/" for folder in folders)
    print(
        f"{metrics['path']}: {metrics['images']} images of {len(metrics['classes'])} mapped classes, "
        f"{'BatchNorm adapted to them, ' if args.adapt else ''}"
        f"accuracy {metrics['accuracy']:.4f}, balanced {metrics['balanced_accuracy']:.4f}, "
        f"macro-F1 {metrics['macro_f1']:.4f}; {metrics['outside_mapped_classes']:.1%} predicted outside "
        f"them ({where})"
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per job."""
    parser = argparse.ArgumentParser(prog="bloodcells", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    models = commands.add_parser("models", help="list the registered architectures")
    models.set_defaults(run=list_models_command)
    exps = commands.add_parser("exps", help="dvc exp show, narrowed to what differs between experiments")
    exps.add_argument("--all", action="store_true", help="every column, as plain `dvc exp show`")
    exps.set_defaults(passes_through=True)  # unknown arguments go to dvc exp show (e.g. --md, --sort-by)
    exps.set_defaults(run=experiments_command)
    add_predict(commands)
    add_export(commands)
    add_serve(commands)
    validate = commands.add_parser(
        "validate", help="score the trained model on another labelled image folder (params `external`)"
    )
    validate.add_argument("--path", help="the folder (default: external.path in params.yaml)")
    validate.add_argument(
        "--classes", metavar="MAPPING",
        help='folder name -> model class, as JSON/YAML (\'{"eosi": "eosinophil"}\') or a file holding it '
        "(default: external.classes in params.yaml)",
    )
    validate.add_argument(
        "--adapt", action="store_true",
        help="re-estimate BatchNorm statistics on the folder's images first (label-free test-time "
        "adaptation; written to metrics/external-adapted/ and plots/external-adapted/)",
    )
    validate.set_defaults(run=validate_command)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passes_through", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.dvc_args = extra
    try:
        args.run(args)
    except KeyboardInterrupt:
        sys.exit(130)
    except (ValueError, OSError) as error:
        sys.exit(f"bloodcells {args.command}: {error}")


if __name__ == "__main__":
    main()
