"""Readers for the formats EMNIST is published in: IDX, CSV, MATLAB and mapping.

All readers return uint8 pixels exactly as stored (EMNIST's transposed
orientation included) and never build a float copy of the data. Orientation is
fixed later, by :func:`emnist_estimators.datasets.load_emnist` or
:class:`emnist_estimators.PixelScaler`.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import queue
import struct
import threading
import types
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from ..exceptions import DataFormatError

__all__ = [
    "read_idx",
    "write_idx",
    "read_emnist_csv",
    "read_emnist_mat",
    "read_mapping",
    "transpose_images",
]


class _Hasher(Protocol):
    """What ``raw_hash`` must offer: a hashlib object's ``update``."""

    def update(self, data: bytes, /) -> None: ...


# IDX type codes (http://yann.lecun.com/exdb/mnist/); EMNIST only uses 0x08.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
_CHUNK = 1 << 22  # 4 MiB: big enough to be fast, small enough to stay lean
# Deflate expands its input at most about 1032-fold, so a gzip file of n bytes
# cannot hold more than 1032 * n bytes of data, whatever its header claims.
_MAX_DEFLATE_RATIO = 1032


_zlib: types.ModuleType
try:  # ISA-L inflates gzip ~1.9x faster than zlib (results/bench_data.md)
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - the pure zlib path is tested too
    _zlib = zlib


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _corrupt(path: Path, exc: Exception) -> DataFormatError:
    return DataFormatError(
        f"{path}: corrupt or truncated gzip data ({exc}). "
        "Delete the file and download it again."
    )


def _decompressed_chunks(path: Path, *, inflate=None, raw_hash=None):
    """Yield the decompressed bytes of a gzip (or raw) file, chunk by chunk.

    Uses a bare ``decompressobj`` instead of ``gzip.GzipFile``: the same
    checks (CRC32 and length in each member's trailer, multi-member files)
    with one copy less, and ISA-L's faster inflate when it is installed. No
    chunk is larger than ``_CHUNK``, whatever the compression ratio: a small
    file that inflates to gigabytes never takes more than a few MiB at once.
    ``raw_hash`` (a hashlib object), if given, is fed the file's bytes as read.
    """
    inflate = inflate or _zlib
    with open(path, "rb") as fh:
        head = fh.read(2)
        fh.seek(0)
        if head != b"\x1f\x8b":
            while chunk := fh.read(_CHUNK):
                if raw_hash is not None:
                    raw_hash.update(chunk)
                yield chunk
            return
        d, fed = inflate.decompressobj(31), False
        try:
            while data := fh.read(_CHUNK):
                if raw_hash is not None:
                    raw_hash.update(data)
                while True:
                    out = d.decompress(data, _CHUNK)
                    fed = True
                    if out:
                        yield out
                    if d.eof:  # end of a gzip member: another may follow
                        data = d.unused_data
                        d, fed = inflate.decompressobj(31), False
                        if not data:
                            break
                        continue
                    data = d.unconsumed_tail
                    # a full chunk may leave output pending inside zlib even
                    # when all the input was taken: ask again until it is drained
                    if not data and len(out) < _CHUNK:
                        break
        except inflate.error as exc:
            raise _corrupt(path, exc) from exc
        if fed and not d.eof:
            raise _corrupt(path, EOFError("the compressed stream ends early"))


