"""What a data folder holds (datasets/summary.py): each split's files, what
is missing, and the bytes its caches take; looking creates nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import SMALL_MNIST_N, glyph_images, write_emnist_split

from emnist_estimators import load_emnist
from emnist_estimators.datasets import _official, loader, summary, write_idx

N = SMALL_MNIST_N  # images in the small_mnist fixture's split


def _summary(folder) -> dict:
    return {(r["split"], r["subset"]): r for r in summary.split_summary(folder)}


@pytest.mark.parametrize("exists", [True, False])
def test_summary_of_an_empty_or_missing_folder(tmp_path, exists):
    folder = tmp_path / "data"
    if exists:
        folder.mkdir()
    rows = _summary(folder)
    assert len(rows) == 2 * len(_official.EMNIST_SPLITS)
    assert {r["status"] for r in rows.values()} == {"missing"}
    assert rows["bymerge", "train"]["missing"] == [
        "emnist-bymerge-train-images-idx3-ubyte.gz",
        "emnist-bymerge-train-labels-idx1-ubyte.gz",
    ]
    assert {r["cache_bytes"] for r in rows.values()} == {0}
    assert folder.exists() == exists  # looking creates nothing
    hint = loader.how_to_get("bymerge", "all", folder)
    assert "--data-home" in hint and "EMNIST_DATA" in hint and str(folder) in hint


def test_summary_of_partial_and_complete_splits(tmp_path, small_mnist, monkeypatch):
    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(tmp_path / "user-cache"))
    data = tmp_path / "data"
    data.mkdir()
    write_emnist_split(data, glyph_images(N), np.zeros(N, np.uint8), subset="test")
    write_idx(data / "emnist-mnist-train-labels-idx1-ubyte", np.zeros(N, np.uint8))
    rows = _summary(data)
    test, train = rows["mnist", "test"], rows["mnist", "train"]
    assert test["status"] == "complete" and test["missing"] == []
    assert [Path(p).name for p in test["files"]] == [
        "emnist-mnist-test-images-idx3-ubyte.gz",
        "emnist-mnist-test-labels-idx1-ubyte.gz",
    ]
    assert test["cache_bytes"] == 0  # not loaded yet
    assert train["status"] == "partial"
    assert train["missing"] == ["emnist-mnist-train-images-idx3-ubyte.gz"]
    assert rows["letters", "test"]["status"] == "missing"
    load_emnist("mnist", "test", data_home=data, download=False)
    cache_files = [*data.glob("*.upright.npy"), *data.glob("*.upright.json")]
    assert len(cache_files) == 2
    want = sum(p.stat().st_size for p in cache_files)
    assert _summary(data)["mnist", "test"]["cache_bytes"] == want
