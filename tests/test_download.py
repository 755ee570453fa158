"""The downloader against a loopback HTTP server started by the test."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from emnist_estimators import load_emnist
from emnist_estimators.datasets import download_members, write_idx
from emnist_estimators.datasets import download as download_mod
from emnist_estimators.exceptions import ChecksumError, DownloadError

MEMBERS = [
    "gzip/emnist-mnist-test-images-idx3-ubyte.gz",
    "gzip/emnist-mnist-test-labels-idx1-ubyte.gz",
]


class ArchiveServer:
    """Serves one byte string; Range support and connection cuts are switchable."""

    def __init__(self, payload: bytes, *, ranges=True, cuts=0, content_type=None):
        self.payload, self.ranges, self.cuts = payload, ranges, cuts
        self.content_type = content_type or "application/zip"
        self.requests: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                data = server.payload
                rng = self.headers.get("Range")
                server.requests.append(rng)
                start, end = 0, len(data) - 1
                if rng and server.ranges:
                    lo, hi = rng.removeprefix("bytes=").split("-")
                    start, end = int(lo), min(int(hi), len(data) - 1)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start : end + 1]
                self.send_header("Content-Type", server.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cuts and len(body) > 1000:
                    server.cuts -= 1
                    self.wfile.write(body[: len(body) // 3])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # cut mid-transfer
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/gzip.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def make_archive(tmp_path, *, corrupt=None, extra=None, members=None):
    """A zip laid out like NIST's gzip.zip, with generated members."""
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    write_idx(src / "i.gz", rng.integers(0, 256, (300, 28, 28), dtype=np.uint8))
    write_idx(src / "l.gz", (np.arange(300) % 10).astype(np.uint8))
    contents = {
        MEMBERS[0]: (src / "i.gz").read_bytes(),
        MEMBERS[1]: (src / "l.gz").read_bytes(),
        "gzip/emnist-letters-train-images-idx3-ubyte.gz": rng.bytes(200_000),
    }
    if members:
        contents.update(members)
    checksums = {k: hashlib.sha256(v).hexdigest() for k, v in contents.items()}
    if corrupt:
        contents[corrupt] = contents[corrupt][:-10] + b"0123456789"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue(), checksums, contents


@pytest.mark.parametrize("ranges", [True, False])
def test_download_with_and_without_range(tmp_path, monkeypatch, ranges):
    monkeypatch.setattr(download_mod, "_BLOCK", 16 * 1024)  # fine-grained ranges
    payload, checksums, contents = make_archive(tmp_path)
    out = tmp_path / "out"
    with ArchiveServer(payload, ranges=ranges) as server:
        paths = download_members(
            MEMBERS, out, url=server.url, progress=False, checksums=checksums
        )
    for member, path in zip(MEMBERS, paths):
        assert path.read_bytes() == contents[member]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    if ranges:  # only the needed members (plus the directory) were fetched
        fetched = sum(
            int(r.split("-")[1]) - int(r.split("=")[1].split("-")[0]) + 1
            for r in server.requests
            if r
        )
        assert fetched < len(payload) - 150_000
    else:
        assert None in server.requests  # a plain full GET


def test_corrupt_member_leaves_nothing(tmp_path):
    payload, checksums, _ = make_archive(tmp_path, corrupt=MEMBERS[0])
    out = tmp_path / "out"
    with ArchiveServer(payload) as server, pytest.raises(ChecksumError, match="sha256"):
        download_members(MEMBERS, out, url=server.url, progress=False, checksums=checksums)
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
    monkeypatch.setattr(download_mod.time, "sleep", lambda s: None)
    monkeypatch.setattr(download_mod, "_BLOCK", 64 * 1024)
    payload, checksums, _ = make_archive(tmp_path)
    out = tmp_path / "out"
    with ArchiveServer(payload, ranges=ranges, cuts=10**6) as server:
        with pytest.raises(DownloadError, match="failed after|bytes"):
            download_members(
                MEMBERS, out, url=server.url, progress=False, checksums=checksums
            )
    assert list(out.iterdir()) == []


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
    with ArchiveServer(payload) as server, pytest.raises(DownloadError, match="escapes"):
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
    assert sorted(p.name for p in home.iterdir() if not p.name.endswith(".npy")) == sorted(
        names
    )
