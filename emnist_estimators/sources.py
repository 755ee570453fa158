"""Datasets named on the command line: EMNIST splits, local files, the demo.

A source is one string:

- ``digits``: scikit-learn's bundled digits upscaled to 28x28 (offline demo);
- ``emnist:<split>``: an EMNIST split through :func:`load_emnist`
  (downloaded if needed, or from ``--data-home``);
- a folder with IDX files (``*train-images-idx3-ubyte[.gz]`` and the labels;
  ``test`` or ``t10k`` for the test subset), such as Fashion-MNIST's;
- a ``.csv`` file in the export format ``label,p0..p783`` (no header);
- a MATLAB ``.mat`` file from NIST's ``matlab.zip``.

Labels are returned as class names (characters for EMNIST) so a model trained
from the command line predicts readable names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from sklearn.utils import Bunch

from .datasets import (
    load_emnist,
    read_emnist_csv,
    read_emnist_mat,
    read_idx,
    read_mapping,
)
from .exceptions import DataNotFoundError

__all__ = ["Dataset", "load_source", "has_test_subset", "FASHION_MNIST_CLASSES"]

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


@dataclass
class Dataset:
    """Pixels and class-name labels of a dataset named on the command line.

    Attributes
    ----------
    X : ndarray of shape (n_samples, 784), uint8
        The images, upright.
    y : ndarray of shape (n_samples,), str
        Class names (characters for EMNIST).
    description : str
        What the data is, for messages and report titles.
    """

    X: np.ndarray
    y: np.ndarray
    description: str


def _names(labels: np.ndarray, mapping: dict | None) -> np.ndarray:
    if not mapping:
        return labels.astype(str)
    lut = np.array([mapping.get(i, str(i)) for i in range(int(labels.max()) + 1)])
    return lut[labels]


def _idx_pair(folder: Path, subset: str):
    keys = ("train",) if subset == "train" else ("test", "t10k")
    for key in keys:
        for images in sorted(folder.glob(f"*{key}*images-idx3-ubyte*")):
            if images.name.endswith(".npy"):
                continue
            labels = images.with_name(images.name.replace("images-idx3", "labels-idx1"))
            if labels.exists():
                return images, labels
    return None


def has_test_subset(spec: str) -> bool:
    """Whether the source ``spec`` has a test subset apart from its training one.

    A CSV export is one set of images: asking it for ``test`` gives the same
    images again, so a caller must hold out part of it instead.

    Parameters
    ----------
    spec : str
        The source, as given to :func:`load_source`.

    Returns
    -------
    bool
        False for a ``.csv`` (or ``.csv.gz``) file, True otherwise.

    Examples
    --------
    >>> has_test_subset("emnist:balanced"), has_test_subset("emnist-balanced-train.csv")
    (True, False)
    """
    return not str(spec).lower().endswith((".csv", ".csv.gz"))


def load_source(spec: str, subset: str = "train", *, data_home=None) -> Dataset:
    """Load a dataset named by ``spec`` (see the module docstring).

    Parameters
    ----------
    spec : str
        ``digits``, ``emnist:<split>``, a folder of IDX files, a ``.csv`` or
        a ``.mat`` file.
    subset : {'train', 'test'}, default='train'
        Which part.
    data_home : str or path-like, default=None
        Folder of the EMNIST files for ``emnist:<split>``.

    Returns
    -------
    Dataset
        Upright uint8 pixels and class-name labels.

    Raises
    ------
    DataNotFoundError
        If the file or folder does not exist or holds no files of ``subset``.
    """
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}.")
    if spec == "digits":
        from .datasets.digits import digits_train_test_split

        parts = digits_train_test_split(random_state=0)
        X, y = (parts[0], parts[2]) if subset == "train" else (parts[1], parts[3])
        return Dataset(X, y.astype(str), f"scikit-learn digits as 28x28 ({subset})")
    if spec.startswith("emnist:"):
        split = spec.split(":", 1)[1]
        bunch = cast(Bunch, load_emnist(split, subset, data_home=data_home))
        return Dataset(
            bunch.data,
            _names(bunch.target, bunch.mapping),
            f"EMNIST {split} ({subset})",
        )
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataNotFoundError(
            f"Dataset {spec!r} not found. Use 'digits', 'emnist:<split>' (e.g. "
            "emnist:balanced), a folder of IDX files, a .csv or a .mat file."
        )
    emnist_like = "emnist" in path.name.lower()
    if path.is_dir():
        pair = _idx_pair(path, subset)
        if pair is None:
            raise DataNotFoundError(
                f"No IDX {subset} files in {path} (looked for "
                f"*{subset}*images-idx3-ubyte[.gz] with a matching labels file)."
            )
        images, labels = pair
        transposed = "emnist" in images.name.lower()
        X = read_idx(images, transpose=transposed).reshape(-1, 784)
        y_int = read_idx(labels).astype(np.int64)
        mapping_files = sorted(path.glob("*mapping.txt"))
        mapping = (
            read_mapping(mapping_files[0]) if mapping_files and transposed else None
        )
        if mapping is None and "fashion" in str(path).lower() and y_int.max() < 10:
            mapping = dict(enumerate(FASHION_MNIST_CLASSES))
        return Dataset(X, _names(y_int, mapping), f"{images.name} ({subset})")
    if path.suffix == ".csv" or path.name.endswith(".csv.gz"):
        X, y_int = read_emnist_csv(path)
        if emnist_like:  # the EMNIST CSV export keeps NIST's transposed images
            X = X.reshape(-1, 28, 28).transpose(0, 2, 1).reshape(-1, 784)
        return Dataset(np.ascontiguousarray(X), y_int.astype(str), path.name)
    if path.suffix == ".mat":
        mat = read_emnist_mat(path, subset)
        X = mat["images"].reshape(-1, 28, 28).transpose(0, 2, 1).reshape(-1, 784)
        return Dataset(
            np.ascontiguousarray(X), _names(mat["labels"], mat["mapping"]), path.name
        )
    raise ValueError(
        f"Cannot read {path}: expected a folder of IDX files, a .csv or a .mat file."
    )
