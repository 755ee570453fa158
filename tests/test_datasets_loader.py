"""load_emnist on generated files: formats, orientation, cache, errors."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import SMALL_MNIST_N, glyph_images, write_emnist_split

from emnist_estimators import load_emnist
from emnist_estimators.datasets import _official, loader, write_idx
from emnist_estimators.exceptions import DataFormatError, DataNotFoundError

N = SMALL_MNIST_N  # images in the small_mnist fixture's split


@pytest.mark.parametrize("gz", [True, False])
def test_glyph_comes_out_upright(tmp_path, small_mnist, gz):
    upright = glyph_images(N, rng=0)
    labels = (np.arange(N) % 10).astype(np.uint8)
    write_emnist_split(tmp_path, upright, labels, gz=gz)
    bunch = load_emnist("mnist", "test", data_home=tmp_path, download=False)
    assert bunch.data.dtype == np.uint8 and bunch.data.shape == (N, 784)
    np.testing.assert_array_equal(bunch.images, upright)
    assert np.shares_memory(bunch.data, bunch.images)
    raw = load_emnist(
        "mnist", "test", data_home=tmp_path, download=False, orientation="raw"
    )
    np.testing.assert_array_equal(raw.images, upright.transpose(0, 2, 1))
    np.testing.assert_array_equal(bunch.target, labels)
    assert list(bunch.target_names) == list("0123456789")


def test_cache_is_written_once_then_memory_mapped(tmp_path, small_mnist):
    write_emnist_split(tmp_path, glyph_images(N), np.zeros(N, np.uint8))
    first = load_emnist("mnist", "test", data_home=tmp_path, download=False)
    caches = list(tmp_path.glob("*.npy"))
    assert len(caches) == 1
    mtime = caches[0].stat().st_mtime_ns
    second = load_emnist("mnist", "test", data_home=tmp_path, download=False)
    assert isinstance(second.images, np.memmap)
    assert caches[0].stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(first.images, second.images)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_read_only_folder_caches_in_user_cache(tmp_path, small_mnist, monkeypatch):
    # its own empty user cache: a cache another test left must not satisfy it
    user_cache = tmp_path / "user-cache"
    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(user_cache))
    data = tmp_path / "ro"
    data.mkdir()
    write_emnist_split(data, glyph_images(N), np.zeros(N, np.uint8))
    os.chmod(data, 0o555)  # even root must leave a write-protected folder alone
    try:
        bunch = load_emnist("mnist", "test", data_home=data, download=False)
        again = load_emnist("mnist", "test", data_home=data, download=False)
    finally:
        os.chmod(data, 0o755)
    assert bunch.images.shape == (N, 28, 28)
    np.testing.assert_array_equal(bunch.images, again.images)
    assert not list(data.glob("*.npy"))
    (cached,) = user_cache.rglob("*.npy")
    assert cached.name.startswith("emnist-mnist-test-images")
    # the second load serves the user cache's memory map of that file
    assert isinstance(again.images, np.memmap)
    assert Path(again.images.filename) == cached


def test_as_characters(tmp_path, small_mnist):
    labels = (np.arange(N) % 10).astype(np.uint8)
    write_emnist_split(tmp_path, glyph_images(N), labels)
    (tmp_path / "emnist-mnist-mapping.txt").write_text(
        "".join(f"{i} {48 + i}\n" for i in range(10))
    )
    X, y = load_emnist(
        "mnist",
        "test",
        data_home=tmp_path,
        download=False,
        return_X_y=True,
        as_characters=True,
    )
    assert y[:3].tolist() == ["0", "1", "2"]
    assert X.shape == (N, 784)


def test_all_concatenates_train_and_test(tmp_path, small_mnist):
    write_emnist_split(tmp_path, glyph_images(N), np.zeros(N, np.uint8), subset="train")
    write_emnist_split(tmp_path, glyph_images(N), np.ones(N, np.uint8), subset="test")
    bunch = load_emnist("mnist", "all", data_home=tmp_path, download=False)
    assert bunch.data.shape == (2 * N, 784)
    assert bunch.target[:N].sum() == 0 and bunch.target[N:].sum() == N


def test_csv_source(tmp_path, small_mnist):
    upright = glyph_images(N)
    raw = upright.transpose(0, 2, 1).reshape(N, -1)
    rows = [f"{i % 10}," + ",".join(map(str, r)) for i, r in enumerate(raw)]
    (tmp_path / "emnist-mnist-test.csv").write_text("\n".join(rows) + "\n")
    bunch = load_emnist("mnist", "test", data_home=tmp_path, download=False)
    np.testing.assert_array_equal(bunch.images, upright)


def test_unknown_split_and_subset(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown EMNIST split 'balance'.*balanced"):
        load_emnist("balance", data_home=tmp_path, download=False)
    with pytest.raises(ValueError, match="Unknown subset 'valid'"):
        load_emnist("mnist", "valid", data_home=tmp_path, download=False)


def test_split_and_subset_names_in_any_case(tmp_path, small_mnist, capsys):
    """Issue 31, item 5: `load_emnist("MNIST", "Test")` and `--split MNIST` work."""
    from emnist_estimators.cli import main

    write_emnist_split(tmp_path, glyph_images(N), np.zeros(N, np.uint8))
    bunch = load_emnist("MNIST", "Test", data_home=tmp_path, download=False)
    assert (bunch.split, bunch.subset, len(bunch.target)) == ("mnist", "test", N)
    assert len(loader.default_mapping("Balanced")) == 47
    argv = ["data", "download", "--split", "MNIST", "--subset", "TEST", "--json"]
    assert main([*argv, "--data-home", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["split"], out["subset"], out["n_samples"]) == ("mnist", "test", N)


@pytest.mark.parametrize(
    ("split", "subset", "message"),
    [
        ("balance", "all", "Unknown EMNIST split 'balance'. Did you mean 'balanced'?"),
        ("ByMerg", "all", "Unknown EMNIST split 'ByMerg'. Did you mean 'bymerge'?"),
        ("mnist", "tets", "Unknown subset 'tets'. Did you mean 'test'?"),
    ],
)
def test_unknown_names_suggest_the_closest(tmp_path, split, subset, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_emnist(split, subset, data_home=tmp_path, download=False)
    with pytest.raises(ValueError, match="Expected one of") as info:
        load_emnist("qqq", data_home=tmp_path, download=False)
    assert "Did you mean" not in str(info.value)  # nothing close: no guess


def test_missing_files_without_download(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_emnist("letters", "train", data_home=tmp_path, download=False)
    msg = str(info.value)
    assert str(tmp_path) in msg and "emnist-letters-train-images-idx3-ubyte.gz" in msg
    assert "data download" in msg
    assert list(tmp_path.iterdir()) == []


def test_count_mismatch_between_images_and_labels(tmp_path, small_mnist):
    write_emnist_split(tmp_path, glyph_images(N), np.zeros(N - 1, np.uint8))
    with pytest.raises(DataFormatError, match="do not belong together"):
        load_emnist("mnist", "test", data_home=tmp_path, download=False)


def test_count_against_official_size(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "expected_sha256", lambda member: None)
    write_emnist_split(tmp_path, glyph_images(N), np.zeros(N, np.uint8))
    with pytest.raises(DataFormatError, match="official EMNIST mnist/test has 10,000"):
        load_emnist("mnist", "test", data_home=tmp_path, download=False)


def test_checksum_mismatch_on_official_name(tmp_path, small_mnist, monkeypatch):
    monkeypatch.setattr(loader, "expected_sha256", _official.expected_sha256)
    write_emnist_split(tmp_path, glyph_images(N), np.zeros(N, np.uint8))
    with pytest.raises(OSError, match="differs from the official"):
        load_emnist("mnist", "test", data_home=tmp_path, download=False)
    assert not list(tmp_path.glob("*.npy"))


def test_env_var_data_home(tmp_path, small_mnist, monkeypatch):
    write_emnist_split(tmp_path, glyph_images(N), np.zeros(N, np.uint8))
    monkeypatch.setenv("EMNIST_DATA", str(tmp_path))
    assert load_emnist("mnist", "test", download=False).data.shape == (N, 784)


# --- package errors instead of raw ones (issue 11, item 8) ---------------------------
@pytest.fixture
def no_download(monkeypatch):
    """Record download calls instead of going to the network."""
    from emnist_estimators.datasets import download

    calls = []
    monkeypatch.setattr(download, "download_split", lambda *a, **k: calls.append(a))
    return calls


@pytest.mark.parametrize("kind", ["folder", "symlink-loop", "broken-symlink"])
def test_non_file_named_like_a_data_file(tmp_path, small_mnist, no_download, kind):
    blocker = tmp_path / "emnist-mnist-test-images-idx3-ubyte.gz"
    if kind == "folder":
        blocker.mkdir()
    elif kind == "symlink-loop":
        os.symlink(tmp_path / "loop-b", blocker)
        os.symlink(blocker, tmp_path / "loop-b")
    else:
        os.symlink(tmp_path / "nowhere", blocker)
    with pytest.raises(DataNotFoundError, match="Move or delete it") as info:
        load_emnist("mnist", "test", data_home=tmp_path, download=True)
    assert str(blocker) in str(info.value)
    assert no_download == []  # refused before any download


def test_files_still_missing_after_download(tmp_path, small_mnist, no_download):
    with pytest.raises(DataNotFoundError, match="still missing"):
        load_emnist("mnist", "test", data_home=tmp_path, download=True)
    assert len(no_download) == 1


def test_mat_with_images_of_another_width(tmp_path, small_mnist):
    import scipy.io

    X = np.zeros((N, 100), np.uint8)
    y = np.zeros((N, 1))
    dataset = {
        "train": {"images": X, "labels": y},
        "test": {"images": X, "labels": y},
        "mapping": np.array([[i, 48 + i] for i in range(10)]),
    }
    scipy.io.savemat(tmp_path / "emnist-mnist.mat", {"dataset": dataset})
    with pytest.raises(DataFormatError, match="784"):
        load_emnist("mnist", "test", data_home=tmp_path, download=False)


# --- messages that say where and what next (issue 13, item 2) ------------------------
def _refused_url() -> str:
    """A loopback URL nothing listens on: the download fails at once, offline."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/gzip.zip"


