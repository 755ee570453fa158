"""Experiment tracking with MLflow: what ``train``, ``tune`` and ``report`` log.

``--mlflow URI`` on those commands (or ``$MLFLOW_TRACKING_URI`` when set)
logs each run to an MLflow tracking server or store, through MLflow's own
client (:class:`mlflow.tracking.MlflowClient`): parameters, a metric per
epoch, the final scores, and the files the command wrote as artifacts. The
client is given the URI explicitly, so nothing here changes MLflow's global
state (``mlflow.set_tracking_uri``, the active run) in the calling process.

From Python: ``callbacks=[mlflow.keras.MlflowCallback()]``, and
:func:`autolog`, ``mlflow.sklearn.autolog()`` that records bare fits too.

MLflow is the optional ``tracking`` extra: ``pip install
'emnist-estimators[tracking]'``; it is imported only when a run is logged.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ._utils import jsonable, jsonable_params
from ._version import __version__
from .exceptions import ExportError, StorageError

__all__ = [
    "DEFAULT_EXPERIMENT",
    "INSTALL_HINT",
    "Tracker",
    "autolog",
    "import_mlflow",
    "log_study",
    "start_run",
    "tracking_uri",
]

log = logging.getLogger(__name__)

#: The MLflow experiment runs go to unless ``--mlflow-experiment`` names another.
DEFAULT_EXPERIMENT = "emnist-estimators"

#: How to install what tracking needs.
INSTALL_HINT = "pip install 'emnist-estimators[tracking]'"

#: The environment variable MLflow itself reads for its tracking URI.
_ENV = "MLFLOW_TRACKING_URI"

#: The tag MLflow's UI nests a run under its parent by.
_PARENT_TAG = "mlflow.parentRunId"


def import_mlflow() -> Any:
    """Import ``mlflow``, or say how to install it.

    Returns
    -------
    module
        The ``mlflow`` package.

    Raises
    ------
    ImportError
        MLflow is not installed; the message names the ``tracking`` extra.
    """
    try:
        import mlflow
    except ImportError as exc:
        raise ImportError(
            f"Tracking runs with MLflow needs the Python package 'mlflow', which "
            f"is not installed: {INSTALL_HINT}"
        ) from exc
    return mlflow


def tracking_uri(given: str | None) -> str | None:
    """The tracking URI a command logs to: ``given``, else ``$MLFLOW_TRACKING_URI``.

    Parameters
    ----------
    given : str or None
        The ``--mlflow`` option.

    Returns
    -------
    str or None
        The URI, or None for no tracking: neither given nor set, or only
        the environment variable set where MLflow is not installed (a
        warning says so; ``--mlflow`` given then raises instead).

    Raises
    ------
    ImportError
        ``given`` names a URI and MLflow is not installed.

    Examples
    --------
    >>> tracking_uri("sqlite:///mlflow.db")
    'sqlite:///mlflow.db'
    """
    if given:
        import_mlflow()  # before any long work
        return given
    uri = os.environ.get(_ENV) or None
    if uri is not None:
        try:
            import_mlflow()
        except ImportError:
            log.warning(
                "%s is set (%s) but MLflow is not installed: this run is not "
                "tracked. Install it (%s), or unset %s.",
                _ENV,
                uri,
                INSTALL_HINT,
                _ENV,
            )
            return None
    return uri


class Tracker:
    """One MLflow run, logged through an explicit :class:`~mlflow.MlflowClient`.

    Made by :func:`start_run`, which ends the run; :meth:`child` makes a
    nested run (one per tuning trial).

    Parameters
    ----------
    client : mlflow.MlflowClient
        The client of the tracking URI.
    run_id : str
        The run this logs to.
    """

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_params(self, params: Mapping[str, Any], prefix: str = "") -> None:
        """Log parameters, their values as JSON (strings as they are).

        Parameters
        ----------
        params : mapping
            Names and values; converted by the package's JSON rule
            (``jsonable_params``: tuples as lists, numpy scalars as numbers;
            ``callbacks`` left out).
        prefix : str, default=""
            Put before each name (e.g. ``"search."``).
        """
        from mlflow.entities import Param

        items = [
            Param(prefix + key, value if isinstance(value, str) else json.dumps(value))
            for key, value in jsonable_params(params).items()
        ]
        self.client.log_batch(self.run_id, params=items)

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> None:
        """Log the finite numbers of ``metrics`` (other values are left out).

        Parameters
        ----------
        metrics : mapping
            Names and values; booleans, strings, NaN and nested values are
            not metrics and are skipped.
        step : int, default=0
            The step they are logged at.
        """
        self._log([(key, value, step) for key, value in metrics.items()])

    def log_history(self, history: Mapping[str, Any]) -> None:
        """Log a Keras history: one point per epoch, at steps 0, 1, ...

        Parameters
        ----------
        history : mapping
            Metric name -> its value after each epoch (an estimator's
            ``history_``). Steps count epochs from 0, as
            ``mlflow.keras.MlflowCallback`` logs them.
        """
        self._log(
            [
                (key, value, step)
                for key, values in history.items()
                for step, value in enumerate(values)
            ]
        )

    def _log(self, points: list[tuple[str, Any, int]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, int(step))
            for key, value, step in points
            if _is_number(value)
        ]
        self.client.log_batch(self.run_id, metrics=metrics)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags, their values as strings.

        Parameters
        ----------
        tags : mapping
            Tag names and values; None values are skipped.
        """
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items() if v is not None]
        self.client.log_batch(self.run_id, tags=items)

    def log_artifacts(
        self, path: str | os.PathLike, artifact_path: str | None = None
    ) -> None:
        """Upload a file, or a folder's files, as artifacts of the run.

        Parameters
        ----------
        path : str or path-like
            A file or a folder.
        artifact_path : str, default=None
            The folder in the run's artifacts; default: their root.
        """
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_estimator(self, estimator: Any) -> None:
        """Log a fitted estimator's parameters, its class and its per-epoch history.

        Parameters
        ----------
        estimator : EmnistMLP or EmnistCNN
            Fitted (``history_`` is logged when it has one).
        """
        self.log_params(estimator.get_params())
        self.set_tags({"estimator": type(estimator).__name__})
        self.log_history(getattr(estimator, "history_", None) or {})

    def log_onnx(self, estimator: Any, artifact_path: str = "onnx") -> bool:
        """Export to ONNX (checked against ``predict_proba``) and log the file.

        Parameters
        ----------
        estimator : EmnistMLP, EmnistCNN or Pipeline
            Fitted; what :func:`~emnist_estimators.export.export_model` takes.
        artifact_path : str, default="onnx"
            The artifacts folder of ``model.onnx`` and its sidecar.

        Returns
        -------
        bool
            Whether it was logged: False, with a log line saying why, where the
            ``export`` extra is not installed or the export failed its check.
        """
        from .export import export_model  # TensorFlow: only when used

        with tempfile.TemporaryDirectory(prefix="emnist-mlflow-") as tmp:
            try:
                export_model(estimator, Path(tmp) / "model.onnx")
            except ImportError as exc:
                log.info("no ONNX artifact: %s", exc)
                return False
            except ExportError as exc:
                log.warning("no ONNX artifact: the export failed: %s", exc)
                return False
            self.client.log_artifacts(self.run_id, tmp, artifact_path)
        return True

    def child(self, run_name: str, tags: Mapping[str, Any] | None = None) -> Tracker:
        """Start a run nested under this one; end it with :meth:`end`.

        Parameters
        ----------
        run_name : str
            The nested run's name.
        tags : mapping, default=None
            Its tags.

        Returns
        -------
        Tracker
            The nested run.
        """
        parent = self.client.get_run(self.run_id)
        run = self.client.create_run(
            parent.info.experiment_id,
            run_name=run_name,
            tags={**_tags(tags), _PARENT_TAG: self.run_id},
        )
        return Tracker(self.client, run.info.run_id)

    def end(self, status: str = "FINISHED") -> None:
        """End the run.

        Parameters
        ----------
        status : str, default="FINISHED"
            MLflow's run status: FINISHED, FAILED or KILLED.
        """
        # MLflow prints a server's run and experiment links to stdout, where
        # the commands print their result (JSON with --json): to stderr
        with contextlib.redirect_stdout(sys.stderr):
            self.client.set_terminated(self.run_id, status=status)


