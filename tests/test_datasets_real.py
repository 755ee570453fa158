"""The real official EMNIST and Fashion-MNIST files in ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest

from emnist_estimators import load_emnist
from emnist_estimators.datasets import OFFICIAL_FILES, read_idx, read_mapping
from emnist_estimators.datasets.loader import default_mapping, file_sha256


@pytest.mark.parametrize(
    "split, n_classes", [("bymerge", 47), ("byclass", 62), ("mnist", 10)]
)
def test_official_test_splits_load(emnist_dir, split, n_classes):
    bunch = load_emnist(split, "test", data_home=emnist_dir, download=False)
    n = {"bymerge": 116_323, "byclass": 116_323, "mnist": 10_000}[split]
    assert bunch.data.shape == (n, 784) and bunch.data.dtype == np.uint8
    assert bunch.images.shape == (n, 28, 28)
    assert len(np.unique(bunch.target)) == n_classes == len(bunch.target_names)
    # every file it read is official and matched the shipped sha256
    for path in (bunch.files[0].images, bunch.files[0].labels):
        member = f"gzip/{path.name}"
        assert file_sha256(path) == OFFICIAL_FILES[member][0]
    # characters come from the official mapping file
    assert bunch.mapping == read_mapping(emnist_dir / f"emnist-{split}-mapping.txt")
    assert bunch.mapping == default_mapping(split)


def test_bymerge_characters(emnist_dir):
    _, y = load_emnist(
        "bymerge",
        "test",
        data_home=emnist_dir,
        download=False,
        return_X_y=True,
        as_characters=True,
    )
    chars = set(np.unique(y))
    assert {"0", "9", "A", "Z", "a", "t"} <= chars and "c" not in chars  # c merged


@pytest.mark.parametrize(
    "split, subset, n",
    [
        ("balanced", "train", 112_800),
        ("balanced", "test", 18_800),
        ("mnist", "train", 60_000),
        ("digits", "train", 240_000),
        ("digits", "test", 40_000),
    ],
)
def test_official_label_files(emnist_dir, split, subset, n):
    path = emnist_dir / f"emnist-{split}-{subset}-labels-idx1-ubyte.gz"
    assert file_sha256(path) == OFFICIAL_FILES[f"gzip/{path.name}"][0]
    labels = read_idx(path)
    assert labels.shape == (n,)
    assert set(np.unique(labels)) == set(default_mapping(split))
    if split == "balanced":  # balanced means equal class counts
        assert len(set(np.bincount(labels).tolist())) == 1


def test_every_mapping_file(emnist_dir):
    for split in ("balanced", "byclass", "bymerge", "digits", "letters", "mnist"):
        mapping = read_mapping(emnist_dir / f"emnist-{split}-mapping.txt")
        assert mapping == default_mapping(split)
    assert min(read_mapping(emnist_dir / "emnist-letters-mapping.txt")) == 1


def test_real_images_are_upright(emnist_dir):
    """Mean 'L' is heavy on the left and at the bottom only when upright.

    Without the transpose the left bar becomes the top row and the bottom bar
    the right column, and both comparisons flip.
    """
    bunch = load_emnist("bymerge", "test", data_home=emnist_dir, download=False)
    label = {c: k for k, c in bunch.mapping.items()}["L"]
    mean = bunch.images[bunch.target == label].astype(np.float32).mean(axis=0)
    assert mean[:, :14].mean() > 1.1 * mean[:, 14:].mean()  # left > right
    assert mean[14:].mean() > 1.2 * mean[:14].mean()  # bottom > top
    raw = load_emnist(
        "bymerge", "test", data_home=emnist_dir, download=False, orientation="raw"
    )
    raw_mean = raw.images[raw.target == label].astype(np.float32).mean(axis=0)
    np.testing.assert_allclose(raw_mean, mean.T, rtol=1e-5)


def test_shared_folder_is_left_untouched(emnist_dir):
    before = sorted(p.name for p in emnist_dir.iterdir())
    load_emnist("mnist", "test", data_home=emnist_dir, download=False)
    assert sorted(p.name for p in emnist_dir.iterdir()) == before


@pytest.mark.parametrize(
    "name, shape",
    [
        ("train-images-idx3-ubyte.gz", (60_000, 28, 28)),
        ("train-labels-idx1-ubyte.gz", (60_000,)),
        ("t10k-images-idx3-ubyte.gz", (10_000, 28, 28)),
        ("t10k-labels-idx1-ubyte.gz", (10_000,)),
    ],
)
def test_fashion_mnist_idx(fashion_dir, name, shape):
    arr = read_idx(fashion_dir / name)
    assert arr.shape == shape and arr.dtype == np.uint8
    if len(shape) == 1:
        assert np.bincount(arr).tolist() == [shape[0] // 10] * 10
