"""Download EMNIST members from NIST's official ``gzip.zip``.

How it works and why: the design notes in the docs (``docs/design.rst``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import logging
import math
import os
import posixpath
import re
import stat
import struct
import time
import urllib.error
import urllib.request
import zipfile
from http.client import HTTPException
from pathlib import Path
from typing import IO, cast

from ..exceptions import ChecksumError, DownloadError
from ._official import OFFICIAL_URL, expected_sha256, member_names, official_size
from ._tempfiles import stale_files, temp_path

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "MAX_ARCHIVE_BYTES",
    "MAX_DIRECTORY_BYTES",
    "archive_url",
    "download_members",
    "download_split",
    "download_timeout",
    "remove_stale_parts",
]

logger = logging.getLogger(__name__)

#: Seconds each network operation (connect, or one read) may wait for the
#: server before the server counts as stalled.
DOWNLOAD_TIMEOUT = 30.0
#: Environment variable that overrides :data:`DOWNLOAD_TIMEOUT`.
TIMEOUT_ENV = "EMNIST_DOWNLOAD_TIMEOUT"
#: Largest archive fetched whole from a server without Range support (NIST's
#: ``gzip.zip`` is 536 MB, ``matlab.zip`` about 740 MB).
MAX_ARCHIVE_BYTES = 1 << 30
#: Most bytes fetched to open a ranged archive (end record and central
#: directory): NIST's needs a few kilobytes; a hostile server could declare a
#: directory of gigabytes, which ``zipfile`` would read into memory.
MAX_DIRECTORY_BYTES = 16 << 20

_BLOCK = 1 << 20  # bytes per ranged request
_RETRIES = 5  # attempts in a row that bring no new byte
_STALL_RETRIES = 1  # timeouts in a row that bring no new byte
_USER_AGENT = "emnist-estimators (+https://pypi.org/project/emnist-estimators)"
_NET_ERRORS = (urllib.error.URLError, HTTPException, OSError)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a member first, or an empty zip
# Our partial files: ``.<target name>.<pid>@<host>.part``.
_PART_RE = re.compile(
    r"^\.(?P<target>.+)\.(?P<pid>\d{1,10})@(?P<host>[A-Za-z0-9_-]{1,64})\.part$"
)
_MIRROR_HINT = (
    f"Use the official URL {OFFICIAL_URL}, or pass a working mirror with url=... "
    "or the EMNIST_MIRROR_URL environment variable."
)


def archive_url(url: str | None = None) -> str:
    """Return the archive URL to download from.

    Parameters
    ----------
    url : str, default=None
        An explicit URL, which wins.

    Returns
    -------
    str
        ``url``, else ``$EMNIST_MIRROR_URL``, else NIST's official URL.
    """
    return url or os.environ.get("EMNIST_MIRROR_URL") or OFFICIAL_URL


def download_timeout(timeout: float | None = None) -> float:
    """Return the seconds that each network read may wait.

    Parameters
    ----------
    timeout : float, default=None
        An explicit number of seconds, which wins.

    Returns
    -------
    float
        ``timeout``, else ``$EMNIST_DOWNLOAD_TIMEOUT``, else
        :data:`DOWNLOAD_TIMEOUT`.

    Raises
    ------
    ValueError
        The value is not a positive, finite number of seconds.
    """
    source = "timeout"
    if timeout is None and os.environ.get(TIMEOUT_ENV, "").strip():
        # The environment's text; float() below parses and checks it.
        timeout, source = os.environ[TIMEOUT_ENV], TIMEOUT_ENV  # type: ignore[assignment]
    if timeout is None:
        return DOWNLOAD_TIMEOUT
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"{source} must be a positive number of seconds, got {timeout!r}; "
            f"e.g. {DOWNLOAD_TIMEOUT:g} (the default)."
        )
    return value


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not enabled,
        leave=False,
    )


def _is_timeout(exc: BaseException | None) -> bool:
    """True for a read or connect timeout, bare or wrapped by urllib."""
    return isinstance(exc, TimeoutError) or isinstance(
        getattr(exc, "reason", None), TimeoutError
    )


def _stalled(url: str, timeout: float, attempts: int, where: str) -> DownloadError:
    return DownloadError(
        f"{url} stalled: it sent nothing for {timeout:g} s {where} "
        f"({attempts} connection(s) in a row). Try again later or use another "
        f"mirror (url=... or EMNIST_MIRROR_URL); on a slow link raise the timeout "
        f"with timeout=... or the {TIMEOUT_ENV} environment variable."
    )


def _check_zip_start(first: bytes, status: int, content_type: str, url: str) -> None:
    """Refuse a reply that does not start like a zip, saying what came instead."""
    if first.startswith(_ZIP_MAGIC):
        return
    head = first.lstrip()[:16].lower()
    if "html" in content_type.lower() or head.startswith((b"<!doctype", b"<html")):
        what = (
            "an HTML page, not the EMNIST zip archive (a moved link, a login or "
            "captive-portal page, or a proxy's error page)"
        )
    else:
        what = "data that is not a zip archive"
    raise DownloadError(
        f"{url} answered with {what}: HTTP {status}, Content-Type "
        f"{content_type or '(none)'!r}, first bytes {first[:60]!r} (a zip archive "
        f"starts with b'PK\\x03\\x04'). {_MIRROR_HINT}"
    )


class _RangeReader(io.RawIOBase):
    """A seekable, read-only file over HTTP Range requests.

    ``zipfile.ZipFile`` reads the central directory and members through it,
    so the zip format itself is parsed by the standard library. Reads are
    served from blocks of up to 1 MiB that stop at :meth:`limit_to`'s end, so
    reading one member never fetches bytes of the next one. A block whose
    connection breaks is resumed at its first missing byte.
    """

    def __init__(self, url: str, size: int, *, timeout: float, on_bytes=None):
        self.url, self.size, self.timeout = url, size, timeout
        self._pos, self._end = 0, size
        self._block_start, self._block = -1, b""
        self._on_bytes = on_bytes
        self.budget: int | None = None  # bytes still allowed, None: no limit

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}
        self._pos = max(0, base[whence] + offset)
        return self._pos

    def limit_to(self, end: int) -> None:
        """Let blocks that start before ``end`` stop there (the member's end)."""
        self._end = min(end, self.size)

    def _request(self, got: bytearray, start: int, end: int) -> None:
        """One ranged request for ``start + len(got) .. end - 1``, into ``got``."""
        lo = start + len(got)
        req = urllib.request.Request(
            self.url,
            headers={"Range": f"bytes={lo}-{end - 1}", "User-Agent": _USER_AGENT},
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            content_range = resp.headers.get("Content-Range", "")
            if resp.status != 206 or not content_range.startswith(f"bytes {lo}-"):
                raise DownloadError(
                    f"{self.url} stopped honouring Range requests (asked for bytes "
                    f"{lo}-{end - 1}, got HTTP {resp.status}, Content-Range "
                    f"{content_range!r}). Try again, or use a mirror that supports "
                    "Range (url=... or EMNIST_MIRROR_URL)."
                )
            while len(got) < end - start:
                # read1: what has arrived, so a stall loses none of it.
                chunk = resp.read1(min(65536, end - start - len(got)))
                if not chunk:
                    return  # closed early: the caller resumes
                got += chunk
                if self._on_bytes:
                    self._on_bytes(len(chunk))

    def _fetch(self, start: int, end: int) -> bytes:
        """Bytes ``start..end-1``, resuming until attempts stop bringing bytes."""
        got = bytearray()
        failures = stalls = 0
        while len(got) < end - start:
            before, error = len(got), None
            try:
                self._request(got, start, end)
            except DownloadError:
                raise
            except _NET_ERRORS as exc:
                error = exc
            if len(got) > before:  # progress: a fresh budget for the next break
                failures = stalls = 0
                if len(got) < end - start:
                    logger.info(
                        "connection broken; resuming at byte %d", start + len(got)
                    )
                continue
            failures += 1
            stalls = stalls + 1 if _is_timeout(error) else 0
            where = f"while sending bytes {start + len(got)}-{end - 1}"
            if stalls > _STALL_RETRIES:
                raise _stalled(self.url, self.timeout, stalls, where) from error
            if failures > _RETRIES:
                raise DownloadError(
                    f"{self.url}: {failures} attempts in a row brought no new byte "
                    f"{where} (last error: {error or 'connection closed'}). Check "
                    "the connection and try again, or use another mirror (url=... "
                    "or EMNIST_MIRROR_URL)."
                ) from error
            logger.warning("download of %s interrupted (%s); retrying", self.url, error)
            time.sleep(min(2**failures * 0.1, 5))
        return bytes(got)

    def readinto(self, buffer):
        pos = self._pos
        if pos >= self.size:
            return 0
        if not (self._block_start <= pos < self._block_start + len(self._block)):
            stop = self._end if pos < self._end else self.size
            self._block_start = pos
            want = min(pos + _BLOCK, stop)
            if self.budget is not None:
                if want - pos > self.budget:
                    raise DownloadError(
                        f"{self.url}: reading the zip's central directory needs more "
                        f"than {MAX_DIRECTORY_BYTES:,} bytes; NIST's archive needs a "
                        "few kilobytes, so this is not an EMNIST archive. Use the "
                        "official URL or another mirror."
                    )
                self.budget -= want - pos
            self._block = self._fetch(pos, want)
        off = pos - self._block_start
        n = min(len(buffer), len(self._block) - off)
        memoryview(buffer)[:n] = self._block[off : off + n]
        self._pos += n
        return n


def _probe_once(url: str, timeout: float) -> tuple[int | None, bool]:
    req = urllib.request.Request(
        url, headers={"Range": "bytes=0-63", "User-Agent": _USER_AGENT}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        first = resp.read(64)
        length = resp.headers.get("Content-Length")
        if not first and length != "0":  # broken before the body: retry
            raise ConnectionError("connection closed before the first byte")
        _check_zip_start(first, resp.status, resp.headers.get("Content-Type", ""), url)
        if resp.status == 206:
            total = resp.headers.get("Content-Range", "").rpartition("/")[2]
            if total.isdigit():
                return int(total), True
        return (int(length) if length and length.isdigit() else None), False


def _probe(url: str, timeout: float) -> tuple[int | None, bool]:
    """Return ``(archive size, server honours Range)`` from a small ranged request.

    A connection that opens and then breaks is retried like a block; one
    that cannot be opened (refused, unknown host) fails at once.
    """
    failures = stalls = 0
    while True:
        try:
            return _probe_once(url, timeout)
        except DownloadError:
            raise
        except urllib.error.HTTPError as exc:
            raise DownloadError(
                f"{url}: HTTP {exc.code} {exc.reason}. {_MIRROR_HINT}"
            ) from exc
        except _NET_ERRORS as exc:
            failures += 1
            stalls = stalls + 1 if _is_timeout(exc) else 0
            if stalls > _STALL_RETRIES:
                raise _stalled(url, timeout, stalls, "to the first request") from exc
            if isinstance(exc, urllib.error.URLError) and not stalls:
                raise DownloadError(
                    f"Cannot reach {url} ({exc}). Check your internet connection, "
                    "use a mirror (url=... or EMNIST_MIRROR_URL), or download the "
                    "files by hand and point data_home (or EMNIST_DATA) at their "
                    "folder."
                ) from exc
            if failures > _RETRIES:
                raise DownloadError(
                    f"{url}: {failures} attempts in a row brought no new byte "
                    f"(last error: {exc}). Check the connection and try again, or "
                    "use another mirror (url=... or EMNIST_MIRROR_URL)."
                ) from exc
            time.sleep(min(2**failures * 0.1, 5))


def _part_path(target: Path) -> Path:
    """The partial file of ``target``: ``.<name>.<pid>@<host>.part``."""
    return temp_path(target, "part")


def _open_part(path: Path):
    """Create ``path`` afresh for writing; never through a link planted there."""
    path.unlink(missing_ok=True)  # this process's own leftover, if any
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(path, flags | getattr(os, "O_BINARY", 0), 0o666), "wb")


def remove_stale_parts(
    folder: str | os.PathLike[str], *, dry_run: bool = False
) -> list[Path]:
    """Delete the partial downloads that dead processes left in ``folder``.

    Only files named like ours (``.<name>.<pid>@<host>.part``) are candidates,
    and only when ``<host>`` is this machine and process ``<pid>`` no longer
    runs: a live download, another machine's (a shared folder) and any other
    file are kept. Called at the start of every download.

    Parameters
    ----------
    folder : str or path-like
        The download folder.
    dry_run : bool, default=False
        Only list what would be deleted.

    Returns
    -------
    list of Path
        The files removed (or, with ``dry_run``, that would be).
    """
    removed = []
    for path in stale_files(folder, _PART_RE):
        with contextlib.suppress(OSError):  # gone already, or a read-only folder
            if not dry_run:
                path.unlink()
            removed.append(path)
    return removed


def _check_target(path: Path) -> None:
    """Refuse a download target that is a folder, a loop or not a plain file."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return  # absent, or a dangling symlink that the rename replaces
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DownloadError(
                f"{path} is a symbolic link loop, where the downloaded "
                f"{path.name} must go. Remove the link (rm {path}) and download "
                "again."
            ) from exc
        raise DownloadError(
            f"Cannot write the download to {path} ({exc}); fix the folder or "
            "choose another data_home (or EMNIST_DATA)."
        ) from exc
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise DownloadError(
            f"{path} is {kind}, but the downloaded {path.name} must go there. "
            "Move or delete it, or choose another data_home (or EMNIST_DATA), "
            "then download again."
        )


def _safe_target(folder: Path, member: str) -> Path:
    """Where ``member`` goes inside ``folder``; refuses paths that escape it."""
    name = member.split("/", 1)[1] if member.startswith("gzip/") else member
    norm = posixpath.normpath(name.replace("\\", "/"))
    if norm.startswith(("../", "/")) or norm == "..":
        target = None
    else:
        _check_target(folder / norm)
        try:
            target = (folder / norm).resolve()
        except (OSError, RuntimeError) as exc:  # a loop in a parent folder
            raise DownloadError(
                f"Cannot resolve {folder / norm} ({exc}); remove the symbolic link "
                "loop or choose another data_home (or EMNIST_DATA)."
            ) from exc
    if target is None or not target.is_relative_to(folder.resolve()):
        raise DownloadError(
            f"Refusing zip member {member!r}: its path escapes the target folder "
            f"{folder}. The archive is not NIST's; check the URL or mirror."
        )
    return target


def _local_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[int, int | None]:
    """``(offset of the member's data, size its local header declares or None)``."""
    fp = cast(IO[bytes], zf.fp)  # an open ZipFile always has its file
    fp.seek(info.header_offset)
    head = fp.read(30)
    if len(head) != 30 or not head.startswith(b"PK\x03\x04"):
        raise DownloadError(
            f"{info.filename}: no local zip header at byte {info.header_offset}; "
            f"the archive is damaged or not NIST's. {_MIRROR_HINT}"
        )
    (flags,) = struct.unpack("<H", head[6:8])
    (size,) = struct.unpack("<I", head[22:26])
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    data_start = info.header_offset + 30 + name_len + extra_len
    # Bit 3: sizes follow the data; 0xFFFFFFFF: they are in the zip64 extra.
    declared = None if flags & 0x08 or size == 0xFFFFFFFF else size
    return data_start, declared


def _size_limit(info: zipfile.ZipInfo, local: int | None, official: int | None) -> int:
    """Bytes the member may inflate to; refuses sizes that disagree up front."""
    if local is not None and local != info.file_size:
        raise DownloadError(
            f"{info.filename} declares {local:,} bytes in its local zip header but "
            f"{info.file_size:,} in the central directory: the archive is damaged "
            f"or hostile, so nothing of it was written. {_MIRROR_HINT}"
        )
    if official is not None and info.file_size != official:
        raise ChecksumError(
            f"{info.filename} declares {info.file_size:,} bytes, but the official "
            f"file is {official:,} bytes: the archive is corrupt or not NIST's, so "
            f"nothing of it was written. {_MIRROR_HINT}"
        )
    return min(s for s in (info.file_size, local, official) if s is not None)


def _member_limits(zf, info, member: str, checksums, reader) -> tuple[str | None, int]:
    """``(sha256 wanted, most bytes the member may inflate to)``.

    The official table gives both, unless ``checksums`` names the member. The
    local header is read first (in ranged mode, alone), then the reader is
    limited to the member's data, so no byte of a neighbour is fetched.
    """
    own = checksums or {}
    want = own.get(member) or own.get(info.filename)
    official = None
    if want is None:
        want = expected_sha256(member) or expected_sha256(info.filename)
        official = official_size(member) or official_size(info.filename)
    if reader is not None:
        reader.limit_to(info.header_offset + 30)
    data_start, local = _local_header(zf, info)
    if reader is not None:
        reader.limit_to(data_start + info.compress_size)
    return want, _size_limit(info, local, official)


def _copy_capped(src, dst, limit: int, name: str) -> str:
    """Copy at most ``limit`` bytes; returns their sha256, refuses any more."""
    digest, written = hashlib.sha256(), 0
    while chunk := src.read(min(1 << 20, limit + 1 - written)):
        written += len(chunk)
        if written > limit:
            raise DownloadError(
                f"{name} inflates past its {limit:,} bytes (zip bomb or damaged "
                f"archive); stopped there and kept nothing. {_MIRROR_HINT}"
            )
        digest.update(chunk)
        dst.write(chunk)
    return digest.hexdigest()


def _extract_verified(zf, info, target: Path, member: str, checksums=None, reader=None):
    """Stream one member to a temp file, capped and sha256-checked, then rename."""
    want, limit = _member_limits(zf, info, member, checksums, reader)
    tmp = _part_path(target)
    try:
        with zf.open(info) as src, _open_part(tmp) as dst:
            got = _copy_capped(src, dst, limit, info.filename)
        if want is not None and got != want:
            raise ChecksumError(
                f"Checksum mismatch for {info.filename}: sha256 {got}, expected the "
                f"official {want}. Nothing was written; the download or the mirror "
                "is corrupt - try again or use the official URL."
            )
        os.replace(tmp, target)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        if isinstance(exc, (ChecksumError, DownloadError)):
            raise
        raise DownloadError(f"Extracting {info.filename} failed: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _find_members(
    zf: zipfile.ZipFile, wanted: list[str], url: str
) -> list[zipfile.ZipInfo]:
    by_base: dict[str, zipfile.ZipInfo] = {}
    for entry in zf.infolist():
        by_base.setdefault(posixpath.basename(entry.filename), entry)
    found = []
    for member in wanted:
        info = zf.NameToInfo.get(member) or by_base.get(posixpath.basename(member))
        if info is None:
            raise DownloadError(
                f"{url} does not contain {member}; is it NIST's EMNIST gzip.zip?"
            )
        found.append(info)
    return found


def _prepare_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"Cannot use {folder} as the download folder ({exc}); it must be a "
            "writable folder. Choose another data_home (or EMNIST_DATA)."
        ) from exc


def download_members(
    members: list[str],
    folder: str | os.PathLike[str],
    *,
    url: str | None = None,
    progress: bool = True,
    checksums: dict[str, str] | None = None,
    timeout: float | None = None,
) -> list[Path]:
    """Download archive members (e.g. ``gzip/emnist-mnist-test-...gz``) to a folder.

    Parameters
    ----------
    members : list of str
        Paths inside the zip archive.
    folder : str or path-like
        Destination; members are stored under their base names.
    url : str, default=None
        Archive URL; default ``$EMNIST_MIRROR_URL`` or NIST's official URL.
    progress : bool, default=True
        Show a progress bar on stderr.
    checksums : dict, default=None
        ``{member: sha256}`` entries that take precedence over the official
        table (and its sizes), for a private or test archive.
    timeout : float, default=None
        Seconds each connect or read may wait for the server; default
        ``$EMNIST_DOWNLOAD_TIMEOUT``, else :data:`DOWNLOAD_TIMEOUT` (30). A
        server silent that long twice in a row fails the download.

    Returns
    -------
    list of Path
        The verified files.

    Raises
    ------
    DownloadError
        Network failure or stalled server, HTML or other data instead of a zip,
        member missing, unsafe path, sizes that disagree or a zip bomb, or a
        folder or symlink loop where a file must go.
    ChecksumError
        A member's sha256 or declared size differs from the official table.
    ValueError
        ``timeout`` or ``$EMNIST_DOWNLOAD_TIMEOUT`` is not a positive number.
    """
    url, timeout = archive_url(url), download_timeout(timeout)
    folder = Path(folder)
    _prepare_folder(folder)
    remove_stale_parts(folder)
    targets = [_safe_target(folder, m) for m in members]
    size, ranged = _probe(url, timeout)
    if ranged and size:
        bar = _progress(None, "EMNIST (ranged)", progress)
        reader = _RangeReader(url, size, timeout=timeout, on_bytes=bar.update)
        reader.budget = MAX_DIRECTORY_BYTES  # zipfile reads the whole directory
        try:
            zf = zipfile.ZipFile(io.BufferedReader(reader, buffer_size=1 << 16))
            reader.budget = None
        except zipfile.BadZipFile as exc:
            bar.close()
            if isinstance(exc.__context__, DownloadError):
                raise exc.__context__ from None  # zipfile hid a network failure
            raise DownloadError(
                f"{url} is not a zip archive ({exc}). {_MIRROR_HINT}"
            ) from exc
        with zf, bar:
            infos = _find_members(zf, members, url)
            bar.total = sum(i.compress_size for i in infos)
            for member, info, target in zip(members, infos, targets, strict=True):
                _extract_verified(zf, info, target, member, checksums, reader)
        return targets
    logger.info("%s ignores Range requests; downloading the whole archive", url)
    archive = _download_whole(url, folder, size, progress, timeout)
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = _find_members(zf, members, url)
            for member, info, target in zip(members, infos, targets, strict=True):
                _extract_verified(zf, info, target, member, checksums)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{url} is not a valid zip archive ({exc}).") from exc
    finally:
        archive.unlink(missing_ok=True)
    return targets


def _fetch_whole(url: str, dst, size: int | None, bar, timeout: float) -> int:
    """One full GET into ``dst``; returns the bytes received."""
    limit = MAX_ARCHIVE_BYTES if size is None else min(size, MAX_ARCHIVE_BYTES)
    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    received = 0
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        while chunk := resp.read(min(1 << 20, limit + 1 - received)):
            if received == 0:
                _check_zip_start(
                    chunk, resp.status, resp.headers.get("Content-Type", ""), url
                )
            received += len(chunk)
            if received > limit:
                raise DownloadError(
                    f"{url} sent more than {limit:,} bytes (its announced size, or "
                    f"the {MAX_ARCHIVE_BYTES:,}-byte cap on an archive fetched "
                    f"whole); stopped. {_MIRROR_HINT}"
                )
            dst.write(chunk)
            bar.update(len(chunk))
    return received


def _download_whole(
    url: str, folder: Path, size: int | None, progress: bool, timeout: float
) -> Path:
    """Fetch the whole archive to a temp file, retrying from the start on errors.

    Without Range an attempt cannot resume, so attempts are counted in total.
    """
    if size is not None and size > MAX_ARCHIVE_BYTES:
        raise DownloadError(
            f"{url} announces {size:,} bytes and ignores Range requests; archives "
            f"over {MAX_ARCHIVE_BYTES:,} bytes are not fetched whole. {_MIRROR_HINT}"
        )
    tmp = _part_path(folder / "emnist-archive.zip")
    stalls = 0
    for attempt in range(_RETRIES + 1):
        try:
            with (
                _open_part(tmp) as dst,
                _progress(size, "EMNIST archive", progress) as bar,
            ):
                received = _fetch_whole(url, dst, size, bar, timeout)
            if size is not None and received != size:
                raise ConnectionError(
                    f"connection closed after {received} of {size} bytes"
                )
            return tmp
        except DownloadError:
            tmp.unlink(missing_ok=True)
            raise
        except _NET_ERRORS as exc:
            tmp.unlink(missing_ok=True)
            stalls = stalls + 1 if _is_timeout(exc) else 0
            if stalls > _STALL_RETRIES:
                raise _stalled(url, timeout, stalls, "during the download") from exc
            if attempt == _RETRIES:
                raise DownloadError(
                    f"Downloading {url} failed after {attempt + 1} attempts: {exc}. "
                    "The server ignores Range requests, so every attempt starts "
                    f"over; try again later. {_MIRROR_HINT}"
                ) from exc
            logger.warning("download broken (%s); retrying", exc)
            time.sleep(min(2**attempt * 0.2, 5))
    raise AssertionError("unreachable")


def download_split(
    split: str,
    subset: str,
    folder: str | os.PathLike[str],
    *,
    url: str | None = None,
    progress: bool = True,
    timeout: float | None = None,
) -> list[Path]:
    """Download the images, labels and mapping of one split/subset into ``folder``.

    Files already there are kept.

    Parameters
    ----------
    split : str
        EMNIST split, e.g. ``"balanced"``.
    subset : {"train", "test"}
        Which half of the split.
    folder : str or path-like
        Destination; files are stored under their base names.
    url : str, default=None
        Archive URL; default ``$EMNIST_MIRROR_URL`` or NIST's official URL.
    progress : bool, default=True
        Show a progress bar on stderr.
    timeout : float, default=None
        Seconds each connect or read may wait, as in :func:`download_members`.

    Returns
    -------
    list of Path
        The images, labels and mapping files, in that order.

    Raises
    ------
    DownloadError
        As :func:`download_members`; also when a folder, a symlink loop or
        anything but a regular file stands where one of the files belongs.
    """
    names = member_names(split, subset)
    wanted = [names["images"], names["labels"], names["mapping"]]
    paths = [Path(folder) / posixpath.basename(m) for m in wanted]
    for path in paths:
        _check_target(path)
    missing = [m for m, p in zip(wanted, paths, strict=True) if not p.is_file()]
    if missing:
        download_members(missing, folder, url=url, progress=progress, timeout=timeout)
    return paths
