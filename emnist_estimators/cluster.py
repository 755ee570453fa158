"""Dask clusters: connect to a scheduler, share each machine's cores, wait safely.

The Dask side of :class:`~emnist_estimators.tuning.EmnistSearchCV`'s
``scheduler=`` (and ``emnist-estimators tune --dask-scheduler``).

How it works and why: the design notes in the docs (``docs/design.rst``).

Examples
--------
>>> from emnist_estimators.cluster import ThreadShare
>>> ThreadShare(n=2).n
2
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import numbers
import socket
import threading
import time
from collections.abc import Iterator

from .exceptions import ClusterConfigError, ClusterError
from .threads import available_cpus, set_num_threads

__all__ = [
    "CONNECT_TIMEOUT",
    "NO_WORKERS_TIMEOUT",
    "ClusterError",
    "ThreadShare",
    "broadcast",
    "connect",
    "connected",
    "is_lost",
    "pin_one_gpu",
    "share_threads",
    "wait_for_futures",
    "wait_for_workers",
    "was_cancelled",
]

logger = logging.getLogger(__name__)

#: Seconds :func:`connect` waits for a scheduler to answer (connect, handshake
#: and first reply together), by default.
CONNECT_TIMEOUT = 10.0

#: Seconds without any worker after which waiting gives up with an error.
#: Long enough for a nanny to restart a worker that died.
NO_WORKERS_TIMEOUT = 60.0

#: The largest handshake a Dask server may open with (its own is ~100 bytes).
_MAX_HANDSHAKE_BYTES = 1 << 20
# Seconds the probe thread is waited for past the deadline (a last reply).
_PROBE_GRACE = 0.5
# distributed.Client's own timeout when the probe used up nearly all of it.
_MIN_CLIENT_TIMEOUT = 1.0

_INSTALL = 'pip install "emnist-estimators[distributed]"'


def _distributed():
    """The ``distributed`` module, or an ImportError naming the extra."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            "Running trials on a Dask cluster needs dask.distributed, which is "
            f"not installed: {_INSTALL}"
        ) from exc
    return distributed


def connect(scheduler, *, timeout: float | None = None):
    """A ``distributed.Client`` for ``scheduler``.

    Parameters
    ----------
    scheduler : str or distributed.Client
        A scheduler address such as ``"tcp://10.0.0.5:8786"``, or a client,
        returned as is.
    timeout : float, default=None
        Seconds for the whole connection - TCP connect, Dask's handshake and
        the scheduler's first answer; None: :data:`CONNECT_TIMEOUT` (10).

    Returns
    -------
    distributed.Client
        A client that is not made Dask's default (``set_as_default=False``);
        the caller closes a client this function created.

    Raises
    ------
    ClusterError
        No scheduler answers at the address within ``timeout``: nothing
        listens there, or the server that does is not a Dask scheduler (it
        stays silent, speaks HTTP, or is a worker).
    ClusterConfigError
        ``scheduler`` is a string but not a Dask address.
    TypeError
        ``scheduler`` is neither an address nor a client.
    ImportError
        dask.distributed is not installed (the ``distributed`` extra).

    Examples
    --------
    >>> from emnist_estimators.cluster import connect
    >>> client = connect("tcp://127.0.0.1:8786")  # doctest: +SKIP
    """
    distributed = _distributed()
    if isinstance(scheduler, distributed.Client):
        return scheduler
    if not isinstance(scheduler, str):
        raise TypeError(
            "scheduler must be a Dask scheduler address such as "
            f"'tcp://host:8786' or a distributed.Client, got {scheduler!r}."
        )
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    # distributed.Client bounds only the TCP connect: a server that accepts and
    # stays silent holds it for ever, one that speaks HTTP makes it allocate
    # exabytes; it meets the scheduler only once a probe has, within timeout.
    _check_scheduler(distributed, scheduler, timeout, deadline)
    try:
        return distributed.Client(
            scheduler,
            timeout=max(deadline - time.monotonic(), _MIN_CLIENT_TIMEOUT),
            set_as_default=False,
        )
    except (OSError, TimeoutError) as exc:
        raise _unreachable(scheduler, timeout, exc) from None


