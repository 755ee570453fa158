"""Shared fixtures: real-data location and a private cache per test session.

Real-data tests skip with the reason where ``../shared/data`` is absent, but
under ``CI=true`` a missing data folder or service binary fails the run: CI
must never go green with the real-data tests skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("EMNIST_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


SHARED_DATA = _shared_data()
EMNIST_DIR = SHARED_DATA / "emnist"
FASHION_DIR = SHARED_DATA / "fashion-mnist"


def skip_unless_ci(reason: str) -> None:
    """Skip with ``reason`` - or fail, under ``CI=true``, where all must be there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def require_dir(path: Path) -> Path:
    if not path.is_dir():
        skip_unless_ci(
            f"real data folder {path} is absent (set EMNIST_SHARED_DATA to the "
            "folder holding emnist/ and fashion-mnist/)"
        )
    return path


@pytest.fixture
def emnist_dir() -> Path:
    return require_dir(EMNIST_DIR)


@pytest.fixture
def fashion_dir() -> Path:
    return require_dir(FASHION_DIR)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Keep every test's .npy cache out of the user's ~/.cache."""
    monkeypatch.setenv(
        "EMNIST_ESTIMATORS_CACHE", str(tmp_path_factory.getbasetemp() / "user-cache")
    )
    monkeypatch.delenv("EMNIST_DATA", raising=False)
    monkeypatch.delenv("EMNIST_MIRROR_URL", raising=False)


SMALL_MNIST_N = 64


@pytest.fixture
def small_mnist(monkeypatch):
    """Pretend the official mnist split has SMALL_MNIST_N images, any checksum.

    Generated files carry official names but not official bytes or counts.
    """
    from emnist_estimators.datasets import EMNIST_SPLITS, loader

    sizes = dict(EMNIST_SPLITS)
    sizes["mnist"] = (SMALL_MNIST_N, SMALL_MNIST_N, 10)
    monkeypatch.setattr(loader, "EMNIST_SPLITS", sizes)
    monkeypatch.setattr(loader, "expected_sha256", lambda member: None)


def glyph_images(n: int, rng=None) -> np.ndarray:
    """Upright images of an asymmetric glyph 'L' (left bar, bottom bar)."""
    rng = np.random.default_rng(rng)
    img = np.zeros((28, 28), np.uint8)
    img[4:24, 6:9] = 255  # vertical bar on the left
    img[21:24, 6:20] = 255  # horizontal bar at the bottom
    noise = rng.integers(0, 30, size=(n, 28, 28), dtype=np.uint8)
    return np.maximum(img[None], noise)


def bar_images(n: int, rng=0):
    """28x28 uint8 images of three easy classes: vertical bar, horizontal bar, box."""
    rng = np.random.default_rng(rng)
    X = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
    y = np.arange(n) % 3
    for i in range(n):
        a, b = rng.integers(6, 20, 2)
        if y[i] == 0:
            X[i, 4:24, a : a + 3] = 255
        elif y[i] == 1:
            X[i, a : a + 3, 4:24] = 255
        else:
            X[i, a - 3 : a + 5, b - 3 : b + 5] = 255
    return X, y.astype(np.uint8)


def write_idx_folder(folder: Path, n_train: int = 300, n_test: int = 90) -> Path:
    """A Fashion-MNIST-style folder of IDX files (upright) with bar images."""
    from emnist_estimators.datasets import write_idx

    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        X, y = bar_images(n, seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", X)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", y)
    return folder
