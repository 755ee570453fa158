"""Threads: does TensorFlow use the cores it is given, and what the knob does.

The same EmnistCNN epoch on real Fashion-MNIST images with
``EMNIST_ESTIMATORS_THREADS`` = 1, the default (the cores this process may
use) and 4x the cores (what TensorFlow's own default does in a container
whose CPU quota is smaller than the host), alternating in fresh processes.

Run: ``python -m benchmarks.bench_threads [--n 20000] [--epochs 1] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from benchmarks._child import mark_baseline
from benchmarks._harness import (
    Case,
    alternate,
    fashion_files,
    median_of,
    precision_label,
    write_results,
)


def fit_epochs(
    *, threads: int | None, images: str, labels: str, n: int, epochs: int, **_files
) -> dict:
    """Time EmnistCNN epochs with ``EMNIST_ESTIMATORS_THREADS`` set to ``threads``.

    Runs in the child process. The variable is set before the package is
    imported, as a user would set it; None leaves it unset (the default).
    """
    if "emnist_estimators" in sys.modules:
        raise RuntimeError("EMNIST_ESTIMATORS_THREADS must be set before the import")
    if threads is not None:
        os.environ["EMNIST_ESTIMATORS_THREADS"] = str(threads)
    else:
        os.environ.pop("EMNIST_ESTIMATORS_THREADS", None)
    import tensorflow as tf

    from emnist_estimators import EmnistCNN
    from emnist_estimators.datasets import read_idx

    X = read_idx(images).reshape(-1, 784)[:n]
    y = read_idx(labels)[:n]
    mark_baseline()
    clf = EmnistCNN(epochs=epochs, validation_fraction=0, random_state=0)
    t = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - t
    return {
        "seconds_per_epoch": seconds / epochs,
        "intra": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def main(argv=None):
    from emnist_estimators.threads import available_cpus

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    cpus = available_cpus()
    files = fashion_files()
    settings = {
        "1 thread": 1,
        f"default ({cpus} = cores given)": None,
        f"{4 * cpus} threads (oversubscribed)": 4 * cpus,
    }
    cases = {
        name: Case(
            "bench_threads.fit_epochs",
            {"threads": t, "n": args.n, "epochs": args.epochs, **files},
        )
        for name, t in settings.items()
    }
    runs = alternate(cases, args.repeats)
    base = median_of(runs["1 thread"], "seconds_per_epoch")
    rows = [
        {
            "threads": name,
            "intra/inter pools": f"{r[0]['intra']}/{r[0]['inter']}",
            "s per epoch (median)": round(median_of(r, "seconds_per_epoch"), 2),
            "speed-up vs 1 thread": round(base / median_of(r, "seconds_per_epoch"), 2),
            "runs": len(r),
        }
        for name, r in runs.items()
    ]
    write_results(
        "bench_threads",
        rows,
        precision=precision_label("auto"),
        command="python -m benchmarks.bench_threads " + " ".join(argv or sys.argv[1:]),
        notes=f"EmnistCNN defaults (precision='auto'), {args.n:,} Fashion-MNIST "
        f"training images, {args.epochs} epoch(s); {cpus} CPUs available to the "
        "process.",
    )


if __name__ == "__main__":
    main()
