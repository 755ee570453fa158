"""saved_state.py: a saved file whose network weights are not finite is refused."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import bar_images

from emnist_estimators import EmnistMLP, load_model
from emnist_estimators.exceptions import DataFormatError


@pytest.fixture(scope="module")
def fitted():
    X, y = bar_images(60, rng=0)
    return EmnistMLP(hidden_layer_sizes=(8,), epochs=1, random_state=0).fit(X, y)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_load_refuses_a_network_with_non_finite_weights(fitted, tmp_path, value):
    # a diverged network answered NaN probabilities and class 0 for every row,
    # and save/load_model accepted it
    bias = fitted.model_.trainable_weights[-1]
    good = bias.numpy()
    try:
        bias.assign(np.full(bias.shape, value, np.float32))
        fitted.save(tmp_path / "m.keras")
    finally:
        bias.assign(good)
    for load in (load_model, EmnistMLP.load):
        with pytest.raises(DataFormatError, match="NaN or infinite") as info:
            load(tmp_path / "m.keras")
        assert "softmax/bias" in str(info.value)
        assert "is corrupt or was not saved" in str(info.value)


def test_load_accepts_finite_weights(fitted, tmp_path):
    fitted.save(tmp_path / "ok.keras")
    X = np.zeros((2, 784), np.uint8)
    np.testing.assert_array_equal(
        load_model(tmp_path / "ok.keras").predict_proba(X), fitted.predict_proba(X)
    )
