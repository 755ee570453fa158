"""Hyper-parameter search with optuna: pruning, resumable and shared studies.

:class:`EmnistSearchCV` runs an optuna study over clones of an estimator (or
a Pipeline ending in one) and behaves like scikit-learn's search estimators;
:func:`tune` is the one-call form for scripts.

How it works and why: the design notes in the docs (``docs/design.rst``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np
import optuna
from scipy import sparse
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import Tags, indexable
from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    Options,
    StrOptions,
)
from sklearn.utils.validation import check_is_fitted

from .._splits import holdout_split
from .objective import TrialObjective, candidate
from .objectives import (
    check_objectives,
    choose_trial,
    objective_columns,
    pareto_front,
    resolve_pruner,
    score_value,
    study_objectives,
)
from .space import check_space, default_search_space, final_step, trial_params
from .storage import open_study, optuna_info_lines
from .waves import optimize_on_cluster

__all__ = ["EmnistSearchCV", "make_pruner", "study_summary", "tune"]


def make_pruner(
    pruner: str | optuna.pruners.BasePruner | None, *, max_epochs: int | None = None
) -> optuna.pruners.BasePruner:
    """An optuna pruner from its name.

    Names: 'median', 'percentile', 'hyperband', 'halving', 'none'.

    Parameters
    ----------
    pruner : str, None or optuna pruner
        A name above; None is 'none'; an optuna pruner is returned as is.
    max_epochs : int, default=None
        The largest resource of 'hyperband' (None: optuna's "auto").

    Returns
    -------
    optuna.pruners.BasePruner
        The pruner.

    Examples
    --------
    >>> type(make_pruner("median")).__name__
    'MedianPruner'
    """
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner in (None, "none"):
        return optuna.pruners.NopPruner()
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if pruner == "percentile":
        # the median pruner's rule with the bar at the best quarter: a trial
        # must be in the top 25% of earlier trials at the same epoch to go on
        # (optuna's percentile counts from the best, whatever the direction)
        return optuna.pruners.PercentilePruner(
            25.0, n_startup_trials=5, n_warmup_steps=1
        )
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max_epochs or "auto"
        )
    if pruner in ("halving", "successive_halving"):
        return optuna.pruners.SuccessiveHalvingPruner()
    raise ValueError(
        f"Unknown pruner {pruner!r}. Expected 'median', 'percentile', "
        "'hyperband', 'halving', "
        "'none' or an optuna pruner."
    )


# What each parameter may be, checked at fit by scikit-learn's machinery
# (as the estimators do) so that a bad value fails before a study starts.
# What constraints cannot say (names in param_distributions, their
# ranges) is checked by _check_space.
_PARAMETER_CONSTRAINTS: dict = {
    "estimator": [HasMethods(["fit"])],
    "param_distributions": [Mapping, callable, None],
    "n_trials": [Interval(Integral, 1, None, closed="left"), None],
    "timeout": [Interval(Real, 0, None, closed="neither"), None],
    "scoring": [StrOptions(set(get_scorer_names())), callable, None],
    # names checked by check_objectives (which says what is known)
    "objectives": [tuple, list],
    "cv": [Interval(Integral, 2, None, closed="left"), None],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "pruner": [
        StrOptions({"auto", "median", "percentile", "hyperband", "halving", "none"}),
        Hidden(StrOptions({"successive_halving"})),  # alias of 'halving'
        optuna.pruners.BasePruner,
        None,
    ],
    "sampler": [optuna.samplers.BaseSampler, None],
    "storage": [str, optuna.storages.BaseStorage, None],
    "study_name": [str, None],
    "load_if_exists": ["boolean"],
    "refit": ["boolean", callable],
    # optuna runs n_jobs threads, or one per CPU for -1
    "n_jobs": [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1})],
    # an address, or a distributed.Client (not imported here: optional)
    "scheduler": [str, HasMethods(["submit", "scatter", "nthreads"]), None],
    # seeds optuna's sampler and numpy's SeedSequence: non-negative ints
    "random_state": [Interval(Integral, 0, None, closed="left"), None],
    "heartbeat_interval": [Interval(Integral, 1, None, closed="left"), None],
    "show_progress_bar": ["boolean"],
}


class EmnistSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Optuna search over an estimator's hyper-parameters, sklearn style.

    Parameters
    ----------
    estimator : estimator or Pipeline
        An EmnistMLP/EmnistCNN, or a Pipeline ending in one; cloned per trial.
    param_distributions : dict or callable, default=None
        ``{name: distribution}`` with optuna distributions, lists (choices) or
        ``(low, high)`` tuples, keyed by the estimator's parameter names
        (``clf__dropout`` in a Pipeline); or ``callable(trial) -> dict`` of
        parameter values. None: batch size {32..512}, dropout [0, 0.5] and
        learning rate [1e-4, 1e-2] (log).
    n_trials : int, default=20
        Trials to run in this ``fit`` (other workers may add more).
    timeout : float, default=None
        Stop starting trials after this many seconds.
    scoring : str or callable, default=None
        A scikit-learn scorer; None uses the estimator's ``score`` (accuracy).
        Greater is better, so the study maximises it.
    objectives : tuple of str, default=("score",)
        What the study optimises, from ``'score'`` (maximised), ``'fit_time'``
        (training seconds), ``'predict_time'`` (seconds per image) and
        ``'n_params'`` (the network's parameters), all three minimised; each
        the mean over the splits. Several make a multi-objective study
        (``'score'`` among them): nothing is pruned, :attr:`pareto_front_`
        holds the non-dominated trials, and the best score among them is
        refit. See :mod:`~emnist_estimators.tuning.objectives`.
    cv : int or None, default=None
        None: one stratified hold-out set of ``validation_fraction``, scored
        after every epoch so bad trials are pruned early. int: stratified
        k-fold, pruned between folds. The split is fixed for the whole study.
    validation_fraction : float, default=0.2
        Hold-out share when ``cv`` is None.
    pruner : {'auto', 'median', 'percentile', 'hyperband', 'halving', 'none'} \
or optuna pruner, default='auto'
        How trials are stopped early (:func:`make_pruner`). 'auto': 'halving'
        with one objective, 'none' with several (optuna cannot prune those:
        any other pruner is then a ValueError). 'halving'
        (successive halving) spent half the compute of an unpruned search
        in ``benchmarks/bench_tuning.py``; it stops a trial that is not among
        the best at its rung (epochs 1, 4, 16...), so in a study of a few
        trials most stop after one epoch: 'median' suits short studies.
    sampler : optuna sampler, default=None
        Default: ``TPESampler(seed=random_state)``. A resumed study (one that
        already holds ``k`` trials) is seeded from ``(random_state, k)``
        instead, so it continues the search rather than replaying the first
        ``k`` trials' parameters, and stays reproducible.
    storage : str or optuna storage, default=None
        None keeps the study in memory; ``sqlite:///study.db``,
        ``postgresql://...``, or ``journal:study.log`` persist it so it can
        resume and be shared by many processes or machines.
    study_name : str, default=None
        Name in the storage; needed to resume or share a study.
    load_if_exists : bool, default=False
        Resume the named study if it exists. False: a fit that finds the name
        taken raises instead of silently continuing another study.
    refit : bool or callable, default=True
        Refit the chosen trial's parameters on all of ``X``: the best score
        (of the Pareto front, with several objectives), or the trial at the
        index ``refit(cv_results_)`` returns, as in scikit-learn's searches.
    n_jobs : int, default=1
        Without ``scheduler``: trials run in parallel threads of this process
        (-1: one per CPU); trial order and fits are then not reproducible.
        With ``scheduler``: the trials of one wave (-1: one per worker
        connected when ``fit`` starts); the results depend on it, so give it
        explicitly for a reproducible study.
    scheduler : str or distributed.Client, default=None
        None runs the trials in this process. A Dask scheduler address
        (``"tcp://host:8786"``) or a ``distributed.Client``: the trials run on
        the cluster's workers, in waves of ``n_jobs``. This process keeps the
        study (only it touches ``storage``) and asks the sampler for a wave's
        parameters; each worker runs one trial at a time, its pruner seeing
        the trials of earlier waves only, so the results depend on
        ``random_state`` and ``n_jobs``, not on the workers or their timing.
        ``X`` and ``y`` are sent to every worker once per ``fit``. A trial
        whose worker died is retried by Dask on the other workers; if it
        fails again it is marked FAIL and the search goes on. Clones share
        a client; pickling keeps its address. Needs
        ``pip install "emnist-estimators[distributed]"``; see
        :func:`emnist_estimators.cluster.share_threads` to split each
        machine's cores among its workers.
    random_state : int >= 0 or None, default=None
        Seeds the sampler, the evaluation split and, where the estimator's own
        ``random_state`` is None, every trial's fit.
    heartbeat_interval : int or None, default=60
        Seconds between heartbeats of running trials in an RDB storage; a trial
        silent for twice as long is marked FAIL when the study next runs.
        None: no heartbeats.
    show_progress_bar : bool, default=False
        Draw optuna's progress bar; False also hides optuna's per-trial INFO
        log lines during ``fit``.

    Attributes
    ----------
    study_ : optuna.Study
    best_params_ : dict
    best_score_ : float
        The chosen trial's hold-out (or mean CV) score (the best, unless
        ``refit`` is a callable).
    best_index_ : int
        The chosen trial's index in ``cv_results_``.
    pareto_front_ : list of optuna.trial.FrozenTrial
        The non-dominated completed trials (optuna's ``best_trials``).
    best_estimator_ : estimator
        Refit on all data with ``best_params_`` (when ``refit``).
    cv_results_ : dict of ndarray
        One entry per trial of the study: ``number``, ``state``,
        ``mean_test_score``, ``params``, ``param_<name>``, ``epochs``,
        ``duration_s``; with several objectives also ``mean_fit_time``,
        ``mean_predict_time``, ``n_params`` and ``pareto_front`` (bool).
    n_trials_ : int
        Trials in the study after this fit.

    Examples
    --------
    >>> import numpy as np
    >>> from emnist_estimators import EmnistMLP
    >>> from emnist_estimators.tuning import EmnistSearchCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(120, 784), dtype=np.uint8)
    >>> y = np.arange(120) % 3
    >>> search = EmnistSearchCV(EmnistMLP(hidden_layer_sizes=(16,), epochs=2),
    ...                         n_trials=2, random_state=0).fit(X, y)
    >>> sorted(search.best_params_)
    ['batch_size', 'dropout', 'learning_rate']
    """

    _parameter_constraints: dict = _PARAMETER_CONSTRAINTS

    def __init__(
        self,
        estimator: BaseEstimator,
        param_distributions: Mapping[str, Any] | None = None,
        *,
        n_trials: int | None = 20,
        timeout: float | None = None,
        scoring: str | Callable[..., float] | None = None,
        objectives: tuple[str, ...] = ("score",),
        cv: int | None = None,
        validation_fraction: float = 0.2,
        pruner: str | optuna.pruners.BasePruner | None = "auto",
        sampler: optuna.samplers.BaseSampler | None = None,
        storage: str | optuna.storages.BaseStorage | None = None,
        study_name: str | None = None,
        load_if_exists: bool = False,
        refit: bool | Callable[[dict], int] = True,
        n_jobs: int = 1,
        scheduler: Any = None,
        random_state: int | None = None,
        heartbeat_interval: int | None = 60,
        show_progress_bar: bool = False,
    ) -> None:
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.n_trials = n_trials
        self.timeout = timeout
        self.scoring = scoring
        self.objectives = objectives
        self.cv = cv
        self.validation_fraction = validation_fraction
        self.pruner = pruner
        self.sampler = sampler
        self.storage = storage
        self.study_name = study_name
        self.load_if_exists = load_if_exists
        self.refit = refit
        self.n_jobs = n_jobs
        self.scheduler = scheduler
        self.random_state = random_state
        self.heartbeat_interval = heartbeat_interval
        self.show_progress_bar = show_progress_bar

    # -- set-up -------------------------------------------------------------
    def _create_study(self, objectives: tuple[str, ...]) -> optuna.Study:
        max_epochs = getattr(final_step(self.estimator)[1], "epochs", None)
        pruner = resolve_pruner(self.pruner, objectives)
        return open_study(
            self.storage,
            sampler=self.sampler,
            pruner=make_pruner(pruner, max_epochs=max_epochs),
            study_name=self.study_name,
            load_if_exists=self.load_if_exists,
            random_state=self.random_state,
            heartbeat_interval=self.heartbeat_interval,
            objectives=objectives,
        )

    def _splits(self, X: Any, y: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        if self.cv is None:
            train, val = holdout_split(
                y, test_size=self.validation_fraction, random_state=self.random_state
            )
            return [(np.sort(train), np.sort(val))]
        idx = np.arange(len(y))
        kind = StratifiedKFold if is_classifier(self.estimator) else KFold
        return list(
            kind(self.cv, shuffle=True, random_state=self.random_state).split(idx, y)
        )

    def fit(self, X: Any, y: Any, **fit_params: Any) -> EmnistSearchCV:
        """Run the study on ``(X, y)``, then refit the best parameters.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or (n_samples, h, w)
            Training images.
        y : array-like of shape (n_samples,)
            Their labels.
        **fit_params : dict
            Not accepted (a TypeError): set fit options on the estimator.

        Returns
        -------
        object
            This search, fitted.

        Raises
        ------
        Exception
            When every trial of this fit failed, the first trial's error
            itself (e.g. the estimator's ValueError for NaN in X), as
            scikit-learn's searches with ``error_score='raise'`` do.
        RuntimeError
            When no trial of the study completed because all were pruned.
        """
        if fit_params:
            raise TypeError(
                f"fit() got unexpected parameters {sorted(fit_params)}; set them on "
                "the estimator instead."
            )
        self._validate_params()
        objectives = check_objectives(self.objectives)
        resolve_pruner(self.pruner, objectives)  # a pruner refused before the study
        space = (
            default_search_space(self.estimator)
            if self.param_distributions is None
            else check_space(self.estimator, self.param_distributions)
        )
        X, y = _indexable(X, y, type(self).__name__)
        # a refit=False fit must not leave an earlier fit's model to predict
        for stale in ("best_estimator_", "classes_"):
            self.__dict__.pop(stale, None)
        scorer = check_scoring(self.estimator, scoring=self.scoring)
        with optuna_info_lines(self.show_progress_bar):
            study = self._create_study(objectives)
            splits = self._splits(X, y)
            objective = TrialObjective(
                self.estimator,
                X,
                y,
                space,
                splits,
                scorer,
                self.random_state,
                objectives=objectives,
            )
            if self.scheduler is None:
                study.optimize(
                    objective,
                    n_trials=self.n_trials,
                    timeout=self.timeout,
                    n_jobs=self.n_jobs,
                    catch=(Exception,),
                    show_progress_bar=self.show_progress_bar,
                )
            else:
                optimize_on_cluster(
                    self.scheduler,
                    study,
                    objective,
                    n_trials=self.n_trials,
                    n_jobs=self.n_jobs,
                    timeout=self.timeout,
                    show_progress_bar=self.show_progress_bar,
                )
        self.study_ = study
        self.n_trials_ = len(study.trials)
        self.cv_results_ = _cv_results(study, objectives)
        _raise_if_none_completed(study, objective.errors)
        self.pareto_front_ = pareto_front(study)
        self.best_index_ = choose_trial(study, objectives, self.refit, self.cv_results_)
        best = study.trials[self.best_index_]
        self.best_score_ = score_value(best, objectives)  # completed: a number
        self.best_params_ = _params(best, space)
        if self.refit:
            model = candidate(self.estimator, self.best_params_, self.random_state)
            self.best_estimator_ = model.fit(X, y)
            if hasattr(self.best_estimator_, "classes_"):
                self.classes_ = self.best_estimator_.classes_
        return self

    # -- delegation ---------------------------------------------------------
    @property
    def n_features_in_(self) -> int:  # numpydoc ignore=RT01
        """Number of features of the refit best estimator (as GridSearchCV)."""
        if not hasattr(self, "best_estimator_"):
            raise AttributeError(
                f"{type(self).__name__} has no n_features_in_: it is not fitted, "
                "or was fitted with refit=False."
            )
        return self.best_estimator_.n_features_in_

    def _best(self) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_

    def predict(self, X: Any) -> np.ndarray:
        """Predict with the refit best estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels)
            Images.

        Returns
        -------
        ndarray of shape (n_samples,)
            The predicted classes.
        """
        return self._best().predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return class probabilities from the refit best estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels)
            Images.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Probabilities, columns in ``classes_`` order.
        """
        return self._best().predict_proba(X)

    def score(self, X: Any, y: Any) -> float:
        """Score the refit best estimator with the search's scorer.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels)
            Images.
        y : array-like of shape (n_samples,)
            Their labels.

        Returns
        -------
        float
            The score (accuracy unless ``scoring`` says otherwise).
        """
        return check_scoring(self.estimator, scoring=self.scoring)(self._best(), X, y)

    def trials_dataframe(self) -> Any:
        """Return all trials of the study as a pandas DataFrame (optuna's format).

        Returns
        -------
        pandas.DataFrame
            One row per trial, from ``study_.trials_dataframe()``.
        """
        check_is_fitted(self, "study_")
        return self.study_.trials_dataframe()

    # A distributed.Client holds a live connection: it can be neither deep-
    # copied nor pickled. Clones share it (as they would share an address);
    # a pickle keeps its address, and the unpickled search connects anew.
    def __sklearn_clone__(self) -> EmnistSearchCV:
        if self.scheduler is None or isinstance(self.scheduler, str):
            return super().__sklearn_clone__()
        params = self.get_params(deep=False)
        client = params.pop("scheduler")
        params = {k: clone(v, safe=False) for k, v in params.items()}
        return type(self)(**params, scheduler=client)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if not (self.scheduler is None or isinstance(self.scheduler, str)):
            state = {**state, "scheduler": self.scheduler.scheduler.address}
        return state

    def __sklearn_tags__(self) -> Tags:
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.input_tags = inner.input_tags
        return tags


def _indexable(X: Any, y: Any, owner: str) -> Any:
    """``X`` and ``y`` as arrays the splits can index, without checking
    their values: that is the estimator's job, and its errors reach the
    caller (see ``EmnistSearchCV.fit``)."""
    if y is None:
        raise ValueError(f"{owner} requires y to be passed, but the target y is None.")
    if hasattr(X, "iloc"):
        X = X.to_numpy()
    # sparse X stays sparse, for the estimator to refuse in its own words
    X = X if sparse.issparse(X) else np.asarray(X)
    return indexable(X, np.asarray(y))


def _raise_if_none_completed(study: optuna.Study, errors: list) -> None:
    """Fail a fit whose study has no completed trial.

    When this fit's trials all failed, re-raise the first one's error: a
    data error (NaN, sparse or one-class y) then reads as it would from the
    estimator itself instead of hiding behind a generic one.
    """
    states = {t.state for t in study.trials}
    if optuna.trial.TrialState.COMPLETE in states:
        return
    if errors:
        first = errors[0]
        first.add_note(
            f"Every trial of this fit failed ({len(errors)}); this is the first "
            "one's error."
        )
        raise first
    stored = [t.user_attrs["error"] for t in study.trials if "error" in t.user_attrs]
    raise RuntimeError(
        "No trial completed"
        + (f"; first error: {stored[0]}" if stored else " (all were pruned)")
        + "."
    )


def _duration(trial: optuna.trial.FrozenTrial) -> float:
    """Seconds the trial ran: on its Dask worker if it ran on one."""
    if "duration_s" in trial.user_attrs:
        return float(trial.user_attrs["duration_s"])
    return trial.duration.total_seconds() if trial.duration else math.nan


def _params(trial: optuna.trial.FrozenTrial, space: Any) -> dict:
    """The estimator parameters ``trial`` fitted."""
    if callable(space):  # replay the callable to map trial values to params
        return trial_params(optuna.trial.FixedTrial(trial.params, trial.number), space)
    return dict(trial.params)


def _cv_results(study: optuna.Study, objectives: tuple[str, ...]) -> dict:
    trials = study.trials
    names = sorted({k for t in trials for k in t.params})
    results = {
        "number": np.array([t.number for t in trials]),
        "state": np.array([t.state.name for t in trials]),
        "mean_test_score": np.array(
            [score_value(t, objectives) for t in trials], dtype=float
        ),
        "params": [dict(t.params) for t in trials],
        "epochs": np.array([t.user_attrs.get("epochs", 0) for t in trials]),
        "duration_s": np.array([_duration(t) for t in trials]),
    }
    for name in names:
        results[f"param_{name}"] = np.array(
            [t.params.get(name) for t in trials], dtype=object
        )
    if len(objectives) > 1:
        results.update(objective_columns(study))
    return results


def study_summary(search: EmnistSearchCV, *, top: int = 5) -> dict:
    """The outcome of a fitted search as plain, JSON-ready values.

    Parameters
    ----------
    search : EmnistSearchCV
        A fitted search.
    top : int, default=5
        How many of the best completed trials to list.

    Returns
    -------
    dict
        ``study_name``; ``best_value`` and ``best_params``; ``n_trials`` in the
        study; ``states``, the trials per state (COMPLETE, PRUNED, FAIL,
        RUNNING); ``epochs_spent`` over all trials; ``top``, the best
        completed trials (``number``, ``value`` - the score - and ``params``),
        best first. With several objectives also ``objectives`` and
        ``pareto_front``, its trials' ``number``, ``values`` by objective and
        ``params``.
    """
    check_is_fitted(search, "study_")
    trials = search.study_.trials
    objectives = study_objectives(search.study_)
    done = [t for t in trials if t.values is not None and t.state.name == "COMPLETE"]
    best = sorted(done, key=lambda t: -score_value(t, objectives))[:top]
    summary = {
        "study_name": search.study_.study_name,
        "best_value": search.best_score_,
        "best_params": search.best_params_,
        "n_trials": len(trials),
        "states": {
            state: sum(t.state.name == state for t in trials)
            for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
        },
        "epochs_spent": int(sum(search.cv_results_["epochs"])),
        "top": [
            {
                "number": t.number,
                "value": score_value(t, objectives),
                "params": t.params,
            }
            for t in best
        ],
    }
    if len(objectives) > 1:
        summary["objectives"] = list(objectives)
        summary["pareto_front"] = [
            {
                "number": t.number,
                "values": dict(zip(objectives, t.values, strict=True)),
                "params": t.params,
            }
            for t in search.pareto_front_
        ]
    return summary


def tune(estimator: BaseEstimator, X: Any, y: Any, **kwargs: Any) -> EmnistSearchCV:
    """Run :class:`EmnistSearchCV` on ``(X, y)`` and return it fitted.

    Parameters
    ----------
    estimator : estimator or Pipeline
        An EmnistMLP/EmnistCNN, or a Pipeline ending in one.
    X : array-like of shape (n_samples, n_pixels)
        Training images.
    y : array-like of shape (n_samples,)
        Their labels.
    **kwargs
        Any :class:`EmnistSearchCV` parameter (``n_trials``, ``storage``,
        ``scheduler`` to run the trials on a Dask cluster...).

    Returns
    -------
    EmnistSearchCV
        With ``study_``, ``best_params_``, ``best_estimator_``...
    """
    return EmnistSearchCV(estimator, **kwargs).fit(X, y)
