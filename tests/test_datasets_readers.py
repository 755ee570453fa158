"""IDX, CSV, MATLAB and mapping readers on tiny generated files."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from emnist_estimators.datasets import (
    read_emnist_csv,
    read_emnist_mat,
    read_idx,
    read_mapping,
    transpose_images,
    write_idx,
)
from emnist_estimators.exceptions import DataFormatError


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (37, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("name", ["x-idx3-ubyte.gz", "x-idx3-ubyte"])
def test_idx_round_trip(tmp_path, images, name):
    path = tmp_path / name
    write_idx(path, images)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    np.testing.assert_array_equal(read_idx(path), images)


@pytest.mark.parametrize("inflate", ["zlib", "isal"])
def test_idx_with_each_inflate_library(tmp_path, images, monkeypatch, inflate):
    """The fast ISA-L path and the zlib fallback read and check alike."""
    import zlib

    from emnist_estimators.datasets import readers

    module = zlib if inflate == "zlib" else pytest.importorskip("isal.isal_zlib")
    monkeypatch.setattr(readers, "_zlib", module)
    write_idx(tmp_path / "x.gz", images)
    np.testing.assert_array_equal(read_idx(tmp_path / "x.gz"), images)
    np.testing.assert_array_equal(
        read_idx(tmp_path / "x.gz", transpose=True), images.transpose(0, 2, 1)
    )
    data = bytearray((tmp_path / "x.gz").read_bytes())
    data[-6] ^= 0xFF
    (tmp_path / "bad.gz").write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="corrupt"):
        read_idx(tmp_path / "bad.gz")


def test_idx_multi_member_gzip(tmp_path, images):
    import gzip as gz

    write_idx(tmp_path / "raw", images)
    raw = (tmp_path / "raw").read_bytes()
    half = len(raw) // 2
    (tmp_path / "two.gz").write_bytes(gz.compress(raw[:half]) + gz.compress(raw[half:]))
    np.testing.assert_array_equal(read_idx(tmp_path / "two.gz"), images)


def test_idx_labels_and_wider_types(tmp_path):
    labels = np.arange(50, dtype=np.uint8)
    write_idx(tmp_path / "l.gz", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / "l.gz"), labels)
    wide = np.arange(-5, 5, dtype=np.int32).reshape(2, 5)
    write_idx(tmp_path / "w", wide)
    np.testing.assert_array_equal(read_idx(tmp_path / "w"), wide)


def test_idx_header_layout_matches_the_spec(tmp_path, images):
    write_idx(tmp_path / "raw", images)
    head = (tmp_path / "raw").read_bytes()[:16]
    assert int.from_bytes(head[:4], "big") == 2051
    assert [int.from_bytes(head[i : i + 4], "big") for i in (4, 8, 12)] == [37, 28, 28]


def test_idx_wrong_magic(tmp_path):
    (tmp_path / "bad").write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(DataFormatError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


def test_idx_truncated_raw(tmp_path, images):
    write_idx(tmp_path / "raw", images)
    data = (tmp_path / "raw").read_bytes()
    (tmp_path / "cut").write_bytes(data[:-100])
    with pytest.raises(DataFormatError, match="truncated"):
        read_idx(tmp_path / "cut")


def test_idx_truncated_gzip(tmp_path, images):
    write_idx(tmp_path / "x.gz", images)
    data = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="truncated|corrupt"):
        read_idx(tmp_path / "cut.gz")


def test_idx_corrupt_gzip(tmp_path, images):
    write_idx(tmp_path / "x.gz", images)
    data = bytearray((tmp_path / "x.gz").read_bytes())
    data[-6] ^= 0xFF  # flip a byte of the CRC trailer
    (tmp_path / "bad.gz").write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="corrupt"):
        read_idx(tmp_path / "bad.gz")


def test_idx_trailing_garbage(tmp_path, images):
    write_idx(tmp_path / "raw", images)
    with open(tmp_path / "raw", "ab") as fh:
        fh.write(b"extra")
    with pytest.raises(DataFormatError, match="unexpected bytes"):
        read_idx(tmp_path / "raw")


def _write_csv(path, X, y, header=False, opener=open):
    with opener(path, "wt") as fh:
        if header:
            fh.write("label," + ",".join(f"p{i}" for i in range(X.shape[1])) + "\n")
        for label, row in zip(y, X, strict=True):
            fh.write(f"{label}," + ",".join(map(str, row)) + "\n")


@pytest.mark.parametrize("gz", [False, True])
def test_csv_round_trip(tmp_path, images, gz):
    X = images.reshape(len(images), -1)
    y = np.arange(len(X)) % 7
    path = tmp_path / ("e.csv.gz" if gz else "e.csv")
    _write_csv(path, X, y, opener=gzip.open if gz else open)
    X2, y2 = read_emnist_csv(path)
    assert X2.dtype == np.uint8 and X2.shape == X.shape
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)


def test_csv_with_header_is_refused(tmp_path, images):
    X = images.reshape(len(images), -1)
    _write_csv(tmp_path / "h.csv", X, np.zeros(len(X), int), header=True)
    with pytest.raises(DataFormatError, match="no header"):
        read_emnist_csv(tmp_path / "h.csv")


def test_csv_wrong_columns(tmp_path, images):
    X = images.reshape(len(images), -1)[:, :100]
    _write_csv(tmp_path / "c.csv", X, np.zeros(len(X), int))
    with pytest.raises(DataFormatError, match="expected 785 columns"):
        read_emnist_csv(tmp_path / "c.csv")


def test_csv_values_out_of_range(tmp_path, images):
    X = images.reshape(len(images), -1).astype(int)
    X[3, 5] = 300
    _write_csv(tmp_path / "r.csv", X, np.zeros(len(X), int))
    with pytest.raises(DataFormatError, match="0..255"):
        read_emnist_csv(tmp_path / "r.csv")


def test_mat_round_trip(tmp_path, images):
    """A .mat laid out like NIST's matlab.zip files."""
    X = images.reshape(len(images), -1)
    y = (np.arange(len(X)) % 10).reshape(-1, 1).astype(np.float64)
    mapping = np.array([[i, 48 + i] for i in range(10)])
    dataset = {
        "train": {"images": X, "labels": y, "writers": np.zeros_like(y)},
        "test": {"images": X[:5], "labels": y[:5], "writers": np.zeros_like(y[:5])},
        "mapping": mapping,
    }
    scipy.io.savemat(tmp_path / "emnist-digits.mat", {"dataset": dataset})
    out = read_emnist_mat(tmp_path / "emnist-digits.mat", "train")
    np.testing.assert_array_equal(out["images"], X)
    np.testing.assert_array_equal(out["labels"], y.ravel())
    assert out["mapping"][3] == "3"
    assert read_emnist_mat(tmp_path / "emnist-digits.mat", "test")["images"].shape == (
        5,
        784,
    )


