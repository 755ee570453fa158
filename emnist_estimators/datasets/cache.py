"""Compact on-disk cache: uint8 ``.npy`` files that later loads memory-map.

How it works and why: the design notes in the docs (``docs/design.rst``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.lib import format

from ..exceptions import DataFormatError
from ._tempfiles import stale_files, temp_path, writer_is_dead
from .readers import idx_header, iter_idx_blocks, read_idx_data

__all__ = [
    "cache_candidates",
    "cache_path_for",
    "cache_files",
    "cache_kind",
    "load_cached_images",
    "remove_stale_temps",
    "user_cache_dir",
]

logger = logging.getLogger(__name__)

CACHE_VERSION = 2

# Our file names, and only ours: ``<source>.v<N>.upright.npy`` with its
# ``.upright.json`` sidecar, and their temporaries ``.<name>.<pid>@<host>.tmp``
# (version 1 wrote ``.<name>.<pid>.tmp``, without the host).
_CACHE_RE = re.compile(r"^.+\.v\d+\.upright\.(?:npy|json)$")
_TEMP_RE = re.compile(
    r"^\.(?P<target>.+\.v\d+\.upright\.(?:npy|json))"
    r"\.(?P<pid>\d{1,10})(?:@(?P<host>[A-Za-z0-9_-]{1,64}))?\.tmp$"
)


# Errors of the cache's folder, not of the data: fall back to reading in memory.
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def user_cache_dir() -> Path:
    """Return the root of the per-user cache.

    Returns
    -------
    Path
        ``$EMNIST_ESTIMATORS_CACHE`` if set, else
        ``$XDG_CACHE_HOME/emnist-estimators`` or
        ``~/.cache/emnist-estimators``.
    """
    env = os.environ.get("EMNIST_ESTIMATORS_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "emnist-estimators"


def _writable_dir(folder: Path) -> bool:
    """True if we may write in ``folder``.

    A folder without its owner-write bit counts as read-only even for root,
    who could write there anyway: a shared, write-protected data folder stays
    untouched and the cache goes to the user cache instead.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & stat.S_IWUSR) and os.access(folder, os.W_OK)


def cache_candidates(source: Path) -> list[Path]:
    """Return the places where the ``.npy`` cache of ``source`` may be, in order.

    Beside the source first, then in the user cache under a name that
    includes a hash of the source's absolute path, so two folders with files
    of the same name never share a cache entry. Nothing is created.

    Parameters
    ----------
    source : Path
        The data file (IDX, gzip IDX or .mat) the cache holds upright.

    Returns
    -------
    list of Path
        The two candidate cache files; either, both or neither may exist.
    """
    name = f"{source.name}.v{CACHE_VERSION}.upright.npy"
    digest = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:12]
    return [source.parent / name, user_cache_dir() / "npy" / digest / name]


def cache_path_for(source: Path) -> Path | None:
    """Return where a new upright ``.npy`` cache of ``source`` goes.

    Next to the source when that folder is writable; otherwise in the user
    cache (see :func:`cache_candidates`). An existing valid cache is served
    from either place before a new one is written (see
    :func:`load_cached_images`).

    Parameters
    ----------
    source : Path
        The data file (IDX, gzip IDX or .mat) the cache holds upright.

    Returns
    -------
    Path or None
        The cache file's path; None when no candidate folder is writable.
    """
    for candidate in cache_candidates(source):
        if _writable_dir(candidate.parent):
            return candidate
    return None


def _sidecar(cache: Path) -> Path:
    return cache.with_suffix(".json")


# --- temporary files --------------------------------------------------------------
def _temp_path(target: Path) -> Path:
    return temp_path(target, "tmp")


