"""The objective a trial runs: fit a candidate on each split, score it, prune.

:class:`TrialObjective` holds everything one trial needs (the estimator,
the data, the space, the splits, the scorer) and is picklable, so the same
objective runs in ``study.optimize`` here and on a Dask worker.
"""

from __future__ import annotations

import copy
import inspect
import time

import numpy as np
import optuna
from sklearn.base import clone

from ..callbacks import PruningCallback
from .objectives import Measurements
from .space import final_step, trial_params

__all__ = ["TrialObjective", "candidate"]


def candidate(estimator, params: dict, random_state=None):
    """A clone of ``estimator`` with ``params``, seeded if it has no seed.

    Parameters
    ----------
    estimator : estimator or Pipeline
        The estimator searched (not changed).
    params : dict
        Parameters for ``set_params``.
    random_state : int or None, default=None
        The search's seed, given to the final estimator where its own
        ``random_state`` is None.

    Returns
    -------
    estimator
        The new, unfitted estimator.

    Examples
    --------
    >>> from emnist_estimators import EmnistMLP
    >>> est = candidate(EmnistMLP(), {"dropout": 0.1}, random_state=3)
    >>> est.dropout, est.random_state
    (0.1, 3)
    """
    est = clone(estimator).set_params(**params)
    prefix, final = final_step(est)
    own = final.get_params(deep=False)
    if random_state is not None and own.get("random_state", 0) is None:
        est.set_params(**{f"{prefix}random_state": random_state})
    return est


def _fit_param_names(estimator) -> set[str]:
    return set(inspect.signature(estimator.fit).parameters)


def _fit_one(est, X, y, callbacks):
    prefix, final = final_step(est)
    fit_params = {}
    if callbacks and "callbacks" in _fit_param_names(final):
        fit_params[f"{prefix}callbacks"] = callbacks
    return est.fit(X, y, **fit_params)


class TrialObjective:
    """One trial: a candidate fitted and scored on every split, pruned early.

    With one split (a hold-out set) the candidate is scored after every
    epoch and the pruner may stop its fit; with k folds the mean score so
    far is reported, and the pruner consulted, after each fold.

    Parameters
    ----------
    estimator : estimator or Pipeline
        The estimator searched; each trial fits a clone (:func:`candidate`).
    X : ndarray or sparse matrix
        The images, indexable by the splits' row indices.
    y : ndarray
        Their labels.
    space : dict of str to optuna distribution, or callable
        The search space (see :func:`~.space.trial_params`).
    splits : list of (ndarray, ndarray)
        The ``(train, validation)`` row indices each trial fits and scores.
    scorer : callable
        ``scorer(estimator, X, y) -> float``, greater is better.
    random_state : int or None, default=None
        Seeds every trial's fit where the estimator has no seed of its own.
    objectives : tuple of str, default=("score",)
        What a trial returns (:mod:`~.objectives`): with one objective the
        mean score, the trial pruned; with several a tuple of their values,
        nothing pruned and no per-epoch scoring (so ``fit_time`` is training
        only), every measure also in the trial's user attrs.

    Attributes
    ----------
    errors : list of Exception
        The errors of the trials that failed, in the order they failed (a
        copy sent to another process starts with none).

    Examples
    --------
    >>> import numpy as np
    >>> import optuna
    >>> from sklearn.metrics import check_scoring
    >>> from emnist_estimators import EmnistMLP
    >>> from emnist_estimators.tuning.space import default_search_space
    >>> X = np.random.default_rng(0).integers(0, 256, (60, 784), dtype=np.uint8)
    >>> y, est = np.arange(60) % 2, EmnistMLP(hidden_layer_sizes=(8,), epochs=1)
    >>> splits = [(np.arange(40), np.arange(40, 60))]
    >>> objective = TrialObjective(est, X, y, default_search_space(est), splits,
    ...                            check_scoring(est), random_state=0)
    >>> study = optuna.create_study(direction="maximize")
    >>> study.optimize(objective, n_trials=1)
    >>> study.trials[0].user_attrs["epochs"]
    1
    """

    def __init__(
        self,
        estimator,
        X,
        y,
        space,
        splits,
        scorer,
        random_state=None,
        objectives=("score",),
    ):
        self.estimator = estimator
        self.X = X
        self.y = y
        self.space = space
        self.splits = splits
        self.scorer = scorer
        self.random_state = random_state
        self.objectives = tuple(objectives)
        self.errors = []

    def __getstate__(self):
        # errors belong to the process whose trials raised them (and an
        # exception need not pickle): a copy elsewhere starts with none
        return {**self.__dict__, "errors": []}

    def fresh(self) -> TrialObjective:
        """Copy this objective, with an error list of its own; share the data.

        Returns
        -------
        TrialObjective
            A shallow copy whose ``errors`` is a new, empty list.
        """
        return copy.copy(self)

    def __call__(self, trial) -> float | tuple[float, ...]:
        """Run ``trial``: fit and score its candidate on every split.

        Parameters
        ----------
        trial : optuna.Trial
            The trial; its ``epochs`` user attr counts the epochs run, and
            its ``error`` user attr holds the error of a failed fit.

        Returns
        -------
        float or tuple of float
            The mean validation score over the splits; with several
            objectives, the mean of each over the splits.

        Raises
        ------
        optuna.TrialPruned
            The pruner stopped the trial.
        Exception
            The fit's or the scorer's error (also kept in ``errors``).
        """
        X, y, splits, scorer = self.X, self.y, self.splits, self.scorer
        params = trial_params(trial, self.space)
        est = candidate(self.estimator, params, self.random_state)
        epochs = 0
        scores = []
        # several objectives: no pruning (optuna has none for them)
        measured = Measurements(self.objectives) if len(self.objectives) > 1 else None
        try:
            for fold, (train, val) in enumerate(splits):
                X_val, y_val = X[val], y[val]
                callback = None
                if len(splits) == 1 and measured is None:
                    callback = PruningCallback(
                        trial,
                        # default arguments bind this fold's data; mypy cannot type them
                        lambda Xv=X_val, yv=y_val: scorer(est, Xv, yv),  # type: ignore[misc]
                    )
                start = time.perf_counter()
                _fit_one(est, X[train], y[train], [callback] if callback else None)
                fit_s = time.perf_counter() - start
                epochs += (
                    callback.epochs_run
                    if callback
                    else getattr(final_step(est)[1], "n_iter_", 0)
                )
                if callback is not None and callback.pruned:
                    raise optuna.TrialPruned(
                        f"pruned after epoch {callback.epochs_run}"
                    )
                start = time.perf_counter()
                scores.append(float(scorer(est, X_val, y_val)))
                if measured is not None:
                    measured.add(
                        est,
                        score=scores[-1],
                        fit_s=fit_s,
                        predict_s=(time.perf_counter() - start) / len(val),
                    )
                elif len(splits) > 1:
                    trial.report(float(np.mean(scores)), fold)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned after fold {fold + 1}")
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            self.errors.append(exc)  # list.append is thread-safe (n_jobs > 1)
            raise
        finally:
            trial.set_user_attr("epochs", int(epochs))
        if measured is not None:
            return measured.values(trial)
        return float(np.mean(scores))
