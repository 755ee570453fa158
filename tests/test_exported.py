"""exported.py: an exported model read back and run with its own runtime.

``load_exported`` takes the format, classes and input from the sidecar;
``ExportedModel`` reshapes and casts pixels to that input, refusing a cast
that changes them; a fresh process with only the runtimes gets the same.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import fresh_process_proba

from emnist_estimators.export import FLOAT32_TOLERANCE
from emnist_estimators.exported import (
    ExportedModel,
    as_input,
    check_format,
    load_exported,
    sidecar_path,
)


def test_a_fresh_process_runs_each_format_with_its_runtime_alone(
    exported, mlp, cnn_bf16, bars, tmp_path
):
    X = bars[0][:20]
    files = {f"{name}-{fmt}": (fmt, p, X) for (name, fmt), p in exported.items()}
    fresh = fresh_process_proba(files, tmp_path)
    assert set(fresh) == set(files)
    for key, proba in fresh.items():
        here = load_exported(files[key][1]).predict_proba(X)
        np.testing.assert_allclose(proba, here, atol=FLOAT32_TOLERANCE, err_msg=key)
    np.testing.assert_array_equal(
        fresh["mlp-onnx"].argmax(1), mlp.predict_proba(X).argmax(1)
    )


def test_load_exported_reads_format_classes_and_input_from_the_sidecar(
    exported, mlp, bars, tmp_path
):
    X = bars[0][:20]  # image-shaped: reshaped to the flat input
    model = load_exported(exported["mlp", "onnx"])
    assert isinstance(model, ExportedModel) and model.format == "onnx"
    assert model.classes_.tolist() == mlp.classes_.tolist()
    assert model.input_shape == (None, 784) and model.input_dtype == np.uint8
    np.testing.assert_array_equal(model.predict(X), mlp.predict(X))
    # the same file beside another sidecar: its classes name the columns
    copy = tmp_path / "copy.onnx"
    shutil.copy(exported["mlp", "onnx"], copy)
    meta = json.loads(sidecar_path(exported["mlp", "onnx"]).read_text())
    sidecar_path(copy).write_text(json.dumps({**meta, "classes": ["x", "y", "z"]}))
    renamed = load_exported(copy)
    columns = dict(zip(mlp.classes_, ["x", "y", "z"], strict=True))
    assert renamed.predict(X).tolist() == [columns[c] for c in mlp.predict(X)]
    np.testing.assert_array_equal(renamed.predict_proba(X), model.predict_proba(X))


def test_pixels_are_reshaped_to_the_input_and_a_lossy_cast_is_refused(exported):
    flat = np.arange(2 * 784).reshape(2, 784) % 256
    image = as_input(flat, (None, 28, 28), "uint8")
    assert image.shape == (2, 28, 28) and image.dtype == np.uint8
    assert image.flags.c_contiguous
    np.testing.assert_array_equal(image.reshape(2, 784), flat)
    with pytest.raises(ValueError, match="does not hold images of 784 pixels"):
        as_input(np.zeros((2, 100)), (None, 28, 28), "uint8")
    with pytest.raises(ValueError, match="changes values .* pass uint8 pixels"):
        as_input(np.full((1, 784), 0.5), (None, 784), "uint8")
    model = load_exported(exported["mlp", "tf_saved_model"])
    with pytest.raises(ValueError, match="changes values"):
        model.predict_proba(np.full((1, 784), 300.0))  # not a uint8 pixel


def test_an_unknown_format_is_refused_with_the_known_ones(tmp_path):
    check_format("litert")
    with pytest.raises(ValueError, match="Unknown export format 'tflite'.*'onnx'"):
        check_format("tflite")
    with pytest.raises(ValueError, match="Unknown export format"):
        ExportedModel(tmp_path / "m.tflite", "tflite", ["a"])