def test_mat_not_emnist(tmp_path):
    scipy.io.savemat(tmp_path / "other.mat", {"x": np.zeros(3)})
    with pytest.raises(DataFormatError, match="not an EMNIST MATLAB file"):
        read_emnist_mat(tmp_path / "other.mat")


def test_mapping_files(tmp_path):
    (tmp_path / "b.txt").write_text("0 48\n10 65\n36 97\n")
    assert read_mapping(tmp_path / "b.txt") == {0: "0", 10: "A", 36: "a"}
    (tmp_path / "l.txt").write_text("1 65 97\n2 66 98\n")
    assert read_mapping(tmp_path / "l.txt") == {1: "A", 2: "B"}
    (tmp_path / "bad.txt").write_text("0 x\n")
    with pytest.raises(DataFormatError, match="line 1"):
        read_mapping(tmp_path / "bad.txt")


def test_transpose_images_in_chunks():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, (100, 28, 28), dtype=np.uint8)
    expected = x.transpose(0, 2, 1).copy()
    transpose_images(x, chunk=7)
    np.testing.assert_array_equal(x, expected)
    flat = expected.reshape(100, 784).copy()
    transpose_images(flat, chunk=30)
    np.testing.assert_array_equal(
        flat.reshape(100, 28, 28), expected.transpose(0, 2, 1)
    )


