"""Exported models vs ``est.predict``: single-image latency and 10k throughput.

The default ``EmnistCNN`` and ``EmnistMLP`` (``precision="auto"``: mixed
bfloat16 on CPUs with native bfloat16) are trained briefly on real
Fashion-MNIST images, saved, and exported to ONNX, a SavedModel and LiteRT
(:func:`emnist_estimators.export.export_model`, float32). Then, side by side
in alternating fresh processes, each runtime predicts the 10,000 Fashion-MNIST
test images:

- ``est.predict``: the loaded estimator (``load_model``), as a user calls it;
- ``Keras float32``: the exported float32 network run by Keras
  (``predict_on_batch``), which separates the arithmetic from the runtime;
- ``onnxruntime``, ``SavedModel`` (``tf.saved_model.load``), ``LiteRT``
  (``ai_edge_litert`` ``Interpreter``, XNNPACK, one thread per core).

Reported per runtime: the median latency of one image (after warm-up), the
throughput on the 10,000 images (median of 3 passes, in batches of
``--batch`` for the exported runtimes; ``est.predict`` gets all 10,000 at once
and batches them itself), the seconds to load the model, and how many of the
10,000 labels equal ``est.predict``'s.

Run: ``python -m benchmarks.bench_export [--n 10000] [--epochs 1] [--repeats 2]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from benchmarks._child import mark_baseline
from benchmarks._harness import (
    WORK,
    Case,
    alternate,
    fashion_files,
    median_call_seconds,
    median_of,
    precision_label,
    run_case,
    write_results,
)

MODELS = ("cnn", "mlp")
RUNTIMES = ("est.predict", "Keras float32", "onnxruntime", "SavedModel", "LiteRT")
SUFFIX = {"onnx": ".onnx", "tf_saved_model": "", "litert": ".tflite"}


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def prepare(
    *,
    model: str,
    folder: str,
    images: str,
    labels: str,
    test_images: str,
    test_labels: str,
    n: int,
    epochs: int,
) -> dict:
    """Train the default ``model`` briefly, save it, export it (child process)."""
    from pathlib import Path

    from emnist_estimators import EmnistCNN, EmnistMLP
    from emnist_estimators.datasets import read_idx
    from emnist_estimators.export import export_model

    X = read_idx(images).reshape(-1, 784)[:n]
    y = read_idx(labels)[:n]
    mark_baseline()
    clf = {"cnn": EmnistCNN, "mlp": EmnistMLP}[model](epochs=epochs, random_state=0)
    t = time.perf_counter()
    clf.fit(X, y)
    out = {"fit_s": time.perf_counter() - t, "precision": clf.dtype_policy_}
    out["accuracy"] = clf.score(
        read_idx(test_images).reshape(-1, 784), read_idx(test_labels)
    )
    folder = Path(folder)
    clf.save(folder / f"{model}.keras")
    for fmt, suffix in SUFFIX.items():
        t = time.perf_counter()
        export_model(clf, folder / f"{model}{suffix}", fmt, overwrite=True)
        out[f"export_{fmt}_s"] = time.perf_counter() - t
    return out


def _chunks(predict, batch: int):
    """``predict`` applied to ``batch`` rows at a time, labels concatenated."""

    def run(X):
        return np.concatenate(
            [predict(X[i : i + batch]) for i in range(0, len(X), batch)]
        )

    return run


def _load_runtime(runtime: str, folder, model: str, batch: int):
    """``(one, many)``: label functions for one image and for many images."""
    from pathlib import Path

    path = Path(folder) / model
    if runtime == "est.predict":
        from emnist_estimators import load_model

        est = load_model(f"{path}.keras")

        def predict(X):  # all rows at once: the estimator batches them itself
            return np.searchsorted(est.classes_, est.predict(X))

        return predict, predict
    if runtime == "Keras float32":
        from emnist_estimators import load_model

        net = load_model(f"{path}.keras")._float32_network()

        def one(X):
            return np.asarray(net.predict_on_batch(X)).argmax(1)

    elif runtime == "onnxruntime":
        import onnxruntime as ort

        session = ort.InferenceSession(
            f"{path}.onnx", providers=["CPUExecutionProvider"]
        )

        def one(X):
            return session.run(None, {"pixels": X})[0].argmax(1)

    elif runtime == "SavedModel":
        import tensorflow as tf

        # keep the loaded object: its variables go with it
        loaded = tf.saved_model.load(str(path))

        def one(X):
            return loaded.serve(X)["probabilities"].numpy().argmax(1)

    else:
        one = _litert(f"{path}.tflite")
    return one, _chunks(one, batch)


def _litert(path: str):
    """LiteRT's interpreter, its input resized only when the batch size changes."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=_cores())
    pixels = interpreter.get_input_details()[0]["index"]
    output = interpreter.get_output_details()[0]["index"]
    size = [None]

    def one(X):
        if size[0] != len(X):
            interpreter.resize_tensor_input(pixels, X.shape)
            interpreter.allocate_tensors()
            size[0] = len(X)
        interpreter.set_tensor(pixels, X)
        interpreter.invoke()
        return interpreter.get_tensor(output).argmax(1)

    return one


