"""The downloader against a loopback HTTP server started by the test.

The server logs every request (its Range and the body bytes it really sent),
so the tests check what went over the wire, not only the files that came out.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from emnist_estimators import load_emnist
from emnist_estimators.datasets import download as download_mod
from emnist_estimators.datasets import download_members, write_idx
from emnist_estimators.exceptions import ChecksumError, DownloadError

MEMBERS = [
    "gzip/emnist-mnist-test-images-idx3-ubyte.gz",
    "gzip/emnist-mnist-test-labels-idx1-ubyte.gz",
]
_CHUNK = 16 * 1024  # the server sends bodies in pieces this size
_HOLD_S = 10  # a stalling handler gives up after this, if the test forgot it


@dataclass
class Served:
    """One request: the byte range asked for (None: a plain GET) and bytes sent."""

    start: int | None
    end: int | None
    sent: int = 0
    cut: bool = False


class ArchiveServer:
    """Serves one byte string on 127.0.0.1; logs each request in ``self.log``.

    Parameters
    ----------
    ranges : honour Range requests (else answer 200 with the whole body).
    cuts : how many responses longer than ``cut_min`` are cut mid-body.
    cut_at : body bytes sent before a cut: an int, or a float fraction.
    drop_every : cut every response after this many body bytes.
    send_length : send Content-Length (else the body ends at the close).
    stall_after : for responses longer than ``cut_min``, send this many body
        bytes, then nothing, holding the connection open; a list gives one
        value per such response, its last value repeating. -1: answer no
        request at all, not even with a status line.
    """

    def __init__(
        self,
        payload: bytes,
        *,
        ranges=True,
        cuts=0,
        cut_at=1 / 3,
        cut_min=1000,
        drop_every=None,
        stall_after=None,
        content_type=None,
        send_length=True,
    ):
        self.payload, self.ranges = payload, ranges
        self.cuts, self.cut_at, self.cut_min = cuts, cut_at, cut_min
        self.drop_every, self.stall_after = drop_every, stall_after
        self.content_type = content_type or "application/zip"
        self.send_length = send_length
        self.log: list[Served] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server._serve(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/gzip.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def bytes_served(self) -> int:
        return sum(r.sent for r in self.log)

    def _body_limit(self, n: int) -> tuple[int, bool]:
        """How many of ``n`` body bytes to send, and whether to cut after them."""
        if self.drop_every is not None and n > self.drop_every:
            return self.drop_every, True
        if self.cuts and n > self.cut_min:
            self.cuts -= 1
            at = self.cut_at if isinstance(self.cut_at, int) else int(n * self.cut_at)
            return at, True
        return n, False

    def _stall(self, n: int) -> int | None:
        if self.stall_after is None or n <= self.cut_min:
            return None
        if isinstance(self.stall_after, int):
            return self.stall_after
        return (
            self.stall_after.pop(0)
            if len(self.stall_after) > 1
            else self.stall_after[0]
        )

    def _serve(self, handler):
        data, rng = self.payload, handler.headers.get("Range")
        entry = Served(None, None)
        self.log.append(entry)
        if self.stall_after == -1:  # accept, read the request, say nothing
            self.release.wait(_HOLD_S)
            return
        start, end = 0, len(data) - 1
        if rng and self.ranges:
            lo, hi = rng.removeprefix("bytes=").split("-")
            start, end = int(lo), min(int(hi), len(data) - 1)
            entry.start, entry.end = start, end
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            handler.send_response(200)
        body = data[start : end + 1]
        handler.send_header("Content-Type", self.content_type)
        if self.send_length:  # else HTTP/1.0: the body ends when the link closes
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        limit, entry.cut = self._body_limit(len(body))
        stall = self._stall(len(body))
        if stall is not None and stall < limit:
            limit, entry.cut = stall, False
        try:
            for i in range(0, limit, _CHUNK):
                piece = body[i : min(i + _CHUNK, limit)]
                handler.wfile.write(piece)
                entry.sent += len(piece)
        except OSError:  # the client hung up: it has what it read
            return
        if stall is not None and limit < len(body):
            self.release.wait(_HOLD_S)
        elif entry.cut:
            handler.connection.shutdown(2)  # cut mid-transfer

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def make_archive(tmp_path, *, corrupt=None, extra=None, members=None, big=200_000):
    """A zip laid out like NIST's gzip.zip, with generated members.

    An incompressible member of ``big`` bytes sits between the two wanted ones,
    and another one after them, so fetching a wanted member must skip them.
    """
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    write_idx(src / "i.gz", rng.integers(0, 256, (300, 28, 28), dtype=np.uint8))
    write_idx(src / "l.gz", (np.arange(300) % 10).astype(np.uint8))
    contents = {
        MEMBERS[0]: (src / "i.gz").read_bytes(),
        "gzip/emnist-letters-train-images-idx3-ubyte.gz": rng.bytes(big),
        MEMBERS[1]: (src / "l.gz").read_bytes(),
        "gzip/emnist-letters-test-images-idx3-ubyte.gz": rng.bytes(big),
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


def needed_bytes(payload: bytes, members) -> tuple[int, int]:
    """``(central directory + end record, local headers + data of members)``."""
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        directory = len(payload) - zf.start_dir
        total = 0
        for name in members:
            info = zf.getinfo(name)
            # A local header: 30 fixed bytes, the name, and an extra field that
            # zipfile.writestr leaves empty.
            total += 30 + len(info.filename.encode()) + info.compress_size
    return directory, total


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
