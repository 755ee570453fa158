"""Trials on a Dask cluster, in waves: the driver's bookkeeping, the worker's side.

:func:`optimize_on_cluster` asks the study's sampler for a wave of trials
here, runs each on a worker against a copy of the trials finished before
the wave, and tells the study their outcomes, so the results depend on the
waves' size only, never on how many workers run them or how fast. The
workers receive the :class:`~.objective.TrialObjective` (once per fit) and
what each trial needs; only this process touches the study's storage.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from typing import Any

import optuna

from .. import cluster
from .objective import TrialObjective
from .space import trial_params
from .storage import optuna_info_lines

__all__ = ["optimize_on_cluster"]

# The logger of the module these functions came from, so the trial lines
# keep their name (and the levels set on it).
logger = logging.getLogger(__package__)

#: Submissions of a wave's trial that Dask cancelled (its data lost with
#: the workers that held it) before it is told FAIL.
_SUBMISSIONS = 3

_RUNNING = optuna.trial.TrialState.RUNNING

#: One trial at a time per worker process: fits seed process-wide state
#: (``seeded``), so two trials side by side in one process would not be
#: reproducible. Workers are meant to run with ``--nthreads 1`` anyway.
_ONE_TRIAL_AT_A_TIME = threading.Lock()


def optimize_on_cluster(
    scheduler,
    study,
    objective: TrialObjective,
    *,
    n_trials: int | None,
    n_jobs: int,
    timeout: float | None,
    show_progress_bar: bool,
) -> None:
    """Run ``n_trials`` trials of ``objective`` on the cluster, in waves.

    Each wave asks the sampler for ``n_jobs`` trials here, runs them on
    the workers against a copy of the trials finished before the wave,
    and tells the study their outcomes: the results depend on the
    waves' size, not on how many workers run them or how fast.

    Parameters
    ----------
    scheduler : str or distributed.Client
        The Dask scheduler's address, or a client connected to it.
    study : optuna.Study
        The study the trials are asked from and told to.
    objective : TrialObjective
        What each trial runs; the errors of failed trials are appended to
        its ``errors``.
    n_trials : int or None
        Trials to run (None: until ``timeout``).
    n_jobs : int
        Trials per wave; -1: one per worker connected at the start.
    timeout : float or None
        Start no wave after this many seconds.
    show_progress_bar : bool
        Draw a progress bar of the trials.
    """
    from tqdm.auto import tqdm

    with cluster.connected(scheduler) as client:
        workers = cluster.wait_for_workers(client)
        size = n_jobs if n_jobs > 0 else workers
        # to every worker once per fit, instead of with every trial
        shipment = _Shipment(client, [objective])
        start, done = time.monotonic(), 0
        with tqdm(total=n_trials, unit="trial", disable=not show_progress_bar) as bar:
            while n_trials is None or done < n_trials:
                if timeout and time.monotonic() - start >= timeout:
                    break
                wave = size if n_trials is None else n_trials - done
                wave = min(size, wave)
                _run_wave(client, study, shipment, objective, wave)
                done += wave
                bar.update(wave)


def _ask_wave(study, space, size, errors) -> list:
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
            trial_params(trial, space)  # the sampler draws them here
        except Exception as exc:
            _tell_failed(study, trial, exc, errors)
            continue
        wave.append(trial)
    return wave


def _run_wave(client, study, shipment, objective, size):
    """Ask for ``size`` trials, run them on the workers, tell their outcomes."""
    errors = objective.errors
    # what optimize() does before each trial: a dead driver's trials FAIL
    with warnings.catch_warnings():
        # experimental since optuna 2.9, as optimize() says when it calls it
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    wave = _ask_wave(study, objective.space, size, errors)
    known = study.get_trials(deepcopy=False)
    tasks = {trial.number: _remote_task(study, trial, known) for trial in wave}
    outcomes, todo, futures = {}, list(wave), []
    try:
        for attempt in range(_SUBMISSIONS):
            data = shipment.futures()  # sent again if lost with its workers
            places = _spread(client, len(todo))
            futures = [
                client.submit(
                    _run_remote_trial, *data, tasks[trial.number], pure=False, **place
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
        _tell_wave(study, wave, outcomes, None)
        raise
    _tell_wave(study, wave, outcomes, errors)


def _tell_wave(study, wave, outcomes, errors) -> None:
    for trial in wave:
        outcome, error = outcomes[trial.number]
        if outcome is None:
            _tell_failed(study, trial, error, errors)
        else:
            # outcome is (frozen, error); mypy maps an untyped *args to every slot
            _tell_outcome(study, trial, *outcome, errors or [])  # type: ignore[call-arg]


class _Shipment:
    """Values sent to every worker once, and again if the cluster lost them."""

    _futures: list | None

    def __init__(self, client, values: list):
        self.client, self.values, self._futures = client, values, None

    def futures(self) -> list:
        if self._futures is None or cluster.is_lost(self._futures):
            self._futures = cluster.broadcast(self.client, self.values)
        return self._futures


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
        "directions": [d.name.lower() for d in study.directions],
        "pruner": study.pruner,
        "number": trial.number,
        "params": trial.params,
        "distributions": trial.distributions,
        "history": history,
    }


def _run_remote_trial(objective: TrialObjective, task: dict):
    """Run one trial where Dask puts it; return ``(frozen trial, error)``.

    The trial runs in an in-memory study holding ``task["history"]``, with
    the parameters the driver's sampler chose, through the same objective
    as a local search.
    """
    with _ONE_TRIAL_AT_A_TIME, optuna_info_lines(False):
        study = optuna.create_study(
            study_name=task["study_name"],
            directions=task["directions"],  # several: the trial returns a tuple
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
        # the worker keeps the shipped objective for the whole fit: this
        # trial's errors go to a list of its own
        objective = objective.fresh()
        try:
            value = objective(trial)
            study.tell(trial, value)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        except Exception:  # the objective stored it in errors and user attrs
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        errors = objective.errors
        error = _portable(errors[0]) if errors else None
        return study.get_trials(deepcopy=False)[-1], error


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
        study.tell(trial, frozen.values)
        logger.info(
            "Trial %d finished on %s with value %s and parameters %s.",
            trial.number,
            frozen.user_attrs.get("worker"),
            frozen.value if len(frozen.values) == 1 else frozen.values,
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
    storage: Any = trials[0].storage if trials else None
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
