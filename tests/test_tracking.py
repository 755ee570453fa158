"""MLflow tracking: train, tune and report runs read back from real MLflow stores.

Every run goes to a SQLite store in a temporary folder (one per module: its
schema takes seconds to create), its artifacts beside it; one test starts
``mlflow server`` as a process and logs to it over loopback HTTP.
"""

import importlib
import importlib.util
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from emnist_estimators import EmnistCNN, EmnistMLP, PixelScaler
from emnist_estimators.tracking import start_run, tracking_uri
from tests.helpers import run_cli_json

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnxruntime"))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A SQLite tracking store, created once: its URI and a folder for artifacts."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # creates the schema
    return uri, folder


def experiment(store, name: str) -> str:
    """A new experiment of ``store`` whose artifacts stay in its folder."""
    uri, folder = store
    location = (folder / "artifacts" / name).as_uri()
    return MlflowClient(uri).create_experiment(name, artifact_location=location)


def artifact_paths(client, run_id: str, path=None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifact_paths(client, run_id, item.path) if item.is_dir else set()
        found |= set() if item.is_dir else {item.path}
    return found


def children(client, experiment_id: str, parent: str) -> list:
    where = f"tags.mlflow.parentRunId = '{parent}'"
    return client.search_runs([experiment_id], filter_string=where)


DIGITS = ("--dataset", "digits", "--max-samples", "240", "--random-state", "0")


@pytest.fixture(scope="module")
def trained(store, tmp_path_factory):
    """``train --mlflow`` on 240 digits, 2 epochs, with --report: its output."""
    uri, _ = store
    experiment(store, "train")
    out = tmp_path_factory.mktemp("train") / "run"
    result = run_cli_json(
        "train", "--model", "mlp", *DIGITS, "--epochs", "2", "--test-size", "0.25",
        "--param", "hidden_layer_sizes=(16,)", "--report", "--output", out,
        "--mlflow", uri, "--mlflow-experiment", "train", "--quiet",
    )  # fmt: skip
    return result, out


def test_train_logs_params_epochs_scores_and_files(store, trained):
    uri, _ = store
    result, out = trained
    client = MlflowClient(uri)
    run = client.get_run(result["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "train mlp on digits"
    params = run.data.params
    # the estimator's parameters by the package's JSON rule, and the data's
    assert params["hidden_layer_sizes"] == "[16]"
    assert params["epochs"] == "2"
    assert params["precision"] == "auto"
    assert params["data.dataset"] == "digits"
    assert params["data.test_size"] == "0.25"
    assert "callbacks" not in params
    # one point per epoch, at steps 0 and 1, as the run's history.json has it
    history = json.loads((out / "history.json").read_text())
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in losses] == [0, 1]
    assert [m.value for m in losses] == pytest.approx(history["loss"])
    assert len(client.get_metric_history(run.info.run_id, "val_accuracy")) == 2
    # the final scores
    assert run.data.metrics["test_accuracy"] == pytest.approx(result["test_accuracy"])
    assert run.data.metrics["n_train"] == result["n_train"]
    assert run.data.metrics["epochs_run"] == 2
    tags = run.data.tags
    assert (tags["command"], tags["dataset"], tags["estimator"]) == (
        "train",
        "digits",
        "EmnistMLP",
    )
    assert tags["precision"] == "float32"  # EMNIST_ESTIMATORS_CPU_BF16=0
    paths = artifact_paths(client, run.info.run_id)
    assert {"model.keras", "metrics.json", "report/index.html"} <= paths
    if HAS_ONNX:
        assert {"onnx/model.onnx", "onnx/model.onnx.json"} <= paths


def test_logged_model_is_the_saved_model(store, trained, tmp_path):
    uri, _ = store
    result, out = trained
    got = MlflowClient(uri).download_artifacts(
        result["mlflow_run_id"], "model.keras", str(tmp_path)
    )
    assert open(got, "rb").read() == (out / "model.keras").read_bytes()


@pytest.mark.skipif(not HAS_ONNX, reason="the export extra is not installed")
def test_logged_onnx_predicts_like_the_model(store, trained, tmp_path):
    from emnist_estimators import load_model
    from emnist_estimators.export import load_exported

    uri, _ = store
    result, out = trained
    folder = MlflowClient(uri).download_artifacts(
        result["mlflow_run_id"], "onnx", str(tmp_path)
    )
    X = np.random.default_rng(0).integers(0, 256, (20, 784), dtype=np.uint8)
    clf = load_model(out / "model.keras")
    exported = load_exported(f"{folder}/model.onnx")
    np.testing.assert_array_equal(exported.predict(X), clf.predict(X))


def test_report_logs_to_the_environment_variable(store, trained, tmp_path, monkeypatch):
    uri, _ = store
    _, out = trained
    experiment(store, "report")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # and no --mlflow
    result = run_cli_json(
        "report", out / "model.keras", "--subset", "held-out",
        "--output", tmp_path / "rep", "--mlflow-experiment", "report",
    )  # fmt: skip
    client = MlflowClient(uri)
    run = client.get_run(result["mlflow_run_id"])
    assert run.data.metrics["accuracy"] == pytest.approx(result["accuracy"])
    assert run.data.metrics["n_samples"] == result["n_samples"]
    assert run.data.params["hidden_layer_sizes"] == "[16]"
    assert run.data.tags["subset"] == "held-out"
    paths = artifact_paths(client, run.info.run_id)
    assert {"report/index.html", "report/confusion_matrix.png"} <= paths


def test_tune_logs_one_nested_run_per_trial(store, tmp_path):
    import optuna

    uri, _ = store
    exp = experiment(store, "tune")
    out = tmp_path / "tune"
    result = run_cli_json(
        "tune", "--model", "mlp", *DIGITS, "--epochs", "2", "--n-trials", "2",
        "--param", "hidden_layer_sizes=(8,)", "--no-plots", "--output", out,
        "--mlflow", uri, "--mlflow-experiment", "tune", "--quiet",
    )  # fmt: skip
    client = MlflowClient(uri)
    parent = client.get_run(result["mlflow_run_id"])
    assert parent.data.params["search.n_trials"] == "2"
    assert parent.data.metrics["best_value"] == pytest.approx(result["best_value"])
    assert parent.data.metrics["n_complete"] == result["states"]["COMPLETE"]
    assert f"{result['study_name']}-summary.json" in artifact_paths(
        client, parent.info.run_id
    )
    study = optuna.load_study(
        study_name=result["study_name"], storage=f"sqlite:///{out / 'study.db'}"
    )
    runs = {
        r.data.tags["optuna.trial"]: r
        for r in children(client, exp, parent.info.run_id)
    }
    assert sorted(runs) == [str(t.number) for t in study.trials]
    for trial in study.trials:
        run = runs[str(trial.number)]
        assert run.info.run_name == f"trial {trial.number}"
        assert run.data.tags["optuna.state"] == trial.state.name
        assert run.data.params["learning_rate"] == json.dumps(
            trial.params["learning_rate"]
        )
        if trial.state.name == "COMPLETE":
            assert run.data.metrics["score"] == pytest.approx(trial.value)
        # what the trial reported after each epoch, at its steps
        history = client.get_metric_history(run.info.run_id, "intermediate_value")
        assert [(m.step, m.value) for m in history] == [
            (step, pytest.approx(value))
            for step, value in sorted(trial.intermediate_values.items())
        ]


def test_failed_command_marks_its_run_failed(store, tmp_path):
    uri, _ = store
    exp = experiment(store, "failed")
    code_args = (
        "train", "--model", "mlp", *DIGITS, "--epochs", "1",
        "--param", "hidden_layer_sizes=(-3,)", "--output", tmp_path / "run",
        "--mlflow", uri, "--mlflow-experiment", "failed", "--quiet",
    )  # fmt: skip
    from tests.helpers import run_cli

    code, _ = run_cli(*code_args)
    assert code != 0
    (run,) = MlflowClient(uri).search_runs([exp])
    assert run.info.status == "FAILED"
    assert not (tmp_path / "run").exists()


def test_unreachable_server_fails_in_seconds_before_training(tmp_path, capsys):
    from tests.helpers import run_cli

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    code, out = run_cli("train", *DIGITS, "--output", tmp_path / "run", "--mlflow", url)
    assert code != 0
    # MLflow's own retries would take minutes; one retry, then the error
    assert time.monotonic() - start < 60
    assert f"Cannot open the MLflow tracking store {url}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # restored


def test_missing_mlflow_is_said_before_any_work(tmp_path, monkeypatch, capsys):
    from tests.helpers import run_cli

    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow fails
    code, _ = run_cli(
        "train", *DIGITS, "--output", tmp_path / "run", "--mlflow", "sqlite:///x.db"
    )
    assert code != 0
    assert "emnist-estimators[tracking]" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "x.db").exists()


def test_variable_without_mlflow_warns_and_tracks_nothing(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert tracking_uri(None) is None
    assert "MLflow is not installed" in caplog.text
    with pytest.raises(ImportError, match=r"emnist-estimators\[tracking\]"):
        tracking_uri("http://127.0.0.1:9")


def test_no_uri_no_variable_means_no_tracking():
    assert tracking_uri(None) is None
    assert tracking_uri("") is None


def test_start_run_logs_to_its_uri_only(store):
    uri, _ = store
    experiment(store, "api")
    before = mlflow.get_tracking_uri()
    with start_run(uri, experiment="api", run_name="api") as run:
        run.log_params({"sizes": (3, 4), "name": "relu", "n": np.int64(2)})
        run.log_metrics({"ok": 1.5, "nan": float("nan"), "flag": True, "s": "x"})
    assert mlflow.get_tracking_uri() == before  # MLflow's global state untouched
    assert mlflow.active_run() is None
    got = MlflowClient(uri).get_run(run.run_id)
    assert got.data.params == {"sizes": "[3, 4]", "name": "relu", "n": "2"}
    assert got.data.metrics == {"ok": 1.5}  # only finite numbers are metrics
    assert got.data.tags["emnist_estimators.version"]


# --- MLflow's own integrations, from Python -------------------------------------
def tiny_data():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (90, 784), dtype=np.uint8)
    return X, np.arange(90) % 3


def test_mlflow_keras_callback_logs_each_epoch(store, monkeypatch):
    uri, _ = store
    exp = experiment(store, "keras-callback")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    X, y = tiny_data()
    clf = EmnistMLP(
        (8,), epochs=2, precision="float32", random_state=0,
        callbacks=[mlflow.keras.MlflowCallback()],
    )  # fmt: skip
    with mlflow.start_run(experiment_id=exp) as run:
        clf.fit(X, y)
    history = MlflowClient(uri).get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1]
    assert [m.value for m in history] == pytest.approx(clf.history_["loss"])
    # the estimator holding the callback still clones and pickles
    from sklearn.base import clone

    assert isinstance(clone(clf).callbacks[0], mlflow.keras.MlflowCallback)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))


