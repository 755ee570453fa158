"""Searches on a real dask.distributed cluster: one LocalCluster of two worker
processes on loopback, shared by the module's tests.

- scikit-learn's GridSearchCV and cross_val_score inside
  ``joblib.parallel_backend("dask")`` give the scores of the same search run
  in this process;
- EmnistSearchCV with ``scheduler=`` runs its trials in the worker processes,
  each trial number exactly once, with results that depend only on
  ``random_state`` and ``n_jobs``;
- each worker's TensorFlow runs with its share of the cores (ThreadShare);
- an unreachable scheduler, a worker that dies mid-trial and a cluster
  without workers end in a clear error or a finished search, never a hang.

And without a cluster: a wave's trial run in this process is the trial the
driver asked, and the driver logs its outcome as optuna's loop does.

Skipped with the reason where dask.distributed is not installed, and failed
instead under ``CI=true``, whose ``.ci/run`` installs the test extra.
"""

from __future__ import annotations

import os
import socket
import sys

import numpy as np
import optuna
import pytest
from helpers import bar_images, modules_loaded_by, skip_unless_ci, write_idx_folder
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline

from emnist_estimators import EmnistMLP, PixelScaler
from emnist_estimators import cluster as cluster_mod
from emnist_estimators.cli import main
from emnist_estimators.cluster import ClusterError, ThreadShare, share_threads
from emnist_estimators.threads import available_cpus
from emnist_estimators.tuning import EmnistSearchCV

# No test may hang: a lost worker or scheduler must end in an error.
pytestmark = pytest.mark.timeout(180)


def _distributed():
    try:
        import distributed
    except ImportError:
        skip_unless_ci(
            "dask.distributed is not installed (pip install -e '.[test]' or "
            "'.[distributed]')"
        )
    return distributed


@pytest.fixture(scope="module")
def client():
    """Two worker processes, one thread each, their TensorFlow threads shared.

    A task may lose one worker and be retried once (allowed-failures 1, the
    default is 3), so that the dying-worker test restarts two workers, not four.
    """
    distributed = _distributed()
    import cloudpickle
    import dask

    # the spaces and helpers below travel to the workers by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        )
    client = distributed.Client(cluster)
    client.wait_for_workers(2)
    share_threads(client)
    yield client
    client.close()
    cluster.close()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def data():
    X, y = bar_images(300, rng=0)
    return X.reshape(len(X), 784), y


def mlp(**kw):
    params = {"hidden_layer_sizes": (16,), "epochs": 2, "batch_size": 32}
    return EmnistMLP(**{**params, **kw})


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PruneOnSeeingTheFirstWave(optuna.pruners.BasePruner):
    """Prunes a trial when exactly two finished trials are visible to it.

    With waves of two, that is every trial of the second wave - if, and only
    if, no trial sees a wave-mate's result. It reads no score, so the trials
    it prunes are the same on every CPU (a percentile pruner's choice
    depended on bfloat16 rounding).
    """

    def prune(self, study, trial) -> bool:
        finished = study.get_trials(
            deepcopy=False,
            states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED),
        )
        return len([t for t in finished if t.number != trial.number]) == 2


def trial_rows(search) -> list[tuple]:
    """Each trial's number, state, params, value and intermediate values."""
    return [
        (t.number, t.state.name, t.params, t.value, t.intermediate_values)
        for t in search.study_.trials
    ]


def _in_worker() -> bool:
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


