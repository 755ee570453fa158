"""The optuna tuning module on small generated data."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import optuna
import pytest
from helpers import REPO
from scipy import sparse
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from emnist_estimators import EmnistMLP, PixelScaler
from emnist_estimators.exceptions import StorageError
from emnist_estimators.tuning import EmnistSearchCV, PruningCallback, make_pruner, tune


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(400, 784), dtype=np.uint8)
    y = (X[:, :392].mean(axis=1) > X[:, 392:].mean(axis=1)).astype(int)
    return X, y


def mlp(**kw):
    return EmnistMLP(**{"hidden_layer_sizes": (16,), "epochs": 3, **kw})


def test_search_api_on_a_pipeline(data):
    X, y = data
    pipe = Pipeline([("scale", PixelScaler()), ("clf", mlp())])
    search = EmnistSearchCV(pipe, n_trials=4, random_state=0, pruner="none").fit(X, y)
    assert set(search.best_params_) == {
        "clf__batch_size",
        "clf__dropout",
        "clf__learning_rate",
    }
    assert 0 <= search.best_score_ <= 1
    assert search.best_score_ == np.nanmax(search.cv_results_["mean_test_score"])
    assert search.n_trials_ == 4 and len(search.trials_dataframe()) == 4
    assert (
        search.best_estimator_.named_steps["clf"].dropout
        == search.best_params_["clf__dropout"]
    )
    assert search.predict(X[:5]).shape == (5,)
    assert search.predict_proba(X[:5]).shape == (5, 2)
    assert 0 <= search.score(X, y) <= 1
    assert all(e == 3 for e in search.cv_results_["epochs"])


@pytest.mark.slow  # a 3-fold search, 9 s
def test_custom_space_and_cv(data):
    X, y = data

    def space(trial):
        return {
            "hidden_layer_sizes": (trial.suggest_int("width", 8, 32),),
            "epochs": trial.suggest_int("epochs", 1, 2),
        }

    search = tune(
        mlp(), X, y, param_distributions=space, n_trials=3, cv=2, random_state=0
    )
    assert {"width", "epochs"} == set(search.study_.best_params)
    assert set(search.best_params_) == {"hidden_layer_sizes", "epochs"}
    assert (
        search.best_estimator_.hidden_layer_sizes
        == search.best_params_["hidden_layer_sizes"]
    )
    search = tune(
        mlp(),
        X,
        y,
        param_distributions={"dropout": (0.0, 0.3), "batch_size": [32, 64]},
        n_trials=2,
        random_state=0,
        refit=False,
    )
    assert not hasattr(search, "best_estimator_")


def test_a_pruned_trial_stops_its_fit(data):
    X, y = data
    search = EmnistSearchCV(
        mlp(epochs=6),
        n_trials=2,
        pruner=optuna.pruners.ThresholdPruner(lower=1.01),  # prunes every trial
        random_state=0,
        refit=False,
    )
    with pytest.raises(RuntimeError, match="all were pruned"):
        search.fit(X, y)
    trials = search.study_.trials  # kept for inspection even when fit raises
    assert [t.state.name for t in trials] == ["PRUNED", "PRUNED"]
    assert [t.user_attrs["epochs"] for t in trials] == [1, 1]  # of 6: stopped early


class _PruneFromTheSecondTrial(optuna.pruners.BasePruner):
    """Prunes every trial but the first at its first report: reads no score."""

    def prune(self, study, trial) -> bool:
        return trial.number > 0


def test_cross_validation_prunes_between_folds(data):
    """With cv=int a trial reports its mean score after each fold and stops at
    the pruner's word: trial 1 runs one fold of three, not all."""
    X, y = data
    search = EmnistSearchCV(
        mlp(epochs=1),
        n_trials=2,
        cv=3,
        pruner=_PruneFromTheSecondTrial(),
        random_state=0,
        refit=False,
    ).fit(X, y)
    first, second = search.study_.trials
    assert first.state.name == "COMPLETE" and sorted(first.intermediate_values) == [
        0,
        1,
        2,
    ]
    assert second.state.name == "PRUNED"
    assert list(second.intermediate_values) == [0]  # pruned after its first fold
    assert second.user_attrs["epochs"] == 1  # one fold of one epoch was fitted


