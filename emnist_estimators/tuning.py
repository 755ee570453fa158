"""Hyper-parameter search with optuna: pruning, resumable and shared studies.

:class:`EmnistSearchCV` runs an optuna study over clones of an estimator (or
a Pipeline ending in one) and behaves like scikit-learn's search estimators;
:func:`tune` is the one-call form for scripts.

Choices that differ from ``optuna_integration.OptunaSearchCV``:

- the evaluation split (hold-out or k folds) is fixed once per study, so all
  trials are compared on the same data (OptunaSearchCV re-splits when
  pruning, optuna-integration #317);
- each ``fit`` starts a new study unless ``load_if_exists=True`` asks to resume
  a named one (a second ``fit`` of OptunaSearchCV silently continues, #118);
- pruning is a small Keras callback that scores the model on the hold-out
  set after every epoch and stops the fit when the pruner says so;
- with ``scheduler=`` the trials run on a Dask cluster in waves of
  ``n_jobs``, and the study's results depend only on ``random_state`` and
  ``n_jobs``, never on the number of workers or their timing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from scipy import sparse
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.utils import indexable
from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    Options,
    StrOptions,
)
from sklearn.utils.validation import check_is_fitted

from . import cluster
from .callbacks import PruningCallback
from .exceptions import StorageError

__all__ = [
    "EmnistSearchCV",
    "PruningCallback",
    "count_trials",
    "default_search_space",
    "hide_password",
    "make_pruner",
    "make_storage",
    "study_summary",
    "tune",
]

logger = logging.getLogger(__name__)

#: The default search: batch size, dropout and learning rate.
DEFAULT_SPACE: dict[str, BaseDistribution] = {
    "batch_size": CategoricalDistribution([32, 64, 128, 256, 512]),
    "dropout": FloatDistribution(0.0, 0.5),
    "learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
}


def _final_step(estimator):
    """``(prefix, final estimator)`` of a Pipeline, or ``("", estimator)``."""
    if hasattr(estimator, "steps"):
        name, last = estimator.steps[-1]
        inner_prefix, inner = _final_step(last)
        return f"{name}__{inner_prefix}", inner
    return "", estimator


def default_search_space(estimator) -> dict[str, BaseDistribution]:
    """The default space keyed by ``estimator``'s real parameter names.

    Parameters
    ----------
    estimator : estimator or Pipeline
        An EmnistMLP/EmnistCNN, or a Pipeline ending in one.

    Returns
    -------
    dict of str to optuna distribution
        Batch size, dropout and learning rate, under the names ``set_params``
        takes (``clf__dropout`` in a Pipeline).

    Raises
    ------
    ValueError
        If the estimator has none of those parameters.

    Examples
    --------
    >>> from sklearn.pipeline import Pipeline
    >>> from emnist_estimators import EmnistCNN, PixelScaler
    >>> from emnist_estimators.tuning import default_search_space
    >>> pipe = Pipeline([("scale", PixelScaler()), ("clf", EmnistCNN())])
    >>> sorted(default_search_space(pipe))
    ['clf__batch_size', 'clf__dropout', 'clf__learning_rate']
    """
    prefix, final = _final_step(estimator)
    names = final.get_params(deep=False)
    space = {prefix + k: v for k, v in DEFAULT_SPACE.items() if k in names}
    if not space:
        raise ValueError(
            f"{type(final).__name__} has none of the default search parameters "
            f"{sorted(DEFAULT_SPACE)}; pass param_distributions explicitly."
        )
    return space


def _as_distribution(name: str, value) -> BaseDistribution:
    if isinstance(value, BaseDistribution):
        return value
    if isinstance(value, list):
        if not value:
            raise ValueError(f"The choices for {name!r} are empty.")
        return CategoricalDistribution(value)
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, Real) for v in value)
    ):
        low, high = value
        if not low < high:
            raise ValueError(
                f"Invalid range for {name!r}: low {low!r} must be smaller than "
                f"high {high!r}."
            )
        if all(isinstance(v, Integral) for v in value):
            return IntDistribution(int(low), int(high))
        return FloatDistribution(float(low), float(high))
    raise TypeError(
        f"Cannot search {name!r} over {value!r}: give an optuna distribution, a "
        "list of choices or a (low, high) tuple."
    )


def _check_space(estimator, space) -> dict[str, BaseDistribution] | Callable:
    """The search space as optuna distributions; its type is checked already."""
    if not isinstance(space, Mapping):
        return space  # a callable trial -> params
    if not space:
        raise ValueError(
            "param_distributions is empty: name at least one parameter to search, "
            "or pass None for the default (batch size, dropout, learning rate)."
        )
    valid = estimator.get_params(deep=True)
    unknown = sorted(set(space) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {unknown} for {type(estimator).__name__}. "
            f"Valid names: {sorted(k for k in valid if not k.endswith('steps'))}."
        )
    return {name: _as_distribution(name, value) for name, value in space.items()}


def make_pruner(pruner, *, max_epochs: int | None = None) -> optuna.pruners.BasePruner:
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


def hide_password(url: str) -> str:
    """A storage URL with its password masked, for messages and summaries.

    Parameters
    ----------
    url : str
        A SQLAlchemy URL such as ``postgresql://user:secret@host/db``, or any
        other storage string.

    Returns
    -------
    str
        The URL with ``***`` for the password; a string SQLAlchemy cannot
        parse (a journal path) unchanged.

    Examples
    --------
    >>> hide_password("postgresql://me:secret@db.example/optuna")
    'postgresql://me:***@db.example/optuna'
    """
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL sqlalchemy cannot parse
        return url


def make_storage(storage, *, heartbeat_interval: int | None = 60):
    """An optuna storage from a URL, a journal file path, or None (in memory).

    ``sqlite:///study.db``, ``postgresql://user@host/db`` (any SQLAlchemy URL)
    give an RDB storage with heartbeats, so a trial whose process was killed is
    marked FAIL when the study is next resumed; ``journal:path`` or a path
    ending in ``.log``/``.journal`` gives optuna's journal file storage.

    Parameters
    ----------
    storage : str, optuna storage or None
        The URL or journal path; an optuna storage or None is returned as is.
    heartbeat_interval : int or None, default=60
        Seconds between heartbeats of running trials (RDB storages only);
        None: no heartbeats.

    Returns
    -------
    optuna.storages.BaseStorage or None
        The storage.

    Raises
    ------
    StorageError
        The database cannot be reached or the URL is invalid.
    """
    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str):
        raise TypeError(f"storage must be a URL string, got {type(storage).__name__}.")
    if storage.startswith("journal:") or storage.endswith((".log", ".journal")):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = storage.removeprefix("journal:")
        return JournalStorage(JournalFileBackend(path))
    attempts = 5
    for attempt in range(attempts):
        try:
            return _rdb_storage(storage, heartbeat_interval)
        except Exception as exc:  # sqlalchemy raises many types
            # Workers started together on a fresh database race to create
            # optuna's tables; the losers see "duplicate"/"already exists" and
            # find the tables in place when they try again.
            text = str(exc).lower()
            racing = "duplicate" in text or "already exists" in text
            if racing and attempt < attempts - 1:
                time.sleep(0.2 + random.random())
                continue
            first = text and str(exc).strip().splitlines()[0]
            raise StorageError(
                f"Cannot open the optuna storage {hide_password(storage)!r}: "
                f"{first or repr(exc)}. Check the URL, that the database server is "
                "running and reachable, and that its driver is installed "
                "(PostgreSQL: pip install 'emnist-estimators[distributed]')."
            ) from None


def _rdb_storage(url: str, heartbeat_interval: int | None):
    """optuna's RDBStorage for ``url``, with heartbeats every so many seconds."""
    with warnings.catch_warnings():
        # Heartbeats are how a killed worker's trial gets marked FAIL; optuna
        # flags the two arguments experimental on every call, which is noise
        # on every tune run. Only that warning, only here.
        warnings.filterwarnings(
            "ignore",
            message=r"Argument ``(heartbeat_interval|grace_period)`` is an "
            "experimental feature",
            category=optuna.exceptions.ExperimentalWarning,
        )
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=heartbeat_interval,
            grace_period=None if heartbeat_interval is None else 2 * heartbeat_interval,
            engine_kwargs={"pool_pre_ping": True} if "sqlite" not in url else None,
        )


