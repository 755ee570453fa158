"""The models and data of the accuracy benchmarks, run in child processes.

``bench_accuracy.py`` trains each of :data:`MODELS` and ``bench_recipes.py``
any estimator expression, on the same data (:func:`load_accuracy_data`),
recording the test accuracy after every epoch. Only the functions run in the
child import TensorFlow; the parent reads the model names.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence

import numpy as np

from benchmarks._child import mark_baseline
from benchmarks._harness import SHARED_DATA, precision_label


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

    Its ``points`` are ``(training seconds, test accuracy, training CPU
    seconds)``; the seconds spent scoring (``scoring``, ``scoring_cpu``) are
    excluded from the training time.
    """
    import keras

    class Curve(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.points, self.scoring, self.scoring_cpu = [], 0.0, 0.0

        def on_train_begin(self, logs=None):
            self.start, self.start_cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            t, cpu = time.perf_counter(), time.process_time()
            acc = float(clf.score(X, y))
            elapsed = t - self.start - self.scoring
            elapsed_cpu = cpu - self.start_cpu - self.scoring_cpu
            self.points.append(
                (round(elapsed, 2), round(acc, 4), round(elapsed_cpu, 1))
            )
            self.scoring += time.perf_counter() - t
            self.scoring_cpu += time.process_time() - cpu

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


def cnn_variant(
    *,
    ema: bool = False,
    blocks: Sequence[tuple[int, int]] | None = None,
    separable: bool = False,
    **params,
):
    """An ``EmnistCNN`` with a change it has no parameter for (recipes only).

    For candidates measured before they earn a parameter. ``ema=True``: Adam
    keeps an exponential moving average of the weights (Keras' ``use_ema``,
    momentum 0.99), which Keras copies into the network when ``fit`` ends;
    the per-epoch curve scores the raw weights, the row's final accuracy the
    averaged ones. ``blocks``: one ``(filters, convs)`` pair per block, e.g.
    ``((32, 1), (64, 2))``, kept for the rows that name it: it sets
    ``filters`` and ``convs_per_block``, which now takes one depth per block.
    ``separable=True``: depthwise-separable convolutions after the first
    (``build_cnn(separable=True)``).
    (Dropout in the dense head only, measured here first, is now
    ``EmnistCNN(block_dropout=0)``: the same network and the same numbers,
    checked on a seeded fit.)
    """
    from emnist_estimators import EmnistCNN

    if blocks is not None:
        params["filters"] = tuple(f for f, _ in blocks)
        params["convs_per_block"] = tuple(c for _, c in blocks)

    class Variant(EmnistCNN):
        def _build_model(self, n_features, n_classes, image_shape, rescale, seed):
            from emnist_estimators import architectures

            if not separable:
                return super()._build_model(
                    n_features, n_classes, image_shape, rescale, seed
                )
            original = architectures.build_cnn  # what EmnistCNN._build_model calls
            architectures.build_cnn = functools.partial(original, separable=True)
            try:
                return super()._build_model(
                    n_features, n_classes, image_shape, rescale, seed
                )
            finally:
                architectures.build_cnn = original

        def _compile(self, model, decay_steps=None):
            super()._compile(model, decay_steps=decay_steps)
            if ema:  # set before the optimizer builds its variables
                model.optimizer.use_ema = True
                model.optimizer.ema_momentum = 0.99

    return Variant(**params)


def _mlp_defaults():
    from emnist_estimators import EmnistMLP

    return EmnistMLP(random_state=0)


def _mlp_previous_defaults():
    from emnist_estimators import EmnistMLP

    return EmnistMLP(
        hidden_layer_sizes=(1024, 1024),
        dropout=0.4,
        epochs=40,
        label_smoothing=0.0,
        random_state=0,
    )


def _cnn_defaults():
    from emnist_estimators import EmnistCNN

    return EmnistCNN(random_state=0)


def _cnn_head_dropout_only():
    from emnist_estimators import EmnistCNN

    return EmnistCNN(block_dropout=0, random_state=0)


def _cnn_three_blocks(epochs: int) -> Callable:
    """The three-block network of one convolution each, head dropout only."""

    def build():
        from emnist_estimators import EmnistCNN

        return EmnistCNN(
            filters=(32, 64, 128),
            convs_per_block=1,
            block_dropout=0,
            epochs=epochs,
            random_state=0,
        )

    return build


def _mlp_report_settings():
    from emnist_estimators import EmnistMLP

    return EmnistMLP(
        hidden_layer_sizes=(512, 512),
        dropout=0.2,
        epochs=10,
        lr_schedule="constant",
        label_smoothing=0.0,
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
    "EmnistMLP 0.1.0 defaults (1024-1024, dropout 0.4, 40 epochs)": (
        _mlp_previous_defaults
    ),
    "EmnistCNN defaults": _cnn_defaults,
    "EmnistCNN(block_dropout=0), dropout in the dense head only": (
        _cnn_head_dropout_only
    ),
    "EmnistCNN 3 blocks (32, 64, 128) x 1 conv, head dropout only, 12 epochs": (
        _cnn_three_blocks(12)
    ),
    "EmnistCNN 3 blocks (32, 64, 128) x 1 conv, head dropout only, 16 epochs": (
        _cnn_three_blocks(16)
    ),
    "EmnistMLP, report settings": _mlp_report_settings,
    "report MLP (plain Keras)": report_mlp,
    "report CNN (plain Keras)": report_cnn,
    "sklearn MLPClassifier defaults": _sklearn_mlp,
    "sklearn MLPClassifier (512, 512) early stopping": _sklearn_mlp_512,
}


def fitted_precision(clf) -> str:
    """The precision a fitted recipe trained in, as the results' column says it."""
    if isinstance(clf, Scaled):
        return "float64 (scikit-learn)"  # its pixels are X / 255.0
    if isinstance(clf, KerasRecipe):
        return f"{clf.model.dtype_policy.name} (Keras default)"
    return precision_label(clf.precision, clf.dtype_policy_)


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
        "precision": fitted_precision(clf),
    }