def read_idx(
    path: str | os.PathLike[str],
    *,
    out: np.ndarray | None = None,
    transpose: bool = False,
) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a numpy array.

    IDX is the format of MNIST and EMNIST: a big-endian header (magic number
    2051 for images ``(n, rows, cols)``, 2049 for labels ``(n,)``) then the raw
    values. Compression is detected from the file's first bytes, not its name.

    Parameters
    ----------
    path : str or path-like
        The file, e.g. ``emnist-balanced-train-images-idx3-ubyte.gz``.
    out : ndarray, default=None
        Preallocated array (for example a ``numpy.lib.format.open_memmap``) of
        the file's shape and dtype to read into; avoids a second copy.
    transpose : bool, default=False
        Transpose each image while reading (EMNIST's stored orientation to
        upright) at no extra cost in memory.

    Returns
    -------
    ndarray
        Values in native byte order; uint8 for every EMNIST file.

    Raises
    ------
    DataFormatError
        Wrong magic number, a zero image dimension, a file shorter or longer
        than its header says, or corrupt gzip. A header is checked against the
        file's real size before anything is allocated, so one that claims
        more data than the file holds costs no memory.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from emnist_estimators.datasets import read_idx, write_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "x-idx3-ubyte.gz")
    >>> write_idx(path, np.arange(8, dtype=np.uint8).reshape(2, 2, 2))
    >>> read_idx(path).shape
    (2, 2, 2)
    >>> read_idx(path, transpose=True)[1].tolist()
    [[4, 6], [5, 7]]
    """
    path = Path(path)
    shape, dtype = idx_header(path)
    dtype = dtype.newbyteorder("=")
    if transpose and (len(shape) != 3 or shape[1] != shape[2]):
        raise ValueError(f"{path}: transpose needs square images; it holds {shape}.")
    if out is not None and (out.shape != shape or out.dtype != dtype):
        raise ValueError(
            f"out has shape {out.shape} and dtype {out.dtype}; {path} holds "
            f"{shape} of {dtype}"
        )
    return read_idx_data(path, shape, dtype, transpose=transpose, out=out)


def read_idx_data(path, shape, dtype, *, transpose, out=None, raw_hash=None):
    """Read the data of an IDX file whose header said ``shape`` and ``dtype``.

    Allocates the whole array up front only when the file vouches for the
    header's size (see ``_check_idx_size``); otherwise it keeps just the blocks
    the stream really yields, so a header that lies about its size cannot
    cost more memory than the data actually present.

    Parameters
    ----------
    path : path-like
        The IDX file (gzip or raw).
    shape : tuple of int
        The shape its header declares.
    dtype : numpy.dtype
        The dtype its header declares.
    transpose : bool
        Transpose each image (EMNIST's stored orientation to upright).
    out : ndarray, default=None
        Where to write the data (e.g. a cache's memmap).
    raw_hash : hashlib object, default=None
        Updated with the file's decompressed payload.

    Returns
    -------
    ndarray
        The data, of ``shape`` and ``dtype``.
    """
    backed = _check_idx_size(path, shape, dtype)
    blocks = _idx_blocks(path, shape, dtype, transpose=transpose, raw_hash=raw_hash)
    if out is None and not backed:
        parts = list(blocks)
        return np.concatenate(parts) if parts else np.empty(shape, dtype)
    if out is None:
        out = np.empty(shape, dtype=dtype)
    pos = 0
    for block in blocks:
        out[pos : pos + len(block)] = block
        pos += len(block)
    return out


def _prefetch(iterator, depth: int = 2):
    """Run ``iterator`` in a background thread, ``depth`` items ahead.

    Inflating (zlib/ISA-L) and numpy copies release the GIL, so decompressing
    the next chunk overlaps with transposing and writing the current one.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce():
        try:
            for item in iterator:
                if stop.is_set():
                    return
                items.put(item)
            items.put(done)
        except BaseException as exc:  # hand the error to the consumer
            items.put(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                items.get_nowait()
            thread.join(timeout=0.01)


def _idx_layout(shape, dtype) -> tuple[int, int, int]:
    """``(header, record, data)`` sizes in bytes of an IDX array, as exact ints.

    Python integers, not numpy's int64: four 32-bit dimensions can overflow it.
    """
    record = np.dtype(dtype).itemsize * math.prod(shape[1:])
    return 4 + 4 * len(shape), record, record * shape[0]


def _check_idx_size(path, shape, dtype) -> bool:
    """Check an IDX header against the real size of its file, before reading.

    Parameters
    ----------
    path : path-like
        The IDX file (raw or gzip).
    shape, dtype
        What its header announces (see :func:`idx_header`).

    Returns
    -------
    bool
        True when the file vouches for the announced size: a raw file of
        exactly that size, or a gzip file whose trailer (ISIZE, the
        uncompressed size modulo 2**32) agrees and whose size could hold that
        much data. False for other gzip files (several members, or a header
        that claims more than the file can hold): readers must then not
        allocate ahead of the data actually decompressed.

    Raises
    ------
    DataFormatError
        A raw file shorter or longer than its header says.
    """
    path = Path(path)
    header, _, data = _idx_layout(shape, dtype)
    want = header + data
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if fh.read(2) != b"\x1f\x8b":
            if size != want:
                problem = "is truncated" if size < want else "has unexpected bytes"
                raise DataFormatError(
                    f"{path} {problem}: its IDX header announces {shape} of "
                    f"{np.dtype(dtype).name}, {want:,} bytes with the header, but "
                    f"the file has {size:,} bytes. The file is not a valid IDX "
                    "file; download it again."
                )
            return True
        if size < 18:  # smaller than an empty gzip member: the stream check fails
            return False
        fh.seek(-4, os.SEEK_END)
        isize = int.from_bytes(fh.read(4), "little")
    return want < 2**32 and isize == want and want <= size * _MAX_DEFLATE_RATIO


def iter_idx_blocks(
    path: str | os.PathLike[str],
    shape: tuple[int, ...],
    dtype: np.dtype,
    *,
    transpose: bool,
    raw_hash: _Hasher | None = None,
) -> Iterator[np.ndarray]:
    """Iterate over the records of an IDX file as native-order arrays, by block.

    The header is checked against the file's size first (see
    ``_check_idx_size``); blocks are at most a few MiB, so memory stays
    bounded whatever the header claims.

    Parameters
    ----------
    path : str or path-like
        The IDX file, raw or gzip.
    shape : tuple of int
        The array shape its header announces (see :func:`idx_header`).
    dtype : numpy.dtype
        The element type its header announces.
    transpose : bool
        Transpose each image (EMNIST's files store them transposed).
    raw_hash : hashlib hash object, default=None
        If given, fed the file's bytes (compressed, as stored) as they are read.

    Returns
    -------
    iterator of ndarray
        Contiguous blocks of whole records, of shape ``(k, *shape[1:])``; the
        file is read lazily as the iterator is consumed.

    Raises
    ------
    DataFormatError
        Truncated data, trailing bytes or corrupt gzip.
    """
    _check_idx_size(path, shape, dtype)
    return _idx_blocks(path, shape, dtype, transpose=transpose, raw_hash=raw_hash)


def _idx_blocks(path, shape, dtype, *, transpose: bool, raw_hash=None):
    path = Path(path)
    itemsize = dtype.itemsize
    skip, record, total = _idx_layout(shape, dtype)
    pos, carry = 0, b""
    chunks = _decompressed_chunks(path, raw_hash=raw_hash)
    for chunk in _prefetch(chunks):
        if skip:
            chunk, skip = chunk[skip:], max(0, skip - len(chunk))
        if carry:
            chunk, carry = carry + chunk, b""
        usable = min(len(chunk) - len(chunk) % record, total - pos)
        if pos + usable == total and usable < len(chunk):
            raise DataFormatError(
                f"{path}: unexpected bytes after the {shape} array the header "
                f"announces ({total:,} bytes of data after the header, the file "
                "holds more); the file is not a valid IDX file. Download it again."
            )
        carry = chunk[usable:]
        pos += usable
        if not usable:
            continue
        block = np.frombuffer(chunk, dtype.newbyteorder(">"), count=usable // itemsize)
        block = block.reshape(-1, *shape[1:])
        if transpose:
            block = block.transpose(0, 2, 1)
        yield np.ascontiguousarray(block, dtype=dtype)
    if pos != total or carry:
        raise DataFormatError(
            f"{path}: file is truncated: expected {total:,} bytes of data "
            f"after the header, got {pos + len(carry):,}. Download the file again."
        )


def idx_header(path: str | os.PathLike[str]) -> tuple[tuple[int, ...], np.dtype]:
    """Return ``(shape, dtype)`` from an IDX file's header without reading data.

    Parameters
    ----------
    path : str or path-like
        The IDX file, raw or gzip.

    Returns
    -------
    shape : tuple of int
        The array's shape, e.g. ``(112800, 28, 28)``.
    dtype : numpy.dtype
        The element type, e.g. uint8.

    Raises
    ------
    DataFormatError
        Not an IDX file, a truncated header, or a zero image dimension.
    """
    path = Path(path)
    try:
        with _open_maybe_gzip(path) as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise DataFormatError(
                    f"{path}: not an IDX file (magic bytes {head!r}; an IDX file "
                    "starts with 0x00 0x00, then a type code and the number of "
                    "dimensions, e.g. 0x00000803 for images, 0x00000801 for labels)."
                )
            code, ndim = head[2], head[3]
            if code not in _IDX_DTYPES or not 1 <= ndim <= 4:
                raise DataFormatError(
                    f"{path}: unsupported IDX magic number "
                    f"{int.from_bytes(head, 'big')} (type 0x{code:02x}, {ndim} "
                    "dimensions)."
                )
            dims = fh.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise DataFormatError(f"{path}: IDX header is truncated.")
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataFormatError(
            f"{path}: corrupt or truncated gzip data ({exc})."
        ) from exc
    shape = tuple(int(d) for d in struct.unpack(f">{ndim}I", dims))
    if 0 in shape[1:]:
        raise DataFormatError(
            f"{path}: the IDX header announces records of shape {shape[1:]}, with "
            "a zero dimension; the header is corrupt. Download the file again."
        )
    return shape, _IDX_DTYPES[code]


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file; gzip-compressed when the name ends in .gz.

    The file is written to a temporary name and renamed into place, so an
    interrupted write never leaves a partial file.

    Parameters
    ----------
    path : str or path-like
        Destination.
    array : ndarray
        1 to 4 dimensions, of a type IDX supports (uint8 for EMNIST).
    """
    path = Path(path)
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None or not 1 <= array.ndim <= 4:
        raise ValueError(
            f"IDX cannot store an array of dtype {array.dtype} with {array.ndim} "
            "dimensions"
        )
    header = bytes([0, 0, code, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    data = np.ascontiguousarray(array, dtype=_IDX_DTYPES[code])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(tmp, "wb") as fh:
            fh.write(header)
            # an ndarray is a buffer: numpy declares __buffer__ for Python >= 3.12 only
            fh.write(memoryview(data.reshape(-1).view(np.uint8)))  # type: ignore[arg-type]
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_emnist_csv(
    path: str | os.PathLike[str], *, n_features: int = 784
) -> tuple[np.ndarray, np.ndarray]:
    """Read the common CSV export of EMNIST (``label,p0,...,p783``, no header).

    The file is parsed with pandas' C parser straight into uint8 columns, one
    chunk at a time, so memory stays close to the size of the uint8 result
    (the report's ``pd.read_csv`` + ``/ 255`` path needs 8x more as float64).

    Parameters
    ----------
    path : str or path-like
        Plain or gzip-compressed CSV (the Kaggle "crawford/emnist" files).
    n_features : int, default=784
        Pixels per row after the label.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype uint8
        Pixels, in the stored (transposed) orientation.
    y : ndarray of shape (n_samples,), dtype int64
        Labels.

    Raises
    ------
    DataFormatError
        An empty file, a header row, a wrong column count, non-integers or
        missing values, pixels outside 0..255 or negative labels.
    """
    import pandas as pd

    path = Path(path)
    fix = (
        "Expected rows 'label,p0,...,p783' of integers with no header line; if "
        "the file has a header, remove its first line."
    )
    X_parts, y_parts = [], []
    try:
        reader = pd.read_csv(
            path,
            header=None,
            dtype=np.int32,
            chunksize=20_000,
            engine="c",
            compression="infer",
        )
        for chunk in reader:
            X_part, y_part = _csv_chunk(path, chunk.to_numpy(), n_features)
            X_parts.append(X_part)
            y_parts.append(y_part)
    except pd.errors.EmptyDataError as exc:  # a ValueError too: test it first
        raise DataFormatError(f"{path}: the CSV file is empty. {fix}") from exc
    except (ValueError, TypeError, OverflowError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(
            f"{path}: not an EMNIST CSV export ({exc}). {fix}"
        ) from exc
    if not X_parts:
        raise DataFormatError(f"{path}: the CSV file has no rows. {fix}")
    return np.concatenate(X_parts), np.concatenate(y_parts)


def _csv_chunk(path: Path, values: np.ndarray, n_features: int):
    """Check one parsed chunk of a CSV export; return its uint8 pixels and labels."""
    if values.shape[1] != n_features + 1:
        raise DataFormatError(
            f"{path}: expected {n_features + 1} columns per row (label + "
            f"{n_features} pixels), found {values.shape[1]}."
        )
    pixels, labels = values[:, 1:], values[:, 0]
    if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
        raise DataFormatError(
            f"{path}: pixel values must lie in 0..255, found "
            f"{pixels.min()}..{pixels.max()}."
        )
    if labels.size and labels.min() < 0:
        raise DataFormatError(
            f"{path}: labels must be non-negative integers, found {labels.min()} "
            "in the first column."
        )
    return pixels.astype(np.uint8), labels.astype(np.int64)


def read_emnist_mat(path: str | os.PathLike[str], subset: str = "train") -> dict:
    """Read one subset of a MATLAB file from NIST's ``matlab.zip``.

    Each ``emnist-<split>.mat`` holds a struct ``dataset`` with fields
    ``train``, ``test`` (each with ``images`` (n, 784) uint8 and ``labels``
    (n, 1)) and ``mapping`` (n_classes, 2 or 3). Image rows are in the same
    transposed orientation as the IDX files.

    Parameters
    ----------
    path : str or path-like
        The ``.mat`` file.
    subset : {'train', 'test'}, default='train'
        Which half of the split to read.

    Returns
    -------
    dict
        ``{"images": uint8 (n, 784), "labels": int64 (n,), "mapping": dict}``.

    Raises
    ------
    DataFormatError
        An empty, truncated, damaged or v7.3 (HDF5) file, a file without the
        EMNIST layout, or pixels/labels that are not whole numbers in range
        (NaN, fractions, empty cells).
    """
    path = Path(path)
    dataset, part = _load_mat_struct(path, subset)
    try:
        images = np.asarray(part["images"])
        labels = np.asarray(part["labels"]).reshape(-1)
        mapping_rows = np.asarray(dataset["mapping"])
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise DataFormatError(
            f"{path}: not an EMNIST MATLAB file (expected a struct 'dataset' with "
            f"'train', 'test' and 'mapping'; {exc!r}). Use the files of NIST's "
            "matlab.zip."
        ) from exc
    if images.ndim != 2 or images.shape[0] != labels.shape[0]:
        raise DataFormatError(
            f"{path}: {subset} images have shape {images.shape} but there are "
            f"{labels.shape[0]} labels."
        )
    return {
        "images": np.ascontiguousarray(_whole_numbers(path, images, "pixel", 255)),
        "labels": _whole_numbers(path, labels, "label", None),
        "mapping": _mat_mapping(path, mapping_rows),
    }


def _load_mat_struct(path: Path, subset: str):
    """The ``dataset`` struct of an EMNIST .mat file and its ``subset`` part."""
    import scipy.io
    from scipy.io.matlab import MatReadError

    # Opened here so that a missing or unreadable file stays an ordinary
    # OSError (scipy would raise one without errno, like its format errors).
    with open(path, "rb") as fh:
        try:
            mat = scipy.io.loadmat(fh, squeeze_me=False, struct_as_record=True)
        except NotImplementedError as exc:  # scipy's answer to MATLAB v7.3 (HDF5)
            raise DataFormatError(
                f"{path}: MATLAB v7.3 (HDF5) files are not supported ({exc}). Use "
                "the files of NIST's matlab.zip, or save the file with -v7."
            ) from exc
        except (
            MatReadError,
            OSError,
            ValueError,
            TypeError,
            IndexError,
            ZeroDivisionError,
            EOFError,
            OverflowError,
            zlib.error,
            struct.error,
        ) as exc:
            # what scipy raises on empty, truncated or damaged files
            raise _unreadable_mat(path, exc) from exc
    try:
        dataset = mat["dataset"][0, 0]
        return dataset, dataset[subset][0, 0]
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise DataFormatError(
            f"{path}: not an EMNIST MATLAB file (expected a struct 'dataset' with "
            f"'train', 'test' and 'mapping'; {exc!r}). Use the files of NIST's "
            "matlab.zip."
        ) from exc


def _unreadable_mat(path: Path, exc: Exception) -> DataFormatError:
    return DataFormatError(
        f"{path}: not a readable MATLAB file ({type(exc).__name__}: {exc}); it is "
        "empty, truncated or of another format. Download NIST's matlab.zip again."
    )


def _whole_numbers(path: Path, values: np.ndarray, what: str, high) -> np.ndarray:
    """``values`` as whole numbers in 0..``high`` (uint8 if ``high`` is 255).

    MATLAB files may hold doubles, cells or empty values: anything that is not
    a whole number in range (None, NaN, 2.5, text) is a :class:`DataFormatError`.
    """
    dtype = np.uint8 if high == 255 else np.int64
    if values.dtype == dtype:
        return values
    allowed = "0..255" if high == 255 else "non-negative"
    numbers = values
    if values.dtype.kind not in "iuf":  # cells, text, None: no float copy otherwise
        try:
            numbers = values.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise DataFormatError(
                f"{path}: {what} values must be {allowed} whole numbers, found "
                f"{values.dtype} data ({exc}). The file is not an EMNIST MATLAB file."
            ) from exc
    with np.errstate(invalid="ignore"):  # NaN compares False: flagged below
        bad = ~(numbers >= 0)
        if numbers.dtype.kind == "f":
            bad |= ~np.isfinite(numbers) | (numbers % 1 != 0)
        if high is not None:
            bad |= numbers > high
    if bad.any():
        value = values.reshape(-1)[np.argmax(bad.reshape(-1))]
        raise DataFormatError(
            f"{path}: {what} values must be {allowed} whole numbers, found "
            f"{value}. The file is corrupt or not an EMNIST MATLAB file."
        )
    return numbers.astype(dtype)


def _mat_mapping(path: Path, rows: np.ndarray) -> dict[int, str]:
    try:
        return {int(row[0]): chr(int(row[1])) for row in rows}
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise DataFormatError(
            f"{path}: the 'mapping' field must hold rows 'label ascii_code' ({exc})."
        ) from exc


def read_mapping(path: str | os.PathLike[str]) -> dict[int, str]:
    """Read an ``emnist-<split>-mapping.txt`` file.

    Each line is ``label ascii_code``; the letters split has ``label upper
    lower`` and the class is named by its capital.

    Parameters
    ----------
    path : str or path-like
        The mapping file.

    Returns
    -------
    dict
        ``{label: character}``, e.g. ``{0: '0', ..., 10: 'A', 36: 'a'}``.

    Examples
    --------
    >>> import tempfile, os
    >>> from emnist_estimators.datasets import read_mapping
    >>> path = os.path.join(tempfile.mkdtemp(), "m.txt")
    >>> _ = open(path, "w").write("0 48\\n1 65\\n")
    >>> read_mapping(path)
    {0: '0', 1: 'A'}
    """
    path = Path(path)
    mapping: dict[int, str] = {}
    with open(path, encoding="ascii", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                label, codes = int(fields[0]), [int(f) for f in fields[1:]]
                if not codes or not all(0 < c < 0x110000 for c in codes):
                    raise ValueError("no character code")
            except ValueError as exc:
                raise DataFormatError(
                    f"{path}, line {lineno}: expected 'label ascii_code', got "
                    f"{line.strip()!r}."
                ) from exc
            mapping[label] = chr(codes[0])
    if not mapping:
        raise DataFormatError(f"{path}: the mapping file is empty.")
    return mapping


def transpose_images(images: np.ndarray, *, chunk: int = 8192) -> np.ndarray:
    """Transpose each 28x28 image in place, a chunk at a time.

    EMNIST stores images transposed; this makes them upright (and back). Works
    on in-memory arrays and writable memory maps with only ``chunk`` images of
    extra memory.

    Parameters
    ----------
    images : ndarray of shape (n, h, h) or (n, h*h), uint8
        Square images, modified in place.
    chunk : int, default=8192
        Images transposed at a time: the extra memory used.

    Returns
    -------
    ndarray
        ``images`` itself.
    """
    n = images.shape[0]
    side = int(round(np.sqrt(np.prod(images.shape[1:]))))
    cube = images.reshape(n, side, side)
    for start in range(0, n, chunk):
        block = cube[start : start + chunk]
        block[...] = block.transpose(0, 2, 1).copy()
    return images
