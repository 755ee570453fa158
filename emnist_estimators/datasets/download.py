"""Download EMNIST members from NIST's official ``gzip.zip``.

The archive is about 536 MB, while one split needs a few of its members (the
balanced split about 33 MB). When the server honours HTTP Range requests the
zip's central directory is read from the end of the file and only the needed
members are fetched, each in ranged blocks that are retried and resumed on a
broken connection. When the server ignores Range, the whole archive is
downloaded once (to a temporary file, with a progress bar) and the members
are extracted from it.

Every member is verified against the official sha256 table shipped in
:mod:`emnist_estimators.datasets._official` while it is written to a
temporary file; only a verified file is renamed into place, so a failed or
interrupted download never leaves a partial file behind.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import posixpath
import time
import urllib.error
import urllib.request
import zipfile
from http.client import HTTPException
from pathlib import Path

from ..exceptions import ChecksumError, DownloadError
from ._official import OFFICIAL_URL, expected_sha256, member_names

__all__ = ["download_members", "download_split", "archive_url"]

logger = logging.getLogger(__name__)

_BLOCK = 1 << 20  # bytes per ranged request
_RETRIES = 5
_TIMEOUT = 60
_USER_AGENT = "emnist-estimators (+https://pypi.org/project/emnist-estimators)"


def archive_url(url: str | None = None) -> str:
    """The archive URL: ``url``, else ``$EMNIST_MIRROR_URL``, else NIST's."""
    return url or os.environ.get("EMNIST_MIRROR_URL") or OFFICIAL_URL


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


def _check_not_html(first_bytes: bytes, content_type: str, url: str) -> None:
    head = first_bytes.lstrip()[:64].lower()
    if "html" in content_type.lower() or head.startswith((b"<!doctype", b"<html")):
        raise DownloadError(
            f"{url} answered with an HTML page, not the EMNIST zip archive (NIST's "
            "old download link does this). Use the official URL "
            f"{OFFICIAL_URL} or pass a working mirror with url=... or the "
            "EMNIST_MIRROR_URL environment variable."
        )


class _RangeReader(io.RawIOBase):
    """A seekable, read-only file over HTTP Range requests.

    ``zipfile.ZipFile`` reads the central directory and members through it,
    so the zip format itself is parsed by the standard library. Reads are
    served from 1 MiB blocks; each block request is retried with backoff and
    resumes from the last byte received.
    """

    def __init__(self, url: str, size: int, *, on_bytes=None):
        self.url, self.size = url, size
        self._pos = 0
        self._block_start, self._block = -1, b""
        self._on_bytes = on_bytes

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

    def _fetch(self, start: int, end: int) -> bytes:
        """Bytes ``start..end-1`` of the remote file, retrying on errors."""
        got = bytearray()
        for attempt in range(_RETRIES + 1):
            lo = start + len(got)
            if lo >= end:
                break
            req = urllib.request.Request(
                self.url,
                headers={"Range": f"bytes={lo}-{end - 1}", "User-Agent": _USER_AGENT},
            )
            try:
                with urllib.request.urlopen(req, timeout=_TIMEOUT) as resp:
                    if resp.status != 206:
                        raise DownloadError(
                            f"{self.url} stopped honouring Range requests "
                            f"(HTTP {resp.status})."
                        )
                    while len(got) < end - start:
                        chunk = resp.read(min(65536, end - start - len(got)))
                        if not chunk:
                            break
                        got += chunk
                        if self._on_bytes:
                            self._on_bytes(len(chunk))
            except (urllib.error.URLError, HTTPException, OSError) as exc:
                if isinstance(exc, DownloadError) or attempt == _RETRIES:
                    raise DownloadError(
                        f"Downloading {self.url} failed after {attempt + 1} "
                        f"attempts: {exc}"
                    ) from exc
                logger.warning("connection broken (%s); resuming at byte %d", exc, lo)
                time.sleep(min(2**attempt * 0.2, 5))
                continue
        if len(got) != end - start:
            raise DownloadError(
                f"{self.url}: server sent {len(got)} of {end - start} bytes of the "
                f"range {start}-{end - 1} after {_RETRIES + 1} attempts."
            )
        return bytes(got)

    def readinto(self, buffer):
        if self._pos >= self.size:
            return 0
        n = min(len(buffer), self.size - self._pos)
        out = memoryview(buffer)
        done = 0
        while done < n:
            pos = self._pos + done
            if not (self._block_start <= pos < self._block_start + len(self._block)):
                self._block_start = pos
                self._block = self._fetch(pos, min(pos + _BLOCK, self.size))
            off = pos - self._block_start
            take = min(n - done, len(self._block) - off)
            out[done : done + take] = self._block[off : off + take]
            done += take
        self._pos += n
        return n


def _probe(url: str) -> tuple[int | None, bool]:
    """Return ``(archive size, server honours Range)`` from a small ranged request."""
    req = urllib.request.Request(
        url, headers={"Range": "bytes=0-63", "User-Agent": _USER_AGENT}
    )
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT) as resp:
            first = resp.read(64)
            _check_not_html(first, resp.headers.get("Content-Type", ""), url)
            if resp.status == 206:
                content_range = resp.headers.get("Content-Range", "")
                total = content_range.rpartition("/")[2]
                if total.isdigit():
                    return int(total), True
            length = resp.headers.get("Content-Length")
            return (int(length) if length and length.isdigit() else None), False
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, HTTPException, OSError) as exc:
        raise DownloadError(
            f"Cannot reach {url} ({exc}). Check your internet connection, or "
            "download the files by hand and point data_home (or EMNIST_DATA) at "
            "their folder."
        ) from exc


