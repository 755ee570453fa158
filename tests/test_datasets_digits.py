"""scikit-learn's digits as EMNIST-style images (datasets/digits.py): upright
28x28 uint8 glyphs in a 4-pixel margin, and one stratified, seeded split."""

from __future__ import annotations

import numpy as np

from emnist_estimators.datasets.digits import digits_train_test_split, load_digits_28


def test_digits_are_28x28_uint8_glyphs_with_an_empty_margin():
    X, y = load_digits_28()
    assert X.shape == (1797, 784) and X.dtype == np.uint8 and int(X.max()) == 255
    assert sorted(set(y.tolist())) == list(range(10))
    images = X.reshape(-1, 28, 28)
    margin = images.copy()
    margin[:, 4:24, 4:24] = 0
    assert not margin.any()  # nothing outside the 20x20 box, as in MNIST


def test_the_split_is_stratified_and_the_same_for_the_same_seed():
    X_train, X_test, y_train, y_test = digits_train_test_split(random_state=0)
    assert (len(y_train), len(y_test)) == (1347, 450)
    assert set(np.bincount(y_test)) <= {43, 44, 45, 46}  # each digit ~25 %
    again = digits_train_test_split(random_state=0)
    np.testing.assert_array_equal(again[1], X_test)
    other = digits_train_test_split(random_state=1)
    assert not np.array_equal(other[1], X_test)
