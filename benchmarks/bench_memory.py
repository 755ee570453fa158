"""Peak memory of training at EMNIST bymerge/byclass scale (814,255 images).

A generated uint8 dataset of that size (real bymerge glyphs tiled when
../shared/data is present) is fitted by EmnistCNN and by
Pipeline(PixelScaler, EmnistCNN), each in a fresh process; the fit stops after
``--batches`` training batches: the data is set up (validated, split into
row numbers) before the first batch, and each batch is read from the
memory map as Keras asks for it, so later batches add no data. Reported:
peak RSS (VmHWM) and the uint8 array's own size. Goals: EmnistCNN <= 1.5 GiB
and the Pipeline <= 4 GiB (issue 17; the report needed > 8 GB for float64
frames).

Run: ``python -m benchmarks.bench_memory [--batches 50]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks._child import mark_baseline
from benchmarks._harness import Case, precision_label, run_case, write_results
from benchmarks.bench_data import bymerge_size_files


def fit_at_scale(*, images: str, labels: str, batches: int, pipeline: bool) -> dict:
    """Fit EmnistCNN (alone or after PixelScaler) for ``batches`` batches.

    Runs in the child process; the data is memory-mapped uint8.
    """
    from sklearn.pipeline import Pipeline

    from emnist_estimators import EmnistCNN, PixelScaler
    from emnist_estimators.datasets import read_idx
    from emnist_estimators.datasets.cache import load_cached_images

    X = load_cached_images(Path(images)).reshape(-1, 784)  # memory-mapped uint8
    y = read_idx(labels)
    stop_after = _stop_after_class(batches)
    mark_baseline()
    t = time.perf_counter()
    clf = EmnistCNN(epochs=1, random_state=0)
    if pipeline:
        Pipeline([("scale", PixelScaler()), ("clf", clf)]).fit(
            X, y, clf__callbacks=[stop_after()]
        )
    else:
        clf.fit(X, y, callbacks=[stop_after()])
    return {"seconds": time.perf_counter() - t, "data_mib": X.nbytes / 2**20}


def _stop_after_class(batches: int) -> type:
    """A Keras callback class that ends training after ``batches`` batches."""
    import keras

    class StopAfter(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 >= batches:
                self.model.stop_training = True

    return StopAfter


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args(argv)
    images, labels, _ = bymerge_size_files()
    files = {"images": str(images), "labels": str(labels), "batches": args.batches}
    rows = []
    for name, pipeline in (
        ("EmnistCNN on uint8", False),
        ("Pipeline(PixelScaler, EmnistCNN)", True),
    ):
        case = Case("bench_memory.fit_at_scale", {**files, "pipeline": pipeline})
        r = run_case(case, timeout=3600)
        rows.append(
            {
                "route": name,
                "images": 814_255,
                "uint8 data MiB": round(r["data_mib"]),
                "peak RSS MiB": round(r["peak_rss_mib"]),
                "peak / data": round(r["peak_rss_mib"] / r["data_mib"], 2),
                "goal": "<= 1536 MiB" if not pipeline else "<= 4096 MiB",
            }
        )
        print(rows[-1], flush=True)
    write_results(
        "bench_memory",
        rows,
        precision=precision_label("auto"),
        command="python -m benchmarks.bench_memory " + " ".join(argv or sys.argv[1:]),
        notes="Peak RSS is VmHWM of the child process (imports included).",
    )


if __name__ == "__main__":
    main()
