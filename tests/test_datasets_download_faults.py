"""The downloader under hostile or broken servers and odd target folders.

Each server is a loopback one started by the test (127.0.0.1 only). Disk use
is asserted by the bytes this process wrote (``wchar`` in /proc/self/io, which
counts file writes and not socket sends), never by wall time.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import (
    BOMB,
    LABELS_NAME,
    MEMBERS,
    SLACK,
    ArchiveServer,
    DropHeader,
    Oversender,
    ProgressCounter,
    RangeLiar,
    bomb,
    bytes_written,
    fetch_members,
    make_archive,
    make_zip,
    member_spans,
    needed_bytes,
)

from emnist_estimators.datasets import _tempfiles, download_members, download_split
from emnist_estimators.datasets import download as download_mod
from emnist_estimators.datasets._official import official_size
from emnist_estimators.exceptions import ChecksumError, DownloadError

LABELS = MEMBERS[1]  # official size 5,144 bytes
UNREACHABLE = "http://127.0.0.1:9/gzip.zip"  # nothing listens on port 9


def assert_nothing_left(folder: Path) -> None:
    left = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert left == [], f"left behind: {left}"


@pytest.mark.parametrize("ranges", [True, False])
def test_zip_bomb_stops_at_official_size(tmp_path, ranges):
    """Issue 11 4(a): an official member that inflates past its official size."""
    payload = bomb(LABELS)
    out = tmp_path / "out"
    before = bytes_written()
    with ArchiveServer(payload, ranges=ranges) as server:
        with pytest.raises(ChecksumError, match=r"labels-idx1-ubyte\.gz.*5,144"):
            download_members([LABELS], out, url=server.url, progress=False)
    written = bytes_written() - before
    archive = 0 if ranges else len(payload)  # the temp copy of a whole archive
    assert written <= official_size(LABELS) + archive + SLACK, f"{written:,} B"
    assert_nothing_left(out)


@pytest.mark.parametrize(
    ("local", "central", "error"),
    [
        (5_000, None, "local zip header"),  # the local header declares less
        (5_000, 5_000, "Bad CRC|inflates past"),  # both lie: inflates past them
    ],
)
def test_zip_bomb_stops_at_declared_size(tmp_path, local, central, error):
    """Issue 11 4(a): a member whose stream outgrows the size its headers declare."""
    payload = bomb(LABELS, local=local, central=central)
    checksums = {LABELS: hashlib.sha256(bytes(BOMB)).hexdigest()}  # not official
    out = tmp_path / "out"
    before = bytes_written()
    with ArchiveServer(payload) as server:
        with pytest.raises(DownloadError, match=error) as info:
            download_members(
                [LABELS], out, url=server.url, progress=False, checksums=checksums
            )
    written = bytes_written() - before
    assert LABELS in str(info.value)
    assert written <= 5_000 + SLACK, f"{written:,} B"
    assert_nothing_left(out)


@pytest.mark.parametrize("call", ["download_split", "download_members"])
def test_folder_where_a_data_file_belongs(tmp_path, call):
    """Issue 11 item 8: refused by name, before any network access."""
    blocker = tmp_path / "emnist-mnist-test-images-idx3-ubyte.gz"
    (blocker / "keep").mkdir(parents=True)
    with pytest.raises(DownloadError, match="is a folder") as info:
        if call == "download_split":
            download_split("mnist", "test", tmp_path, url=UNREACHABLE)
        else:
            download_members(MEMBERS, tmp_path, url=UNREACHABLE)
    assert str(blocker) in str(info.value) and "Move or delete it" in str(info.value)
    assert (blocker / "keep").is_dir()  # the user's folder is untouched


@pytest.mark.parametrize("call", ["download_split", "download_members"])
def test_symlink_loop_where_a_data_file_belongs(tmp_path, call):
    """Issue 11 item 8: a loop is a DownloadError, not a RuntimeError."""
    target = tmp_path / "emnist-mnist-test-labels-idx1-ubyte.gz"
    os.symlink(tmp_path / "other", target)
    os.symlink(target, tmp_path / "other")
    with pytest.raises(DownloadError, match="symbolic link loop") as info:
        if call == "download_split":
            download_split("mnist", "test", tmp_path, url=UNREACHABLE)
        else:
            download_members(MEMBERS, tmp_path, url=UNREACHABLE)
    assert str(target) in str(info.value)


@pytest.mark.parametrize(
    ("body", "content_type", "what"),
    [
        (b"<!DOCTYPE html><html><title>Sign in</title></html>", "text/html", "HTML"),
        (b'{"error": "quota exceeded"}', "application/json", "not a zip archive"),
    ],
)
@pytest.mark.parametrize("ranges", [True, False])
def test_reply_that_is_not_a_zip_says_what_came(
    tmp_path, body, content_type, what, ranges
):
    """Issue 11 item 8: the message shows status, Content-Type and first bytes."""
    with ArchiveServer(body * 40, ranges=ranges, content_type=content_type) as server:
        with pytest.raises(DownloadError, match=what) as info:
            download_members(MEMBERS, tmp_path / "out", url=server.url, progress=False)
    message = str(info.value)
    assert server.url in message and content_type in message
    assert repr(body[:20])[2:-1] in message  # the first bytes received
    assert "internet connection" not in message
    assert_nothing_left(tmp_path / "out")


def test_server_dropping_every_100kb_completes(tmp_path, monkeypatch):
    """Issue 11 item 8: retries that make progress do not use up the budget."""
    monkeypatch.setattr(download_mod.time, "sleep", lambda s: None)
    big = "gzip/emnist-letters-test-images-idx3-ubyte.gz"
    payload, checksums, contents = make_archive(tmp_path, big=1_500_000)
    out = tmp_path / "out"
    with ArchiveServer(payload, drop_every=100_000) as server:
        (path,) = download_members(
            [big], out, url=server.url, progress=False, checksums=checksums
        )
    assert path.read_bytes() == contents[big]
    drops = sum(r.cut for r in server.log)
    assert drops > 2 * (download_mod._RETRIES + 1)  # more than the old total budget
    directory, member = needed_bytes(payload, [big])
    assert server.bytes_served <= directory + member + 256  # each retry resumed


@pytest.mark.timeout(60)
def test_silent_server_fails_after_the_timeout(tmp_path):
    """Issue 11 item 8: a server that accepts and never answers; timeout= param."""
    with ArchiveServer(b"PK", stall_after=-1) as server:
        with pytest.raises(DownloadError, match="stalled") as info:
            download_members(
                MEMBERS, tmp_path / "out", url=server.url, progress=False, timeout=0.5
            )
    message = str(info.value)
    assert server.url in message and "0.5 s" in message
    assert "EMNIST_DOWNLOAD_TIMEOUT" in message and "timeout=" in message
    assert len(server.log) == download_mod._STALL_RETRIES + 1


@pytest.mark.timeout(60)
def test_server_that_stops_sending_fails_after_the_timeout(tmp_path, monkeypatch):
    """Issue 11 item 8: sends 50 kB of a member, then nothing; env variable."""
    monkeypatch.setattr(download_mod.time, "sleep", lambda s: None)
    monkeypatch.setenv("EMNIST_DOWNLOAD_TIMEOUT", "0.5")
    payload, checksums, _ = make_archive(tmp_path)
    out = tmp_path / "out"
    server = ArchiveServer(payload, stall_after=[50_000, 0], cut_min=100_000)
    with server, pytest.raises(DownloadError, match="stalled") as info:
        download_members(
            MEMBERS, out, url=server.url, progress=False, checksums=checksums
        )
    assert "0.5 s" in str(info.value)
    stalled = [r for r in server.log if r.start is not None and r.end - r.start > 1e5]
    first = stalled[0]
    assert first.sent == 50_000
    # One fresh connection per stall allowed, each resuming where data stopped.
    assert len(stalled) == 1 + download_mod._STALL_RETRIES + 1
    assert all(r.start == first.start + 50_000 for r in stalled[1:])
    assert_nothing_left(out)


def test_timeout_setting(monkeypatch):
    assert download_mod.download_timeout() == download_mod.DOWNLOAD_TIMEOUT
    monkeypatch.setenv("EMNIST_DOWNLOAD_TIMEOUT", "2.5")
    assert download_mod.download_timeout() == 2.5
    assert download_mod.download_timeout(7) == 7.0  # the parameter wins
    for bad in ("0", "-1", "nan", "soon"):
        monkeypatch.setenv("EMNIST_DOWNLOAD_TIMEOUT", bad)
        with pytest.raises(ValueError, match="EMNIST_DOWNLOAD_TIMEOUT"):
            download_mod.download_timeout()


def test_size_cap_holds_when_the_zip_reader_does_not(tmp_path, monkeypatch):
    """The copy itself stops at the limit, whatever zipfile hands it."""
    payload = bomb(LABELS, local=5_144, central=5_144)  # headers say the official size
    monkeypatch.setattr(
        zipfile.ZipFile, "open", lambda *a, **k: io.BytesIO(bytes(BOMB))
    )
    out = tmp_path / "out"
    before = bytes_written()
    with ArchiveServer(payload) as server:
        with pytest.raises(DownloadError, match=r"labels-idx1-ubyte\.gz inflates past"):
            download_members([LABELS], out, url=server.url, progress=False)
    assert bytes_written() - before <= 5_144 + SLACK
    assert_nothing_left(out)


def test_partial_files_of_dead_downloads_are_removed(tmp_path):
    """Issue 11 item 3 (downloader part): a killed download's .part goes next time."""
    payload, checksums, _ = make_archive(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = _tempfiles.host()
    stale = out / f".emnist-archive.zip.{dead.pid}@{host}.part"
    alive = out / f".{Path(MEMBERS[0]).name}.{os.getppid()}@{host}.part"
    elsewhere = out / f".emnist-archive.zip.{dead.pid}@another-host.part"
    for path in (stale, alive, elsewhere):
        path.write_bytes(b"x" * 1000)
    assert download_mod.remove_stale_parts(out, dry_run=True) == [stale]
    assert stale.exists()
    with ArchiveServer(payload) as server:
        download_members(
            MEMBERS[1:], out, url=server.url, progress=False, checksums=checksums
        )
    assert not stale.exists()
    assert alive.exists() and elsewhere.exists()  # a live writer, another machine


@pytest.mark.parametrize("send_length", [True, False])
def test_whole_archive_download_is_capped(tmp_path, monkeypatch, send_length):
    """Without Range, an archive over MAX_ARCHIVE_BYTES is refused or cut off."""
    monkeypatch.setattr(download_mod, "MAX_ARCHIVE_BYTES", 100_000)
    payload, checksums, _ = make_archive(tmp_path, big=300_000)
    out = tmp_path / "out"
    before = bytes_written()
    server = ArchiveServer(payload, ranges=False, send_length=send_length)
    with server, pytest.raises(DownloadError, match="100,000") as info:
        download_members(
            MEMBERS, out, url=server.url, progress=False, checksums=checksums
        )
    assert server.url in str(info.value)
    assert bytes_written() - before <= 100_000 + SLACK
    assert_nothing_left(out)


def test_huge_central_directory_is_refused_within_the_cap(tmp_path):
    """A server declaring a central directory of 20 MB (zipfile would read it all
    into memory) is refused after at most MAX_DIRECTORY_BYTES."""
    size_cd = 20 << 20
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, size_cd, 0, 0)
    payload = b"PK\x03\x04" + bytes(size_cd - 4) + eocd
    with ArchiveServer(payload) as server:
        with pytest.raises(DownloadError, match="central directory needs more"):
            download_members(MEMBERS, tmp_path / "out", url=server.url, progress=False)
    assert server.bytes_served <= download_mod.MAX_DIRECTORY_BYTES + (1 << 20)
    assert_nothing_left(tmp_path / "out")


