"""One training recipe on real data, with its test accuracy after every epoch.

Used to choose the defaults and to measure what each change buys (the
"What each change buys" table in docs/performance.rst): a recipe is any
estimator expression, trained on the EMNIST protocol (official bymerge test
split, 85/15 stratified, random_state=0, upright) or on Fashion-MNIST, with
the test accuracy and the training seconds (scoring excluded) printed after
each epoch. Each run appends one row to ``results/bench_recipes.json`` and
rewrites ``results/bench_recipes.md``.

Run: ``python -m benchmarks.bench_recipes fashion "EmnistCNN(epochs=20, random_state=0)"``
"""

from __future__ import annotations

import argparse
import json

from benchmarks._harness import RESULTS, SHARED_DATA, run_child, write_results

SETUP = """
import numpy as np, keras
from sklearn.model_selection import train_test_split
from emnist_estimators import load_emnist, EmnistMLP, EmnistCNN
from emnist_estimators.datasets import read_idx
if {dataset!r} == "emnist":
    X, y = load_emnist("bymerge", "test", data_home={emnist!r}, download=False,
                       return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.15, stratify=y,
                                              random_state=0)
else:
    f = {fashion!r}
    X_tr = read_idx(f + "/train-images-idx3-ubyte.gz").reshape(-1, 784)
    y_tr = read_idx(f + "/train-labels-idx1-ubyte.gz")
    X_te = read_idx(f + "/t10k-images-idx3-ubyte.gz").reshape(-1, 784)
    y_te = read_idx(f + "/t10k-labels-idx1-ubyte.gz")
class Curve(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.start, self.scoring, self.points = time.perf_counter(), 0.0, []
    def on_epoch_end(self, epoch, logs=None):
        t = time.perf_counter()
        acc = float(clf.score(X_te, y_te))
        self.points.append((round(t - self.start - self.scoring, 1), round(acc, 4)))
        print(json.dumps({{"epoch": epoch + 1, "train_s": self.points[-1][0],
                          "test_accuracy": acc}}), file=sys.stderr, flush=True)
        self.scoring += time.perf_counter() - t
"""

BODY = """
clf = {recipe}
curve = Curve()
t = time.perf_counter(); clf.fit(X_tr, y_tr, callbacks=[curve])
report(seconds=time.perf_counter() - t - curve.scoring, accuracy=float(clf.score(X_te, y_te)),
       curve=curve.points, n_train=len(y_tr))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["emnist", "fashion"])
    parser.add_argument("recipe", help='an estimator expression, e.g. "EmnistMLP()"')
    args = parser.parse_args(argv)
    setup = SETUP.format(dataset=args.dataset, emnist=str(SHARED_DATA / "emnist"),
                         fashion=str(SHARED_DATA / "fashion-mnist"))
    result = run_child(setup, BODY.format(recipe=args.recipe), timeout=3600)
    path = RESULTS / "bench_recipes.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    rows.append({
        "dataset": "EMNIST protocol" if args.dataset == "emnist" else "Fashion-MNIST",
        "recipe": args.recipe,
        "fit s": round(result["seconds"], 1),
        "test accuracy": round(result["accuracy"], 4),
        "curve (s, test accuracy) per epoch": result["curve"],
    })
    write_results(
        "bench_recipes",
        rows,
        command='python -m benchmarks.bench_recipes DATASET "RECIPE" (one row per run)',
        notes="fit s excludes the per-epoch test scoring (curves in the JSON file).",
    )


if __name__ == "__main__":
    main()
