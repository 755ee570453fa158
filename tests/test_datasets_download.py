"""The downloader against a loopback HTTP server started by the test.

The server logs every request (its Range and the body bytes it really sent),
so the tests check what went over the wire, not only the files that came out.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import zipfile
from pathlib import Path

import pytest
from helpers import (
    LABELS_NAME,
    MEMBERS,
    ArchiveServer,
    ProgressCounter,
    ScriptedServer,
    fetch_members,
    make_archive,
    make_zip,
    member_spans,
    needed_bytes,
)

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


# --- what goes over the wire (issue 16's Range and resume logic) ---


def test_no_request_reaches_into_a_member_not_asked_for(tmp_path, monkeypatch):
    """Every ranged request stays inside the directory or one wanted member,
    so nothing of a neighbour is fetched, not even a byte."""
    monkeypatch.setattr(download_mod, "_BLOCK", 16 * 1024)
    payload, checksums, _ = make_archive(tmp_path)
    spans = member_spans(payload, MEMBERS)
    with ArchiveServer(payload) as server:
        fetch_members(server, tmp_path, checksums)
    for r in server.log[1:]:  # after the 64-byte probe
        assert any(lo <= r.start <= r.end <= hi for lo, hi in spans), (r, spans)


def test_every_request_carries_the_packages_user_agent(tmp_path):
    payload, checksums, _ = make_archive(tmp_path)
    with ArchiveServer(payload) as server:
        fetch_members(server, tmp_path, checksums)
    assert len(server.agents) > 3
    assert set(server.agents) == {download_mod._USER_AGENT}


def test_the_progress_bar_counts_every_byte_received(tmp_path, monkeypatch):
    bars = []
    monkeypatch.setattr(
        download_mod,
        "_progress",
        lambda *a, **k: bars.append(ProgressCounter()) or bars[-1],
    )
    payload, checksums, _ = make_archive(tmp_path)
    with ArchiveServer(payload) as server:
        download_members(MEMBERS, tmp_path / "out", url=server.url, checksums=checksums)
    (bar,) = bars
    assert bar.n == sum(r.sent for r in server.log[1:]) > 0  # all but the probe


def test_a_ranged_download_shows_a_named_progress_bar(tmp_path, capsys):
    payload, checksums, _ = make_archive(tmp_path)
    with ArchiveServer(payload) as server:
        download_members(MEMBERS, tmp_path / "out", url=server.url, checksums=checksums)
    assert re.search(r"(^|\r)EMNIST \(ranged\): ", capsys.readouterr().err, re.M)


def test_a_block_that_never_arrives_fails_after_six_attempts(tmp_path, monkeypatch):
    """Attempts without a new byte are counted from the first one: the
    block is asked for 1 + 5 times, backing off 0.2, 0.4, ... 3.2 s, then
    the download fails saying so."""
    sleeps = []
    monkeypatch.setattr(download_mod.time, "sleep", sleeps.append)
    payload, checksums, _ = make_archive(tmp_path)
    server = ArchiveServer(payload, cuts=10**6, cut_at=0, cut_min=64)
    with server, pytest.raises(DownloadError) as info:
        fetch_members(server, tmp_path, checksums)
    cut = [r for r in server.log if r.cut]
    assert len(cut) == download_mod._RETRIES + 1
    assert len({(r.start, r.end) for r in cut}) == 1  # one block, asked again
    assert sleeps == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2])
    assert (
        f"{download_mod._RETRIES + 1} attempts in a row brought no new byte while "
        f"sending bytes {cut[0].start}-{cut[0].end} (last error: connection closed)"
    ) in str(info.value)


@pytest.mark.timeout(30)
def test_stalls_are_counted_apart_from_broken_connections(
    tmp_path, monkeypatch, caplog
):
    """Stalls are counted apart from other breaks. The member's block: 40 kB
    then a cut (progress: resumed), a cut before any byte, a stall, another
    stall - only then does the download fail, naming the stall and the
    bytes still missing."""
    sleeps = []
    monkeypatch.setattr(download_mod.time, "sleep", sleeps.append)
    caplog.set_level("WARNING", logger=download_mod.__name__)
    payload, checksums, _ = make_archive(tmp_path)
    server = ScriptedServer(payload, [40_000, 0, "stall", "stall"])
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


def test_a_broken_block_resumes_without_fetching_a_byte_twice(tmp_path, monkeypatch):
    """With blocks smaller than the member: the retry after a cut asks for
    the rest of that block, not a new block, and no member byte comes twice."""
    monkeypatch.setattr(download_mod.time, "sleep", lambda s: None)
    monkeypatch.setattr(download_mod, "_BLOCK", 64 * 1024)
    payload, checksums, contents = make_archive(tmp_path)
    with ArchiveServer(payload, cuts=1, cut_at=40_000, cut_min=60_000) as server:
        paths = fetch_members(server, tmp_path, checksums)
    assert paths[0].read_bytes() == contents[MEMBERS[0]]
    i = next(i for i, r in enumerate(server.log) if r.cut)
    cut, retry = server.log[i], server.log[i + 1]
    assert (retry.start, retry.end) == (cut.start + 40_000, cut.end)
    for lo, hi in member_spans(payload, MEMBERS)[1:]:
        got = sorted(
            (r.start, r.start + r.sent - 1)
            for r in server.log[1:]
            if lo <= r.start <= hi and r.sent
        )
        assert all(a[1] < b[0] for a, b in zip(got, got[1:], strict=False)), got


def test_the_log_says_where_a_broken_download_resumes(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(download_mod.time, "sleep", lambda s: None)
    payload, checksums, _ = make_archive(tmp_path, big=600_000)
    caplog.set_level("INFO", logger=download_mod.__name__)
    with ArchiveServer(payload) as server:  # no cut: nothing to say
        fetch_members(server, tmp_path, checksums)
    assert not [r for r in caplog.records if "resuming" in r.getMessage()]
    (tmp_path / "out" / Path(MEMBERS[0]).name).unlink()
    with ArchiveServer(payload, cuts=1, cut_at=40_000, cut_min=100_000) as server:
        fetch_members(server, tmp_path, checksums, members=MEMBERS[:1])
    (cut,) = [r for r in server.log if r.cut]
    resumed = [r.getMessage() for r in caplog.records if "resuming" in r.getMessage()]
    assert resumed == [f"connection broken; resuming at byte {cut.start + 40_000}"]


@pytest.mark.parametrize("key", ["asked", "stored"])
def test_own_checksums_apply_by_the_name_asked_or_stored(tmp_path, key):
    """``checksums=`` for a private archive take precedence over the official
    table, whichever name they use."""
    data = b"a private build of the labels file"
    stored = "EMNIST/" + MEMBERS[1]
    name = MEMBERS[1] if key == "asked" else stored
    with ArchiveServer(make_zip({stored: data})) as server:
        (path,) = fetch_members(
            server, tmp_path, {name: hashlib.sha256(data).hexdigest()}, MEMBERS[1:]
        )
    assert path.read_bytes() == data


@pytest.mark.parametrize("layout", ["zip64", "data-descriptor"])
def test_a_member_without_sizes_in_its_local_header_downloads(tmp_path, layout):
    """A local header may leave the sizes out (0xFFFFFFFF with a zip64 field,
    or zeros with a data descriptor): the central directory's size is used."""
    data = os.urandom(3_000)
    payload = make_zip(
        {MEMBERS[1]: data, "gzip/next.gz": os.urandom(50_000)},
        zip64=layout == "zip64",
        unseekable=layout == "data-descriptor",
    )
    checksums = {MEMBERS[1]: hashlib.sha256(data).hexdigest()}
    with ArchiveServer(payload) as server:
        (path,) = fetch_members(server, tmp_path, checksums, MEMBERS[1:])
    assert path.read_bytes() == data