def _safe_target(folder: Path, member: str) -> Path:
    """Where ``member`` goes inside ``folder``; refuses paths that escape it."""
    name = member.split("/", 1)[1] if member.startswith("gzip/") else member
    norm = posixpath.normpath(name.replace("\\", "/"))
    target = (folder / norm).resolve()
    if (
        norm.startswith(("../", "/"))
        or norm == ".."
        or not target.is_relative_to(folder.resolve())
    ):
        raise DownloadError(
            f"Refusing zip member {member!r}: its path escapes the target folder "
            f"{folder}. The archive is not NIST's; check the URL or mirror."
        )
    return target


def _extract_verified(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, checksums=None
):
    """Stream one member to a temp file, check its sha256, then rename."""
    want = (checksums or {}).get(info.filename) or expected_sha256(info.filename)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    digest = hashlib.sha256()
    try:
        with zf.open(info) as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                dst.write(chunk)
        got = digest.hexdigest()
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


def _find_members(zf: zipfile.ZipFile, wanted: list[str], url: str):
    by_base: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        by_base.setdefault(posixpath.basename(info.filename), info)
    found = []
    for member in wanted:
        info = zf.NameToInfo.get(member) or by_base.get(posixpath.basename(member))
        if info is None:
            raise DownloadError(
                f"{url} does not contain {member}; is it NIST's EMNIST gzip.zip?"
            )
        found.append(info)
    return found


def download_members(
    members: list[str],
    folder,
    *,
    url: str | None = None,
    progress: bool = True,
    checksums: dict[str, str] | None = None,
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
        table, for a private or test archive.

    Returns
    -------
    list of Path
        The verified files.

    Raises
    ------
    DownloadError
        Network failure, HTML instead of a zip, member missing or unsafe path.
    ChecksumError
        A member's sha256 differs from the official table.
    """
    url = archive_url(url)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    targets = [_safe_target(folder, m) for m in members]
    size, ranged = _probe(url)
    if ranged and size:
        bar = _progress(None, "EMNIST (ranged)", progress)
        remote = io.BufferedReader(
            _RangeReader(url, size, on_bytes=bar.update), buffer_size=1 << 16
        )
        try:
            zf = zipfile.ZipFile(remote)
        except zipfile.BadZipFile as exc:
            bar.close()
            raise DownloadError(f"{url} is not a zip archive ({exc}).") from exc
        with zf, bar:
            infos = _find_members(zf, members, url)
            bar.total = sum(i.compress_size for i in infos)
            for info, target in zip(infos, targets):
                _extract_verified(zf, info, target, checksums)
        return targets
    logger.info("%s ignores Range requests; downloading the whole archive", url)
    archive = _download_whole(url, folder, size, progress)
    try:
        with zipfile.ZipFile(archive) as zf:
            for info, target in zip(_find_members(zf, members, url), targets):
                _extract_verified(zf, info, target, checksums)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{url} is not a valid zip archive ({exc}).") from exc
    finally:
        archive.unlink(missing_ok=True)
    return targets


def _download_whole(url: str, folder: Path, size: int | None, progress: bool) -> Path:
    """Fetch the whole archive to a temp file, retrying from the start on errors."""
    tmp = folder / f".emnist-archive.{os.getpid()}.part"
    for attempt in range(_RETRIES + 1):
        try:
            req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
            with (
                urllib.request.urlopen(req, timeout=_TIMEOUT) as resp,
                open(tmp, "wb") as dst,
                _progress(size, "EMNIST archive", progress) as bar,
            ):
                first = True
                received = 0
                while chunk := resp.read(1 << 20):
                    if first:
                        _check_not_html(
                            chunk, resp.headers.get("Content-Type", ""), url
                        )
                        first = False
                    dst.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if size is not None and received != size:
                raise DownloadError(
                    f"{url}: connection closed after {received} of {size} bytes"
                )
            return tmp
        except (urllib.error.URLError, HTTPException, OSError) as exc:
            tmp.unlink(missing_ok=True)
            if attempt == _RETRIES or (
                isinstance(exc, DownloadError) and "HTML" in str(exc)
            ):
                if isinstance(exc, DownloadError):
                    raise
                raise DownloadError(
                    f"Downloading {url} failed after {attempt + 1} attempts: {exc}"
                ) from exc
            logger.warning("download broken (%s); retrying", exc)
            time.sleep(min(2**attempt * 0.2, 5))
    raise AssertionError("unreachable")


def download_split(
    split: str,
    subset: str,
    folder,
    *,
    url: str | None = None,
    progress: bool = True,
) -> list[Path]:
    """Download the images, labels and mapping of one split/subset into ``folder``."""
    names = member_names(split, subset)
    wanted = [names["images"], names["labels"], names["mapping"]]
    missing = [m for m in wanted if not (Path(folder) / posixpath.basename(m)).exists()]
    if not missing:
        return [Path(folder) / posixpath.basename(m) for m in wanted]
    download_members(missing, folder, url=url, progress=progress)
    return [Path(folder) / posixpath.basename(m) for m in wanted]
