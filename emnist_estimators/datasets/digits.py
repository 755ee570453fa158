"""The offline data set: scikit-learn's bundled digits as EMNIST-style images.

Needs no download, so the demo, the examples and the ``digits`` source of the
command line work on a fresh install. One split for all of them
(:func:`digits_train_test_split`), so they score on the same images.
"""

from __future__ import annotations

import numpy as np

__all__ = ["digits_train_test_split", "load_digits_28"]


def load_digits_28(*, return_X_y: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load scikit-learn's 1,797 handwritten digits as EMNIST-style 28x28 uint8.

    The 8x8 images (values 0..16) are scaled to 0..255, enlarged to 20x20 by
    bilinear interpolation and centred in a 28x28 frame, like MNIST/EMNIST
    digits (a 20x20 glyph in a 4-pixel margin), upright.

    Parameters
    ----------
    return_X_y : bool, default=True
        Kept for symmetry with scikit-learn's loaders; ``(X, y)`` is returned.

    Returns
    -------
    X : ndarray of shape (1797, 784), uint8
        Flat upright images, 0 (black) to 255 (white).
    y : ndarray of shape (1797,), int
        The digits 0-9.

    Examples
    --------
    >>> from emnist_estimators.datasets.digits import load_digits_28
    >>> X, y = load_digits_28()
    >>> X.shape, X.dtype, int(X.max())
    ((1797, 784), dtype('uint8'), 255)
    """
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = digits.images.astype(np.float32) * (255.0 / 16.0)
    big = zoom(small, (1, 20 / 8, 20 / 8), order=1)
    images = np.zeros((len(small), 28, 28), dtype=np.uint8)
    images[:, 4:24, 4:24] = np.clip(np.rint(big), 0, 255).astype(np.uint8)
    X = images.reshape(len(images), 784)
    return X, digits.target


def digits_train_test_split(*, random_state: int = 0) -> list[np.ndarray]:
    """Split the digits 75/25, stratified, like every digits user here.

    Parameters
    ----------
    random_state : int, default=0
        Seeds the split.

    Returns
    -------
    X_train, X_test : ndarray of shape (1347, 784) and (450, 784), uint8
        Training and test images, as :func:`load_digits_28` returns them.
    y_train, y_test : ndarray of shape (1347,) and (450,), int
        Their digits.

    Examples
    --------
    >>> from emnist_estimators.datasets.digits import digits_train_test_split
    >>> X_train, X_test, y_train, y_test = digits_train_test_split()
    >>> len(y_train), len(y_test)
    (1347, 450)
    """
    from sklearn.model_selection import train_test_split

    X, y = load_digits_28()
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=random_state)
