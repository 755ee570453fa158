"""sample_weight changes what the estimators learn, as scikit-learn promises.

scikit-learn's own weighting check (weight 2 == a repeated row, bit for bit)
is an expected failure for mini-batch SGD (see test_common.py), so these
tests check the effect statistically: a fit that ignored the weights fails
both of them.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import bar_images

from emnist_estimators import EmnistMLP


def tiny_mlp(seed, **kw):
    params = {
        "hidden_layer_sizes": (32,),
        "epochs": 6,
        "batch_size": 32,
        "learning_rate": 1e-2,
        "validation_fraction": 0.0,  # the same rows train in every variant
        "random_state": seed,
    }
    return EmnistMLP(**{**params, **kw})


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_zero_weight_class_is_not_learned(method):
    X, y = bar_images(300, 0)
    X_new, _ = bar_images(300, 1)

    def predictions(sample_weight):
        clf = tiny_mlp(0, lr_schedule="constant", learning_rate=3e-3)
        if method == "fit":
            clf.fit(X, y, sample_weight=sample_weight)
        else:
            for _ in range(5):
                clf.partial_fit(X, y, classes=[0, 1, 2], sample_weight=sample_weight)
        return clf.predict(X_new)

    weighted = predictions(np.where(y == 2, 0.0, 1.0))
    plain = predictions(np.ones(len(y)))
    assert np.mean(plain == 2) > 0.2  # the class is learnable ...
    assert np.mean(weighted == 2) < 0.02  # ... but not learned at weight 0


def test_weight_two_matches_repeated_rows():
    # One ambiguous image labelled 0 and 1 equally often: the network's P(0)
    # on it follows the weighted share of label 0: 1/2 unweighted, 2/3 when
    # those rows weigh 2 or appear twice. Bars of the other classes are learnt.
    X, y = bar_images(300, 0)
    ambiguous = y == 2
    X[ambiguous] = X[np.flatnonzero(ambiguous)[0]]
    y[ambiguous] = np.arange(ambiguous.sum()) % 2
    heavy = ambiguous & (y == 0)
    X_dup = np.concatenate([X, X[heavy]])
    y_dup = np.concatenate([y, y[heavy]])
    probe = X[ambiguous][:1]

    def p0(clf):
        return clf.predict_proba(probe)[0, 0]

    seeds = range(3)
    weighted = np.mean(
        [
            p0(tiny_mlp(s).fit(X, y, sample_weight=np.where(heavy, 2.0, 1.0)))
            for s in seeds
        ]
    )
    repeated = np.mean([p0(tiny_mlp(s).fit(X_dup, y_dup)) for s in seeds])
    unweighted = np.mean([p0(tiny_mlp(s).fit(X, y)) for s in seeds])
    assert unweighted == pytest.approx(0.5, abs=0.08)
    assert repeated == pytest.approx(2 / 3, abs=0.08)
    assert weighted == pytest.approx(repeated, abs=0.05)


def _small_mlp(**kw):
    """A two-epoch MLP of 8 units (tiny_mlp trains longer, without validation)."""
    params = {
        "hidden_layer_sizes": (8,),
        "epochs": 2,
        "batch_size": 32,
        "random_state": 0,
    }
    return EmnistMLP(**{**params, **kw})


def test_the_validation_loss_is_weighted_too():
    """Weights apply to the held-out rows as to the training rows: doubling
    every weight doubles both losses (Adam's steps do not change), so early
    stopping watches the same weighted loss that training minimises. And
    random_state fixes the held-out rows: a weighted fit repeats exactly."""
    X, y = bar_images(120, 0)
    plain = _small_mlp(validation_fraction=0.25).fit(X, y).history_
    weights = np.full(len(y), 2.0)
    double = _small_mlp(validation_fraction=0.25).fit(X, y, weights).history_
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(double[key], 2 * np.asarray(plain[key]), rtol=1e-3)
    weights[::7] = 0.5  # rows weigh differently: which rows are held out matters
    first = _small_mlp(validation_fraction=0.25).fit(X, y, weights).history_
    again = _small_mlp(validation_fraction=0.25).fit(X, y, weights).history_
    assert first == again


def test_score_weighs_each_sample():
    X, _ = bar_images(90, 0)
    y = np.random.default_rng(0).permutation(np.arange(90) % 3)  # unlearnable
    clf = _small_mlp(epochs=1, validation_fraction=0.0).fit(X, y)
    right = clf.predict(X) == y
    assert 0 < right.mean() < 1  # some right, some wrong: weights matter
    weights = np.where(right, 1.0, 4.0)
    assert clf.score(X, y, sample_weight=weights) == pytest.approx(
        np.average(right, weights=weights)
    )
    assert clf.score(X, y) == pytest.approx(right.mean())
