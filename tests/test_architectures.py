"""build_mlp / build_cnn: the networks the estimators train, built directly.

Building and calling a small model takes milliseconds; nothing here trains.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from emnist_estimators.architectures import build_cnn, build_mlp, image_shape_for


def of_type(model: keras.Model, kind: type) -> list:
    return [layer for layer in model.layers if isinstance(layer, kind)]


def pixels(n: int = 5, n_features: int = 784, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, n_features)).astype("f4")


def predict(model: keras.Model, X: np.ndarray) -> np.ndarray:
    """Inference on one small batch (``Model.predict`` costs more to set up)."""
    return keras.ops.convert_to_numpy(model(X, training=False))


@pytest.mark.parametrize("build", [build_mlp, build_cnn])
@pytest.mark.parametrize("n_classes", [2, 47])
def test_output_is_a_probability_per_class(build, n_classes):
    model = build(784, n_classes, rescale=1 / 255, seed=0)
    assert model.output_shape == (None, n_classes)
    proba = predict(model, pixels())
    assert proba.shape == (5, n_classes) and proba.dtype == np.float32
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_mlp_layers_follow_hidden_layer_sizes():
    model = build_mlp(16, 3, hidden_layer_sizes=(7, 5, 4), activation="tanh")
    dense = of_type(model, layers.Dense)
    assert [d.units for d in dense] == [7, 5, 4, 3]
    assert [d.activation.__name__ for d in dense] == ["tanh"] * 3 + ["softmax"]
    assert [d.rate for d in of_type(model, layers.Dropout)] == [0.2] * 3
    bare = build_mlp(16, 3, hidden_layer_sizes=(), dropout=0.0)
    assert [d.units for d in of_type(bare, layers.Dense)] == [3]  # softmax only
    assert of_type(build_mlp(16, 3, dropout=0.0), layers.Dropout) == []


def test_cnn_layers_follow_filters_blocks_and_dense_units():
    model = build_cnn(784, 5, filters=(4, 8), convs_per_block=2, dense_units=(6,))
    convs = of_type(model, layers.Conv2D)
    assert [c.filters for c in convs] == [4, 4, 8, 8]
    assert all(c.kernel_size == (3, 3) and c.use_bias for c in convs)
    assert len(of_type(model, layers.MaxPooling2D)) == 2
    assert [d.units for d in of_type(model, layers.Dense)] == [6, 5]
    # dropout after each block and each dense layer, none when dropout=0
    assert [d.rate for d in of_type(model, layers.Dropout)] == [0.25] * 3
    no_dropout = build_cnn(784, 5, dropout=0.0)
    assert of_type(no_dropout, layers.Dropout) == []
    assert len(of_type(no_dropout, layers.Conv2D)) == 4  # default (32, 64) x 2
    one = build_cnn(784, 5, filters=(4,), convs_per_block=1, dense_units=())
    assert [c.filters for c in of_type(one, layers.Conv2D)] == [4]
    assert [d.units for d in of_type(one, layers.Dense)] == [5]


def test_cnn_options_add_their_layers():
    plain = build_cnn(784, 3, filters=(4,))
    assert of_type(plain, layers.BatchNormalization) == []
    assert of_type(plain, layers.RandomRotation) == []
    normed = build_cnn(784, 3, filters=(4,), batch_norm=True)
    assert len(of_type(normed, layers.BatchNormalization)) == 2  # one per conv
    # a bias before batch normalisation is cancelled by it: not made
    assert not any(c.use_bias for c in of_type(normed, layers.Conv2D))
    augmented = build_cnn(784, 3, filters=(4,), augment=True)
    assert len(of_type(augmented, layers.RandomTranslation)) == 1
    assert len(of_type(augmented, layers.RandomRotation)) == 1
    leaky = of_type(build_cnn(784, 3, negative_slope=0.1), layers.LeakyReLU)
    assert [layer.negative_slope for layer in leaky] == [pytest.approx(0.1)] * 4


@pytest.mark.parametrize("build", [build_mlp, build_cnn])
def test_same_seed_same_weights_other_seed_other_weights(build):
    kw = {"seed": 3} | ({"filters": (4,)} if build is build_cnn else {})
    first, second = build(784, 4, **kw), build(784, 4, **kw)
    other = build(784, 4, **{**kw, "seed": 4})
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    kernels = [w for w in first.get_weights() if w.ndim > 1]
    others = [w for w in other.get_weights() if w.ndim > 1]
    assert not any(np.array_equal(a, b) for a, b in zip(kernels, others, strict=True))


def test_rescale_happens_inside_the_model():
    X = pixels()
    raw = predict(build_mlp(784, 3, rescale=1 / 255, seed=0), X)
    scaled = predict(build_mlp(784, 3, seed=0), X / 255)
    np.testing.assert_allclose(raw, scaled, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("build", [build_mlp, build_cnn])
def test_mixed_precision_keeps_float32_probabilities(build):
    model = build(784, 3, rescale=1 / 255, seed=0, dtype_policy="mixed_bfloat16")
    hidden = [layer for layer in model.layers[1:] if layer.name != "softmax"]
    assert {layer.dtype_policy.name for layer in hidden} == {"mixed_bfloat16"}
    assert model.get_layer("softmax").dtype_policy.name == "float32"
    proba = predict(model, pixels())
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    "n_features, image_shape, expected",
    [
        (784, None, (28, 28)),
        (64, None, (8, 8)),
        (10, None, (1, 10)),
        (6, (2, 3), (2, 3)),
    ],
)
def test_image_shape_for(n_features, image_shape, expected):
    assert image_shape_for(n_features, image_shape) == expected


def test_cnn_takes_generic_and_rectangular_features():
    strip = build_cnn(10, 2, filters=(4,), augment=True, seed=0)
    assert strip.get_layer("to_image").target_shape == (1, 10, 1)
    assert of_type(strip, layers.RandomRotation) == []  # a 1-row strip: no rotation
    assert predict(strip, pixels(2, 10)).shape == (2, 2)
    wide = build_cnn(6, 2, image_shape=(2, 3), filters=(4,))
    assert wide.get_layer("to_image").target_shape == (2, 3, 1)
    with pytest.raises(ValueError, match=r"image_shape \(2, 2\) holds 4 pixels"):
        build_cnn(6, 2, image_shape=(2, 2))
