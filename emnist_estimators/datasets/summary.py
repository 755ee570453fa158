"""What a data folder holds: EMNIST files, their checksums and caches.

Per split, for ``data info`` and the data-not-found summary.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ._official import EMNIST_SPLITS, SUBSETS
from .cache import cache_candidates, cache_kind, user_cache_dir
from .loader import (
    SplitFiles,
    file_sha256,
    find_split_files,
    get_data_home,
    idx_names,
    official_sha256,
    present_idx,
)

__all__ = ["data_info", "split_summary"]


def data_info(
    data_home: str | os.PathLike[str] | None = None, *, checksums: bool = False
) -> list[dict]:
    """Describe the EMNIST files and caches in ``data_home``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The data folder, as for :func:`load_emnist`; the user cache's ``npy``
        folder is listed too.
    checksums : bool, default=False
        Hash the official files (slow for large files) to fill ``sha256_ok``.

    Returns
    -------
    list of dict
        One row per file: ``path``, ``kind`` (idx, csv, mat, mapping, cache,
        or temp for a cache writer's temporary file), ``size`` in bytes and
        ``sha256_ok`` (True/False for official files when ``checksums`` is
        True, else None).
    """

    home = get_data_home(data_home)
    rows = []
    folders = [home, home / "gzip", home / "matlab", user_cache_dir() / "npy"]
    seen = set()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(
            folder.rglob("*") if folder.name == "npy" else folder.iterdir()
        ):
            name = path.name
            if not path.is_file() or path in seen:
                continue
            seen.add(path)
            kind = cache_kind(name)
            if kind is None and name.startswith("."):
                continue
            if kind is not None:
                pass
            elif "idx" in name:
                kind = "idx"
            elif name.endswith((".csv", ".csv.gz")):
                kind = "csv"
            elif name.endswith(".mat"):
                kind = "mat"
            elif name.endswith("mapping.txt"):
                kind = "mapping"
            else:
                continue
            ok = None
            if checksums and kind in ("idx", "csv", "mat", "mapping"):
                want = official_sha256(path)
                ok = None if want is None else file_sha256(path) == want
            rows.append(
                {
                    "path": str(path),
                    "kind": kind,
                    "size": path.stat().st_size,
                    "sha256_ok": ok,
                }
            )
    return rows


def _cache_bytes(files: SplitFiles | None) -> int:
    """Bytes of the images' caches and sidecars, beside the source or not."""
    if files is None or files.kind != "idx":
        return 0
    total = 0
    for npy in cache_candidates(files.images):
        for path in (npy, npy.with_suffix(".json")):
            with contextlib.suppress(OSError):  # absent: nothing cached there
                total += path.stat().st_size
    return total


def _other_caches(files: SplitFiles | None) -> list[str]:
    """User-cache caches named like this split's, made from a copy elsewhere.

    The loader serves only the caches of :func:`cache_candidates`; one of the
    same file name under another folder's hash is another copy's.
    """
    if files is None or files.kind != "idx":
        return []
    mine = set(cache_candidates(files.images))
    name = cache_candidates(files.images)[-1].name
    root = user_cache_dir() / "npy"
    with contextlib.suppress(OSError):
        return [str(p) for p in sorted(root.glob(f"*/{name}")) if p not in mine]
    return []


def split_summary(data_home: str | os.PathLike[str] | None = None) -> list[dict]:
    """Say, for every EMNIST split and subset, whether its files are in ``data_home``.

    Only file names are looked at (cheap); :func:`load_emnist` checks sizes
    and checksums.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The data folder, as for :func:`load_emnist`.

    Returns
    -------
    list of dict
        One row per split and subset, in the order of
        :data:`~emnist_estimators.datasets.EMNIST_SPLITS`: ``split``,
        ``subset``, ``status`` (``"complete"``: images and labels, a CSV or a
        .mat; ``"partial"``: one of the images and labels files;
        ``"missing"``: none), ``files`` (paths found), ``missing`` (file names
        still needed) and ``cache_bytes`` (size of its ``.npy`` cache and
        sidecar, beside the source or in the user cache; 0 if none) and
        ``other_caches`` (caches in the user cache of a same-named file in
        another folder, which this folder's files do not use).

    Examples
    --------
    >>> import tempfile
    >>> from emnist_estimators.datasets import split_summary
    >>> rows = split_summary(tempfile.mkdtemp())
    >>> {r["status"] for r in rows}, rows[0]["missing"][0]
    ({'missing'}, 'emnist-balanced-train-images-idx3-ubyte.gz')
    """
    home = get_data_home(data_home)
    return [
        _summary_row(split, subset, home)
        for split in EMNIST_SPLITS
        for subset in SUBSETS
    ]


def _summary_row(split: str, subset: str, home: Path) -> dict:
    files = find_split_files(split, subset, home)
    present = present_idx(split, subset, home)
    if files is not None:
        status = "complete"
        found = [p for p in (files.images, files.labels) if p is not None]
        missing = []
    else:
        status = "partial" if present else "missing"
        found = present
        have = {p.name.removesuffix(".gz") for p in present}
        names = idx_names(split, subset)
        missing = [n for n in names if n.removesuffix(".gz") not in have]
    return {
        "split": split,
        "subset": subset,
        "status": status,
        "files": [str(p) for p in found],
        "missing": missing,
        "cache_bytes": _cache_bytes(files),
        "other_caches": _other_caches(files),
    }
