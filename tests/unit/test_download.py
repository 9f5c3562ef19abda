"""Download stage: mirrors, checksums, and failures that leave nothing behind."""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bloodcells.core.params import DataParams
from bloodcells.data.download import DownloadError, download_all, file_md5, mirror_base, plan_remotes
from tests.conftest import PROJECT, dvc_env, group, set_params
from tests.faulty_servers import PROMISED, SENT, bad_server
from tests.synthetic import write_mirror


def params(mirror: Path | str, sizes=(28,)) -> DataParams:
    return group("data", dataset="bloodmnist", source="medmnist", sizes=list(sizes), mirror=str(mirror))


def test_fetches_from_a_local_mirror_and_verifies_md5sums(tmp_path):
    mirror = write_mirror(tmp_path / "mirror", [28, 64])
    raw = tmp_path / "raw"
    paths = download_all(params(mirror, (28, 64)), raw)
    assert [p.name for p in paths] == ["bloodmnist_28.npz", "bloodmnist_64.npz"]
    assert file_md5(raw / "bloodmnist_64.npz") == file_md5(mirror / "bloodmnist_64.npz")
    assert sorted(p.name for p in raw.iterdir()) == ["bloodmnist_28.npz", "bloodmnist_64.npz", "classes.json"]


def test_present_verified_files_are_not_fetched_again_and_stale_sizes_are_dropped(tmp_path, capsys):
    mirror = write_mirror(tmp_path / "mirror", [28, 64])
    raw = tmp_path / "raw"
    download_all(params(mirror, (28, 64)), raw)
    download_all(params(mirror, (28,)), raw)
    assert "present, md5" in capsys.readouterr().out
    assert sorted(p.name for p in raw.iterdir()) == ["bloodmnist_28.npz", "classes.json"]


def test_file_url_mirror_and_info_md5_fallback(tmp_path):
    """Without MD5SUMS the checksum comes from medmnist's INFO, which a synthetic file cannot match."""
    mirror = write_mirror(tmp_path / "mirror", [28], md5sums=False)
    with pytest.raises(DownloadError, match="expected 7053d0359d879ad8a5505303e11de1dc"):
        download_all(params(mirror.as_uri()), tmp_path / "raw")


def assert_nothing_left(raw: Path) -> None:
    assert not raw.exists() or list(raw.iterdir()) == []


def test_wrong_checksum_names_file_source_and_both_md5s(tmp_path):
    mirror = write_mirror(tmp_path / "mirror", [28])
    actual = file_md5(mirror / "bloodmnist.npz")
    (mirror / "MD5SUMS").write_text("0" * 32 + "  bloodmnist.npz\n")
    with pytest.raises(DownloadError) as error:
        download_all(params(mirror), tmp_path / "raw")
    message = str(error.value)
    assert "bloodmnist.npz: checksum mismatch" in message and mirror.as_uri() in message
    assert f"expected {'0' * 32} (from " in message and f"got {actual}" in message
    assert_nothing_left(tmp_path / "raw")


