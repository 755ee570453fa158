"""The package's one stratified hold-out split, used by fit, tuning and the CLI."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split


def holdout_split(
    y,
    *,
    test_size: float | int | None = None,
    train_size: float | int | None = None,
    random_state=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a stratified train/hold-out split of ``y``.

    scikit-learn's ``train_test_split`` over the row indices, stratified by
    ``y``; where a class is too small to stratify (a class of one row, or
    more classes than hold-out rows) the same split without stratification,
    so a small sample still splits instead of failing.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        The labels to stratify by.
    test_size, train_size : float, int or None
        As for ``train_test_split``.
    random_state : int, RandomState or None
        As for ``train_test_split``.

    Returns
    -------
    train, test : ndarray of int
        Row indices in ``train_test_split``'s order (index the data with
        them, or sort them first to keep the rows' order).

    Examples
    --------
    >>> import numpy as np
    >>> train, test = holdout_split(np.array([0, 1] * 5), test_size=2, random_state=0)
    >>> sorted(np.array([0, 1] * 5)[test].tolist())
    [0, 1]
    >>> len(holdout_split(np.array([0, 0, 0, 1]), test_size=2, random_state=0)[1])
    2
    """
    idx = np.arange(len(y))
    sizes = {"test_size": test_size, "train_size": train_size}
    try:
        train, test = train_test_split(
            idx, **sizes, stratify=y, random_state=random_state
        )
    except ValueError:  # a class too small to stratify; bad sizes fail again
        train, test = train_test_split(idx, **sizes, random_state=random_state)
    return train, test