def _unreachable(address: str, timeout: float, exc: BaseException) -> ClusterError:
    return ClusterError(
        f"Cannot reach the Dask scheduler at {address!r} within {timeout:g} s "
        f"({type(exc).__name__}: {exc}). Check the address, or start a "
        f"scheduler with `dask scheduler` and workers with `dask worker "
        f"{address}` ({_INSTALL})."
    )


def _not_a_scheduler(address: str, what: str) -> ClusterError:
    return ClusterError(
        f"The server at {address!r} {what}: it is not a Dask scheduler. Check "
        "the address: a scheduler listens on port 8786 unless told otherwise "
        "(8787 is its HTTP dashboard)."
    )


def _check_scheduler(distributed, address: str, timeout: float, deadline) -> None:
    """Return once a Dask scheduler answered at ``address``; else ClusterError.

    The probe runs in a thread of its own that this one waits for until
    ``deadline`` at most (name resolution included): whatever the server
    does, this returns or raises in time.
    """
    try:
        scheme, location = distributed.comm.parse_address(address)
        if scheme == "tcp":
            host, port = distributed.comm.parse_host_port(location)
    except ValueError as exc:
        raise ClusterConfigError(
            f"{address!r} is not a Dask scheduler address ({exc}); give one "
            "such as 'tcp://10.0.0.5:8786'."
        ) from None
    outcome: list = []

    def probe() -> None:
        try:
            if scheme == "tcp":
                _read_handshake(address, host, port, timeout, deadline)
            _identify(distributed, address, timeout, deadline)
            outcome.append(None)
        except BaseException as exc:  # handed to the waiting thread
            outcome.append(exc)

    thread = threading.Thread(target=probe, name="dask-scheduler-probe", daemon=True)
    thread.start()
    thread.join(max(deadline - time.monotonic(), 0) + _PROBE_GRACE)
    if not outcome:  # the probe is stuck (name resolution): left to end alone
        raise _unreachable(address, timeout, TimeoutError("no answer"))
    if outcome[0] is not None:
        if isinstance(outcome[0], ClusterError):
            raise outcome[0]
        raise _not_a_scheduler(
            address,
            f"did not answer Dask's handshake as a scheduler does "
            f"({type(outcome[0]).__name__}: {str(outcome[0])[:200]})",
        )


def _read_handshake(address, host, port, timeout: float, deadline: float) -> None:
    """Read the handshake a Dask server sends first, with raw sockets.

    Dask frames each message with its length in 8 little-endian bytes; a
    scheduler sends its (small) handshake as soon as it accepts. Checking
    that here keeps distributed from trusting a length that is text.
    """
    while True:
        try:
            sock = socket.create_connection(
                (host, port), max(deadline - time.monotonic(), 0.01)
            )
            break
        except ConnectionRefusedError as exc:  # perhaps still starting up
            if time.monotonic() + 0.1 >= deadline:
                raise _unreachable(address, timeout, exc) from None
            time.sleep(0.1)
        except OSError as exc:
            raise _unreachable(address, timeout, exc) from None
    with sock:
        try:
            head = _recv_exactly(sock, 8, deadline)
        except TimeoutError:
            raise _not_a_scheduler(
                address,
                f"accepted the connection but sent no Dask handshake within "
                f"{timeout:g} s",
            ) from None
        except OSError as exc:
            raise _not_a_scheduler(
                address, f"broke the connection before Dask's handshake ({exc})"
            ) from None
        if len(head) < 8:
            raise _not_a_scheduler(
                address, "closed the connection without Dask's handshake"
            )
        size = int.from_bytes(head, "little")
        if not 0 < size <= _MAX_HANDSHAKE_BYTES:
            with contextlib.suppress(OSError):
                sock.settimeout(min(0.2, max(deadline - time.monotonic(), 0.01)))
                head += sock.recv(72)
            said = head.split(b"\r\n")[0].split(b"\n")[0][:60]
            raise _not_a_scheduler(
                address, f"answered {said!r} instead of Dask's handshake"
            )
        try:
            body = _recv_exactly(sock, size, deadline)
        except OSError:
            body = b""
        if len(body) < size:
            raise _not_a_scheduler(
                address, f"sent no complete Dask handshake within {timeout:g} s"
            )


