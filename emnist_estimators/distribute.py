"""Training one network on several devices or machines with ``tf.distribute``.

The estimators' ``distribution`` parameter chooses the strategy:

How it works and why: the design notes in the docs (``docs/design.rst``).

Examples
--------
>>> from emnist_estimators.distribute import read_tf_config
>>> config = read_tf_config(
...     '{"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]},'
...     ' "task": {"type": "worker", "index": 1}}'
... )
>>> config["task"]
{'type': 'worker', 'index': 1}
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import socket
import threading
import time
from typing import Any

import numpy as np

from .exceptions import ClusterConfigError, ClusterError

__all__ = [
    "DISTRIBUTIONS",
    "read_tf_config",
    "make_strategy",
    "global_batch_size",
    "fit_multi_worker",
]

#: The values of the estimators' ``distribution`` parameter (besides None).
DISTRIBUTIONS = ("mirrored", "multi_worker")

#: Seconds a multi-worker process waits for the others to join (and for a
#: peer's answer during training) before it gives up with ClusterError.
JOIN_TIMEOUT_S = 120

#: Seconds one probe of a peer waits for its greeting (then it is tried again).
PEER_ANSWER_TIMEOUT_S = 5.0

#: The longest ``TF_CONFIG`` read (a cluster of thousands of workers fits).
MAX_TF_CONFIG_CHARS = 256 * 1024

#: The deepest nesting of a ``TF_CONFIG``'s JSON (a valid one nests 3 deep).
MAX_TF_CONFIG_DEPTH = 8

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')

# HTTP/2, which gRPC speaks: the client's connection preface and an empty
# SETTINGS frame. A TensorFlow worker's server (and the meet-up listener of
# _wait_for_peers) opens with a SETTINGS frame; an HTTP/1 server answers the
# preface with an error; a server of another kind says nothing.
_H2_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _H2_SETTINGS

_EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
    '"task": {"type": "worker", "index": 0}}\''
)

# TensorFlow allows one multi-worker strategy per process, created before
# anything else runs collectives: it is made once and reused.
_multi_worker: dict[str, Any] = {}
_mirrored = {}
_lock = threading.Lock()


def _config_error(what: str) -> ClusterConfigError:
    return ClusterConfigError(
        f"TF_CONFIG is malformed: {what}. It must be JSON naming every worker "
        f"and this process's task, the same cluster on every worker, e.g. {_EXAMPLE}"
    )


def _check_address(job: str, address) -> None:
    host, sep, port = str(address).rpartition(":") if address else ("", "", "")
    if not (isinstance(address, str) and host and sep and port.isdigit()):
        raise _config_error(f"{job} address {address!r} is not 'host:port'")
    if not 0 < int(port) < 65536:
        raise _config_error(f"{job} address {address!r} has no valid port")


def _nesting(text: str) -> int:
    """How deep the JSON objects and arrays of ``text`` nest (strings skipped)."""
    bare = _JSON_STRING.sub('""', text)
    depth = deepest = 0
    for char in bare:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def read_tf_config(text: str | None = None) -> dict:
    """Parse and check a ``TF_CONFIG`` cluster description.

    Parameters
    ----------
    text : str, default=None
        The JSON; None reads the ``TF_CONFIG`` environment variable.

    Returns
    -------
    dict
        ``{"cluster": {job: [address, ...]}, "task": {"type", "index"}}``.

    Raises
    ------
    ClusterConfigError
        When it is missing, not JSON, longer than
        :data:`MAX_TF_CONFIG_CHARS` or nested deeper than
        :data:`MAX_TF_CONFIG_DEPTH`, or names no workers, an address that is
        not ``host:port``, or a task that is not in the cluster.

    Examples
    --------
    >>> read_tf_config('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps"}}')
    Traceback (most recent call last):
    ...
    emnist_estimators.exceptions.ClusterConfigError: TF_CONFIG is malformed: ...
    """
    if text is None:
        text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        raise _config_error("the variable is not set or empty")
    if len(text) > MAX_TF_CONFIG_CHARS:
        raise _config_error(
            f"it is {len(text)} characters long, more than the "
            f"{MAX_TF_CONFIG_CHARS} a cluster description needs"
        )
    depth = _nesting(text)
    if depth > MAX_TF_CONFIG_DEPTH:
        raise _config_error(
            f"its JSON is nested {depth} levels deep; a cluster description "
            f"needs at most {MAX_TF_CONFIG_DEPTH}"
        )
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _config_error(f"not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise _config_error("not a JSON object")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise _config_error("no 'cluster' object")
    for job, addresses in cluster.items():
        if job not in ("chief", "worker"):
            raise _config_error(
                f"job {job!r} is not 'chief' or 'worker' (parameter servers "
                "are not used by MultiWorkerMirroredStrategy)"
            )
        if not isinstance(addresses, list) or not addresses:
            raise _config_error(f"cluster[{job!r}] is not a list of addresses")
        for address in addresses:
            _check_address(job, address)
    listed = [a for addresses in cluster.values() for a in addresses]
    twice = sorted({a for a in listed if listed.count(a) > 1})
    if twice:
        raise _config_error(f"address(es) {twice} are listed more than once")
    if not isinstance(task, dict):
        raise _config_error("no 'task' object")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in cluster:
        raise _config_error(f"task type {kind!r} is not a job of the cluster")
    if isinstance(index, bool) or not isinstance(index, int):
        raise _config_error(f"task index {index!r} is not an integer")
    if not 0 <= index < len(cluster[kind]):
        raise _config_error(
            f"task index {index} is out of range: cluster[{kind!r}] has "
            f"{len(cluster[kind])} address(es)"
        )
    return {"cluster": cluster, "task": {"type": kind, "index": index}}


def _local_devices() -> list[str]:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def _endpoints(address: str) -> set:
    """The (ip, port) pairs ``host:port`` resolves to (the name if it cannot)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except OSError:
        return {(host, int(port))}
    return {(info[4][0], int(port)) for info in infos}


