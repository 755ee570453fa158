"""The models and data of the accuracy benchmarks, run in child processes.

``bench_accuracy.py`` trains each of :data:`MODELS` and ``bench_recipes.py``
any estimator expression, on the same data (:func:`load_accuracy_data`),
recording the test accuracy after every epoch. Only the functions run in the
child import TensorFlow; the parent reads the model names.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from benchmarks._child import mark_baseline
from benchmarks._harness import SHARED_DATA


def load_accuracy_data(dataset: str, orientation: str = "upright") -> tuple:
    """Return ``X_tr, X_te, y_tr, y_te`` for an accuracy run.

    'emnist': the EMNIST protocol (official bymerge test split, 85/15
    stratified, random_state=0); 'fashion': Fashion-MNIST's 60k/10k files;
    'balanced': EMNIST balanced's official train/test files from EMNIST_DATA.
    """
    from sklearn.model_selection import train_test_split

    from emnist_estimators import load_emnist
    from emnist_estimators.datasets import read_idx

    if dataset == "emnist":
        X, y = load_emnist(
            "bymerge",
            "test",
            data_home=str(SHARED_DATA / "emnist"),
            download=False,
            return_X_y=True,
            orientation=orientation,
        )
        return train_test_split(X, y, test_size=0.15, stratify=y, random_state=0)
    if dataset == "balanced":  # official train/test, from EMNIST_DATA
        kw = {"download": False, "return_X_y": True, "orientation": orientation}
        X_tr, y_tr = load_emnist("balanced", "train", **kw)
        X_te, y_te = load_emnist("balanced", "test", **kw)
        return X_tr, X_te, y_tr, y_te
    f = str(SHARED_DATA / "fashion-mnist")
    X_tr = read_idx(f + "/train-images-idx3-ubyte.gz").reshape(-1, 784)
    y_tr = read_idx(f + "/train-labels-idx1-ubyte.gz")
    X_te = read_idx(f + "/t10k-images-idx3-ubyte.gz").reshape(-1, 784)
    y_te = read_idx(f + "/t10k-labels-idx1-ubyte.gz")
    return X_tr, X_te, y_tr, y_te


class Scaled:
    """A scikit-learn model on float pixels in [0, 1], as such users feed it."""

    def __init__(self, model):
        self.model = model

    def fit(self, X, y):
        self.model.fit(X / 255.0, y)
        return self

    def score(self, X, y):
        return self.model.score(X / 255.0, y)


class KerasRecipe:
    """The report's recipe: one-hot labels, categorical cross-entropy, 10 epochs."""

    def __init__(self, build: Callable):
        self.build = build

    def fit(self, X, y, callbacks=None):
        import keras

        keras.utils.set_random_seed(0)
        self.classes = np.unique(y)
        self.model = self.build(len(self.classes))
        self.model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        Y = keras.utils.to_categorical(np.searchsorted(self.classes, y))
        self.model.fit(
            X / 255.0,
            Y,
            batch_size=256,
            epochs=10,
            validation_split=0.1,
            verbose=0,
            callbacks=callbacks,
        )
        return self

    def score(self, X, y):
        pred = self.classes[self.model.predict(X / 255.0, verbose=0).argmax(1)]
        return float((pred == y).mean())