def test_median_pruner_prunes_a_hopeless_trial(data):
    X, y = data

    def space(trial):  # five good trials, then hopeless ones that cannot learn
        return {"learning_rate": 1e-2 if trial.number < 5 else 1e-9}

    search = EmnistSearchCV(
        mlp(epochs=6, random_state=0),
        param_distributions=space,
        n_trials=8,
        pruner="median",  # the default halves from the 2nd trial on
        random_state=0,
        refit=False,
    ).fit(X, y)
    states = search.cv_results_["state"]
    assert list(states[:5]) == ["COMPLETE"] * 5
    assert "PRUNED" in states[5:]
    pruned = search.cv_results_["epochs"][states == "PRUNED"]
    assert np.all(pruned < 6)  # their fits stopped early


def test_pruning_callback_records_epochs(data):
    X, y = data
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2)
    )
    trial = study.ask()
    clf = mlp(epochs=5)
    callback = PruningCallback(trial, lambda: clf.score(X, y))
    clf.fit(X, y, callbacks=[callback])
    assert callback.pruned and callback.epochs_run == 1 == clf.n_iter_


def test_same_random_state_same_trials(data):
    X, y = data
    runs = [
        EmnistSearchCV(
            mlp(), n_trials=3, random_state=1, pruner="none", refit=False
        ).fit(X, y)
        for _ in range(2)
    ]
    assert runs[0].cv_results_["params"] == runs[1].cv_results_["params"]
    np.testing.assert_array_equal(
        runs[0].cv_results_["mean_test_score"], runs[1].cv_results_["mean_test_score"]
    )


def test_new_fit_starts_a_new_study_unless_resuming(data, tmp_path):
    X, y = data
    url = f"sqlite:///{tmp_path / 'study.db'}"
    kw = {
        "n_trials": 2,
        "storage": url,
        "study_name": "s",
        "random_state": 0,
        "refit": False,
    }
    EmnistSearchCV(mlp(epochs=1), **kw).fit(X, y)
    with pytest.raises(ValueError, match="already exists.*load_if_exists=True"):
        EmnistSearchCV(mlp(epochs=1), **kw).fit(X, y)
    resumed = EmnistSearchCV(mlp(epochs=1), load_if_exists=True, **kw).fit(X, y)
    assert resumed.n_trials_ == 4


def test_journal_storage(data, tmp_path):
    X, y = data
    search = EmnistSearchCV(
        mlp(epochs=1),
        n_trials=2,
        storage=str(tmp_path / "study.log"),
        study_name="j",
        refit=False,
    ).fit(X, y)
    assert (tmp_path / "study.log").stat().st_size > 0
    assert search.n_trials_ == 2


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (
            {"param_distributions": {"drop_out": (0.0, 0.5)}},
            ValueError,
            "Unknown parameter.*drop_out.*dropout",
        ),
        ({"param_distributions": {}}, ValueError, "empty"),
        (
            {"param_distributions": {"dropout": (0.5, 0.1)}},
            ValueError,
            "low 0.5 must be smaller",
        ),
        ({"param_distributions": {"dropout": "wide"}}, TypeError, "Cannot search"),
        (
            {"n_trials": 0},
            ValueError,
            r"'n_trials' parameter of EmnistSearchCV must be an int in the range "
            r"\[1, inf\) or None. Got 0 instead",
        ),
        (
            {"storage": "postgresql://nobody:secret@127.0.0.1:1/none"},
            StorageError,
            "Cannot open",
        ),
        (
            {"pruner": "mean"},
            ValueError,
            "'pruner' parameter of EmnistSearchCV must be a str among .*'median'",
        ),
    ],
)
def test_bad_settings(data, kwargs, exc, match):
    X, y = data
    with pytest.raises(exc, match=match) as info:
        EmnistSearchCV(mlp(epochs=1), **{"n_trials": 1, **kwargs}).fit(X, y)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "param, value, expected",
    [
        ("n_jobs", "a", r"an int in the range \[1, inf\) or a int among \{-1\}"),
        ("n_jobs", 0, r"an int in the range \[1, inf\) or a int among \{-1\}"),
        ("timeout", 0, r"a float in the range \(0.0, inf\) or None"),
        ("cv", 1, r"an int in the range \[2, inf\) or None"),
        ("validation_fraction", 1.0, r"a float in the range \(0.0, 1.0\)"),
        ("random_state", -1, r"an int in the range \[0, inf\) or None"),
        ("scoring", "acc", "a str among .*'accuracy'"),
        ("param_distributions", 3, "'collections.abc.Mapping', a callable or None"),
        ("estimator", "mlp", "an object implementing 'fit'"),
        ("sampler", "tpe", "'optuna.samplers._base.BaseSampler' or None"),
        ("load_if_exists", "yes", "an instance of 'bool'"),
        ("heartbeat_interval", 0, r"an int in the range \[1, inf\) or None"),
    ],
)
def test_bad_settings_fail_before_the_study(data, monkeypatch, param, value, expected):
    """Issue 12.4: settings are checked like the estimators' (n_jobs="a" failed
    inside optuna), with scikit-learn's message, before a study is created."""
    from sklearn.utils._param_validation import InvalidParameterError

    def no_study(*args, **kwargs):
        raise AssertionError("a study was created before the error")

    monkeypatch.setattr(optuna, "create_study", no_study)
    X, y = data
    kwargs = {"estimator": mlp(epochs=1), "n_trials": 1, param: value}
    with pytest.raises(InvalidParameterError) as info:
        EmnistSearchCV(**kwargs).fit(X, y)
    assert str(info.value).startswith(
        f"The '{param}' parameter of EmnistSearchCV must be "
    )
    assert re.search(expected, str(info.value))
    assert str(info.value).endswith(f"Got {value!r} instead.")


