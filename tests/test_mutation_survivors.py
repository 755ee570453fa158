"""Behaviour that the mutation check found unguarded (issue 16).

``python -m benchmarks.mutation_check`` breaks the downloader's Range/resume
logic, the cache identity check, sample weighting and the ``--overwrite``
guard on purpose, one change at a time; each test here fails for a change
that the rest of the suite let through (the list is in
``benchmarks/results/mutation_check.md``). One class per area, so the check
can run each survivor against its area's tests only.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import struct
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    BOMB,
    MEMBERS,
    SLACK,
    ArchiveServer,
    bar_images,
    bomb,
    bytes_written,
    glyph_images,
    make_archive,
)
from test_cache import N, _load, _npy, _set_mtime_ns, _write

from emnist_estimators.datasets import cache, download_members
from emnist_estimators.datasets import download as download_mod
from emnist_estimators.datasets.cache import load_cached_images
from emnist_estimators.exceptions import ChecksumError, DataFormatError, DownloadError
from emnist_estimators.output_folder import (
    MANIFEST_NAME,
    OutputFolderError,
    check_output_folder,
    output_folder,
    prepare_reusable,
    read_manifest,
)


# --- the downloader's Range and resume logic ---------------------------------------
class _Server(ArchiveServer):
    """The suite's loopback server, stopped in 50 ms instead of 500."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.agents: list[str | None] = []

    def _serve(self, handler):
        self.agents.append(handler.headers.get("User-Agent"))
        super()._serve(handler)


class _RangeLiar(_Server):
    """Answers the probe correctly, then every ranged request with ``lie``'s
    Content-Range (None: no Content-Range header at all)."""

    def __init__(self, payload, lie):
        super().__init__(payload)
        self.lie = lie

    def _serve(self, handler):
        if handler.headers.get("Range") != "bytes=0-63":
            send = handler.send_header

            def send_header(key, value):
                if key == "Content-Range":
                    value = self.lie(value)
                    if value is None:
                        return
                send(key, value)

            handler.send_header = send_header
        super()._serve(handler)


class _Oversender(_Server):
    """Honours where a range starts but sends everything after it."""

    def _serve(self, handler):
        rng = handler.headers.get("Range")
        if rng and rng != "bytes=0-63":
            lo = rng.removeprefix("bytes=").split("-")[0]
            handler.headers.replace_header("Range", f"bytes={lo}-{len(self.payload)}")
        super()._serve(handler)


class _Scripted(_Server):
    """Serves responses over ``cut_min`` bytes as scripted, in order: an int n
    sends n body bytes and cuts the connection, "stall" sends nothing and
    holds it; responses past the script are served whole."""

    def __init__(self, payload, script, cut_min=100_000):
        super().__init__(payload, cut_min=cut_min)
        self.script = list(script)
        self.big = 0

    def _body_limit(self, n):
        if n <= self.cut_min:
            return n, False
        self.big += 1
        step = self.script[self.big - 1] if self.big <= len(self.script) else None
        if step is None or step == "stall":
            return n, False
        return step, True

    def _stall(self, n):
        if n > self.cut_min and self.big <= len(self.script):
            return 0 if self.script[self.big - 1] == "stall" else None
        return None


class _DropHeader(_Server):
    """Answers without the header ``name`` (for the requests ``which`` picks)."""

    def __init__(self, payload, name, which=lambda rng: True, **kwargs):
        super().__init__(payload, **kwargs)
        self.name, self.which = name, which

    def _serve(self, handler):
        if self.which(handler.headers.get("Range")):
            send = handler.send_header

            def send_header(key, value):
                if key != self.name:
                    send(key, value)

            handler.send_header = send_header
        super()._serve(handler)


class _Progress:
    """Stands in for the tqdm bar; adds up what it is told."""

    def __init__(self, *args, **kwargs):
        self.n, self.total = 0, None

    def update(self, n):
        self.n += n

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


class _Unseekable(io.BytesIO):
    """An output zipfile cannot seek in: it writes sizes after the data."""

    def seek(self, *args):
        raise OSError("not seekable")


def _zip(
    members: dict[str, bytes], *, zip64=False, unseekable=False, extra=b""
) -> bytes:
    """A deflated zip of ``members``; options change how the headers are written."""
    buf = _Unseekable() if unseekable else io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type, info.extra = zipfile.ZIP_DEFLATED, extra
            with zf.open(info, "w", force_zip64=zip64) as fh:
                fh.write(data)
    return buf.getvalue()


LABELS_NAME = Path(MEMBERS[1]).name  # an official member of 5,144 bytes


