"""IDX, CSV, MATLAB and mapping readers on tiny generated files."""

from __future__ import annotations

import gzip

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
        for label, row in zip(y, X):
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
    np.testing.assert_array_equal(flat.reshape(100, 28, 28), expected.transpose(0, 2, 1))
