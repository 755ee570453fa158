"""``load_emnist``: find, verify, cache and return one EMNIST split."""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import re
import stat
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from sklearn.utils import Bunch

from ..exceptions import (
    ChecksumError,
    DataFormatError,
    DataNotFoundError,
    DownloadError,
)
from ._official import EMNIST_SPLITS, SUBSETS, expected_sha256, member_names
from .cache import (
    cache_files,
    load_cached_images,
    user_cache_dir,
)
from .readers import (
    idx_header,
    read_emnist_csv,
    read_emnist_mat,
    read_idx,
    read_mapping,
    transpose_images,
)

__all__ = [
    "clean_cache",
    "default_mapping",
    "find_split_files",
    "get_data_home",
    "how_to_get",
    "load_emnist",
]

_BALANCED = string.digits + string.ascii_uppercase + "abdefghnqrt"
_DEFAULT_CHARS = {
    "balanced": _BALANCED,
    "bymerge": _BALANCED,
    "byclass": string.digits + string.ascii_uppercase + string.ascii_lowercase,
    "digits": string.digits,
    "mnist": string.digits,
}


def get_data_home(data_home: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder where EMNIST files are looked for and downloaded to.

    Parameters
    ----------
    data_home : str or path-like, default=None
        An explicit folder, which wins.

    Returns
    -------
    Path
        ``data_home`` if given, else ``$EMNIST_DATA``, else the user cache
        (``~/.cache/emnist-estimators``, or ``$EMNIST_ESTIMATORS_CACHE``).
    """
    if data_home is not None:
        return Path(data_home).expanduser()
    env = os.environ.get("EMNIST_DATA")
    if env:
        return Path(env).expanduser()
    return user_cache_dir()


def default_mapping(split: str) -> dict[int, str]:
    """Return the official label -> character mapping of a split, without any file.

    Parameters
    ----------
    split : {'balanced', 'byclass', 'bymerge', 'digits', 'letters', 'mnist'}
        Which EMNIST split.

    Returns
    -------
    dict of int to str
        Each label's character, e.g. ``{0: '0', ..., 10: 'A', ...}``.

    Raises
    ------
    ValueError
        Unknown split.

    Examples
    --------
    >>> from emnist_estimators.datasets import default_mapping
    >>> m = default_mapping("balanced")
    >>> len(m), m[10], m[36]
    (47, 'A', 'a')
    >>> default_mapping("letters")[1]
    'A'
    """
    split, _ = _check_split(split, "train")
    if split == "letters":  # labels 1..26, upper and lower case merged
        return {i + 1: c for i, c in enumerate(string.ascii_uppercase)}
    return dict(enumerate(_DEFAULT_CHARS[split]))


def _check_split(split: str, subset: str) -> tuple[str, str]:
    """The split and subset names in lower case; unknown ones raise ValueError."""
    name, part = str(split).lower(), str(subset).lower()
    if name not in EMNIST_SPLITS:
        raise ValueError(
            f"Unknown EMNIST split {split!r}. {_did_you_mean(name, EMNIST_SPLITS)}"
            f"Expected one of {sorted(EMNIST_SPLITS)} (any case)."
        )
    if part not in (*SUBSETS, "all"):
        raise ValueError(
            f"Unknown subset {subset!r}. {_did_you_mean(part, (*SUBSETS, 'all'))}"
            "Expected 'train', 'test' or 'all'."
        )
    return name, part


def _did_you_mean(name: str, names: Iterable[str]) -> str:
    """``"Did you mean 'x'? "`` naming the closest of ``names``, or ``""``."""
    close = difflib.get_close_matches(name, sorted(names), n=1)
    return f"Did you mean {close[0]!r}? " if close else ""


@dataclass
class SplitFiles:
    """The files found on disk for one split/subset."""

    kind: str  # "idx", "csv" or "mat"
    images: Path
    labels: Path | None
    mapping: Path | None


def _candidates(home: Path, name: str) -> list[Path]:
    return [home / name, home / "gzip" / name, home / "matlab" / name]


def _first(paths: list[Path]) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def find_split_files(
    split: str, subset: str, data_home: str | os.PathLike[str] | None = None
) -> SplitFiles | None:
    """Locate local files for ``split``/``subset``: IDX (gz or raw), CSV or .mat.

    Parameters
    ----------
    split : str
        EMNIST split, e.g. ``"balanced"``.
    subset : {'train', 'test'}
        Which half of the split.
    data_home : str or path-like, default=None
        Folder to look in (and in its ``gzip/`` and ``matlab/`` subfolders);
        default as :func:`get_data_home`.

    Returns
    -------
    SplitFiles or None
        The files found, IDX preferred over CSV over .mat; None if none are.
    """
    home = get_data_home(data_home)
    names = member_names(split, subset)
    mapping = _first(_candidates(home, Path(names["mapping"]).name))
    img_name, lbl_name = Path(names["images"]).name, Path(names["labels"]).name
    images = _first(
        _candidates(home, img_name) + _candidates(home, img_name.removesuffix(".gz"))
    )
    labels = _first(
        _candidates(home, lbl_name) + _candidates(home, lbl_name.removesuffix(".gz"))
    )
    if images and labels:
        return SplitFiles("idx", images, labels, mapping)
    csv = _first(
        _candidates(home, f"emnist-{split}-{subset}.csv")
        + _candidates(home, f"emnist-{split}-{subset}.csv.gz")
    )
    if csv:
        return SplitFiles("csv", csv, None, mapping)
    mat = _first(_candidates(home, f"emnist-{split}.mat"))
    if mat:
        return SplitFiles("mat", mat, None, mapping)
    return None


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks.

    Parameters
    ----------
    path : pathlib.Path
        The file.

    Returns
    -------
    str
        Its hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def official_sha256(path: Path) -> str | None:
    """The official sha256 of a file named as in NIST's archive, or None.

    Parameters
    ----------
    path : pathlib.Path
        The file; only its name counts.

    Returns
    -------
    str or None
        The hex digest, None for a name not in the archive.
    """
    return expected_sha256(f"gzip/{path.name}") or expected_sha256(
        f"matlab/{path.name}"
    )


def _checked_sha256(path: Path) -> str:
    """sha256 of ``path``, checked against the official one when it has one.

    Raises
    ------
    ChecksumError
        The file has an official name but different content.
    """
    got, want = file_sha256(path), official_sha256(path)
    if want is not None and got != want:
        raise ChecksumError(
            f"{path}: sha256 {got} differs from the official {want}. The file is "
            "corrupt or not NIST's; delete it and download it again "
            "(emnist-estimators data download)."
        )
    return got


def verify_file(path: Path) -> bool:
    """Check an official file's sha256 against NIST's published one.

    Parameters
    ----------
    path : Path
        The file; whether it is official is decided by its name.

    Returns
    -------
    bool
        True if the file was checked, False if its name is not official.

    Raises
    ------
    ChecksumError
        The file has an official name but different content.
    """
    if official_sha256(path) is None:
        return False
    _checked_sha256(path)
    return True


def _blocking_entries(split: str, subset: str, home: Path) -> list[Path]:
    """Paths named like this split's files that are not regular files.

    A folder, or a symlink that is broken or loops, where a data file belongs
    would be skipped silently and then clash with the download.
    """
    names = member_names(split, subset)
    wanted = [Path(names["images"]).name, Path(names["labels"]).name]
    wanted += [name.removesuffix(".gz") for name in wanted]
    paths = [p for name in wanted for p in _candidates(home, name)]
    return [p for p in paths if os.path.lexists(p) and not p.is_file()]


def _refuse_blocking_entries(split: str, subset: str, home: Path) -> None:
    blocking = _blocking_entries(split, subset, home)
    if blocking:
        what = ", ".join(
            f"{p} ({'a folder' if p.is_dir() else 'a broken or looping symlink'})"
            for p in blocking
        )
        raise DataNotFoundError(
            f"No EMNIST {split}/{subset} data files in {home}: {what} stands where "
            "a data file belongs. Move or delete it, then load again."
        )


def idx_names(split: str, subset: str) -> tuple[str, str]:
    """The official images and labels file names (``.gz``) of a split/subset.

    Parameters
    ----------
    split, subset : str
        E.g. 'balanced' and 'test'.

    Returns
    -------
    (str, str)
        The images and labels file names.
    """
    names = member_names(split, subset)
    return Path(names["images"]).name, Path(names["labels"]).name


def present_idx(split: str, subset: str, home: Path) -> list[Path]:
    """The images and labels files (gz or raw) of a split/subset found in ``home``.

    Parameters
    ----------
    split, subset : str
        E.g. 'balanced' and 'test'.
    home : pathlib.Path
        The data folder.

    Returns
    -------
    list of pathlib.Path
        The files found (none, one or both).
    """
    found = []
    for name in idx_names(split, subset):
        path = _first(_candidates(home, name) + _candidates(home, name[:-3]))
        if path is not None:
            found.append(path)
    return found


def how_to_get(
    split: str = "balanced",
    subset: str = "all",
    data_home: str | os.PathLike[str] | None = None,
) -> str:
    """Return a few lines that say how to get the files of an EMNIST split.

    It names the command that downloads them, the options for a mirror
    (``--url``, ``url=``, ``$EMNIST_MIRROR_URL``) and for files kept
    elsewhere (``--data-home``, ``data_home=``, ``$EMNIST_DATA``).

    Parameters
    ----------
    split : str, default='balanced'
        EMNIST split, e.g. ``"balanced"``.
    subset : {'train', 'test', 'all'}, default='all'
        Which half of the split, or both.
    data_home : str or path-like, default=None
        The folder the files belong in (see :func:`get_data_home`).

    Returns
    -------
    str
        The advice, one line each: the download command, the mirror option,
        files you already have; ending with a full stop.

    Examples
    --------
    >>> from emnist_estimators.datasets import how_to_get
    >>> "--url" in how_to_get("mnist", "train", "/data")
    True
    """
    return "\n".join(_advice(split, subset, data_home))


def _advice(
    split: str,
    subset: str,
    data_home: str | os.PathLike[str] | None,
    mirror: bool = True,
) -> list[str]:
    """The lines of :func:`how_to_get`; ``mirror=False`` when already said."""
    home = get_data_home(data_home)
    command = f"emnist-estimators data download --split {split}"
    command += "" if subset == "all" else f" --subset {subset}"
    if _read_only(home):  # the download cannot go there: say so
        get = f"Get them into a writable folder ({home} is read-only): `{command} "
        get += "--data-home DIR`"
        yours = ""
    else:
        option = "" if data_home is None else f" --data-home {home}"
        get = f"Get them: `{command}{option}`"
        yours = f"copy them into {home}, or "
    if not mirror:  # the error above names the mirror options
        get = get[:-1] + " [--url URL]`"
    lines = [f"{get} (Python: load_emnist(..., download=True))."]
    if mirror:
        lines.append("From a mirror: add --url URL (url=..., or EMNIST_MIRROR_URL).")
    lines.append(
        f"Files you already have: {yours}point --data-home (data_home=...) or "
        "EMNIST_DATA at their folder."
    )
    return lines


def _read_only(folder: Path) -> bool:
    """True for an existing folder we may not write in (a missing one is made)."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return not (mode & stat.S_IWUSR and os.access(folder, os.W_OK))


def _what_is_missing(split: str, subset: str, home: Path) -> str:
    """``"the needed file names (found: ...)"`` for a message."""
    images, labels = idx_names(split, subset)
    present = present_idx(split, subset, home)
    found = f"; found only {', '.join(p.name for p in present)}" if present else ""
    return f"{images} and {labels} (.gz or not; or in gzip/){found}"


def _download(
    split: str,
    subset: str,
    data_home: str | os.PathLike[str] | None,
    url: str | None,
    progress: bool,
) -> None:
    """Download a split's files; a failure names the folder, files and options."""
    from .download import download_split

    home = get_data_home(data_home)
    try:
        download_split(split, subset, home, url=url, progress=progress)
    except DownloadError as exc:
        mirror = "EMNIST_MIRROR_URL" not in str(exc)  # else said once already
        lines = [
            f"EMNIST {split}/{subset} is not in {home}; it needs "
            f"{_what_is_missing(split, subset, home)}.",
            f"Downloading it failed: {exc}",
            *_advice(split, subset, data_home, mirror),
        ]
        raise DownloadError("\n".join(lines)) from exc


def _load_subset(
    split: str,
    subset: str,
    data_home: str | os.PathLike[str] | None,
    download: bool,
    url: str | None,
    verify: bool,
    progress: bool,
    cache: bool,
) -> tuple[np.ndarray, np.ndarray, Any, SplitFiles]:
    files = find_split_files(split, subset, data_home)
    if files is None:
        home = get_data_home(data_home)
        _refuse_blocking_entries(split, subset, home)
        if not download:
            raise DataNotFoundError(
                f"No EMNIST {split}/{subset} files in {home}.\nLooked for "
                f"{_what_is_missing(split, subset, home)}, or "
                f"emnist-{split}-{subset}.csv, or emnist-{split}.mat.\n"
                f"{how_to_get(split, subset, data_home)}"
            )
        _download(split, subset, data_home, url, progress)
        files = find_split_files(split, subset, data_home)
        if files is None:
            _refuse_blocking_entries(split, subset, home)
            raise DataNotFoundError(
                f"The EMNIST {split}/{subset} files are still missing from {home} "
                "after the download; check that the folder is writable and has "
                "space, then download again."
            )
    mapping = read_mapping(files.mapping) if files.mapping else None
    if files.kind == "idx":
        if verify:
            verify_file(cast(Path, files.labels))  # idx files always have labels
        labels = read_idx(cast(Path, files.labels)).astype(np.int64)
        n_images = _idx_count(files.images)
        if n_images != labels.shape[0]:
            raise DataFormatError(
                f"{files.images} holds {n_images:,} images but {files.labels} holds "
                f"{labels.shape[0]:,} labels; the two files do not belong together."
            )
        # With verify, the images are hashed on every load and the cache is
        # served only if it was built from exactly these bytes (see cache.py).
        images = load_cached_images(
            files.images,
            use_cache=cache,
            verify_source=_checked_sha256 if verify else None,
            expected_count=len(labels),
        )
    elif files.kind == "csv":
        X, labels = read_emnist_csv(files.images)
        images = transpose_images(_square(X, files.images))
    else:
        if verify:
            verify_file(files.images)
        mat = read_emnist_mat(files.images, subset)
        images = transpose_images(_square(mat["images"], files.images))
        labels = mat["labels"]
        mapping = mapping or mat["mapping"]
    if images.shape[1:] != (28, 28):
        raise DataFormatError(
            f"{files.images}: images have shape {images.shape[1:]}, EMNIST's are 28x28."
        )
    if len(images) != len(labels):  # never X and y of different lengths
        raise DataFormatError(
            f"{files.images}: {len(images):,} images but {len(labels):,} labels; "
            "the files do not belong together. Download them again."
        )
    official = EMNIST_SPLITS[split][SUBSETS.index(subset)]
    if len(labels) != official:
        raise DataFormatError(
            f"{files.images}: {len(labels):,} samples, but the official EMNIST "
            f"{split}/{subset} has {official:,}. The file is incomplete or belongs "
            "to another split; download it again."
        )
    return images, labels, mapping, files


def _square(rows: np.ndarray, path: Path) -> np.ndarray:
    """Rows of 784 pixels as (n, 28, 28) images, or a DataFormatError."""
    if rows.ndim != 2 or rows.shape[1] != 28 * 28:
        raise DataFormatError(
            f"{path}: images have {rows.shape[1:]} pixels per row, EMNIST's have "
            "784 (28x28). The file does not hold EMNIST images."
        )
    return rows.reshape(-1, 28, 28)


def _idx_count(path: Path) -> int:
    shape, _ = idx_header(path)
    return shape[0]


def load_emnist(
    split: str = "balanced",
    subset: str = "train",
    *,
    data_home: str | os.PathLike[str] | None = None,
    download: bool = True,
    return_X_y: bool = False,
    orientation: str = "upright",
    as_characters: bool = False,
    verify: bool = True,
    cache: bool = True,
    url: str | None = None,
    progress: bool = True,
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load an EMNIST split as uint8 pixels and integer (or character) labels.

    ==================  ==================================================
    Splits              balanced, byclass, bymerge, digits, letters, mnist
    Classes             47, 62, 47, 10, 26 (labels 1..26), 10
    Samples train       112,800; 697,932; 697,932; 240,000; 124,800; 60,000
    Samples test        18,800; 116,323; 116,323; 40,000; 20,800; 10,000
    Dimensionality      784 (28x28 grey images)
    Features            integers 0..255
    ==================  ==================================================

    Files are looked for in ``data_home`` (IDX ``.gz`` or raw, the CSV export
    ``emnist-<split>-<subset>.csv`` or NIST's ``emnist-<split>.mat``) and
    downloaded from NIST's official archive when missing and ``download`` is
    True. Official files are checked against their published sha256 and
    sizes. The first load caches the images as an upright uint8 ``.npy``
    beside the source, or in the user cache when that folder is read-only
    (logged at INFO level); later loads memory-map it, wherever it is, after
    checking that the cache still matches its source (size, modification
    time, shape; see :func:`emnist_estimators.datasets.clean_cache` to remove
    caches). When files are missing and cannot be downloaded, the error names
    the folder, the files needed and the options (see :func:`how_to_get`).

    Parameters
    ----------
    split : {'balanced', 'byclass', 'bymerge', 'digits', 'letters', 'mnist'}, \
default='balanced'
        Which EMNIST split.
    subset : {'train', 'test', 'all'}, default='train'
        'all' concatenates train then test (a copy in memory).
    data_home : str or path-like, default=None
        Folder with the files; default ``$EMNIST_DATA`` or
        ``~/.cache/emnist-estimators``.
    download : bool, default=True
        Download missing files. If False, raise :class:`DataNotFoundError`.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    orientation : {'upright', 'raw'}, default='upright'
        EMNIST stores images transposed; 'upright' fixes that, 'raw' keeps the
        stored orientation.
    as_characters : bool, default=False
        Return targets as characters ('A', '7', 'a') instead of integer labels.
    verify : bool, default=True
        Check official files against their sha256 before use, on every load.
        The images returned are then those of the verified bytes: a cache is
        served only if it was built from a file with that sha256 and its own
        content still has the sha256 recorded when it was written (about
        0.1 s for a split of 100,000 images); otherwise it is rebuilt.
    cache : bool, default=True
        Use (and create) the memory-mapped ``.npy`` cache. Without
        ``verify``, opening a cache costs a few system calls (well under a
        millisecond), whatever the split's size.
    url : str, default=None
        Archive URL for downloads; default ``$EMNIST_MIRROR_URL`` or NIST's.
    progress : bool, default=True
        Show download progress bars.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` uint8 ndarray of shape (n_samples, 784); ``images`` a view of
        shape (n_samples, 28, 28); ``target`` of shape (n_samples,);
        ``target_names`` ndarray of the class characters in label order;
        ``mapping`` dict label -> character; ``DESCR``; ``split``; ``subset``;
        ``files``.
    (data, target) : tuple of ndarray
        Returned instead of the Bunch if ``return_X_y`` is True.

    Raises
    ------
    ValueError
        Unknown split, subset or orientation.
    DataNotFoundError
        Files missing and ``download=False``.
    DownloadError
        Files missing and the download failed.
    DataFormatError, ChecksumError
        Corrupt, truncated or mismatched files.

    Examples
    --------
    >>> from emnist_estimators import load_emnist
    >>> X, y = load_emnist("mnist", "test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype  # doctest: +SKIP
    ((10000, 784), dtype('uint8'))
    """
    split, subset = _check_split(split, subset)
    if orientation not in ("upright", "raw"):
        raise ValueError(
            f"orientation must be 'upright' or 'raw', got {orientation!r}."
        )
    subsets = SUBSETS if subset == "all" else (subset,)
    parts = [
        _load_subset(s_, sub, data_home, download, url, verify, progress, cache)
        for s_, sub in ((split, sub) for sub in subsets)
    ]
    if len(parts) == 1:
        images, labels, mapping, files = parts[0]
        file_list = [files]
    else:
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        mapping = parts[0][2] or parts[1][2]
        file_list = [p[3] for p in parts]
    if orientation == "raw":
        images = transpose_images(np.array(images))
    mapping = mapping or default_mapping(split)
    unknown = np.setdiff1d(np.unique(labels), list(mapping))
    if unknown.size:
        raise DataFormatError(
            f"Labels {unknown.tolist()} of EMNIST {split} are not in its mapping "
            f"(labels {min(mapping)}..{max(mapping)})."
        )
    classes = sorted(mapping)
    target_names = np.array([mapping[c] for c in classes])
    if as_characters:
        lut = np.array([mapping.get(i, "") for i in range(max(classes) + 1)])
        target = lut[labels]
    else:
        target = labels
    data = images.reshape(len(images), 28 * 28)
    if return_X_y:
        return data, target
    n_train, n_test, n_classes = EMNIST_SPLITS[split]
    descr = (
        f"EMNIST {split} ({subset}): {len(target):,} images of 28x28 grey pixels "
        f"(uint8 0..255), {n_classes} classes: {''.join(target_names)}. "
        f"Official sizes: {n_train:,} train / {n_test:,} test. Orientation: "
        f"{orientation}. Source: NIST, Cohen et al. (2017), EMNIST: an extension "
        "of MNIST to handwritten letters, arXiv:1702.05373."
    )
    return Bunch(
        data=data,
        images=images,
        target=target,
        target_names=target_names,
        mapping=mapping,
        DESCR=descr,
        split=split,
        subset=subset,
        files=file_list,
    )


def _user_cache_folders() -> list[Path]:
    """The per-source folders of the user cache (``npy/<12 hex digits>``)."""
    root = user_cache_dir() / "npy"
    try:
        return sorted(
            p
            for p in root.iterdir()
            if p.is_dir() and re.fullmatch(r"[0-9a-f]{12}", p.name)
        )
    except OSError:
        return []


def _cache_folders(home: Path) -> list[Path]:
    return [home, home / "gzip", home / "matlab", *_user_cache_folders()]


def clean_cache(
    data_home: str | os.PathLike[str] | None = None, *, dry_run: bool = False
) -> list[Path]:
    """Delete the ``.npy`` caches this package made, and stale temporary files.

    Looks in the data folder (and its ``gzip/`` and ``matlab/`` subfolders)
    and in the user cache. Only files named like ours are touched: caches
    ``<source>.v<N>.upright.npy`` of any version, their ``.json`` sidecars,
    temporary files of cache writers and partial downloads of processes that
    no longer run. Data files, a
    live writer's temporary file and anything else are left alone. Caches are
    rebuilt by the next :func:`load_emnist`.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The data folder (see :func:`get_data_home`).
    dry_run : bool, default=False
        Only list what would be deleted.

    Returns
    -------
    list of Path
        The files deleted (or, with ``dry_run``, that would be).

    Examples
    --------
    An empty data folder, with the user cache pointed at an empty folder too
    (the default user cache may hold caches of other data folders):

    >>> import os, tempfile
    >>> from unittest import mock
    >>> from emnist_estimators.datasets import clean_cache
    >>> empty = {"EMNIST_ESTIMATORS_CACHE": tempfile.mkdtemp()}
    >>> with mock.patch.dict(os.environ, empty):
    ...     clean_cache(tempfile.mkdtemp(), dry_run=True)
    []
    """
    from .download import remove_stale_parts

    folders = _cache_folders(get_data_home(data_home))
    found = sorted(
        {p for folder in folders for p in cache_files(folder)}
        # partial downloads of dead processes (``.<name>.<pid>@<host>.part``)
        | {p for folder in folders for p in remove_stale_parts(folder, dry_run=True)}
    )
    if dry_run:
        return found
    removed = []
    for path in found:
        try:
            path.unlink()
        except FileNotFoundError:  # removed meanwhile by another process
            continue
        removed.append(path)
    for folder in _user_cache_folders():
        with contextlib.suppress(OSError):  # not empty: something else lives there
            folder.rmdir()
    return removed