def _spans(payload: bytes, members) -> list[tuple[int, int]]:
    """Byte spans (first, last) of the central directory and of each member."""
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        spans = [(zf.start_dir, len(payload) - 1)]
        for name in members:
            info = zf.getinfo(name)
            end = info.header_offset + 30 + len(info.filename.encode())
            spans.append(
                (info.header_offset, end + len(info.extra) + info.compress_size - 1)
            )
    return spans


class TestDownloadRange:
    def _download(self, server, tmp_path, checksums=None, members=MEMBERS):
        return download_members(
            members,
            tmp_path / "out",
            url=server.url,
            progress=False,
            checksums=checksums,
        )

    def test_no_request_reaches_past_what_is_needed(self, tmp_path, monkeypatch):
        """Every ranged request stays inside the directory or one wanted member,
        so nothing of a neighbour is fetched, not even a byte."""
        monkeypatch.setattr(download_mod, "_BLOCK", 16 * 1024)
        payload, checksums, _ = make_archive(tmp_path)
        spans = _spans(payload, MEMBERS)
        with _Server(payload) as server:
            self._download(server, tmp_path, checksums)
        for r in server.log[1:]:  # after the 64-byte probe
            assert any(lo <= r.start <= r.end <= hi for lo, hi in spans), (r, spans)

    def test_every_request_names_the_package(self, tmp_path):
        payload, checksums, _ = make_archive(tmp_path)
        with _Server(payload) as server:
            self._download(server, tmp_path, checksums)
        assert len(server.agents) > 3
        assert set(server.agents) == {download_mod._USER_AGENT}

    def test_progress_counts_every_byte_received(self, tmp_path, monkeypatch):
        bars = []
        monkeypatch.setattr(
            download_mod,
            "_progress",
            lambda *a, **k: bars.append(_Progress()) or bars[-1],
        )
        payload, checksums, _ = make_archive(tmp_path)
        with _Server(payload) as server:
            download_members(
                MEMBERS, tmp_path / "out", url=server.url, checksums=checksums
            )
        (bar,) = bars
        assert bar.n == sum(r.sent for r in server.log[1:]) > 0  # all but the probe

    def test_a_server_sending_past_the_range_is_read_no_further(
        self, tmp_path, monkeypatch
    ):
        bars = []
        monkeypatch.setattr(
            download_mod,
            "_progress",
            lambda *a, **k: bars.append(_Progress()) or bars[-1],
        )
        payload, checksums, contents = make_archive(
            tmp_path
        )  # 1 MiB blocks: many reads
        directory_and_members = sum(hi - lo + 1 for lo, hi in _spans(payload, MEMBERS))
        with _Oversender(payload) as server:
            paths = download_members(
                MEMBERS, tmp_path / "out", url=server.url, checksums=checksums
            )
        assert paths[1].read_bytes() == contents[MEMBERS[1]]
        assert bars[0].n <= directory_and_members + 64  # + zipfile's end-record read

    @pytest.mark.parametrize("lie", ["start", "absent"])
    def test_a_server_that_stops_honouring_range_is_named(self, tmp_path, lie):
        def content_range(value):  # "bytes 123-456/789"
            if lie == "absent":
                return None
            return "bytes 0-" + value.split("-", 1)[1]

        payload, checksums, _ = make_archive(tmp_path)
        with _RangeLiar(payload, content_range) as server:
            with pytest.raises(DownloadError) as info:
                self._download(server, tmp_path, checksums)
        first = server.log[1]
        shown = "'bytes 0-" if lie == "start" else "''"
        assert (
            f"{server.url} stopped honouring Range requests (asked for bytes "
            f"{first.start}-{first.end}, got HTTP 206, Content-Range {shown}"
        ) in str(info.value)
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())

    def test_a_block_that_never_arrives_is_tried_six_times(self, tmp_path, monkeypatch):
        """Attempts without a new byte are counted from the first one: the
        block is asked for 1 + 5 times, backing off 0.2, 0.4, ... 3.2 s, then
        the download fails saying so."""
        sleeps = []
        monkeypatch.setattr(download_mod.time, "sleep", sleeps.append)
        payload, checksums, _ = make_archive(tmp_path)
        server = _Server(payload, cuts=10**6, cut_at=0, cut_min=64)
        with server, pytest.raises(DownloadError) as info:
            self._download(server, tmp_path, checksums)
        cut = [r for r in server.log if r.cut]
        assert len(cut) == download_mod._RETRIES + 1
        assert len({(r.start, r.end) for r in cut}) == 1  # one block, asked again
        assert sleeps == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2])
        assert (
            f"{download_mod._RETRIES + 1} attempts in a row brought no new byte while "
            f"sending bytes {cut[0].start}-{cut[0].end} (last error: connection closed)"
        ) in str(info.value)

    @pytest.mark.timeout(30)
    def test_a_stall_after_a_broken_connection_gets_one_more_try(
        self, tmp_path, monkeypatch, caplog
    ):
        """Stalls are counted apart from other breaks. The member's block: 40 kB
        then a cut (progress: resumed), a cut before any byte, a stall, another
        stall - only then does the download fail, naming the stall and the
        bytes still missing."""
        sleeps = []
        monkeypatch.setattr(download_mod.time, "sleep", sleeps.append)
        caplog.set_level("WARNING", logger=download_mod.__name__)
        payload, checksums, _ = make_archive(tmp_path)
        server = _Scripted(payload, [40_000, 0, "stall", "stall"])
        with server, pytest.raises(DownloadError) as info:
            download_members(
                MEMBERS,
                tmp_path / "out",
                url=server.url,
                progress=False,
                checksums=checksums,
                timeout=0.3,
            )
        block = [r for r in server.log if r.start is not None and r.end - r.start > 1e5]
        first, rest = block[0], block[1:]
        assert len(rest) == 3 and {(r.start, r.end) for r in rest} == {
            (first.start + 40_000, first.end)
        }
        assert str(info.value).startswith(
            f"{server.url} stalled: it sent nothing for 0.3 s while sending bytes "
            f"{first.start + 40_000}-{first.end} (2 connection(s) in a row)."
        )
        warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert warned == [
            f"download of {server.url} interrupted (None); retrying",
            f"download of {server.url} interrupted (timed out); retrying",
        ]
        assert sleeps == pytest.approx([0.2, 0.4])

    def test_a_resumed_block_asks_for_its_missing_rest_only(
        self, tmp_path, monkeypatch
    ):
        """With blocks smaller than the member: the retry after a cut asks for
        the rest of that block, not a new block, and no member byte comes twice."""
        monkeypatch.setattr(download_mod.time, "sleep", lambda s: None)
        monkeypatch.setattr(download_mod, "_BLOCK", 64 * 1024)
        payload, checksums, contents = make_archive(tmp_path)
        with _Server(payload, cuts=1, cut_at=40_000, cut_min=60_000) as server:
            paths = self._download(server, tmp_path, checksums)
        assert paths[0].read_bytes() == contents[MEMBERS[0]]
        i = next(i for i, r in enumerate(server.log) if r.cut)
        cut, retry = server.log[i], server.log[i + 1]
        assert (retry.start, retry.end) == (cut.start + 40_000, cut.end)
        for lo, hi in _spans(payload, MEMBERS)[1:]:
            got = sorted(
                (r.start, r.start + r.sent - 1)
                for r in server.log[1:]
                if lo <= r.start <= hi and r.sent
            )
            assert all(a[1] < b[0] for a, b in zip(got, got[1:], strict=False)), got

    def test_the_log_says_where_a_broken_block_resumes(
        self, tmp_path, monkeypatch, caplog
    ):
        monkeypatch.setattr(download_mod.time, "sleep", lambda s: None)
        payload, checksums, _ = make_archive(tmp_path, big=600_000)
        caplog.set_level("INFO", logger=download_mod.__name__)
        with _Server(payload) as server:  # no cut: nothing to say
            self._download(server, tmp_path, checksums)
        assert not [r for r in caplog.records if "resuming" in r.getMessage()]
        (tmp_path / "out" / Path(MEMBERS[0]).name).unlink()
        with _Server(payload, cuts=1, cut_at=40_000, cut_min=100_000) as server:
            self._download(server, tmp_path, checksums, members=MEMBERS[:1])
        (cut,) = [r for r in server.log if r.cut]
        resumed = [
            r.getMessage() for r in caplog.records if "resuming" in r.getMessage()
        ]
        assert resumed == [f"connection broken; resuming at byte {cut.start + 40_000}"]

    @pytest.mark.parametrize(
        "asked, stored",
        [(MEMBERS[1], "EMNIST/" + MEMBERS[1]), (LABELS_NAME, MEMBERS[1])],
        ids=["stored-elsewhere", "asked-by-base-name"],
    )
    @pytest.mark.parametrize("content", ["corrupt", "bomb"])
    def test_an_official_member_under_another_path_is_still_checked(
        self, tmp_path, asked, stored, content
    ):
        """A mirror that stores the official member under another folder, or a
        caller that asks by base name: the official sha256 and size still apply."""
        data = os.urandom(5_144) if content == "corrupt" else bytes(BOMB)
        before = bytes_written()
        with _Server(_zip({stored: data})) as server:
            with pytest.raises(ChecksumError) as info:
                self._download(server, tmp_path, members=[asked])
        message = str(info.value)
        if content == "corrupt":
            assert "Checksum mismatch" in message
        else:  # refused on its declared size, before a byte is written
            assert "the official file is 5,144 bytes" in message
            assert bytes_written() - before <= SLACK
        assert not list((tmp_path / "out").iterdir())

    @pytest.mark.parametrize("key", ["asked", "stored"])
    def test_own_checksums_may_name_the_member_as_asked_or_as_stored(
        self, tmp_path, key
    ):
        """``checksums=`` for a private archive take precedence over the official
        table, whichever name they use."""
        data = b"a private build of the labels file"
        stored = "EMNIST/" + MEMBERS[1]
        name = MEMBERS[1] if key == "asked" else stored
        with _Server(_zip({stored: data})) as server:
            (path,) = self._download(
                server, tmp_path, {name: hashlib.sha256(data).hexdigest()}, MEMBERS[1:]
            )
        assert path.read_bytes() == data

    @pytest.mark.parametrize("layout", ["zip64", "data-descriptor"])
    def test_sizes_kept_elsewhere_than_the_local_header(self, tmp_path, layout):
        """A local header may leave the sizes out (0xFFFFFFFF with a zip64 field,
        or zeros with a data descriptor): the central directory's size is used."""
        data = os.urandom(3_000)
        payload = _zip(
            {MEMBERS[1]: data, "gzip/next.gz": os.urandom(50_000)},
            zip64=layout == "zip64",
            unseekable=layout == "data-descriptor",
        )
        checksums = {MEMBERS[1]: hashlib.sha256(data).hexdigest()}
        with _Server(payload) as server:
            (path,) = self._download(server, tmp_path, checksums, MEMBERS[1:])
        assert path.read_bytes() == data

    def test_a_long_extra_field_moves_the_data_not_the_limit(self, tmp_path):
        """A 40 kB extra field in the local header (legal, if odd): the member's
        data starts after it, and no request reaches into the next member."""
        extra = struct.pack("<HH", 0xCAFE, 39_996) + bytes(39_996)
        data = os.urandom(100_000)
        payload = _zip(
            {MEMBERS[1]: data, "gzip/next.gz": os.urandom(300_000)}, extra=extra
        )
        spans = _spans(payload, MEMBERS[1:])
        with _Server(payload) as server:
            (path,) = self._download(
                server,
                tmp_path,
                {MEMBERS[1]: hashlib.sha256(data).hexdigest()},
                MEMBERS[1:],
            )
        assert path.read_bytes() == data
        for r in server.log[1:]:
            assert any(lo <= r.start <= r.end <= hi for lo, hi in spans), (r, spans)

    def test_a_member_without_its_local_header_is_named(self, tmp_path):
        payload, checksums, _ = make_archive(tmp_path)
        with zipfile.ZipFile(io.BytesIO(payload)) as zf:
            offset = zf.getinfo(MEMBERS[1]).header_offset
        broken = payload[:offset] + b"XX" + payload[offset + 2 :]
        with _Server(broken) as server, pytest.raises(DownloadError) as info:
            self._download(server, tmp_path, checksums, MEMBERS[1:])
        assert str(info.value).startswith(
            f"{MEMBERS[1]}: no local zip header at byte {offset}; the archive is "
            "damaged"
        )

    @pytest.mark.timeout(30)
    def test_without_range_the_probe_reads_64_bytes_not_the_body(self, tmp_path):
        """The probe of a server without Range support must not read its whole
        reply (536 MB from NIST): here the server stalls after 100 kB, so only
        the real download can run into that stall."""
        payload, checksums, _ = make_archive(tmp_path)
        server = _Server(payload, ranges=False, send_length=False, stall_after=100_000)
        with server, pytest.raises(DownloadError, match="during the download"):
            download_members(
                MEMBERS,
                tmp_path / "out",
                url=server.url,
                progress=False,
                checksums=checksums,
                timeout=0.3,
            )

    def test_an_archive_announced_over_the_cap_is_not_fetched(
        self, tmp_path, monkeypatch
    ):
        monkeypatch.setattr(download_mod, "MAX_ARCHIVE_BYTES", 100_000)
        payload, checksums, _ = make_archive(tmp_path)
        with _Server(payload, ranges=False) as server:
            with pytest.raises(
                DownloadError, match=f"announces {len(payload):,} bytes"
            ):
                self._download(server, tmp_path, checksums)
        assert len(server.log) == 1  # the probe only: no download was started

    def test_an_empty_reply_is_named_at_once(self, tmp_path, monkeypatch):
        monkeypatch.setattr(download_mod.time, "sleep", lambda s: None)
        with _Server(b"", ranges=False) as server:
            with pytest.raises(DownloadError, match="data that is not a zip archive"):
                self._download(server, tmp_path)
        assert len(server.log) == 1  # an empty body is an answer, not a broken link

    def test_a_probe_cut_before_its_body_is_retried_then_named(
        self, tmp_path, monkeypatch
    ):
        monkeypatch.setattr(download_mod.time, "sleep", lambda s: None)
        payload, checksums, _ = make_archive(tmp_path)
        server = _Server(payload, cuts=10**6, cut_at=0, cut_min=10)
        with server, pytest.raises(DownloadError) as info:
            self._download(server, tmp_path, checksums)
        assert len(server.log) == download_mod._RETRIES + 1
        assert "(last error: connection closed before the first byte)" in str(
            info.value
        )

    def test_a_reply_without_content_type_shows_its_status(self, tmp_path):
        with _DropHeader(b'{"error": "quota"}' * 10, "Content-Type") as server:
            with pytest.raises(DownloadError) as info:
                self._download(server, tmp_path)
        assert (
            "answered with data that is not a zip archive: HTTP 206, Content-Type "
            "'(none)'" in str(info.value)
        )

    def test_a_206_probe_without_content_range_is_refused_not_a_crash(self, tmp_path):
        """A broken server: 206 to the probe, but no Content-Range to say the
        archive's size. The probe's Content-Length (64) is taken as the size of
        a whole download, which then stops at byte 64 with a DownloadError
        that says so - not an AttributeError - and writes nothing."""
        payload, checksums, _ = make_archive(tmp_path)
        server = _DropHeader(
            payload, "Content-Range", which=lambda rng: rng == "bytes=0-63"
        )
        with server, pytest.raises(DownloadError, match="sent more than 64 bytes"):
            self._download(server, tmp_path, checksums)
        assert not list((tmp_path / "out").iterdir())

    def test_the_ranged_progress_bar_is_shown_and_named(self, tmp_path, capsys):
        payload, checksums, _ = make_archive(tmp_path)
        with _Server(payload) as server:
            download_members(
                MEMBERS, tmp_path / "out", url=server.url, checksums=checksums
            )
        assert re.search(r"(^|\r)EMNIST \(ranged\): ", capsys.readouterr().err, re.M)

    def test_the_directory_cap_counts_the_bytes_read_for_it(
        self, tmp_path, monkeypatch
    ):
        """The cap on opening an archive counts the bytes fetched for its end
        record and directory (wherever they sit), and admits exactly the cap."""
        payload, checksums, _ = make_archive(tmp_path)  # about 600 kB
        with zipfile.ZipFile(io.BytesIO(payload)) as zf:
            start_dir = zf.start_dir
        with _Server(payload) as server:
            self._download(server, tmp_path, checksums, MEMBERS[1:])
        needed = sum(
            r.end - r.start + 1 for r in server.log[1:] if r.start >= start_dir
        )
        assert needed < 1_000
        monkeypatch.setattr(download_mod, "MAX_DIRECTORY_BYTES", needed)
        (tmp_path / "out" / LABELS_NAME).unlink()
        with _Server(payload) as server:
            self._download(server, tmp_path, checksums, MEMBERS[1:])
        monkeypatch.setattr(download_mod, "MAX_DIRECTORY_BYTES", needed - 1)
        (tmp_path / "out" / LABELS_NAME).unlink()
        with _Server(payload) as server:
            with pytest.raises(
                DownloadError, match="central directory needs more than"
            ):
                self._download(server, tmp_path, checksums, MEMBERS[1:])

    def test_a_zip_bomb_is_inflated_one_byte_past_its_size_in_1_mib_reads(
        self, tmp_path, monkeypatch
    ):
        """A member that declares 3 MiB and inflates to 32 MiB: the copy reads
        at most 1 MiB at a time, stops one byte past 3 MiB, writes nothing more."""
        declared = 3 << 20
        reads = []

        class Inflating(io.BytesIO):  # what zipfile hands the copy
            def read(self, n=-1):
                chunk = super().read(n)
                reads.append((n, len(chunk)))
                return chunk

        payload = bomb(MEMBERS[1], local=declared, central=declared)
        monkeypatch.setattr(
            zipfile.ZipFile, "open", lambda *a, **k: Inflating(bytes(BOMB))
        )
        checksums = {MEMBERS[1]: "0" * 64}  # not the official member: no official size
        before = bytes_written()
        with _Server(payload) as server:
            with pytest.raises(
                DownloadError, match="inflates past its 3,145,728 bytes"
            ):
                self._download(server, tmp_path, checksums, members=MEMBERS[1:])
        assert sum(got for _, got in reads) == declared + 1
        assert all(0 < n <= 1 << 20 for n, _ in reads)
        assert bytes_written() - before <= declared + SLACK
        assert not list((tmp_path / "out").iterdir())


