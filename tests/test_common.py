"""scikit-learn's estimator checks over every public estimator."""

from __future__ import annotations

import inspect

import pytest
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

import emnist_estimators
from emnist_estimators import EmnistCNN, EmnistMLP, PixelScaler

# Each entry: a check we knowingly fail, with the reason a reviewer can verify.
_SCIKERAS_BASE = {
    "check_mixin_order": (
        "scikeras' KerasClassifier lists BaseEstimator before ClassifierMixin and a "
        "subclass cannot reorder its bases; our __sklearn_tags__ sets the "
        "classifier type explicitly (is_classifier() is True, tested below)"
    ),
    "check_estimator_tags_renamed": (
        "scikeras' BaseWrapper defines the pre-1.6 _more_tags; our classes define "
        "__sklearn_tags__, which is what scikit-learn reads"
    ),
    "check_sample_weight_equivalence_on_dense_data": (
        "mini-batch SGD with shuffling and dropout: weighting a sample by 2 is "
        "equal to repeating it only in expectation, not bit for bit"
    ),
}
EXPECTED_FAILED = {"EmnistMLP": _SCIKERAS_BASE, "EmnistCNN": _SCIKERAS_BASE}

ESTIMATORS = [
    PixelScaler(),
    EmnistMLP(hidden_layer_sizes=(8,), epochs=2, batch_size=32, random_state=0),
    EmnistCNN(filters=(4,), dense_units=(8,), epochs=2, batch_size=32, random_state=0),
]


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED.get(type(est).__name__, {}),
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_every_public_estimator_is_checked():
    public = {
        name
        for name, obj in inspect.getmembers(emnist_estimators, inspect.isclass)
        if issubclass(obj, BaseEstimator)
    }
    assert public == {type(e).__name__ for e in ESTIMATORS}


@pytest.mark.parametrize("name", sorted(EXPECTED_FAILED))
def test_expected_failures_have_reasons(name):
    assert all(len(reason) > 40 for reason in EXPECTED_FAILED[name].values())
