"""The training loss (losses.py): sparse labels with label smoothing give
Keras' own smoothed categorical cross-entropy."""

from __future__ import annotations

import keras
import numpy as np

from emnist_estimators.losses import SmoothedSparseCrossentropy, per_sample_loss


def test_smoothed_loss_equals_keras_categorical_smoothing_on_one_hot_labels():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=8).astype("float32")
    labels = rng.integers(0, 5, 8)
    one_hot = np.eye(5, dtype="float32")[labels]
    for eps in (0.0, 0.1, 0.3):
        ours = per_sample_loss(labels, probs, eps)
        keras_own = keras.losses.categorical_crossentropy(
            one_hot, probs, label_smoothing=eps
        )
        np.testing.assert_allclose(np.asarray(ours), np.asarray(keras_own), rtol=1e-5)
    # the loss object reduces those per-sample values to their mean
    mean = SmoothedSparseCrossentropy(0.1)(labels, probs)
    np.testing.assert_allclose(
        float(mean), float(np.mean(per_sample_loss(labels, probs, 0.1))), rtol=1e-6
    )
