"""Benchmark the folder source's decoding: files/s to read, hash, decode, crop and resize to 3 sizes.

Times `bloodcells.data.decode.decode_files` (what the download stage runs for `data.source: folder`, without
scanning or writing) with 1 and 2 worker processes on the PBC sample in ../shared/data/pbc-sample
(skipped when absent) and on synthetic 360x363 JPEGs generated into a temporary folder. Each
setting runs `--repeats` times and the best is kept; CPU time (this process and its workers) is
printed too, since on a shared machine wall-clock rates depend on what else runs.
Run from the project root: python scripts/bench_folder.py [--files 2000] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bloodcells.data.decode import Recipe, decode_files  # noqa: E402
from bloodcells.data.folder_layout import scan_folder  # noqa: E402

PBC_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "pbc-sample"
PBC_FILES = 17_092  # images in the full PBC set, for the extrapolation


def synthetic_cell(rng: np.random.Generator, width: int = 360, height: int = 363) -> Image.Image:
    """A smear-like picture: pale background, a few soft cells, one dark nucleus, sensor noise."""
    image = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(200, 240, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 9))):
        x, y, r = int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(20, 45))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(230, int(rng.integers(150, 190)), 180))
    r = int(rng.integers(40, 70))
    draw.ellipse((180 - r, 181 - r, 180 + r, 181 + r), fill=(int(rng.integers(90, 140)), 60, 150))
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(3)), dtype=np.float64)
    pixels += rng.normal(0, 4, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_synthetic(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """`n` JPEGs of 360x363 px (PBC's usual size) in 8 class folders."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"class_{i % 8}" / f"cell_{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        synthetic_cell(rng).save(path, quality=90)
        paths.append(path)
    return paths


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def best_rates(paths: list[Path], recipe: Recipe, workers: int, repeats: int) -> tuple[float, float]:
    """Files per wall-clock second and per CPU second, of the fastest of `repeats` runs."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), cpu_seconds()
        decode_files(paths, recipe, workers)
        best = min(best, (time.perf_counter() - wall, cpu_seconds() - cpu))
    return len(paths) / best[0], len(paths) / best[1]


def report(name: str, paths: list[Path], recipe: Recipe, workers: list[int], repeats: int) -> None:
    kib = sum(p.stat().st_size for p in paths) / len(paths) / 1024
    print(f"{name}: {len(paths)} files, {kib:.0f} KiB each on average, sizes {list(recipe.sizes)}")
    for n in workers:
        rate, per_cpu = best_rates(paths, recipe, n, repeats)
        print(
            f"  {n} worker(s): {rate:5.0f} files/s ({per_cpu:.0f} per CPU-second); "
            f"PBC's {PBC_FILES:,} files in ~{PBC_FILES / rate:.0f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="synthetic JPEGs to generate")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 64, 128])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    recipe = Recipe(tuple(args.sizes), crop=200, resize_filter="bicubic")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{os.cpu_count()} CPU cores, load average {load} before starting")

    if PBC_SAMPLE.is_dir():
        sample = [PBC_SAMPLE / file.path for file in scan_folder(PBC_SAMPLE).files]
        report(f"PBC sample ({PBC_SAMPLE})", sample, recipe, args.workers, args.repeats)
    else:
        print(f"PBC sample: skipped, {PBC_SAMPLE} absent")
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = write_synthetic(Path(tmp), args.files)
        report("synthetic 360x363 JPEGs", synthetic, recipe, args.workers, args.repeats)


if __name__ == "__main__":
    main()
