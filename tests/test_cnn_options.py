"""EmnistCNN's ``batch_norm`` and ``augment`` options, on tiny data.

One small network with both options is trained once for the module; the tests
check that the options really change the network (the layers are there and
are trained), that augmentation acts in training only, and that such a model
survives pickling and ``save``/``load_model`` unchanged.
"""

from __future__ import annotations

import pickle

import keras
import numpy as np
import pytest
from helpers import bar_images

from emnist_estimators import EmnistCNN, load_model

TINY = {
    "filters": (8,),
    "dense_units": (16,),
    "epochs": 3,
    "batch_size": 32,
    "lr_schedule": "constant",
    "learning_rate": 3e-3,
    "dropout": 0.1,
    "random_state": 0,
}
AUGMENTATION = ("shift", "rotate")


@pytest.fixture(scope="module")
def data():
    X, y = bar_images(180, rng=0)
    return X.reshape(len(X), 784), y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return EmnistCNN(batch_norm=True, augment=True, **TINY).fit(X, y)


def _layers(model, kind) -> list[str]:
    return [layer.name for layer in model.layers if isinstance(layer, kind)]


def test_options_change_the_network(fitted):
    """Each option adds its layers; the defaults add none."""
    model = fitted.model_
    assert _layers(model, keras.layers.BatchNormalization) == ["bn_0_0", "bn_0_1"]
    assert _layers(model, keras.layers.RandomTranslation) == ["shift"]
    assert _layers(model, keras.layers.RandomRotation) == ["rotate"]
    # A bias before batch normalisation is wasted: BN's beta replaces it.
    assert not any(model.get_layer(f"conv_0_{c}").use_bias for c in range(2))
    plain = EmnistCNN(**TINY)._build_model(784, 3, None, 1 / 255, 0)
    assert _layers(plain, keras.layers.BatchNormalization) == []
    assert not set(AUGMENTATION) & {layer.name for layer in plain.layers}


def test_tiny_fit_learns_and_trains_batch_norm(fitted, data):
    X, y = data
    assert fitted.n_iter_ == 3
    loss = fitted.history_["loss"]
    assert loss[-1] < loss[0]
    # Three easy classes, chance 1/3. After 15 steps batch normalisation's
    # moving statistics have only started to follow the batches, so inference
    # is less sure than training: the margin is wide on purpose.
    assert fitted.score(X, y) > 0.6
    # The moving statistics start at 0 (mean) and 1 (variance): training moved them.
    bn = fitted.model_.get_layer("bn_0_0")
    assert np.abs(bn.moving_mean.numpy()).max() > 1e-3
    assert np.abs(bn.moving_variance.numpy() - 1).max() > 1e-3


# Keras warns inside its own code when this test calls Keras directly (not
# through our save/pickle, which tests/test_warnings.py checks stay silent).
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_augmentation_acts_in_training_only(fitted, data):
    X, _ = data
    model = fitted.model_
    augmented = keras.Model(model.input, model.get_layer("rotate").output)
    batch = X[:16].astype("float32")
    reference = batch.reshape(-1, 28, 28, 1) * fitted.input_scale_
    # atol: under precision='auto' the layers may compute in bfloat16
    at_inference = keras.ops.convert_to_numpy(augmented(batch, training=False))
    np.testing.assert_allclose(at_inference, reference, rtol=1e-2, atol=1e-3)
    shifted = keras.ops.convert_to_numpy(augmented(batch, training=True))
    assert shifted.shape == reference.shape
    assert np.abs(shifted - reference).max() > 0.1  # moved glyphs
    # predict is deterministic and runs the network in inference mode
    np.testing.assert_array_equal(fitted.predict_proba(X), fitted.predict_proba(X))
    inference = keras.ops.convert_to_numpy(model(batch, training=False))
    np.testing.assert_allclose(fitted.predict_proba(X[:16]), inference, atol=2e-3)


def test_pickle_keeps_options_and_predictions(fitted, data):
    X, _ = data
    restored = pickle.loads(pickle.dumps(fitted))
    assert restored.batch_norm is True and restored.augment is True
    assert _layers(restored.model_, keras.layers.BatchNormalization) == [
        "bn_0_0",
        "bn_0_1",
    ]
    assert {"shift", "rotate"} <= {layer.name for layer in restored.model_.layers}
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))


def test_save_and_load_keep_options_and_predictions(fitted, data, tmp_path):
    X, _ = data
    path = tmp_path / "cnn.keras"
    fitted.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, EmnistCNN)
    assert loaded.get_params()["batch_norm"] is True
    assert loaded.get_params()["augment"] is True
    names = {layer.name for layer in loaded.model_.layers}
    assert {"bn_0_0", "bn_0_1", "shift", "rotate"} <= names
    bn, saved_bn = loaded.model_.get_layer("bn_0_0"), fitted.model_.get_layer("bn_0_0")
    np.testing.assert_array_equal(bn.moving_mean.numpy(), saved_bn.moving_mean.numpy())
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