@pytest.fixture
def sklearn_autolog():
    mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True)
    try:
        yield
    finally:
        mlflow.sklearn.autolog(disable=True)


def test_sklearn_autolog_records_a_grid_search(store, monkeypatch, sklearn_autolog):
    from sklearn.model_selection import GridSearchCV

    uri, _ = store
    exp = experiment(store, "autolog-grid")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    X, y = tiny_data()
    est = EmnistMLP((8,), epochs=1, precision="float32", random_state=0)
    grid = {"learning_rate": [1e-3, 1e-2]}
    with mlflow.start_run(experiment_id=exp) as run:
        search = GridSearchCV(est, grid, cv=2).fit(X, y)
    client = MlflowClient(uri)
    params = client.get_run(run.info.run_id).data.params
    assert params["best_learning_rate"] == str(search.best_params_["learning_rate"])
    kids = children(client, exp, run.info.run_id)
    assert sorted(k.data.params["learning_rate"] for k in kids) == ["0.001", "0.01"]
    # each candidate's own parameters, as get_params gives them
    assert {k.data.params["hidden_layer_sizes"] for k in kids} == {"(8,)"}
    assert {k.data.params["epochs"] for k in kids} == {"1"}


def test_sklearn_autolog_records_a_pipeline_fit(store, monkeypatch, sklearn_autolog):
    from sklearn.pipeline import make_pipeline

    uri, _ = store
    exp = experiment(store, "autolog-pipeline")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    X, y = tiny_data()
    model = make_pipeline(
        PixelScaler(), EmnistMLP((8,), epochs=1, precision="float32", random_state=0)
    )
    with mlflow.start_run(experiment_id=exp) as run:
        model.fit(X, y)
    got = MlflowClient(uri).get_run(run.info.run_id).data
    assert got.params["emnistmlp__hidden_layer_sizes"] == "(8,)"
    assert got.params["emnistmlp__learning_rate"] == "0.001"
    assert got.metrics["training_accuracy_score"] == pytest.approx(model.score(X, y))


