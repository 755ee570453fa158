"""Compact on-disk cache: uint8 ``.npy`` files that later loads memory-map.

The first load of a source file (IDX, CSV or .mat) converts its images to an
upright uint8 ``.npy`` next to the source; when that folder is read-only the
cache goes to ``<data_home>/.npy-cache`` or the user cache instead. Later loads
``np.load(..., mmap_mode="r")`` it: no parsing, no decompression, and pages are
read only when touched.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import numpy as np
from numpy.lib import format

from .readers import idx_header, iter_idx_blocks, read_idx

__all__ = ["cache_path_for", "load_cached_images", "user_cache_dir"]

CACHE_VERSION = 1


def user_cache_dir() -> Path:
    """Root of the per-user cache: ``$EMNIST_ESTIMATORS_CACHE`` or ~/.cache/..."""
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


def cache_path_for(source: Path) -> Path | None:
    """Where the upright ``.npy`` cache of ``source`` lives (None: nowhere writable).

    Next to the source when that folder is writable; otherwise in the user
    cache, under a name that includes a hash of the source's absolute path so
    two folders with files of the same name never share a cache entry.
    """
    name = f"{source.name}.v{CACHE_VERSION}.upright.npy"
    if _writable_dir(source.parent):
        return source.parent / name
    digest = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:12]
    folder = user_cache_dir() / "npy" / digest
    if _writable_dir(folder):
        return folder / name
    return None


def _is_fresh(cache: Path, source: Path) -> bool:
    try:
        return cache.stat().st_mtime_ns >= source.stat().st_mtime_ns
    except OSError:
        return False


def load_cached_images(
    source: Path, *, use_cache: bool = True, before_build=None
) -> np.ndarray:
    """Upright uint8 images of an IDX file, shape (n, 28, 28), via the cache.

    A cold load decompresses straight into a memory-mapped temporary ``.npy``,
    transposes it in place chunk by chunk and renames it into place, so peak
    memory stays about one uint8 copy of the split. A warm load is an
    ``np.load(mmap_mode="r")``. ``before_build(source)``, if given, runs
    before a cold load (e.g. to verify the source's checksum).
    """
    cache = cache_path_for(source) if use_cache else None
    if cache is not None and _is_fresh(cache, source):
        try:
            return np.load(cache, mmap_mode="r")
        except (ValueError, OSError):
            cache.unlink(missing_ok=True)  # damaged cache: rebuild it below
    if before_build is not None:
        before_build(source)
    shape, dtype = idx_header(source)
    square = len(shape) == 3 and shape[1] == shape[2]
    if cache is None:
        return read_idx(source, transpose=square)
    dtype = dtype.newbyteorder("=")
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:
        # Plain writes, not a writable memory map: no page faults on a fresh
        # file, and the pages stay in the page cache instead of this
        # process's resident memory.
        with open(tmp, "wb") as fh:
            header = {"descr": format.dtype_to_descr(dtype), "fortran_order": False,
                      "shape": shape}
            format.write_array_header_1_0(fh, header)
            for block in iter_idx_blocks(source, shape, dtype, transpose=square):
                fh.write(memoryview(block).cast("B"))
        os.replace(tmp, cache)
    finally:
        tmp.unlink(missing_ok=True)
    return np.load(cache, mmap_mode="r")
