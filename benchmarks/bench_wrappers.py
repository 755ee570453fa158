"""Wrapper overhead: EmnistCNN vs the same Keras model used directly, and
single-sample prediction latency vs stock scikeras.

Side by side in alternating child processes on real Fashion-MNIST images
(uint8, the same network, seed and data in each case):

- ``fit``: ``EmnistCNN(validation_fraction=0).fit`` vs ``build_cnn(...)`` +
  ``compile`` + ``Model.fit`` (goal: <= 1.05x);
- ``batch predict``: ``predict_proba`` on 10,000 images vs ``Model.predict``
  (goal: <= 1.05x);
- ``1-sample predict``: median latency of ``predict`` on one image, ours vs
  scikeras' ``KerasClassifier`` wrapping the same model (goal: >= 10x faster);
- single-image ``predict`` and ``predict_proba`` of the default EmnistCNN and
  EmnistMLP (trained 1 epoch on 2,000 images: latency does not depend on
  the weights), in the precision ``auto`` picks on this CPU and in float32,
  beside stock scikeras wrapping the same float32 network (issue 32 item 5:
  <= 1 ms for the CNN, >= 30x scikeras).

Run: ``python -m benchmarks.bench_wrappers [--n 20000] [--epochs 2] [--repeats 3]
[--calls 300] [--latency-only]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from benchmarks._child import mark_baseline
from benchmarks._harness import (
    Case,
    alternate,
    fashion_files,
    median_call_seconds,
    median_of,
    precision_label,
    write_results,
)


def _load(images: str, labels: str, n: int) -> tuple:
    """The training images and labels, and the 10,000 images predicted."""
    from emnist_estimators.datasets import read_idx

    X = read_idx(images).reshape(-1, 784)[:n]
    y = read_idx(labels)[:n].astype("int32")
    X_test = read_idx(images).reshape(-1, 784)[-10000:]
    return X, y, X_test


def _latency(fn, calls: int = 60) -> float:
    """Median seconds of ``fn()``, after two warm-up calls."""
    return median_call_seconds(fn, calls, warmup=2)


def _compiled_cnn():
    import keras

    from emnist_estimators.architectures import build_cnn

    model = build_cnn(784, 10, rescale=1 / 255, seed=0)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def fit_ours(*, images: str, labels: str, n: int, epochs: int, **_files) -> dict:
    """EmnistCNN: fit, batch predict_proba, 1-sample predict (child process)."""
    from emnist_estimators import EmnistCNN

    X, y, X_test = _load(images, labels, n)
    one = X_test[:1]
    mark_baseline()
    clf = EmnistCNN(
        epochs=epochs,
        validation_fraction=0,
        random_state=0,
        precision="float32",  # the same arithmetic as the raw model
        lr_schedule="constant",  # and the same optimiser
    )
    t = time.perf_counter()
    clf.fit(X, y)
    fit_s = time.perf_counter() - t
    clf.predict_proba(X_test[:512])
    t = time.perf_counter()
    clf.predict_proba(X_test)
    batch_s = time.perf_counter() - t
    return {
        "fit_s": fit_s,
        "batch_s": batch_s,
        "one_s": _latency(lambda: clf.predict(one)),
    }


def fit_raw_keras(*, images: str, labels: str, n: int, epochs: int, **_files) -> dict:
    """The same network built and trained with Keras alone (child process)."""
    import keras

    X, y, X_test = _load(images, labels, n)
    one = X_test[:1]
    mark_baseline()
    keras.utils.set_random_seed(0)
    model = _compiled_cnn()
    t = time.perf_counter()
    model.fit(X, y, batch_size=256, epochs=epochs, verbose=0, shuffle=True)
    fit_s = time.perf_counter() - t
    model.predict(X_test[:512], verbose=0)
    t = time.perf_counter()
    model.predict(X_test, batch_size=1024, verbose=0)
    batch_s = time.perf_counter() - t
    return {
        "fit_s": fit_s,
        "batch_s": batch_s,
        "one_s": _latency(lambda: model.predict(one, verbose=0).argmax(1)),
    }


def fit_scikeras(*, images: str, labels: str, n: int, epochs: int, **_files) -> dict:
    """The same network in stock scikeras' KerasClassifier (child process)."""
    from scikeras.wrappers import KerasClassifier

    X, y, X_test = _load(images, labels, n)
    one = X_test[:1]
    mark_baseline()
    clf = KerasClassifier(
        model=_compiled_cnn, epochs=epochs, batch_size=256, random_state=0, verbose=0
    )
    t = time.perf_counter()
    clf.fit(X, y)
    fit_s = time.perf_counter() - t
    clf.predict(X_test[:512])
    t = time.perf_counter()
    clf.predict_proba(X_test)
    batch_s = time.perf_counter() - t
    return {
        "fit_s": fit_s,
        "batch_s": batch_s,
        "one_s": _latency(lambda: clf.predict(one)),
    }