# -- scikit-learn's searches on the dask joblib backend -----------------------------
def test_grid_search_and_cross_val_score_on_dask_equal_the_local_run(client, data):
    """The fits run on the workers (Dask's task stream says where) and give
    the scores of the in-process run: every fit is seeded, and an accuracy
    on 150 images is a multiple of 1/150, which thread counts cannot move."""
    import joblib
    from distributed import get_task_stream

    X, y = data
    clf = mlp(random_state=0, learning_rate=1e-3)
    pipe = Pipeline([("scale", PixelScaler()), ("clf", clf)])
    grid = {"clf__learning_rate": [1e-3, 1e-2]}
    local = GridSearchCV(pipe, grid, cv=2, n_jobs=1, refit=False).fit(X, y)
    # cross_val_score(pipe) is the grid's first candidate: same folds and fits
    local_cv = [local.cv_results_[f"split{k}_test_score"][0] for k in (0, 1)]
    with (
        get_task_stream(client) as stream,
        joblib.parallel_backend("dask", client=client),
    ):
        remote = GridSearchCV(pipe, grid, cv=2, n_jobs=-1, refit=False).fit(X, y)
        remote_cv = cross_val_score(pipe, X, y, cv=2, n_jobs=-1)
    np.testing.assert_array_equal(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert remote.best_params_ == local.best_params_
    np.testing.assert_array_equal(remote_cv, local_cv)
    assert local.cv_results_["mean_test_score"].max() > 0.5  # they learnt
    ran_on = {task["worker"] for task in stream.data}
    assert ran_on and ran_on <= set(client.nthreads())


# -- EmnistSearchCV on the cluster ------------------------------------------------
def test_search_on_two_workers_equals_the_search_on_one(client, data):
    """Trials spread over two workers give exactly what one worker gives.

    Compared: the same search (n_jobs=2, random_state=0, the default TPE
    sampler, :class:`PruneOnSeeingTheFirstWave`) with its tasks on both
    workers, and pinned to one (``dask.annotate(workers=...)``), where the
    waves' two trials run one after the other. They must be equal to the
    last bit: the driver's sampler asks a wave's parameters from the trials
    of earlier waves only, each worker's pruner sees those trials only, and
    each fit is seeded and runs in a worker process with the same one
    TensorFlow thread - so neither the number of workers nor their timing
    can change a result. Which trials are pruned depends on what each
    trial's pruner saw, never on the CPU's arithmetic.
    """
    import dask

    X, y = data

    def search():
        return EmnistSearchCV(
            mlp(),
            n_trials=4,
            n_jobs=2,
            pruner=PruneOnSeeingTheFirstWave(),
            random_state=0,
            scheduler=client,
            refit=False,
        ).fit(X, y)

    workers = sorted(client.nthreads())
    spread = search()
    with dask.annotate(workers=workers[:1]):
        pinned = search()
    assert [t.number for t in spread.study_.trials] == list(range(4))
    assert trial_rows(spread) == trial_rows(pinned)
    states = [t.state.name for t in spread.study_.trials]
    # the first wave saw no finished trial, the second exactly the first
    # wave: a trial that saw its wave-mate would have seen 1 or 3
    assert states == ["COMPLETE", "COMPLETE", "PRUNED", "PRUNED"]
    assert [len(t.intermediate_values) for t in spread.study_.trials] == [2, 2, 1, 1]
    assert max(spread.cv_results_["mean_test_score"]) > 0.5
    ran_on = [t.user_attrs["worker"] for t in spread.study_.trials]
    assert set(ran_on) == set(workers)  # each wave's two trials side by side
    assert {t.user_attrs["worker"] for t in pinned.study_.trials} == {workers[0]}
    pids = client.run(os.getpid)
    assert os.getpid() not in pids.values()  # worker processes, not this one
    assert spread.best_params_ == pinned.best_params_
    # each trial's own time on its worker, not its wave's
    durations = spread.cv_results_["duration_s"]
    assert durations[0] != durations[1] and all(durations > 0)


def test_search_on_the_cluster_with_n_jobs_1_equals_the_local_search(client, data):
    """With waves of one trial, the cluster runs the local search's sequence.

    Compared: ``scheduler=client`` against the in-process search
    (``scheduler=None``, the unchanged optuna ``optimize`` loop), both
    n_jobs=1 and random_state=0. Both ask, run and tell one trial at a time;
    the first 10 TPE trials are drawn at random from the seed, and each
    fit's accuracy (a multiple of 1/60) comes from the same seeded fit.
    """
    X, y = data
    searches = [
        EmnistSearchCV(
            mlp(), n_trials=3, random_state=0, scheduler=scheduler, refit=False
        ).fit(X, y)
        for scheduler in (client, None)
    ]
    on_cluster, local = searches
    assert trial_rows(on_cluster) == trial_rows(local)
    assert {t.user_attrs["worker"] for t in on_cluster.study_.trials} <= set(
        client.nthreads()
    )
    assert on_cluster.best_params_ == local.best_params_


def test_a_multi_objective_search_on_the_cluster_equals_the_local_one(client, data):
    """Issue 33.2: a wave's trials return a tuple of values, told as such."""
    X, y = data
    searches = [
        EmnistSearchCV(
            mlp(),
            n_trials=4,
            n_jobs=n_jobs,
            objectives=("score", "n_params"),
            random_state=0,
            scheduler=scheduler,
            refit=False,
        ).fit(X, y)
        for scheduler, n_jobs in ((client, 2), (None, 1))
    ]
    on_cluster, local = searches
    assert len(on_cluster.study_.directions) == 2
    # waves of two see fewer finished trials when they are asked: the first
    # 10 TPE trials are drawn from the seed alone, so the trials are the same
    rows = [
        [(t.number, t.state.name, t.params, t.values) for t in s.study_.trials]
        for s in searches
    ]
    assert rows[0] == rows[1]
    assert [t.number for t in on_cluster.pareto_front_] == [
        t.number for t in local.pareto_front_
    ]
    assert {t.user_attrs["worker"] for t in on_cluster.study_.trials} <= set(
        client.nthreads()
    )


def test_a_search_given_a_client_clones_and_pickles(client):
    """Clones share the client (a live connection cannot be copied); a
    pickle keeps the scheduler's address."""
    import pickle

    from sklearn.base import clone

    search = EmnistSearchCV(mlp(), n_trials=3, scheduler=client)
    twin = clone(search)
    assert twin.scheduler is client and twin.n_trials == 3
    assert twin.estimator is not search.estimator
    restored = pickle.loads(pickle.dumps(search))
    assert restored.scheduler == client.scheduler.address
    assert search.scheduler is client  # unchanged by pickling


def test_thread_share_gives_each_worker_its_share_of_the_cores(client):
    """Two workers on this machine: each TensorFlow runs on half the cores."""
    expected = max(1, available_cpus() // 2)

    def pools():
        import tensorflow as tf

        tf.constant([1.0]) + 1.0  # the runtime (and its pools) has started
        threading = tf.config.threading
        return (
            threading.get_intra_op_parallelism_threads(),
            threading.get_inter_op_parallelism_threads(),
        )

    workers = client.nthreads()
    assert share_threads(client) == dict.fromkeys(workers, expected)
    assert client.run(pools) == dict.fromkeys(workers, (expected, expected))


def test_the_dask_recipe_of_the_docs_runs(tmp_path):
    """docs/user_guide/distributed.rst's recipe, on loopback: ``dask
    scheduler``, ``dask worker ADDRESS --nworkers 2 --nthreads 1``, then
    ``emnist-estimators tune --dask-scheduler ADDRESS``: its two trials ran
    on the two worker processes."""
    import json
    import subprocess

    import optuna

    distributed = _distributed()
    address = f"tcp://127.0.0.1:{free_port()}"
    dask = [sys.executable, "-m", "dask"]
    commands = [
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":")[-1],
         "--dashboard-address", ":0"],
        [*dask, "worker", address, "--nworkers", "2", "--nthreads", "1",
         "--host", "127.0.0.1", "--no-dashboard"],
    ]  # fmt: skip
    log = (tmp_path / "dask.log").open("wb")
    started = []
    try:
        for command in commands:
            started.append(subprocess.Popen(command, stdout=log, stderr=log))
        # the recipe's "once the workers are up": each gets its share of cores
        with distributed.Client(address, timeout=30, set_as_default=False) as c:
            c.wait_for_workers(2, timeout=60)
        bars = write_idx_folder(tmp_path / "bars", n_train=150, n_test=30)
        out = tmp_path / "tuning"
        args = ["tune", "--model", "mlp", "--dataset", bars, "--n-trials", 2,
                "--epochs", 1, "--pruner", "none", "--random-state", 0,
                "--param", "hidden_layer_sizes=(16,)", "--n-jobs", 2, "--quiet",
                "--no-plots", "--dask-scheduler", address, "--output", out]  # fmt: skip
        assert main([str(a) for a in args]) == 0
        # the search's plugin is gone from the (perhaps shared) scheduler
        with distributed.Client(address, timeout=30, set_as_default=False) as c:
            plugins = c.run_on_scheduler(
                lambda dask_scheduler: list(dask_scheduler.worker_plugins)
            )
        assert ThreadShare.name not in plugins
    finally:
        for process in reversed(started):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
    summary = json.loads((out / "emnist-mlp-summary.json").read_text())
    assert summary["n_trials"] == 2 and summary["states"]["COMPLETE"] == 2
    study = optuna.load_study(study_name="emnist-mlp", storage=summary["storage"])
    ran_on = {t.user_attrs["worker"] for t in study.trials}
    assert len(ran_on) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in ran_on)


