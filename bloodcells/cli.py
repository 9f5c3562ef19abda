"""The `bloodcells` console command: what is not a DVC stage.

    bloodcells models            the registered architectures and the report each comes from
    bloodcells exps [--all]      `dvc exp show`, narrowed to what differs (any dvc flag passes through)

The pipeline itself runs through DVC (`dvc repro`, `dvc exp run`); its stage scripts are in stages/.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

# `dvc exp show` lists every param, metric and dependency hash: 121 columns after two experiments.
# `exps` keeps the params and metrics that differ between the rows and drops the code/data hashes.
NARROW_SHOW = ("--only-changed", "--drop", "^(bloodcells|stages|data|models|metrics|plots)/")


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