@contextlib.contextmanager
def start_run(
    uri: str,
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> Iterator[Tracker]:
    """Start an MLflow run at ``uri``; end it FINISHED, or FAILED on an error.

    Parameters
    ----------
    uri : str
        The tracking URI: a server (``http://host:5000``), a database
        (``sqlite:///mlflow.db``) or a local folder.
    experiment : str, default="emnist-estimators"
        The experiment's name; created when it does not exist.
    run_name : str, default=None
        The run's name; default: MLflow makes one up.
    tags : mapping, default=None
        The run's tags, besides the package's version and MLflow's own
        (user, source).

    Yields
    ------
    Tracker
        The run.

    Raises
    ------
    ImportError
        MLflow is not installed.
    StorageError
        The tracking store cannot be opened (a server that does not answer
        fails after one retry, within seconds).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from mlflow import MlflowClient
    >>> tmp = tempfile.TemporaryDirectory()
    >>> uri = f"sqlite:///{pathlib.Path(tmp.name) / 'mlflow.db'}"
    >>> with start_run(uri, experiment="doc", run_name="first") as run:
    ...     run.log_history({"loss": [0.9, 0.5]})
    >>> [m.value for m in MlflowClient(uri).get_metric_history(run.run_id, "loss")]
    [0.9, 0.5]
    >>> tmp.cleanup()
    """
    import_mlflow()
    from mlflow import MlflowClient
    from mlflow.tracking.context.registry import resolve_tags

    client = MlflowClient(tracking_uri=uri)
    with _first_contact(uri):
        found = client.get_experiment_by_name(experiment)
    experiment_id = (
        found.experiment_id if found else client.create_experiment(experiment)
    )
    run = client.create_run(
        experiment_id, run_name=run_name, tags=resolve_tags(_tags(tags))
    )
    tracker = Tracker(client, run.info.run_id)
    try:
        yield tracker
    except KeyboardInterrupt:
        tracker.end("KILLED")
        raise
    except BaseException:
        tracker.end("FAILED")
        raise
    tracker.end()


#: MLflow's HTTP settings for the first request to a server, unless set: an
#: unreachable server fails in seconds, not after minutes of MLflow's retries.
_FIRST_CONTACT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
}


