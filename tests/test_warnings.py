"""A user's everyday calls are quiet: no Python warning, no retracing log.

Fitting, pickling, deep-copying, saving, loading and cross-validating an
estimator once warned from the libraries underneath: numpy's
``DeprecationWarning`` about ``__array__`` and its ``copy`` keyword, once per
weight, from Keras' saving code (every pickle and save), and TensorFlow's
"triggered tf.function retracing" log warning once a few new networks had
been traced (cross-validation, searches). Both come from code called by
ours, so they carry Keras' and TensorFlow's names, not ours: these tests
record everything while the calls run.
"""

from __future__ import annotations

import copy
import logging
import pickle
import warnings

import numpy as np
import pytest
from sklearn.model_selection import cross_validate

from emnist_estimators import EmnistCNN, EmnistMLP, load_model

# Tiny networks: the warnings depend on the calls, not the network's size.
ESTIMATORS = {
    "mlp": lambda: EmnistMLP(
        hidden_layer_sizes=(8,), epochs=1, validation_fraction=0, random_state=0
    ),
    "cnn": lambda: EmnistCNN(
        filters=(2,),
        convs_per_block=1,
        dense_units=(4,),
        epochs=1,
        validation_fraction=0,
        random_state=0,
    ),
}
RETRACING = "triggered tf.function retracing"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(60, 784), dtype=np.uint8)
    return X, np.arange(60) % 3


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def tf_warnings(monkeypatch):
    """TensorFlow's log warnings during the test, with a fresh retracing count.

    TensorFlow warns about retracing at most twice per traced Python function
    and process, so earlier tests would otherwise have used the warnings up
    and this test could pass whatever our code does.
    """
    from tensorflow.python.eager.polymorphic_function import (
        polymorphic_function as tf_function,
    )

    detector = "_frequent_tracing_detector_manager"
    manager = getattr(tf_function, "_FrequentTracingDetectorManager", None)
    if manager is None or not hasattr(tf_function, detector):
        pytest.fail(
            "TensorFlow moved its retracing detector "
            "(polymorphic_function._frequent_tracing_detector_manager): update "
            "this fixture, and check that training.expected_retracing still matches "
            "TensorFlow's message."
        )
    monkeypatch.setattr(tf_function, detector, manager())
    logger = logging.getLogger("tensorflow")
    records = _Records()
    level = logger.level
    logger.setLevel(logging.WARNING)  # e.g. a CLI test may have quieted it
    logger.addHandler(records)
    yield records.messages
    logger.removeHandler(records)
    logger.setLevel(level)


def _shown(caught) -> str:
    return "\n".join(
        f"{w.category.__name__}: {w.message} ({w.filename})" for w in caught
    )


@pytest.mark.parametrize("name", ESTIMATORS)
def test_pickling_and_saving_warn_nothing(name, data, tmp_path):
    """Keras' saving code converted each weight with numpy's deprecated call."""
    X, y = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = ESTIMATORS[name]().fit(X, y)
        expected = est.predict(X[:5])
        est.save(tmp_path / "model.keras")
        for restored in (
            pickle.loads(pickle.dumps(est)),
            copy.deepcopy(est),
            load_model(tmp_path / "model.keras"),
        ):
            np.testing.assert_array_equal(restored.predict(X[:5]), expected)
        shallow = copy.copy(est)
    assert not caught, _shown(caught)
    assert shallow.model_ is est.model_  # a shallow copy shares the network


@pytest.mark.parametrize("name", ESTIMATORS)
def test_cross_validation_logs_no_retracing_warning(name, data, tf_warnings):
    """Each fold traces a new network (twice to predict two sizes): expected.

    Three folds scored on test and training samples, as a search with
    ``return_train_score=True`` does: six predict traces in six calls, past
    TensorFlow's threshold of five.
    """
    X, y = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = cross_validate(ESTIMATORS[name](), X, y, cv=3, return_train_score=True)
    assert len(scores["test_score"]) == 3
    assert not caught, _shown(caught)
    retracing = [m for m in tf_warnings if RETRACING in m]
    assert not retracing, retracing[0]