OPTIONS = ("--url", "EMNIST_MIRROR_URL", "--data-home", "EMNIST_DATA", "data download")


def test_missing_files_message_names_the_options(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_emnist("letters", "train", data_home=tmp_path, download=False)
    msg = str(info.value)
    assert all(option in msg for option in OPTIONS), msg
    assert "emnist-letters-train-labels-idx1-ubyte.gz" in msg


def test_missing_files_message_is_a_few_short_lines(tmp_path):
    """Issue 31, item 5: not a ~900-character paragraph saying the mirror twice."""
    with pytest.raises(DataNotFoundError) as info:
        load_emnist("letters", "train", data_home=tmp_path, download=False)
    lines = str(info.value).splitlines()
    assert 3 <= len(lines) <= 6, lines
    assert lines[0] == f"No EMNIST letters/train files in {tmp_path}."
    assert str(info.value).count("EMNIST_MIRROR_URL") == 1
    assert sum("data download --split letters" in line for line in lines) == 1


def test_failed_download_names_folder_files_and_options(tmp_path, small_mnist):
    """Test-only files, as in a shared folder: the train split cannot be had."""
    from emnist_estimators.exceptions import DownloadError

    labels = np.zeros(N, np.uint8)
    write_idx(tmp_path / "emnist-mnist-train-labels-idx1-ubyte.gz", labels)
    with pytest.raises(DownloadError) as info:
        load_emnist(
            "mnist", "train", data_home=tmp_path, url=_refused_url(), progress=False
        )
    msg = str(info.value)
    assert msg.startswith(f"EMNIST mnist/train is not in {tmp_path}")
    assert "needs emnist-mnist-train-images-idx3-ubyte.gz and" in msg
    assert "found only emnist-mnist-train-labels-idx1-ubyte.gz" in msg
    assert "Cannot reach http://127.0.0.1:" in msg  # what failed, kept
    assert "data download --split mnist --subset train" in msg
    assert all(option in msg for option in OPTIONS), msg
    assert msg.count("EMNIST_MIRROR_URL") == 1, msg  # the mirror advice once


def test_cli_prints_the_folder_files_and_options(tmp_path, small_mnist, capsys):
    from emnist_estimators.cli import main

    argv = ["data", "download", "--split", "mnist", "--subset", "train"]
    argv += ["--data-home", str(tmp_path), "--url", _refused_url(), "--quiet"]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(tmp_path) in err
    assert "emnist-mnist-train-images-idx3-ubyte.gz" in err
    assert all(option in err for option in OPTIONS), err


def test_hint_for_a_read_only_folder_names_another_folder(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o555)  # the loader treats it as read-only, even for root
    try:
        hint = loader.how_to_get("mnist", "train", folder)
    finally:
        os.chmod(folder, 0o755)
    assert f"({folder} is read-only)" in hint and "--data-home DIR" in hint
    assert "copy them into" not in hint
