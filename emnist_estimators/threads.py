"""Process-wide runtime settings: TensorFlow's thread pools, set at first use.

How it works and why: the design notes in the docs (``docs/design.rst``).

Examples
--------
>>> from emnist_estimators.threads import available_cpus
>>> available_cpus() >= 1
True
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from pathlib import Path
from typing import cast

ENV_VAR = "EMNIST_ESTIMATORS_THREADS"

#: At most this many threads per CPU this process may use. More threads than
#: cores only add switching; far more (``--threads 100000`` was tried) make
#: TensorFlow reserve gigabytes of thread stacks and abort, so larger requests
#: are refused before TensorFlow starts.
MAX_THREADS_PER_CPU = 4

_requested: int | None = None
_configured = False  # configure_at_first_use ran in this process


def available_cpus() -> int:
    """Count the CPUs this process may use: affinity mask, capped by cgroup quota.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> import os
    >>> 1 <= available_cpus() <= (os.cpu_count() or 1)
    True
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max`` or v1 cfs files), or None."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota == "max":
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        cfs_quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        cfs_period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return cfs_quota / cfs_period if cfs_quota > 0 and cfs_period > 0 else None


def max_threads() -> int:
    """The largest thread count accepted: ``MAX_THREADS_PER_CPU`` per usable CPU.

    Returns
    -------
    int
        ``MAX_THREADS_PER_CPU`` times :func:`available_cpus`.

    Examples
    --------
    >>> from emnist_estimators.threads import available_cpus, max_threads
    >>> max_threads() == 4 * available_cpus()
    True
    """
    return MAX_THREADS_PER_CPU * available_cpus()


def _validate(n: object, source: str) -> int:
    if isinstance(n, str) and n.strip().isdigit():
        n = int(n)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(
            f"{source} must be a positive whole number of threads, got {n!r}; "
            f"use e.g. 2 for a 2-core machine."
        )
    limit = max_threads()
    if cast(int, n) > limit:  # an Integral: int, numpy's integers
        raise ValueError(
            f"{source} asks for {n} threads, but this process may use "
            f"{available_cpus()} CPU(s) and at most {MAX_THREADS_PER_CPU} threads "
            f"per CPU ({limit}) are accepted: more only slow TensorFlow down or "
            f"exhaust memory. Use at most {limit}, or leave it unset to use one "
            "thread per CPU."
        )
    return int(n)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in TensorFlow's op pools for this process.

    Call it before the first fit or predict (or set
    ``EMNIST_ESTIMATORS_THREADS=n`` in the environment). It overrides the
    default of one thread per usable CPU and any size already given to
    TensorFlow. Use fewer threads than cores to leave room for other work,
    e.g. one tuning worker per core.

    Parameters
    ----------
    n : int
        Threads for the intra-op pool (the work inside one matrix product or
        convolution) and the inter-op pool (independent ops side by side).

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer, or above :func:`max_threads`
        (``MAX_THREADS_PER_CPU`` = 4 threads per CPU this process may use).
    RuntimeError
        If TensorFlow already started its runtime with other pool sizes.

    Examples
    --------
    Call it at the start of a program, before the first fit or TensorFlow
    op (not run here: this process's TensorFlow may have started already):

    >>> from emnist_estimators.threads import set_num_threads, available_cpus
    >>> set_num_threads(available_cpus())  # doctest: +SKIP
    """
    global _requested
    _requested = _validate(n, "set_num_threads(n)")
    # With TensorFlow loaded, apply it now: an error (runtime already started)
    # then points at this call. Else the first fit or predict applies it.
    if "tensorflow" in sys.modules:
        configure_threads()


def configure_at_first_use() -> None:
    """Size TensorFlow's thread pools, the first time an estimator needs them.

    The estimators call this before they build or load a network; only the
    first call in a process does anything (:func:`configure_threads`). A
    failed call (a bad ``EMNIST_ESTIMATORS_THREADS``) is retried next time.

    Raises
    ------
    ValueError
        If ``EMNIST_ESTIMATORS_THREADS`` is not a valid thread count.
    RuntimeError
        As :func:`configure_threads`.
    """
    global _configured
    if not _configured:
        configure_threads()
        _configured = True


def configure_threads() -> tuple[int, int]:
    """Size TensorFlow's thread pools, before its runtime starts.

    Each pool gets the explicit request (:func:`set_num_threads` or
    ``EMNIST_ESTIMATORS_THREADS``); without one, a pool TensorFlow was
    already given a size for (``TF_NUM_*_THREADS``, or
    ``tf.config.threading.set_*``) is left alone and the others get
    :func:`available_cpus` threads.

    Returns
    -------
    (int, int)
        The intra-op and inter-op pool sizes now set; 0 where left to
        TensorFlow (its own ``TF_NUM_*_THREADS`` variable is set).

    Raises
    ------
    ValueError
        If ``EMNIST_ESTIMATORS_THREADS`` is not a valid thread count.
    RuntimeError
        If a size was asked for explicitly (:func:`set_num_threads` or the
        environment variable) but TensorFlow's runtime already started with
        another one. Without an explicit request the running sizes are kept.
    """
    import tensorflow as tf

    explicit = _requested
    if explicit is None and os.environ.get(ENV_VAR, "").strip():
        explicit = _validate(os.environ[ENV_VAR], ENV_VAR)
    default = explicit or available_cpus()
    intra = default if explicit or "TF_NUM_INTRAOP_THREADS" not in os.environ else None
    inter = default if explicit or "TF_NUM_INTEROP_THREADS" not in os.environ else None
    threading = tf.config.threading
    for value, getter, setter in (
        (
            intra,
            threading.get_intra_op_parallelism_threads,
            threading.set_intra_op_parallelism_threads,
        ),
        (
            inter,
            threading.get_inter_op_parallelism_threads,
            threading.set_inter_op_parallelism_threads,
        ),
    ):
        current = getter()
        # 0: not sized yet. Another size without an explicit request was the
        # program's own choice (tf.config.threading), which stays.
        if value is None or current == value or (current and not explicit):
            continue
        try:
            setter(value)
        except RuntimeError:
            # The runtime started before us (the user ran TensorFlow ops
            # first): its pools are fixed for this process.
            if explicit:
                raise RuntimeError(
                    f"TensorFlow already started with other thread pools, so "
                    f"{explicit} threads cannot be set in this process. Call "
                    f"emnist_estimators.threads.set_num_threads() or set "
                    f"{ENV_VAR}={explicit} before the first fit or TensorFlow op."
                ) from None
    return (
        threading.get_intra_op_parallelism_threads(),
        threading.get_inter_op_parallelism_threads(),
    )