def _single_image(predict, predict_proba, one, calls: int) -> dict:
    """Median seconds of predict and predict_proba on one image, interleaved."""
    for _ in range(5):
        predict(one), predict_proba(one)
    times: dict[str, list[float]] = {"predict_s": [], "proba_s": []}
    for _ in range(calls):
        for key, fn in (("predict_s", predict), ("proba_s", predict_proba)):
            start = time.perf_counter()
            fn(one)
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def latency_ours(
    *, images: str, labels: str, kind: str, precision: str, calls: int, **_files
) -> dict:
    """EmnistCNN/EmnistMLP defaults: single-image latency (child process)."""
    from emnist_estimators import EmnistCNN, EmnistMLP

    X, y, X_test = _load(images, labels, 2000)
    mark_baseline()
    cls = EmnistCNN if kind == "cnn" else EmnistMLP
    est = cls(epochs=1, random_state=0, precision=precision).fit(X, y)
    out = _single_image(est.predict, est.predict_proba, X_test[:1], calls)
    return {**out, "policy": est.dtype_policy_}


def latency_scikeras(*, images: str, labels: str, kind: str, calls: int, **_f) -> dict:
    """Stock scikeras wrapping the same float32 network (child process)."""
    from scikeras.wrappers import KerasClassifier

    from emnist_estimators.architectures import build_mlp

    def mlp():
        model = build_mlp(784, 10, rescale=1 / 255, seed=0)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    X, y, X_test = _load(images, labels, 2000)
    mark_baseline()
    model = _compiled_cnn if kind == "cnn" else mlp
    clf = KerasClassifier(model=model, epochs=1, batch_size=256, verbose=0)
    clf.fit(X, y)
    out = _single_image(clf.predict, clf.predict_proba, X_test[:1], calls)
    return {**out, "policy": "float32"}


