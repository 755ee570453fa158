"""``emnist-estimators tune``: an optuna search, here or on a Dask cluster.

Runs :class:`~emnist_estimators.tuning.EmnistSearchCV` on ``--dataset``,
writes its figures and summary, and ends with the ``train`` command line
that fits the best parameters.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import shlex
from pathlib import Path

from .._utils import jsonable
from ..cluster import ThreadShare, connected, share_threads
from ..output_folder import (
    check_output_folder,
    discard_created,
    prepare_reusable,
    write_manifest,
)
from ..reporting import save_tuning_figures
from ..tracking import log_study, start_run, tracking_uri
from . import loading
from .console import EXIT_OK, UsageError, emit

__all__ = ["dashboard_hint", "run_tune", "train_command"]

log = logging.getLogger("emnist_estimators.cli")


def run_tune(args) -> int:
    """Run ``tune``: search, then write the figures, summary and manifest.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit code, 0.

    Raises
    ------
    UsageError
        If ``--n-trials`` or ``--n-jobs`` is out of range, or
        ``--objectives`` names an unknown objective.
    """
    # they import optuna
    from ..tuning import count_trials
    from ..tuning.objectives import check_objectives, resolve_pruner
    from ..tuning.storage import optuna_info_lines

    params = loading.parse_params(args.param)
    if args.epochs:
        params["epochs"] = args.epochs
    clf = loading.make_estimator(args, params)
    if args.n_trials <= 0:
        raise UsageError(f"--n-trials must be positive, got {args.n_trials}.")
    if args.n_jobs is not None and (args.n_jobs == 0 or args.n_jobs < -1):
        raise UsageError(f"--n-jobs must be positive or -1, got {args.n_jobs}.")
    try:
        args.objectives = check_objectives(
            tuple(name.strip() for name in args.objectives.split(","))
        )
        resolve_pruner(args.pruner, args.objectives)  # none with several
    except ValueError as exc:
        raise UsageError(f"--objectives: {exc}") from None
    check_output_folder(args.output, reuse=True)
    args.mlflow = tracking_uri(args.mlflow)  # MLflow missing: said before any work
    # connect before loading the data: an unreachable scheduler fails fast
    with _dask_client(args) as client:
        data = loading.load_data(args, random_state=args.random_state or 0)
        output, created = prepare_reusable(args.output, command="tune")
        try:
            # optuna's per-trial INFO lines only with --verbose
            with optuna_info_lines(args.verbose), _mlflow_run(args) as run:
                result, text, written = _tune(args, clf, data, output, client, run)
        except BaseException:
            # A failed run leaves nothing it created - unless trials were
            # stored in the default study file, which --resume can continue.
            db = output / "study.db"
            if created and not (args.storage is None and count_trials(db)):
                discard_created(output, created, files=["study.db"])
            raise
    write_manifest(output, command="tune", files=written)
    emit(args, result, text)
    return EXIT_OK


@contextlib.contextmanager
def _dask_client(args):
    """A client of ``--dask-scheduler``, its workers' threads shared; else None.

    Each worker's TensorFlow gets ``--threads`` threads, or its share of its
    machine's cores, before it runs a trial.
    """
    if args.dask_scheduler is None:
        yield None
        return
    with connected(args.dask_scheduler) as client:
        threads = share_threads(client, args.threads)
        log.info("Dask workers and their TensorFlow threads: %s", threads)
        try:
            yield client
        finally:
            # the scheduler may be shared: workers joining later for other
            # work must not get this search's thread share and GPU pinning
            client.unregister_worker_plugin(ThreadShare.name)


@contextlib.contextmanager
def _mlflow_run(args):
    """The search's MLflow run with ``--mlflow`` (or its variable); else None."""
    if args.mlflow is None:
        yield None
        return
    with start_run(
        args.mlflow,
        experiment=args.mlflow_experiment,
        run_name=f"tune {args.model} on {args.dataset}",
        tags={"command": "tune", "dataset": args.dataset, "model": args.model},
    ) as run:
        yield run


def _log_search(run, args, clf, search, result: dict, output: Path, written) -> None:
    """Log a finished search: its settings, best trial, files, a run per trial."""
    run.log_params(clf.get_params())
    settings = {
        key: getattr(args, key)
        for key in ("n_trials", "cv", "pruner", "objectives", "n_jobs", "timeout")
    }
    settings |= {"study_name": result["study_name"], "storage": result["storage"]}
    settings["random_state"] = args.random_state
    run.log_params(settings, prefix="search.")
    run.log_params(result["best_params"], prefix="best.")
    run.log_metrics({key: result[key] for key in ("best_value", "epochs_spent")})
    run.log_metrics({f"n_{k.lower()}": n for k, n in result["states"].items()})
    for name in written:
        if name != "study.db":  # the study itself: its trials are logged below
            run.log_artifacts(output / name)
    log_study(run, search.study_)
    result["mlflow_run_id"] = run.run_id