# -- failures: clear errors, never a hang ---------------------------------------
def test_unreachable_scheduler_is_a_clear_error(monkeypatch, data):
    _distributed()
    monkeypatch.setattr(cluster_mod, "CONNECT_TIMEOUT", 1.0)
    X, y = data
    address = f"tcp://127.0.0.1:{free_port()}"
    search = EmnistSearchCV(mlp(), n_trials=1, scheduler=address)
    with pytest.raises(ClusterError, match="dask scheduler") as caught:
        search.fit(X, y)
    assert address in str(caught.value) and "within 1 s" in str(caught.value)


def test_tune_command_with_an_unreachable_scheduler_exits_1(
    monkeypatch, tmp_path, capsys
):
    _distributed()
    monkeypatch.setattr(cluster_mod, "CONNECT_TIMEOUT", 1.0)
    address = f"tcp://127.0.0.1:{free_port()}"
    out = tmp_path / "tuning"
    code = main(["tune", "--dataset", str(tmp_path / "never-read"),
                 "--dask-scheduler", address, "--output", str(out)])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("emnist-estimators: error: Cannot reach the Dask scheduler")
    assert address in err and "`dask scheduler`" in err
    assert not out.exists()  # nothing was created


def test_a_cluster_without_workers_is_an_error_not_a_hang(monkeypatch, data):
    """A scheduler without workers: fit and the wait for a wave end in a
    ClusterError that says how to start workers (after NO_WORKERS_TIMEOUT,
    1 s here), and the wave's unfinished tasks are cancelled."""
    distributed = _distributed()
    monkeypatch.setattr(cluster_mod, "NO_WORKERS_TIMEOUT", 1.0)
    X, y = data
    with (
        distributed.LocalCluster(
            n_workers=0, host="127.0.0.1", dashboard_address=":0"
        ) as empty,
        distributed.Client(empty, set_as_default=False) as lonely,
    ):
        search = EmnistSearchCV(mlp(), n_trials=2, n_jobs=2, scheduler=lonely)
        with pytest.raises(ClusterError, match="has no worker.*dask worker"):
            search.fit(X, y)
        # as if every worker had died after the wave was submitted
        future = lonely.submit(sum, [1, 2], pure=False)
        with pytest.raises(ClusterError, match="Every worker .* is gone"):
            cluster_mod.wait_for_futures(lonely, [future])
        assert future.cancelled()


