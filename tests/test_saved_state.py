"""saved_state.py: the state a saved file holds, every value checked at load.

A tampered value or a network whose weights are not finite is refused by
``load_model``, not later at predict time.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    assert_tampered_state_refused,
    bar_images,
)

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


# --- tampered state: values the file holds, checked against its network --------
# (a state member that is not a JSON object: tests/test_persistence.py)
def _set(key, value):
    return lambda state: {**state, key: value}


TAMPERS = {
    "params null": _set("params", None),
    "unknown param": lambda s: {**s, "params": {**s["params"], "bogus": 1}},
    "bad param value": lambda s: {**s, "params": {**s["params"], "dropout": "high"}},
    "random_state text": _set("random_state", "seed"),
    "fewer classes": lambda s: {**s, "classes": s["classes"][:-1]},
    "classes not a list": _set("classes", "abc"),
    "unsorted classes": lambda s: {**s, "classes": s["classes"][::-1]},
    "bad classes dtype": _set("classes_dtype", "no-such-dtype"),
    "classes dtype mismatch": _set("classes_dtype", "<M8[s]"),
    "n_features wrong": _set("n_features_in", 100),
    "feature names not str": _set("feature_names_in", [1, 2]),
    "input_scale text": _set("input_scale", "1/255"),
    "input_scale zero": _set("input_scale", 0),
    "dtype policy": _set("dtype_policy", "float64"),
    "history": _set("history", {"loss": "low"}),
    "n_iter": _set("n_iter", -1),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampered_state_is_refused_at_load(saved, tmp_path, tamper):
    assert_tampered_state_refused(saved[0], tmp_path, TAMPERS[tamper])