def _recv_exactly(sock, n: int, deadline: float) -> bytes:
    """Up to ``n`` bytes (fewer at end of stream); TimeoutError at ``deadline``."""
    data = b""
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        sock.settimeout(left)
        chunk = sock.recv(min(n - len(data), 65536))
        if not chunk:
            break
        data += chunk
    return data


def _identify(distributed, address: str, timeout: float, deadline: float) -> None:
    """Ask the server who it is, in Dask's protocol, before ``deadline``."""

    async def ask():
        comm = await distributed.comm.connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity"})
            return await comm.read()
        finally:
            comm.abort()

    try:
        reply = asyncio.run(
            asyncio.wait_for(ask(), max(deadline - time.monotonic(), 0.01))
        )
    except (TimeoutError, asyncio.TimeoutError):
        raise _not_a_scheduler(
            address, f"did not say who it is within {timeout:g} s"
        ) from None
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        raise _not_a_scheduler(
            address,
            f"is a Dask {str(kind).lower()}" if kind else "answered as no Dask server",
        )


@contextlib.contextmanager
def connected(scheduler, *, timeout: float | None = None) -> Iterator:
    """Context manager: :func:`connect`, then close the client if it made one.

    Parameters
    ----------
    scheduler : str or distributed.Client
        As :func:`connect`; a client given here is left open.
    timeout : float, default=None
        As :func:`connect`.

    Yields
    ------
    distributed.Client
        The connected client.
    """
    client = connect(scheduler, timeout=timeout)
    try:
        yield client
    finally:
        if client is not scheduler:
            client.close()


def _start_workers(address: str) -> str:
    """How to give the scheduler at ``address`` workers, for error messages."""
    return f"Start workers with `dask worker {address} --nthreads 1`"


def _lost_scheduler(address: str, exc: BaseException) -> ClusterError:
    return ClusterError(
        f"Lost the connection to the Dask scheduler at {address}: "
        f"{type(exc).__name__}: {exc}. Restart it and resume the study "
        "(--resume / load_if_exists=True)."
    )


def _worker_count(client, address: str) -> int:
    """Workers connected to the scheduler; a ClusterError if it is gone."""
    try:
        return len(client.nthreads())
    except (OSError, TimeoutError) as exc:
        raise _lost_scheduler(address, exc) from None


def wait_for_workers(client, *, timeout: float | None = None) -> int:
    """Wait until at least one worker is connected; return how many are.

    Parameters
    ----------
    client : distributed.Client
        A connected client.
    timeout : float, default=None
        Seconds to wait; None: :data:`NO_WORKERS_TIMEOUT`.

    Returns
    -------
    int
        The number of workers connected now.

    Raises
    ------
    ClusterError
        No worker connected within ``timeout``.
    """
    timeout = NO_WORKERS_TIMEOUT if timeout is None else timeout
    address = client.scheduler.address
    deadline = time.monotonic() + timeout
    while True:
        count = _worker_count(client, address)
        if count or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if not count:
        raise ClusterError(
            f"The Dask scheduler at {address} has no worker (waited "
            f"{timeout:g} s). {_start_workers(address)}."
        )
    return count


