"""The download's faults each get a line that says what went wrong."""

from __future__ import annotations

import pytest

from bloodcells.core.params import DataParams
from bloodcells.data.download import DownloadError, download_all, plan_remotes
from tests.reliability_servers import PROMISED, SENT, bad_server
from tests.synthetic import write_mirror


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
