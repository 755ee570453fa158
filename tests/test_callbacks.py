"""The Keras callbacks: the training progress bar and optuna pruning."""

from __future__ import annotations

import io

import keras
import numpy as np
import optuna
from helpers import bar_images, modules_loaded_by

from emnist_estimators import EmnistMLP
from emnist_estimators.callbacks import EpochProgressBar, PruningCallback


def small_mlp(**kw):
    return EmnistMLP(hidden_layer_sizes=(16,), epochs=3, batch_size=32, **kw)


def bars(n=60):
    X, y = bar_images(n, rng=0)
    return X.reshape(n, -1), y


def test_importing_callbacks_does_not_import_tensorflow():
    loaded = modules_loaded_by(
        "import emnist_estimators.callbacks",
        ("tensorflow", "keras"),
    )
    assert loaded == []


def test_callbacks_are_keras_callbacks_of_one_class_each():
    first, second = EpochProgressBar(1), EpochProgressBar(2)
    assert isinstance(first, keras.callbacks.Callback)
    assert type(first) is type(second)  # one Keras subclass, made once
    assert isinstance(first, EpochProgressBar)


def test_progress_bar_counts_epochs_and_shows_metrics():
    X, y = bars()
    out = io.StringIO()
    clf = small_mlp(random_state=0)
    clf.fit(X, y, callbacks=[EpochProgressBar(clf.epochs, file=out)])
    text = out.getvalue()
    assert "3/3" in text and "loss=" in text and "accuracy=" in text
    quiet = io.StringIO()
    small_mlp(random_state=0).fit(
        X, y, callbacks=[EpochProgressBar(3, enabled=False, file=quiet)]
    )
    assert quiet.getvalue() == ""


def test_pruning_callback_is_the_one_tuning_uses():
    from emnist_estimators import tuning

    assert tuning.PruningCallback is PruningCallback


def test_pruning_callback_reports_every_epoch_and_stops_when_pruned():
    X, y = bars()
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    clf = small_mlp(random_state=0)
    callback = PruningCallback(trial, lambda: clf.score(X, y), step_offset=10)
    clf.fit(X, y, callbacks=[callback])
    assert not callback.pruned and callback.epochs_run == 3 == clf.n_iter_
    assert sorted(trial.storage.get_trial(trial._trial_id).intermediate_values) == [
        10,
        11,
        12,
    ]
    assert callback.last_score == np.float64(clf.score(X, y))
    pruning = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2)
    )
    clf = small_mlp()
    callback = PruningCallback(pruning.ask(), lambda: clf.score(X, y))
    clf.fit(X, y, callbacks=[callback])
    assert callback.pruned and callback.epochs_run == 1 == clf.n_iter_
