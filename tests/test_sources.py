"""How a dataset named on the command line (``--dataset``) resolves.

Each form - ``digits``, ``emnist:<split>``, a folder of IDX files, a CSV
export, a NIST ``.mat`` - must give upright uint8 rows of 784 pixels and
readable class names; the CLI tests train on a few of them, these check the
loading itself in milliseconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from emnist_estimators.datasets import write_idx
from emnist_estimators.exceptions import DataNotFoundError, EmnistEstimatorsError
from emnist_estimators.sources import (
    FASHION_MNIST_CLASSES,
    has_test_subset,
    load_source,
)


def glyphs(n: int, seed: int = 0) -> np.ndarray:
    """Upright uint8 28x28 images of an 'L', which transposing would mirror."""
    images = np.random.default_rng(seed).integers(0, 30, (n, 28, 28), dtype=np.uint8)
    images[:, 4:24, 6:9] = 255
    images[:, 21:24, 6:20] = 200
    return images


def write_idx_pair(folder, prefix: str, images: np.ndarray, labels) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.asarray(labels, np.uint8))


def write_csv(path, images: np.ndarray, labels) -> None:
    """The EMNIST CSV export layout: ``label,p0,...,p783``, no header."""
    rows = np.column_stack([labels, images.reshape(len(images), -1)]).astype(int)
    np.savetxt(path, rows, fmt="%d", delimiter=",")


def assert_upright(dataset, upright: np.ndarray) -> None:
    assert dataset.X.dtype == np.uint8 and dataset.X.shape == (len(upright), 784)
    assert dataset.X.flags.c_contiguous
    np.testing.assert_array_equal(dataset.X, upright.reshape(len(upright), 784))


def test_digits_is_the_offline_75_25_split():
    train, test = load_source("digits"), load_source("digits", "test")
    assert (len(train.y), len(test.y)) == (1347, 450)
    assert train.X.dtype == np.uint8 and train.X.shape[1] == 784
    assert sorted(set(train.y)) == [str(d) for d in range(10)]  # class names
    assert "digits" in train.description and "(test)" in test.description
    # disjoint: no test image is also a training image
    train_rows = {row.tobytes() for row in train.X}
    assert not any(row.tobytes() in train_rows for row in test.X)


def test_emnist_split_gives_upright_images_named_by_character(tmp_path, small_mnist):
    n = 64  # the small_mnist fixture's split size
    upright = glyphs(n)
    labels = np.arange(n) % 10
    write_idx_pair(tmp_path, "emnist-mnist-test", upright.transpose(0, 2, 1), labels)
    (tmp_path / "emnist-mnist-mapping.txt").write_text(
        "".join(f"{i} {ord('a') + i}\n" for i in range(10))  # classes 'a'..'j'
    )
    dataset = load_source("emnist:mnist", "test", data_home=tmp_path)
    assert_upright(dataset, upright)
    assert dataset.y[:3].tolist() == ["a", "b", "c"]
    assert dataset.description == "EMNIST mnist (test)"


def test_unknown_emnist_split_lists_the_splits(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown EMNIST split 'balance'.*balanced"):
        load_source("emnist:balance", data_home=tmp_path)


def test_idx_folder_keeps_stored_images_and_finds_t10k_for_test(tmp_path):
    """Fashion-MNIST-style files are stored upright: not transposed."""
    train, test = glyphs(6, seed=1), glyphs(4, seed=2)
    write_idx_pair(tmp_path, "train", train, [0, 1, 2, 0, 1, 2])
    write_idx_pair(tmp_path, "t10k", test, [2, 1, 0, 2])
    assert_upright(load_source(str(tmp_path)), train)
    dataset = load_source(str(tmp_path), "test")
    assert_upright(dataset, test)
    assert dataset.y.tolist() == ["2", "1", "0", "2"]


def test_emnist_idx_folder_is_turned_upright_with_its_mapping(tmp_path):
    upright = glyphs(5)
    write_idx_pair(
        tmp_path, "emnist-letters-train", upright.transpose(0, 2, 1), [1, 2, 3, 1, 2]
    )
    (tmp_path / "emnist-letters-mapping.txt").write_text("1 65 97\n2 66 98\n3 67 99\n")
    dataset = load_source(str(tmp_path))
    assert_upright(dataset, upright)
    assert dataset.y.tolist() == ["A", "B", "C", "A", "B"]


def test_fashion_folder_names_its_classes(tmp_path):
    folder = tmp_path / "fashion-mnist"
    write_idx_pair(folder, "train", glyphs(3), [0, 9, 5])
    assert load_source(str(folder)).y.tolist() == [
        FASHION_MNIST_CLASSES[0],
        "Ankle boot",
        "Sandal",
    ]


@pytest.mark.parametrize(
    "name", ["emnist-byclass-train.csv", "emnist-byclass-train.csv.gz"]
)
def test_emnist_csv_export_is_turned_upright(tmp_path, name):
    upright = glyphs(4)
    write_csv(tmp_path / name, upright.transpose(0, 2, 1), [3, 1, 4, 1])
    dataset = load_source(str(tmp_path / name))
    assert_upright(dataset, upright)
    assert dataset.y.tolist() == ["3", "1", "4", "1"] and dataset.description == name


def test_other_csv_is_kept_as_stored(tmp_path):
    upright = glyphs(3)
    write_csv(tmp_path / "mine.csv", upright, [0, 1, 0])
    assert_upright(load_source(str(tmp_path / "mine.csv")), upright)


def test_mat_file_gives_the_asked_subset_upright_with_characters(tmp_path):
    train, test = glyphs(4, seed=1), glyphs(2, seed=2)

    def part(images, labels):
        stored = images.transpose(0, 2, 1).reshape(len(images), 784)
        return {"images": stored, "labels": np.array(labels, float).reshape(-1, 1)}

    dataset = {
        "train": part(train, [0, 1, 1, 0]),
        "test": part(test, [1, 0]),
        "mapping": np.array([[0, 88], [1, 89]]),  # X, Y
    }
    scipy.io.savemat(tmp_path / "emnist-xy.mat", {"dataset": dataset})
    loaded = load_source(str(tmp_path / "emnist-xy.mat"), "test")
    assert_upright(loaded, test)
    assert loaded.y.tolist() == ["Y", "X"]
    assert_upright(load_source(str(tmp_path / "emnist-xy.mat")), train)


def test_unknown_name_says_which_forms_exist(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_source(str(tmp_path / "emnist-balanced"))
    message = str(info.value)
    assert "not found" in message
    assert "'digits'" in message and "'emnist:<split>'" in message
    assert "emnist:balanced" in message  # an example of the form
    assert isinstance(info.value, EmnistEstimatorsError)
    assert isinstance(info.value, FileNotFoundError)


def test_folder_without_idx_files_says_what_was_looked_for(tmp_path):
    write_idx_pair(tmp_path, "train", glyphs(2), [0, 1])  # train only
    with pytest.raises(DataNotFoundError, match=r"No IDX test files in .*idx3-ubyte"):
        load_source(str(tmp_path), "test")


def test_unreadable_file_type_and_subset_are_refused(tmp_path):
    (tmp_path / "pixels.txt").write_text("0 0 0\n")
    with pytest.raises(
        ValueError, match=r"Cannot read .*pixels\.txt: expected a folder"
    ):
        load_source(str(tmp_path / "pixels.txt"))
    with pytest.raises(ValueError, match="subset must be 'train' or 'test', got 'all'"):
        load_source("digits", "all")


def test_only_a_csv_export_lacks_a_separate_test_subset():
    assert not has_test_subset("emnist-balanced-train.CSV")
    assert not has_test_subset("data/mine.csv.gz")
    for spec in ("digits", "emnist:letters", "data/fashion", "emnist-letters.mat"):
        assert has_test_subset(spec), spec
