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


def test_a_file_saved_without_the_optimizer_is_smaller_and_predicts_the_same(
    tmp_path, recwarn
):
    X, y = bar_images(60, rng=0)
    clf = EmnistMLP(hidden_layer_sizes=(64,), epochs=1, random_state=0).fit(X, y)
    clf.save(tmp_path / "full.keras")
    clf.save(tmp_path / "small.keras", include_optimizer=False)
    # Adam keeps two moments per weight: the file without them is a third
    full, small = ((tmp_path / n).stat().st_size for n in ("full.keras", "small.keras"))
    assert small < 0.45 * full
    loaded = load_model(tmp_path / "small.keras")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # left out on purpose: Keras' "Skipping variable loading" is not shown
    assert not [w for w in recwarn if "optimizer" in str(w.message)]
    # and it still trains on: a warm start begins the optimizer afresh
    loaded.set_params(warm_start=True, epochs=1).fit(X, y)
    assert np.isfinite(loaded.predict_proba(X)).all()
