"""EmnistSearchCV options: the hyperband and halving pruners, n_jobs, timeout
and scoring, each on tiny data with a tiny network."""

from __future__ import annotations

import threading
import time

import numpy as np
import optuna
import pytest
from helpers import bar_images

from emnist_estimators import EmnistMLP
from emnist_estimators.tuning import EmnistSearchCV

GOOD_LR, HOPELESS_LR = 1e-2, 1e-9  # the second cannot learn in a few epochs


@pytest.fixture(scope="module")
def data():
    X, y = bar_images(150, rng=0)
    return X.reshape(len(X), 784), y


def mlp(**kw):
    params = {
        "hidden_layer_sizes": (16,),
        "epochs": 2,
        "batch_size": 32,
        "lr_schedule": "constant",
        "random_state": 0,
    }
    return EmnistMLP(**{**params, **kw})


@pytest.mark.parametrize(
    "pruner, kind, epochs",
    [
        # 8 epochs: each of hyperband's two brackets (1 to 8 epochs, factor 3)
        # has a rung before the last epoch.
        ("hyperband", optuna.pruners.HyperbandPruner, 8),
        ("halving", optuna.pruners.SuccessiveHalvingPruner, 4),
        # the default: halving met the pruning goal in bench_tuning
        (None, optuna.pruners.SuccessiveHalvingPruner, 4),
    ],
)
def test_pruner_stops_a_hopeless_trial(data, pruner, kind, epochs):
    X, y = data
    # Two good trials first: halving learns its first rung from the first
    # complete trial, so the second is the first one it ranks; hyperband only
    # compares trials in one bracket, and puts trial 3 in the bracket of the
    # good ones (brackets come from a hash of the study name and trial number).
    n_good, n_trials = 2, 4

    def space(trial):
        return {"learning_rate": GOOD_LR if trial.number < n_good else HOPELESS_LR}

    search = EmnistSearchCV(
        mlp(epochs=epochs),
        param_distributions=space,
        n_trials=n_trials,
        **({} if pruner is None else {"pruner": pruner}),
        study_name=f"prune-{pruner}",
        random_state=0,
        refit=False,
    ).fit(X, y)
    assert isinstance(search.study_.pruner, kind)
    states = search.cv_results_["state"]
    assert list(states[:n_good]) == ["COMPLETE"] * n_good
    assert "PRUNED" in states[n_good:], list(states)
    # a pruned trial's fit stopped before its last epoch
    assert np.all(search.cv_results_["epochs"][states == "PRUNED"] < epochs)
    assert search.best_params_ == {"learning_rate": GOOD_LR}


def test_n_jobs_runs_every_trial_in_parallel_threads(data):
    X, y = data
    threads = set()
    lock = threading.Lock()

    def space(trial):
        if not isinstance(trial, optuna.trial.FixedTrial):  # not the replay of best
            with lock:
                threads.add(threading.get_ident())
        return {"dropout": trial.suggest_float("dropout", 0.0, 0.3)}

    search = EmnistSearchCV(
        mlp(epochs=1),
        param_distributions=space,
        n_trials=3,
        n_jobs=2,
        pruner="none",
        random_state=0,
        refit=False,
    ).fit(X, y)
    assert search.n_trials_ == 3
    assert list(search.cv_results_["state"]) == ["COMPLETE"] * 3
    assert sorted(search.cv_results_["number"]) == [0, 1, 2]
    assert len(threads) == 2  # two workers, neither of them the caller
    assert threading.get_ident() not in threads
    first, second = sorted(search.study_.trials, key=lambda t: t.number)[:2]
    assert second.datetime_start < first.datetime_complete  # they overlapped


def test_timeout_stops_starting_trials(data):
    X, y = data
    started = []

    def space(trial):
        if isinstance(trial, optuna.trial.FixedTrial):  # the replay of the best
            return {"dropout": 0.0}
        started.append(trial.number)
        time.sleep(0.3)  # every trial lasts at least this: 20 take over 6 s
        return {"dropout": 0.0}

    search = EmnistSearchCV(
        mlp(epochs=1),
        param_distributions=space,
        n_trials=20,
        timeout=1.0,
        pruner="none",
        random_state=0,
        refit=False,
    ).fit(X, y)
    assert 1 <= search.n_trials_ < 20
    assert len(started) == search.n_trials_
    assert list(search.cv_results_["state"]) == ["COMPLETE"] * search.n_trials_


def test_scoring_neg_log_loss_is_maximised(data):
    from sklearn.metrics import log_loss

    X, y = data
    search = EmnistSearchCV(
        mlp(epochs=2),
        param_distributions={"learning_rate": [GOOD_LR, HOPELESS_LR]},
        n_trials=2,
        scoring="neg_log_loss",
        pruner="none",
        random_state=0,
    ).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    # log loss, not accuracy: negative, and no accuracy in [0, 1] is below 0
    assert np.all(scores < 0)
    assert search.best_score_ == np.max(scores) <= 0
    # every epoch reported to the pruner used the same scorer
    for trial in search.study_.trials:
        assert all(v < 0 for v in trial.intermediate_values.values())
    # score() uses it too: minus the log loss of the refit best estimator
    expected = -log_loss(y, search.predict_proba(X), labels=search.classes_)
    assert search.score(X, y) == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow  # two searches, 11 s
def test_percentile_pruner_demands_the_best_quarter_where_median_lets_pass(data):
    # Five start-up trials: two good, three mediocre (a small step size);
    # then a sixth mediocre trial, identical to the three (same seed and
    # parameters, so the same curve). The median of the five is the mediocre
    # curve, which the sixth equals: the median pruner lets it run. The
    # percentile pruner's bar is the best quarter, the good curve: it stops it.
    X, y = data
    rates = [GOOD_LR, GOOD_LR, 3e-4, 3e-4, 3e-4, 3e-4]

    def space(trial):
        return {"learning_rate": rates[trial.number]}

    states = {}
    for pruner in ("median", "percentile"):
        search = EmnistSearchCV(
            mlp(epochs=4, lr_schedule="constant"),
            param_distributions=space,
            n_trials=len(rates),
            pruner=pruner,
            random_state=0,
            refit=False,
        ).fit(X, y)
        states[pruner] = list(search.cv_results_["state"])
    assert states["median"] == ["COMPLETE"] * 6
    assert states["percentile"] == ["COMPLETE"] * 5 + ["PRUNED"]
    assert isinstance(search.study_.pruner, optuna.pruners.PercentilePruner)