def broadcast(client, values: list) -> list:
    """Send each of ``values`` to every worker once; their futures, in order.

    Tasks given these futures find the data on their worker instead of
    receiving it with every task (workers that join later fetch it from
    the others).

    Parameters
    ----------
    client : distributed.Client
        A connected client.
    values : list
        The objects to send (arrays, lists...); each is sent whole.

    Returns
    -------
    list of distributed.Future
        One future per value.

    Raises
    ------
    ClusterError
        No worker to send them to for :data:`NO_WORKERS_TIMEOUT` seconds, or
        the scheduler is gone.
    """
    try:
        return client.scatter(
            list(values), broadcast=True, hash=False, timeout=NO_WORKERS_TIMEOUT
        )
    except TimeoutError:
        address = client.scheduler.address
        raise ClusterError(
            f"The Dask scheduler at {address} has no worker to send the data to "
            f"(waited {NO_WORKERS_TIMEOUT:g} s). {_start_workers(address)}."
        ) from None
    except OSError as exc:  # the scheduler itself is gone
        raise _lost_scheduler(client.scheduler.address, exc) from None


def is_lost(futures: list) -> bool:
    """Whether any of ``futures`` (e.g. :func:`broadcast`'s) lost its data.

    Scattered data cannot be recomputed: when every worker holding a copy
    died, it is gone, and tasks that need it are cancelled.

    Parameters
    ----------
    futures : list of distributed.Future
        The futures to check.

    Returns
    -------
    bool
        True if one of them is no longer ``"finished"``.
    """
    return any(f.status != "finished" for f in futures)


def was_cancelled(error: BaseException | None) -> bool:
    """Whether a task's ``error`` means Dask dropped it, not that it failed.

    Dask cancels a task whose input data was lost with the workers holding
    it, or whose result was; running it again (with the data sent again)
    is safe. A task that itself killed its workers fails with
    ``KilledWorker`` instead, and is not "cancelled".

    Parameters
    ----------
    error : BaseException or None
        The error :func:`wait_for_futures` returned for a task.

    Returns
    -------
    bool
        True for Dask's cancellation errors.
    """
    from concurrent.futures import CancelledError

    return isinstance(error, CancelledError)


def wait_for_futures(
    client, futures: list, *, on_poll=None, timeout: float | None = None
) -> list[tuple[object, BaseException | None]]:
    """Wait for ``futures``; each one's ``(result, None)`` or ``(None, error)``.

    Each result is fetched as soon as its task ends, so that a worker dying
    later cannot take it along. A task whose worker died is retried by Dask
    on the other workers (its ``distributed.scheduler.allowed-failures``
    setting); if it still fails, its error is Dask's ``KilledWorker``. When
    no worker is left for ``timeout`` seconds, the unfinished futures are
    cancelled and a ClusterError is raised instead of waiting for ever.

    Parameters
    ----------
    client : distributed.Client
        The client the futures belong to.
    futures : list of distributed.Future
        The tasks to wait for.
    on_poll : callable, default=None
        Called with no argument about once a second while waiting (e.g. to
        record optuna heartbeats of the running trials).
    timeout : float, default=None
        Seconds without any worker before giving up; None:
        :data:`NO_WORKERS_TIMEOUT`.

    Returns
    -------
    list of (object, BaseException or None)
        In the order of ``futures``: the result and None, or None and the
        task's error (see :func:`was_cancelled`).

    Raises
    ------
    ClusterError
        Every worker was gone for ``timeout`` seconds, or the scheduler was
        lost.
    """
    timeout = NO_WORKERS_TIMEOUT if timeout is None else timeout
    address = client.scheduler.address
    outcomes: list = [None] * len(futures)
    waiting = dict(enumerate(futures))
    alone_since = None
    next_check = time.monotonic() + 1.0
    while True:
        for i in [i for i, future in waiting.items() if future.done()]:
            outcomes[i] = _outcome(waiting.pop(i))
        if not waiting:
            return outcomes
        time.sleep(0.05)
        now = time.monotonic()
        if now < next_check:
            continue
        next_check = now + 1.0
        if on_poll is not None:
            on_poll()
        if _worker_count(client, address):
            alone_since = None
        elif alone_since is None:
            alone_since = now
        elif now - alone_since >= timeout:
            client.cancel(list(waiting.values()))
            raise ClusterError(
                f"Every worker of the Dask scheduler at {address} is gone (none "
                f"for {timeout:g} s) while trials were running. "
                f"{_start_workers(address)}; the finished trials are in the study."
            )