def test_sklearn_autolog_leaves_a_bare_fit_alone(store, monkeypatch, sklearn_autolog):
    # MLflow's own list has scikit-learn's classes only: no run, no error
    uri, _ = store
    exp = experiment(store, "autolog-bare-plain")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", exp)
    X, y = tiny_data()
    clf = EmnistMLP((8,), epochs=1, precision="float32", random_state=0).fit(X, y)
    assert clf.predict(X).shape == (90,)
    assert mlflow.active_run() is None
    assert MlflowClient(uri).search_runs([exp]) == []


@pytest.fixture
def our_autolog():
    from emnist_estimators.tracking import autolog

    assert autolog(log_models=False, log_datasets=False, silent=True) is True
    try:
        yield
    finally:
        autolog(disable=True)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda: EmnistMLP((8,), epochs=1, precision="float32", random_state=0),
            id="mlp",
        ),
        pytest.param(  # the same list entry, a second network: slow stage
            lambda: EmnistCNN(
                filters=(4,),
                convs_per_block=1,
                dense_units=(8,),
                epochs=1,
                precision="float32",
                random_state=0,
            ),
            id="cnn",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_autolog_records_a_bare_fit(store, monkeypatch, our_autolog, make):
    # tracking.autolog adds the estimators to mlflow.sklearn's list: a bare
    # fit gets its own run (opened and closed by MLflow), as a scikit-learn
    # classifier's does
    uri, _ = store
    exp = experiment(store, f"autolog-bare-{make().__class__.__name__}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", exp)
    X, y = tiny_data()
    clf = make().fit(X, y)
    assert mlflow.active_run() is None
    (run,) = MlflowClient(uri).search_runs([exp])
    assert run.info.status == "FINISHED"
    assert run.data.params == {k: str(v) for k, v in clf.get_params().items()}
    assert run.data.metrics["training_score"] == pytest.approx(clf.score(X, y))
    assert "training_log_loss" in run.data.metrics
    assert run.data.tags["estimator_name"] == type(clf).__name__


def test_autolog_says_when_mlflow_no_longer_lists_estimators(monkeypatch, caplog):
    from emnist_estimators.tracking import autolog

    # a future MLflow whose autologging no longer consults the list (the
    # real module, not MLflow's lazy loader, holds the function it calls)
    mlflow_sklearn = importlib.import_module("mlflow.sklearn")
    monkeypatch.setattr(mlflow_sklearn, "_autolog", lambda **kwargs: None)
    try:
        assert autolog(log_models=False, log_datasets=False, silent=True) is False
    finally:
        mlflow_sklearn.autolog(disable=True)
    assert "a bare fit of them is not recorded" in caplog.text
    assert "mlflow.keras.autolog()" in caplog.text


def test_keras_autolog_records_a_bare_fit(store, monkeypatch):
    # mlflow.sklearn.autolog patches scikit-learn's own classes only; Keras'
    # autologging sees the training under a bare fit (the tracking page)
    uri, _ = store
    exp = experiment(store, "keras-autolog")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    X, y = tiny_data()
    clf = EmnistMLP((8,), epochs=2, precision="float32", random_state=0)
    mlflow.keras.autolog(log_models=False, log_datasets=False, silent=True)
    try:
        with mlflow.start_run(experiment_id=exp) as run:
            clf.fit(X, y)
    finally:
        mlflow.keras.autolog(disable=True)
    client = MlflowClient(uri)
    params = client.get_run(run.info.run_id).data.params
    assert params["epochs"] == "2"
    assert any(name.startswith("optimizer_") for name in params)
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.value for m in history] == pytest.approx(clf.history_["loss"])


# --- a tracking server ---------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(server, port: int, seconds: float) -> None:
    """Until the server accepts connections; fail with its log if it exits."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"mlflow server did not start: {server.stderr.read()}")
            time.sleep(0.5)


@pytest.mark.slow  # starts an mlflow server process, 11 s
def test_train_logs_to_an_mlflow_server(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination", str(tmp_path / "served-artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,  # its workers too are stopped below
        # no background-job consumers (seven processes): runs need none
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(server, port, 90)
        result = run_cli_json(
            "train", "--model", "mlp", *DIGITS, "--epochs", "1",
            "--param", "hidden_layer_sizes=(8,)", "--output", tmp_path / "run",
            "--mlflow", url, "--quiet",
        )  # fmt: skip
        client = MlflowClient(url)
        run = client.get_run(result["mlflow_run_id"])
        assert run.data.params["hidden_layer_sizes"] == "[8]"
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 1
        assert "model.keras" in artifact_paths(client, run.info.run_id)
        # the artifacts went through the server to its destination folder
        served = tmp_path / "served-artifacts"
        (logged,) = served.rglob("model.keras")
        assert logged.read_bytes() == (tmp_path / "run" / "model.keras").read_bytes()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