def test_data_clean_lists_partial_downloads_of_dead_processes(tmp_path, monkeypatch):
    from emnist_estimators.datasets import clean_cache

    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(tmp_path / "user-cache"))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    part = tmp_path / f".{Path(LABELS).name}.{dead}@{_tempfiles.host()}.part"
    part.write_bytes(b"half")
    live = tmp_path / f".{Path(LABELS).name}.{os.getpid()}@{_tempfiles.host()}.part"
    live.write_bytes(b"mine")
    assert clean_cache(tmp_path, dry_run=True) == [part]
    assert clean_cache(tmp_path) == [part]
    assert not part.exists() and live.exists()


# --- broken or hostile servers and archives, and the caps (issue 16) ---


def test_a_server_sending_past_the_range_is_read_no_further(tmp_path, monkeypatch):
    bars = []
    monkeypatch.setattr(
        download_mod,
        "_progress",
        lambda *a, **k: bars.append(ProgressCounter()) or bars[-1],
    )
    payload, checksums, contents = make_archive(tmp_path)  # 1 MiB blocks: many reads
    directory_and_members = sum(
        hi - lo + 1 for lo, hi in member_spans(payload, MEMBERS)
    )
    with Oversender(payload) as server:
        paths = download_members(
            MEMBERS, tmp_path / "out", url=server.url, checksums=checksums
        )
    assert paths[1].read_bytes() == contents[MEMBERS[1]]
    assert bars[0].n <= directory_and_members + 64  # + zipfile's end-record read


