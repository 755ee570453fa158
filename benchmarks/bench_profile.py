"""Where a training epoch's time goes: TensorFlow's profiler, op time by kind.

The default ``EmnistCNN`` and ``EmnistMLP`` train on real EMNIST images (the
first ``--n`` of the bymerge test split, upright) for two epochs; the second
epoch (the first also traces the graph) runs under
``tf.profiler.experimental`` and the trace's CPU op events are summed by
kind: convolution forward (fused with its bias and activation), the two
convolution gradients, activation gradients, dropout (random numbers,
select, multiply), pooling, dense layers and softmax, the Adam update,
bfloat16 casts, and the rest (input pipeline, loss, metrics). Shares are of
the summed op time, which on 2 cores exceeds the epoch's wall time.

The same run times an epoch with XLA (``jit_compile=True``; Keras leaves it
off on CPU-only machines) against without, alternating in fresh processes.

Run: ``python -m benchmarks.bench_profile [--n 20000] [--repeats 2]``
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time

from benchmarks._child import EpochTimer, mark_baseline
from benchmarks._harness import (
    Case,
    alternate,
    bymerge_test_files,
    precision_label,
    run_case,
    write_results,
)

# (kind, test) in order: the first that matches an op names its kind
_KINDS = [
    ("Adam update", lambda typ, name: "/adam/" in name or typ.startswith("Assign")),
    ("dropout", lambda typ, name: "drop" in name),
    ("convolution weight gradient", lambda typ, name: "BackpropFilter" in typ),
    ("convolution input gradient", lambda typ, name: "BackpropInput" in typ),
    ("convolution forward (+bias, activation)", lambda typ, name: "Conv2D" in typ),
    ("activation gradient", lambda typ, name: typ in ("LeakyReluGrad", "ReluGrad")),
    ("max pooling and its gradient", lambda typ, name: "MaxPool" in typ),
    (
        "dense layers and softmax",
        lambda typ, name: "MatMul" in typ or "Softmax" in typ or typ == "BiasAddGrad",
    ),
    ("bfloat16 casts", lambda typ, name: typ == "Cast"),
]
# trace events that contain others: counting them would count their ops twice
_CONTAINERS = {"Process", "Run", "DoCompute", "RunWithBorrowedArgs", "Root"}


def _bymerge_test(n: int):
    from emnist_estimators.datasets import read_idx

    files = bymerge_test_files()
    # stored transposed, like NIST's files: upright for the network
    X = read_idx(files["images"])[:n].transpose(0, 2, 1).reshape(-1, 784)
    return X, read_idx(files["labels"])[:n]


def op_seconds_by_kind(xspace_path: str) -> dict[str, float]:
    """Sum the host CPU op events of a profiler trace by :data:`_KINDS`."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xspace_path, "rb") as fh:
        space.ParseFromString(fh.read())
    seconds: collections.Counter = collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                # op events are "scope/op:Type"; others are runtime bookkeeping
                if ":" not in name or name.startswith(("EagerLocal", "Iterator::")):
                    continue
                typ = name.rsplit(":", 1)[1]
                if typ in _CONTAINERS:
                    continue
                kind = next((k for k, test in _KINDS if test(typ, name)), "other")
                seconds[kind] += event.duration_ps / 1e12
    return dict(seconds)


def profile_epoch(*, model: str, n: int) -> dict:
    """Profile the second epoch of a default estimator; runs in the child."""
    import glob
    import tempfile

    import keras
    import tensorflow as tf

    from emnist_estimators import EmnistCNN, EmnistMLP

    X, y = _bymerge_test(n)
    mark_baseline()
    with tempfile.TemporaryDirectory() as logdir:
        timing = {}

        class Profile(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 1:
                    timing["start"] = (time.perf_counter(), time.process_time())
                    tf.profiler.experimental.start(logdir)

            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    tf.profiler.experimental.stop()
                    wall, cpu = timing.pop("start")
                    timing["wall"] = time.perf_counter() - wall
                    timing["cpu"] = time.process_time() - cpu

        clf = {"cnn": EmnistCNN, "mlp": EmnistMLP}[model](epochs=2, random_state=0)
        clf.fit(X, y, callbacks=[Profile()])
        (trace,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        return {**timing, "seconds": op_seconds_by_kind(trace)}


def epoch_seconds(*, model: str, n: int, xla: bool, epochs: int = 3) -> dict:
    """Median seconds per epoch after the first, XLA on or off; in the child."""
    import keras

    from emnist_estimators import EmnistCNN, EmnistMLP

    X, y = _bymerge_test(n)
    compile_ = keras.Model.compile
    keras.Model.compile = lambda self, *a, **k: compile_(
        self, *a, **{**k, "jit_compile": xla}
    )
    timer = EpochTimer()
    mark_baseline()
    clf = {"cnn": EmnistCNN, "mlp": EmnistMLP}[model](epochs=epochs, random_state=0)
    clf.fit(X, y, callbacks=[timer.callback()])
    return {
        "seconds_per_epoch": statistics.median(timer.wall[1:]),
        "cpu_seconds_per_epoch": statistics.median(timer.cpu[1:]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="training images")
    parser.add_argument("--repeats", type=int, default=2, help="XLA A/B repeats")
    args = parser.parse_args(argv)
    rows = []
    for model in ("cnn", "mlp"):
        case = Case("bench_profile.profile_epoch", {"model": model, "n": args.n})
        result = run_case(case)
        total = sum(result["seconds"].values())
        for kind, seconds in sorted(result["seconds"].items(), key=lambda kv: -kv[1]):
            rows.append(
                {
                    "model": model.upper(),
                    "kind": kind,
                    "op s": round(seconds, 2),
                    "share": f"{100 * seconds / total:.1f}%",
                    "epoch wall s": round(result["wall"], 2),
                    "epoch CPU s": round(result["cpu"], 2),
                }
            )
        runs = alternate(
            {
                xla: Case(
                    "bench_profile.epoch_seconds",
                    {"model": model, "n": args.n, "xla": xla == "XLA"},
                )
                for xla in ("no XLA", "XLA")
            },
            args.repeats,
        )
        for xla, results in runs.items():
            rows.append(
                {
                    "model": model.upper(),
                    "kind": f"epoch time, {xla}",
                    "epoch wall s": round(
                        statistics.median(r["seconds_per_epoch"] for r in results), 2
                    ),
                    "epoch CPU s": round(
                        statistics.median(r["cpu_seconds_per_epoch"] for r in results),
                        2,
                    ),
                }
            )
    write_results(
        "bench_profile",
        rows,
        precision=precision_label("auto"),
        command="python -m benchmarks.bench_profile " + " ".join(argv or sys.argv[1:]),
        notes=(
            f"Defaults (precision auto), the first {args.n:,} bymerge test images "
            "upright. Op rows: the profiled second epoch's CPU op time by kind "
            "(share of the summed op time; 2 cores run ops in parallel, so the "
            "sum exceeds the epoch's wall time). 'epoch time' rows: median "
            f"seconds per epoch after the first, {args.repeats} alternating "
            "fresh processes each, XLA (jit_compile=True) on or off."
        ),
    )


if __name__ == "__main__":
    main()
