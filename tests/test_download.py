"""The downloader against a loopback HTTP server started by the test.

The server logs every request (its Range and the body bytes it really sent),
so the tests check what went over the wire, not only the files that came out.
"""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from helpers import MEMBERS, ArchiveServer, make_archive, needed_bytes

from emnist_estimators import load_emnist
from emnist_estimators.datasets import download as download_mod
from emnist_estimators.datasets import download_members
from emnist_estimators.exceptions import ChecksumError, DownloadError


@pytest.mark.parametrize("ranges", [True, False])
def test_download_with_and_without_range(tmp_path, monkeypatch, ranges):
    monkeypatch.setattr(download_mod, "_BLOCK", 16 * 1024)  # fine-grained ranges
    payload, checksums, contents = make_archive(tmp_path)
    out = tmp_path / "out"
    with ArchiveServer(payload, ranges=ranges) as server:
        paths = download_members(
            MEMBERS, out, url=server.url, progress=False, checksums=checksums
        )
    for member, path in zip(MEMBERS, paths, strict=True):
        assert path.read_bytes() == contents[member]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    if ranges:  # small blocks: still no byte outside the directory and members
        directory, members = needed_bytes(payload, MEMBERS)
        assert all(r.start is not None for r in server.log)
        assert server.bytes_served <= directory + members + 256
    else:
        assert server.log[-1].start is None  # a plain full GET
        assert server.log[-1].sent == len(payload)


def test_split_fetch_transfers_only_directory_and_members(tmp_path):
    """Issue 16: with Range, the wire carries the directory and the members only."""
    payload, checksums, contents = make_archive(tmp_path, big=600_000)
    directory, members = needed_bytes(payload, MEMBERS)
    out = tmp_path / "out"
    with ArchiveServer(payload) as server:
        download_members(
            MEMBERS, out, url=server.url, progress=False, checksums=checksums
        )
    assert all(r.start is not None for r in server.log), "a full-archive GET"
    # Slack: the 64-byte probe and zipfile's 22 + 42 byte end-record reads.
    assert server.bytes_served <= directory + members + 256, (
        f"{server.bytes_served:,} bytes served for {directory + members:,} needed "
        f"(archive {len(payload):,})"
    )
    assert (out / "emnist-mnist-test-labels-idx1-ubyte.gz").read_bytes() == contents[
        MEMBERS[1]
    ]


def test_resume_requests_only_the_missing_range(tmp_path, monkeypatch):
    """Issue 16: after a cut, the retry asks from the first byte not received."""
    monkeypatch.setattr(download_mod.time, "sleep", lambda s: None)
    payload, checksums, contents = make_archive(tmp_path, big=600_000)
    directory, members = needed_bytes(payload, MEMBERS)
    out = tmp_path / "out"
    # The images member (about 230 kB) is the first response over 100 kB.
    with ArchiveServer(payload, cuts=1, cut_at=40_000, cut_min=100_000) as server:
        paths = download_members(
            MEMBERS, out, url=server.url, progress=False, checksums=checksums
        )
    assert paths[0].read_bytes() == contents[MEMBERS[0]]
    i = next(i for i, r in enumerate(server.log) if r.cut)
    cut, retry = server.log[i], server.log[i + 1]
    assert cut.sent == 40_000
    assert (retry.start, retry.end) == (cut.start + cut.sent, cut.end)
    assert server.bytes_served <= directory + members + 256  # nothing fetched twice


def test_corrupt_member_leaves_nothing(tmp_path):
    payload, checksums, _ = make_archive(tmp_path, corrupt=MEMBERS[0])
    out = tmp_path / "out"
    with ArchiveServer(payload) as server, pytest.raises(ChecksumError, match="sha256"):
        download_members(
            MEMBERS, out, url=server.url, progress=False, checksums=checksums
        )
    assert list(out.iterdir()) == []


def test_connection_cut_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(download_mod.time, "sleep", lambda s: None)
    monkeypatch.setattr(download_mod, "_BLOCK", 64 * 1024)
    payload, checksums, contents = make_archive(tmp_path)
    out = tmp_path / "out"
    with ArchiveServer(payload, cuts=2) as server:
        paths = download_members(
            MEMBERS, out, url=server.url, progress=False, checksums=checksums
        )
    assert paths[0].read_bytes() == contents[MEMBERS[0]]
    assert server.cuts == 0  # both cuts happened and were survived


@pytest.mark.parametrize("ranges", [True, False])
def test_connection_always_cut_fails_cleanly(tmp_path, monkeypatch, ranges):
    """Every response is cut before its first body byte: no attempt progresses."""
    monkeypatch.setattr(download_mod.time, "sleep", lambda s: None)
    payload, checksums, _ = make_archive(tmp_path)
    out = tmp_path / "out"
    server = ArchiveServer(payload, ranges=ranges, cuts=10**6, cut_at=0, cut_min=64)
    with server, pytest.raises(DownloadError, match="no new byte|failed after"):
        download_members(
            MEMBERS, out, url=server.url, progress=False, checksums=checksums
        )
    assert list(out.iterdir()) == []
    # The probe, two end-record reads, then the attempts that each got nothing.
    assert len(server.log) <= 3 + download_mod._RETRIES + 1


def test_html_instead_of_archive(tmp_path):
    page = b"<!DOCTYPE html><html><body>The page has moved</body></html>" * 50
    out = tmp_path / "out"
    with ArchiveServer(page, ranges=False, content_type="text/html") as server:
        with pytest.raises(DownloadError, match="HTML page"):
            download_members(MEMBERS, out, url=server.url, progress=False)
    assert not out.exists() or list(out.iterdir()) == []


def test_member_escaping_target_folder(tmp_path):
    payload, checksums, _ = make_archive(
        tmp_path, members={"gzip/../../evil.gz": b"x" * 10}
    )
    out = tmp_path / "out"
    with (
        ArchiveServer(payload) as server,
        pytest.raises(DownloadError, match="escapes"),
    ):
        download_members(["gzip/../../evil.gz"], out, url=server.url, progress=False)
    assert not (tmp_path / "evil.gz").exists()


def test_unreachable_server(tmp_path):
    with pytest.raises(DownloadError, match="Cannot reach"):
        download_members(MEMBERS, tmp_path, url="http://127.0.0.1:9/gzip.zip")


def test_load_emnist_downloads_real_official_members(tmp_path, emnist_dir):
    """End to end: a loopback mirror serving NIST's real mnist test members."""
    names = [
        "emnist-mnist-test-images-idx3-ubyte.gz",
        "emnist-mnist-test-labels-idx1-ubyte.gz",
        "emnist-mnist-mapping.txt",
    ]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            zf.writestr(f"gzip/{name}", (emnist_dir / name).read_bytes())
    home = tmp_path / "home"
    with ArchiveServer(buf.getvalue()) as server:
        bunch = load_emnist(
            "mnist", "test", data_home=home, url=server.url, progress=False
        )
    assert bunch.data.shape == (10_000, 784)
    for name in names:  # the official bytes: sizes and sha256 were checked
        assert (home / name).read_bytes() == (emnist_dir / name).read_bytes()
    # Besides them only the image cache; no archive or temporary file is left.
    others = {p.name for p in home.iterdir()} - set(names)
    assert all(re.fullmatch(re.escape(names[0]) + r"\.v\d+\..*", n) for n in others)