def _latency(fn, calls: int) -> float:
    """Median seconds of ``fn()``, after five warm-up calls."""
    return median_call_seconds(fn, calls, warmup=5)


def measure(
    *,
    runtime: str,
    model: str,
    folder: str,
    test_images: str,
    calls: int,
    batch: int,
    **_files,
) -> dict:
    """One runtime on one model: load, latency, throughput (child process)."""
    from emnist_estimators.datasets import read_idx

    X = np.ascontiguousarray(read_idx(test_images).reshape(-1, 784))
    mark_baseline()
    t = time.perf_counter()
    one, many = _load_runtime(runtime, folder, model, batch)
    load_s = time.perf_counter() - t
    latency = _latency(lambda: one(X[:1]), calls)
    many(X[:batch])  # warm-up at the batch size
    passes = []
    for _ in range(3):
        t = time.perf_counter()
        labels = many(X)
        passes.append(time.perf_counter() - t)
    return {
        "load_s": load_s,
        "latency_s": latency,
        "throughput_s": float(np.median(passes)),
        "labels": np.asarray(labels).tolist(),
    }


def _rows(runs: dict, n_images: int) -> list[dict]:
    rows = []
    for model in MODELS:
        reference = np.asarray(runs[model, "est.predict"][0]["labels"])
        base = runs[model, "est.predict"]
        base_lat, base_thr = (
            median_of(base, "latency_s"),
            median_of(base, "throughput_s"),
        )
        for runtime in RUNTIMES:
            r = runs[model, runtime]
            lat, thr = median_of(r, "latency_s"), median_of(r, "throughput_s")
            same = int((np.asarray(r[0]["labels"]) == reference).sum())
            rows.append(
                {
                    "model": f"Emnist{model.upper()}",
                    "runtime": runtime,
                    "1-image latency ms": round(lat * 1000, 3),
                    "latency vs predict": round(base_lat / lat, 2),
                    "10k images/s": round(n_images / thr),
                    "throughput vs predict": round(base_thr / thr, 2),
                    "load s": round(median_of(r, "load_s"), 2),
                    "labels = predict": f"{same}/{len(reference)}",
                }
            )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="training images")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--calls", type=int, default=200, help="1-image calls timed")
    parser.add_argument("--batch", type=int, default=1024, help="exported batches")
    args = parser.parse_args(argv)
    folder = WORK / "bench_export"
    folder.mkdir(parents=True, exist_ok=True)
    files = fashion_files()
    data = {**files, "n": args.n, "epochs": args.epochs, "folder": str(folder)}
    trained = {
        m: run_case(Case("bench_export.prepare", {**data, "model": m})) for m in MODELS
    }
    common = {
        "folder": str(folder),
        "test_images": files["test_images"],
        "calls": args.calls,
        "batch": args.batch,
    }
    cases = {
        (m, r): Case("bench_export.measure", {**common, "model": m, "runtime": r})
        for m in MODELS
        for r in RUNTIMES
    }
    runs = alternate(cases, args.repeats)
    rows = _rows(runs, 10_000)
    for row in rows:  # est.predict runs the trained network; the exports float32
        m = next(m for m in MODELS if row["model"] == f"Emnist{m.upper()}")
        trained_in = precision_label("auto", trained[m]["precision"])
        row["precision"] = (
            trained_in
            if row["runtime"] == "est.predict"
            else f"trained {trained_in}, runs in float32"
        )
    facts = "; ".join(
        f"Emnist{m.upper()}: {t['precision']}, trained {args.epochs} epoch(s) on "
        f"{args.n:,} images ({t['fit_s']:.0f} s), test accuracy {t['accuracy']:.4f}, "
        "export s onnx/SavedModel/LiteRT "
        f"{t['export_onnx_s']:.1f}/{t['export_tf_saved_model_s']:.1f}/"
        f"{t['export_litert_s']:.1f}"
        for m, t in trained.items()
    )
    write_results(
        "bench_export",
        rows,
        command="python -m benchmarks.bench_export " + " ".join(argv or sys.argv[1:]),
        notes=(
            f"Medians of {args.repeats} alternating runs, each in a fresh process; "
            f"latency: median of {args.calls} calls on one image; throughput: the "
            f"10,000 Fashion-MNIST test images, median of 3 passes, exported "
            f"runtimes in batches of {args.batch}; {_cores()} cores, every runtime "
            f"at its default threads (LiteRT: {_cores()}). {facts}. The exported "
            "models compute in float32; 'labels = predict' counts the test labels "
            "equal to est.predict's."
        ),
    )


if __name__ == "__main__":
    main()