def _wait_for_peers(config: dict, timeout: float | None = None) -> None:
    """Return once every other worker is up; ClusterError after ``timeout``.

    TensorFlow's strategy waits for missing workers without a limit (and
    ignores SIGTERM while it waits), and for ever on a peer address where a
    server of another kind answers, so the workers meet here first: each
    listens on its own address, greeting whoever connects as a gRPC server
    does (an HTTP/2 SETTINGS frame), while it greets the others' addresses.
    A peer that greets back is either here too or already inside
    TensorFlow's server; one that answers otherwise (HTTP) is an error at
    once, and one that stays silent is an error at ``timeout`` (None:
    :data:`JOIN_TIMEOUT_S`).
    """
    timeout = JOIN_TIMEOUT_S if timeout is None else timeout
    task = config["task"]
    addresses = [
        (job, i, address)
        for job in ("chief", "worker")
        for i, address in enumerate(config["cluster"].get(job, []))
    ]
    me = (task["type"], task["index"])
    own = next(a for job, i, a in addresses if (job, i) == me)
    mine = _endpoints(own)
    for job, i, address in addresses:
        if (job, i) != me and _endpoints(address) & mine:
            # it would answer through this worker's own listener below, and
            # TensorFlow would then wait for a worker that does not exist
            raise ClusterConfigError(
                f"TF_CONFIG's {job}[{i}] address {address!r} is this worker's own "
                f"address {own!r}: give every worker an address (host:port) of "
                "its own."
            )
    peers = {a: f"{job}[{i}]" for job, i, a in addresses if (job, i) != me}
    host, _, port = own.rpartition(":")
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host.strip("[]"), int(port)))
        listener.listen(16)
    except OSError as exc:
        listener.close()
        raise ClusterError(
            f"Cannot listen on this worker's TF_CONFIG address {own!r}: {exc}. "
            "Each worker's task index must name an address of its own machine "
            "with a free port."
        ) from exc
    done = threading.Event()
    greeter = threading.Thread(
        target=_greet, args=(listener, done), name="tf-config-meet-up", daemon=True
    )
    greeter.start()
    deadline = time.monotonic() + timeout
    try:
        waiting = list(peers)
        silent: set[str] = set()
        while waiting:
            address = waiting[0]
            answer = _greeting(address, deadline)
            if answer is not None and answer[3:4] == _H2_SETTINGS[3:4]:
                waiting.pop(0)
                continue
            if answer:  # a server of another kind holds the address
                said = answer.split(b"\r\n")[0][:60]
                raise ClusterError(
                    f"TF_CONFIG's {peers[address]} address {address!r} is held by "
                    f"a server that is not a TensorFlow worker (it answered "
                    f"{said!r}). Give each worker a free port of its machine."
                )
            if answer == b"":
                silent.add(address)
            if time.monotonic() > deadline:
                quiet = [a for a in waiting if a in silent]
                why = (
                    f"{quiet} accept connections but do not answer as "
                    "TensorFlow workers do (another server holds the port?)"
                    if quiet
                    else f"no answer from {waiting}"
                )
                raise ClusterError(
                    f"The multi-worker cluster did not come up within {timeout:g} "
                    f"s: {why}. Start every worker listed in TF_CONFIG, each "
                    "with its own task index."
                )
            waiting.append(waiting.pop(0))  # try the others meanwhile
            time.sleep(0.2)
    finally:
        done.set()
        greeter.join(5)
        listener.close()


