"""Training one network on several devices or workers (``distribution``).

TensorFlow's devices and ``TF_CONFIG`` are fixed when TensorFlow starts, so
the trainings run in child processes (tests/distribute_child.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import EMNIST_DIR, HTTP_400, REPO, loopback_server, require_dir
from sklearn.base import clone

from emnist_estimators import EmnistCNN, EmnistMLP
from emnist_estimators import distribute as dist
from emnist_estimators.exceptions import ClusterConfigError, ClusterError

_STRING_INDEX = {"type": "worker", "index": "0"}
CHILD = str(Path(__file__).with_name("distribute_child.py"))


def _env() -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    env.pop("TF_CONFIG", None)
    return env


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _child_result(out: Path, mode: str, *args, timeout: int) -> dict:
    """Run distribute_child.py in ``mode``; the JSON it wrote to ``out``."""
    proc = subprocess.run(
        [sys.executable, CHILD, mode, *map(str, args), str(out)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow  # two real trainings, 20 s: the slow stage (CI runs it)
@pytest.mark.timeout(300)
def test_mirrored_on_two_cpu_devices_matches_single_device_accuracy(tmp_path, capsys):
    """Two replicas (logical CPU devices) train as well as one, on real EMNIST;
    the fitted estimator pickles, saves and clones like any other."""
    emnist = require_dir(EMNIST_DIR)
    result = _child_result(tmp_path / "mirrored.json", "mirrored", emnist, timeout=280)
    with capsys.disabled():
        print(
            f"\n[mirrored, 2 logical CPUs] test accuracy {result['mirrored']:.4f} "
            f"vs one device {result['single']:.4f} (30,000 bymerge images, 5 epochs)"
        )
    assert result["devices"] == 2
    assert result["replicas"] == [2]  # what the fit ran under
    # the same global batch: the same number of steps
    assert result["steps"][0] == result["steps"][1] == 5 * -(-27_000 // 512)
    # 10,000 test images: one standard error of an accuracy near 0.75 is 0.45
    # points. Same global batch (1 x 512 vs 2 x 256); the replicas' sums of
    # gradients round differently, so the fits drift apart within noise.
    assert result["single"] > 0.7
    assert abs(result["mirrored"] - result["single"]) < 0.015, result
    assert result["pickled_equal"] and result["loaded_equal"]
    assert result["params"] == "mirrored"
    assert result["epochs"] == 5


# two worker processes, 20 s: in the slow stage (CI runs both stages)
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_loopback_workers_train_one_model_to_identical_weights(tmp_path):
    """MultiWorkerMirroredStrategy through TF_CONFIG: both workers end with
    the same trained weights and history (an MLP with sample weights and
    early stopping - the same predictions too - then a CNN with batch norm,
    whose moving statistics stay each worker's own, in the same processes)."""
    ports = ",".join(str(p) for p in _free_ports(2))
    outs = [tmp_path / f"worker{i}.npz" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, CHILD, "multi_worker", str(i), ports, str(outs[i])],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    try:
        logs = [p.communicate(timeout=280)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()  # TensorFlow ignores SIGTERM while it waits for peers
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-3000:]
    first, second = (np.load(o) for o in outs)
    assert sorted(first.files) == sorted(second.files)
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    # history rows: accuracy, loss, val_accuracy, val_loss; it learned the rule
    history = first["mlp_history"]
    assert history.shape == (4, 4) and history[2, -1] > 0.8, history
    # and trained as one device does with the global batch (2 x 64 rows)
    assert first["mlp_vs_one_device"].max() < 1e-3, first["mlp_vs_one_device"]


@pytest.mark.timeout(200)
def test_one_worker_cluster_trains_exactly_as_one_device(tmp_path):
    """The multi-worker train step against Keras' fit: the same history
    (loss with sample and class weights and label smoothing, Keras'
    unweighted accuracy, the hold-out numbers) and the same weights."""
    (port,) = _free_ports(1)
    result = _child_result(tmp_path / "one.json", "one_worker", port, timeout=180)
    history, reference = result["history"], result["one_device_history"]
    assert sorted(history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    for key in reference:
        np.testing.assert_allclose(history[key], reference[key], rtol=1e-4, err_msg=key)
    assert result["max_weight_diff"] < 1e-4


@pytest.mark.parametrize(
    "text, what",
    [
        ("", "not set"),
        ("{not json", "not JSON"),
        ('["worker"]', "not a JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', "no 'cluster'"),
        ('{"cluster": {"worker": "a:1"}, "task": {}}', "not a list"),
        ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker"}}', "host:port"),
        ('{"cluster": {"worker": ["a:99999"]}, "task": {}}', "valid port"),
        ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps"}}', "parameter"),
        ('{"cluster": {"worker": ["a:1"]}}', "no 'task'"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief"}}', "not a job"),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
            "out of range",
        ),
        (
            json.dumps({"cluster": {"worker": ["a:1"]}, "task": _STRING_INDEX}),
            "not an integer",
        ),
    ],
)
def test_malformed_tf_config_is_refused_with_the_reason(monkeypatch, text, what):
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(ClusterConfigError, match=what) as info:
        EmnistMLP(distribution="multi_worker", epochs=1, random_state=0).fit(
            np.zeros((20, 784), np.uint8), np.arange(20) % 2
        )
    assert "TF_CONFIG" in str(info.value) and "host1:2222" in str(info.value)


def test_duplicate_or_aliased_addresses_are_refused():
    """Two entries for one address would leave TensorFlow waiting (an hour,
    ignoring SIGTERM) for a worker that does not exist."""
    (port,) = _free_ports(1)
    twice = {"worker": [f"127.0.0.1:{port}", f"127.0.0.1:{port}"]}
    with pytest.raises(ClusterConfigError, match="more than once"):
        dist.read_tf_config(json.dumps({"cluster": twice, "task": {"type": "worker"}}))
    alias = {"worker": [f"127.0.0.1:{port}", f"localhost:{port}"]}
    config = dist.read_tf_config(
        json.dumps({"cluster": alias, "task": {"type": "worker", "index": 0}})
    )
    with pytest.raises(ClusterConfigError, match="this worker's own address"):
        dist._wait_for_peers(config, timeout=30)


def test_failed_distributed_fit_leaves_the_fitted_estimator_as_it_was(monkeypatch):
    X = np.zeros((30, 784), np.uint8)
    est = EmnistMLP(hidden_layer_sizes=(4,), epochs=1, random_state=0)
    est.fit(X, np.arange(30) % 3)
    monkeypatch.setenv("TF_CONFIG", "{not json")
    est.set_params(distribution="multi_worker")
    with pytest.raises(ClusterConfigError):
        est.fit(X, np.array(list("abcd") * 7 + ["a", "b"]))
    assert est.classes_.tolist() == [0, 1, 2]
    assert est.predict(X[:2]).tolist() in ([0, 0], [1, 1], [2, 2])


def test_multi_worker_needs_an_int_random_state():
    with pytest.raises(ValueError, match="needs an int random_state"):
        EmnistMLP(distribution="multi_worker").fit(
            np.zeros((10, 784), np.uint8), np.arange(10) % 2
        )


@pytest.mark.timeout(60)
def test_missing_worker_is_an_error_not_a_hang(monkeypatch):
    """TensorFlow would wait for a missing worker for an hour (ignoring
    SIGTERM); the workers meet first and give up after the join timeout."""
    own, absent = _free_ports(2)
    config = dist.read_tf_config(
        json.dumps(
            {
                "cluster": {"worker": [f"127.0.0.1:{own}", f"127.0.0.1:{absent}"]},
                "task": {"type": "worker", "index": 0},
            }
        )
    )
    with pytest.raises(ClusterError, match=f"no answer from.*{absent}"):
        dist._wait_for_peers(config, timeout=2)
    # the address was given back: a second try can listen on it again
    with pytest.raises(ClusterError, match="did not come up within 1 s"):
        dist._wait_for_peers(config, timeout=1)


def _two_workers_with(peer: str) -> dict:
    (own,) = _free_ports(1)
    return dist.read_tf_config(
        json.dumps(
            {
                "cluster": {"worker": [f"127.0.0.1:{own}", peer]},
                "task": {"type": "worker", "index": 0},
            }
        )
    )


@pytest.mark.timeout(30)
def test_a_peer_address_held_by_an_http_server_fails_at_once(monkeypatch):
    """The TCP connect succeeds, and TensorFlow's gRPC join then waited for
    ever (still running at 300 s); the gRPC greeting tells them apart."""
    monkeypatch.setattr(dist, "JOIN_TIMEOUT_S", 20)
    X, y = np.zeros((20, 784), np.uint8), np.arange(20) % 2
    with loopback_server(HTTP_400) as peer:
        config = _two_workers_with(peer)
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
        start = time.monotonic()
        with pytest.raises(ClusterError, match="HTTP/1.1 400 Bad Request") as info:
            EmnistMLP(distribution="multi_worker", epochs=1, random_state=0).fit(X, y)
        assert time.monotonic() - start < 20
    message = str(info.value)
    assert "worker[1]" in message and peer in message and "\n" not in message


@pytest.mark.timeout(30)
def test_a_silent_peer_fails_after_the_join_timeout(monkeypatch):
    monkeypatch.setattr(dist, "PEER_ANSWER_TIMEOUT_S", 0.5)
    with loopback_server(None) as peer:
        start = time.monotonic()
        with pytest.raises(ClusterError, match="do not answer as TensorFlow workers"):
            dist._wait_for_peers(_two_workers_with(peer), timeout=2)
        assert time.monotonic() - start < 2 + 5


def test_workers_meeting_greet_each_other_as_grpc_servers_do():
    """A worker still meeting the others answers the greeting a TensorFlow
    server sends (an HTTP/2 SETTINGS frame), so that it counts as up."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    configs = [
        dist.read_tf_config(
            json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        )
        for i in range(2)
    ]
    errors = []

    def meet(config):
        try:
            dist._wait_for_peers(config, timeout=20)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=meet, args=(c,)) for c in configs]
    for thread in threads:
        thread.start()
        time.sleep(0.5)
    for thread in threads:
        thread.join(30)
    assert not errors and not any(t.is_alive() for t in threads)


@pytest.mark.parametrize(
    "text, what",
    [
        ("[" * 50_000 + "]" * 50_000, "nested 50000 levels deep"),
        ('{"a": ' * 9 + "1" + "}" * 9, "nested 9 levels deep"),
        (" " * (300 * 1024) + "{}", "characters long"),
    ],
)
def test_a_huge_or_deeply_nested_tf_config_is_refused(monkeypatch, text, what):
    """json.loads raised RecursionError on 50,000 levels."""
    with pytest.raises(ClusterConfigError, match=what):
        dist.read_tf_config(text)
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(ClusterConfigError, match=what):
        EmnistMLP(distribution="multi_worker", epochs=1, random_state=0).fit(
            np.zeros((20, 784), np.uint8), np.arange(20) % 2
        )


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = json.dumps(
        {"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "x": "[{" * 99}}
    )
    assert dist.read_tf_config(text)["task"] == {"type": "worker", "index": 0}


def test_a_busy_own_address_is_named(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = dist.read_tf_config(
            json.dumps(
                {
                    "cluster": {"worker": [f"127.0.0.1:{port}"]},
                    "task": {"type": "worker", "index": 0},
                }
            )
        )
        with pytest.raises(ClusterError, match=f"127.0.0.1:{port}"):
            dist._wait_for_peers(config, timeout=1)


@pytest.mark.parametrize("cls", [EmnistMLP, EmnistCNN])
def test_unsupported_combinations_are_refused_before_training(tmp_path, cls):
    X = np.zeros((30, 784), np.uint8)
    y = np.arange(30) % 3
    est = cls(epochs=1, distribution="mirrored", checkpoint_dir=tmp_path / "ckpt")
    with pytest.raises(ValueError, match="does not support checkpoint_dir"):
        est.fit(X, y)
    assert not (tmp_path / "ckpt").exists()
    with pytest.raises(ValueError, match="partial_fit trains on one device"):
        cls(distribution="mirrored").partial_fit(X, y)
    warm = cls(epochs=1, warm_start=True, random_state=0)
    if cls is EmnistCNN:
        warm.set_params(filters=(2, 2), dense_units=(4,))
    else:
        warm.set_params(hidden_layer_sizes=(4,))
    warm.fit(X, y).set_params(distribution="mirrored")
    with pytest.raises(ValueError, match="warm-started fit"):
        warm.fit(X, y)


def test_distribution_is_a_plain_parameter():
    est = EmnistMLP(distribution="mirrored")
    assert clone(est).get_params()["distribution"] == "mirrored"
    with pytest.raises(ValueError, match="distribution"):
        EmnistMLP(distribution="parameter_server").fit(
            np.zeros((10, 784), np.uint8), np.arange(10) % 2
        )
    assert dist.global_batch_size(64, None) == 64
