"""Training recipe options: label smoothing, the warm-up cosine schedule and
the CNN's block dropout."""

from __future__ import annotations

import pickle

import keras
import numpy as np
import pytest
from helpers import bar_images, rewrite_saved_state
from sklearn.base import clone

from emnist_estimators import EmnistCNN, EmnistMLP, load_model


@pytest.fixture(scope="module")
def data():
    X, y = bar_images(180, rng=0)
    return X.reshape(len(X), 784), y


def mlp(**kw):
    params = {
        "hidden_layer_sizes": (32,),
        "epochs": 15,
        "batch_size": 32,
        "learning_rate": 3e-3,
        "validation_fraction": 0,
        "random_state": 0,
    }
    return EmnistMLP(**{**params, **kw})


def test_label_smoothing_keeps_probabilities_off_one(data):
    X, y = data
    fast = {
        "epochs": 20,
        "learning_rate": 1e-2,
        "dropout": 0,
        "lr_schedule": "constant",
    }
    plain = mlp(label_smoothing=0.0, **fast).fit(X, y)  # the default smooths
    smoothed = mlp(label_smoothing=0.3, **fast).fit(X, y)
    # both learn the easy classes
    assert plain.score(X, y) == 1.0 and smoothed.score(X, y) == 1.0
    # the smoothed target of the true class is 1 - 0.3 + 0.3 / 3 = 0.8: the
    # network is trained towards it, not towards 1
    assert plain.predict_proba(X).max(axis=1).min() > 0.98
    top = smoothed.predict_proba(X).max(axis=1)
    assert 0.75 < top.mean() < 0.85, top.mean()
    assert top.max() < 0.9
    assert smoothed.model_.loss.label_smoothing == 0.3


def test_smoothed_model_round_trips_through_pickle_and_save(data, tmp_path):
    X, y = data
    clf = mlp(epochs=2, label_smoothing=0.1).fit(X, y)
    expected = clf.predict_proba(X)
    for again in (
        pickle.loads(pickle.dumps(clf)),
        _saved_and_loaded(clf, tmp_path / "model.keras"),
    ):
        np.testing.assert_array_equal(again.predict_proba(X), expected)
        assert again.get_params()["label_smoothing"] == 0.1
        assert again.model_.loss.label_smoothing == 0.1
        # it trains on: partial_fit uses the restored loss
        again.partial_fit(X, y)


@pytest.mark.parametrize("value", [-0.1, 1.0, "0.1"])
def test_label_smoothing_out_of_range_is_refused(data, value):
    X, y = data
    with pytest.raises(ValueError, match="label_smoothing"):
        mlp(label_smoothing=value).fit(X, y)


