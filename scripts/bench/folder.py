"""Folder-source decoding: files/s and peak memory to read, hash, decode, crop and resize to every size.

Times `bloodcells.data.decode.decode_files` (what the download stage runs for `data.source: folder`,
without scanning or writing) with 1 and 2 worker processes on the PBC sample in ../shared/data/
pbc-sample (skipped when absent), on synthetic 360x363 JPEGs and on one synthetic large JPEG
(12000x12000 by default, decoded with `folder.crop: null`, the largest centred square). Each setting
runs in a fresh process, `--repeats` times, the best kept; the peak resident set of that process
and of its decoding workers is printed beside. On the PBC sample it also prints how far the pixels
of each size, decoded alone, move from a full-size decode (JPEGs are decoded at reduced scale as
far as the reduced crop still holds the largest size).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scripts.bench.common import PROJECT, machine_lines, markdown_table, own_peak_rss, quiet_env

PBC_SAMPLE = PROJECT.parent / "shared" / "data" / "pbc-sample"
PBC_FILES = 17_092  # images in the full PBC set, for the extrapolation
KIB = 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files", type=int, default=2000, help="synthetic 360x363 JPEGs to generate")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 64, 128])
    parser.add_argument("--crop", type=int, default=200, help="folder.crop for the PBC and small files")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large", type=int, default=12000, help="side of the large JPEG (0: none)")
    parser.add_argument("--smoke", action="store_true", help="16 small files, a 1200 px large one, 1 run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one setting, as JSON, in a child process


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.smoke:
        args.files, args.workers, args.repeats, args.large = 16, [1], 1, 1200
    if min(args.files, args.repeats, *args.workers) < 1 or min(args.sizes) < 1:
        parser.error("--files, --repeats, --workers and --sizes must be at least 1")


def synthetic_cell(rng: np.random.Generator, width: int = 360, height: int = 363):
    """A smear-like picture: pale background, a few soft cells, one dark nucleus, sensor noise."""
    from PIL import Image, ImageDraw, ImageFilter

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


def write_large(path: Path, side: int) -> Path:
    """One side x side JPEG: a synthetic cell scaled up (smooth, so it stays a realistic file size)."""
    from PIL import Image

    synthetic_cell(np.random.default_rng(1)).resize((side, side), Image.Resampling.BILINEAR).save(
        path, quality=90
    )
    return path


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def worker(setting: dict) -> dict:
    """Decode the listed files `repeats` times in this process (and its pool); rates and peak memory."""
    from bloodcells.data.decode import Recipe, decode_files

    paths = [Path(line) for line in Path(setting["list"]).read_text().splitlines()]
    recipe = Recipe(tuple(setting["sizes"]), setting["crop"], "bicubic")
    best = (float("inf"), float("inf"))
    for _ in range(setting["repeats"]):
        wall, cpu = time.perf_counter(), cpu_seconds()
        decoded = decode_files(paths, recipe, setting["workers"])
        best = min(best, (time.perf_counter() - wall, cpu_seconds() - cpu))
    failed = sum(error is not None for error in decoded.errors)  # skipped, as the download stage does
    own, pool = own_peak_rss(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * KIB
    rates = {"rate": len(paths) / best[0], "cpu_rate": len(paths) / best[1]}
    return {**rates, "failed": failed, "peak": own, "pool_peak": pool}


def measure(paths: list[Path], args: argparse.Namespace, workers: int, crop: int | None, tmp: Path) -> dict:
    """Run `worker` for one setting in a fresh Python process and return what it reports."""
    listing = tmp / "files.txt"
    listing.write_text("\n".join(str(p) for p in paths))
    setting = {
        "list": str(listing),
        "sizes": args.sizes,
        "crop": crop,
        "workers": workers,
        "repeats": args.repeats,
    }
    command = [sys.executable, "-m", "scripts.bench", "folder", "--worker", json.dumps(setting)]
    done = subprocess.run(command, cwd=PROJECT, env=quiet_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"decoding failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pixel_shift(paths: list[Path], sizes: list[int], crop: int) -> list[list[str]]:
    """Per size decoded alone: the JPEG scale used, and how far pixels move from a full-size decode."""
    from PIL import Image

    from bloodcells.data.decode import Recipe, UnreadableImage, decode_bytes, reduction

    rows = []
    for size in sizes:
        recipe = Recipe((size,), crop, "bicubic")
        diffs, scales = [], set()
        for path in paths:
            data = path.read_bytes()
            try:
                decode_bytes(data, recipe)
            except UnreadableImage:
                continue
            reduced, full = decode_bytes(data, recipe)[0][0], decode_bytes(data, recipe, reduce=False)[0][0]
            diffs.append(np.abs(reduced.astype(np.int16) - full.astype(np.int16)))
            with Image.open(path) as image:
                scales.add(reduction(image, recipe))
        every = np.stack(diffs)
        scale = ", ".join(f"1/{s}" for s in sorted(scales))
        rows.append(
            [f"{size} px", scale, f"{every.max()}", f"{every.mean():.3f}", f"{(every > 0).mean():.1%}"]
        )
    return rows


def run(args: argparse.Namespace) -> None:
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    from bloodcells.data.folder_layout import scan_folder

    print(
        f"{os.cpu_count()} CPU cores, load average "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} before starting\n"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-folder-") as tmp:
        sets = []
        if PBC_SAMPLE.is_dir():
            sample = [PBC_SAMPLE / file.path for file in scan_folder(PBC_SAMPLE).files]
            sets.append((f"PBC sample ({len(sample)} files)", sample, args.crop, args.workers))
        else:
            print(f"PBC sample: skipped, {PBC_SAMPLE} absent")
        sets.append(
            (
                f"synthetic 360x363 ({args.files} files)",
                write_synthetic(Path(tmp) / "small", args.files),
                args.crop,
                args.workers,
            )
        )
        if args.large:
            large = [write_large(Path(tmp) / "large.jpg", args.large)]
            sets.append((f"synthetic {args.large}x{args.large} (1 file), crop null", large, None, [1]))
        for name, paths, crop, workers in sets:
            kib = sum(p.stat().st_size for p in paths) / len(paths) / KIB
            for n in workers:
                r = measure(paths, args, n, crop, Path(tmp))
                pool = f"{r['pool_peak'] / 1e6:,.0f}" if n > 1 else "-"
                eta = f"~{PBC_FILES / r['rate']:.0f} s" if len(paths) > 1 else "-"
                failed = f", {r['failed']} undecodable" if r["failed"] else ""
                rows.append(
                    [
                        name + failed,
                        f"{kib:,.0f}",
                        str(n),
                        f"{r['rate']:,.1f}",
                        f"{r['cpu_rate']:,.1f}",
                        f"{r['peak'] / 1e6:,.0f}",
                        pool,
                        eta,
                    ]
                )
        print(f"## Decoding to {args.sizes} px, bicubic, crop {args.crop} (best of {args.repeats})\n")
        header = [
            "files",
            "KiB each",
            "workers",
            "files/s",
            "per CPU-s",
            "peak MB (main)",
            "peak MB (a worker)",
            "PBC's 17,092",
        ]
        print(markdown_table(header, rows))
        if PBC_SAMPLE.is_dir():
            print(
                f"\nPixels against a full-size decode, PBC sample, each size decoded alone, "
                f"crop {args.crop}:\n"
            )
            print(
                markdown_table(
                    ["size", "JPEG scale", "max abs diff", "mean abs diff", "pixels changed"],
                    pixel_shift(sample, args.sizes, args.crop),
                )
            )
    print()
    for line in machine_lines(frameworks=False):
        print(line)