# --- hostile and damaged files (issue 11, items 3, 4c and 8) -------------------------
def _idx_bytes(shape, data: bytes = b"") -> bytes:
    return bytes([0, 0, 8, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + data


@pytest.mark.parametrize("shape", [(5, 0, 28), (5, 28, 0), (5, 0)])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_zero_dimension(tmp_path, shape, gz):
    path = tmp_path / ("z.gz" if gz else "z")
    data = _idx_bytes(shape)
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataFormatError, match="zero dimension") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("change, word", [(-100, "truncated"), (5, "unexpected bytes")])
def test_idx_raw_wrong_size_names_both_sizes(tmp_path, images, change, word):
    write_idx(tmp_path / "raw", images)
    data = (tmp_path / "raw").read_bytes()
    want = len(data)
    data = data[:change] if change < 0 else data + bytes(change)
    (tmp_path / "raw").write_bytes(data)
    with pytest.raises(DataFormatError, match=word) as info:
        read_idx(tmp_path / "raw")
    msg = str(info.value)
    assert str(tmp_path / "raw") in msg
    assert f"{want:,} bytes" in msg and f"{len(data):,} bytes" in msg


_NO_BIG_ALLOCATION = """
import resource, sys
from pathlib import Path
from emnist_estimators.datasets import read_idx
from emnist_estimators.datasets.cache import load_cached_images
from emnist_estimators.exceptions import DataFormatError

def vm_size():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) * 1024 for l in fh if l.startswith("VmSize:"))

# Address space for 512 MiB more than now: an allocation sized by the header
# (730 GiB, or 2.3 GB) fails with MemoryError instead of going unnoticed.
limit = vm_size() + (512 << 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
for name in sys.argv[1:]:
    for reader in (read_idx, load_cached_images):
        try:
            reader(Path(name))
        except DataFormatError:
            print("DataFormatError")
        else:
            print("read without error")
"""


def test_idx_header_claiming_huge_count_allocates_nothing(tmp_path):
    """A header claiming 10**9 images: DataFormatError, no 730 GiB allocation."""
    body = bytes(3 * 784)
    huge = _idx_bytes((10**9, 28, 28), body)
    big = _idx_bytes((3_000_000, 28, 28), body)  # 2.35 GB < 4 GiB
    files = {"raw": huge, "huge.gz": gzip.compress(huge)}
    # trailers forged to agree with the header (the CRC then fails, later)
    for name, data in (("forged-huge.gz", huge), ("forged-big.gz", big)):
        want = (
            len(data) - len(body) + 3_000_000 * 784
            if "big" in name
            else 16 + 784 * 10**9
        )
        files[name] = gzip.compress(data)[:-4] + (want % 2**32).to_bytes(4, "little")
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    proc = subprocess.run(
        [sys.executable, "-c", _NO_BIG_ALLOCATION, *(str(tmp_path / n) for n in files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[:-1] == ["DataFormatError"] * (2 * len(files))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)  # no cache


def test_gzip_bomb_is_inflated_in_bounded_chunks(tmp_path):
    """40 MB of zeros after a 10-image header: never more than one chunk at once."""
    from emnist_estimators.datasets import readers

    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(_idx_bytes((10, 28, 28), bytes(40 << 20)), 1))
    assert path.stat().st_size < 1 << 20
    assert max(len(c) for c in readers._decompressed_chunks(path)) <= readers._CHUNK
    with pytest.raises(DataFormatError, match="unexpected bytes"):
        read_idx(path)


_ROW = "1," + ",".join(["0"] * 784)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("\n\n", "empty"),
        (_ROW.replace(",0", ",2.5", 1), "not an EMNIST CSV export"),
        (_ROW.replace(",0", ",", 1), "not an EMNIST CSV export"),
        (_ROW + "\n" + _ROW + ",0", "not an EMNIST CSV export"),
        (_ROW + "\n" + _ROW.rsplit(",", 1)[0], "not an EMNIST CSV export"),
        (_ROW.replace("1,", "a,", 1), "not an EMNIST CSV export"),
        (_ROW.replace("1,", "99999999999,", 1), "not an EMNIST CSV export"),
        (_ROW.replace("1,", "-1,", 1), "labels must be non-negative"),
        (_ROW.replace(",0", ",256", 1), "0..255"),
        (_ROW.replace(",0", ",-1", 1), "0..255"),
        ("1,2,3\n", "expected 785 columns"),
    ],
    ids=[
        "empty",
        "blank-lines",
        "float",
        "missing-value",
        "extra-column",
        "short-row",
        "text",
        "overflow",
        "negative-label",
        "pixel-256",
        "pixel-negative",
        "three-columns",
    ],
)
def test_csv_faults(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=match) as info:
        read_emnist_csv(path)
    assert str(path) in str(info.value)