def test_trials_of_a_wave_that_cannot_finish_are_told_fail(
    client, monkeypatch, tmp_path, data
):
    """When a wave ends in an error (every worker gone, Ctrl-C), its trials
    are FAIL in the storage, with the error: none stays RUNNING for ever."""
    import optuna

    def gone(client, futures, **kw):
        raise ClusterError("Every worker of the Dask scheduler at X is gone")

    monkeypatch.setattr(cluster_mod, "wait_for_futures", gone)
    X, y = data
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search = EmnistSearchCV(
        mlp(), n_trials=2, n_jobs=2, scheduler=client, storage=storage, study_name="s"
    )
    with pytest.raises(ClusterError, match="is gone"):
        search.fit(X, y)
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert [(t.number, t.state.name) for t in trials] == [(0, "FAIL"), (1, "FAIL")]
    assert all("ClusterError" in t.user_attrs["error"] for t in trials)


def test_a_worker_that_dies_fails_its_trial_and_the_search_goes_on(client, data):
    """Trial 1 kills every worker process that runs it (os._exit): Dask
    retries it once on another worker, which dies too, then gives up
    (KilledWorker). The trial is FAIL with that error; trials 0, 2 and 3
    complete, on the workers the nannies restarted. Runs last: it restarts
    the module's workers."""
    X, y = data

    def space(trial):
        params = {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-2)}
        if trial.number == 1 and _in_worker():
            os._exit(1)
        return params

    search = EmnistSearchCV(
        mlp(),
        param_distributions=space,
        n_trials=4,
        n_jobs=2,
        pruner="none",
        random_state=0,
        scheduler=client,
        refit=False,
    ).fit(X, y)
    trials = search.study_.trials
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert [t.state.name for t in trials] == [
        "COMPLETE",
        "FAIL",
        "COMPLETE",
        "COMPLETE",
    ]
    assert trials[1].user_attrs["error"].startswith("KilledWorker")
    assert search.best_score_ > 0
    client.wait_for_workers(2, timeout=60)  # the nannies restarted them


def test_scheduler_must_be_an_address_or_a_client(data):
    X, y = data
    with pytest.raises(ValueError, match="'scheduler' parameter of EmnistSearchCV"):
        EmnistSearchCV(mlp(), n_trials=1, scheduler=8786).fit(X, y)