@pytest.mark.parametrize("lie", ["start", "absent"])
def test_a_server_that_stops_honouring_range_fails_saying_so(tmp_path, lie):
    def content_range(value):  # "bytes 123-456/789"
        if lie == "absent":
            return None
        return "bytes 0-" + value.split("-", 1)[1]

    payload, checksums, _ = make_archive(tmp_path)
    with RangeLiar(payload, content_range) as server:
        with pytest.raises(DownloadError) as info:
            fetch_members(server, tmp_path, checksums)
    first = server.log[1]
    shown = "'bytes 0-" if lie == "start" else "''"
    assert (
        f"{server.url} stopped honouring Range requests (asked for bytes "
        f"{first.start}-{first.end}, got HTTP 206, Content-Range {shown}"
    ) in str(info.value)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    "asked, stored",
    [(MEMBERS[1], "EMNIST/" + MEMBERS[1]), (LABELS_NAME, MEMBERS[1])],
    ids=["stored-elsewhere", "asked-by-base-name"],
)
@pytest.mark.parametrize("content", ["corrupt", "bomb"])
def test_an_official_member_is_checked_under_any_path_or_name(
    tmp_path, asked, stored, content
):
    """A mirror that stores the official member under another folder, or a
    caller that asks by base name: the official sha256 and size still apply."""
    data = os.urandom(5_144) if content == "corrupt" else bytes(BOMB)
    before = bytes_written()
    with ArchiveServer(make_zip({stored: data})) as server:
        with pytest.raises(ChecksumError) as info:
            fetch_members(server, tmp_path, members=[asked])
    message = str(info.value)
    if content == "corrupt":
        assert "Checksum mismatch" in message
    else:  # refused on its declared size, before a byte is written
        assert "the official file is 5,144 bytes" in message
        assert bytes_written() - before <= SLACK
    assert not list((tmp_path / "out").iterdir())


