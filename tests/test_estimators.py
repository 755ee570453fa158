"""EmnistMLP / EmnistCNN behaviour a user relies on."""

from __future__ import annotations

import pickle
import random
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO
from scipy import sparse
from sklearn.base import clone, is_classifier
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    StratifiedKFold,
    check_cv,
    cross_val_score,
)
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags

from emnist_estimators import EmnistCNN, EmnistMLP, PixelScaler, load_model
from emnist_estimators.base import BaseEmnistClassifier
from emnist_estimators.exceptions import EmnistEstimatorsError

# Tiny networks trained for a few epochs: a constant learning rate learns the
# toy data fastest (the cosine default is for real training lengths).
SMALL = {
    EmnistMLP: {
        "hidden_layer_sizes": (16,),
        "epochs": 3,
        "batch_size": 32,
        "lr_schedule": "constant",
    },
    EmnistCNN: {
        "filters": (4, 8),
        "dense_units": (16,),
        "epochs": 2,
        "batch_size": 32,
        "lr_schedule": "constant",
    },
}


def small(cls, **kw):
    return cls(**{**SMALL[cls], **kw})


@pytest.fixture(scope="module")
def data():
    """Two classes of 28x28 glyphs: a vertical or a horizontal bar."""
    rng = np.random.default_rng(0)
    n = 240
    X = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
    y = np.where(np.arange(n) % 2 == 0, "|", "-")
    for i in range(n):
        pos = rng.integers(6, 22)
        if y[i] == "|":
            X[i, 4:24, pos : pos + 3] = 255
        else:
            X[i, pos : pos + 3, 4:24] = 255
    return X.reshape(n, 784), y


@pytest.fixture(scope="module")
def fitted_cnn(data):
    X, y = data
    return small(EmnistCNN, random_state=0).fit(X, y)


@pytest.mark.parametrize("cls", [EmnistMLP, EmnistCNN])
def test_learns_and_keeps_original_labels(cls, data):
    X, y = data
    clf = small(cls, random_state=0, epochs=4).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert set(clf.predict(X)) <= {"|", "-"}
    assert clf.classes_.tolist() == ["-", "|"]
    assert set(clf.history_) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(clf.history_["loss"]) == clf.n_iter_ == 4


@pytest.mark.parametrize("cls", [EmnistMLP, EmnistCNN])
def test_sklearn_sees_a_classifier(cls, data):
    clf = cls()
    assert is_classifier(clf) and get_tags(clf).estimator_type == "classifier"
    X, y = data
    assert isinstance(check_cv(5, y, classifier=is_classifier(clf)), StratifiedKFold)


def test_image_shaped_and_float_input_agree(fitted_cnn, data):
    X, y = data
    flat = fitted_cnn.predict_proba(X[:10])
    np.testing.assert_allclose(
        fitted_cnn.predict_proba(X[:10].reshape(-1, 28, 28)), flat
    )
    np.testing.assert_allclose(
        fitted_cnn.predict_proba(X[:10].reshape(-1, 28, 28, 1).astype(float)),
        flat,
        rtol=1e-5,
    )


def test_fast_path_matches_model_predict(fitted_cnn, data):
    X, _ = data
    fast = fitted_cnn.predict_proba(X[:7])
    slow = fitted_cnn.model_.predict(X[:7], verbose=0).astype(np.float64)
    slow /= slow.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-7)
    big = small(EmnistCNN)
    big.__dict__.update(fitted_cnn.__dict__)
    big._direct_predict_max = 0  # force the Model.predict path
    np.testing.assert_array_equal(big.predict(X), fitted_cnn.predict(X))


def test_random_state_reproducible_without_leaking(data):
    import tensorflow as tf
    from tensorflow.python.framework import config

    X, y = data
    random.seed(123)
    expected_next = random.random()
    random.seed(123)
    a = small(EmnistMLP, random_state=7).fit(X, y).predict_proba(X)
    assert random.random() == expected_next  # Python's RNG state restored
    assert not config.is_op_determinism_enabled()
    b = small(EmnistMLP, random_state=7).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    # an unseeded estimator afterwards still works and differs
    c = small(EmnistMLP).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)
    assert tf.random.uniform(()).shape == ()  # unseeded random ops still run