@contextlib.contextmanager
def _first_contact(uri: str) -> Iterator[None]:
    """The first request to ``uri``: quick to fail, with what to do about it."""
    from mlflow.exceptions import MlflowException

    # the variables are read at each request; the commands make this one
    # before any other thread runs, and a value the user set is kept
    added = []
    if uri.startswith(("http://", "https://")):
        added = [k for k in _FIRST_CONTACT if k not in os.environ]
        os.environ.update({k: _FIRST_CONTACT[k] for k in added})
    try:
        yield
    except (MlflowException, OSError) as exc:
        raise StorageError(
            f"Cannot open the MLflow tracking store {uri}: {exc} Check --mlflow "
            f"(or ${_ENV}); a local server starts with: mlflow server --port 5000"
        ) from exc
    finally:
        for key in added:
            os.environ.pop(key, None)


#: An optuna trial's state -> the status of its MLflow run.
_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}


def log_study(tracker: Tracker, study: Any) -> int:
    """Log each finished trial of an optuna study as a run nested under ``tracker``.

    A nested run, named ``trial N``, holds the trial's parameters, its
    objective values as metrics (named as the study names them, else
    ``score``), its numeric user attributes (epochs, seconds; a failed
    trial's error as the ``error`` tag), the values it reported while
    running as the metric history ``intermediate_value`` (per epoch, or per
    cross-validation fold), and its state as the ``optuna.state`` tag:
    FINISHED for complete and pruned trials, FAILED for failed ones.
    Trials still running or waiting are left out.

    Parameters
    ----------
    tracker : Tracker
        The search's run.
    study : optuna.Study
        The study, read after the search: the driver's view of every trial,
        whether it ran here or on a Dask worker.

    Returns
    -------
    int
        The trials logged.
    """
    names = tuple(getattr(study, "metric_names", None) or ("score",))
    if len(study.directions) > 1 and names == ("score",):
        names = tuple(f"objective_{i}" for i in range(len(study.directions)))
    logged = 0
    for trial in study.get_trials(deepcopy=False):
        status = _STATUS.get(trial.state.name)
        if status is None:
            continue
        tags = {"optuna.study": study.study_name, "optuna.trial": trial.number}
        tags["optuna.state"] = trial.state.name
        child = tracker.child(f"trial {trial.number}", tags=tags)
        try:
            child.log_params(trial.params)
            child.log_metrics(dict(zip(names, trial.values or (), strict=False)))
            attrs = trial.user_attrs
            child.log_metrics(attrs)
            child.set_tags({k: v for k, v in attrs.items() if isinstance(v, str)})
            if trial.duration is not None:
                child.log_metrics({"duration_s": trial.duration.total_seconds()})
            reported = sorted(trial.intermediate_values.items())
            child._log([("intermediate_value", v, step) for step, v in reported])
        except BaseException:
            child.end("FAILED")
            raise
        child.end(status)
        logged += 1
    return logged