def test_a_damaged_local_header_fails_naming_the_member(tmp_path):
    payload, checksums, _ = make_archive(tmp_path)
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        offset = zf.getinfo(MEMBERS[1]).header_offset
    broken = payload[:offset] + b"XX" + payload[offset + 2 :]
    with ArchiveServer(broken) as server, pytest.raises(DownloadError) as info:
        fetch_members(server, tmp_path, checksums, MEMBERS[1:])
    assert str(info.value).startswith(
        f"{MEMBERS[1]}: no local zip header at byte {offset}; the archive is damaged"
    )


@pytest.mark.timeout(30)
def test_probing_a_server_without_range_does_not_read_its_whole_reply(tmp_path):
    """The probe of a server without Range support must not read its whole
    reply (536 MB from NIST): here the server stalls after 100 kB, so only
    the real download can run into that stall."""
    payload, checksums, _ = make_archive(tmp_path)
    server = ArchiveServer(
        payload, ranges=False, send_length=False, stall_after=100_000
    )
    with server, pytest.raises(DownloadError, match="during the download"):
        download_members(
            MEMBERS,
            tmp_path / "out",
            url=server.url,
            progress=False,
            checksums=checksums,
            timeout=0.3,
        )


def test_an_archive_announced_over_the_cap_is_not_fetched(tmp_path, monkeypatch):
    monkeypatch.setattr(download_mod, "MAX_ARCHIVE_BYTES", 100_000)
    payload, checksums, _ = make_archive(tmp_path)
    with ArchiveServer(payload, ranges=False) as server:
        with pytest.raises(DownloadError, match=f"announces {len(payload):,} bytes"):
            fetch_members(server, tmp_path, checksums)
    assert len(server.log) == 1  # the probe only: no download was started


