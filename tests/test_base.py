"""The estimators' one fit path (base.py): what fit and partial_fit promise.

A failed fit leaves the estimator as it was; partial_fit continues only the
network it built, with the classes it started with, each call in an order of
its own; early stopping keeps the best epoch; a resumed fit keeps its seed.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import bar_images

from emnist_estimators import EmnistMLP
from emnist_estimators import batches as batches_mod
from emnist_estimators.checkpoints import CheckpointStore
from emnist_estimators.training import validation_rows


@pytest.fixture(scope="module")
def data():
    X, y = bar_images(240, rng=0)
    return X.reshape(len(X), 784), y


def mlp(**kw):
    return EmnistMLP(
        **{"hidden_layer_sizes": (16,), "epochs": 2, "batch_size": 32, **kw}
    )


class _FailAt(keras.callbacks.Callback):
    def __init__(self, epoch: int, exc=RuntimeError):
        super().__init__()
        self.epoch, self.exc = epoch, exc

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise self.exc("stopped by the test")


def test_a_failed_refit_leaves_the_fitted_estimator_as_it_was(data):
    X, y = data
    est = mlp(random_state=0).fit(X, y)
    before = est.predict_proba(X)
    classes, history = est.classes_.copy(), dict(est.history_)
    with pytest.raises(RuntimeError, match="stopped by the test"):
        est.fit(X, y + 10, callbacks=[_FailAt(0)])  # other classes, then fails
    np.testing.assert_array_equal(est.classes_, classes)
    assert est.history_ == history and est.n_iter_ == 2
    np.testing.assert_array_equal(est.predict_proba(X), before)


def test_a_refused_fit_adds_no_fitted_attribute(data):
    X, y = data
    est = mlp()
    with pytest.raises(ValueError, match="only one class"):
        est.fit(X, np.zeros_like(y))
    assert [k for k in vars(est) if k.endswith("_")] == []


def test_a_failed_partial_fit_gives_the_network_back(data):
    X, y = data
    est = mlp(random_state=0).partial_fit(X, y)
    weights = [w.copy() for w in est.model_.get_weights()]
    est.set_params(callbacks=[_FailAt(1, KeyboardInterrupt)])
    with pytest.raises(KeyboardInterrupt):
        est.partial_fit(X, y)  # its epoch is the second: epoch index 1
    for now, then in zip(est.model_.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(now, then)
    assert est.n_iter_ == 1


def test_partial_fit_refuses_parameters_that_reshape_the_network(data):
    X, y = data
    est = mlp(random_state=0).partial_fit(X, y)
    est.set_params(hidden_layer_sizes=(8,))
    with pytest.raises(ValueError, match="partial_fit keeps the network"):
        est.partial_fit(X, y)
    est.set_params(hidden_layer_sizes=(16,), learning_rate=1e-2)  # not a shape
    est.partial_fit(X, y)
    assert est.n_iter_ == 2


def test_partial_fit_refuses_another_class_set_as_scikit_learn_does(data):
    X, y = data
    est = mlp(random_state=0).partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="not the same as on the first call"):
        est.partial_fit(X, y, classes=[0, 1, 2])
    est.partial_fit(X, y, classes=[3, 2, 1, 0])  # the same set, any order
    assert est.n_iter_ == 2


def test_partial_fit_runs_the_estimators_callbacks(data):
    X, y = data
    seen = []
    counter = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(epoch)
    )
    est = mlp(random_state=0, callbacks=[counter])
    est.partial_fit(X, y).partial_fit(X, y)
    assert seen == [0, 1]


def test_each_epoch_and_each_partial_fit_call_has_an_order_of_its_own(
    data, monkeypatch
):
    """Epoch k's order comes from (seed, k): epochs of a fit differ, and so do
    successive partial_fit calls (their epoch is the count so far)."""
    X, y = data
    orders = []
    real = batches_mod.epoch_order

    def spy(indices, seed, epoch):
        order = real(indices, seed, epoch)
        orders.append((epoch, order.copy()))
        return order

    monkeypatch.setattr(batches_mod, "epoch_order", spy)
    mlp(random_state=0, epochs=3, validation_fraction=0).fit(X, y)
    fit_orders = [o for _, o in orders]
    assert [e for e, _ in orders][-3:] == [0, 1, 2]
    assert not np.array_equal(fit_orders[-1], fit_orders[-2])
    orders.clear()
    est = mlp(random_state=0)
    for _ in range(3):
        est.partial_fit(X, y)
    assert sorted({e for e, _ in orders}) == [0, 1, 2]
    last = dict(orders)
    assert not np.array_equal(last[0], last[1])
    assert not np.array_equal(last[1], last[2])


def test_early_stopping_keeps_the_best_epochs_weights(data):
    """The fitted network scores its hold-out rows as at its best epoch."""
    X, y = data
    est = mlp(
        random_state=0,
        epochs=30,
        learning_rate=0.3,  # too large: the validation loss soon rises
        lr_schedule="constant",
        early_stopping=True,
        patience=1,
        dropout=0.0,
        label_smoothing=0.0,
    ).fit(X, y)
    val_loss = est.history_["val_loss"]
    assert len(val_loss) < 30 and val_loss[-1] > min(val_loss)  # it stopped
    _, val = validation_rows(np.searchsorted(est.classes_, y), 0.1, 0)
    loss = est.model_.evaluate(X[val], y[val], verbose=0)[0]
    assert loss == pytest.approx(min(val_loss), rel=1e-4)


def test_a_resumed_unseeded_fit_keeps_the_seed_it_started_with(
    data, tmp_path, monkeypatch
):
    """random_state=None: the hold-out split and orders come from the seed
    the checkpoint saved, so rows trained on never become validation rows."""
    X, y = data
    seeds = []
    real = CheckpointStore.write

    def spy(self, model, **kw):
        seeds.append(kw["seed"])
        return real(self, model, **kw)

    monkeypatch.setattr(CheckpointStore, "write", spy)
    est = mlp(epochs=3, checkpoint_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y, callbacks=[_FailAt(1, KeyboardInterrupt)])
    assert len(seeds) == 1  # epoch 0 was saved, epoch 1 interrupted
    mlp(epochs=3, checkpoint_dir=tmp_path).fit(X, y)
    assert len(seeds) >= 3 and len(set(seeds)) == 1  # epochs 1, 2 and the end
