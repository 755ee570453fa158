"""``load_emnist(cache=False)``: the images come from the data file, and no
``.npy`` cache is read or written anywhere."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers import SMALL_MNIST_N, glyph_images

from emnist_estimators import load_emnist
from emnist_estimators.datasets import write_idx

N = SMALL_MNIST_N  # images in the small_mnist fixture's split


@pytest.fixture
def split(tmp_path, monkeypatch, small_mnist):
    """A folder with an mnist test split (stored transposed), and its own user
    cache, so files left there by other tests cannot hide ours."""
    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(tmp_path / "user-cache"))
    folder = tmp_path / "data"
    folder.mkdir()
    upright = glyph_images(N, rng=0)
    labels = (np.arange(N) % 10).astype(np.uint8)
    write_idx(
        folder / "emnist-mnist-test-images-idx3-ubyte.gz", upright.transpose(0, 2, 1)
    )
    write_idx(folder / "emnist-mnist-test-labels-idx1-ubyte.gz", labels)
    return folder, upright, labels


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _load(folder, **kwargs):
    return load_emnist("mnist", "test", data_home=folder, download=False, **kwargs)


@pytest.mark.parametrize("verify", [True, False])
def test_cache_false_writes_nothing_and_returns_the_same_arrays(split, verify):
    folder, upright, labels = split
    before = _files(folder)
    bunch = _load(folder, cache=False, verify=verify)
    assert _files(folder) == before  # no .npy, no sidecar, no temporary file
    user_cache = Path(os.environ["EMNIST_ESTIMATORS_CACHE"])
    assert not user_cache.exists() or _files(user_cache) == []
    assert not isinstance(bunch.images, np.memmap)
    np.testing.assert_array_equal(bunch.images, upright)
    np.testing.assert_array_equal(bunch.target, labels)
    cached = _load(folder, verify=verify)  # the default caches: same arrays
    assert any(name.endswith(".npy") for name in _files(folder))
    np.testing.assert_array_equal(cached.data, bunch.data)
    np.testing.assert_array_equal(cached.target, bunch.target)


def test_cache_false_ignores_an_existing_cache(split):
    """A cache, even a wrong one, is not read: the data file is."""
    folder, upright, _ = split
    _load(folder, verify=False)
    (npy,) = folder.glob("*.npy")
    stat = npy.stat()
    # Same size and modification time, other pixels: without verify the
    # cache identity check cannot tell, so only cache=False guarantees these.
    cache = np.load(npy, mmap_mode="r+")
    cache[:] = 255 - cache
    cache.flush()
    del cache
    os.utime(npy, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert npy.stat().st_size == stat.st_size
    bunch = _load(folder, cache=False, verify=False)
    np.testing.assert_array_equal(bunch.images, upright)
    assert npy.stat().st_mtime_ns == stat.st_mtime_ns  # left alone, not rebuilt
