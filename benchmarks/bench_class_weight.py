"""What ``class_weight="balanced"`` does on EMNIST's imbalanced bymerge classes.

The EMNIST protocol (the official bymerge test split, 116,323 images in 47
classes whose counts differ up to ~30x, divided 85/15 stratified with
random_state=0): each model is trained twice, with ``class_weight=None`` and
``"balanced"``, in fresh processes, and scored once on the held-out 15% for
accuracy, balanced accuracy (mean recall per class), macro-F1 and the lowest
recall of any class.

Run: ``python -m benchmarks.bench_class_weight [--models mlp cnn] [--epochs N]``
"""

from __future__ import annotations

import argparse
import sys

from benchmarks._child import mark_baseline
from benchmarks._harness import Case, precision_label, run_case, write_results

MODELS = {"mlp": "EmnistMLP", "cnn": "EmnistCNN"}


def fit_and_score(*, model: str, class_weight: str | None, epochs: int | None) -> dict:
    """Train ``model`` (defaults) with ``class_weight``; score the test part.

    Runs in the child process.
    """
    import time

    import numpy as np
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        recall_score,
    )

    import emnist_estimators
    from benchmarks._recipes import load_accuracy_data

    X_tr, X_te, y_tr, y_te = load_accuracy_data("emnist")
    params = {"random_state": 0, "class_weight": class_weight}
    if epochs:
        params["epochs"] = epochs
    clf = getattr(emnist_estimators, MODELS[model])(**params)
    mark_baseline()
    start = time.perf_counter()
    clf.fit(X_tr, y_tr)
    seconds = time.perf_counter() - start
    pred = clf.predict(X_te)
    recall = recall_score(y_te, pred, average=None)
    counts = np.bincount(y_tr)
    return {
        "accuracy": accuracy_score(y_te, pred),
        "balanced_accuracy": balanced_accuracy_score(y_te, pred),
        "macro_f1": f1_score(y_te, pred, average="macro"),
        "min_recall": float(recall.min()),
        "min_recall_class": int(recall.argmin()),
        "largest_to_smallest": float(counts.max() / counts[counts > 0].min()),
        "n_train": len(y_tr),
        "n_test": len(y_te),
        "epochs": clf.n_iter_,
        "train_seconds": seconds,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["mlp"])
    parser.add_argument("--epochs", type=int, default=None, help="default: model's")
    args = parser.parse_args(argv)
    rows = []
    for model in args.models:
        for weight in (None, "balanced"):
            r = run_case(
                Case(
                    "bench_class_weight.fit_and_score",
                    {"model": model, "class_weight": weight, "epochs": args.epochs},
                )
            )
            rows.append(
                {
                    "model": MODELS[model],
                    "class_weight": str(weight),
                    "epochs": r["epochs"],
                    "accuracy": round(r["accuracy"], 4),
                    "balanced accuracy": round(r["balanced_accuracy"], 4),
                    "macro-F1": round(r["macro_f1"], 4),
                    "lowest class recall": round(r["min_recall"], 4),
                    "train s": round(r["train_seconds"], 1),
                }
            )
            print(rows[-1], flush=True)
    write_results(
        "bench_class_weight",
        rows,
        precision=precision_label("auto"),
        command="python -m benchmarks.bench_class_weight "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        notes=(
            "EMNIST protocol: the official bymerge test split, 85/15 stratified "
            f"(random_state=0): {r['n_train']:,} training images, {r['n_test']:,} "
            f"scored once; the largest training class has "
            f"{r['largest_to_smallest']:.1f}x the images of the smallest. Each "
            "model with its defaults and random_state=0, in a fresh process; "
            "balanced accuracy is the mean of the per-class recalls."
        ),
    )


if __name__ == "__main__":
    main()