# --- the cache identity check -----------------------------------------------------


def _edit_keeping_stat(path: Path, old: bytes, new: bytes) -> None:
    """Replace bytes of ``path`` (same length), keeping its size and mtime."""
    st = path.stat()
    data = path.read_bytes()
    assert len(old) == len(new) and old in data
    path.write_bytes(data.replace(old, new, 1))
    _set_mtime_ns(path, st.st_mtime_ns)


@pytest.mark.usefixtures("small_mnist")  # tiny files pass as the mnist test split
class TestCacheIdentity:
    @pytest.mark.parametrize(
        "old, new",
        [
            (b"'fortran_order': False", b"'fortran_order': True "),
            (f"({N}, 28, 28)".encode(), f"({N // 2}, 28, 28)".encode()),
            (b"'descr': '|u1'", b"'descr': '|i1'"),  # int8: 255 would read as -1
        ],
        ids=["fortran-order", "row-count", "dtype"],
    )
    def test_an_npy_header_that_disagrees_is_rebuilt(self, tmp_path, old, new):
        """Size and mtime still match the sidecar, but the header does not
        describe the images asked for: the cache is rebuilt, not served."""
        upright = glyph_images(N, rng=0)
        _write(tmp_path, upright)
        _load(tmp_path)
        npy = _npy(tmp_path)
        _edit_keeping_stat(npy, old, new.ljust(len(old)))
        np.testing.assert_array_equal(_load(tmp_path, verify=False).images, upright)
        repaired = np.load(npy, mmap_mode="r")  # the file was written anew
        assert repaired.shape == (N, 28, 28) and not np.isfortran(repaired)
        assert repaired.dtype == np.uint8

    @pytest.mark.parametrize("field, value", [("shape", [N, 28, 29]), ("dtype", "<u2")])
    def test_a_sidecar_that_disagrees_is_rebuilt(self, tmp_path, field, value):
        upright = glyph_images(N, rng=0)
        _write(tmp_path, upright)
        _load(tmp_path)
        sidecar = next(tmp_path.glob("*.upright.json"))
        meta = json.loads(sidecar.read_text())
        meta[field] = value
        sidecar.write_text(json.dumps(meta))
        np.testing.assert_array_equal(_load(tmp_path, verify=False).images, upright)
        assert json.loads(sidecar.read_text())[field] != value  # written anew

    def test_a_sidecar_that_is_not_an_object_is_rebuilt(self, tmp_path):
        upright = glyph_images(N, rng=0)
        _write(tmp_path, upright)
        _load(tmp_path)
        sidecar = next(tmp_path.glob("*.upright.json"))
        sidecar.write_text("[]")
        np.testing.assert_array_equal(_load(tmp_path, verify=False).images, upright)
        assert json.loads(sidecar.read_text())["shape"] == [N, 28, 28]

    def test_a_verified_warm_load_serves_the_cache(self, tmp_path, monkeypatch):
        """verify=True hashes the source and the cached payload, and then
        serves the cache: it does not convert the source again."""
        upright = glyph_images(N, rng=0)
        _write(tmp_path, upright)
        _load(tmp_path, verify=True)

        def rebuild(*args, **kwargs):
            raise AssertionError("a verified warm load rebuilt the cache")

        monkeypatch.setattr(cache, "iter_idx_blocks", rebuild)
        images = _load(tmp_path, verify=True).images
        np.testing.assert_array_equal(images, upright)

    def test_without_the_cache_nothing_is_written(self, tmp_path):
        upright = glyph_images(N, rng=0)
        source = _write(tmp_path, upright)
        before = sorted(os.listdir(tmp_path))
        images = load_cached_images(source, use_cache=False)
        assert type(images) is np.ndarray  # in memory, not a memory map
        np.testing.assert_array_equal(images, upright)
        assert sorted(os.listdir(tmp_path)) == before

    @pytest.mark.parametrize("route", ["cold-cache", "no-cache", "full-disk"])
    def test_bytes_other_than_the_verified_ones_are_refused(
        self, tmp_path, monkeypatch, route
    ):
        """The source changed between its check and its read (the check's sha256
        is not the one of the bytes read): an error, on every route."""
        source = _write(tmp_path, glyph_images(N, rng=0))
        if route == "full-disk":

            def full(tmp, *args):
                raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

            monkeypatch.setattr(cache, "_write_npy", full)
        with pytest.raises(DataFormatError, match="changed while it was being read"):
            load_cached_images(
                source, use_cache=route != "no-cache", verify_source=lambda p: "0" * 64
            )
        assert not list(tmp_path.glob("*.npy"))