@pytest.mark.parametrize(
    "X, match, exc",
    [
        (np.full((5, 784), np.nan), "NaN", ValueError),
        (np.full((5, 784), np.inf), "infinity", ValueError),
        (-np.ones((5, 784)), "Negative values", ValueError),
        (np.full((5, 784), 300.0), "up to 300", ValueError),
        (np.zeros(784), "1-D array", ValueError),
        (np.zeros((0, 784)), "0 sample", ValueError),
        (sparse.csr_matrix(np.ones((5, 784))), "sparse", TypeError),
        (np.zeros((5, 28, 28, 3)), "one grey channel", ValueError),
    ],
)
def test_bad_input_at_fit(X, match, exc):
    y = np.arange(X.shape[0] if X.ndim > 1 else 1) % 2
    with pytest.raises(exc, match=match):
        EmnistMLP(epochs=1).fit(X, y)


def test_bad_input_at_predict(fitted_cnn):
    with pytest.raises(ValueError, match="784 features"):
        fitted_cnn.predict(np.zeros((2, 100)))
    with pytest.raises(ValueError, match="784 features"):
        fitted_cnn.predict(np.zeros((2, 32, 32), np.uint8))  # wrong image size
    with pytest.raises(ValueError, match="NaN"):
        fitted_cnn.predict(np.full((2, 784), np.nan))