def validation_carve(dataset: str, X_tr, y_tr) -> tuple:
    """Split a training part into ``X_fit, X_val, y_fit, y_val`` for choosing.

    Recipes are chosen on this validation set, never on the test split:
    EMNIST protocol, a stratified 15% of its training part (the protocol's own
    ratio); Fashion-MNIST, a stratified 10,000 of its 60,000 training images
    (the size of its test set). ``random_state=1``, distinct from the
    protocol's split.
    """
    from sklearn.model_selection import train_test_split

    size = 10_000 if dataset == "fashion" else 0.15
    return train_test_split(X_tr, y_tr, test_size=size, stratify=y_tr, random_state=1)


def train_flops_per_image(model) -> int:
    """Multiply-adds x 2 of one forward pass, x 3 for a training step.

    The forward FLOPs are ``bench_flops.layer_flops``' (Conv2D, separable and
    depthwise convolutions, Dense), which hold nearly all the work; the
    backward pass costs about twice the forward one.
    """
    from benchmarks.bench_flops import layer_flops

    return 3 * sum(entry["flops"] for entry in layer_flops(model))


def fit_recipe(
    *, dataset: str, recipe: str, split: str = "validation", train_fraction: float = 1.0
) -> dict:
    """Train the estimator expression ``recipe``, scoring after every epoch.

    Runs in the child process (bench_recipes). The expression is the user's
    command-line argument, evaluated with the estimators and these recipes
    in scope, e.g. ``"EmnistCNN(epochs=20, random_state=0)"``, or
    ``"sklearn_mlp_512()"``, the scikit-learn reference (one point, at the
    end of its fit). ``split``
    'validation' trains on the training part less :func:`validation_carve`'s
    share and scores that share; 'test' trains on the whole training part
    and scores the test split. ``train_fraction`` below 1 keeps a stratified
    share of that training set (``random_state=2``) and the same scoring
    set: accuracy against training-set size, the measure of how much more
    data would buy.
    """
    import keras

    from emnist_estimators import EmnistCNN, EmnistMLP

    X_tr, X_te, y_tr, y_te = load_accuracy_data(dataset)
    if split == "validation":
        X_tr, X_te, y_tr, y_te = validation_carve(dataset, X_tr, y_tr)
    if train_fraction < 1:
        from sklearn.model_selection import train_test_split

        X_tr, _, y_tr, _ = train_test_split(
            X_tr, y_tr, train_size=train_fraction, stratify=y_tr, random_state=2
        )
    scope = {
        "EmnistMLP": EmnistMLP,
        "EmnistCNN": EmnistCNN,
        "keras": keras,
        "np": np,
        "report_mlp": report_mlp,
        "report_cnn": report_cnn,
        "cnn_variant": cnn_variant,
        "sklearn_mlp_512": _sklearn_mlp_512,
    }
    mark_baseline()
    clf = eval(recipe, scope)  # the benchmark's input is code, by design
    if isinstance(clf, Scaled):  # a scikit-learn reference: no epochs to score
        t, cpu = time.perf_counter(), time.process_time()
        clf.fit(X_tr, y_tr)
        seconds, cpu_seconds = time.perf_counter() - t, time.process_time() - cpu
        accuracy = float(clf.score(X_te, y_te))
        return {
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "accuracy": accuracy,
            "curve": [(round(seconds, 2), round(accuracy, 4), round(cpu_seconds, 1))],
            "n_train": len(y_tr),
            "train_flops": None,
            "precision": fitted_precision(clf),
        }
    curve = curve_callback(clf, X_te, y_te)
    t, cpu = time.perf_counter(), time.process_time()
    clf.fit(X_tr, y_tr, callbacks=[curve])
    seconds = time.perf_counter() - t - curve.scoring
    cpu_seconds = time.process_time() - cpu - curve.scoring_cpu
    model = getattr(clf, "model_", None)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "accuracy": float(clf.score(X_te, y_te)),
        "curve": curve.points,
        "n_train": len(y_tr),
        "train_flops": None if model is None else train_flops_per_image(model),
        "precision": fitted_precision(clf),
        **shift_tta(clf, X_te, y_te),
    }