def _greet(listener: socket.socket, done: threading.Event) -> None:
    """Greet whoever connects to ``listener`` as a gRPC server would."""
    listener.settimeout(0.2)
    while not done.is_set():
        try:
            conn, _ = listener.accept()
        except OSError:  # the timeout, or the listener closed
            continue
        with conn, contextlib.suppress(OSError):
            conn.settimeout(1.0)
            conn.sendall(_H2_SETTINGS)


def _greeting(address: str, deadline: float) -> bytes | None:
    """The first bytes a peer sends to a gRPC client's greeting.

    None: nothing accepts the connection; ``b""``: it accepted but sent
    nothing before :data:`PEER_ANSWER_TIMEOUT_S` (or ``deadline``) or closed.
    """
    host, _, port = address.rpartition(":")
    try:
        sock = socket.create_connection((host.strip("[]"), int(port)), 1.0)
    except OSError:
        return None
    answer = b""
    with sock:
        try:
            sock.sendall(_H2_PREFACE)
            wait = min(PEER_ANSWER_TIMEOUT_S, deadline - time.monotonic())
            while len(answer) < 9 and wait > 0:
                sock.settimeout(wait)
                chunk = sock.recv(64 - len(answer))
                if not chunk:
                    break
                answer += chunk
                wait = min(PEER_ANSWER_TIMEOUT_S, deadline - time.monotonic())
        except OSError:
            pass
    if len(answer) < 9 and answer[:1] == b"\x00":
        return b""  # a frame cut short: ask again
    return answer


def _multi_worker_strategy():
    text = os.environ.get("TF_CONFIG", "")
    config = read_tf_config(text)
    with _lock:
        if _multi_worker:
            ((made_for, strategy),) = _multi_worker.items()
            if made_for != text:
                raise ClusterConfigError(
                    "TF_CONFIG changed since this process joined its cluster; "
                    "TensorFlow allows one multi-worker cluster per process. "
                    "Start a new process for the new cluster."
                )
            return strategy
        import tensorflow as tf

        _wait_for_peers(config)
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=JOIN_TIMEOUT_S
        )
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(
                communication_options=options
            )
        except (RuntimeError, ValueError, tf.errors.OpError) as exc:
            raise ClusterError(
                f"Cannot join the multi-worker cluster {config['cluster']} as "
                f"{config['task']}: {exc}. Start every worker listed in TF_CONFIG "
                "(each with its own task index) within "
                f"{JOIN_TIMEOUT_S} s of each other, and make the strategy "
                "before other TensorFlow work in the process (fit first)."
            ) from exc
        _multi_worker[text] = strategy
        return strategy