def curve_callback(clf, X, y):
    """Return a Keras callback that scores ``clf`` on (X, y) after each epoch.

    Its ``points`` are ``(training seconds, test accuracy)``; the seconds
    spent scoring (``scoring``) are excluded from the training time.
    """
    import keras

    class Curve(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.points, self.scoring = [], 0.0

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            t = time.perf_counter()
            acc = float(clf.score(X, y))
            elapsed = t - self.start - self.scoring
            self.points.append((round(elapsed, 2), round(acc, 4)))
            self.scoring += time.perf_counter() - t

    return Curve()


def report_mlp() -> KerasRecipe:
    """The original report's MLP: 784-512-512-k, dropout 0.2."""
    import keras

    L = keras.layers
    return KerasRecipe(
        lambda k: keras.Sequential(
            [
                keras.Input((784,)),
                L.Dense(512, activation="relu"),
                L.Dropout(0.2),
                L.Dense(512, activation="relu"),
                L.Dropout(0.2),
                L.Dense(k, activation="softmax"),
            ]
        )
    )


def report_cnn() -> KerasRecipe:
    """The original report's CNN: two blocks of 2x [Conv2D + LeakyReLU], dense."""
    import keras

    L = keras.layers

    def block(f):
        return [
            L.Conv2D(f, 3, padding="same"),
            L.LeakyReLU(0.3),
            L.Conv2D(f, 3, padding="same"),
            L.LeakyReLU(0.3),
            L.MaxPooling2D(2),
            L.Dropout(0.25),
        ]

    return KerasRecipe(
        lambda k: keras.Sequential(
            [
                keras.Input((784,)),
                L.Reshape((28, 28, 1)),
                *block(32),
                *block(64),
                L.Flatten(),
                L.Dense(256, activation="relu"),
                L.Dropout(0.25),
                L.Dense(128, activation="relu"),
                L.Dropout(0.25),
                L.Dense(k, activation="softmax"),
            ]
        )
    )


def _mlp_defaults():
    from emnist_estimators import EmnistMLP

    return EmnistMLP(random_state=0)


def _cnn_defaults():
    from emnist_estimators import EmnistCNN

    return EmnistCNN(random_state=0)


def _mlp_report_settings():
    from emnist_estimators import EmnistMLP

    return EmnistMLP(
        hidden_layer_sizes=(512, 512),
        dropout=0.2,
        epochs=10,
        lr_schedule="constant",
        random_state=0,
    )


def _sklearn_mlp():
    from sklearn.neural_network import MLPClassifier

    return Scaled(MLPClassifier(random_state=0))


def _sklearn_mlp_512():
    from sklearn.neural_network import MLPClassifier

    return Scaled(MLPClassifier((512, 512), early_stopping=True, random_state=0))


# The rows of bench_accuracy, by name.
MODELS: dict[str, Callable] = {
    "EmnistMLP defaults": _mlp_defaults,
    "EmnistCNN defaults": _cnn_defaults,
    "EmnistMLP, report settings": _mlp_report_settings,
    "report MLP (plain Keras)": report_mlp,
    "report CNN (plain Keras)": report_cnn,
    "sklearn MLPClassifier defaults": _sklearn_mlp,
    "sklearn MLPClassifier (512, 512) early stopping": _sklearn_mlp_512,
}


def fit_model(*, dataset: str, orientation: str, model: str) -> dict:
    """Train ``MODELS[model]``; return its time, test accuracy and curve.

    Runs in the child process (bench_accuracy).
    """
    X_tr, X_te, y_tr, y_te = load_accuracy_data(dataset, orientation)
    mark_baseline()
    clf = MODELS[model]()
    curve = None if isinstance(clf, Scaled) else curve_callback(clf, X_te, y_te)
    t = time.perf_counter()
    clf.fit(X_tr, y_tr, **({"callbacks": [curve]} if curve else {}))
    seconds = time.perf_counter() - t - (curve.scoring if curve else 0.0)
    return {
        "seconds": seconds,
        "accuracy": float(clf.score(X_te, y_te)),
        "n_train": len(y_tr),
        "curve": curve.points if curve else None,
    }


def fit_recipe(*, dataset: str, recipe: str) -> dict:
    """Train the estimator expression ``recipe``, scoring after every epoch.

    Runs in the child process (bench_recipes). The expression is the user's
    command-line argument, evaluated with the estimators and these recipes
    in scope, e.g. ``"EmnistCNN(epochs=20, random_state=0)"``.
    """
    import keras

    from emnist_estimators import EmnistCNN, EmnistMLP

    X_tr, X_te, y_tr, y_te = load_accuracy_data(dataset)
    scope = {
        "EmnistMLP": EmnistMLP,
        "EmnistCNN": EmnistCNN,
        "keras": keras,
        "np": np,
        "report_mlp": report_mlp,
        "report_cnn": report_cnn,
    }
    mark_baseline()
    clf = eval(recipe, scope)  # the benchmark's input is code, by design
    curve = curve_callback(clf, X_te, y_te)
    t = time.perf_counter()
    clf.fit(X_tr, y_tr, callbacks=[curve])
    return {
        "seconds": time.perf_counter() - t - curve.scoring,
        "accuracy": float(clf.score(X_te, y_te)),
        "curve": curve.points,
        "n_train": len(y_tr),
    }
