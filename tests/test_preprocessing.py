"""PixelScaler: what a user feeding it pixels relies on.

scikit-learn's generic checks (``test_common.py``) cover the API contract;
these cover the pixels: scaling, shapes, orientation, refusals, names.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline

from emnist_estimators import PixelScaler
from emnist_estimators.exceptions import DataFormatError, EmnistEstimatorsError


def glyphs(n: int = 6, seed: int = 0) -> np.ndarray:
    """Upright uint8 28x28 images of an 'L' (not symmetric under transpose)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 30, size=(n, 28, 28), dtype=np.uint8)
    images[:, 4:24, 6:9] = 255  # vertical bar on the left
    images[:, 21:24, 6:20] = 200  # horizontal bar at the bottom
    return images


def test_uint8_and_float_pixels_become_float32_in_unit_range():
    X = glyphs().reshape(6, 784)
    from_uint8 = PixelScaler().fit_transform(X)
    from_float = PixelScaler().fit_transform(X.astype(np.float64))
    assert from_uint8.dtype == from_float.dtype == np.float32
    np.testing.assert_array_equal(from_uint8, from_float)
    np.testing.assert_allclose(from_uint8, X / 255.0, rtol=1e-6)
    assert from_uint8.min() >= 0.0 and from_uint8.max() == 1.0


def test_lists_and_dataframes_are_accepted():
    X = glyphs(3).reshape(3, 784)
    expected = PixelScaler().fit_transform(X)
    np.testing.assert_array_equal(PixelScaler().fit_transform(X.tolist()), expected)
    frame = pd.DataFrame(X, columns=[f"p{i}" for i in range(784)])
    np.testing.assert_array_equal(PixelScaler().fit_transform(frame), expected)


@pytest.mark.parametrize("shape", [(6, 28, 28), (6, 28, 28, 1)])
def test_image_batches_give_the_same_rows_as_flat_pixels(shape):
    images = glyphs()
    flat = PixelScaler().fit_transform(images.reshape(6, 784))
    scaler = PixelScaler().fit(images.reshape(shape))
    assert scaler.n_features_in_ == 784
    np.testing.assert_array_equal(scaler.transform(images.reshape(shape)), flat)
    # fitted on images, it takes flat rows too (and the other way round)
    np.testing.assert_array_equal(scaler.transform(images.reshape(6, 784)), flat)


def test_image_output_shape():
    images = glyphs()
    out = PixelScaler(output_shape="image").fit_transform(images.reshape(6, 784))
    assert out.shape == (6, 28, 28, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., 0], images / 255.0, rtol=1e-6)


def test_fix_orientation_turns_stored_emnist_images_upright():
    upright = glyphs()
    stored = upright.transpose(0, 2, 1).reshape(6, 784)  # as EMNIST files hold them
    fixed = PixelScaler(fix_orientation=True).fit_transform(stored)
    np.testing.assert_allclose(fixed, upright.reshape(6, 784) / 255.0, rtol=1e-6)
    assert fixed.flags.c_contiguous
    as_images = PixelScaler(fix_orientation=True, output_shape="image")
    np.testing.assert_array_equal(
        as_images.fit_transform(stored)[..., 0], fixed.reshape(6, 28, 28)
    )


def test_max_value_one_validates_scaled_data_without_rescaling():
    X = np.linspace(0, 1, 784, dtype=np.float32).reshape(1, 784)
    np.testing.assert_array_equal(PixelScaler(max_value=1.0).fit_transform(X), X)


