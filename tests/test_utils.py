"""The private helpers every estimator relies on: input checks and seeding.

The estimators' own tests reach these through ``fit``; here each behaviour is
pinned where it lives, without training anything.
"""

from __future__ import annotations

import json
import random
from numbers import Integral
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, InvalidParameterError

from emnist_estimators import _utils
from emnist_estimators._utils import (
    check_elements,
    check_labels,
    check_pixels,
    jsonable,
    jsonable_params,
    resolve_precision,
    resolve_seed,
    seeded,
)
from emnist_estimators.exceptions import DataFormatError


class Holder(BaseEstimator):
    """A stand-in estimator: check_pixels records n_features_in_ on it."""

    def __init__(self, sizes=(8, 4)):
        self.sizes = sizes


# --- check_pixels -----------------------------------------------------------------
def test_uint8_pixels_are_not_copied():
    """A whole EMNIST split is ~90 MB as uint8, four times that as float32."""
    X = np.zeros((3, 784), np.uint8)
    out, image_shape = check_pixels(Holder(), X, reset=True)
    assert out.dtype == np.uint8 and np.shares_memory(out, X)
    assert image_shape is None
    as_float, _ = check_pixels(Holder(), X, reset=True, keep_uint8=False)
    assert as_float.dtype == np.float32


@pytest.mark.parametrize("shape", [(3, 4, 7), (3, 4, 7, 1)])
def test_image_batches_are_flattened_and_their_shape_returned(shape):
    X = np.arange(np.prod(shape), dtype=np.float64).reshape(shape) % 256
    holder = Holder()
    out, image_shape = check_pixels(holder, X, reset=True)
    assert image_shape == (4, 7)
    assert out.shape == (3, 28) and out.dtype == np.float32
    np.testing.assert_array_equal(out, X.reshape(3, 28))
    assert holder.n_features_in_ == 28


def test_feature_count_and_names_are_recorded_then_enforced():
    holder = Holder()
    check_pixels(holder, np.zeros((2, 4)), reset=True)
    assert holder.n_features_in_ == 4
    with pytest.raises(ValueError, match="X has 5 features, but Holder is expecting 4"):
        check_pixels(holder, np.zeros((2, 5)), reset=False)
    frame = pd.DataFrame(np.zeros((2, 4)), columns=list("abcd"))
    check_pixels(holder, frame, reset=True)
    assert list(holder.feature_names_in_) == list("abcd")
    with pytest.raises(ValueError, match="same order as they were in fit"):
        check_pixels(holder, frame[list("abdc")], reset=False)


def test_fitted_checks_give_validate_datas_arrays_and_errors():
    """After fit, plain arrays skip validate_data: the same result, same errors."""
    holder = Holder()
    check_pixels(holder, np.zeros((2, 4)), reset=True)
    u8 = np.array([[0, 9, 255, 3]], np.uint8)
    out, _ = check_pixels(holder, u8, reset=False)
    assert out.dtype == np.uint8 and np.shares_memory(out, u8)
    f32 = np.array([[0, 9, 255, 3]], np.float32)
    assert check_pixels(holder, f32, reset=False)[0] is f32  # no copy
    out, _ = check_pixels(holder, f32.astype(np.float64), reset=False)
    assert out.dtype == np.float32 and out.tolist() == f32.tolist()
    for bad, match in [
        (np.array([[0, np.nan, 1, 2]]), "NaN"),
        (np.array([[0, np.inf, 1, 2]], np.float32), "infinity"),
        (np.array([[0, 1e300, 1, 2]]), "too large for dtype"),  # inf as float32
        (np.zeros((1, 5), np.uint8), "X has 5 features, but Holder is expecting 4"),
        (np.zeros((0, 4), np.float32), "0 sample"),
        (np.array([[0, -1, 1, 2]], np.float32), "Negative values"),
    ]:
        with pytest.raises(ValueError, match=match):
            check_pixels(holder, bad, reset=False)
    frame = pd.DataFrame(np.zeros((2, 4)), columns=list("abcd"))
    check_pixels(holder, frame, reset=True)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        check_pixels(holder, f32, reset=False)


def test_fitted_plain_arrays_skip_sklearn_validation(monkeypatch):
    """Its checks cost as much as the network's answer for one image."""
    holder = Holder()
    check_pixels(holder, np.zeros((2, 4)), reset=True)

    def refuse(*args, **kwargs):
        raise AssertionError("validate_data ran for a plain fitted array")

    monkeypatch.setattr(_utils, "validate_data", refuse)
    for X in (np.zeros((1, 4), np.uint8), np.ones((3, 2, 2)), np.ones((1, 4), "f4")):
        assert check_pixels(holder, X, reset=False)[0].shape == (len(X), 4)


