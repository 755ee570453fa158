"""Pruning pays: the same optuna search with the median pruner vs without.

Real Fashion-MNIST training images, an EmnistMLP search over batch size,
dropout and learning rate (the default space), 20 trials each, the same TPE
seed and hold-out split; each study runs in its own child process. Reported
side by side: epochs trained, wall time, best hold-out accuracy.
Goal: pruning spends <= 50% of the compute and its best score is within 0.5
points of the unpruned search.

Run: ``python -m benchmarks.bench_tuning [--trials 20] [--epochs 10]``
"""

from __future__ import annotations

import argparse
import sys

from benchmarks._harness import fashion_files, run_child, write_results

SETUP = """
import numpy as np
from emnist_estimators import EmnistMLP
from emnist_estimators.datasets import read_idx
from emnist_estimators.tuning import EmnistSearchCV
X = read_idx({images!r}).reshape(-1, 784)
y = read_idx({labels!r})
"""

BODY = """
t = time.perf_counter()
# The report's network and constant rate (the defaults when this was measured).
search = EmnistSearchCV(EmnistMLP(hidden_layer_sizes=(512, 512), lr_schedule="constant",
                                  epochs={epochs}, validation_fraction=0),
                        n_trials={trials}, pruner={pruner!r}, random_state=0,
                        refit=False).fit(X, y)
seconds = time.perf_counter() - t
r = search.cv_results_
report(seconds=seconds, epochs=int(r["epochs"].sum()), best=search.best_score_,
       complete=int((r["state"] == "COMPLETE").sum()),
       pruned=int((r["state"] == "PRUNED").sum()))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    setup = SETUP.format(**fashion_files())
    runs = {
        pruner: run_child(
            setup,
            BODY.format(epochs=args.epochs, trials=args.trials, pruner=pruner),
            timeout=7200,
        )
        for pruner in ("none", "median")
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