def test_bad_targets(data):
    X, y = data
    with pytest.raises(ValueError, match="only one class"):
        EmnistMLP(epochs=1).fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="must match"):
        EmnistMLP(epochs=1).fit(X, y[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        EmnistMLP(epochs=1).fit(X, np.linspace(0, 1, len(X)))
    clf = small(EmnistMLP, epochs=1).partial_fit(X, y)
    with pytest.raises(ValueError, match="not among the classes"):
        clf.partial_fit(X[:4], np.array(["x", "|", "-", "|"]))


def test_bad_hyper_parameters_fail_before_training(data):
    X, y = data
    with pytest.raises(ValueError, match="'dropout' parameter of EmnistMLP"):
        EmnistMLP(dropout=1.5).fit(X, y)
    with pytest.raises(ValueError, match="'batch_size' parameter of EmnistCNN"):
        EmnistCNN(batch_size=0).fit(X, y)


@pytest.fixture
def no_network(monkeypatch):
    """Make building a Keras network fail the test: errors must come first."""
    from emnist_estimators import architectures

    def refuse(*args, **kwargs):
        raise AssertionError("a Keras network was built before the error")

    monkeypatch.setattr(architectures, "build_mlp", refuse)
    monkeypatch.setattr(architectures, "build_cnn", refuse)


@pytest.mark.parametrize(
    "cls, param, value, bad",
    [
        (EmnistMLP, "hidden_layer_sizes", (0,), "element 0 is 0 (int)"),
        (EmnistMLP, "hidden_layer_sizes", ("a",), "element 0 is 'a' (str)"),
        (EmnistMLP, "hidden_layer_sizes", [16, 2.5], "element 1 is 2.5 (float)"),
        (EmnistMLP, "hidden_layer_sizes", (True,), "element 0 is True (bool)"),
        (EmnistCNN, "filters", (4, -8), "element 1 is -8 (int)"),
        (EmnistCNN, "dense_units", (None,), "element 0 is None (NoneType)"),
        (EmnistCNN, "convs_per_block", (2, 0), "element 1 is 0 (int)"),
    ],
)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_layer_sizes_must_be_positive_ints(cls, param, value, bad, method, data):
    """Issue 12.4: (0,) failed inside Keras, ("a",) with int()'s message."""
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = data
    clf = cls(**{param: value})
    with pytest.raises(InvalidParameterError) as info:
        getattr(clf, method)(X[:20], y[:20])
    message = str(info.value)
    assert message.startswith(
        f"The '{param}' parameter of {cls.__name__} must be a tuple or list with "
        "each element an int in the range [1, inf). Got "
    )
    assert bad in message
    default = cls().get_params()[param]
    assert f"Pass e.g. {param}={default!r} (the default)" in message
    assert not hasattr(clf, "model_")


def test_layer_sizes_errors_come_before_any_network(data, no_network):
    X, y = data
    with pytest.raises(ValueError, match="'filters' parameter of EmnistCNN"):
        EmnistCNN(filters=(0,)).fit(X, y)
    with pytest.raises(ValueError, match="'hidden_layer_sizes' parameter"):
        EmnistMLP(hidden_layer_sizes=(8, 0)).partial_fit(X, y)


def test_layer_sizes_accept_numpy_ints_lists_and_no_layer(data):
    X, y = data
    clf = small(EmnistMLP, hidden_layer_sizes=[np.int64(8), 4], epochs=1).fit(X, y)
    assert [clf.model_.get_layer(f"dense_{i}").units for i in (0, 1)] == [8, 4]
    flat = small(EmnistMLP, hidden_layer_sizes=(), epochs=1).fit(X, y)
    assert [layer.name for layer in flat.model_.layers][-1] == "softmax"


def test_activation_must_be_a_keras_activation(data, no_network):
    """Issue 12.4: any string passed the constraint and failed inside Keras."""
    X, y = data
    with pytest.raises(ValueError) as info:
        EmnistMLP(activation="logistic").fit(X, y)
    message = str(info.value)
    assert message.startswith(
        "The 'activation' parameter of EmnistMLP must be a str among {"
    )
    assert "'sigmoid'" in message and "'linear'" in message
    assert "softmax" not in message  # accepted, but not offered for hidden layers
    with pytest.raises(ValueError, match="'activation' parameter of EmnistMLP"):
        EmnistMLP(activation=len).fit(X, y)


def _accepted_activations() -> list[str]:
    constraints = EmnistMLP._parameter_constraints["activation"]
    options = set()
    for constraint in constraints:
        options |= getattr(constraint, "options", None) or constraint.constraint.options
    return sorted(options)


def test_every_accepted_activation_builds_a_network():
    """Accepted must mean it works: each name builds a Keras Dense layer."""
    from emnist_estimators.architectures import build_mlp

    names = _accepted_activations()
    assert {"relu", "tanh", "sigmoid", "linear", "elu", "gelu", "swish"} <= set(names)
    assert {"leaky_relu", "silu", "softmax"} <= set(names)  # softmax worked before
    for name in names:
        model = build_mlp(4, 2, hidden_layer_sizes=(2,), activation=name, seed=0)
        assert model.output_shape == (None, 2), name


def test_scaled_model_refuses_raw_pixels(data):
    X, y = data
    pipe_scaled = PixelScaler().fit_transform(X)
    clf = small(EmnistMLP, epochs=1).fit(pipe_scaled, y)
    assert clf.input_scale_ == 1.0
    with pytest.raises(ValueError, match="fitted on pixels scaled to"):
        clf.predict(X)


@pytest.mark.slow  # a grid search, a random search and cross-validation: ~1 min
def test_pipeline_in_searches_and_cv(data):
    X, y = data
    pipe = Pipeline([("scale", PixelScaler()), ("clf", small(EmnistCNN, epochs=1))])
    grid = GridSearchCV(
        pipe,
        {
            "clf__batch_size": [32, 64],
            "clf__dropout": [0.1, 0.3],
            "clf__learning_rate": [1e-3, 3e-3],
        },
        cv=2,
    ).fit(X, y)
    assert set(grid.best_params_) == {
        "clf__batch_size",
        "clf__dropout",
        "clf__learning_rate",
    }
    assert len(grid.cv_results_["params"]) == 8
    search = RandomizedSearchCV(
        pipe,
        {"clf__dropout": [0.0, 0.2, 0.4], "clf__learning_rate": [1e-3, 1e-2]},
        n_iter=2,
        cv=2,
        random_state=0,
    ).fit(X, y)
    assert search.best_estimator_.predict(X[:3]).shape == (3,)
    scores = cross_val_score(pipe.set_params(clf__epochs=4), X, y, cv=3, n_jobs=2)
    assert scores.shape == (3,) and np.all(scores > 0.5)
    restored = pickle.loads(pickle.dumps(grid.best_estimator_))
    np.testing.assert_array_equal(
        restored.predict_proba(X), grid.best_estimator_.predict_proba(X)
    )


@pytest.mark.parametrize("cls", [EmnistMLP, EmnistCNN])
def test_clone_gives_unfitted_copy_with_same_params(cls, data):
    X, y = data
    clf = small(cls, random_state=0, dropout=0.3).fit(X, y)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert not hasattr(copy, "model_")


def test_pickle_round_trip_in_fresh_process(fitted_cnn, data, tmp_path):
    X, _ = data
    path = tmp_path / "clf.pkl"
    path.write_bytes(pickle.dumps(fitted_cnn))
    np.save(tmp_path / "X.npy", X[:20])
    expected = fitted_cnn.predict_proba(X[:20])
    code = (
        "import pickle, sys, numpy as np;"
        f"clf = pickle.loads(open({str(path)!r}, 'rb').read());"
        f"np.save({str(tmp_path / 'p.npy')!r}, "
        f"clf.predict_proba(np.load({str(tmp_path / 'X.npy')!r})))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected)


def test_save_and_load_keras_format(fitted_cnn, data, tmp_path):
    import keras

    X, _ = data
    path = tmp_path / "model.keras"
    fitted_cnn.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, EmnistCNN)
    assert loaded.get_params() == fitted_cnn.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted_cnn.predict_proba(X))
    assert loaded.classes_.tolist() == fitted_cnn.classes_.tolist()
    assert EmnistCNN.load(path).n_features_in_ == 784
    with pytest.raises(EmnistEstimatorsError, match="not a EmnistMLP"):
        EmnistMLP.load(path)
    # still a plain Keras archive
    assert keras.saving.load_model(path, safe_mode=True).output_shape == (None, 2)


def test_early_stopping_and_partial_fit(data):
    X, y = data
    noise = np.random.default_rng(0).permutation(y)  # unlearnable: val loss rises
    clf = small(EmnistMLP, epochs=50, early_stopping=True, patience=1, random_state=0)
    clf.fit(X, noise)
    assert clf.n_iter_ < 50
    pf = small(EmnistMLP, random_state=0)
    for _ in range(3):
        pf.partial_fit(X, y, classes=["-", "|"])
    assert pf.n_iter_ == 3 and len(pf.history_["loss"]) == 3


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_precision_policies(precision, data, tmp_path):
    X, y = data
    clf = small(EmnistCNN, precision=precision, random_state=0, epochs=3).fit(X, y)
    assert clf.dtype_policy_ == precision
    conv = clf.model_.get_layer("conv_0_0")
    assert conv.dtype_policy.name == precision
    assert clf.model_.get_layer("softmax").dtype_policy.name == "float32"
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert clf.score(X, y) > 0.8
    clf.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(
        load_model(tmp_path / "m.keras").predict_proba(X), proba
    )
    # float16 gradients need loss scaling (what "auto" picks on modern GPUs)
    scaled = type(clf.model_.optimizer).__name__ == "LossScaleOptimizer"
    assert scaled == (precision == "mixed_float16")


def test_auto_precision_resolves(data):
    X, y = data
    clf = small(EmnistMLP, epochs=1).fit(X, y)
    assert clf.dtype_policy_ in ("float32", "mixed_bfloat16")


def test_cosine_schedule_decays_the_learning_rate(data):
    X, y = data
    clf = small(EmnistMLP, lr_schedule="cosine", epochs=2, random_state=0).fit(X, y)
    optimizer = clf.model_.optimizer
    start = float(optimizer.learning_rate)  # evaluated at the current step
    assert start < clf.learning_rate * 0.05  # decayed to ~1% at the end
    constant = small(EmnistMLP, lr_schedule="constant", epochs=1).fit(X, y)
    assert float(constant.model_.optimizer.learning_rate) == pytest.approx(1e-3)


# --- issue 12.1: every scikeras knob readable on the object is honoured -----
#: scikeras' settings the class used to fix as constants, two of which
#: (optimizer, loss) training ignored; now they are absent, not silently ignored.
#: (warm_start and class_weight came back as real parameters: test_lifecycle.)
SCIKERAS_CONSTANTS = [
    "model",
    "build_fn",
    "optimizer",
    "loss",
    "metrics",
    "validation_batch_size",
    "validation_split",
    "shuffle",
    "run_eagerly",
]


@pytest.mark.parametrize("cls", [EmnistMLP, EmnistCNN])
def test_no_ignored_scikeras_setting_is_readable(cls):
    clf = cls()
    present = [a for a in SCIKERAS_CONSTANTS if hasattr(clf, a)]
    assert not present, f"{cls.__name__} has scikeras settings it ignores: {present}"
    # scikeras' encoders are not used for labels or pixels: no decoy object
    for hook in ("target_encoder", "feature_encoder"):
        with pytest.raises(AttributeError, match="not used"):
            getattr(clf, hook)
    assert "_more_tags" not in vars(BaseEmnistClassifier)  # scikit-learn >= 1.7


def test_initialize_builds_an_untrained_network(data):
    """scikeras' initialize() raised "must implement _keras_build_fn"."""
    X, y = data
    clf = small(EmnistMLP, random_state=0)
    assert clf.initialize(X, y) is clf
    assert clf.initialized_ and clf.n_iter_ == clf.current_epoch == 0
    assert clf.classes_.tolist() == ["-", "|"] and clf.n_features_in_ == 784
    untrained = clf.predict_proba(X[:3])  # usable before any training
    assert untrained.shape == (3, 2)
    clf.partial_fit(X, y)  # trains the initialized network
    assert clf.current_epoch == clf.n_iter_ == 1
    assert not np.array_equal(clf.predict_proba(X[:3]), untrained)
    with pytest.raises(ValueError, match="only one class"):
        small(EmnistMLP).initialize(X[:2], ["a", "a"])
