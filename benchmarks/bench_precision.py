"""Mixed bfloat16 vs float32: CNN training speed and accuracy on this CPU.

The same EmnistCNN (report recipe, seed 0) trained on real Fashion-MNIST
images with ``precision="float32"`` and ``precision="mixed_bfloat16"``,
alternating in fresh processes; reported: seconds per epoch and test accuracy.
``precision="auto"`` picks bfloat16 only where the processor computes it
natively (AVX512-BF16 or AMX), because emulated bfloat16 is slower.

Run: ``python -m benchmarks.bench_precision [--n 20000] [--epochs 2] [--repeats 2]``
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks._child import mark_baseline
from benchmarks._harness import Case, alternate, fashion_files, median_of, write_results


def fit_and_score(
    *,
    precision: str,
    images: str,
    labels: str,
    test_images: str,
    test_labels: str,
    n: int,
    epochs: int,
) -> dict:
    """Train EmnistCNN with ``precision``; time its epochs, score the test set.

    Runs in the child process.
    """
    from emnist_estimators import EmnistCNN
    from emnist_estimators.datasets import read_idx

    X = read_idx(images).reshape(-1, 784)[:n]
    y = read_idx(labels)[:n]
    X_test = read_idx(test_images).reshape(-1, 784)
    y_test = read_idx(test_labels)
    mark_baseline()
    clf = EmnistCNN(
        epochs=epochs,
        validation_fraction=0,
        random_state=0,
        precision=precision,
        lr_schedule="constant",
    )
    t = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - t
    return {
        "seconds_per_epoch": seconds / epochs,
        "accuracy": clf.score(X_test, y_test),
        "policy": clf.dtype_policy_,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    data = {**fashion_files(), "n": args.n, "epochs": args.epochs}
    cases = {
        p: Case("bench_precision.fit_and_score", {"precision": p, **data})
        for p in ("float32", "mixed_bfloat16")
    }
    runs = alternate(cases, args.repeats)
    base = median_of(runs["float32"], "seconds_per_epoch")
    rows = [
        {
            "precision": name,
            "s per epoch (median)": round(median_of(r, "seconds_per_epoch"), 2),
            "speed-up vs float32": round(base / median_of(r, "seconds_per_epoch"), 2),
            "test accuracy (median)": round(median_of(r, "accuracy"), 4),
            "runs": len(r),
        }
        for name, r in runs.items()
    ]
    write_results(
        "bench_precision",
        rows,
        command="python -m benchmarks.bench_precision "
        + " ".join(argv or sys.argv[1:]),
        notes=f"EmnistCNN defaults, {args.n:,} training images, {args.epochs} epochs, "
        "10,000 test images.",
    )


if __name__ == "__main__":
    main()