def shifted(X, dy: int, dx: int):
    """28x28 images (flat rows) moved by (dy, dx) pixels, zeros shifted in."""
    images = X.reshape(-1, 28, 28)
    out = np.zeros_like(images)
    h, w = 28 - abs(dy), 28 - abs(dx)
    out[:, max(dy, 0) : max(dy, 0) + h, max(dx, 0) : max(dx, 0) + w] = images[
        :, max(-dy, 0) : max(-dy, 0) + h, max(-dx, 0) : max(-dx, 0) + w
    ]
    return out.reshape(X.shape)


def shift_tta(clf, X, y) -> dict:
    """Test-time augmentation: accuracy of the mean probabilities of the image
    and its four one-pixel shifts, and what it costs at predict time.

    Empty for recipes without ``predict_proba`` and ``classes_`` (the
    report's plain-Keras recipes).
    """
    if not (hasattr(clf, "predict_proba") and hasattr(clf, "classes_")):
        return {}
    t = time.perf_counter()
    total = clf.predict_proba(X)  # the unshifted image: one plain predict
    plain_s = time.perf_counter() - t
    for dy, dx in [(1, 0), (-1, 0), (0, 1), (0, -1)]:
        total = total + clf.predict_proba(shifted(X, dy, dx))
    tta_s = time.perf_counter() - t
    pred = clf.classes_[total.argmax(axis=1)]
    return {
        "tta_accuracy": float((pred == y).mean()),
        "tta_predict_cost": tta_s / plain_s,
    }