def test_every_setting_is_constrained():
    names = set(EmnistSearchCV._get_param_names())
    assert set(EmnistSearchCV._parameter_constraints) == names


def test_make_pruner_keeps_its_own_message():
    with pytest.raises(ValueError, match="Unknown pruner 'mean'"):
        make_pruner("mean")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_jobs": -1, "pruner": "successive_halving"},
        {"cv": 2, "validation_fraction": 0.5, "scoring": "accuracy", "timeout": 600},
        {"param_distributions": {"dropout": [0.0, 0.1]}, "heartbeat_interval": None},
    ],
)
def test_valid_settings_still_run(data, kwargs):
    X, y = data
    search = EmnistSearchCV(
        mlp(epochs=1), n_trials=1, random_state=0, refit=False, **kwargs
    ).fit(X[:120], y[:120])
    assert search.n_trials_ == 1


def test_data_errors_reach_the_caller(data):
    """When every trial fails, fit raises the estimator's own error (as
    scikit-learn's searches with error_score='raise'), not a RuntimeError."""
    X, y = data
    bad = X.astype(float)
    bad[3, 5] = np.nan
    search = EmnistSearchCV(mlp(epochs=1), n_trials=2, random_state=0)
    with pytest.raises(ValueError, match="Input X contains NaN") as info:
        search.fit(bad, y)
    assert "Every trial of this fit failed (2)" in info.value.__notes__[0]
    with pytest.raises(TypeError, match="does not accept sparse input"):
        search.fit(sparse.csr_matrix(X), y)
    with pytest.raises(ValueError, match="requires y to be passed"):
        search.fit(X, None)


def test_a_failed_trial_does_not_stop_the_search(data):
    X, y = data

    def space(trial):  # trial 0 fails inside the estimator, trial 1 trains
        return {"dropout": 2.0 if trial.number == 0 else 0.1}

    search = EmnistSearchCV(
        mlp(epochs=1), param_distributions=space, n_trials=2, random_state=0
    ).fit(X, y)
    assert list(search.cv_results_["state"]) == ["FAIL", "COMPLETE"]
    assert "'dropout' parameter" in search.study_.trials[0].user_attrs["error"]
    assert search.best_params_ == {"dropout": 0.1}


def test_n_features_in_follows_the_refit_estimator(data):
    X, y = data
    search = EmnistSearchCV(mlp(epochs=1), n_trials=1, random_state=0)
    assert not hasattr(search, "n_features_in_")
    search.fit(X, y)
    assert search.n_features_in_ == X.shape[1] == search.best_estimator_.n_features_in_
    search.set_params(refit=False).fit(X, y)
    assert not hasattr(search, "n_features_in_")  # no stale model is left
    with pytest.raises(NotFittedError):
        search.predict(X)


def test_study_with_other_direction(data, tmp_path):
    X, y = data
    url = f"sqlite:///{tmp_path / 'min.db'}"
    optuna.create_study(storage=url, study_name="m", direction="minimize")
    with pytest.raises(ValueError, match="minimize"):
        EmnistSearchCV(
            mlp(epochs=1), n_trials=1, storage=url, study_name="m", load_if_exists=True
        ).fit(X, y)


