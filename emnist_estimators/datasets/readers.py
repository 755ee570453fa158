"""Readers for the formats EMNIST is published in: IDX, CSV, MATLAB and mapping.

All readers return uint8 pixels exactly as stored (EMNIST's transposed
orientation included) and never build a float copy of the data. Orientation is
fixed later, by :func:`emnist_estimators.datasets.load_emnist` or
:class:`emnist_estimators.PixelScaler`.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import queue
import struct
import threading
import zlib
from pathlib import Path

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

# IDX type codes (http://yann.lecun.com/exdb/mnist/); EMNIST only uses 0x08.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
_CHUNK = 1 << 22  # 4 MiB: big enough to be fast, small enough to stay lean


try:  # ISA-L inflates gzip about 2.3x faster than zlib (benchmarks/bench_data)
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


def _decompressed_chunks(path: Path, *, inflate=None):
    """Yield the decompressed bytes of a gzip (or raw) file, chunk by chunk.

    Uses a bare ``decompressobj`` instead of ``gzip.GzipFile``: the same
    checks (CRC32 and length in each member's trailer, multi-member files)
    with one copy less, and ISA-L's faster inflate when it is installed.
    """
    inflate = inflate or _zlib
    with open(path, "rb") as fh:
        head = fh.read(2)
        fh.seek(0)
        if head != b"\x1f\x8b":
            while chunk := fh.read(_CHUNK):
                yield chunk
            return
        d, fed = inflate.decompressobj(31), False
        try:
            while data := fh.read(_CHUNK):
                while data:
                    out = d.decompress(data)
                    fed = True
                    if out:
                        yield out
                    if d.eof:  # end of a gzip member: another may follow
                        data = d.unused_data
                        d, fed = inflate.decompressobj(31), False
                    else:
                        data = b""
        except inflate.error as exc:
            raise _corrupt(path, exc) from exc
        if fed and not d.eof:
            raise _corrupt(path, EOFError("the compressed stream ends early"))


def read_idx(
    path, *, out: np.ndarray | None = None, transpose: bool = False
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
        Wrong magic number, truncated data, trailing bytes or corrupt gzip.

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
    if out is None:
        out = np.empty(shape, dtype=dtype)
    elif out.shape != shape or out.dtype != dtype:
        raise ValueError(
            f"out has shape {out.shape} and dtype {out.dtype}; {path} holds "
            f"{shape} of {dtype}"
        )
    pos = 0
    for block in iter_idx_blocks(path, shape, dtype, transpose=transpose):
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


def iter_idx_blocks(path, shape, dtype, *, transpose: bool):
    """Yield the records of an IDX file as native-order arrays, block by block.

    With ``transpose``, each block holds whole images, transposed, contiguous.
    Raises :class:`DataFormatError` on truncated data or trailing bytes.
    """
    path = Path(path)
    itemsize = dtype.itemsize
    record = int(np.prod(shape[1:], dtype=np.int64)) * itemsize if len(shape) > 1 else itemsize
    total = int(np.prod(shape, dtype=np.int64)) * itemsize
    pos, skip, carry = 0, 4 + 4 * len(shape), b""
    for chunk in _prefetch(_decompressed_chunks(path)):
        if skip:
            chunk, skip = chunk[skip:], max(0, skip - len(chunk))
        if carry:
            chunk, carry = carry + chunk, b""
        usable = min(len(chunk) - len(chunk) % record, total - pos)
        if pos + usable == total and usable < len(chunk):
            raise DataFormatError(
                f"{path}: unexpected bytes after the {shape} array the header "
                "announces; the file is not a valid IDX file."
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


def idx_header(path) -> tuple[tuple[int, ...], np.dtype]:
    """Return ``(shape, dtype)`` from an IDX file's header without reading data."""
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
    shape = struct.unpack(f">{ndim}I", dims)
    return tuple(int(d) for d in shape), _IDX_DTYPES[code]


def write_idx(path, array: np.ndarray) -> None:
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
            fh.write(memoryview(data.reshape(-1).view(np.uint8)))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_emnist_csv(path, *, n_features: int = 784) -> tuple[np.ndarray, np.ndarray]:
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
        Header row, wrong column count, non-integers or values outside 0..255.
    """
    import pandas as pd

    path = Path(path)
    ncols = n_features + 1
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
            if chunk.shape[1] != ncols:
                raise DataFormatError(
                    f"{path}: expected {ncols} columns per row (label + "
                    f"{n_features} pixels), found {chunk.shape[1]}."
                )
            values = chunk.to_numpy()
            pixels = values[:, 1:]
            if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
                raise DataFormatError(
                    f"{path}: pixel values must lie in 0..255, found "
                    f"{pixels.min()}..{pixels.max()}."
                )
            X_parts.append(pixels.astype(np.uint8))
            y_parts.append(values[:, 0].astype(np.int64))
    except (ValueError, TypeError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(
            f"{path}: not an EMNIST CSV export ({exc}). Expected rows "
            "'label,p0,...,p783' of integers with no header line; if the file has "
            "a header, remove its first line."
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataFormatError(f"{path}: the CSV file is empty.") from exc
    X = np.concatenate(X_parts) if X_parts else np.empty((0, n_features), np.uint8)
    y = np.concatenate(y_parts) if y_parts else np.empty((0,), np.int64)
    return X, y


def read_emnist_mat(path, subset: str = "train") -> dict:
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

    Returns
    -------
    dict
        ``{"images": uint8 (n, 784), "labels": int64 (n,), "mapping": dict}``
    """
    import scipy.io

    path = Path(path)
    try:
        mat = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=True)
        dataset = mat["dataset"][0, 0]
        part = dataset[subset][0, 0]
        images = np.asarray(part["images"])
        labels = np.asarray(part["labels"]).reshape(-1)
        mapping_rows = np.asarray(dataset["mapping"])
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise DataFormatError(
            f"{path}: not an EMNIST MATLAB file (expected a struct 'dataset' with "
            f"'train', 'test' and 'mapping'; {exc!r})."
        ) from exc
    if images.ndim != 2 or images.shape[0] != labels.shape[0]:
        raise DataFormatError(
            f"{path}: {subset} images have shape {images.shape} but there are "
            f"{labels.shape[0]} labels."
        )
    if images.dtype != np.uint8:
        if images.size and (images.min() < 0 or images.max() > 255):
            raise DataFormatError(f"{path}: pixel values outside 0..255.")
        images = images.astype(np.uint8)
    mapping = {int(row[0]): chr(int(row[1])) for row in mapping_rows}
    return {
        "images": np.ascontiguousarray(images),
        "labels": labels.astype(np.int64),
        "mapping": mapping,
    }


def read_mapping(path) -> dict[int, str]:
    """Read an ``emnist-<split>-mapping.txt`` file.

    Each line is ``label ascii_code``; the letters split has ``label upper
    lower`` and the class is named by its capital.

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