def _tune(args, clf, data, output: Path, client=None, run=None):
    from ..tuning import EmnistSearchCV, hide_password, study_summary

    storage = args.storage or f"sqlite:///{output / 'study.db'}"
    n_jobs = args.n_jobs or (-1 if client is not None else 1)
    search = EmnistSearchCV(
        clf,
        n_trials=args.n_trials,
        timeout=args.timeout,
        cv=args.cv,
        objectives=args.objectives,
        pruner=args.pruner,
        storage=storage,
        study_name=args.study_name or f"emnist-{args.model}",
        load_if_exists=args.resume,
        refit=False,
        n_jobs=n_jobs,
        scheduler=client,
        random_state=args.random_state,
        show_progress_bar=not (args.quiet or args.json),
    ).fit(data.X, data.y)
    study = search.study_
    figures = []
    if not args.no_plots:
        import matplotlib

        matplotlib.use("Agg")  # files only: no window, no display needed
        figures = save_tuning_figures(study, output)
    summary = study_summary(search)
    result = {
        "study_name": summary["study_name"],
        "storage": hide_password(storage),
        **{k: v for k, v in summary.items() if k != "study_name"},
        "figures": [str(f) for f in figures],
        "train_command": train_command(args, summary["best_params"], output),
    }
    summary_file = output / f"{study.study_name}-summary.json"
    summary_file.write_text(json.dumps(jsonable(result), indent=2))
    written = [f.name for f in (*figures, summary_file)]
    if run is not None:
        _log_search(run, args, clf, search, result, output, written)
    if args.storage is None:
        written.append("study.db")
    return result, _tune_text(result, output), written


def _tune_text(result: dict, output: Path) -> str:
    counts = result["states"]
    rows = [
        f"{t['number']:>5}  {t['value']:7.4f}  "
        + ", ".join(f"{k}={_short(v)}" for k, v in t["params"].items())
        for t in result["top"]
    ]
    return (
        f"study {result['study_name']!r}: {result['n_trials']} trials "
        f"({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed); best {result['best_value']:.4f}\n"
        + "\n".join([f"{'trial':>5}  {'score':>7}  params", *rows])
        + _front_text(result)
        + (f"\nfigures in {output}" if result["figures"] else "")
        + f"\n{dashboard_hint(result['storage'])}"
        + f"\ntrain the best parameters: {result['train_command']}"
    )


def _front_text(result: dict) -> str:
    """The Pareto front's trials, one a line, when there are several objectives."""
    if "pareto_front" not in result:
        return ""
    names = result["objectives"]
    rows = [
        f"{t['number']:>5}  "
        + "  ".join(f"{_short(t['values'][name]):>12}" for name in names)
        for t in result["pareto_front"]
    ]
    header = f"{'trial':>5}  " + "  ".join(f"{name:>12}" for name in names)
    return f"\nPareto front ({len(rows)} trials):\n" + "\n".join([header, *rows])


def dashboard_hint(storage: str) -> str:
    """Say how to browse a study: optuna-dashboard, or how to install it.

    Parameters
    ----------
    storage : str
        The study's storage URL, or ``journal:FILE``.

    Returns
    -------
    str
        The command to run, with ``pip install`` first if needed.
    """
    # optuna-dashboard opens a journal file by its path, without the prefix
    where = storage.removeprefix("journal:")
    if importlib.util.find_spec("optuna_dashboard") is not None:
        return f"view: optuna-dashboard {where}"
    return (
        f"view in a browser: pip install optuna-dashboard, then "
        f"optuna-dashboard {where}"
    )


def train_command(args, best_params: dict, output: Path) -> str:
    """Write the ``train`` command line that fits the best parameters on all data.

    Parameters
    ----------
    args : argparse.Namespace
        The ``tune`` command line: its model, data and fixed parameters.
    best_params : dict
        The search's best parameters.
    output : Path
        The tuning folder; the model goes to its ``best-model``.

    Returns
    -------
    str
        The command line, quoted for a POSIX shell.
    """
    params = {**loading.parse_params(args.param), **best_params}
    if args.epochs:
        params["epochs"] = args.epochs
    words = ["emnist-estimators", "train", "--model", args.model]
    words += ["--dataset", args.dataset]
    if args.data_home:
        words += ["--data-home", args.data_home]
    if args.subset != "train":
        words += ["--subset", args.subset]
    for key, value in params.items():
        # repr round-trips through --param's literal_eval; a bare word such
        # as relu is read as the same string
        text = value if isinstance(value, str) and value.isidentifier() else repr(value)
        words += ["--param", f"{key}={text}"]
    if args.random_state is not None:
        words += ["--random-state", str(args.random_state)]
    words += ["--output", str(output / "best-model")]
    return shlex.join(words)


def _short(value):
    return f"{value:.4g}" if isinstance(value, float) else value
