"""Fetch MedMNIST's npz files into data/raw/: from Zenodo with medmnist's MD5s, or from a mirror.

`data.mirror` is a local folder or a file:// or https:// base holding files with MedMNIST's names,
checked against an MD5SUMS file beside them when there is one. Downloads stream to a temporary
file, are verified and renamed into place, so a failure leaves no file behind.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from bloodcells.core.files import atomic_path, write_json
from bloodcells.core.params import DataParams
from bloodcells.core.paths import CLASSES_FILE, RAW_DIR, raw_path, user_path
from bloodcells.core.stage import StageError
from bloodcells.data.medmnist import class_names, info_url_and_md5, medmnist_filename

TIMEOUT_S = 30
# How MedMNIST made its images from the source files, where its paper says (BloodMNIST: PBC's
# 360x363 JPEGs, centre-cropped to 200x200 and resized); recorded so `predict` can repeat it.
MEDMNIST_DECODING = {"bloodmnist": {"crop": 200, "resize_filter": "bicubic"}}
CHUNK_BYTES = 1 << 20
MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")


class DownloadError(StageError):
    """A file could not be fetched or failed verification; the message is one line."""


@dataclass(frozen=True)
class Remote:
    """Where one file comes from and the MD5 it must have."""

    url: str
    md5: str
    md5_source: str = "medmnist's table"  # where `md5` came from, for the mismatch message


def mirror_base(mirror: str) -> str:
    """Turn a mirror param (folder path, file:// or https:// URL) into a URL base ending in '/'."""
    if "://" in mirror:
        if not mirror.startswith(("file://", "http://", "https://")):
            raise DownloadError(f"data.mirror {mirror!r}: use a folder, file://, http:// or https://")
        base = mirror
    else:
        folder = user_path(mirror).resolve()
        if not folder.is_dir():
            raise DownloadError(f"data.mirror {mirror!r}: no such folder ({folder})")
        base = folder.as_uri()
    return base if base.endswith("/") else base + "/"


def parse_md5sums(text: str, source: str) -> dict[str, str]:
    """Name -> MD5 from `md5sum` output (`<md5>  <name>` lines); a malformed line names file and line."""
    sums = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not MD5_HEX.fullmatch(parts[0]):
            raise DownloadError(
                f"{source} line {number}: expected '<32 hex digits>  <file name>', got {line.strip()[:80]!r}"
            )
        sums[parts[1].lstrip("*").strip()] = parts[0].lower()
    return sums


def read_md5sums(base: str) -> dict[str, str]:
    """Parse `MD5SUMS` at a mirror; empty if it has none."""
    try:
        with urllib.request.urlopen(base + "MD5SUMS", timeout=TIMEOUT_S) as response:
            data = response.read()
    except (urllib.error.URLError, OSError):
        return {}
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise DownloadError(f"{base}MD5SUMS: not text (expected `md5sum` output)") from None
    return parse_md5sums(text, base + "MD5SUMS")


def plan_remotes(params: DataParams) -> dict[int, Remote]:
    """Source URL and expected MD5 for each configured size."""
    remotes = {}
    sums = read_md5sums(mirror_base(params.mirror)) if params.mirror else {}
    for size in params.sizes:
        url, md5 = info_url_and_md5(params.dataset, size)
        source = "medmnist's table (medmnist.info.INFO)"
        if params.mirror:
            name = medmnist_filename(params.dataset, size)
            url = mirror_base(params.mirror) + name
            if name in sums:
                md5, source = sums[name], "the mirror's MD5SUMS"
            else:
                source += ", the mirror has no MD5SUMS entry for it"
        remotes[size] = Remote(url=url, md5=md5, md5_source=source)
    return remotes


def file_md5(path: Path) -> str:
    """MD5 of a file, read in chunks."""
    digest = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(remote: Remote, dest: Path) -> None:
    """Stream `remote` to `dest` through a temporary file; verify the MD5, then rename atomically."""
    name = remote.url.rsplit("/", 1)[-1].split("?")[0]
    with atomic_path(dest) as tmp:
        try:
            response = urllib.request.urlopen(remote.url, timeout=TIMEOUT_S)
        except urllib.error.URLError as error:
            if remote.url.startswith("file:"):
                raise DownloadError(f"{name}: missing at {remote.url}") from error
            raise DownloadError(
                f"{name}: cannot reach {remote.url} ({getattr(error, 'reason', error)}). "
                "Offline? Point data.mirror at a folder holding MedMNIST's files, e.g. "
                "dvc exp run -S data.mirror=/path/to/folder"
            ) from error
        total = int(response.headers.get("Content-Length") or 0) or None
        with (
            response,
            tmp.open("wb") as out,
            tqdm(total=total, unit="B", unit_scale=True, desc=name, file=sys.stderr) as bar,
        ):
            progress = _Progress(response, bar)
            try:
                shutil.copyfileobj(progress, out, CHUNK_BYTES)
            except (OSError, http.client.HTTPException) as error:
                raise DownloadError(
                    f"{name}: transfer from {remote.url} failed after {progress.received} bytes: {error}"
                ) from error
        if total is not None and progress.received < total:
            raise DownloadError(
                f"{name}: short read from {remote.url}: {progress.received} of {total} bytes "
                "(the server hung up; try again)"
            )
        actual = file_md5(tmp)
        if actual != remote.md5:
            raise DownloadError(
                f"{name}: checksum mismatch from {remote.url}: expected {remote.md5} "
                f"(from {remote.md5_source}), got {actual}"
            )
        if not zipfile.is_zipfile(tmp):
            raise DownloadError(f"{name}: not an npz file ({remote.url}, md5 {actual})")


class _Progress:
    """File-like wrapper that advances a tqdm bar as bytes are read."""

    def __init__(self, raw, bar: tqdm) -> None:
        self.raw, self.bar, self.received = raw, bar, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.raw.read(n)
        self.received += len(chunk)
        self.bar.update(len(chunk))
        return chunk


def download_all(params: DataParams, raw_dir: Path = RAW_DIR) -> list[Path]:
    """Fetch every configured size that is not already present and verified; drop stale files."""
    remotes = plan_remotes(params)
    wanted = {raw_path(params.dataset, size).name for size in remotes} | {CLASSES_FILE.name}
    if raw_dir.exists():
        for stale in raw_dir.iterdir():
            if stale.name not in wanted:
                stale.unlink()
    paths = []
    for size, remote in remotes.items():
        dest = raw_dir / raw_path(params.dataset, size).name
        if dest.exists() and file_md5(dest) == remote.md5:
            print(f"{dest}: present, md5 {remote.md5} verified")
        else:
            dest.unlink(missing_ok=True)  # a corrupt copy must not survive a failed re-fetch
            fetch(remote, dest)
            print(f"{dest}: fetched from {remote.url}, md5 {remote.md5} verified")
        paths.append(dest)
    decoding = MEDMNIST_DECODING.get(params.dataset)
    write_json(raw_dir / CLASSES_FILE.name, {"classes": class_names(params.dataset), "decoding": decoding})
    return paths
