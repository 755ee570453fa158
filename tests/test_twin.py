"""twin.py: a fitted network's float32, inference-only twin (what export converts).

The twin holds the fitted weights, computes in float32 without augmentation
or dropout, and refuses a network whose layers or shapes its estimator's
parameters do not build.
"""

from __future__ import annotations

import numpy as np
import pytest

from emnist_estimators import EmnistMLP
from emnist_estimators.exceptions import ExportError
from emnist_estimators.export import BFLOAT16_TOLERANCE
from emnist_estimators.twin import fitted_image_shape, float32_twin


def test_the_float32_twin_has_no_augmentation_dropout_or_bfloat16(cnn_bf16):
    twin = cnn_bf16._float32_network()
    kinds = {type(layer).__name__ for layer in twin.layers}
    assert not kinds & {"RandomTranslation", "RandomRotation", "Dropout"}
    assert {layer.dtype_policy.name for layer in twin.layers} == {"float32"}
    assert {"RandomTranslation", "Dropout"} <= {
        type(layer).__name__ for layer in cnn_bf16.model_.layers
    }


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def test_float32_twin_computes_the_bfloat16_trained_weights_in_float32(bars):
    X, y = bars
    X = X.reshape(len(X), -1)
    clf = EmnistMLP(
        (32,), epochs=2, batch_size=16, precision="mixed_bfloat16", random_state=0
    ).fit(X, y)
    twin = float32_twin(clf)
    assert twin is not clf.model_
    got = np.asarray(twin(X.astype(np.float32), training=False))
    # an independent reference: the fitted weights' forward pass in float64
    weights = {lay.name: lay.get_weights() for lay in clf.model_.layers if lay.weights}
    assert sorted(weights) == ["dense_0", "softmax"]
    (w0, b0), (w1, b1) = weights["dense_0"], weights["softmax"]
    hidden = np.maximum(X.astype(np.float64) * clf.input_scale_ @ w0 + b0, 0.0)
    reference = _softmax(hidden @ w1 + b1)
    assert got.dtype == np.float32
    assert np.abs(got - reference).max() <= 1e-5
    # predict computes in bfloat16: the same answer, to bfloat16's precision
    assert np.abs(got - clf.predict_proba(X)).max() <= BFLOAT16_TOLERANCE


def test_fitted_image_shape_is_the_cnn_reshape_or_the_square_of_the_pixels(
    mlp, cnn_bf16
):
    assert fitted_image_shape(cnn_bf16) == (28, 28)
    assert fitted_image_shape(mlp) == (28, 28)


def test_float32_twin_refuses_a_network_its_parameters_do_not_build(bars):
    X, y = bars
    clf = EmnistMLP((8,), epochs=1, precision="float32", random_state=0).fit(X, y)
    clf.set_params(hidden_layer_sizes=(4,))  # model_ still holds 8 units
    with pytest.raises(ExportError, match="'dense_0' holds weights of shapes"):
        float32_twin(clf)
    clf.set_params(hidden_layer_sizes=(8, 8))
    with pytest.raises(ExportError, match="layers with weights .* differ"):
        float32_twin(clf)