def test_range_check_follows_max_value():
    X = np.array([[0.0, 1000.0]])
    out, _ = check_pixels(Holder(), X, reset=True, max_value=None)  # unchecked
    assert out.max() == 1000.0
    with pytest.raises(DataFormatError, match="up to 1000 passed to Holder"):
        check_pixels(Holder(), X, reset=True)
    with pytest.raises(DataFormatError, match=r"expects values in \[0, 1\]"):
        check_pixels(Holder(), np.array([[0, 2]], np.uint8), reset=True, max_value=1)


def test_text_pixels_become_numbers_or_a_clear_error():
    out, _ = check_pixels(Holder(), np.array([["0", "255"]]), reset=True)
    assert out.dtype == np.float32 and out.tolist() == [[0.0, 255.0]]
    with pytest.raises(ValueError, match="could not convert"):
        check_pixels(Holder(), np.array([["0", "white"]]), reset=True)


# --- check_labels -----------------------------------------------------------------
@pytest.mark.parametrize("gap", [None, np.nan, pd.NA])
def test_missing_labels_are_named_by_position(gap):
    y = np.array(["a", "b", gap, "a", gap], dtype=object)
    with pytest.raises(DataFormatError, match=r"2 of 5 samples, at positions \[2, 4\]"):
        check_labels(y)


def test_many_missing_labels_are_listed_ten_at_most():
    y = np.array([None] * 12 + ["a"], dtype=object)
    with pytest.raises(
        DataFormatError, match=r"\[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\]\.\.\."
    ):
        check_labels(y)


def test_mixed_label_types_are_refused():
    with pytest.raises(DataFormatError, match=r"mixes label types \(int, str\)"):
        check_labels(np.array([1, "a", 2], dtype=object))


@pytest.mark.parametrize(
    "y",
    [np.array([0, 1, 1]), np.array(["a", "b"]), np.array(["a", "b"], dtype=object)],
)
def test_complete_labels_pass(y):
    check_labels(y)  # no error


# --- check_elements ---------------------------------------------------------------
SIZES = {"sizes": Interval(Integral, 1, None, closed="left")}


@pytest.mark.parametrize("sizes", [(), (3,), [np.int64(2), 5]])
def test_valid_elements_pass(sizes):
    check_elements(Holder(sizes=sizes), SIZES)


@pytest.mark.parametrize(
    "sizes, bad", [((4, 0), "element 1 is 0 (int)"), ((True,), "element 0 is True")]
)
def test_bad_element_is_named_with_the_default_as_example(sizes, bad):
    with pytest.raises(InvalidParameterError) as info:
        check_elements(Holder(sizes=sizes), SIZES)
    message = str(info.value)
    assert message.startswith("The 'sizes' parameter of Holder must be a tuple or")
    assert bad in message and "Pass e.g. sizes=(8, 4) (the default)." in message


# --- resolve_seed / seeded --------------------------------------------------------
def test_resolve_seed():
    assert resolve_seed(None) is None
    assert resolve_seed(7) == 7 and type(resolve_seed(np.int64(7))) is int
    # the same generator state gives the same seed: searches stay reproducible
    rs = resolve_seed(np.random.RandomState(0))
    assert rs == resolve_seed(np.random.RandomState(0)) and 0 <= rs < 2**31
    gen = resolve_seed(np.random.default_rng(0))
    assert gen == resolve_seed(np.random.default_rng(0)) and 0 <= gen < 2**31
    with pytest.raises(ValueError, match="random_state must be None, an int"):
        resolve_seed("0")


def _draws() -> tuple[float, float, float]:
    value = keras.ops.convert_to_numpy(keras.random.uniform(()))
    return random.random(), float(np.random.rand()), float(value)


def test_seeded_blocks_draw_the_same_numbers_and_leave_no_trace():
    random.seed(1)
    np.random.seed(1)
    expected = (random.random(), float(np.random.rand()))
    random.seed(1)
    np.random.seed(1)
    with seeded(5):
        first = _draws()
    assert (random.random(), float(np.random.rand())) == expected  # state restored
    with pytest.raises(RuntimeError):  # restored after an error, too
        with seeded(5):
            second = _draws()
            raise RuntimeError
    assert first == second
    with seeded(6):
        assert _draws() != first


