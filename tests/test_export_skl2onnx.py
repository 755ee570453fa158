"""skl2onnx converts scikit-learn models holding our estimators and PixelScaler.

Each model is fitted on real Fashion-MNIST images (tiny fits), converted by
``skl2onnx.to_onnx``, run by onnxruntime on other real images, and compared
with ``predict_proba`` and ``predict``.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import FASHION_DIR, REPO, require_dir

pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

from skl2onnx import to_onnx  # noqa: E402
from sklearn.calibration import CalibratedClassifierCV  # noqa: E402
from sklearn.ensemble import VotingClassifier  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from emnist_estimators import EmnistCNN, EmnistMLP, PixelScaler  # noqa: E402
from emnist_estimators.exceptions import ExportError  # noqa: E402
from emnist_estimators.export import FLOAT32_TOLERANCE  # noqa: E402
from emnist_estimators.export_skl2onnx import register_converters  # noqa: E402

TINY = {"epochs": 1, "precision": "float32", "random_state": 0}
MLP = {"hidden_layer_sizes": (32,), **TINY}
CNN = {"filters": (4,), "dense_units": (16,), **TINY}


@pytest.fixture(scope="module")
def fashion():
    """400 training and 200 test images of Fashion-MNIST's test file."""
    from emnist_estimators.datasets import read_idx

    folder = require_dir(FASHION_DIR)
    X = read_idx(folder / "t10k-images-idx3-ubyte.gz")[:600].reshape(600, -1)
    # skl2onnx's classifiers take signed integer or string labels, not uint8
    y = read_idx(folder / "t10k-labels-idx1-ubyte.gz")[:600].astype(np.int64)
    return X[:400], y[:400], X[400:]


def run_onnx(model, X, dtype=np.float32, **options):
    """``to_onnx`` then onnxruntime: (labels, probabilities) for X."""
    onx = to_onnx(
        model, X[:1].astype(dtype), options={id(model): {"zipmap": False, **options}}
    )
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # skl2onnx's voting graph keeps a spare constant
    session = ort.InferenceSession(
        onx.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    labels, proba = session.run(None, {session.get_inputs()[0].name: X.astype(dtype)})
    return labels, proba


def assert_same(model, X, labels, proba):
    want = model.predict_proba(X)
    diff = float(np.abs(proba - want).max())
    print(f"{type(model).__name__}: max |onnx - predict_proba| = {diff:.2e}")
    assert diff <= FLOAT32_TOLERANCE
    np.testing.assert_array_equal(labels, model.predict(X))


def test_calibrated_mlp(fashion):
    X, y, X_test = fashion
    model = CalibratedClassifierCV(EmnistMLP(**MLP), cv=2).fit(X, y)
    assert_same(model, X_test, *run_onnx(model, X_test))


def test_soft_voting_mlp_and_cnn(fashion):
    X, y, X_test = fashion
    model = VotingClassifier(
        [("mlp", EmnistMLP(**MLP)), ("cnn", EmnistCNN(**CNN))],
        voting="soft",
        flatten_transform=False,  # skl2onnx converts this form only
    ).fit(X, y)
    # two estimators, one graph: their renamed weights do not clash
    assert_same(model, X_test, *run_onnx(model, X_test))


def test_pipeline_of_pixel_scaler_and_calibrated_cnn(fashion):
    X, y, X_test = fashion
    model = Pipeline(
        [
            ("pixels", PixelScaler(fix_orientation=True)),
            ("clf", CalibratedClassifierCV(EmnistCNN(**CNN), cv=2)),
        ]
    ).fit(X, y)
    # the CNN saw [0, 1] pixels (input_scale_ 1); the graph scales 0..255
    assert model[-1].calibrated_classifiers_[0].estimator.input_scale_ == 1.0
    onx = to_onnx(model, X_test[:1].astype(np.float32), options={"zipmap": False})
    session = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    labels, proba = session.run(None, {"X": X_test.astype(np.float32)})
    assert_same(model, X_test, labels, proba)


def test_string_classes_uint8_input_and_double_output(fashion):
    X, y, X_test = fashion
    names = np.array(["top", "trouser", "pullover", "dress", "coat"] * 2)
    model = EmnistMLP(**MLP).fit(X, names[y])
    # uint8 pixels in, as predict takes them; labels are strings
    labels, proba = run_onnx(model, X_test, dtype=np.uint8)
    assert labels.dtype.kind in "OU"
    assert_same(model, X_test, labels.astype(str), proba)
    # float64 pixels in: probabilities come out as float64
    labels, proba = run_onnx(model, X_test, dtype=np.float64)
    assert proba.dtype == np.float64
    assert_same(model, X_test, labels.astype(str), proba)
    # skl2onnx's option nocl: the label is the index into classes_
    labels, proba = run_onnx(model, X_test, nocl=True)
    np.testing.assert_array_equal(model.classes_[labels], model.predict(X_test))


def test_pixel_scaler_alone_matches_transform(fashion):
    X, _, X_test = fashion
    scaler = PixelScaler(fix_orientation=True, output_shape="image").fit(X)
    onx = to_onnx(scaler, X_test[:1].astype(np.float32))
    session = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (out,) = session.run(None, {"X": X_test.astype(np.float32)})
    np.testing.assert_array_equal(out, scaler.transform(X_test))


def test_a_graph_that_disagrees_is_refused(fashion, monkeypatch):
    X, y, X_test = fashion
    model = EmnistMLP(**MLP).fit(X, y)
    real = type(model).predict_proba
    monkeypatch.setattr(
        type(model), "predict_proba", lambda self, X: real(self, X)[:, ::-1]
    )
    with pytest.raises(ExportError, match="disagrees with predict_proba"):
        to_onnx(model, X_test[:1].astype(np.float32))


def test_register_converters_refuses_other_classes():
    with pytest.raises(TypeError, match="PixelScaler, EmnistMLP, EmnistCNN"):
        register_converters(Pipeline)


@pytest.mark.parametrize("how", ["missing", "broken"])
def test_export_imports_without_a_working_skl2onnx(how, tmp_path):
    """Missing, or failing at import (say, against a newer onnx): export works."""
    block = "import sys; sys.modules['skl2onnx'] = None\n"
    if how == "broken":
        (tmp_path / "skl2onnx").mkdir()
        (tmp_path / "skl2onnx" / "__init__.py").write_text("raise RuntimeError('x')")
        block = f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
    code = block + (
        "import emnist_estimators, emnist_estimators.export\n"
        "from emnist_estimators.export_skl2onnx import register_converters as r\n"
        "assert r(missing_ok=True) is False\n"
        "try:\n    r()\nexcept Exception as exc:\n    print(repr(exc))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    if how == "missing":
        assert 'pip install "emnist-estimators[export]"' in out.stdout
    else:  # the real error, not a misleading "not installed"
        assert "RuntimeError('x')" in out.stdout
