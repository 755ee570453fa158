"""training.py: a fit whose loss becomes NaN or infinite stops, and undoes itself."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import bar_images

from emnist_estimators import EmnistMLP, training
from emnist_estimators.checkpoints import CHECKPOINT_NAME
from emnist_estimators.exceptions import EmnistEstimatorsError, TrainingDivergedError


def _mlp(**kw):
    params = {"hidden_layer_sizes": (8,), "epochs": 2, "random_state": 0}
    return EmnistMLP(**{**params, **kw})


@pytest.fixture(scope="module")
def bars():
    return bar_images(90, rng=0)


class _Poison(keras.callbacks.Callback):
    """Set the output layer's bias to NaN at the start of epoch ``after`` (0-based)."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.after:
            kernel = self.model.trainable_weights[-1]  # the output bias
            kernel.assign(np.full(kernel.shape, np.nan, np.float32))


def test_a_diverging_fit_stops_naming_the_epoch(bars):
    X, y = bars
    est = _mlp(epochs=4)
    with pytest.raises(TrainingDivergedError, match=r"epoch 3 of 4") as info:
        est.fit(X, y, callbacks=[_Poison(2)])
    assert isinstance(info.value, EmnistEstimatorsError)
    assert isinstance(info.value, ArithmeticError)
    assert "left as before" in str(info.value)
    assert not hasattr(est, "model_") and not hasattr(est, "classes_")


def test_a_too_high_learning_rate_stops_the_fit_at_the_epoch_it_diverged(bars):
    # the loss Keras logs is a running mean: NaN from the second batch on
    X, y = bars
    est = _mlp(learning_rate=1e30, batch_size=30)
    with pytest.raises(TrainingDivergedError, match=r"epoch 1 of 2:"):
        est.fit(X, y)
    assert not hasattr(est, "model_")


def test_a_failed_warm_fit_and_partial_fit_leave_the_estimator_as_before(bars):
    X, y = bars
    est = _mlp(warm_start=True).fit(X, y)
    proba, history = est.predict_proba(X), dict(est.history_)
    with pytest.raises(TrainingDivergedError, match="epoch 2 of 2"):
        est.fit(X, y, callbacks=[_Poison(1)])  # Keras counts a warm fit's from 0
    np.testing.assert_array_equal(est.predict_proba(X), proba)
    assert est.history_ == history and est.n_iter_ == 2
    est.set_params(callbacks=[_Poison(2)])
    with pytest.raises(TrainingDivergedError, match="epoch 3 of 3"):
        est.partial_fit(X, y)  # partial_fit's epoch 3 (n_iter_ + 1)
    np.testing.assert_array_equal(est.predict_proba(X), proba)
    assert est.n_iter_ == 2


def test_a_diverged_epoch_writes_no_checkpoint(bars, tmp_path):
    X, y = bars
    with pytest.raises(TrainingDivergedError, match="epoch 2 of 3"):
        _mlp(epochs=3, checkpoint_dir=tmp_path).fit(X, y, callbacks=[_Poison(1)])
    # the checkpoint holds epoch 1, finite: a fit resumes from it
    est = _mlp(epochs=3, checkpoint_dir=tmp_path).fit(X, y)
    assert est.n_iter_ == 3 and np.isfinite(est.predict_proba(X)).all()
    assert (tmp_path / CHECKPOINT_NAME).exists()


class _NoCheck(keras.callbacks.Callback):
    def __init__(self, epochs):
        super().__init__()


@pytest.mark.parametrize("verbose", [0, 1])
def test_the_check_does_not_change_a_seeded_fit(bars, monkeypatch, verbose):
    X, y = bars
    checked = _mlp(epochs=3, verbose=verbose).fit(X, y)
    monkeypatch.setattr(training, "FiniteLossCheck", _NoCheck)
    unchecked = _mlp(epochs=3, verbose=verbose).fit(X, y)
    np.testing.assert_array_equal(checked.predict_proba(X), unchecked.predict_proba(X))
    assert checked.history_ == unchecked.history_


class _Ruin(keras.callbacks.Callback):
    """Keep each epoch's loss and weights; make the weights huge at epoch ``at``."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.losses, self.weights = at, [], []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            rng = np.random.default_rng(0)
            for var in self.model.trainable_weights:
                var.assign(rng.normal(0, 20, var.shape).astype(np.float32))

    def on_epoch_end(self, epoch, logs=None):
        self.losses.append(logs["loss"])
        self.weights.append(self.model.get_weights())


def test_early_stopping_without_held_out_rows_watches_the_training_loss(bars):
    # validation_fraction=0: the training loss decides when to stop, and the
    # weights of the epoch with the lowest one are restored
    X, y = bars
    ruin = _Ruin(at=2)
    est = _mlp(epochs=8, early_stopping=True, patience=2, validation_fraction=0.0)
    est.fit(X, y, callbacks=[ruin])
    best = int(np.argmin(ruin.losses))
    assert best < 2 and est.n_iter_ == best + 3 == len(ruin.losses) < 8
    assert "val_loss" not in est.history_
    for got, kept in zip(est.model_.get_weights(), ruin.weights[best], strict=True):
        np.testing.assert_array_equal(got, kept)