def make_strategy(distribution: str):
    """The ``tf.distribute`` strategy for a ``distribution`` value.

    Parameters
    ----------
    distribution : {'mirrored', 'multi_worker'}
        See the module's description.

    Returns
    -------
    tf.distribute.Strategy
        This process's MirroredStrategy over its devices, or its
        MultiWorkerMirroredStrategy; each is made once, on first use.

    Raises
    ------
    ClusterConfigError
        For ``"multi_worker"`` with a missing or malformed ``TF_CONFIG``.
    ClusterError
        When the other workers do not join in time.
    """
    import tensorflow as tf

    if distribution == "mirrored":
        # One per process: a second MirroredStrategy's collective ops collide
        # with the first's (measured: "Shape mismatch in the collective
        # instance" on the second fit).
        devices = tuple(_local_devices())
        with _lock:
            if devices not in _mirrored:
                _mirrored[devices] = tf.distribute.MirroredStrategy(list(devices))
            return _mirrored[devices]
    if distribution == "multi_worker":
        return _multi_worker_strategy()
    raise ValueError(
        f"distribution must be one of {DISTRIBUTIONS} or None, got {distribution!r}"
    )


def global_batch_size(batch_size: int, strategy) -> int:
    """Return the rows per training step under ``strategy``: one batch per replica.

    The learning rate is not changed with it. Large global batches often
    train better with a larger rate (the linear rule: multiply it by the
    number of replicas, with a warm-up); set ``learning_rate`` to choose.

    Parameters
    ----------
    batch_size : int
        The estimator's ``batch_size``: rows per replica.
    strategy : tf.distribute.Strategy or None
        The strategy; None is one replica.

    Returns
    -------
    int
        ``batch_size`` times the number of replicas in sync.

    Examples
    --------
    >>> global_batch_size(256, None)
    256
    """
    replicas = 1 if strategy is None else int(strategy.num_replicas_in_sync)
    return int(batch_size) * replicas


class _Steps:
    """The compiled training and evaluation steps of one distributed fit."""

    def __init__(self, model, strategy) -> None:
        import tensorflow as tf

        from .losses import per_sample_loss

        self.strategy = strategy
        optimizer = model.optimizer
        # the compiled loss's smoothing (SmoothedSparseCrossentropy), else none
        smoothing = getattr(model.loss, "label_smoothing", 0.0)

        def loss_fn(y, probs):
            return per_sample_loss(y, probs, smoothing)

        def sums(y, w, probs, per_row):
            hit = tf.cast(
                tf.equal(tf.argmax(probs, axis=1, output_type=y.dtype), y),
                tf.float32,
            )
            per_row = tf.cast(per_row, tf.float32)
            return tf.stack(
                [
                    tf.reduce_sum(per_row * w),
                    # Keras' compiled "accuracy" ignores sample weights
                    tf.reduce_sum(hit),
                    tf.cast(tf.shape(y)[0], tf.float32),
                ]
            )

        def train_replica(x, y, w, rows):
            with tf.GradientTape() as tape:
                probs = model(x, training=True)
                per_row = loss_fn(y, probs)
                loss = tf.nn.compute_average_loss(
                    tf.cast(per_row, tf.float32) * w, global_batch_size=rows
                )
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
                scaled = optimizer.scale_loss(loss)
            weights = model.trainable_variables
            grads = tape.gradient(scaled, weights)
            optimizer.apply_gradients(zip(grads, weights, strict=True))
            return sums(y, w, probs, per_row)

        def eval_replica(x, y, w):
            probs = model(x, training=False)
            return sums(y, w, probs, loss_fn(y, probs))

        @tf.function(reduce_retracing=True)
        def train(x, y, w, rows):
            out = strategy.run(train_replica, args=(x, y, w, rows))
            return strategy.reduce("SUM", out, axis=None)

        @tf.function(reduce_retracing=True)
        def evaluate(x, y, w):
            out = strategy.run(eval_replica, args=(x, y, w))
            return strategy.reduce("SUM", out, axis=None)

        self.train, self.evaluate = train, evaluate

    def split(self, batches):
        """Each batch of ``batches`` split over the replicas.

        Yields ``(step, rows, (x, y, w))``; a batch with fewer rows than
        replicas (the last one, at most) is skipped.
        """
        for step in range(len(batches)):
            rows = batches.rows(step)
            if len(rows) >= self.strategy.num_replicas_in_sync:
                xyw = self._per_replica(
                    batches.X, batches.y, batches.sample_weight, rows
                )
                yield step, len(rows), xyw

    def _per_replica(self, X, y, w, rows):
        """``X[rows]``, ``y[rows]``, ``w[rows]`` split over the replicas."""
        parts = np.array_split(rows, self.strategy.num_replicas_in_sync)

        # Gathered once per local replica (the three values below each ask
        # for it); other workers' replicas are never gathered here.
        @functools.cache
        def arrays(replica: int):
            r = parts[replica]
            return X[r], y[r], np.ones(len(r), np.float32) if w is None else w[r]

        return tuple(
            self.strategy.experimental_distribute_values_from_function(
                lambda ctx, i=i: arrays(ctx.replica_id_in_sync_group)[i]
            )
            for i in range(3)
        )


