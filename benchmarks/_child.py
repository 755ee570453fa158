"""The child process of one benchmark measurement.

``python -m benchmarks._child CASE JSON`` imports ``benchmarks.<CASE>`` (a
function named like ``bench_wrappers.fit_ours``), calls it with the JSON
object as keyword arguments and prints its result as one ``RESULT {...}``
line, which :func:`benchmarks._harness.run_case` reads. A case loads what it
needs (imports, data), calls :func:`mark_baseline`, does the measured work
and returns a dict of numbers.

Each measurement gets a fresh process, so its peak memory (VmHWM) belongs to
it alone. This module imports nothing heavy: the RSS baseline is the case's.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time

_baseline_kib: int | None = None


class EpochTimer:
    """Wall and process-CPU seconds of each epoch (CPU: all of its threads).

    For a case to pass ``timer.callback()`` to ``fit``; Keras is imported only
    then, so this module stays light.
    """

    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def callback(self):
        import keras

        timer = self

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter(), time.process_time()

            def on_epoch_end(self, epoch, logs=None):
                timer.wall.append(time.perf_counter() - self.start[0])
                timer.cpu.append(time.process_time() - self.start[1])

        return Timer()


def rss_kib() -> int:
    """Return this process's resident memory now, in KiB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def peak_kib() -> int:
    """Return this process's peak resident memory (VmHWM), in KiB.

    VmHWM belongs to this process image; ``ru_maxrss`` would include the
    parent's memory, inherited across fork and exec.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM line in /proc/self/status (not Linux?)")


def mark_baseline() -> None:
    """Note the memory in use now: set-up is done and the measured work starts."""
    global _baseline_kib
    _baseline_kib = rss_kib()


def measured(values: dict) -> dict:
    """Return ``values`` with the peak and the baseline memory added, in MiB.

    Parameters
    ----------
    values : dict
        The case's own numbers.

    Returns
    -------
    dict
        ``values`` plus ``peak_rss_mib`` and ``baseline_rss_mib``.
    """
    if _baseline_kib is None:
        raise RuntimeError("the case did not call mark_baseline() after its set-up")
    return {
        **values,
        "peak_rss_mib": peak_kib() / 1024,
        "baseline_rss_mib": _baseline_kib / 1024,
    }


def report(**values) -> None:
    """Print the result line that the parent process reads.

    Parameters
    ----------
    **values
        The case's numbers (JSON-serialisable).
    """
    print("RESULT " + json.dumps(measured(values)), flush=True)


def main(argv: list[str] | None = None) -> None:
    """Run the case named in ``argv`` and report its result.

    Parameters
    ----------
    argv : list of str, default=None
        ``[CASE, JSON]``; default ``sys.argv[1:]``.
    """
    case, kwargs = argv if argv is not None else sys.argv[1:]
    module, function = case.rsplit(".", 1)
    run = getattr(importlib.import_module(f"benchmarks.{module}"), function)
    values = run(**json.loads(kwargs))
    # Run as ``-m``, this file is __main__; the case marked its baseline in
    # the module it imported, benchmarks._child, which must also report it.
    importlib.import_module("benchmarks._child").report(**values)


if __name__ == "__main__":
    main()
