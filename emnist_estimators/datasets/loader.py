"""``load_emnist``: find, verify, cache and return one EMNIST split."""

from __future__ import annotations

import hashlib
import os
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ..exceptions import ChecksumError, DataFormatError, DataNotFoundError
from ._official import EMNIST_SPLITS, SUBSETS, expected_sha256, member_names
from .cache import load_cached_images, user_cache_dir
from .readers import (
    idx_header,
    read_emnist_csv,
    read_emnist_mat,
    read_idx,
    read_mapping,
    transpose_images,
)

__all__ = ["load_emnist", "get_data_home", "default_mapping", "find_split_files"]

_BALANCED = string.digits + string.ascii_uppercase + "abdefghnqrt"
_DEFAULT_CHARS = {
    "balanced": _BALANCED,
    "bymerge": _BALANCED,
    "byclass": string.digits + string.ascii_uppercase + string.ascii_lowercase,
    "digits": string.digits,
    "mnist": string.digits,
}


def get_data_home(data_home=None) -> Path:
    """Folder where EMNIST files are looked for and downloaded to.

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
    """The official label -> character mapping of a split, without any file.

    Examples
    --------
    >>> from emnist_estimators.datasets import default_mapping
    >>> m = default_mapping("balanced")
    >>> len(m), m[10], m[36]
    (47, 'A', 'a')
    >>> default_mapping("letters")[1]
    'A'
    """
    _check_split(split, "train")
    if split == "letters":  # labels 1..26, upper and lower case merged
        return {i + 1: c for i, c in enumerate(string.ascii_uppercase)}
    return dict(enumerate(_DEFAULT_CHARS[split]))


def _check_split(split: str, subset: str) -> None:
    if split not in EMNIST_SPLITS:
        raise ValueError(
            f"Unknown EMNIST split {split!r}. Expected one of {sorted(EMNIST_SPLITS)}."
        )
    if subset not in (*SUBSETS, "all"):
        raise ValueError(
            f"Unknown subset {subset!r}. Expected 'train', 'test' or 'all'."
        )


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


def find_split_files(split: str, subset: str, data_home=None) -> SplitFiles | None:
    """Locate local files for ``split``/``subset``: IDX (gz or raw), CSV or .mat."""
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path) -> bool:
    """Check an official file's sha256; True if checked, False if not official.

    Raises
    ------
    ChecksumError
        The file has an official name but different content.
    """
    want = expected_sha256(f"gzip/{path.name}") or expected_sha256(
        f"matlab/{path.name}"
    )
    if want is None:
        return False
    got = _sha256(path)
    if got != want:
        raise ChecksumError(
            f"{path}: sha256 {got} differs from the official {want}. The file is "
            "corrupt or not NIST's; delete it and download it again "
            "(emnist-estimators data download)."
        )
    return True


def _load_subset(split, subset, data_home, download, url, verify, progress, cache):
    files = find_split_files(split, subset, data_home)
    if files is None:
        home = get_data_home(data_home)
        if not download:
            names = member_names(split, subset)
            raise DataNotFoundError(
                f"No EMNIST {split}/{subset} files in {home} (looked for "
                f"{Path(names['images']).name} and {Path(names['labels']).name}, "
                "with or without .gz, also under gzip/; "
                f"emnist-{split}-{subset}.csv; emnist-{split}.mat). Download them "
                f"with load_emnist(..., download=True) or `emnist-estimators data "
                f"download --split {split}`, or set data_home / EMNIST_DATA to the "
                "folder that holds them."
            )
        from .download import download_split

        download_split(split, subset, home, url=url, progress=progress)
        files = find_split_files(split, subset, data_home)
        assert files is not None
    mapping = read_mapping(files.mapping) if files.mapping else None
    if files.kind == "idx":
        if verify:
            verify_file(files.labels)
        labels = read_idx(files.labels).astype(np.int64)
        n_images = _idx_count(files.images)
        if n_images != labels.shape[0]:
            raise DataFormatError(
                f"{files.images} holds {n_images:,} images but {files.labels} holds "
                f"{labels.shape[0]:,} labels; the two files do not belong together."
            )
        # The images are hashed once, when their cache is built; a fresh cache
        # was made from a verified file.
        images = load_cached_images(
            files.images,
            use_cache=cache,
            before_build=verify_file if verify else None,
        )
    elif files.kind == "csv":
        X, labels = read_emnist_csv(files.images)
        images = transpose_images(X.reshape(-1, 28, 28))
    else:
        if verify:
            verify_file(files.images)
        mat = read_emnist_mat(files.images, subset)
        images = transpose_images(mat["images"].reshape(-1, 28, 28))
        labels = mat["labels"]
        mapping = mapping or mat["mapping"]
    if images.shape[1:] != (28, 28):
        raise DataFormatError(
            f"{files.images}: images have shape {images.shape[1:]}, EMNIST's are "
            "28x28."
        )
    official = EMNIST_SPLITS[split][SUBSETS.index(subset)]
    if len(labels) != official:
        raise DataFormatError(
            f"{files.images}: {len(labels):,} samples, but the official EMNIST "
            f"{split}/{subset} has {official:,}. The file is incomplete or belongs "
            "to another split; download it again."
        )
    return images, labels, mapping, files


def _idx_count(path: Path) -> int:
    shape, _ = idx_header(path)
    return shape[0]


def load_emnist(
    split: str = "balanced",
    subset: str = "train",
    *,
    data_home=None,
    download: bool = True,
    return_X_y: bool = False,
    orientation: str = "upright",
    as_characters: bool = False,
    verify: bool = True,
    cache: bool = True,
    url: str | None = None,
    progress: bool = True,
):
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
    sizes. The first load caches the images as an upright uint8 ``.npy``;
    later loads memory-map it.

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
        Check official files against their sha256 before use.
    cache : bool, default=True
        Use (and create) the memory-mapped ``.npy`` cache.
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
    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    ValueError
        Unknown split, subset or orientation.
    DataNotFoundError
        Files missing and ``download=False``.
    DataFormatError, ChecksumError
        Corrupt, truncated or mismatched files.

    Examples
    --------
    >>> from emnist_estimators import load_emnist
    >>> X, y = load_emnist("mnist", "test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype  # doctest: +SKIP
    ((10000, 784), dtype('uint8'))
    """
    _check_split(split, subset)
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


def data_info(data_home=None, *, checksums: bool = False) -> list[dict]:
    """Describe the EMNIST files and caches in ``data_home``.

    Returns
    -------
    list of dict
        One row per file: ``path``, ``kind`` (idx, csv, mat, mapping, cache),
        ``size`` in bytes and ``sha256_ok`` (True/False for official files when
        ``checksums`` is True, else None).
    """

    home = get_data_home(data_home)
    rows = []
    folders = [home, home / "gzip", home / "matlab", user_cache_dir() / "npy"]
    seen = set()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*") if folder.name == "npy" else folder.iterdir()):
            name = path.name
            if not path.is_file() or name.startswith(".") or path in seen:
                continue
            seen.add(path)
            if name.endswith(".npy"):
                kind = "cache"
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
            if checksums and kind != "cache":
                want = expected_sha256(f"gzip/{name}") or expected_sha256(
                    f"matlab/{name}"
                )
                ok = None if want is None else _sha256(path) == want
            rows.append(
                {"path": str(path), "kind": kind, "size": path.stat().st_size, "sha256_ok": ok}
            )
    return rows