def test_an_empty_reply_fails_at_once_without_retries(tmp_path, monkeypatch):
    monkeypatch.setattr(download_mod.time, "sleep", lambda s: None)
    with ArchiveServer(b"", ranges=False) as server:
        with pytest.raises(DownloadError, match="data that is not a zip archive"):
            fetch_members(server, tmp_path)
    assert len(server.log) == 1  # an empty body is an answer, not a broken link


def test_a_probe_cut_before_its_body_is_retried_then_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(download_mod.time, "sleep", lambda s: None)
    payload, checksums, _ = make_archive(tmp_path)
    server = ArchiveServer(payload, cuts=10**6, cut_at=0, cut_min=10)
    with server, pytest.raises(DownloadError) as info:
        fetch_members(server, tmp_path, checksums)
    assert len(server.log) == download_mod._RETRIES + 1
    assert "(last error: connection closed before the first byte)" in str(info.value)


def test_a_reply_without_content_type_fails_showing_its_status(tmp_path):
    with DropHeader(b'{"error": "quota"}' * 10, "Content-Type") as server:
        with pytest.raises(DownloadError) as info:
            fetch_members(server, tmp_path)
    assert (
        "answered with data that is not a zip archive: HTTP 206, Content-Type "
        "'(none)'" in str(info.value)
    )


def test_a_206_probe_without_content_range_fails_cleanly(tmp_path):
    """A broken server: 206 to the probe, but no Content-Range to say the
    archive's size. The probe's Content-Length (64) is taken as the size of
    a whole download, which then stops at byte 64 with a DownloadError
    that says so - not an AttributeError - and writes nothing."""
    payload, checksums, _ = make_archive(tmp_path)
    server = DropHeader(payload, "Content-Range", which=lambda rng: rng == "bytes=0-63")
    with server, pytest.raises(DownloadError, match="sent more than 64 bytes"):
        fetch_members(server, tmp_path, checksums)
    assert not list((tmp_path / "out").iterdir())


def test_a_member_inflating_past_its_declared_size_is_cut_off(tmp_path, monkeypatch):
    """A member that declares 3 MiB and inflates to 32 MiB, handed over by a zip
    reader that does not stop it: the copy stops one byte past 3 MiB and
    writes nothing more."""
    declared = 3 << 20
    reads = []

    class Inflating(io.BytesIO):  # what zipfile hands the copy
        def read(self, n=-1):
            chunk = super().read(n)
            reads.append((n, len(chunk)))
            return chunk

    payload = bomb(MEMBERS[1], local=declared, central=declared)
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: Inflating(bytes(BOMB)))
    checksums = {MEMBERS[1]: "0" * 64}  # not the official member: no official size
    before = bytes_written()
    with ArchiveServer(payload) as server:
        with pytest.raises(DownloadError, match="inflates past its 3,145,728 bytes"):
            fetch_members(server, tmp_path, checksums, members=MEMBERS[1:])
    assert sum(got for _, got in reads) == declared + 1
    assert bytes_written() - before <= declared + SLACK
    assert not list((tmp_path / "out").iterdir())
