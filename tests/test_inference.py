"""predict's traced network call (inference.py): the batch path's answers, faster.

Batches up to ``_direct_predict_max`` rows go through one concrete function
per network and input dtype; larger ones through ``Model.predict``. Both
must give the same probabilities and labels, for every input form, after
pickling and loading, and after the weights or the network change.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from helpers import bar_images

from emnist_estimators import EmnistCNN, EmnistMLP, load_model
from emnist_estimators.inference import network_proba

SMALL = {
    EmnistMLP: {"hidden_layer_sizes": (32,)},
    EmnistCNN: {"filters": (4, 8), "dense_units": (16,)},
}


@pytest.fixture(scope="module")
def data():
    X, y = bar_images(300, rng=1)
    return X, y


@pytest.fixture(scope="module", params=[EmnistCNN, EmnistMLP], ids=["cnn", "mlp"])
def fitted(request, data):
    X, y = data
    cls = request.param
    est = cls(**SMALL[cls], epochs=1, batch_size=32, random_state=0)
    return est.fit(X.reshape(len(X), -1), y)


def batch_path(est, X):
    """predict_proba through Model.predict: what larger batches take."""
    slow = pickle.loads(pickle.dumps(est))
    slow._direct_predict_max = 0
    return slow.predict_proba(X), slow.predict(X)


def assert_same_answers(est, X, expected_proba, expected_labels):
    """Row by row, pairs and the whole batch: the batch path's answers."""
    proba = np.vstack([est.predict_proba(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(proba, expected_proba, rtol=0, atol=1e-6)
    labels = np.concatenate([est.predict(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_array_equal(labels, expected_labels)
    for i in range(0, len(X), 2):  # n=2 (and the last single)
        np.testing.assert_allclose(
            est.predict_proba(X[i : i + 2]), expected_proba[i : i + 2], atol=1e-6
        )
    np.testing.assert_allclose(est.predict_proba(X), expected_proba, atol=1e-6)


@pytest.mark.parametrize(
    "form",
    [
        lambda X: X.reshape(len(X), -1),  # flat uint8
        lambda X: X,  # 28x28 uint8
        lambda X: X.reshape(len(X), 28, 28, 1).astype(np.float64),
        lambda X: X.reshape(len(X), -1).astype(np.float32),
    ],
    ids=["flat-uint8", "28x28-uint8", "28x28x1-float64", "flat-float32"],
)
def test_single_images_get_the_batch_paths_answers(fitted, data, form):
    X = form(data[0][:200])
    proba, labels = batch_path(fitted, X)
    assert_same_answers(fitted, X, proba, labels)


def test_pickled_and_loaded_estimators_answer_alike(fitted, data, tmp_path):
    X = data[0][:120].reshape(120, -1)
    fitted.predict_proba(X[:1])  # its function traced before pickling
    proba, labels = batch_path(fitted, X)
    copy = pickle.loads(pickle.dumps(fitted))
    assert_same_answers(copy, X, proba, labels)
    fitted.save(tmp_path / "m.keras")
    assert_same_answers(load_model(tmp_path / "m.keras"), X, proba, labels)


def test_weights_changed_in_place_and_a_new_network_are_used(data):
    X, y = data
    X = X.reshape(len(X), -1)
    est = EmnistMLP(**SMALL[EmnistMLP], epochs=1, random_state=0).fit(X, y)
    before = est.predict_proba(X[:1])
    est.partial_fit(X, y)  # the same network, new weights
    after = est.predict_proba(X[:1])
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, batch_path(est, X[:1])[0], atol=1e-6)
    other = EmnistMLP(**SMALL[EmnistMLP], epochs=1, random_state=5).fit(X, y)
    est.model_ = other.model_  # replaced by hand
    np.testing.assert_allclose(
        est.predict_proba(X[:3]), other.predict_proba(X[:3]), atol=1e-6
    )


def test_network_proba_is_the_networks_output(fitted, data):
    X = data[0][:5].reshape(5, -1)
    got = network_proba(fitted, X)
    assert got.dtype == np.float32 and got.shape == (5, len(fitted.classes_))
    np.testing.assert_array_equal(got, fitted.model_.predict_on_batch(X))
