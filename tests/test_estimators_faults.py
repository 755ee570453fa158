"""Mistaken input to the estimators: pixels scaled unlike the fit, weights, labels.

Every fault must end in the package's error class with a message that names
the value and the fix, before any training or a wrong answer comes back.
Hostile saved-model files: tests/test_persistence.py.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from emnist_estimators import EmnistMLP
from emnist_estimators.exceptions import DataFormatError


# --- pixels scaled unlike the training data ------------------------------------
def test_raw_fit_refuses_scaled_pixels_at_predict(saved):
    _, clf, X, y = saved
    assert clf.score(X, y) > 0.85
    fix = re.escape("X * 255")
    for scaled in (X / 255.0, (X / 255.0).astype(np.float32)):
        with pytest.raises(
            DataFormatError, match=f"fitted on raw pixels 0..255.*{fix}"
        ):
            clf.predict(scaled)
        with pytest.raises(ValueError, match="up to 1|no larger than 1"):
            clf.predict_proba(scaled[:3])
    # what remains valid: raw floats, uint8, and blank images of either kind
    np.testing.assert_array_equal(clf.predict(X.astype(float)), clf.predict(X))
    assert clf.predict(np.zeros((2, 784))).shape == (2,)
    assert clf.predict(np.zeros((2, 784), np.uint8)).shape == (2,)
    assert clf.predict(np.ones((2, 784), np.uint8)).shape == (2,)


def test_scaled_fit_refuses_raw_pixels_and_partial_fit_checks_both(saved):
    _, _, X, y = saved
    scaled = X / 255.0
    clf = EmnistMLP(hidden_layer_sizes=(8,), epochs=1, random_state=0).fit(scaled, y)
    with pytest.raises(DataFormatError, match="fitted on pixels scaled to"):
        clf.predict(X)
    raw = EmnistMLP(hidden_layer_sizes=(8,), random_state=0).partial_fit(X, y)
    with pytest.raises(DataFormatError, match="fitted on raw pixels"):
        raw.partial_fit(scaled, y)
    assert raw.n_iter_ == 1


# --- sample weights and labels -------------------------------------------------
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_negative_sample_weight_is_refused(saved, method):
    _, _, X, y = saved
    weights = np.ones(len(y))
    weights[3] = -0.5
    clf = EmnistMLP(hidden_layer_sizes=(8,), epochs=1)
    with pytest.raises(ValueError, match="Negative values .* `sample_weight`"):
        getattr(clf, method)(X, y, sample_weight=weights)
    assert not hasattr(clf, "model_")  # refused before any training


@pytest.mark.parametrize(
    "labels, match",
    [
        (
            np.array(["a", None, "b"] * 100, dtype=object),
            r"300 samples, at positions \[1, 4",
        ),
        (np.array([None, "a", "b"] * 100, dtype=object), r"at positions \[0, 3"),
        ([1, None, 2] * 100, r"no label \(None/NaN\) for 100 of 300"),
        (pd.array(["a", pd.NA, "b"] * 100, dtype="string"), "no label"),
        (pd.Series(["a", None, "b"] * 100, dtype=object), "no label"),
        (np.array(["a", 1, "b"] * 100, dtype=object), "mixes label types .int, str."),
    ],
)
def test_labels_missing_or_mixed_are_named(saved, labels, match):
    X = saved[2]
    with pytest.raises(DataFormatError, match=match) as info:
        EmnistMLP(epochs=1).fit(X, labels)
    assert isinstance(info.value, ValueError)  # sklearn code catches ValueError
