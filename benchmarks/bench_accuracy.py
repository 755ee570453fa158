"""Accuracy under a CPU budget: our defaults vs the report's recipes vs sklearn.

Each row trains one model in a fresh process on real data and reports its
training wall time and test accuracy, side by side:

- ``EmnistMLP()`` / ``EmnistCNN()`` with the package defaults;
- a tuned recipe (``--recipes``: wider MLP with cosine decay; CNN with batch
  normalisation, light augmentation and cosine decay);
- the original report's recipes in plain Keras (same layers, 10 epochs, no
  orientation fix: EMNIST images fed transposed, as the report did);
- scikit-learn's ``MLPClassifier`` (defaults, and (512, 512) with early
  stopping) on the same pixels scaled to [0, 1].

Datasets: the EMNIST protocol (official bymerge test split, 85/15 stratified,
random_state=0) and Fashion-MNIST (60k/10k), from ../shared/data.

Run: ``python -m benchmarks.bench_accuracy [--datasets emnist fashion] [--models ...]``
"""

from __future__ import annotations

import argparse
import sys

from benchmarks._harness import SHARED_DATA, run_child, write_results

SETUP = """
import numpy as np
from sklearn.model_selection import train_test_split
from emnist_estimators import load_emnist, EmnistMLP, EmnistCNN
from emnist_estimators.datasets import read_idx
if {dataset!r} == "emnist":
    X, y = load_emnist("bymerge", "test", data_home={emnist!r}, download=False,
                       return_X_y=True, orientation={orientation!r})
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.15, stratify=y,
                                              random_state=0)
else:
    f = {fashion!r}
    X_tr = read_idx(f + "/train-images-idx3-ubyte.gz").reshape(-1, 784)
    y_tr = read_idx(f + "/train-labels-idx1-ubyte.gz")
    X_te = read_idx(f + "/t10k-images-idx3-ubyte.gz").reshape(-1, 784)
    y_te = read_idx(f + "/t10k-labels-idx1-ubyte.gz")
"""

MODELS = {
    "EmnistMLP defaults": "clf = EmnistMLP(random_state=0)",
    "EmnistCNN defaults": "clf = EmnistCNN(random_state=0)",
    "EmnistMLP tuned recipe": (
        "clf = EmnistMLP(hidden_layer_sizes=(1024, 1024), dropout=0.4, epochs=40, "
        "lr_schedule='cosine', random_state=0)"
    ),
    "EmnistCNN tuned recipe": (
        "clf = EmnistCNN(batch_norm=True, augment=True, epochs=20, "
        "lr_schedule='cosine', random_state=0)"
    ),
    "report MLP (plain Keras)": "clf = report_mlp()",
    "report CNN (plain Keras)": "clf = report_cnn()",
    "sklearn MLPClassifier defaults": (
        "from sklearn.neural_network import MLPClassifier\n"
        "clf = Scaled(MLPClassifier(random_state=0))"
    ),
    "sklearn MLPClassifier (512, 512) early stopping": (
        "from sklearn.neural_network import MLPClassifier\n"
        "clf = Scaled(MLPClassifier((512, 512), early_stopping=True, random_state=0))"
    ),
}

HELPERS = """
import keras
class Scaled:
    '''sklearn model on float pixels in [0, 1], as such users would feed it.'''
    def __init__(self, model): self.model = model
    def fit(self, X, y): self.model.fit(X / 255.0, y); return self
    def score(self, X, y): return self.model.score(X / 255.0, y)
class KerasRecipe:
    '''The report's recipe: one-hot labels, categorical cross-entropy, 10 epochs.'''
    def __init__(self, build): self.build = build
    def fit(self, X, y):
        keras.utils.set_random_seed(0)
        self.classes = np.unique(y)
        self.model = self.build(len(self.classes))
        self.model.compile(optimizer=keras.optimizers.Adam(1e-3),
                           loss="categorical_crossentropy", metrics=["accuracy"])
        Y = keras.utils.to_categorical(np.searchsorted(self.classes, y))
        self.model.fit(X / 255.0, Y, batch_size=256, epochs=10, validation_split=0.1,
                       verbose=0)
        return self
    def score(self, X, y):
        pred = self.classes[self.model.predict(X / 255.0, verbose=0).argmax(1)]
        return float((pred == y).mean())
def report_mlp():
    L = keras.layers
    return KerasRecipe(lambda k: keras.Sequential([
        keras.Input((784,)), L.Dense(512, activation="relu"), L.Dropout(0.2),
        L.Dense(512, activation="relu"), L.Dropout(0.2), L.Dense(k, activation="softmax")]))
def report_cnn():
    L = keras.layers
    def block(f):
        return [L.Conv2D(f, 3, padding="same"), L.LeakyReLU(0.3),
                L.Conv2D(f, 3, padding="same"), L.LeakyReLU(0.3),
                L.MaxPooling2D(2), L.Dropout(0.25)]
    return KerasRecipe(lambda k: keras.Sequential([
        keras.Input((784,)), L.Reshape((28, 28, 1)), *block(32), *block(64),
        L.Flatten(), L.Dense(256, activation="relu"), L.Dropout(0.25),
        L.Dense(128, activation="relu"), L.Dropout(0.25),
        L.Dense(k, activation="softmax")]))
"""

BODY = """
{model_code}
t = time.perf_counter(); clf.fit(X_tr, y_tr); seconds = time.perf_counter() - t
report(seconds=seconds, accuracy=float(clf.score(X_te, y_te)), n_train=len(y_tr))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["emnist", "fashion"],
                        choices=["emnist", "fashion"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS),
                        metavar="MODEL")
    args = parser.parse_args(argv)
    rows = []
    for dataset in args.datasets:
        folder = SHARED_DATA / ("emnist" if dataset == "emnist" else "fashion-mnist")
        if not folder.is_dir():
            print(f"skipping {dataset}: {folder} is absent", file=sys.stderr)
            continue
        for name in args.models:
            setup = SETUP.format(
                dataset=dataset, emnist=str(SHARED_DATA / "emnist"),
                fashion=str(SHARED_DATA / "fashion-mnist"),
                orientation="raw" if name.startswith("report") else "upright",
            ) + HELPERS
            result = run_child(setup, BODY.format(model_code=MODELS[name]), timeout=3600)
            rows.append({
                "dataset": "EMNIST protocol" if dataset == "emnist" else "Fashion-MNIST",
                "model": name,
                "train images": result["n_train"],
                "fit s": round(result["seconds"], 1),
                "test accuracy": round(result["accuracy"], 4),
                "peak RSS MiB": round(result["peak_rss_mib"]),
            })
            print(rows[-1], flush=True)
    write_results(
        "bench_accuracy",
        rows,
        command="python -m benchmarks.bench_accuracy " + " ".join(argv or sys.argv[1:]),
        notes="EMNIST protocol: official bymerge test split, 85/15 stratified, "
        "random_state=0, upright except the report's recipes (fed as stored).",
    )


if __name__ == "__main__":
    main()