#: One :func:`autolog` at a time swaps MLflow's estimator list.
_AUTOLOG_LOCK = threading.Lock()


def autolog(**kwargs: Any) -> bool:
    """``mlflow.sklearn.autolog(**kwargs)``, with EmnistMLP and EmnistCNN included.

    MLflow's scikit-learn autologging patches the classes scikit-learn
    ships (and ``GridSearchCV``, ``RandomizedSearchCV``, ``Pipeline``): a
    bare ``EmnistMLP().fit(X, y)`` under ``mlflow.sklearn.autolog()`` records
    nothing. This call turns the same autologging on with the two
    estimators added to MLflow's list, so their ``fit`` is recorded by
    MLflow's own code exactly as a scikit-learn classifier's: the
    ``get_params()`` values (as MLflow writes them, ``str(value)``:
    ``hidden_layer_sizes`` ``(768, 768)``), the ``estimator_name`` and
    ``estimator_class`` tags, the training scores (``training_score``,
    ``training_accuracy_score``, ``training_log_loss``... : predictions
    over the training images after the fit), the model and the dataset
    where ``log_models`` and ``log_datasets`` say so; a fit inside a
    search or pipeline stays part of that run. ``PixelScaler`` is not
    added: MLflow leaves preprocessing steps to the pipeline that holds
    them.

    It uses MLflow's private ``mlflow.sklearn._gen_estimators_to_patch``,
    swapped for the duration of the call only; when MLflow no longer
    consults it, autologging is still turned on for scikit-learn's classes,
    a warning says that bare fits of the estimators are not recorded, and
    False is returned. ``mlflow.sklearn.autolog(disable=True)`` (or this
    function with ``disable=True``) turns it all off; a later plain
    ``mlflow.sklearn.autolog()`` call applies MLflow's own list again.

    Parameters
    ----------
    **kwargs
        ``mlflow.sklearn.autolog``'s arguments (``log_models``,
        ``log_datasets``, ``disable``, ``silent``, ``max_tuning_runs``...).

    Returns
    -------
    bool
        Whether bare fits of EmnistMLP and EmnistCNN are recorded (False
        also when ``disable=True``).

    Raises
    ------
    ImportError
        MLflow is not installed; the message names the ``tracking`` extra.

    Examples
    --------
    >>> from emnist_estimators.tracking import autolog
    >>> autolog(log_models=False)  # doctest: +SKIP
    True
    >>> with mlflow.start_run():  # doctest: +SKIP
    ...     EmnistMLP(epochs=5).fit(X, y)  # params and training scores recorded
    """
    import_mlflow()
    # the module itself (``mlflow.sklearn`` may be MLflow's lazy loader)
    mlflow_sklearn: Any = importlib.import_module("mlflow.sklearn")
    if kwargs.get("disable"):
        mlflow_sklearn.autolog(**kwargs)
        return False
    from .estimators import EmnistCNN, EmnistMLP  # TensorFlow: only when used

    ours = [EmnistMLP, EmnistCNN]
    listed: Any = getattr(mlflow_sklearn, "_gen_estimators_to_patch", None)
    consulted = False

    def _with_ours(*args: Any, **kw: Any) -> list:
        nonlocal consulted
        consulted = True
        found = list(listed(*args, **kw))
        return found + [cls for cls in ours if cls not in found]

    with _AUTOLOG_LOCK:
        if callable(listed):
            mlflow_sklearn._gen_estimators_to_patch = _with_ours
        try:
            mlflow_sklearn.autolog(**kwargs)
        finally:
            if callable(listed):
                mlflow_sklearn._gen_estimators_to_patch = listed
    if not consulted:
        import mlflow

        log.warning(
            "mlflow.sklearn.autolog is on, but this MLflow (%s) no longer lists "
            "its estimators where emnist_estimators.tracking.autolog adds "
            "EmnistMLP and EmnistCNN: a bare fit of them is not recorded "
            "(GridSearchCV and Pipeline runs are). Record the training with "
            "mlflow.keras.autolog() or callbacks=[mlflow.keras.MlflowCallback()].",
            mlflow.__version__,
        )
    return consulted


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    base = {"emnist_estimators.version": __version__}
    base.update({k: str(v) for k, v in (tags or {}).items() if v is not None})
    return base


def _is_number(value: Any) -> bool:
    value = jsonable(value)
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
