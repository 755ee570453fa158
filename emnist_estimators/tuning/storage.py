"""Where a study lives: optuna storages from URLs, and the study opened in one.

:func:`make_storage` turns a URL or journal path into an optuna storage
(RDB storages with heartbeats, so a killed worker's trial is marked FAIL);
:func:`open_study` creates or resumes the search's study in it.
"""

from __future__ import annotations

import contextlib
import random
import time
import warnings
from pathlib import Path

import numpy as np
import optuna

from ..exceptions import StorageError
from .objectives import directions, name_objectives

__all__ = [
    "count_trials",
    "hide_password",
    "make_storage",
    "open_study",
    "optuna_info_lines",
]


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


def open_study(
    storage,
    *,
    sampler,
    pruner,
    study_name: str | None,
    load_if_exists: bool,
    random_state: int | None,
    heartbeat_interval: int | None,
    objectives: tuple[str, ...] = ("score",),
) -> optuna.Study:
    """The search's study in ``storage``: a new one, or the named one resumed.

    Parameters
    ----------
    storage : str, optuna storage or None
        As :func:`make_storage` takes it.
    sampler : optuna sampler or None
        None: ``TPESampler(seed=random_state)``, seeded from
        ``(random_state, trials so far)`` for a study that holds trials.
    pruner : optuna pruner
        The study's pruner.
    study_name : str or None
        The study's name in the storage.
    load_if_exists : bool
        Resume the named study if it exists, instead of raising.
    random_state : int or None
        Seeds the default sampler.
    heartbeat_interval : int or None
        As :func:`make_storage` takes it.
    objectives : tuple of str, default=("score",)
        What the study optimises, checked names (:mod:`~.objectives`): one
        direction each; several are stored as the study's metric names.

    Returns
    -------
    optuna.Study
        A study that maximises the score (and minimises the other objectives).

    Raises
    ------
    ValueError
        The name is taken and ``load_if_exists`` is False, or the study
        found was created for other objectives or directions.
    StorageError
        The storage cannot be opened or the study created in it.

    Examples
    --------
    >>> study = open_study(None, sampler=None, pruner=optuna.pruners.NopPruner(),
    ...                    study_name=None, load_if_exists=False, random_state=0,
    ...                    heartbeat_interval=None)
    >>> study.direction.name
    'MAXIMIZE'
    """
    opened = make_storage(storage, heartbeat_interval=heartbeat_interval)
    given = sampler
    sampler = sampler or optuna.samplers.TPESampler(seed=random_state)
    try:
        study = optuna.create_study(
            storage=opened,
            sampler=sampler,
            pruner=pruner,
            study_name=study_name,
            **(
                {"direction": "maximize"}
                if len(objectives) == 1
                else {"directions": directions(objectives)}
            ),
            load_if_exists=load_if_exists,
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise ValueError(
            f"A study named {study_name!r} already exists in this storage. "
            "Pass load_if_exists=True (CLI: --resume) to continue it, or choose "
            "another study_name."
        ) from None
    except Exception as exc:
        if isinstance(exc, (ValueError, TypeError)):
            raise
        raise StorageError(
            f"Cannot create or load the study in {storage!r}: {exc}"
        ) from exc
    # scikit-learn scores are greater-is-better: a study that minimises its
    # one value, or has other objectives, is another search's
    name_objectives(study, objectives)
    if given is None and random_state is not None:
        done = len(study.get_trials(deepcopy=False))
        if done:
            # Seeded alike, a resumed study would draw the first trials'
            # parameters again; a seed from (random_state, trials so far)
            # continues the search and is still reproducible.
            seed = np.random.SeedSequence([random_state, done])
            study.sampler = optuna.samplers.TPESampler(
                seed=int(seed.generate_state(1)[0])
            )
    return study


@contextlib.contextmanager
def optuna_info_lines(shown: bool):
    """Show optuna's INFO lines (study created, trial finished) only if ``shown``.

    optuna's verbosity is process-wide: it is restored on leaving.

    Parameters
    ----------
    shown : bool
        False: optuna logs warnings and errors only, until the block ends.

    Yields
    ------
    None
        Nothing; the verbosity holds inside the ``with`` block.

    Examples
    --------
    >>> with optuna_info_lines(False):
    ...     optuna.logging.get_verbosity() == optuna.logging.WARNING
    True
    """
    before = optuna.logging.get_verbosity()
    if not shown:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)
