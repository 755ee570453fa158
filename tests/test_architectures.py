"""build_mlp / build_cnn: the networks the estimators train, built directly.

Building and calling a small model takes milliseconds; only the LeakyReLU
tests at the end train (tiny networks, a few steps each).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from helpers import REPO, bar_images
from keras import layers

from emnist_estimators import EmnistCNN, architectures, load_model
from emnist_estimators.architectures import (
    FusableLeakyReLU,
    build_cnn,
    build_mlp,
    image_shape_for,
)


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


def test_cnn_blocks_can_each_have_their_own_depth():
    model = build_cnn(784, 5, filters=(4, 8, 16), convs_per_block=(1, 2, 1))
    convs = of_type(model, layers.Conv2D)
    assert [(c.name, c.filters) for c in convs] == [
        ("conv_0_0", 4),
        ("conv_1_0", 8),
        ("conv_1_1", 8),
        ("conv_2_0", 16),
    ]
    assert len(of_type(model, layers.MaxPooling2D)) == 3
    with pytest.raises(ValueError, match="convs_per_block has 2 entries for 3"):
        build_cnn(784, 5, filters=(4, 8, 16), convs_per_block=(1, 2))


def test_cnn_separable_convolutions_follow_the_first():
    # the first convolution reads one channel: nothing to separate there
    model = build_cnn(784, 5, filters=(4, 8), separable=True, seed=0)
    kinds = [
        (layer.name, type(layer).__name__)
        for layer in model.layers
        if isinstance(layer, layers.Conv2D | layers.SeparableConv2D)
    ]
    assert kinds == [
        ("conv_0_0", "Conv2D"),
        ("conv_0_1", "SeparableConv2D"),
        ("conv_1_0", "SeparableConv2D"),
        ("conv_1_1", "SeparableConv2D"),
    ]
    plain = build_cnn(784, 5, filters=(4, 8), seed=0)
    assert model.count_params() < plain.count_params()
    assert model.output_shape == plain.output_shape == (None, 5)
    again = build_cnn(784, 5, filters=(4, 8), separable=True, seed=0)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_cnn_block_dropout_sets_the_blocks_rate_apart_from_the_heads():
    def rates(model):
        return {d.name: d.rate for d in of_type(model, layers.Dropout)}

    kw = {"filters": (4, 8), "dense_units": (6,), "dropout": 0.3}
    assert rates(build_cnn(784, 5, **kw)) == {  # None: the head's rate
        "drop_0": 0.3,
        "drop_1": 0.3,
        "dense_drop_0": 0.3,
    }
    assert rates(build_cnn(784, 5, block_dropout=0.1, **kw)) == {
        "drop_0": 0.1,
        "drop_1": 0.1,
        "dense_drop_0": 0.3,
    }
    # 0: no Dropout layer in the blocks at all (not a rate-0 layer)
    assert rates(build_cnn(784, 5, block_dropout=0.0, **kw)) == {"dense_drop_0": 0.3}


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


# -- LeakyReLU that Grappler's remapper accepts (issues 13 and 15) -----------

# One training step of a tiny EmnistCNN (the default's two blocks of two
# convolutions). One precision per process: TensorFlow logs the remapper's
# failure once per process, so a second fit there would prove nothing.
_ONE_STEP = """
import sys
import numpy as np
from emnist_estimators import EmnistCNN
X = np.random.default_rng(0).integers(0, 256, (16, 784), dtype=np.uint8)
clf = EmnistCNN(filters=(4, 8), dense_units=(8,), epochs=1, batch_size=16,
                validation_fraction=0, random_state=0, precision=sys.argv[1])
clf.fit(X, np.arange(16) % 3)
print("trained", clf.dtype_policy_, flush=True)
"""


# "auto" is float32 in the default run (EMNIST_ESTIMATORS_CPU_BF16=0), the
# CPU's own choice (bf16 where it has it) in the slow stage
@pytest.mark.parametrize(
    "precision", ["float32", pytest.param("auto", marks=pytest.mark.slow)]
)
def test_cnn_training_graph_passes_grappler_remapper(precision):
    """No ``E0000 ... remapper failed`` while an EmnistCNN trains.

    TensorFlow's LeakyRelu gradient read the convolution's BiasAdd, which the
    remapper deletes when it fuses Conv2D + BiasAdd + LeakyRelu: the pass
    failed and was skipped for the whole training graph, in float32 and in
    mixed bfloat16 ('auto' on a CPU with bfloat16), and users saw a C++ error
    line on every fit.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", _ONE_STEP, precision],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trained" in proc.stdout, proc.stdout
    failed = [line for line in proc.stderr.splitlines() if "remapper failed" in line]
    assert failed == []


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("slope", [0.0, 0.3, 1.0, 2.5])
def test_fusable_leaky_relu_equals_keras_leaky_relu(dtype, slope):
    """Same values and the same gradient as Keras' LeakyReLU, at 0 too."""
    import tensorflow as tf

    x = tf.constant([-3.0, -1e-3, -0.0, 0.0, 1e-3, 2.0, 7.5], dtype=dtype)
    results = []
    for kind in (layers.LeakyReLU, FusableLeakyReLU):
        layer = kind(slope, dtype=dtype)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * tf.range(1, 8, dtype=dtype))
        results.append((y.numpy(), tape.gradient(loss, x).numpy()))
    (y_keras, dx_keras), (y_ours, dx_ours) = results
    np.testing.assert_array_equal(y_ours, y_keras)
    np.testing.assert_array_equal(dx_ours, dx_keras)


def test_cnn_uses_fusable_leaky_relu_under_the_old_names():
    model = build_cnn(784, 3, filters=(4, 8), negative_slope=0.2)
    leaky = of_type(model, FusableLeakyReLU)
    assert [layer.name for layer in leaky] == [
        "leaky_0_0",
        "leaky_0_1",
        "leaky_1_0",
        "leaky_1_1",
    ]
    assert {layer.get_config()["negative_slope"] for layer in leaky} == {0.2}


def test_same_seed_same_trained_cnn():
    X, y = bar_images(64, rng=1)
    X = X.reshape(64, 784)

    def fit():
        clf = EmnistCNN(
            filters=(4,),
            dense_units=(8,),
            epochs=2,
            batch_size=16,
            validation_fraction=0,
            random_state=5,
        )
        return clf.fit(X, y).predict_proba(X)

    np.testing.assert_array_equal(fit(), fit())


def test_networks_saved_with_keras_leaky_relu_still_load(tmp_path, monkeypatch):
    """Files written before FusableLeakyReLU hold Keras' own layer: they load."""
    X, y = bar_images(48, rng=2)
    X = X.reshape(48, 784)
    with monkeypatch.context() as patch:
        patch.setattr(architectures, "FusableLeakyReLU", layers.LeakyReLU)
        old = EmnistCNN(
            filters=(4,),
            dense_units=(8,),
            epochs=1,
            batch_size=16,
            validation_fraction=0,
            random_state=0,
        ).fit(X, y)
        old.save(tmp_path / "old.keras")
    with zipfile.ZipFile(tmp_path / "old.keras") as zf:
        config = zf.read("config.json").decode()
    assert '"class_name": "LeakyReLU"' in config
    assert "FusableLeakyReLU" not in config
    loaded = load_model(tmp_path / "old.keras")
    leaky = of_type(loaded.model_, layers.LeakyReLU)
    assert len(leaky) == 2 and not of_type(loaded.model_, FusableLeakyReLU)
    np.testing.assert_array_equal(loaded.predict_proba(X), old.predict_proba(X))