def _save_mat(path, images, labels):
    dataset = {
        "train": {"images": images, "labels": labels},
        "test": {"images": images, "labels": labels},
        "mapping": np.array([[i, 48 + i] for i in range(10)]),
    }
    scipy.io.savemat(path, {"dataset": dataset})


def _cells(n):
    cells = np.empty((n, 1), dtype=object)  # MATLAB's empty cells: y holding None
    for i in range(n):
        cells[i, 0] = np.zeros((0, 0))
    return cells


@pytest.mark.parametrize(
    "labels, match",
    [
        (lambda n: _cells(n), "label values must be non-negative whole numbers"),
        (lambda n: np.full((n, 1), 2.5), "found 2.5"),
        (lambda n: np.full((n, 1), np.nan), "found nan"),
        (lambda n: np.full((n, 1), -3.0), "found -3.0"),
        (lambda n: np.array([["a"]] * n), "label values"),
    ],
    ids=["empty-cells", "fraction", "nan", "negative", "text"],
)
def test_mat_bad_labels(tmp_path, images, labels, match):
    X = images.reshape(len(images), -1)
    _save_mat(tmp_path / "m.mat", X, labels(len(X)))
    with pytest.raises(DataFormatError, match=match) as info:
        read_emnist_mat(tmp_path / "m.mat")
    assert str(tmp_path / "m.mat") in str(info.value)


def test_mat_bad_pixels(tmp_path, images):
    X = images.reshape(len(images), -1).astype(np.float64)
    X[2, 3] = 300
    _save_mat(tmp_path / "p.mat", X, np.zeros((len(X), 1)))
    with pytest.raises(DataFormatError, match="pixel values must be 0..255"):
        read_emnist_mat(tmp_path / "p.mat")


def test_mat_empty_truncated_and_v73(tmp_path, images):
    X = images.reshape(len(images), -1)
    _save_mat(tmp_path / "good.mat", X, np.zeros((len(X), 1)))
    good = (tmp_path / "good.mat").read_bytes()
    (tmp_path / "empty.mat").write_bytes(b"")
    v73 = b"MATLAB 7.3 MAT-file".ljust(124, b" ") + b"\x00\x02IM" + bytes(512)
    (tmp_path / "v73.mat").write_bytes(v73)
    cases = {"empty.mat": "not a readable MATLAB file", "v73.mat": "v7.3"}
    for n in (10, 200, len(good) // 2, len(good) - 7):
        (tmp_path / f"cut{n}.mat").write_bytes(good[:n])
        cases[f"cut{n}.mat"] = "MATLAB file"
    for name, match in cases.items():
        with pytest.raises(DataFormatError, match=match) as info:
            read_emnist_mat(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)
    with pytest.raises(FileNotFoundError):
        read_emnist_mat(tmp_path / "missing.mat")
