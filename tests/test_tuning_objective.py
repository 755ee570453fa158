"""One trial's fits and scores (tuning/objective.py): the objective a search
ships to Dask workers pickles, runs a trial in any study, and keeps the
errors of its own process only."""

from __future__ import annotations

import pickle

import numpy as np
import optuna
import pytest
from sklearn.metrics import check_scoring

from emnist_estimators import EmnistMLP
from emnist_estimators.tuning.objective import TrialObjective
from emnist_estimators.tuning.space import default_search_space


@pytest.fixture
def objective():
    X = np.random.default_rng(0).integers(0, 256, (60, 784), dtype=np.uint8)
    y = np.arange(60) % 2
    est = EmnistMLP(hidden_layer_sizes=(8,), epochs=1)
    splits = [(np.arange(40), np.arange(40, 60))]
    space = default_search_space(est)
    return TrialObjective(est, X, y, space, splits, check_scoring(est), random_state=0)


def test_a_pickled_objective_runs_a_trial_as_the_original_does(objective):
    copy = pickle.loads(pickle.dumps(objective))
    values = []
    for obj in (objective, copy):
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0)
        )
        study.optimize(obj, n_trials=1)
        assert study.trials[0].user_attrs["epochs"] == 1
        values.append(study.trials[0].value)
    assert values[0] == values[1]


def test_a_failed_trial_records_its_error_which_stays_in_this_process(objective):
    space = {"epochs": optuna.distributions.IntDistribution(-3, -1)}
    objective.space = space
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=1, catch=(Exception,))
    trial = study.trials[0]
    assert trial.state.name == "FAIL"
    assert trial.user_attrs["error"].startswith("InvalidParameterError")
    assert len(objective.errors) == 1
    assert pickle.loads(pickle.dumps(objective)).errors == []
    fresh = objective.fresh()
    assert fresh.errors == [] and fresh.X is objective.X