def test_without_dask_the_error_names_the_extra(monkeypatch, data):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    X, y = data
    search = EmnistSearchCV(mlp(), n_trials=1, scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(ImportError, match=r'pip install "emnist-estimators\[distri'):
        search.fit(X, y)


def test_importing_the_package_does_not_import_dask():
    loaded = modules_loaded_by(
        "import emnist_estimators.cluster, emnist_estimators.tuning, "
        "emnist_estimators.cli",
        ("dask", "distributed"),
    )
    assert loaded == []


def test_workers_on_a_cpu_machine_are_not_pinned(client):
    share_threads(client)

    def pinned(dask_worker):
        return dask_worker.plugins[ThreadShare.name].gpu

    assert set(client.run(pinned).values()) == {None}


def test_a_workers_pruner_records_reach_the_drivers_study():
    """What a worker's pruner wrote (successive halving's rung scores) is
    copied into the driver's trial, where the next waves' pruners read it;
    the worker's duration and user attrs come too."""
    import datetime

    import optuna

    from emnist_estimators.tuning.waves import _tell_outcome

    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    worker_study = optuna.create_study(direction="maximize", pruner=pruner)
    trial = worker_study.ask()
    for step, value in enumerate([0.5, 0.6, 0.7]):
        trial.report(value, step)
        trial.should_prune()  # writes the rung attributes
    trial.set_user_attr("epochs", 3)
    worker_study.tell(trial, 0.7)
    frozen = worker_study.trials[0]
    frozen.datetime_start = frozen.datetime_complete - datetime.timedelta(seconds=4)
    rungs = {k: v for k, v in frozen.system_attrs.items() if "rung" in k}
    assert rungs  # the pruner did write them

    driver = optuna.create_study(direction="maximize", pruner=pruner)
    mine = driver.ask()
    _tell_outcome(driver, mine, frozen, None, [])
    told = driver.trials[0]
    assert told.state == optuna.trial.TrialState.COMPLETE and told.value == 0.7
    assert told.intermediate_values == {0: 0.5, 1: 0.6, 2: 0.7}
    assert {k: told.system_attrs[k] for k in rungs} == rungs
    assert told.user_attrs["epochs"] == 3
    assert told.user_attrs["duration_s"] == 4.0


class _Scores:
    """Stands in for a TrialObjective on a worker: every trial scores ``value``."""

    def __init__(self, value: float) -> None:
        self.value, self.errors = value, []

    def fresh(self):
        return _Scores(self.value)

    def __call__(self, trial) -> float:
        return self.value


def _driver_with_a_finished_trial():
    """A driver's study: trial 0 finished, trial 1 asked (the wave's)."""
    import optuna

    lr = {"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-1)}
    driver = optuna.create_study(direction="maximize")
    driver.tell(driver.ask(lr), 0.5)
    return driver, driver.ask(lr)


def test_a_trial_on_a_worker_keeps_the_drivers_number_and_parameters():
    """Run where Dask puts it (here: in this process), a wave's trial is the
    trial the driver asked: same number, same parameters. A history that lost
    a trial would renumber it; that is an error, not another trial's result."""
    from emnist_estimators.tuning.waves import _remote_task, _run_remote_trial

    driver, mine = _driver_with_a_finished_trial()
    task = _remote_task(driver, mine, driver.get_trials(deepcopy=False))
    frozen, error = _run_remote_trial(_Scores(0.75), task)
    assert error is None and frozen.state.name == "COMPLETE"
    assert (frozen.number, frozen.params, frozen.value) == (1, mine.params, 0.75)
    with pytest.raises(RuntimeError, match="Trial 1 became number 0 on the worker"):
        _run_remote_trial(_Scores(0.75), {**task, "history": []})


def test_the_driver_logs_each_finished_trial_with_its_value_and_parameters(caplog):
    """As optuna's own loop does: a worker's result is logged on the driver
    with the trial's number, worker, value and parameters."""
    from emnist_estimators.tuning.waves import (
        _remote_task,
        _run_remote_trial,
        _tell_outcome,
    )

    driver, mine = _driver_with_a_finished_trial()
    task = _remote_task(driver, mine, driver.get_trials(deepcopy=False))
    frozen, error = _run_remote_trial(_Scores(0.75), task)
    with caplog.at_level("INFO", logger="emnist_estimators.tuning"):
        _tell_outcome(driver, mine, frozen, error, [])
    assert driver.trials[1].value == 0.75
    line = [r.getMessage() for r in caplog.records if "Trial 1" in r.getMessage()]
    assert line == [
        f"Trial 1 finished on pid {os.getpid()} with value 0.75 and parameters "
        f"{mine.params}."
    ]