def test_truncated_file_fails_its_checksum(tmp_path):
    mirror = write_mirror(tmp_path / "mirror", [28])
    data = (mirror / "bloodmnist.npz").read_bytes()
    (mirror / "bloodmnist.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_all(params(mirror), tmp_path / "raw")
    assert_nothing_left(tmp_path / "raw")


def test_non_npz_file_with_a_matching_checksum_is_refused(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "bloodmnist.npz").write_text("<html>not found</html>")
    (mirror / "MD5SUMS").write_text(f"{file_md5(mirror / 'bloodmnist.npz')}  bloodmnist.npz\n")
    with pytest.raises(DownloadError, match="not an npz file"):
        download_all(params(mirror), tmp_path / "raw")
    assert_nothing_left(tmp_path / "raw")


def test_missing_file_and_missing_mirror(tmp_path):
    mirror = write_mirror(tmp_path / "mirror", [28])
    with pytest.raises(DownloadError, match="bloodmnist_64.npz: missing at file://"):
        download_all(params(mirror, (28, 64)), tmp_path / "raw")
    assert not (tmp_path / "raw" / "bloodmnist_64.npz").exists()
    with pytest.raises(DownloadError, match="no such folder"):
        plan_remotes(params(tmp_path / "nowhere"))


def test_unreachable_host_fails_fast_and_suggests_a_mirror(tmp_path):
    with pytest.raises(DownloadError, match="cannot reach .*data.mirror"):
        download_all(params("http://127.0.0.1:9/medmnist"), tmp_path / "raw")
    assert_nothing_left(tmp_path / "raw")


def test_https_style_mirror_over_http(tmp_path):
    """An http(s) base is fetched with the same streaming and verification as a folder."""
    mirror = write_mirror(tmp_path / "mirror", [28])

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(mirror), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        download_all(params(f"http://127.0.0.1:{server.server_port}/"), tmp_path / "raw")
    finally:
        server.shutdown()
    expected = hashlib.md5((mirror / "bloodmnist.npz").read_bytes()).hexdigest()
    assert file_md5(tmp_path / "raw" / "bloodmnist_28.npz") == expected


def test_bad_params_give_one_clear_line(tmp_path):
    with pytest.raises(DownloadError, match="use a folder, file://"):
        mirror_base("ftp://example.org/")
    with pytest.raises(ValueError, match="Unsupported image size 32"):
        plan_remotes(group("data", dataset="bloodmnist", sizes=[32], mirror=None))
    with pytest.raises(ValueError, match="Unknown MedMNIST dataset 'bloodmnst'. Known: .*bloodmnist"):
        plan_remotes(group("data", dataset="bloodmnst", sizes=[28], mirror=None))


def test_stage_exits_with_one_line_and_no_traceback(tmp_path):
    for name in ("params.yaml", "dvc.yaml"):
        (tmp_path / name).write_bytes((PROJECT / name).read_bytes())
    set_params(tmp_path, {"data.mirror": "http://127.0.0.1:9/"})  # a closed port
    result = subprocess.run(
        [sys.executable, "-m", "stages.download"],
        cwd=tmp_path,
        env={**dvc_env(), "PYTHONPATH": str(PROJECT)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("download failed: bloodmnist.npz: cannot reach")
    assert not (tmp_path / "data/raw/bloodmnist_28.npz").exists()


# A fault of the download, each in one line saying what went wrong.
def data_params(mirror: str) -> DataParams:
    return DataParams(dataset="bloodmnist", source="medmnist", sizes=[28], mirror=mirror, path=None)


def test_a_malformed_md5sums_line_names_the_file_and_the_line(tmp_path):
    mirror = write_mirror(tmp_path / "mirror", [28])
    good = (mirror / "MD5SUMS").read_text()
    (mirror / "MD5SUMS").write_text(good + "\nonly-one-field\n")
    with pytest.raises(DownloadError) as error:
        plan_remotes(data_params(str(mirror)))
    message = str(error.value)
    assert "MD5SUMS line 3" in message and "only-one-field" in message and "\n" not in message
    assert "unpack" not in message


def test_without_md5sums_a_mismatch_says_the_expected_md5_came_from_medmnists_table(tmp_path):
    mirror = write_mirror(tmp_path / "mirror", [28], md5sums=False)
    with pytest.raises(DownloadError) as error:
        download_all(data_params(str(mirror)), tmp_path / "raw")
    message = str(error.value)
    assert "checksum mismatch" in message and "medmnist's table" in message
    assert "no MD5SUMS" in message
    assert not list((tmp_path / "raw").glob("*.npz"))  # nothing half-written left


def test_with_md5sums_a_mismatch_says_the_expected_md5_came_from_the_mirror(tmp_path):
    mirror = write_mirror(tmp_path / "mirror", [28])
    (mirror / "bloodmnist.npz").write_bytes(b"PK not the file")
    with pytest.raises(DownloadError, match="from the mirror's MD5SUMS"):
        download_all(data_params(str(mirror)), tmp_path / "raw")


def test_a_server_that_hangs_up_mid_body_is_reported_as_a_short_read(tmp_path):
    with bad_server() as (base, _), pytest.raises(DownloadError) as error:
        download_all(data_params(base), tmp_path / "raw")
    message = str(error.value)
    assert f"short read from {base}bloodmnist.npz: {SENT} of {PROMISED} bytes" in message
    assert "checksum" not in message
    assert not list((tmp_path / "raw").glob("*.npz"))