def test_a_long_extra_field_is_skipped_without_reading_past_the_member(tmp_path):
    """A 40 kB extra field in the local header (legal, if odd): the member's
    data starts after it, and no request reaches into the next member."""
    extra = struct.pack("<HH", 0xCAFE, 39_996) + bytes(39_996)
    data = os.urandom(100_000)
    payload = make_zip(
        {MEMBERS[1]: data, "gzip/next.gz": os.urandom(300_000)}, extra=extra
    )
    spans = member_spans(payload, MEMBERS[1:])
    with ArchiveServer(payload) as server:
        (path,) = fetch_members(
            server,
            tmp_path,
            {MEMBERS[1]: hashlib.sha256(data).hexdigest()},
            MEMBERS[1:],
        )
    assert path.read_bytes() == data
    for r in server.log[1:]:
        assert any(lo <= r.start <= r.end <= hi for lo, hi in spans), (r, spans)


def test_the_central_directory_cap_admits_exactly_its_size(tmp_path, monkeypatch):
    """The cap on opening an archive counts the bytes fetched for its end
    record and directory (wherever they sit), and admits exactly the cap."""
    payload, checksums, _ = make_archive(tmp_path)  # about 600 kB
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        start_dir = zf.start_dir
    with ArchiveServer(payload) as server:
        fetch_members(server, tmp_path, checksums, MEMBERS[1:])
    needed = sum(r.end - r.start + 1 for r in server.log[1:] if r.start >= start_dir)
    assert needed < 1_000
    monkeypatch.setattr(download_mod, "MAX_DIRECTORY_BYTES", needed)
    (tmp_path / "out" / LABELS_NAME).unlink()
    with ArchiveServer(payload) as server:
        fetch_members(server, tmp_path, checksums, MEMBERS[1:])
    monkeypatch.setattr(download_mod, "MAX_DIRECTORY_BYTES", needed - 1)
    (tmp_path / "out" / LABELS_NAME).unlink()
    with ArchiveServer(payload) as server:
        with pytest.raises(DownloadError, match="central directory needs more than"):
            fetch_members(server, tmp_path, checksums, MEMBERS[1:])
