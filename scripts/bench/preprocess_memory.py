"""Peak memory of the preprocess stage on shape-true synthetic MedMNIST files, against what it writes.

For each size a temporary project folder gets params.yaml, data/raw/classes.json and a
MedMNIST-format npz of 17,092 random images in BloodMNIST's official splits (11,959 / 1,712 /
3,421, 8 classes; written in chunks, uncompressed, so writing it costs little memory); then the
real stage, `python -m stages.preprocess --size N`, runs there in a child process and the kernel's
peak resident set size of that child is printed beside the size of the uint8 arrays it wrote
(target: at most 2x). The folder is deleted afterwards (224 px is 2.6 GB of pixels).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import yaml

from scripts.bench.common import PROJECT, BenchError, machine_lines, markdown_table, quiet_env, run_measured

SPLIT_SIZES = {"train": 11_959, "val": 1_712, "test": 3_421}  # BloodMNIST's official splits
CLASSES = ["basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet"]
CHUNK_IMAGES = 512


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 224], help="default: 128 224")
    parser.add_argument("--smoke", action="store_true", help="100 images per split: checks the path only")
    parser.add_argument("--workdir", type=Path, help="where to make the temporary folders (default: /tmp)")


def write_member(
    archive: zipfile.ZipFile, name: str, shape: tuple[int, ...], chunks: Iterator[np.ndarray]
) -> None:
    """One uint8 .npy member of `shape`, streamed from `chunks` (rows in order), never whole in memory."""
    with archive.open(f"{name}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_2_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
        for chunk in chunks:
            f.write(np.ascontiguousarray(chunk, dtype=np.uint8).tobytes())


def random_images(rng: np.random.Generator, n: int, size: int) -> Iterator[np.ndarray]:
    """`n` random (size, size, 3) images, `CHUNK_IMAGES` at a time."""
    for start in range(0, n, CHUNK_IMAGES):
        yield rng.integers(0, 256, (min(CHUNK_IMAGES, n - start), size, size, 3), dtype=np.uint8)


def write_shape_true_npz(path: Path, size: int, counts: dict[str, int], seed: int = 0) -> None:
    """A MedMNIST-format npz (uncompressed) of random images, classes in turn, in the given splits."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for split, n in counts.items():
            write_member(archive, f"{split}_images", (n, size, size, 3), random_images(rng, n, size))
            labels = (np.arange(n) % len(CLASSES)).reshape(n, 1)
            write_member(archive, f"{split}_labels", (n, 1), iter([labels]))


def project_folder(root: Path, size: int, counts: dict[str, int]) -> None:
    """A folder the preprocess stage can run in at `size`, with its raw file."""
    from bloodcells.core.params import apply_overrides

    overrides = {
        "data.sizes": [size],
        "data.source": "medmnist",
        "data.dataset": "bloodmnist",
        "train.size": size,
        "preprocess.check_split_sizes": counts == SPLIT_SIZES,
    }
    params = apply_overrides(yaml.safe_load((PROJECT / "params.yaml").read_text()), overrides, "bench")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "dvc.yaml").write_text("stages: {}\n")  # the stage insists on running from a project root
    raw = root / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "classes.json").write_text(json.dumps({"classes": CLASSES, "decoding": None}))
    write_shape_true_npz(raw / f"bloodmnist_{size}.npz", size, counts)


def measure(size: int, counts: dict[str, int], workdir: Path | None) -> dict:
    """Peak RSS of the preprocess stage at `size`, and the bytes of the arrays it wrote."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-preprocess-{size}-", dir=workdir))
    try:
        project_folder(root, size, counts)
        command = [sys.executable, "-m", "stages.preprocess", "--size", str(size)]
        status, peak, output = run_measured(command, root, quiet_env())
        if status != 0:
            raise BenchError(f"preprocess at {size} px exited {status}:\n{output[-2000:]}")
        written = sum(p.stat().st_size for p in (root / "data" / "preprocessed" / str(size)).glob("*.npy"))
        summary = json.loads((root / "data" / "preprocessed" / str(size) / "summary.json").read_text())
        return {"size": size, "peak": peak, "written": written, "mean": summary["channel_mean"]}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    counts = {split: 100 for split in SPLIT_SIZES} if args.smoke else SPLIT_SIZES
    results = [measure(size, counts, args.workdir) for size in args.sizes]
    rows = [
        [
            f"{r['size']} px",
            f"{sum(counts.values()):,}",
            f"{r['written'] / 1e6:,.0f}",
            f"{r['peak'] / 1e6:,.0f}",
            f"{r['peak'] / r['written']:.2f}x",
        ]
        for r in results
    ]
    print("## Preprocess peak memory (shape-true synthetic MedMNIST files)\n")
    header = ["size", "images", "uint8 arrays written (MB)", "peak resident set (MB)", "peak / written"]
    print(markdown_table(header, rows))
    print(
        "\n- target: peak <= 2x the arrays written; `python -m stages.preprocess` in a child process, its"
        " peak resident set from GNU time (%M), or wait4 without it"
    )
    print(f"- splits {counts}, random pixels, uncompressed npz input")
    for line in machine_lines(frameworks=False):
        print(line)
