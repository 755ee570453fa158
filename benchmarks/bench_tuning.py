"""Pruning pays: the same optuna search under each pruner vs without one.

Real Fashion-MNIST training images, an EmnistMLP search over batch size,
dropout and learning rate (the default space), 20 trials each, the same TPE
seed and hold-out split; each study runs in its own child process. Pruners:
none, median, percentile (best quarter), successive halving, Hyperband.
Reported side by side: epochs trained, wall time, best hold-out accuracy.
Goal: pruning spends <= 50% of the compute and its best score is within 0.5
points of the unpruned search.

Run: ``python -m benchmarks.bench_tuning [--trials 20] [--epochs 10] [--pruners ...]``
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks._child import mark_baseline
from benchmarks._harness import (
    Case,
    fashion_files,
    precision_label,
    run_case,
    write_results,
)


def search(
    *, pruner: str, images: str, labels: str, trials: int, epochs: int, **_files
) -> dict:
    """Run one EmnistSearchCV study with ``pruner``; count what it trained.

    Runs in the child process.
    """
    from emnist_estimators import EmnistMLP
    from emnist_estimators.datasets import read_idx
    from emnist_estimators.tuning import EmnistSearchCV

    X = read_idx(images).reshape(-1, 784)
    y = read_idx(labels)
    mark_baseline()
    t = time.perf_counter()
    # The report's network, constant rate and plain loss (what the stored
    # results measured; dropout is searched).
    estimator = EmnistMLP(
        hidden_layer_sizes=(512, 512),
        lr_schedule="constant",
        label_smoothing=0.0,
        epochs=epochs,
        validation_fraction=0,
    )
    study = EmnistSearchCV(
        estimator, n_trials=trials, pruner=pruner, random_state=0, refit=False
    ).fit(X, y)
    seconds = time.perf_counter() - t
    r = study.cv_results_
    return {
        "seconds": seconds,
        "epochs": int(r["epochs"].sum()),
        "best": study.best_score_,
        "complete": int((r["state"] == "COMPLETE").sum()),
        "pruned": int((r["state"] == "PRUNED").sum()),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--pruners",
        nargs="+",
        default=["median", "percentile", "halving", "hyperband"],
        help="pruners compared with the unpruned search (always run first)",
    )
    args = parser.parse_args(argv)
    data = {**fashion_files(), "trials": args.trials, "epochs": args.epochs}
    runs = {
        pruner: run_case(
            Case("bench_tuning.search", {"pruner": pruner, **data}), timeout=7200
        )
        for pruner in ("none", *args.pruners)
    }
    base = runs["none"]
    rows = [
        {
            "pruner": name,
            "trials": args.trials,
            "complete": r["complete"],
            "pruned": r["pruned"],
            "epochs trained": r["epochs"],
            "wall s": round(r["seconds"], 1),
            "compute vs no pruning (epochs)": round(r["epochs"] / base["epochs"], 3),
            "compute vs no pruning (time)": round(r["seconds"] / base["seconds"], 3),
            "best hold-out accuracy": round(r["best"], 4),
            "points behind no pruning": round(100 * (base["best"] - r["best"]), 2),
        }
        for name, r in runs.items()
    ]
    write_results(
        "bench_tuning",
        rows,
        precision=precision_label("auto"),
        command="python -m benchmarks.bench_tuning " + " ".join(argv or sys.argv[1:]),
        notes=(
            f"EmnistMLP (512, 512), constant learning rate, {args.epochs} epochs "
            "per trial, 20% stratified hold-out of the 60,000 Fashion-MNIST "
            "training images, TPE seed 0. "
            "Goal: compute <= 0.5, points behind <= 0.5."
        ),
    )


if __name__ == "__main__":
    main()