def test_uint8_pixels_above_max_value_are_refused():
    """uint8 0..255 given to a scaler told the data is in [0, 1] was passed on
    unscaled (values up to 255): a model then sees inputs 255 times too large."""
    raw = glyphs(2).reshape(2, 784)
    with pytest.raises(DataFormatError, match=r"up to 255 .* \[0, 1\]"):
        PixelScaler(max_value=1.0).fit(raw)
    binary = (raw > 128).astype(np.uint8)  # 0/1 in uint8 is valid scaled data
    np.testing.assert_array_equal(
        PixelScaler(max_value=1.0).fit_transform(binary), binary
    )


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros(784), "Reshape your data"),
        (np.zeros((2, 28, 28, 3)), "one grey channel"),
        (np.zeros((2, 1, 28, 28, 1)), "5 dimensions"),
        (-np.ones((2, 784)), "Negative values .*minimum -1"),
        (np.full((2, 784), 256.0), "up to 256 .* Clip or rescale"),
    ],
    ids=["1-D", "colour", "5-D", "negative", "above-255"],
)
def test_malformed_pixels_are_refused_naming_the_fix(X, match):
    with pytest.raises(DataFormatError, match=match) as info:
        PixelScaler().fit(X)
    # catchable as the package's error and as the builtin alike
    assert isinstance(info.value, EmnistEstimatorsError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "X, match, exc",
    [
        (np.full((2, 784), np.nan), "NaN", ValueError),
        (np.full((2, 784), np.inf), "infinity", ValueError),
        (np.zeros((0, 784)), "0 sample", ValueError),
        (sparse.csr_matrix(np.ones((2, 784))), r"toarray\(\)", TypeError),
    ],
    ids=["NaN", "inf", "empty", "sparse"],
)
def test_missing_empty_and_sparse_pixels_are_refused(X, match, exc):
    with pytest.raises(exc, match=match):
        PixelScaler().fit(X)


def test_pixels_are_checked_at_transform_too():
    scaler = PixelScaler().fit(glyphs(2).reshape(2, 784))
    with pytest.raises(ValueError, match="up to 300"):
        scaler.transform(np.full((1, 784), 300.0))
    with pytest.raises(ValueError, match="X has 100 features, but PixelScaler"):
        scaler.transform(np.zeros((1, 100)))
    with pytest.raises(NotFittedError):
        PixelScaler().transform(np.zeros((1, 784)))


def test_generic_features_pass_unless_images_are_needed():
    X = np.arange(10, dtype=np.float64).reshape(1, 10)
    np.testing.assert_allclose(PixelScaler().fit_transform(X), X / 255.0, rtol=1e-6)
    for options in ({"fix_orientation": True}, {"output_shape": "image"}):
        with pytest.raises(ValueError, match="10 pixels per sample are not a square"):
            PixelScaler(**options).fit(X)


def test_feature_names_follow_the_pixels_they_name():
    images = glyphs(3)
    names = [f"r{i // 28}c{i % 28}" for i in range(784)]
    frame = pd.DataFrame(images.reshape(3, 784), columns=names)
    scaler = PixelScaler(fix_orientation=True).set_output(transform="pandas")
    out = scaler.fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert sorted(out.columns) == sorted(names) and list(out.columns) != names
    # every output column holds the pixel its name says, whatever its position
    np.testing.assert_allclose(out[names].to_numpy(), frame.to_numpy() / 255.0)
    assert list(scaler.get_feature_names_out()) == list(out.columns)
    assert list(PixelScaler().fit(frame).get_feature_names_out()) == names
    unnamed = PixelScaler().fit(images.reshape(3, 784)).get_feature_names_out()
    assert list(unnamed[:2]) == ["x0", "x1"] and len(unnamed) == 784


def test_clone_and_pickle_keep_the_options():
    stored = glyphs(2).transpose(0, 2, 1).reshape(2, 784)
    scaler = PixelScaler(max_value=510.0, fix_orientation=True).fit(stored)
    expected = scaler.transform(stored)
    restored = pickle.loads(pickle.dumps(scaler))
    np.testing.assert_array_equal(restored.transform(stored), expected)
    copy = clone(scaler)
    assert copy.get_params() == scaler.get_params()
    assert not hasattr(copy, "n_features_in_")
    np.testing.assert_array_equal(copy.fit_transform(stored), expected)


def test_in_a_pipeline_its_output_is_what_the_classifier_fits():
    """Stored-orientation pixels, turned upright and scaled, then classified."""
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    images = rng.integers(0, 40, size=(60, 28, 28), dtype=np.uint8)
    images[y == 0, 4:24, 12:15] = 255  # vertical bars
    images[y == 1, 12:15, 4:24] = 255  # horizontal bars
    X = images.transpose(0, 2, 1).reshape(60, 784)
    pipe = Pipeline(
        [("scale", PixelScaler(fix_orientation=True)), ("clf", LogisticRegression())]
    )
    assert cross_val_score(pipe, X, y, cv=3).min() == 1.0
    pipe.fit(X, y)
    seen = pipe[:-1].transform(X)
    assert seen.dtype == np.float32 and seen.max() <= 1.0
    np.testing.assert_allclose(seen, images.reshape(60, 784) / 255.0, rtol=1e-6)