def test_warmup_cosine_rises_then_decays(data):
    X, y = data
    clf = mlp(lr_schedule="warmup_cosine", epochs=4, learning_rate=1e-2).fit(X, y)
    schedule = clf.model_.optimizer._learning_rate
    steps = 4 * -(-len(y) // 32)  # 4 epochs of 6 batches
    warmup = max(1, steps // 20)
    rates = [float(schedule(s)) for s in range(steps + 1)]
    assert rates[0] == pytest.approx(1e-3)  # starts at 10%
    assert rates[warmup] == pytest.approx(1e-2)  # the peak after the warm-up
    assert max(rates) == pytest.approx(1e-2)
    assert rates[-1] == pytest.approx(1e-4, rel=1e-3)  # 1% at the end
    assert np.all(np.diff(rates[warmup:]) <= 0)  # then only decays
    # the optimizer ran every step of the plan
    assert int(clf.model_.optimizer.iterations) == steps


def tiny_cnn(**kw):
    params = {"convs_per_block": 1, "dense_units": (8,), "epochs": 1}
    return EmnistCNN((4,), **{**params, "random_state": 0, **kw})


def test_cnn_takes_the_recipe_options(data):
    X, y = data
    clf = tiny_cnn(batch_size=32, label_smoothing=0.1, lr_schedule="warmup_cosine").fit(
        X, y
    )
    assert clf.model_.loss.label_smoothing == 0.1
    assert clf.predict(X).shape == y.shape


def test_cnn_takes_one_depth_per_block_and_keeps_it_through_save(data, tmp_path):
    X, y = data
    clf = EmnistCNN((4, 8), convs_per_block=(2, 1), dense_units=(8,), epochs=1)
    clf.set_params(random_state=0).fit(X, y)
    convs = [layer.name for layer in clf.model_.layers if layer.name.startswith("conv")]
    assert convs == ["conv_0_0", "conv_0_1", "conv_1_0"]
    clf.save(tmp_path / "m.keras")
    back = load_model(tmp_path / "m.keras")
    assert tuple(back.convs_per_block) == (2, 1)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    with pytest.raises(ValueError, match="convs_per_block has 3 entries for 2"):
        clone(clf).set_params(convs_per_block=(1, 1, 1)).fit(X, y)


def test_a_file_saved_before_smoothing_existed_loads_as_unsmoothed(data, tmp_path):
    X, y = data
    clf = tiny_cnn(label_smoothing=0).fit(X, y)
    clf.save(tmp_path / "m.keras")
    # as earlier 0.1.0 builds wrote it
    rewrite_saved_state(
        tmp_path / "m.keras", tmp_path / "old.keras", _without_param("label_smoothing")
    )
    old = load_model(tmp_path / "old.keras")
    assert EmnistCNN().label_smoothing == 0.1  # today's default...
    assert old.label_smoothing == 0.0  # ...is not how that file was trained
    np.testing.assert_array_equal(old.predict_proba(X), clf.predict_proba(X))


def _without_param(name: str):
    """A ``rewrite_saved_state`` edit: the file of a build before ``name``."""
    return lambda state: state["params"].pop(name)


def test_cnn_block_dropout_sets_the_blocks_rate_apart_from_the_heads(data):
    X, y = data
    dropouts = {
        bd: [
            (layer.name, layer.rate)
            for layer in tiny_cnn(block_dropout=bd).fit(X, y).model_.layers
            if isinstance(layer, keras.layers.Dropout)
        ]
        for bd in (0.0, None, 0.4)
    }
    assert EmnistCNN().block_dropout is None  # the report's network
    assert dropouts[None] == [("drop_0", 0.25), ("dense_drop_0", 0.25)]
    assert dropouts[0.0] == [("dense_drop_0", 0.25)]  # the dense head only
    assert dropouts[0.4] == [("drop_0", 0.4), ("dense_drop_0", 0.25)]


@pytest.mark.parametrize("value", [-0.1, 1.0, "half"])
def test_block_dropout_out_of_range_is_refused(data, value):
    X, y = data
    with pytest.raises(ValueError, match="block_dropout"):
        tiny_cnn(block_dropout=value).fit(X, y)


def test_a_file_saved_before_block_dropout_existed_loads_with_it(
    data, tmp_path, monkeypatch
):
    X, y = data
    clf = tiny_cnn(block_dropout=None).fit(X, y)
    clf.save(tmp_path / "m.keras")
    rewrite_saved_state(
        tmp_path / "m.keras", tmp_path / "old.keras", _without_param("block_dropout")
    )
    # whatever the default becomes, such a file trained with block dropout
    defaults = {**EmnistCNN.__init__.__kwdefaults__, "block_dropout": 0.0}
    monkeypatch.setattr(EmnistCNN.__init__, "__kwdefaults__", defaults)
    assert EmnistCNN().block_dropout == 0.0
    old = load_model(tmp_path / "old.keras")
    assert old.block_dropout is None  # the blocks dropped out at ``dropout``
    assert "drop_0" in [layer.name for layer in old.model_.layers]
    np.testing.assert_array_equal(old.predict_proba(X), clf.predict_proba(X))
    # and a later fit rebuilds the network it was saved with
    assert old.set_params(epochs=1).fit(X, y).model_.get_layer("drop_0").rate == 0.25


def _saved_and_loaded(clf, path):
    clf.save(path)
    return load_model(path)