# --- sample weights ------------------------------------------------------------------
def _tiny_mlp(**kw):
    # imported here: TensorFlow takes seconds to import, and the mutation check
    # runs the other classes once per mutant without it
    from emnist_estimators import EmnistMLP

    params = {
        "hidden_layer_sizes": (8,),
        "epochs": 2,
        "batch_size": 32,
        "random_state": 0,
    }
    return EmnistMLP(**{**params, **kw})


class TestSampleWeight:
    def test_the_validation_loss_is_weighted_too(self):
        """Weights apply to the held-out rows as to the training rows: doubling
        every weight doubles both losses (Adam's steps do not change), so early
        stopping watches the same weighted loss that training minimises. And
        random_state fixes the held-out rows: a weighted fit repeats exactly."""
        X, y = bar_images(120, 0)
        plain = _tiny_mlp(validation_fraction=0.25).fit(X, y).history_
        weights = np.full(len(y), 2.0)
        double = _tiny_mlp(validation_fraction=0.25).fit(X, y, weights).history_
        for key in ("loss", "val_loss"):
            np.testing.assert_allclose(
                double[key], 2 * np.asarray(plain[key]), rtol=1e-3
            )
        weights[::7] = 0.5  # rows weigh differently: which rows are held out matters
        first = _tiny_mlp(validation_fraction=0.25).fit(X, y, weights).history_
        again = _tiny_mlp(validation_fraction=0.25).fit(X, y, weights).history_
        assert first == again

    def test_score_weighs_each_sample(self):
        X, _ = bar_images(90, 0)
        y = np.random.default_rng(0).permutation(np.arange(90) % 3)  # unlearnable
        clf = _tiny_mlp(epochs=1, validation_fraction=0.0).fit(X, y)
        right = clf.predict(X) == y
        assert 0 < right.mean() < 1  # some right, some wrong: weights matter
        weights = np.where(right, 1.0, 4.0)
        assert clf.score(X, y, sample_weight=weights) == pytest.approx(
            np.average(right, weights=weights)
        )
        assert clf.score(X, y) == pytest.approx(right.mean())


