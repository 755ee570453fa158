"""labels.py: class and sample weights that would train to NaN, or not at all."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from helpers import bar_images

from emnist_estimators import EmnistMLP
from emnist_estimators.labels import (
    MAX_WEIGHT,
    class_sample_weights,
    combine_weights,
    validate_sample_weight,
)


def _mlp(**kw):
    return EmnistMLP(hidden_layer_sizes=(8,), epochs=1, random_state=0, **kw)


@pytest.fixture(scope="module")
def bars():
    return bar_images(60, rng=0)


def test_a_huge_class_weight_is_refused_before_training(bars):
    # 1e30 passed validation and trained to NaN: predict answered class 0
    # for every row and predict_proba was NaN
    X, y = bars
    est = _mlp(class_weight={0: 1e30})
    with pytest.raises(ValueError, match=r"class_weight\[0\] reaches 1e\+30"):
        est.fit(X, y)
    assert not hasattr(est, "model_")


def test_class_weight_times_sample_weight_overflowing_is_refused(bars):
    X, y = bars
    w = np.full(len(y), 1e10)
    est = _mlp(class_weight={1: 1e10})  # each alone is allowed, not their product
    with pytest.raises(ValueError, match="sample_weight times class_weight reaches"):
        est.fit(X, y, sample_weight=w)
    # a product past float32's range: our error, not inf weights
    class_w = np.full(3, 1e15, np.float32)
    with pytest.raises(ValueError, match="at most 1e\\+15"):
        combine_weights(np.full(3, 1e30, np.float32), class_w)


def test_a_sample_weight_beyond_the_bound_is_refused():
    X = np.zeros((3, 784), np.uint8)
    with pytest.raises(ValueError, match="sample_weight reaches 1e\\+20"):
        validate_sample_weight([1e20, 1.0, 1.0], X)
    # beyond float32: refused with the same message, no overflow warning
    with pytest.raises(ValueError, match="sample_weight reaches 1e\\+40"):
        validate_sample_weight([1e40, 1.0, 1.0], X)
    ok = validate_sample_weight([MAX_WEIGHT, 1.0, 0.0], X)
    assert ok.dtype == np.float32 and ok[0] == np.float32(MAX_WEIGHT)


@pytest.mark.parametrize("weight", [[1.0, -0.5, 1.0], -1], ids=["one-row", "scalar"])
def test_a_negative_sample_weight_is_refused(weight):
    # a negative weight makes the loss reward mistakes on its rows
    X = np.zeros((3, 784), np.uint8)
    with pytest.raises(ValueError, match="Negative values .*sample_weight"):
        validate_sample_weight(weight, X)


@pytest.mark.parametrize(
    "weight", [float("nan"), np.float32("nan"), Decimal("NaN"), Fraction(10**20)]
)
def test_a_scalar_weight_of_any_number_type_gets_the_same_refusal(weight):
    # scikit-learn takes any number as one weight for every row; whatever its
    # type, NaN or a weight beyond the bound is our ValueError
    X = np.zeros((3, 784), np.uint8)
    with pytest.raises(ValueError, match="sample_weight reaches (nan|1e\\+20)"):
        validate_sample_weight(weight, X)
    ok = validate_sample_weight(Decimal("0.5"), X)
    assert ok.dtype == np.float32 and ok.tolist() == [0.5] * 3


@pytest.mark.parametrize("weight", [10**400, [1, 10**400, 1]])
def test_a_weight_beyond_float64_gets_our_refusal_not_an_overflow(weight):
    # numpy cannot convert such a Python int and raises OverflowError
    X = np.zeros((3, 784), np.uint8)
    with pytest.raises(ValueError, match="sample_weight reaches inf"):
        validate_sample_weight(weight, X)


@pytest.mark.parametrize(
    "class_weight, keep",
    [({0: 0.0, 1: 0.0, 2: 0.0}, None), ({0: 0.0}, 0)],
    ids=["all-classes-zero", "the-only-class-in-y-zero"],
)
def test_all_zero_weights_are_refused(bars, class_weight, keep):
    # a loss of 0 everywhere trained nothing, silently
    X, y = bars
    est = _mlp(class_weight=class_weight)
    if keep is not None:  # partial_fit on a batch of class 0 only
        est.initialize(X, y)
        X, y = X[y == keep], y[y == keep]
        with pytest.raises(ValueError, match="Every sample's weight"):
            est.partial_fit(X, y)
        assert est.n_iter_ == 0
        return
    with pytest.raises(ValueError, match="Every sample's weight .* is 0"):
        est.fit(X, y)


def test_class_weights_within_the_bound_still_multiply_sample_weight(bars):
    X, y = bars
    est = _mlp(class_weight={0: 2.0, 2: 0.0})
    est.classes_ = np.array([0, 1, 2])
    class_w = class_sample_weights(est, y)
    w = np.linspace(0.5, 1.5, len(y)).astype(np.float32)
    got = combine_weights(w, class_w)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, w * class_w)
    assert combine_weights(w, None) is w and combine_weights(None, None) is None


def _weights_for(class_weight, classes, y_enc):
    from types import SimpleNamespace

    est = SimpleNamespace(class_weight=class_weight, classes_=np.asarray(classes))
    return class_sample_weights(est, np.asarray(y_enc))


@pytest.mark.parametrize("weight", [True, False])
def test_a_boolean_class_weight_is_refused(weight):
    # True is a number to Python (1): a typo such as {"a": True} must not
    # quietly weigh the class 1
    with pytest.raises(ValueError, match="class weights must be finite numbers"):
        _weights_for({"a": weight}, ["a", "b"], [0, 1])


def test_balanced_class_weight_is_scikit_learns_rule_over_the_classes_present():
    # n_samples / (n_classes_present * count): 6 / (2 * 4) and 6 / (2 * 2);
    # class "b", absent from y, gets no weight of its own (no row to weigh)
    y_enc = [0, 0, 0, 0, 2, 2]
    weights = _weights_for("balanced", ["a", "b", "c"], y_enc)
    np.testing.assert_allclose(weights, [0.75] * 4 + [1.5] * 2)
    assert weights.dtype == np.float32
    # every class weighs the same in total: the point of "balanced"
    assert weights[:4].sum() == pytest.approx(weights[4:].sum())
