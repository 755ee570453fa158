"""The training loss: sparse categorical cross-entropy, optionally smoothed.

Keras' ``SparseCategoricalCrossentropy`` takes integer labels but has no
label smoothing, and its ``CategoricalCrossentropy`` smooths but wants one-hot
labels, a (n, n_classes) float copy of y. :class:`SmoothedSparseCrossentropy`
takes the integer labels the estimators train on and smooths inside the
graph, one batch at a time.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["SmoothedSparseCrossentropy", "training_loss", "per_sample_loss"]


@keras.saving.register_keras_serializable(package="emnist_estimators")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels against targets smoothed by ``epsilon``.

    The target of a sample of class ``k`` is ``1 - epsilon + epsilon / K`` for
    ``k`` and ``epsilon / K`` for each other of the ``K`` classes, as Keras'
    ``CategoricalCrossentropy(label_smoothing=epsilon)`` makes from one-hot
    labels. It keeps the network from pushing its probabilities to 0 and 1,
    which regularises it and keeps ``predict_proba`` from claiming certainty.

    Parameters
    ----------
    label_smoothing : float, default=0.1
        ``epsilon`` in [0, 1); 0 is the plain cross-entropy.
    **kwargs
        Keras loss arguments (``name``, ``reduction``...).

    Examples
    --------
    >>> import numpy as np
    >>> from emnist_estimators.losses import SmoothedSparseCrossentropy
    >>> probs = np.array([[0.9, 0.05, 0.05]], dtype="float32")
    >>> loss = SmoothedSparseCrossentropy(0.0)(np.array([0]), probs)
    >>> round(float(loss), 4) == round(float(-np.log(0.9)), 4)
    True
    """

    def __init__(self, label_smoothing: float = 0.1, **kwargs):
        kwargs.setdefault("name", "smoothed_sparse_crossentropy")
        super().__init__(**kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        """Compute the per-sample loss (Keras reduces it to the batch mean).

        Parameters
        ----------
        y_true : tensor of int, shape (n,) or (n, 1)
            Class indices.
        y_pred : tensor, shape (n, K)
            Probabilities.

        Returns
        -------
        tensor, shape (n,)
            The smoothed cross-entropy of each sample.
        """
        return per_sample_loss(y_true, y_pred, self.label_smoothing)

    def get_config(self):
        """Return the Keras config, with ``label_smoothing``.

        Returns
        -------
        dict
            What ``from_config`` rebuilds the loss from.
        """
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def per_sample_loss(y_true, y_pred, label_smoothing: float = 0.0):
    """Per-sample (smoothed) cross-entropy of integer labels and probabilities.

    Parameters
    ----------
    y_true : tensor of int, shape (n,) or (n, 1)
        Class indices.
    y_pred : tensor, shape (n, K)
        Probabilities (a softmax output).
    label_smoothing : float, default=0.0
        Share of the target spread evenly over the K classes.

    Returns
    -------
    tensor, shape (n,)
        The loss of each sample.
    """
    if not label_smoothing:
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
    n_classes = ops.shape(y_pred)[-1]
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    target = ops.one_hot(labels, n_classes, dtype=y_pred.dtype)
    return keras.losses.categorical_crossentropy(
        target, y_pred, label_smoothing=label_smoothing
    )


def training_loss(label_smoothing: float = 0.0):
    """What the estimators compile: Keras' own loss, or the smoothed one.

    Without smoothing it is the name Keras has always been given, so models
    saved before smoothing existed compile and load as they did.

    Parameters
    ----------
    label_smoothing : float, default=0.0
        0 for the plain sparse categorical cross-entropy.

    Returns
    -------
    str or SmoothedSparseCrossentropy
        The ``loss`` argument of ``model.compile``.
    """
    if not label_smoothing:
        return "sparse_categorical_crossentropy"
    return SmoothedSparseCrossentropy(label_smoothing)
