"""The project's benchmarks, one command. Each prints its table with the machine, settings and load.

    python -m scripts.bench accuracy configs/report_skip.yaml --seeds 3   # DVC experiments, mean ± std
    python -m scripts.bench time-to-accuracy      # ours vs the report's recipe, interleaved, at 28 px
    python -m scripts.bench epoch --size 128      # seconds per epoch (GPU timing under KERAS_BACKEND=jax)
    python -m scripts.bench throughput            # our input path vs ImageDataGenerator
    python -m scripts.bench efficiency            # training FLOPs, and FLOP/s over the matmul rate
    python -m scripts.bench folder                # JPEG decoding: files/s and peak memory
    python -m scripts.bench pipeline --real       # `dvc repro` / `dvc status` with nothing changed
    python -m scripts.bench preprocess-memory     # peak RSS of preprocess at 128 and 224 px
    python -m scripts.bench near-duplicates       # near-duplicate pairs across the rebuild's splits
    python -m scripts.bench stain-shift --epochs 5   # accuracy on a stain/scale/JPEG-shifted test copy
    python -m scripts.bench cross-lab --epochs 8     # each lever trained on PBC, scored on LISC's real slides

`<benchmark> --help` says more; `--smoke` (where offered) runs it on tiny synthetic inputs in seconds.
"""

from __future__ import annotations

import argparse
import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BENCHMARKS = {  # subcommand -> module of scripts.bench
    "accuracy": "accuracy",
    "time-to-accuracy": "time_to_accuracy",
    "epoch": "epoch",
    "throughput": "throughput",
    "efficiency": "efficiency",
    "folder": "folder",
    "pipeline": "pipeline",
    "preprocess-memory": "preprocess_memory",
    "near-duplicates": "near_duplicates",
    "stain-shift": "stain_shift",
    "cross-lab": "cross_lab",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="benchmark", required=True, metavar="benchmark")
    for name, module_name in BENCHMARKS.items():
        module = importlib.import_module(f"scripts.bench.{module_name}")
        doc = (module.__doc__ or "").strip()
        sub = commands.add_parser(
            name,
            help=doc.splitlines()[0],
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(module=module, subparser=sub)
    args = parser.parse_args(argv)
    if hasattr(args.module, "check_arguments"):  # one line on a wrong value, as argparse gives
        args.module.check_arguments(args, args.subparser)
    args.module.run(args)


if __name__ == "__main__":
    main()