def _outcome(future) -> tuple[object, BaseException | None]:
    try:
        result = future.result()
    except Exception as exc:  # the task's own error, KilledWorker, cancelled
        return None, exc
    future.release()  # the worker may free it now
    return result, None


# -- thread share ---------------------------------------------------------------
# one WorkerPlugin subclass per class of ours, made at the first instance
_WITH_PLUGIN_BASE: dict[type, type] = {}


class _LazyWorkerPlugin:
    """Base that adds ``distributed.WorkerPlugin`` at the first instance.

    Dask registers only real WorkerPlugin subclasses, but this module must
    not import distributed when it is imported (as callbacks.py does for
    Keras' Callback).
    """

    def __new__(cls, *args, **kwargs):
        base = _distributed().WorkerPlugin
        if not issubclass(cls, base):
            if cls not in _WITH_PLUGIN_BASE:
                _WITH_PLUGIN_BASE[cls] = type(
                    cls.__name__,
                    (cls, base),
                    {"__module__": cls.__module__, "__doc__": cls.__doc__},
                )
            cls = _WITH_PLUGIN_BASE[cls]
        return super().__new__(cls)


class ThreadShare(_LazyWorkerPlugin):
    """Dask worker plugin: size TensorFlow's thread pools to the worker's share.

    At set-up on each worker (those running and those that join later) it
    calls :func:`~emnist_estimators.threads.set_num_threads` with ``n``, or
    with the machine's usable cores divided by the workers on that machine
    (at least 1): two workers on a 2-core machine get 1 thread each instead
    of 2 each. It must run before the worker's first TensorFlow op, so
    register it (:func:`share_threads`) before the first fit on the cluster;
    a worker whose TensorFlow already runs with other pool sizes keeps them
    and logs a warning.

    On a machine with GPUs it also pins each worker to one GPU
    (:func:`pin_one_gpu`): worker ``k`` of the machine sees GPU ``k`` mod
    the number of GPUs only, so that workers do not all crowd onto the first
    GPU (TensorFlow's default) or each reserve the memory of every GPU.

    Parameters
    ----------
    n : int, default=None
        Threads per worker; None: the worker's share of its machine.

    Attributes
    ----------
    threads : int or None
        The threads set on the worker it runs on (None before set-up).
    gpu : str or None
        The GPU the worker was pinned to (None without GPUs).

    Examples
    --------
    >>> from emnist_estimators.cluster import ThreadShare
    >>> plugin = ThreadShare()
    >>> client.register_plugin(plugin)  # doctest: +SKIP
    """

    name = "emnist-estimators-threads"

    def __init__(self, n: int | None = None):
        if n is not None and (
            isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1
        ):
            raise ValueError(
                f"ThreadShare(n) must be a positive whole number of threads or "
                f"None (the worker's share of its machine), got {n!r}."
            )
        self.n = n
        self.threads: int | None = None
        self.gpu: str | None = None

    def __reduce__(self):
        # the class Dask sees is made at run time; rebuild it by our name
        return (ThreadShare, (self.n,))

    async def setup(self, worker):
        """Set the worker's TensorFlow thread pools and GPU (Dask calls this).

        Parameters
        ----------
        worker : distributed.Worker
            The worker this plugin is set up on.
        """
        self.gpu = pin_one_gpu(await _slot_of(worker))
        if self.gpu is not None:
            logger.info("Worker %s uses GPU %s only", worker.address, self.gpu)
        n = self.n or await _share_of(worker)
        try:
            set_num_threads(n)
        except RuntimeError as exc:
            logger.warning("Worker %s keeps its thread pools: %s", worker.address, exc)
            return
        self.threads = n
        logger.info("Worker %s: TensorFlow uses %d thread(s)", worker.address, n)