def _latency_rows(args, data) -> list[dict]:
    """Single-image predict/predict_proba medians, ours beside stock scikeras."""
    lat = {**data, "calls": args.calls}
    cases = {}
    for kind in ("cnn", "mlp"):
        for precision in ("auto", "float32"):
            cases[f"{kind} {precision}"] = Case(
                "bench_wrappers.latency_ours",
                {**lat, "kind": kind, "precision": precision},
            )
        cases[f"{kind} scikeras"] = Case(  # ~40 ms a call: 60 calls do
            "bench_wrappers.latency_scikeras",
            {**lat, "kind": kind, "calls": min(args.calls, 60)},
        )
    runs = alternate(cases, args.repeats)
    rows = []
    for kind, name in (("cnn", "EmnistCNN"), ("mlp", "EmnistMLP")):
        sk = runs[f"{kind} scikeras"]
        for precision in ("auto", "float32"):
            ours = runs[f"{kind} {precision}"]
            pred, proba = median_of(ours, "predict_s"), median_of(ours, "proba_s")
            sk_pred, sk_proba = median_of(sk, "predict_s"), median_of(sk, "proba_s")
            rows.append(
                {
                    "measure": f"single image, {name} defaults",
                    "precision": precision_label(precision, ours[0]["policy"]),
                    "predict ms": round(pred * 1e3, 3),
                    "predict_proba ms": round(proba * 1e3, 3),
                    "stock scikeras predict ms": round(sk_pred * 1e3, 2),
                    "stock scikeras predict_proba ms": round(sk_proba * 1e3, 2),
                    "scikeras / ours": round(min(sk_pred / pred, sk_proba / proba), 1),
                    "goal": "<= 1 ms (CNN), scikeras/ours >= 30",
                }
            )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="training images")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300, help="single-image calls")
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="only the single-image rows (written to bench_wrappers_latency)",
    )
    args = parser.parse_args(argv)
    data = {**fashion_files(), "n": args.n, "epochs": args.epochs}
    command = "python -m benchmarks.bench_wrappers " + " ".join(argv or sys.argv[1:])
    load = f"1-minute load average {os.getloadavg()[0]:.2f} before"
    latency_notes = (
        f"Single image: median of {args.calls} calls (scikeras: "
        f"{min(args.calls, 60)}) of predict and of predict_proba (interleaved), "
        f"medians of {args.repeats} alternating runs, each in a fresh process; "
        "'auto' is the precision the estimator "
        "picks on this CPU; stock scikeras wraps the float32 network. "
    )
    if args.latency_only:
        rows = _latency_rows(args, data)
        load += f", {os.getloadavg()[0]:.2f} after"
        write_results(
            "bench_wrappers_latency",
            rows,
            command=command,
            notes=latency_notes + load + " (2 cores, shared).",
        )
        return
    cases = {
        "EmnistCNN": Case("bench_wrappers.fit_ours", data),
        "raw Keras": Case("bench_wrappers.fit_raw_keras", data),
        "stock scikeras": Case("bench_wrappers.fit_scikeras", data),
    }
    runs = alternate(cases, args.repeats)
    med = {
        name: {k: median_of(r, k) for k in ("fit_s", "batch_s", "one_s")}
        for name, r in runs.items()
    }
    ours, raw, sk = med["EmnistCNN"], med["raw Keras"], med["stock scikeras"]
    rows = [
        {
            "measure": f"fit ({args.n:,} images, {args.epochs} epochs)",
            "EmnistCNN s": round(ours["fit_s"], 2),
            "raw Keras s": round(raw["fit_s"], 2),
            "stock scikeras s": round(sk["fit_s"], 2),
            "ours / raw Keras": round(ours["fit_s"] / raw["fit_s"], 3),
            "goal": "<= 1.05",
        },
        {
            "measure": "batch predict_proba (10,000 images)",
            "EmnistCNN s": round(ours["batch_s"], 3),
            "raw Keras s": round(raw["batch_s"], 3),
            "stock scikeras s": round(sk["batch_s"], 3),
            "ours / raw Keras": round(ours["batch_s"] / raw["batch_s"], 3),
            "goal": "<= 1.05",
        },
        {
            "measure": "1-sample predict latency (median of 60)",
            "EmnistCNN s": round(ours["one_s"], 5),
            "raw Keras s": round(raw["one_s"], 5),
            "stock scikeras s": round(sk["one_s"], 5),
            "ours / raw Keras": round(ours["one_s"] / raw["one_s"], 3),
            "scikeras / ours": round(sk["one_s"] / ours["one_s"], 1),
            "goal": "scikeras/ours >= 10",
        },
    ]
    rows += _latency_rows(args, data)
    load += f", {os.getloadavg()[0]:.2f} after"
    write_results(
        "bench_wrappers",
        rows,
        command=command,
        # the fit and batch rows: EmnistCNN(precision="float32"), as raw Keras
        precision=precision_label("float32"),
        notes=f"Medians of {args.repeats} alternating runs, each in a fresh process. "
        + latency_notes
        + load
        + " (2 cores, shared).",
    )


if __name__ == "__main__":
    main()
