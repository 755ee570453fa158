"""The network call of predict: one traced function per network and input dtype.

Keras' ``predict_on_batch`` re-enters its ``tf.function`` through Keras' and
TensorFlow's Python layers on each call: for one image that Python costs
about as much as the network. :func:`network_proba` traces
``model(x, training=False)`` - the graph ``predict_on_batch`` runs - once as
a concrete function for ``(None, n_features)`` inputs of the given dtype and
calls it directly after that. The network's variables are captured by
reference, so weights changed in place (``partial_fit``, ``load_weights``)
are seen; a replaced ``model_`` gets a function of its own.

The functions are kept beside the estimator (a weak reference to it), never
in its ``__dict__``: nothing of them is pickled, copied or saved.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, cast

import numpy as np

__all__ = ["network_proba"]

#: estimator -> (its model_, {input dtype name: concrete function}).
_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _traced(model: Any, n_features: int, dtype: np.dtype) -> Any:
    """``model(x, training=False)`` as a concrete function of a (None, n) batch."""
    import tensorflow as tf

    def call(x):
        return model(x, training=False)

    spec = tf.TensorSpec((None, n_features), tf.as_dtype(dtype), name="pixels")
    return tf.function(call, autograph=False).get_concrete_function(spec)


def network_proba(est: Any, X: np.ndarray) -> np.ndarray:
    """The network's output for validated pixels, through its traced function.

    Parameters
    ----------
    est : EmnistMLP or EmnistCNN
        A fitted estimator; its ``model_`` is called.
    X : ndarray of shape (n_samples, n_features)
        Validated pixels, uint8 or float32.

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
        The softmax output, float32, as ``model_.predict_on_batch(X)`` gives.
    """
    model = est.model_
    key = X.dtype.name
    with _LOCK:
        cached = _FUNCTIONS.get(est)
        if cached is None or cached[0] is not model:
            cached = (model, cast(dict[str, Any], {}))
            _FUNCTIONS[est] = cached
        fn = cached[1].get(key)
    if fn is None:  # traced outside the lock: a race only traces twice
        fn = _traced(model, X.shape[1], X.dtype)
        cached[1][key] = fn
    return fn(X).numpy()