def _logs(totals, prefix: str = "") -> dict:
    loss_sum, hit_sum, count = (float(v) for v in np.asarray(totals))
    return {
        f"{prefix}loss": loss_sum / max(count, 1.0),
        f"{prefix}accuracy": hit_sum / count if count else 0.0,
    }


def fit_multi_worker(
    model,
    strategy,
    batches,
    val_batches=None,
    *,
    epochs: int,
    initial_epoch: int = 0,
    callbacks=(),
    verbose: int = 0,
) -> dict:
    """Train ``model`` under a multi-worker strategy with a step of our own.

    Every worker calls it with the same data and arguments. Each global batch
    of ``batches`` (``batch_size * replicas`` rows, the same on every worker
    since its order comes from the fit's seed) is split over the replicas;
    gradients are summed across workers by the optimizer, and the logged
    loss and accuracy are reduced across workers, so every worker sees the
    same numbers and callbacks (early stopping) decide alike.

    Not supported: callbacks that call ``predict`` or ``evaluate`` on the
    model (e.g. the tuning module's pruning callback), Keras' metrics other
    than accuracy, and ``steps_per_execution``. A last global batch with
    fewer rows than replicas is skipped. Batch normalisation's moving
    statistics are each worker's own (updated from its rows; the trainable
    weights are the same on every worker): averaging them across workers
    inside the step failed here (TF 2.21: "destinations can not be empty").

    Parameters
    ----------
    model : keras.Model
        Built and compiled inside ``strategy.scope()``.
    strategy : tf.distribute.MultiWorkerMirroredStrategy
        The strategy.
    batches : IndexBatches
        Training batches of the global batch size.
    val_batches : IndexBatches, default=None
        Hold-out batches, evaluated after each epoch (split over replicas).
    epochs : int
        The epoch to stop before.
    initial_epoch : int, default=0
        The first epoch.
    callbacks : list of keras.callbacks.Callback, default=()
        Called as ``fit`` calls them.
    verbose : int, default=0
        Keras' progress bar setting.

    Returns
    -------
    dict
        History: ``loss``, ``accuracy`` and with a hold-out set ``val_loss``,
        ``val_accuracy``, one value per epoch run.
    """
    import keras

    steps = _Steps(model, strategy)
    callback_list = keras.callbacks.CallbackList(
        list(callbacks),
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=len(batches),
    )
    model.stop_training = False
    callback_list.on_train_begin()
    logs = {}
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        total = np.zeros(3)
        for step, rows, (x, y, w) in steps.split(batches):
            callback_list.on_train_batch_begin(step)
            out = np.asarray(steps.train(x, y, w, np.int64(rows)))
            total += out
            callback_list.on_train_batch_end(step, _logs(out))
        logs = _logs(total)
        if val_batches is not None:
            val_total = np.zeros(3)
            for _, _, xyw in steps.split(val_batches):
                val_total += np.asarray(steps.evaluate(*xyw))
            logs.update(_logs(val_total, "val_"))
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return {k: [float(v) for v in vals] for k, vals in model.history.history.items()}
