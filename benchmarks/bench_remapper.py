"""EmnistCNN epoch time with Keras' LeakyReLU (remapper fails) vs FusableLeakyReLU.

Keras' LeakyReLU makes Grappler's remapper fail on every EmnistCNN training
graph (``remapper failed: INVALID_ARGUMENT ... LeakyReluGrad``), so the pass
is skipped and none of its fusions happen; ``FusableLeakyReLU`` (the same
function and gradient, its gradient read from the output) lets it through.
The same EmnistCNN (defaults, seed 0; one seed per repeat with ``--vary-seed``)
trains on real EMNIST images (the
bymerge test split, the only full EMNIST image file available here) with
each layer, alternating in fresh processes; reported: seconds per epoch
(wall and process CPU, epochs after the first, which also traces the graph)
and the accuracy on the next ``n_test`` images.

Run: ``python -m benchmarks.bench_remapper [--n 10000] [--epochs 3] [--repeats 3]
[--vary-seed]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from benchmarks._child import EpochTimer, mark_baseline
from benchmarks._harness import (
    Case,
    alternate,
    bymerge_test_files,
    median_of,
    precision_label,
    write_results,
)

FORMS = {
    "keras": "Keras LeakyReLU (before: remapper fails)",
    "fusable": "FusableLeakyReLU (after)",
}


def fit_epochs(
    *,
    form: str,
    precision: str,
    images: str,
    labels: str,
    n: int,
    n_test: int,
    epochs: int,
    random_state: int = 0,
) -> dict:
    """Train EmnistCNN defaults with the LeakyReLU ``form``; time each epoch.

    Runs in the child process. ``form='keras'`` builds the network with
    Keras' own LeakyReLU, as before ``FusableLeakyReLU``.
    """
    import keras

    from emnist_estimators import EmnistCNN, architectures
    from emnist_estimators.datasets import read_idx

    if form == "keras":
        architectures.FusableLeakyReLU = keras.layers.LeakyReLU
    # stored transposed, like NIST's files: upright for the network
    X = read_idx(images)[: n + n_test].transpose(0, 2, 1).reshape(-1, 784)
    y = read_idx(labels)[: n + n_test]
    timer = EpochTimer()
    mark_baseline()
    clf = EmnistCNN(epochs=epochs, random_state=random_state, precision=precision)
    clf.fit(X[:n], y[:n], callbacks=[timer.callback()])
    later = slice(1, None)  # the first epoch also traces and optimises the graph
    return {
        "seconds_per_epoch": statistics.median(timer.wall[later]),
        "cpu_seconds_per_epoch": statistics.median(timer.cpu[later]),
        "first_epoch_seconds": timer.wall[0],
        "epoch_seconds": timer.wall,
        "accuracy": clf.score(X[n:], y[n:]),
        "policy": clf.dtype_policy_,
        "leaky_layer": type(clf.model_.get_layer("leaky_0_0")).__name__,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="auto")
    parser.add_argument(
        "--vary-seed",
        action="store_true",
        help="repeat i trains with random_state=i (both forms): accuracy "
        "differences between forms against the spread between seeds",
    )
    args = parser.parse_args(argv)
    data = {
        **bymerge_test_files(),
        "n": args.n,
        "n_test": args.n_test,
        "epochs": args.epochs,
        "precision": args.precision,
    }
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {form: [] for form in FORMS}
    for i in range(args.repeats):
        seed = i if args.vary_seed else 0
        cases = {
            form: Case(
                "bench_remapper.fit_epochs",
                {"form": form, "random_state": seed, **data},
            )
            for form in FORMS
        }
        for form, done in alternate(cases, 1).items():
            runs[form] += done
    load_after = os.getloadavg()[0]
    rows = _rows(runs)
    write_results(
        "bench_remapper",
        rows,
        precision=precision_label(args.precision, runs["fusable"][0]["policy"]),
        command="python -m benchmarks.bench_remapper "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        notes=(
            f"EmnistCNN defaults (precision={args.precision!r}, policy "
            f"{runs['fusable'][0]['policy']}), {args.n:,} training images and "
            f"the next {args.n_test:,} scored, from EMNIST bymerge test; "
            f"{args.epochs} epochs; medians of {args.repeats} alternating runs "
            + (
                f"(run i with random_state=i, i < {args.repeats})"
                if args.vary_seed
                else "(random_state=0)"
            )
            + ", each epoch after the first. Measured under contention: the 2 cores "
            f"are shared (1-minute load average {load_before:.1f} before, "
            f"{load_after:.1f} after), so wall seconds are noisy; CPU seconds "
            "count the work done."
        ),
    )


def _rows(runs: dict[str, list[dict]]) -> list[dict]:
    base = median_of(runs["keras"], "seconds_per_epoch")
    base_cpu = median_of(runs["keras"], "cpu_seconds_per_epoch")
    return [
        {
            "LeakyReLU": FORMS[form],
            "layer class": r[0]["leaky_layer"],
            "s per epoch (median)": round(median_of(r, "seconds_per_epoch"), 2),
            "speed-up": round(base / median_of(r, "seconds_per_epoch"), 2),
            "CPU s per epoch (median)": round(median_of(r, "cpu_seconds_per_epoch"), 2),
            "CPU speed-up": round(base_cpu / median_of(r, "cpu_seconds_per_epoch"), 2),
            "first epoch s (median)": round(median_of(r, "first_epoch_seconds"), 2),
            "accuracy (median)": round(median_of(r, "accuracy"), 4),
            "accuracies": [round(x["accuracy"], 4) for x in r],
            "s per epoch": [round(x["seconds_per_epoch"], 2) for x in r],
            "runs": len(r),
        }
        for form, r in runs.items()
    ]


if __name__ == "__main__":
    main()
