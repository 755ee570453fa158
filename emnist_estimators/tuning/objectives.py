"""What a search optimises: its objectives, their directions, the Pareto front.

One objective (``("score",)``, the default) is the classic search: maximise
the score, prune hopeless trials. Several (``("score", "fit_time")``) make
an optuna multi-objective study: a trial returns one value per objective,
nothing is pruned, and :func:`choose_trial` picks the trial to refit from
the Pareto front (:func:`pareto_front`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import optuna

from .space import final_step

__all__ = [
    "COLUMNS",
    "OBJECTIVES",
    "Measurements",
    "check_objectives",
    "choose_trial",
    "objective_columns",
    "pareto_front",
    "resolve_pruner",
    "score_value",
]

#: The objectives a search may name, and the direction each implies.
#: ``score``: the scorer's value (mean over folds), greater is better;
#: ``fit_time``: seconds of training (mean over folds); ``predict_time``:
#: seconds per image of scoring the validation images (mean over folds);
#: ``n_params``: the trained network's parameters (weights and biases).
OBJECTIVES: dict[str, str] = {
    "score": "maximize",
    "fit_time": "minimize",
    "predict_time": "minimize",
    "n_params": "minimize",
}

#: The ``cv_results_`` column of each objective (scikit-learn's names where
#: it has one: ``mean_test_score``, ``mean_fit_time``).
COLUMNS: dict[str, str] = {
    "score": "mean_test_score",
    "fit_time": "mean_fit_time",
    "predict_time": "mean_predict_time",
    "n_params": "n_params",
}


def check_objectives(objectives: Any) -> tuple[str, ...]:
    """The objectives as a tuple of known names, with ``score`` among them.

    Parameters
    ----------
    objectives : sequence of str
        Names from :data:`OBJECTIVES`, each at most once.

    Returns
    -------
    tuple of str
        The names, in the order given (the order of a trial's values).

    Raises
    ------
    ValueError
        An unknown or repeated name, no ``score``, or a bare string.

    Examples
    --------
    >>> check_objectives(["score", "fit_time"])
    ('score', 'fit_time')
    """
    known = ", ".join(repr(name) for name in OBJECTIVES)
    if isinstance(objectives, str) or not isinstance(objectives, Sequence):
        raise ValueError(
            f"objectives must be a tuple of names such as ('score', 'fit_time'), "
            f"got {objectives!r}. Known names: {known}."
        )
    names = tuple(objectives)
    unknown = [name for name in names if name not in OBJECTIVES]
    if unknown:
        raise ValueError(f"Unknown objectives {unknown!r}. Known names: {known}.")
    if len(set(names)) != len(names):
        raise ValueError(f"objectives names one objective twice: {names!r}.")
    if "score" not in names:
        raise ValueError(
            f"objectives must include 'score' (the search ranks trials by it and "
            f"refits the best score of the Pareto front), got {names!r}."
        )
    return names


def resolve_pruner(pruner: Any, objectives: tuple[str, ...]) -> Any:
    """The pruner a search with ``objectives`` uses: 'auto' resolved.

    'auto' is successive halving ('halving') for one objective and no
    pruning for several: optuna cannot prune a multi-objective study
    (``Trial.report`` takes one value), so any other pruner is refused then.

    Parameters
    ----------
    pruner : str, optuna pruner or None
        The search's ``pruner``.
    objectives : tuple of str
        The search's objectives.

    Returns
    -------
    str, optuna pruner or None
        What :func:`~.search.make_pruner` takes.

    Raises
    ------
    ValueError
        A pruner with more than one objective.

    Examples
    --------
    >>> resolve_pruner("auto", ("score",))
    'halving'
    >>> resolve_pruner("auto", ("score", "n_params"))
    'none'
    """
    if pruner == "auto":
        return "halving" if len(objectives) == 1 else "none"
    no_pruning = pruner in (None, "none") or isinstance(
        pruner, optuna.pruners.NopPruner
    )
    if len(objectives) > 1 and not no_pruning:
        raise ValueError(
            f"pruner={pruner!r} cannot be used with several objectives "
            f"{objectives!r}: optuna does not prune multi-objective studies "
            "(a trial reports one value per epoch, and there are several). Pass "
            "pruner='auto' or 'none' (CLI: --pruner none), or one objective."
        )
    return pruner


def directions(objectives: tuple[str, ...]) -> list[str]:
    """The study's directions: one per objective, as :data:`OBJECTIVES` says.

    Parameters
    ----------
    objectives : tuple of str
        Checked names (:func:`check_objectives`).

    Returns
    -------
    list of str
        'maximize' or 'minimize' for each.
    """
    return [OBJECTIVES[name] for name in objectives]


def count_params(estimator: Any) -> int:
    """Count the parameters (weights and biases) of a fitted estimator's network.

    Parameters
    ----------
    estimator : estimator or Pipeline
        Fitted; its final step has a Keras ``model_``.

    Returns
    -------
    int
        ``model_.count_params()``.
    """
    return int(final_step(estimator)[1].model_.count_params())


class Measurements:
    """A trial's fits measured fold by fold, turned into its objective values.

    Parameters
    ----------
    objectives : tuple of str
        The search's objectives.
    """

    def __init__(self, objectives: tuple[str, ...]) -> None:
        self.objectives = objectives
        self.folds: list[dict[str, float]] = []

    def add(self, estimator: Any, *, score: float, fit_s: float, predict_s: float):
        """Record one fold: its score and seconds, the network's size.

        Parameters
        ----------
        estimator : estimator or Pipeline
            The fold's fitted candidate.
        score : float
            Its validation score.
        fit_s : float
            Seconds its fit took.
        predict_s : float
            Seconds per validation image its scoring took.
        """
        self.folds.append(
            {
                "score": score,
                "fit_time": fit_s,
                "predict_time": predict_s,
                "n_params": count_params(estimator),
            }
        )

    def values(self, trial: Any) -> tuple[float, ...]:
        """The trial's values, one per objective; every measure a user attr.

        Parameters
        ----------
        trial : optuna.Trial
            Gets the user attrs ``fit_time``, ``predict_time``, ``n_params``.

        Returns
        -------
        tuple of float
            The mean over folds of each objective, in ``objectives`` order.
        """
        means = {
            name: float(np.mean([fold[name] for fold in self.folds]))
            for name in OBJECTIVES
        }
        for name in ("fit_time", "predict_time", "n_params"):
            trial.set_user_attr(name, means[name])
        return tuple(means[name] for name in self.objectives)


def study_objectives(study: optuna.Study) -> tuple[str, ...]:
    """The objectives a study was created for (``("score",)`` if unnamed).

    Parameters
    ----------
    study : optuna.Study
        A study of this package's searches.

    Returns
    -------
    tuple of str
        Its metric names.
    """
    return tuple(study.metric_names or ("score",))


def name_objectives(study: optuna.Study, objectives: tuple[str, ...]) -> None:
    """Name a new multi-objective study's values; refuse a study of others.

    A resumed study must have been created for the same objectives, in the
    same order: its trials' values mean them.

    Parameters
    ----------
    study : optuna.Study
        The study just created or loaded.
    objectives : tuple of str
        The search's objectives.

    Raises
    ------
    ValueError
        The study was created for other objectives.
    """
    wanted = [optuna.study.StudyDirection[d.upper()] for d in directions(objectives)]
    named = study.metric_names
    if len(objectives) > 1 and named is None and study.directions == wanted:
        if not study.get_trials(deepcopy=False):
            with warnings.catch_warnings():
                # experimental since optuna 3.2, on every call
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(list(objectives))
            return
    if study.directions == wanted and study_objectives(study) == objectives:
        return
    had = ", ".join(
        f"{name} ({d.name.lower()})"
        for name, d in zip(
            named or [f"value {i}" for i in range(len(study.directions))],
            study.directions,
            strict=True,
        )
    )
    raise ValueError(
        f"Study {study.study_name!r} was created for the objectives {had}; this "
        f"search has objectives={objectives!r}. Resume it with the same "
        "objectives (CLI: --objectives), or use another study_name."
    )


def score_value(trial: optuna.trial.FrozenTrial, objectives: tuple[str, ...]):
    """A trial's score, or NaN if it has no values (pruned, failed, running).

    Parameters
    ----------
    trial : optuna.trial.FrozenTrial
        A trial of the search's study.
    objectives : tuple of str
        The search's objectives.

    Returns
    -------
    float
        The score value.
    """
    if trial.values is None:
        return math.nan
    return float(trial.values[objectives.index("score")])


def objective_columns(study: optuna.Study) -> dict:
    """``cv_results_`` columns of a multi-objective study's measures.

    Parameters
    ----------
    study : optuna.Study
        The search's study.

    Returns
    -------
    dict of ndarray
        :data:`COLUMNS` other than the score (NaN where not measured), and
        ``pareto_front``: True for the trials :func:`pareto_front` returns.
    """
    trials = study.trials
    columns = {
        COLUMNS[name]: np.array(
            [float(t.user_attrs.get(name, math.nan)) for t in trials], dtype=float
        )
        for name in ("fit_time", "predict_time", "n_params")
    }
    front = {t.number for t in pareto_front(study)}
    columns["pareto_front"] = np.array([t.number in front for t in trials])
    return columns


def pareto_front(study: optuna.Study) -> list:
    """The study's non-dominated completed trials, by trial number.

    Parameters
    ----------
    study : optuna.Study
        The search's study.

    Returns
    -------
    list of optuna.trial.FrozenTrial
        Optuna's ``study.best_trials``: no other completed trial is as good
        in every objective and better in one.
    """
    return sorted(study.best_trials, key=lambda t: t.number)


def choose_trial(
    study: optuna.Study,
    objectives: tuple[str, ...],
    refit: bool | Callable[[dict], int],
    cv_results: dict,
) -> int:
    """The index in ``cv_results`` (and ``study.trials``) of the trial to refit.

    The rule: ``refit`` callable - the index it returns from ``cv_results``;
    otherwise, with one objective, optuna's best trial; with several, the
    best score of the Pareto front (the lowest trial number among equals).

    Parameters
    ----------
    study : optuna.Study
        The search's study, with a completed trial.
    objectives : tuple of str
        The search's objectives.
    refit : bool or callable
        The search's ``refit``.
    cv_results : dict
        The search's ``cv_results_``.

    Returns
    -------
    int
        The chosen trial's position.

    Raises
    ------
    ValueError
        ``refit`` returned something else than the index of a completed trial.
    """
    trials = study.trials
    if callable(refit):
        index = refit(cv_results)
        ok = isinstance(index, Integral) and not isinstance(index, bool)
        if (
            not ok
            or not 0 <= index < len(trials)
            or cv_results["state"][index] != ("COMPLETE")
        ):
            raise ValueError(
                f"refit callable returned {index!r}; it must return the index in "
                f"cv_results_ (0 to {len(trials) - 1}) of a COMPLETE trial."
            )
        return int(index)
    if len(objectives) == 1:
        best = study.best_trial
    else:
        best = max(
            pareto_front(study),
            key=lambda t: (score_value(t, objectives), -t.number),
        )
    return next(i for i, t in enumerate(trials) if t.number == best.number)