def test_seeded_none_changes_nothing():
    random.seed(2)
    expected = [random.random(), random.random()]
    random.seed(2)
    with seeded(None):
        got = [random.random()]
    got.append(random.random())
    assert got == expected


# --- resolve_precision ------------------------------------------------------------
@pytest.mark.parametrize(
    "precision, gpus, bf16, policy",
    [
        ("float32", [], True, None),
        ("mixed_bfloat16", [(8, 0)], False, "mixed_bfloat16"),  # asked: given
        ("mixed_float16", [], True, "mixed_float16"),
        ("auto", [], True, "mixed_bfloat16"),
        ("auto", [], False, None),  # emulated bfloat16 would be slower
        ("auto", [(7, 0)], True, "mixed_float16"),  # V100: tensor cores
        ("auto", [(9, 0), (8, 6)], False, "mixed_float16"),  # H100 + RTX 30xx
        ("auto", [(6, 1)], True, None),  # Pascal: no float16 tensor cores
        ("auto", [(8, 0), (6, 0)], True, None),  # one slow GPU: float32 for all
    ],
)
def test_resolve_precision(monkeypatch, precision, gpus, bf16, policy):
    """The device query is mocked: TensorFlow's own answers, as it gives them."""
    import tensorflow as tf

    devices = [
        tf.config.PhysicalDevice(name=f"/physical_device:GPU:{i}", device_type="GPU")
        for i in range(len(gpus))
    ]
    details = {
        d.name: {"compute_capability": c} for d, c in zip(devices, gpus, strict=True)
    }
    monkeypatch.setattr(
        tf.config, "list_physical_devices", lambda kind=None: list(devices)
    )
    monkeypatch.setattr(
        tf.config.experimental, "get_device_details", lambda d: details[d.name]
    )
    monkeypatch.setattr(_utils, "_cpu_has_bf16", lambda: bf16)
    assert resolve_precision(precision) == policy


@pytest.mark.parametrize("value, policy", [("0", None), ("1", "mixed_bfloat16")])
def test_cpu_bf16_switch_decides_what_auto_picks_on_a_cpu(monkeypatch, value, policy):
    """EMNIST_ESTIMATORS_CPU_BF16 answers for the CPU's flags, either way (CI
    runs the default suite with 0, as on a CPU without bfloat16)."""
    monkeypatch.setattr(_utils, "_gpu_compute_capabilities", lambda: [])
    monkeypatch.setenv(_utils.CPU_BF16_ENV, value)
    assert resolve_precision("auto") == policy
    assert resolve_precision("float32") is None  # an explicit choice is kept
    monkeypatch.setenv(_utils.CPU_BF16_ENV, "no")
    with pytest.raises(ValueError, match="EMNIST_ESTIMATORS_CPU_BF16='no'.* 0 "):
        resolve_precision("auto")


# --- jsonable ---------------------------------------------------------------------
def test_jsonable_turns_parameters_into_plain_json_values():
    def square(x):
        return x * x

    params = {
        "hidden_layer_sizes": (64, np.int64(32)),
        "dropout": np.float32(0.5),
        "batch_norm": np.bool_(True),
        "block_dropout": None,
        "activation": "relu",
        "class_weight": {np.int64(0): 2.0, 1: np.float64(1.5), "A": 1},
        "checkpoint_dir": Path("runs") / "ckpt",
        "random_state": np.random.RandomState(0),
        "rng": np.random.default_rng(0),
        "loss": square,
        "callbacks": [object()],
    }
    got = jsonable_params(params)
    assert got == {
        "hidden_layer_sizes": [64, 32],
        "dropout": 0.5,
        "batch_norm": True,
        "block_dropout": None,
        "activation": "relu",
        "class_weight": {"0": 2.0, "1": 1.5, "A": 1},
        "checkpoint_dir": str(Path("runs") / "ckpt"),
        "random_state": "RandomState",  # its repr names an address
        "rng": "Generator",
        "loss": repr(square),
    }
    # Python types only: numpy's scalars are gone, the result is valid JSON
    assert type(got["hidden_layer_sizes"][1]) is int
    assert type(got["dropout"]) is float and type(got["batch_norm"]) is bool
    assert json.loads(json.dumps(got)) == got


def test_jsonable_params_leaves_out_the_names_given():
    params = {"epochs": 3, "verbose": 1, "callbacks": None}
    assert jsonable_params(params) == {"epochs": 3, "verbose": 1}
    assert jsonable_params(params, exclude=("verbose",)) == {
        "epochs": 3,
        "callbacks": None,
    }
    assert jsonable([(1, 2), [np.int8(3)]]) == [[1, 2], [3]]
