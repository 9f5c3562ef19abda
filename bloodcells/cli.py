"""The `bloodcells` console command: what is not a DVC stage.

    bloodcells models            the registered architectures and the report each comes from
    bloodcells validate          the trained model on another lab's labelled folder (params `external`)

The pipeline itself runs through DVC (`dvc repro`, `dvc exp run`); its stage scripts are in stages/.
"""

from __future__ import annotations

import argparse
import sys


def list_models_command(args: argparse.Namespace) -> None:
    """Print every registered model name with its source."""
    from bloodcells.architectures import list_models, model_source

    names = list_models()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {model_source(name)}")


def validate_command(args: argparse.Namespace) -> None:
    """Score the trained model on an external labelled folder (params `external`, `evaluate`)."""
    from bloodcells.core.params import load_params
    from bloodcells.core.stage import StageError
    from bloodcells.evaluation.external import validate_external

    try:
        metrics = validate_external(load_params(), args.path)
    except StageError as error:
        raise ValueError(str(error)) from None
    print(
        f"{metrics['path']}: {metrics['images']} images of {len(metrics['classes'])} mapped classes, "
        f"accuracy {metrics['accuracy']:.4f}, balanced {metrics['balanced_accuracy']:.4f}, "
        f"macro-F1 {metrics['macro_f1']:.4f}; {metrics['outside_mapped_classes']:.1%} predicted outside "
        "them (metrics/external/, plots/external/)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per job."""
    parser = argparse.ArgumentParser(prog="bloodcells", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    models = commands.add_parser("models", help="list the registered architectures")
    models.set_defaults(run=list_models_command)
    validate = commands.add_parser(
        "validate", help="score the trained model on another labelled image folder (params `external`)"
    )
    validate.add_argument("--path", help="the folder (default: external.path in params.yaml)")
    validate.set_defaults(run=validate_command)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except KeyboardInterrupt:
        sys.exit(130)
    except (ValueError, OSError) as error:
        sys.exit(f"bloodcells {args.command}: {error}")


if __name__ == "__main__":
    main()
