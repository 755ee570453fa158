"""Multi-objective searches (tuning/objectives.py): directions, the Pareto
front, the refit rule, pruners refused, resuming refused across objectives,
and a front on real Fashion-MNIST reproduced by its seed."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from helpers import bar_images

from emnist_estimators import EmnistMLP
from emnist_estimators.datasets.readers import read_idx
from emnist_estimators.tuning import EmnistSearchCV, study_summary
from emnist_estimators.tuning.objectives import (
    OBJECTIVES,
    check_objectives,
    resolve_pruner,
)
from emnist_estimators.tuning.storage import count_trials

MAX, MIN = optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE


def width_space(trial):
    """Widths as an int (optuna stores tuples badly), and a learning rate."""
    return {
        "hidden_layer_sizes": (trial.suggest_categorical("width", [4, 16, 64]),),
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 3e-2, log=True),
    }


@pytest.fixture(scope="module")
def data():
    return bar_images(240)


def search(objectives=("score", "n_params"), **kw):
    return EmnistSearchCV(
        EmnistMLP(epochs=1),
        width_space,
        objectives=objectives,
        **{"n_trials": 5, "random_state": 0, **kw},
    )


@pytest.fixture(scope="module")
def fitted(data):
    return search(("score", "fit_time", "predict_time", "n_params")).fit(*data)


def dominates(a, b, signs) -> bool:
    """``a`` is as good as ``b`` in every objective and better in one."""
    a, b = np.multiply(signs, a), np.multiply(signs, b)
    return bool(np.all(a >= b) and np.any(a > b))


def assert_front_is_non_dominated(search):
    signs = [1 if d == MAX else -1 for d in search.study_.directions]
    done = [t for t in search.study_.trials if t.state.name == "COMPLETE"]
    front = search.pareto_front_
    assert front, "an empty front"
    for t in front:  # pairwise: no front member dominates another
        for o in front:
            assert not dominates(o.values, t.values, signs), (o.number, t.number)
    for t in done:  # and every other completed trial is dominated by one
        if t not in front:
            assert any(dominates(f.values, t.values, signs) for f in front), t.number
    in_front = [t in front for t in search.study_.trials]
    assert list(search.cv_results_["pareto_front"]) == in_front


@pytest.mark.parametrize(
    "objectives, match",
    [
        (("score", "accuracy"), r"Unknown objectives \['accuracy'\]"),
        (("score", "score"), "twice"),
        (("fit_time",), "must include 'score'"),
        ("score,fit_time", "tuple of names"),
    ],
)
def test_bad_objectives_are_refused_with_the_known_names(objectives, match):
    with pytest.raises(ValueError, match=match):
        check_objectives(objectives)


def test_each_objective_has_its_direction(fitted):
    assert fitted.study_.directions == [MAX, MIN, MIN, MIN]
    assert fitted.study_.metric_names == list(OBJECTIVES)
    assert isinstance(fitted.study_.pruner, optuna.pruners.NopPruner)  # 'auto'
    results = fitted.cv_results_
    for trial, n_params in zip(fitted.study_.trials, results["n_params"], strict=True):
        width = trial.params["width"]
        assert n_params == 784 * width + width + width * 3 + 3  # three classes
    assert np.all(results["mean_fit_time"] > 0)
    assert np.all(results["mean_predict_time"] > 0)
    # the per-image time is a small share of the fit's seconds
    assert np.all(results["mean_predict_time"] < results["mean_fit_time"] / 10)


def test_pareto_front_is_non_dominated(fitted):
    assert_front_is_non_dominated(fitted)
    summary = study_summary(fitted)
    assert summary["objectives"] == list(OBJECTIVES)
    assert [t["number"] for t in summary["pareto_front"]] == [
        t.number for t in fitted.pareto_front_
    ]


def test_refit_takes_the_best_score_of_the_front(fitted, data):
    chosen = fitted.study_.trials[fitted.best_index_]
    assert chosen in fitted.pareto_front_
    assert fitted.best_score_ == max(t.values[0] for t in fitted.pareto_front_)
    assert fitted.best_score_ == np.nanmax(fitted.cv_results_["mean_test_score"])
    assert fitted.best_params_["hidden_layer_sizes"] == (chosen.params["width"],)
    refit = fitted.best_estimator_
    assert refit.hidden_layer_sizes == (chosen.params["width"],)
    assert (
        refit.model_.count_params()
        == fitted.cv_results_["n_params"][fitted.best_index_]
    )


@pytest.mark.slow  # a second search of its own, 9 s
def test_refit_callable_picks_the_trial_it_names(data):
    def smallest_on_the_front(results):
        on_front = np.flatnonzero(results["pareto_front"])
        return int(on_front[np.argmin(results["n_params"][on_front])])

    fitted = search(refit=smallest_on_the_front).fit(*data)
    index = fitted.best_index_
    assert index == smallest_on_the_front(fitted.cv_results_)
    smallest = min(fitted.cv_results_["n_params"])
    assert fitted.cv_results_["n_params"][index] == smallest
    width = fitted.study_.trials[index].params["width"]
    assert fitted.best_estimator_.hidden_layer_sizes == (width,)
    assert fitted.best_score_ == fitted.cv_results_["mean_test_score"][index]
    with pytest.raises(ValueError, match="refit callable returned 99"):
        search(n_trials=1, refit=lambda results: 99).fit(*data)


@pytest.mark.parametrize("pruner", ["median", "halving", optuna.pruners.MedianPruner()])
def test_a_pruner_is_refused_before_any_trial(data, tmp_path, pruner):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    with pytest.raises(ValueError, match="does not prune multi-objective"):
        search(pruner=pruner, storage=url, study_name="s").fit(*data)
    assert count_trials(tmp_path / "study.db") == 0
    assert resolve_pruner("none", ("score", "fit_time")) == "none"


def test_resuming_with_other_objectives_is_refused(data, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    kw = {"storage": url, "load_if_exists": True, "n_trials": 1, "refit": False}
    search(**kw, study_name="multi").fit(*data)
    for objectives in [("score", "fit_time"), ("n_params", "score"), ("score",)]:
        with pytest.raises(ValueError, match="created for the objectives score"):
            search(objectives, **kw, study_name="multi").fit(*data)
    resumed = search(**kw, study_name="multi").fit(*data)
    assert resumed.n_trials_ == 2
    search(("score",), **kw, study_name="one").fit(*data)
    with pytest.raises(ValueError, match=r"value 0 \(maximize\)"):
        search(**kw, study_name="one").fit(*data)
    assert count_trials(tmp_path / "study.db") == 3  # the refused fits ran none


def test_with_cross_validation_each_objective_is_the_mean_over_folds(data):
    fitted = search(("score", "fit_time"), n_trials=2, cv=2, refit=False).fit(*data)
    for trial in fitted.study_.trials:
        assert trial.user_attrs["epochs"] == 2  # one per fold, none pruned
        assert trial.values[1] == trial.user_attrs["fit_time"]
    assert_front_is_non_dominated(fitted)


def fashion_sample(folder, n=1200):
    X = read_idx(folder / "train-images-idx3-ubyte.gz").reshape(-1, 784)[:n]
    return X, read_idx(folder / "train-labels-idx1-ubyte.gz")[:n]


@pytest.mark.slow
def test_a_seeded_front_on_fashion_mnist_is_reproducible(fashion_dir):
    """fit_time changes from run to run: a front that uses it does not
    reproduce, so this one trades the score against the network's size."""
    X, y = fashion_sample(fashion_dir)
    runs = [search(n_trials=6, random_state=3, refit=False).fit(X, y) for _ in range(2)]
    for run in runs:
        assert_front_is_non_dominated(run)
    fronts = [[(t.number, t.params, t.values) for t in r.pareto_front_] for r in runs]
    assert fronts[0] == fronts[1]
    assert len(fronts[0]) >= 2, "no trade-off found: the test shows nothing"
    assert runs[0].best_score_ > 0.4  # one epoch; chance is 0.1 for 10 classes