WORKER = """
import pathlib, time
import keras
import numpy as np
from emnist_estimators import EmnistMLP
from emnist_estimators.tuning import EmnistSearchCV

SIGNALS = pathlib.Path({signals!r})


class HoldSecondTrial(keras.callbacks.Callback):
    # Trial 0 runs to the end; trial 1 tells the test it is running, then
    # waits to be killed, so the test never races a trial that completes.
    def on_epoch_end(self, epoch, logs=None):
        fits = len(list(SIGNALS.glob("fit-*")))
        if fits >= 2 and epoch == 0:
            (SIGNALS / "running").touch()
            time.sleep(600)

    def on_train_begin(self, logs=None):
        (SIGNALS / f"fit-{{time.time_ns()}}").touch()


rng = np.random.default_rng(0)
X = rng.integers(0, 256, size=(600, 784), dtype=np.uint8)
y = (X[:, :392].mean(axis=1) > X[:, 392:].mean(axis=1)).astype(int)
clf = EmnistMLP(hidden_layer_sizes=(16,), epochs=3, callbacks=[HoldSecondTrial()])
EmnistSearchCV(clf,
               n_trials=50, storage={url!r}, study_name="killed", load_if_exists=True,
               heartbeat_interval=1, random_state=0, refit=False,
               pruner="none").fit(X, y)
"""


@pytest.mark.slow  # a search killed in a child process, 12 s
def test_resume_after_sigkill(tmp_path, data):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    signals = tmp_path / "signals"
    signals.mkdir()
    err_file = (tmp_path / "worker.err").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(WORKER.format(url=url, signals=str(signals))),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=err_file,
    )
    try:
        deadline = time.time() + 240
        while not (signals / "running").exists():
            if time.time() > deadline or proc.poll() is not None:
                err = (tmp_path / "worker.err").read_text()[-2000:]
                pytest.fail(f"the worker never reached its second trial:\n{err}")
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        err_file.close()
    before = optuna.load_study(study_name="killed", storage=url).trials
    finished = [t.number for t in before if t.state == optuna.trial.TrialState.COMPLETE]
    assert finished == [0] and before[-1].state == optuna.trial.TrialState.RUNNING
    killed = before[-1].number
    time.sleep(3)  # longer than the grace period of 2 heartbeats
    X, y = data
    resumed = EmnistSearchCV(
        mlp(epochs=1),
        n_trials=2,
        storage=url,
        study_name="killed",
        load_if_exists=True,
        heartbeat_interval=1,
        refit=False,
        param_distributions={"dropout": (0.0, 0.5)},
    ).fit(X, y)
    trials = {t.number: t for t in resumed.study_.trials}
    assert all(trials[n].state == optuna.trial.TrialState.COMPLETE for n in finished)
    assert trials[killed].state == optuna.trial.TrialState.FAIL
    assert len(trials) == len(before) + 2


def _trial_params(search):
    return [t.params for t in search.study_.trials]


def test_resumed_study_continues_instead_of_replaying(data, tmp_path):
    """Issue 11.7: resuming with a fixed random_state drew trials 0 and 1 again."""
    X, y = data

    def run(folder):
        url = f"sqlite:///{folder / 'study.db'}"
        kw = {
            "n_trials": 2,
            "storage": url,
            "study_name": "s",
            "random_state": 0,
            "refit": False,
            "pruner": "none",
            "load_if_exists": True,
        }
        EmnistSearchCV(mlp(epochs=1), **kw).fit(X, y)
        return _trial_params(EmnistSearchCV(mlp(epochs=1), **kw).fit(X, y))

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = run(tmp_path / "a")
    assert len(first) == 4
    assert first[2] != first[0] and first[3] != first[1]
    assert len({tuple(sorted(p.items())) for p in first}) == 4
    assert run(tmp_path / "b") == first  # still reproducible


def test_study_summary_and_stored_trial_count(data, tmp_path):
    from emnist_estimators.tuning import count_trials, study_summary

    db = tmp_path / "study.db"
    assert count_trials(db) == 0
    (tmp_path / "not-a-db").write_text("hello")
    assert count_trials(tmp_path / "not-a-db") == 0
    X, y = data
    search = EmnistSearchCV(
        mlp(epochs=1),
        n_trials=3,
        pruner="none",
        storage=f"sqlite:///{db}",
        random_state=0,
        refit=False,
    ).fit(X, y)
    assert count_trials(db) == 3
    summary = study_summary(search, top=2)
    assert summary["n_trials"] == 3 and summary["states"]["COMPLETE"] == 3
    assert summary["best_value"] == search.best_score_
    assert summary["best_params"] == search.best_params_
    assert summary["epochs_spent"] == 3
    values = [t["value"] for t in summary["top"]]
    assert len(values) == 2 and values == sorted(values, reverse=True)
    assert values[0] == search.best_score_
    json.dumps(summary)  # plain values, ready for the summary file