def pin_one_gpu(slot: int) -> str | None:
    """Make TensorFlow in this process see one GPU: number ``slot`` mod their count.

    Call it before TensorFlow's first op in the process. Memory growth is
    turned on for that GPU, so that a worker takes the memory it uses rather
    than all of it.

    Parameters
    ----------
    slot : int
        The worker's number on its machine, from 0.

    Returns
    -------
    str or None
        The name of the GPU kept; None on a machine without GPUs (nothing
        changed).

    Examples
    --------
    >>> from emnist_estimators.cluster import pin_one_gpu
    >>> pin_one_gpu(0)  # this machine has no GPU  # doctest: +SKIP
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    gpu = gpus[int(slot) % len(gpus)]
    try:
        tf.config.set_visible_devices([gpu], "GPU")
        tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError as exc:  # TensorFlow already initialised its devices
        logger.warning("Cannot pin this worker to %s: %s", gpu.name, exc)
        return None
    return gpu.name


async def _slot_of(worker) -> int:
    """The worker's number on its machine.

    From its name where the launcher numbered it (``LocalCluster``: 0, 1...;
    ``dask worker --nworkers 2 --name w``: w-0, w-1), else the smallest slot
    no live worker of its machine holds, kept in the scheduler's metadata (a
    worker restarted with a new port takes its predecessor's slot, not a live
    worker's).
    """
    name = str(worker.name)
    tail = name.rsplit("-", 1)[-1]
    if tail.isdigit():
        return int(tail)
    host, alive = await _machine_workers(worker)
    taken = await worker.scheduler.get_metadata(
        keys=["emnist-estimators-gpu-slots", host], default={}
    )
    used = {s for a, s in (taken or {}).items() if a in alive and a != worker.address}
    slot = min(set(range(len(alive) + 1)) - used)
    await worker.scheduler.set_metadata(
        keys=["emnist-estimators-gpu-slots", host, worker.address], value=slot
    )
    return slot


async def _share_of(worker) -> int:
    """The usable cores of the worker's machine divided by its workers there."""
    _, here = await _machine_workers(worker)
    return max(1, available_cpus() // max(1, len(here)))


async def _machine_workers(worker) -> tuple[str, set[str]]:
    """The worker's host and the addresses of the workers registered on it."""
    from distributed.comm import get_address_host

    host = get_address_host(worker.address)
    info = await worker.scheduler.identity()
    return host, {a for a, w in info["workers"].items() if w.get("host") == host}


def _plugin_threads(dask_worker) -> int | None:
    plugin = dask_worker.plugins.get(ThreadShare.name)
    return getattr(plugin, "threads", None)


def share_threads(client, n: int | None = None) -> dict[str, int | None]:
    """Register :class:`ThreadShare` on every worker, now and joining later.

    Parameters
    ----------
    client : distributed.Client
        A client of the cluster, connected before its workers ran any fit.
    n : int, default=None
        Threads per worker; None: each worker's share of its machine's cores.

    Returns
    -------
    dict of str to int or None
        The threads each worker now uses, by worker address; None where the
        worker's TensorFlow already ran with other pool sizes (see the
        worker's log).

    Examples
    --------
    >>> from distributed import Client  # doctest: +SKIP
    >>> from emnist_estimators.cluster import share_threads
    >>> share_threads(Client("tcp://127.0.0.1:8786"))  # doctest: +SKIP
    {'tcp://127.0.0.1:40711': 1, 'tcp://127.0.0.1:40713': 1}
    """
    client.register_plugin(ThreadShare(n))
    return client.run(_plugin_threads)