def count_trials(db) -> int:
    """Count the trials stored in the SQLite study file ``db``, without optuna.

    Parameters
    ----------
    db : str or path-like
        The file of a ``sqlite:///...`` storage.

    Returns
    -------
    int
        The number of trials of all its studies; 0 when the file is absent or
        is not an optuna database.

    Examples
    --------
    >>> count_trials("no-such-study.db")
    0
    """
    import sqlite3

    db = Path(db)
    if not db.is_file():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            return con.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    except sqlite3.Error:
        return 0


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
    cv : int or None, default=None
        None: one stratified hold-out set of ``validation_fraction``, scored
        after every epoch so bad trials are pruned early. int: stratified
        k-fold, pruned between folds. The split is fixed for the whole study.
    validation_fraction : float, default=0.2
        Hold-out share when ``cv`` is None.
    pruner : {'median', 'percentile', 'hyperband', 'halving', 'none'} \
or optuna pruner, \
default='halving'
        How trials are stopped early (:func:`make_pruner`). 'halving'
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
    refit : bool, default=True
        Refit the best parameters on all of ``X``.
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
        Best hold-out (or mean CV) score.
    best_estimator_ : estimator
        Refit on all data with ``best_params_`` (when ``refit``).
    cv_results_ : dict of ndarray
        One entry per trial of the study: ``number``, ``state``,
        ``mean_test_score``, ``params``, ``param_<name>``, ``epochs``,
        ``duration_s``.
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

    # What each parameter may be, checked at fit by scikit-learn's machinery
    # (as the estimators do) so that a bad value fails before a study starts.
    # What constraints cannot say (names in param_distributions, their
    # ranges) is checked by _check_space.
    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit"])],
        "param_distributions": [Mapping, callable, None],
        "n_trials": [Interval(Integral, 1, None, closed="left"), None],
        "timeout": [Interval(Real, 0, None, closed="neither"), None],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "cv": [Interval(Integral, 2, None, closed="left"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "pruner": [
            StrOptions({"median", "percentile", "hyperband", "halving", "none"}),
            Hidden(StrOptions({"successive_halving"})),  # alias of 'halving'
            optuna.pruners.BasePruner,
            None,
        ],
        "sampler": [optuna.samplers.BaseSampler, None],
        "storage": [str, optuna.storages.BaseStorage, None],
        "study_name": [str, None],
        "load_if_exists": ["boolean"],
        "refit": ["boolean"],
        # optuna runs n_jobs threads, or one per CPU for -1
        "n_jobs": [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1})],
        # an address, or a distributed.Client (not imported here: optional)
        "scheduler": [str, HasMethods(["submit", "scatter", "nthreads"]), None],
        # seeds optuna's sampler and numpy's SeedSequence: non-negative ints
        "random_state": [Interval(Integral, 0, None, closed="left"), None],
        "heartbeat_interval": [Interval(Integral, 1, None, closed="left"), None],
        "show_progress_bar": ["boolean"],
    }

    def __init__(
        self,
        estimator,
        param_distributions=None,
        *,
        n_trials=20,
        timeout=None,
        scoring=None,
        cv=None,
        validation_fraction=0.2,
        pruner="halving",
        sampler=None,
        storage=None,
        study_name=None,
        load_if_exists=False,
        refit=True,
        n_jobs=1,
        scheduler=None,
        random_state=None,
        heartbeat_interval=60,
        show_progress_bar=False,
    ):
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.n_trials = n_trials
        self.timeout = timeout
        self.scoring = scoring
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
    def _create_study(self):
        storage = make_storage(self.storage, heartbeat_interval=self.heartbeat_interval)
        sampler = self.sampler or optuna.samplers.TPESampler(seed=self.random_state)
        max_epochs = getattr(_final_step(self.estimator)[1], "epochs", None)
        pruner = make_pruner(self.pruner, max_epochs=max_epochs)
        try:
            study = optuna.create_study(
                storage=storage,
                sampler=sampler,
                pruner=pruner,
                study_name=self.study_name,
                direction="maximize",
                load_if_exists=self.load_if_exists,
            )
        except optuna.exceptions.DuplicatedStudyError:
            raise ValueError(
                f"A study named {self.study_name!r} already exists in this storage. "
                "Pass load_if_exists=True (CLI: --resume) to continue it, or choose "
                "another study_name."
            ) from None
        except Exception as exc:
            if isinstance(exc, (ValueError, TypeError)):
                raise
            raise StorageError(
                f"Cannot create or load the study in {self.storage!r}: {exc}"
            ) from exc
        if study.direction != optuna.study.StudyDirection.MAXIMIZE:
            raise ValueError(
                f"Study {study.study_name!r} was created to "
                f"{study.direction.name.lower()} its objective; EmnistSearchCV "
                "maximises scikit-learn scores (greater is better). Use another "
                "study_name."
            )
        if self.sampler is None and self.random_state is not None:
            done = len(study.get_trials(deepcopy=False))
            if done:
                # Seeded alike, a resumed study would draw the first trials'
                # parameters again; a seed from (random_state, trials so far)
                # continues the search and is still reproducible.
                seed = np.random.SeedSequence([self.random_state, done])
                study.sampler = optuna.samplers.TPESampler(
                    seed=int(seed.generate_state(1)[0])
                )
        return study

    def _splits(self, X, y):
        idx = np.arange(len(y))
        if self.cv is None:
            try:
                train, val = train_test_split(
                    idx,
                    test_size=self.validation_fraction,
                    stratify=y,
                    random_state=self.random_state,
                )
            except ValueError:
                train, val = train_test_split(
                    idx,
                    test_size=self.validation_fraction,
                    random_state=self.random_state,
                )
            return [(np.sort(train), np.sort(val))]
        kind = StratifiedKFold if is_classifier(self.estimator) else KFold
        return list(
            kind(self.cv, shuffle=True, random_state=self.random_state).split(idx, y)
        )

    # -- the objective ------------------------------------------------------
    def _trial_params(self, trial, space):
        if callable(space):
            params = space(trial)
            if not isinstance(params, Mapping):
                raise TypeError(
                    "A callable search space must return a dict of parameters."
                )
            return dict(params)
        return {name: trial._suggest(name, dist) for name, dist in space.items()}

    def _fit_one(self, est, X, y, callbacks):
        prefix, final = _final_step(est)
        fit_params = {}
        if callbacks and "callbacks" in _fit_param_names(final):
            fit_params[f"{prefix}callbacks"] = callbacks
        return est.fit(X, y, **fit_params)

    def _candidate(self, params):
        """A clone with ``params``, seeded from ``random_state`` if it has none."""
        est = clone(self.estimator).set_params(**params)
        prefix, final = _final_step(est)
        own = final.get_params(deep=False)
        if self.random_state is not None and own.get("random_state", 0) is None:
            est.set_params(**{f"{prefix}random_state": self.random_state})
        return est

    def _objective(self, X, y, space, splits, scorer, errors):
        def objective(trial):
            est = self._candidate(self._trial_params(trial, space))
            epochs = 0
            scores = []
            try:
                for fold, (train, val) in enumerate(splits):
                    X_val, y_val = X[val], y[val]
                    callback = None
                    if len(splits) == 1:
                        callback = PruningCallback(
                            trial, lambda Xv=X_val, yv=y_val: scorer(est, Xv, yv)
                        )
                    self._fit_one(
                        est, X[train], y[train], [callback] if callback else None
                    )
                    epochs += (
                        callback.epochs_run
                        if callback
                        else getattr(_final_step(est)[1], "n_iter_", 0)
                    )
                    if callback is not None and callback.pruned:
                        raise optuna.TrialPruned(
                            f"pruned after epoch {callback.epochs_run}"
                        )
                    scores.append(float(scorer(est, X_val, y_val)))
                    if len(splits) > 1:
                        trial.report(float(np.mean(scores)), fold)
                        if trial.should_prune():
                            raise optuna.TrialPruned(f"pruned after fold {fold + 1}")
            except optuna.TrialPruned:
                raise
            except Exception as exc:
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
                errors.append(exc)  # list.append is thread-safe (n_jobs > 1)
                raise
            finally:
                trial.set_user_attr("epochs", int(epochs))
            return float(np.mean(scores))

        return objective

    # -- trials on a Dask cluster -------------------------------------------
    def _optimize_on_cluster(self, study, X, y, space, splits, errors):
        """Run ``n_trials`` trials on the cluster of ``scheduler``, in waves.

        Each wave asks the sampler for ``n_jobs`` trials here, runs them on
        the workers against a copy of the trials finished before the wave,
        and tells the study their outcomes: the results depend on the
        waves' size, not on how many workers run them or how fast.
        """
        from tqdm.auto import tqdm

        with cluster.connected(self.scheduler) as client:
            workers = cluster.wait_for_workers(client)
            size = self.n_jobs if self.n_jobs > 0 else workers
            # to every worker once per fit, instead of with every trial
            shipment = _Shipment(client, [self._remote_copy(), X, y, splits, space])
            start, done = time.monotonic(), 0
            with tqdm(
                total=self.n_trials, unit="trial", disable=not self.show_progress_bar
            ) as bar:
                while self.n_trials is None or done < self.n_trials:
                    if self.timeout and time.monotonic() - start >= self.timeout:
                        break
                    wave = size if self.n_trials is None else self.n_trials - done
                    wave = min(size, wave)
                    self._run_wave(client, study, shipment, space, wave, errors)
                    done += wave
                    bar.update(wave)

    def _remote_copy(self):
        """This search as the workers get it: no client, storage or sampler."""
        params = self.get_params(deep=False)
        params.update(
            estimator=clone(self.estimator), scheduler=None, storage=None, sampler=None
        )
        return type(self)(**params)

    def _ask_wave(self, study, space, size, errors) -> list:
        """``size`` new trials, their parameters drawn by the study's sampler."""
        wave = []
        for _ in range(size):
            with warnings.catch_warnings():
                # the driver records the heartbeats itself (_heartbeat)
                warnings.filterwarnings(
                    "ignore", message="Heartbeat of storage is supposed to be used"
                )
                trial = study.ask()
            try:
                self._trial_params(trial, space)  # the sampler draws them here
            except Exception as exc:
                _tell_failed(study, trial, exc, errors)
                continue
            wave.append(trial)
        return wave

    def _run_wave(self, client, study, shipment, space, size, errors):
        """Ask for ``size`` trials, run them on the workers, tell their outcomes."""
        # what optimize() does before each trial: a dead driver's trials FAIL
        with warnings.catch_warnings():
            # experimental since optuna 2.9, as optimize() says when it calls it
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        wave = self._ask_wave(study, space, size, errors)
        known = study.get_trials(deepcopy=False)
        tasks = {trial.number: _remote_task(study, trial, known) for trial in wave}
        outcomes, todo, futures = {}, list(wave), []
        try:
            for attempt in range(_SUBMISSIONS):
                data = shipment.futures()  # sent again if lost with its workers
                places = _spread(client, len(todo))
                futures = [
                    client.submit(
                        _run_remote_trial,
                        *data,
                        tasks[trial.number],
                        pure=False,
                        **place,
                    )
                    for trial, place in zip(todo, places, strict=True)
                ]
                results = cluster.wait_for_futures(
                    client, futures, on_poll=_heartbeat(todo)
                )
                again = []
                for trial, result in zip(todo, results, strict=True):
                    # Dask dropped it (its data was lost with the workers):
                    # the same task again gives the same trial
                    if cluster.was_cancelled(result[1]) and attempt < _SUBMISSIONS - 1:
                        again.append(trial)
                    else:
                        outcomes[trial.number] = result
                todo = again
                if not todo:
                    break
        except BaseException as exc:
            # interrupted, or no worker left: no trial stays RUNNING for ever
            client.cancel(futures)
            for trial in wave:
                if trial.number not in outcomes:
                    outcomes[trial.number] = (None, exc)
            self._tell_wave(study, wave, outcomes, None)
            raise
        self._tell_wave(study, wave, outcomes, errors)

    @staticmethod
    def _tell_wave(study, wave, outcomes, errors) -> None:
        for trial in wave:
            outcome, error = outcomes[trial.number]
            if outcome is None:
                _tell_failed(study, trial, error, errors)
            else:
                _tell_outcome(study, trial, *outcome, errors or [])

    def fit(self, X, y, **fit_params):
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
        space = (
            default_search_space(self.estimator)
            if self.param_distributions is None
            else _check_space(self.estimator, self.param_distributions)
        )
        X, y = self._indexable(X, y)
        # a refit=False fit must not leave an earlier fit's model to predict
        for stale in ("best_estimator_", "classes_"):
            self.__dict__.pop(stale, None)
        scorer = check_scoring(self.estimator, scoring=self.scoring)
        errors = []
        with _optuna_info_lines(self.show_progress_bar):
            study = self._create_study()
            splits = self._splits(X, y)
            if self.scheduler is None:
                study.optimize(
                    self._objective(X, y, space, splits, scorer, errors),
                    n_trials=self.n_trials,
                    timeout=self.timeout,
                    n_jobs=self.n_jobs,
                    catch=(Exception,),
                    show_progress_bar=self.show_progress_bar,
                )
            else:
                self._optimize_on_cluster(study, X, y, space, splits, errors)
        self.study_ = study
        self.n_trials_ = len(study.trials)
        self.cv_results_ = _cv_results(study)
        _raise_if_none_completed(study, errors)
        best = study.best_trial
        self.best_score_ = float(best.value)
        if callable(space):  # replay the callable to map trial values to params
            self.best_params_ = self._trial_params(
                optuna.trial.FixedTrial(best.params, best.number), space
            )
        else:
            self.best_params_ = dict(best.params)
        if self.refit:
            self.best_estimator_ = self._candidate(self.best_params_).fit(X, y)
            if hasattr(self.best_estimator_, "classes_"):
                self.classes_ = self.best_estimator_.classes_
        return self

    def _indexable(self, X, y):
        """``X`` and ``y`` as arrays the splits can index, without checking
        their values: that is the estimator's job, and its errors reach the
        caller (see ``fit``)."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        if hasattr(X, "iloc"):
            X = X.to_numpy()
        # sparse X stays sparse, for the estimator to refuse in its own words
        X = X if sparse.issparse(X) else np.asarray(X)
        return indexable(X, np.asarray(y))

    # -- delegation ---------------------------------------------------------
    @property
    def n_features_in_(self):  # numpydoc ignore=RT01
        """Number of features of the refit best estimator (as GridSearchCV)."""
        if not hasattr(self, "best_estimator_"):
            raise AttributeError(
                f"{type(self).__name__} has no n_features_in_: it is not fitted, "
                "or was fitted with refit=False."
            )
        return self.best_estimator_.n_features_in_

    def _best(self):
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_

    def predict(self, X):
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

    def predict_proba(self, X):
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

    def score(self, X, y):
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

    def trials_dataframe(self):
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
    def __sklearn_clone__(self):
        if self.scheduler is None or isinstance(self.scheduler, str):
            return super().__sklearn_clone__()
        params = self.get_params(deep=False)
        client = params.pop("scheduler")
        params = {k: clone(v, safe=False) for k, v in params.items()}
        return type(self)(**params, scheduler=client)

    def __getstate__(self):
        state = super().__getstate__()
        if not (self.scheduler is None or isinstance(self.scheduler, str)):
            state = {**state, "scheduler": self.scheduler.scheduler.address}
        return state

    def __sklearn_tags__(self):
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.input_tags = inner.input_tags
        return tags


# -- trials on a Dask cluster: the worker's side and the driver's bookkeeping --
#: Submissions of a wave's trial that Dask cancelled (its data lost with
#: the workers that held it) before it is told FAIL.
_SUBMISSIONS = 3


class _Shipment:
    """Values sent to every worker once, and again if the cluster lost them."""

    def __init__(self, client, values: list):
        self.client, self.values, self._futures = client, values, None

    def futures(self) -> list:
        if self._futures is None or cluster.is_lost(self._futures):
            self._futures = cluster.broadcast(self.client, self.values)
        return self._futures


#: One trial at a time per worker process: fits seed process-wide state
#: (``seeded``), so two trials side by side in one process would not be
#: reproducible. Workers are meant to run with ``--nthreads 1`` anyway.
_ONE_TRIAL_AT_A_TIME = threading.Lock()


def _spread(client, n: int) -> list[dict]:
    """Where to start each of a wave's ``n`` trials: one worker each, in turn.

    Left to itself the scheduler sometimes queued both trials of a wave on
    one of two idle workers (seen here once in about five runs). Each task
    may still move to another worker (one that died is replaced), and a
    ``dask.annotate(workers=...)`` of the caller is left to decide alone.
    """
    import dask

    if "workers" in dask.get_annotations():
        return [{}] * n
    workers = sorted(client.nthreads())
    if not workers:
        return [{}] * n
    return [
        {"workers": [workers[i % len(workers)]], "allow_other_workers": True}
        for i in range(n)
    ]


def _remote_task(study, trial, known) -> dict:
    """What a worker needs to rebuild ``trial`` in a study of its own.

    ``history`` holds the trials numbered before it: those finished when the
    wave started as they are (the pruner compares with them), the others -
    this wave's, another process's - as empty RUNNING trials that only keep
    the numbering (hyperband's brackets depend on the trial number).
    """
    history = [
        t if t.state.is_finished() else optuna.trial.create_trial(state=_RUNNING)
        for t in known
        if t.number < trial.number
    ]
    return {
        "study_name": study.study_name,
        "pruner": study.pruner,
        "number": trial.number,
        "params": trial.params,
        "distributions": trial.distributions,
        "history": history,
    }


def _run_remote_trial(search, X, y, splits, space, task):
    """Run one trial where Dask puts it; return ``(frozen trial, error)``.

    The trial runs in an in-memory study holding ``task["history"]``, with
    the parameters the driver's sampler chose, through the same objective
    as a local search.
    """
    with _ONE_TRIAL_AT_A_TIME, _optuna_info_lines(False):
        study = optuna.create_study(
            study_name=task["study_name"],
            direction="maximize",
            pruner=task["pruner"],
            sampler=optuna.samplers.RandomSampler(seed=0),  # never asked
        )
        study.add_trials(task["history"])
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.WAITING,
                params=task["params"],
                distributions=task["distributions"],
            )
        )
        trial = study.ask()  # the trial just added, with its parameters
        if trial.number != task["number"]:  # the history lost a trial
            raise RuntimeError(
                f"Trial {task['number']} became number {trial.number} on the worker."
            )
        trial.set_user_attr("worker", _worker_address())
        scorer = check_scoring(search.estimator, scoring=search.scoring)
        errors = []
        try:
            value = search._objective(X, y, space, splits, scorer, errors)(trial)
            study.tell(trial, value)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        except Exception:  # the objective stored it in errors and user attrs
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        error = _portable(errors[0]) if errors else None
        return study.get_trials(deepcopy=False)[-1], error


_RUNNING = optuna.trial.TrialState.RUNNING


@contextlib.contextmanager
def _optuna_info_lines(shown: bool):
    """optuna's INFO lines (study created, trial finished) only if ``shown``.

    optuna's verbosity is process-wide: it is restored on leaving.
    """
    before = optuna.logging.get_verbosity()
    if not shown:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _worker_address() -> str:
    """The Dask worker running this, by address (a user attr of each trial)."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # not in a worker
        import os

        return f"pid {os.getpid()}"


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling back to the driver, else its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any exception type can refuse
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _tell_outcome(study, trial, frozen, error, errors: list) -> None:
    """Copy a worker's finished trial into the driver's ``trial`` and tell it."""
    for step, value in sorted(frozen.intermediate_values.items()):
        trial.report(value, step)
    for key, value in frozen.user_attrs.items():
        trial.set_user_attr(key, value)
    if frozen.duration is not None:
        # the driver tells a wave's trials together: its own start and end
        # times are the wave's, the worker's are the trial's
        trial.set_user_attr("duration_s", frozen.duration.total_seconds())
    # What the pruner wrote (successive halving's rungs) is what later
    # waves' pruners compare with; optuna has no public setter for it.
    ours = trial.storage.get_trial_system_attrs(trial._trial_id)
    for key, value in frozen.system_attrs.items():
        if key not in ours:
            trial.storage.set_trial_system_attr(trial._trial_id, key, value)
    if error is not None:
        errors.append(error)
    if frozen.state == optuna.trial.TrialState.COMPLETE:
        study.tell(trial, frozen.value)
        logger.info(
            "Trial %d finished on %s with value %s and parameters %s.",
            trial.number,
            frozen.user_attrs.get("worker"),
            frozen.value,
            trial.params,
        )
    else:
        study.tell(trial, state=frozen.state)
        if error is not None:
            logger.warning("Trial %d failed: %s", trial.number, _error_text(error))
        else:
            logger.info("Trial %d pruned.", trial.number)


def _tell_failed(study, trial, exc: BaseException, errors: list | None) -> None:
    """Tell ``trial`` FAIL with ``exc``'s text in its ``error`` user attr."""
    trial.set_user_attr("error", _error_text(exc))
    if errors is not None:
        errors.append(exc)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    logger.warning("Trial %d failed: %s", trial.number, _error_text(exc))


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _heartbeat(trials):
    """Record heartbeats of running ``trials`` in an RDB storage, if it has them.

    ``study.optimize`` runs a heartbeat thread per trial; a wave's trials
    get theirs from the driver while it waits, so that another process
    marks them FAIL (``fail_stale_trials``) only if this driver died.
    """
    storage = trials[0].storage if trials else None
    interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
    if not interval:
        return None
    last = [0.0]

    def beat():
        if time.monotonic() - last[0] >= interval:
            last[0] = time.monotonic()
            for trial in trials:
                storage.record_heartbeat(trial._trial_id)

    return beat


def _raise_if_none_completed(study, errors: list) -> None:
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


def _fit_param_names(estimator) -> set[str]:
    import inspect

    return set(inspect.signature(estimator.fit).parameters)


def _duration(trial) -> float:
    """Seconds the trial ran: on its Dask worker if it ran on one."""
    if "duration_s" in trial.user_attrs:
        return float(trial.user_attrs["duration_s"])
    return trial.duration.total_seconds() if trial.duration else math.nan


def _cv_results(study) -> dict:
    trials = study.trials
    names = sorted({k for t in trials for k in t.params})
    results = {
        "number": np.array([t.number for t in trials]),
        "state": np.array([t.state.name for t in trials]),
        "mean_test_score": np.array(
            [t.value if t.value is not None else math.nan for t in trials], dtype=float
        ),
        "params": [dict(t.params) for t in trials],
        "epochs": np.array([t.user_attrs.get("epochs", 0) for t in trials]),
        "duration_s": np.array([_duration(t) for t in trials]),
    }
    for name in names:
        results[f"param_{name}"] = np.array(
            [t.params.get(name) for t in trials], dtype=object
        )
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
        completed trials (``number``, ``value``, ``params``), best first.
    """
    check_is_fitted(search, "study_")
    trials = search.study_.trials
    done = [t for t in trials if t.value is not None and t.state.name == "COMPLETE"]
    best = sorted(done, key=lambda t: -t.value)[:top]
    return {
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
            {"number": t.number, "value": t.value, "params": t.params} for t in best
        ],
    }


def tune(estimator, X, y, **kwargs) -> EmnistSearchCV:
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