def _is_stale_temp(name: str) -> bool:
    """True for our temporary files whose writer is dead (see :mod:`._tempfiles`)."""
    match = _TEMP_RE.match(name)
    return match is not None and writer_is_dead(int(match["pid"]), match["host"])


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temporary cache files that dead writers left in ``folder``.

    Only files named like our temporaries (``.<cache>.<pid>[@<host>].tmp``)
    whose writer no longer runs on this machine are removed; a live writer's
    file, another host's file and anything else in the folder are kept.

    Parameters
    ----------
    folder : Path
        The folder to clean.

    Returns
    -------
    list of Path
        The files removed.
    """
    removed = []
    for path in stale_files(folder, _TEMP_RE):
        try:
            path.unlink()
        except FileNotFoundError:  # another process cleaned it first
            continue
        except OSError:  # read-only folder: nothing we can do, nothing lost
            continue
        removed.append(path)
    return removed


def cache_files(folder: Path) -> list[Path]:
    """List our caches, sidecars and stale temporaries in ``folder``.

    Matches our exact names only (any cache version); temporaries of live
    writers are not listed.

    Parameters
    ----------
    folder : Path
        The folder to list; a missing or unreadable folder lists nothing.

    Returns
    -------
    list of Path
        The files found, sorted.
    """
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    found = [
        Path(entry.path)
        for entry in entries
        if entry.is_file(follow_symlinks=False)
        and (_CACHE_RE.match(entry.name) or _is_stale_temp(entry.name))
    ]
    return sorted(found)


def cache_kind(name: str) -> str | None:
    """Classify a file name as one of our caches or temporaries.

    Parameters
    ----------
    name : str
        A file name, without folder.

    Returns
    -------
    {"cache", "temp"} or None
        ``"cache"`` for our ``.npy``/sidecar names, ``"temp"`` for our
        temporary files, None for any other name.
    """
    if _CACHE_RE.match(name):
        return "cache"
    if _TEMP_RE.match(name):
        return "temp"
    return None


# --- identity -----------------------------------------------------------------------
def _source_identity(st: os.stat_result) -> dict:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_sidecar(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _write_sidecar(path: Path, meta: dict) -> None:
    tmp = _temp_path(path)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _payload_sha256(images: np.ndarray) -> str:
    # an ndarray is a buffer: numpy declares __buffer__ for Python >= 3.12 only
    return hashlib.sha256(memoryview(images).cast("B")).hexdigest()  # type: ignore[arg-type]


def _open_cache(cache: Path, source: Path, shape, dtype, source_sha256):
    """The memory-mapped cache if it still describes ``source``, else None.

    Without ``source_sha256`` this costs a few system calls and a small JSON
    read; with it, also one sha256 pass over the cached payload.
    """
    meta = _read_sidecar(_sidecar(cache))
    if meta is None or meta.get("cache_version") != CACHE_VERSION:
        return None
    try:
        src = meta["source"]
        if {"size": src["size"], "mtime_ns": src["mtime_ns"]} != _source_identity(
            source.stat()
        ):
            return None
        if meta["shape"] != list(shape) or meta["dtype"] != dtype.str:
            return None
        if source_sha256 is not None and src["sha256"] != source_sha256:
            return None
        with open(cache, "rb") as fh:
            st = os.fstat(fh.fileno())
            npy = meta["npy"]
            if (st.st_size, st.st_mtime_ns) != (npy["size"], npy["mtime_ns"]):
                return None
            images = _map_npy(fh, st.st_size, shape, dtype)
    except (OSError, KeyError, TypeError, ValueError):
        return None  # missing, unreadable or damaged: rebuild
    if images is None:
        return None
    if source_sha256 is not None and _payload_sha256(images) != npy["sha256"]:
        return None
    return images


def _map_npy(fh, size: int, shape, dtype) -> np.ndarray | None:
    """Memory-map an open ``.npy`` whose header must say exactly ``shape``/``dtype``."""
    if format.read_magic(fh) != (1, 0):
        return None
    got_shape, fortran, got_dtype = format.read_array_header_1_0(fh)
    offset = fh.tell()
    if got_shape != tuple(shape) or fortran or got_dtype != dtype:
        return None
    if offset + dtype.itemsize * math.prod(shape) != size:
        return None
    return _memmap(fh, dtype, offset, shape)


def _memmap(fh, dtype, offset: int, shape) -> np.ndarray:
    if math.prod(shape) == 0:  # mmap cannot map zero bytes
        return np.empty(shape, dtype)
    return np.memmap(fh, dtype=dtype, mode="r", offset=offset, shape=tuple(shape))


# --- building -----------------------------------------------------------------------
def _check_source_bytes(source: Path, want: str | None, raw_hash) -> None:
    """The bytes just read must be the ones that were verified."""
    if want is not None and raw_hash.hexdigest() != want:
        raise DataFormatError(
            f"{source} changed while it was being read (its sha256 is no longer "
            "the one verified a moment before). Load it again once nothing writes "
            "to it."
        )


def _write_npy(tmp: Path, source: Path, shape, dtype, square: bool, raw_hash):
    """Write the upright ``.npy`` of ``source`` to ``tmp``.

    Returns ``(offset, sha256)``: where the payload starts, and its hash.

    Plain writes, not a writable memory map: no page faults on a fresh file,
    and the pages stay in the page cache instead of this process's memory.
    """
    payload = hashlib.sha256()
    with open(tmp, "wb") as fh:
        header = {
            "descr": format.dtype_to_descr(dtype),
            "fortran_order": False,
            "shape": tuple(shape),
        }
        format.write_array_header_1_0(fh, header)
        offset = fh.tell()
        blocks = iter_idx_blocks(
            source, shape, dtype, transpose=square, raw_hash=raw_hash
        )
        for block in blocks:
            # an ndarray is a buffer: numpy declares __buffer__ for Python >= 3.12 only
            data = memoryview(block).cast("B")  # type: ignore[arg-type]
            payload.update(data)
            fh.write(data)
    return offset, payload.hexdigest()


def _build(cache: Path, source: Path, shape, dtype, source_sha256) -> np.ndarray:
    """Convert ``source`` into ``cache`` crash-safely; return it memory-mapped."""
    square = len(shape) == 3 and shape[1] == shape[2]
    raw_hash = hashlib.sha256()
    before = source.stat()
    tmp = _temp_path(cache)
    sidecar = _sidecar(cache)
    try:
        offset, payload = _write_npy(tmp, source, shape, dtype, square, raw_hash)
        _check_source_bytes(source, source_sha256, raw_hash)
        if _source_identity(source.stat()) != _source_identity(before):
            raise DataFormatError(
                f"{source} changed while it was being read. Load it again once "
                "nothing writes to it."
            )
        with open(tmp, "rb") as fh:  # map our own file: valid after the rename
            st = os.fstat(fh.fileno())
            images = _memmap(fh, dtype, offset, shape)
        meta = {
            "cache_version": CACHE_VERSION,
            "source": {
                **_source_identity(before),
                "sha256": raw_hash.hexdigest(),
                "name": source.name,
            },
            "shape": list(shape),
            "dtype": dtype.str,
            "npy": {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": payload},
        }
        # No moment where an old sidecar describes the new .npy: drop it first.
        sidecar.unlink(missing_ok=True)
        os.replace(tmp, cache)
        _write_sidecar(sidecar, meta)
    finally:
        tmp.unlink(missing_ok=True)
    return images


def _read_in_memory(source: Path, shape, dtype, source_sha256) -> np.ndarray:
    """Upright images without a cache (no writable folder, or ``use_cache=False``)."""
    square = len(shape) == 3 and shape[1] == shape[2]
    raw_hash = hashlib.sha256()
    images = read_idx_data(source, shape, dtype, transpose=square, raw_hash=raw_hash)
    _check_source_bytes(source, source_sha256, raw_hash)
    return images


def load_cached_images(
    source: Path,
    *,
    use_cache: bool = True,
    verify_source: Callable[[Path], str] | None = None,
    expected_count: int | None = None,
) -> np.ndarray:
    """Upright uint8 images of an IDX file, shape (n, 28, 28), via the cache.

    A cold load decompresses straight into a temporary ``.npy``, transposing
    block by block, and renames it into place, so memory stays a few MiB
    whatever the split's size. A warm load memory-maps the ``.npy`` after
    checking its sidecar (see the module docstring).

    Parameters
    ----------
    source : Path
        The IDX images file (gzip or raw).
    use_cache : bool, default=True
        Read and write the ``.npy`` cache; if False, read into memory.
    verify_source : callable, default=None
        ``verify_source(source) -> sha256 hex`` checks the source (raising if
        it is wrong) and returns the hash it checked. When given, the cache is
        served only if it was built from bytes with that hash and its payload
        still has the sha256 recorded when it was written; a build checks that
        the bytes it reads are the verified ones.
    expected_count : int, default=None
        Number of images the caller expects (e.g. the number of labels).

    Returns
    -------
    ndarray of shape (n, rows, cols)
        A read-only ``np.memmap`` when cached, else an in-memory array.

    Raises
    ------
    DataFormatError
        The source is corrupt, has the wrong size for its header, holds a
        number of images other than ``expected_count``, or changed while read.
    """
    source = Path(source)
    shape, dtype = idx_header(source)
    dtype = dtype.newbyteorder("=")
    if expected_count is not None and shape[0] != expected_count:
        raise DataFormatError(
            f"{source} holds {shape[0]:,} images but {expected_count:,} were "
            "expected (one per label); the files do not belong together."
        )
    source_sha256 = verify_source(source) if verify_source is not None else None
    if not use_cache:
        return _read_in_memory(source, shape, dtype, source_sha256)
    for candidate in cache_candidates(source):  # one cache per source, wherever
        images = _open_cache(candidate, source, shape, dtype, source_sha256)
        if images is not None:
            return images
    cache = cache_path_for(source)
    if cache is None:
        return _read_in_memory(source, shape, dtype, source_sha256)
    remove_stale_temps(cache.parent)
    _log_new_cache(source, cache, shape, dtype)
    try:
        return _build(cache, source, shape, dtype, source_sha256)
    except OSError as exc:
        if exc.errno not in _NO_ROOM:
            raise
        # A full disk or a folder that turned read-only costs speed, not the
        # data: the temporary file is gone (see _build), read into memory.
        return _read_in_memory(source, shape, dtype, source_sha256)


def _log_new_cache(source: Path, cache: Path, shape, dtype) -> None:
    """Say once, when it is written, where a new cache goes and why there."""
    why = "" if cache.parent == source.parent else f" ({source.parent} is read-only)"
    size = dtype.itemsize * math.prod(shape) / 1e6
    logger.info(
        "caching the images of %s as %s%s: %.1f MB, memory-mapped by later loads "
        "(`emnist-estimators data clean` removes it)",
        source.name,
        cache,
        why,
        size,
    )