# --- the --overwrite guard ---------------------------------------------------------
def _our_output(path: Path, files=("metrics.json",)) -> Path:
    with output_folder(path, command="test") as tmp:
        for name in files:
            (tmp / name).write_text(name)
    return path


def _write_manifest(folder: Path, **fields) -> None:
    manifest = {"written_by": "emnist-estimators", "files": ["metrics.json"], **fields}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


class TestOverwriteGuard:
    @pytest.fixture
    def home(self, tmp_path, monkeypatch):
        """A temp home with a temp cwd inside it: <tmp>/home/work."""
        home = tmp_path / "home"
        (home / "work").mkdir(parents=True)
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.chdir(home / "work")
        return home

    @pytest.mark.parametrize(
        "target, reason",
        [
            (".", "it is the current directory"),
            ("..", "it is your home folder"),
            ("../..", "it contains the current directory"),
            ("/", "it is the root of the file system"),
        ],
    )
    def test_refusal_says_exactly_why(self, home, target, reason):
        with pytest.raises(OutputFolderError) as info:
            check_output_folder(target, overwrite=True)
        assert f": {reason}. Choose a new --output." in str(info.value)

    def test_a_folder_holding_the_home_folder_is_refused(self, tmp_path, monkeypatch):
        home = tmp_path / "users" / "me"
        home.mkdir(parents=True)
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.chdir(tmp_path / "elsewhere")
        with pytest.raises(OutputFolderError) as info:
            check_output_folder(tmp_path / "users", overwrite=True)
        assert ": it contains your home folder. Choose" in str(info.value)

    def test_refusal_says_replace_or_write_into(self, home):
        mine = home / "work" / "mine"
        mine.mkdir()
        (mine / "thesis.tex").write_text("my own work")
        with pytest.raises(OutputFolderError, match=r"Refusing to replace .*mine: it"):
            check_output_folder(mine, overwrite=True)
        with pytest.raises(
            OutputFolderError, match=r"Refusing to write into .*mine: it"
        ):
            prepare_reusable(mine, command="tune")
        assert [p.name for p in mine.iterdir()] == ["thesis.tex"]

    @pytest.mark.parametrize(
        "n, shown",
        [(5, "(a1, a2, a3, a4, a5)."), (6, "(a1, a2, a3, a4, a5 ...).")],
    )
    def test_user_files_are_named_five_at_most(self, home, n, shown):
        out = _our_output(home / "work" / "run")
        for i in range(n, 0, -1):
            (out / f"a{i}").write_text("the user's")
        with pytest.raises(OutputFolderError) as info:
            check_output_folder(out, overwrite=True)
        assert f"did not write {shown} Move them out" in str(info.value)

    def test_a_symlink_the_user_added_counts_as_their_file(self, home, tmp_path):
        out = _our_output(home / "work" / "run")
        (tmp_path / "datasets").mkdir()
        (out / "data").symlink_to(tmp_path / "datasets", target_is_directory=True)
        with pytest.raises(OutputFolderError, match=r"did not write \(data\)"):
            check_output_folder(out, overwrite=True)
        assert (out / "data").is_symlink()

    @pytest.mark.parametrize(
        "manifest",
        [
            [],  # JSON, but not an object
            {"written_by": "another-tool", "files": ["metrics.json"]},
            {"written_by": "emnist-estimators", "files": "metrics.json"},
            {"written_by": "emnist-estimators", "files": ["metrics.json", 3]},
        ],
        ids=["list", "other-writer", "files-not-a-list", "file-not-a-string"],
    )
    def test_a_manifest_that_is_not_ours_allows_no_overwrite(self, home, manifest):
        out = _our_output(home / "work" / "run")
        (out / MANIFEST_NAME).write_text(json.dumps(manifest))
        assert read_manifest(out) is None
        with pytest.raises(OutputFolderError, match="not written by emnist-estimators"):
            check_output_folder(out, overwrite=True)
        assert (out / "metrics.json").exists()

    def test_a_symlinked_manifest_is_not_trusted(self, home, tmp_path):
        out = _our_output(home / "work" / "run")
        elsewhere = tmp_path / "manifest.json"
        elsewhere.write_text((out / MANIFEST_NAME).read_text())
        (out / MANIFEST_NAME).unlink()
        (out / MANIFEST_NAME).symlink_to(elsewhere)
        assert read_manifest(out) is None
        with pytest.raises(OutputFolderError, match="not written by"):
            check_output_folder(out, overwrite=True)

    @pytest.mark.parametrize("size, trusted", [(1 << 20, True), ((1 << 20) + 1, False)])
    def test_a_manifest_is_read_up_to_one_mib(self, home, size, trusted):
        out = _our_output(home / "work" / "run")
        text = json.dumps(
            {"written_by": "emnist-estimators", "files": ["metrics.json"]}
        )
        (out / MANIFEST_NAME).write_text(text + " " * (size - len(text)))
        assert (out / MANIFEST_NAME).stat().st_size == size
        assert (read_manifest(out) is not None) is trusted

    def _swap_spy(self, monkeypatch, fail_move_in=None):
        """Record the renames; optionally fail the one that moves the new output in."""
        real_replace, calls = os.replace, []

        def replace(src, dst, *args, **kwargs):
            src, dst = Path(src), Path(dst)
            calls.append((src, dst))
            if fail_move_in is not None and src.name.startswith(f".{dst.name}.tmp-"):
                raise fail_move_in
            return real_replace(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "replace", replace)
        return calls

    def test_the_previous_output_is_set_aside_next_to_it(self, home, monkeypatch):
        out = _our_output(home / "work" / "run")
        calls = self._swap_spy(monkeypatch)
        with output_folder(out, overwrite=True) as tmp:
            (tmp / "metrics.json").write_text("second")
        # a rename within the folder (never a copy to another file system), to
        # a hidden name that no other output uses
        aside = next(dst for src, dst in calls if src == out)
        assert aside.parent == out.parent and aside.name.startswith(".run.old-")
        assert (out / "metrics.json").read_text() == "second"
        assert sorted(os.listdir(home / "work")) == ["run"]

    @pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError(errno.EIO, "I/O")])
    def test_a_failed_swap_puts_the_previous_output_back(
        self, home, monkeypatch, error
    ):
        out = _our_output(home / "work" / "run")
        self._swap_spy(monkeypatch, fail_move_in=error)
        with pytest.raises(type(error)):
            with output_folder(out, overwrite=True) as tmp:
                (tmp / "metrics.json").write_text("second")
        assert (out / "metrics.json").read_text() == "metrics.json"
        assert sorted(os.listdir(home / "work")) == ["run"]

    def test_an_undeletable_previous_output_does_not_fail_the_command(
        self, home, monkeypatch
    ):
        """NFS keeps a file that is still open as ``.nfsXXXX`` and refuses to
        delete it: the new output is in place, so the command succeeds."""
        out = _our_output(home / "work" / "run")
        (out / ".nfs0000000000ab12").write_text("still open elsewhere")
        _write_manifest(out, files=["metrics.json", ".nfs0000000000ab12"])
        real_unlink = os.unlink

        def unlink(path, *args, **kwargs):
            if os.path.basename(path).startswith(".nfs"):
                raise OSError(errno.EBUSY, "Device or resource busy", path)
            return real_unlink(path, *args, **kwargs)

        monkeypatch.setattr(os, "unlink", unlink)
        with output_folder(out, overwrite=True) as tmp:
            (tmp / "metrics.json").write_text("second")
        assert (out / "metrics.json").read_text() == "second"
        assert not (out / ".nfs0000000000ab12").exists()
