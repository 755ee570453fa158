"""The search space (tuning/space.py): the default one under a pipeline's
names, a user's space checked against the estimator, a trial's parameters."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from sklearn.pipeline import Pipeline

from emnist_estimators import EmnistCNN, EmnistMLP, PixelScaler
from emnist_estimators.tuning.space import (
    DEFAULT_SPACE,
    check_space,
    default_search_space,
    trial_params,
)


def test_the_default_space_uses_the_names_set_params_takes():
    assert default_search_space(EmnistMLP()) == DEFAULT_SPACE
    pipe = Pipeline([("scale", PixelScaler()), ("clf", EmnistCNN())])
    space = default_search_space(pipe)
    assert space == {f"clf__{k}": v for k, v in DEFAULT_SPACE.items()}
    pipe.set_params(**{name: 0.1 for name in space if name.endswith("dropout")})


def test_an_estimator_without_the_default_parameters_is_told_to_pass_a_space():
    with pytest.raises(ValueError, match="PixelScaler has none of the default"):
        default_search_space(PixelScaler())


def test_choices_and_ranges_become_optuna_distributions():
    space = check_space(
        EmnistMLP(),
        {"epochs": (1, 5), "dropout": (0.0, 0.5), "batch_size": [32, 64]},
    )
    assert space == {
        "epochs": IntDistribution(1, 5),
        "dropout": FloatDistribution(0.0, 0.5),
        "batch_size": CategoricalDistribution([32, 64]),
    }


@pytest.mark.parametrize(
    "space, exc, match",
    [
        ({}, ValueError, "param_distributions is empty"),
        ({"drop_out": (0.0, 0.5)}, ValueError, r"Unknown parameter.*drop_out.*dropout"),
        ({"dropout": []}, ValueError, "choices for 'dropout' are empty"),
        ({"dropout": (0.5, 0.1)}, ValueError, "low 0.5 must be smaller"),
        ({"dropout": "wide"}, TypeError, "Cannot search 'dropout' over 'wide'"),
    ],
)
def test_a_bad_space_is_refused_naming_what_is_wrong(space, exc, match):
    with pytest.raises(exc, match=match):
        check_space(EmnistMLP(), space)


def test_a_trial_draws_its_parameters_from_the_space_or_the_callable():
    fixed = optuna.trial.FixedTrial({"dropout": 0.25, "batch_size": 64})
    space = check_space(EmnistMLP(), {"dropout": (0.0, 0.5), "batch_size": [32, 64]})
    assert trial_params(fixed, space) == {"dropout": 0.25, "batch_size": 64}
    assert trial_params(fixed, lambda t: {"epochs": 3}) == {"epochs": 3}
    with pytest.raises(TypeError, match="must return a dict"):
        trial_params(fixed, lambda t: [("epochs", 3)])
