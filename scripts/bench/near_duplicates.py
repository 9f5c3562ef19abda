"""Near-duplicate pairs in the BloodMNIST rebuild, within and across its splits, as preprocess reports them.

Runs the preprocess stage's own function (bloodcells.data.preprocess.find_near_duplicates) on the
rebuild's npz files at each size, for several Hamming distances, and prints the counts and the time.

    python -m scripts.bench near-duplicates [--sizes 28 64] [--distances 0 2 4 6]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from scripts.bench.common import REAL_DATA, machine_lines, markdown_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 64])
    parser.add_argument("--distances", type=int, nargs="+", default=[0, 2, 4, 6])


def run(args: argparse.Namespace) -> None:
    from bloodcells.data.preprocess import find_near_duplicates
    from bloodcells.data.splits import Split

    rows = []
    for size in args.sizes:
        path = REAL_DATA / ("bloodmnist.npz" if size == 28 else f"bloodmnist_{size}.npz")
        if not path.exists():
            raise SystemExit(f"needs the rebuild at {path}")
        with np.load(path) as npz:
            splits = {
                s: Split(npz[f"{s}_images"], npz[f"{s}_labels"].reshape(-1)) for s in ("train", "val", "test")
            }
        for distance in args.distances:
            start = time.perf_counter()
            report = find_near_duplicates(splits, distance)
            seconds = time.perf_counter() - start
            within, across = report["within_split_pairs"], report["split_pairs"]
            rows.append(
                [
                    f"{size} px",
                    f"<= {distance}",
                    report["pairs"],
                    f"{within['train']} / {within['val']} / {within['test']}",
                    report["cross_split_pairs"],
                    " / ".join(str(across[k]) for k in ("train-val", "train-test", "val-test")),
                    report["conflicting_label_pairs"],
                    f"{seconds:.1f} s",
                ]
            )
            print(rows[-1], flush=True)
    header = [
        "size",
        "hash distance",
        "pairs",
        "within train / val / test",
        "across splits",
        "train-val / train-test / val-test",
        "two labels",
        "time",
    ]
    print(f"\n{REAL_DATA.name}: {sum(len(s.labels) for s in splits.values())} images")
    print(markdown_table(header, rows))
    print("\n".join(machine_lines(frameworks=False)))

