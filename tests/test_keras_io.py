"""Keras variables as numpy and networks packed for pickle (keras_io.py):
Keras' saving warning silenced in Keras only, inside the block only; a
packed network pickles and predicts as the original."""

from __future__ import annotations

import pickle
import warnings

import numpy as np

from emnist_estimators.keras_io import pack_network, variables_as_numpy


def test_a_packed_network_pickles_and_predicts_as_the_original():
    import keras
    import scikeras  # noqa: F401  (registers Keras models' pickling, as our estimators do)

    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    X = np.random.default_rng(0).random((5, 4)).astype("float32")
    copy = pickle.loads(pickle.dumps(pack_network(net)))
    np.testing.assert_array_equal(copy.predict(X, verbose=0), net.predict(X, verbose=0))
    weights = variables_as_numpy(net.weights)
    assert all(isinstance(w, np.ndarray) for w in weights)
    assert [w.shape for w in weights] == [(4, 3), (3,)]


def test_the_keras_saving_warning_is_silenced_only_in_keras_inside_the_block():
    """Scoped, never process-wide: other code and later calls still warn.

    A user's own ``np.array(tf.Variable(...))`` keeps its warning, inside the
    block as after it, and so does Keras' conversion once the block is left.
    """
    import keras
    import tensorflow as tf

    from emnist_estimators.keras_io import keras_saving_quietly

    variable = tf.Variable([1.0, 2.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with keras_saving_quietly():
            keras.ops.convert_to_numpy(variable)  # what Keras' saving calls
            np.array(variable)  # not Keras: still warns
        keras.ops.convert_to_numpy(variable)  # after the block: warns
    modules = [w.filename.replace("\\", "/") for w in caught]
    assert [w.category for w in caught] == [DeprecationWarning] * 2, modules
    assert all("copy keyword" in str(w.message) for w in caught)
    assert modules[0].endswith("tests/test_keras_io.py")
    assert "/keras/" in modules[1]
