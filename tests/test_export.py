"""Export to ONNX, a TensorFlow SavedModel and LiteRT (issue 14.1).

Unit tests fit tiny networks on generated bar images; the real-data tests
train briefly on 3,000 EMNIST bymerge images and check the exported models,
run with their own runtimes, on 1,000 others. Every exported file is also
opened by a fresh Python process that uses only the runtimes (no
emnist_estimators), as a deployment would.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    EMNIST_DIR,
    EXPORT_SUFFIX,
    fresh_process_proba,
    modules_loaded_by,
    require_dir,
)
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from emnist_estimators import EmnistCNN, EmnistMLP, PixelScaler
from emnist_estimators import export as export_mod
from emnist_estimators import exported as exported_mod
from emnist_estimators.cli import main
from emnist_estimators.exceptions import OutputFolderError
from emnist_estimators.export import (
    BFLOAT16_TOLERANCE,
    FLOAT32_TOLERANCE,
    FORMATS,
    ExportError,
    UnsupportedModelError,
    export_model,
    load_exported,
    sidecar_path,
)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- tiny fits on generated images (fixtures in conftest.py) -------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_float32_export_matches_predict(exported, mlp, bars, fmt):
    X = bars[0].reshape(len(bars[0]), -1)
    model = load_exported(exported["mlp", fmt])
    proba = model.predict_proba(X)
    assert proba.dtype == np.float32 and proba.shape == (len(X), 3)
    np.testing.assert_array_equal(model.predict(X), mlp.predict(X))
    assert np.abs(proba - mlp.predict_proba(X)).max() <= FLOAT32_TOLERANCE


@pytest.mark.parametrize("fmt", FORMATS)
def test_bfloat16_augmented_cnn_exports_a_deterministic_float32_network(
    exported, cnn_bf16, bars, fmt
):
    X = bars[0]
    model = load_exported(exported["cnn_bf16", fmt])
    first = model.predict_proba(X)
    # augmentation is not in the exported graph: the same output every call
    np.testing.assert_array_equal(model.predict_proba(X), first)
    twin = cnn_bf16._float32_network()
    plan = export_mod._plan(cnn_bf16, "flat")
    np.testing.assert_allclose(
        first, export_mod._twin_proba(twin, plan, X), atol=FLOAT32_TOLERANCE
    )
    assert np.abs(first - cnn_bf16.predict_proba(X)).max() <= BFLOAT16_TOLERANCE
    meta = json.loads(sidecar_path(exported["cnn_bf16", fmt]).read_text())
    assert meta["estimator"]["trained_precision"] == "mixed_bfloat16"
    assert meta["check"]["vs_float32_twin"]["labels_differ"] == 0


def test_batch_norm_statistics_are_exported(bars, tmp_path):
    X, y = bars
    clf = EmnistCNN(
        filters=(4,),
        dense_units=(8,),
        batch_norm=True,
        epochs=2,
        precision="float32",
        random_state=0,
    ).fit(X, y)
    model = load_exported(export_model(clf, tmp_path / "bn.onnx"))
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    assert np.abs(model.predict_proba(X) - clf.predict_proba(X)).max() <= 1e-4


def test_sidecar_describes_the_model(exported, mlp):
    path = exported["mlp", "onnx"]
    meta = json.loads(sidecar_path(path).read_text())
    from emnist_estimators import __version__

    assert meta["format"] == "onnx" and meta["model"] == path.name
    assert meta["classes"] == mlp.classes_.tolist() == ["#", "-", "|"]
    assert meta["input"] == {
        "name": "pixels",
        "shape": [None, 784],
        "dtype": "uint8",
        "value_range": [0, 255],
    }
    assert meta["output"]["name"] == "probabilities"
    assert meta["output"]["shape"] == [None, 3]
    assert meta["emnist_estimators_version"] == __version__
    assert meta["estimator"]["class"] == "EmnistMLP"
    assert meta["estimator"]["params"]["hidden_layer_sizes"] == [32]
    assert meta["check"]["images"] == 256 and meta["check"]["source"] == "synthetic"
    assert meta["check"]["vs_predict_proba"]["labels_differ"] == 0


def test_exported_files_get_the_usual_permissions(exported):
    umask = os.umask(0)
    os.umask(umask)
    for path in exported.values():
        for written in (path, sidecar_path(path)):
            mode = written.stat().st_mode & 0o777
            expected = (0o777 if written.is_dir() else 0o666) & ~umask
            assert mode == expected, (written, oct(mode))


def test_flat_and_image_inputs_of_uint8_pixels(mlp, bars, tmp_path):
    import onnxruntime as ort

    X = bars[0]
    for shape, want in (("flat", [None, 784]), ("image", [None, 28, 28])):
        path = export_model(mlp, tmp_path / f"{shape}.onnx", input_shape=shape)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (pixels,) = session.get_inputs()
        assert (pixels.name, pixels.type) == ("pixels", "tensor(uint8)")
        assert [None if isinstance(d, str) else d for d in pixels.shape] == want
        x = X.reshape(-1, *want[1:])
        (proba,) = session.run(["probabilities"], {"pixels": x})
        np.testing.assert_allclose(proba, mlp.predict_proba(X), atol=FLOAT32_TOLERANCE)


def test_pipeline_folds_the_pixel_scaler_transpose(bars, tmp_path):
    X, y = bars
    stored = np.ascontiguousarray(X.transpose(0, 2, 1))  # as EMNIST files hold them
    pipe = make_pipeline(
        PixelScaler(fix_orientation=True, output_shape="image"),
        EmnistMLP((32,), epochs=4, batch_size=16, precision="float32", random_state=0),
    ).fit(stored, y)
    # the transpose matters: upright input reads vertical bars as horizontal
    assert (pipe.predict(stored) != pipe.predict(X)).mean() > 0.3
    path = export_model(pipe, tmp_path / "pipe.tflite", "litert", input_shape="image")
    model = load_exported(path)
    np.testing.assert_array_equal(model.predict(stored), pipe.predict(stored))
    proba = model.predict_proba(stored)
    assert np.abs(proba - pipe.predict_proba(stored)).max() <= FLOAT32_TOLERANCE
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["input"]["dtype"] == "uint8"
    assert meta["pipeline_steps"][0]["class"] == "PixelScaler"
    assert meta["pipeline_steps"][0]["params"]["fix_orientation"] is True


def test_estimator_fitted_on_scaled_pixels_takes_float32(bars, tmp_path):
    X, y = bars
    scaled = X.reshape(len(X), -1).astype(np.float32) / 255
    clf = EmnistMLP((16,), epochs=2, precision="float32", random_state=0)
    clf.fit(scaled, y)
    path = clf.export(tmp_path / "scaled.onnx")
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["input"]["dtype"] == "float32" and meta["input"]["value_range"] is None
    model = load_exported(path)
    np.testing.assert_array_equal(model.predict(scaled), clf.predict(scaled))


def test_class_names_give_characters_of_integer_labels(bars, tmp_path):
    from emnist_estimators.datasets import default_mapping

    X, _ = bars
    y = np.arange(len(X)) % 3 + 10  # EMNIST balanced labels 10, 11, 12
    clf = EmnistMLP((8,), epochs=1, precision="float32", random_state=0).fit(X, y)
    path = export_model(
        clf, tmp_path / "m.onnx", class_names=default_mapping("balanced")
    )
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["classes"] == [10, 11, 12]
    assert meta["class_names"] == ["A", "B", "C"]
    with pytest.raises(ValueError, match="one name per entry of classes_"):
        export_model(clf, tmp_path / "n.onnx", class_names=["A"])


# --- refusals: nothing written --------------------------------------------------------
def test_unfitted_estimator_and_pipeline_are_refused(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted yet: export needs a fitted"):
        EmnistCNN().export(tmp_path / "m.onnx")
    with pytest.raises(NotFittedError, match="EmnistMLP instance is not fitted"):
        export_model(make_pipeline(PixelScaler(), EmnistMLP()), tmp_path / "p.onnx")
    assert listing(tmp_path) == []


def test_unsupported_models_are_refused(mlp, tmp_path):
    X = np.zeros((4, 784))
    scaled = make_pipeline(StandardScaler().fit(X), mlp)
    with pytest.raises(UnsupportedModelError, match="zero or more PixelScaler"):
        export_model(scaled, tmp_path / "m.onnx")
    logistic = LogisticRegression().fit(X[:2], [0, 1])
    with pytest.raises(TypeError, match="got a LogisticRegression"):
        export_model(logistic, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="Unknown export format 'tflite'"):
        export_model(mlp, tmp_path / "m.onnx", "tflite")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("fmt", ["onnx", "tf_saved_model"])
def test_existing_path_is_refused_unless_overwrite(mlp, cnn_bf16, tmp_path, fmt):
    path = export_model(mlp, tmp_path / f"m{EXPORT_SUFFIX[fmt]}", fmt)
    meta = sidecar_path(path).read_text()
    with pytest.raises(OutputFolderError, match="already exists: pass overwrite"):
        export_model(cnn_bf16, path, fmt)
    assert sidecar_path(path).read_text() == meta  # untouched
    export_model(cnn_bf16, path, fmt, overwrite=True)
    assert load_exported(path).predict_proba(np.zeros((1, 784))).shape == (1, 3)
    assert json.loads(sidecar_path(path).read_text())["estimator"]["class"] == (
        "EmnistCNN"
    )
    assert listing(tmp_path) == sorted([path.name, sidecar_path(path).name])


def test_overwrite_never_replaces_a_folder_that_is_not_a_saved_model(mlp, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"keep me")
    for fmt in ("tf_saved_model", "onnx"):
        with pytest.raises(OutputFolderError, match="Choose (another path|a new)"):
            export_model(mlp, folder, fmt, overwrite=True)
    assert (folder / "holiday.jpg").read_bytes() == b"keep me"
    assert listing(tmp_path) == ["photos"]


def test_failed_check_leaves_nothing_behind(mlp, tmp_path, monkeypatch):
    real = exported_mod.RUNNERS["onnx"]

    def swapped_columns(path):
        run = real(path)
        return lambda X: run(X)[:, ::-1]

    monkeypatch.setitem(exported_mod.RUNNERS, "onnx", swapped_columns)
    with pytest.raises(ExportError, match="disagrees with predict_proba"):
        export_model(mlp, tmp_path / "m.onnx")
    assert listing(tmp_path) == []


def test_bfloat16_check_refuses_a_float32_twin_with_wrong_weights(
    bars, tmp_path, monkeypatch
):
    X, y = bars
    clf = EmnistMLP(
        (32,), epochs=4, batch_size=16, precision="mixed_bfloat16", random_state=0
    ).fit(X, y)
    real = type(clf)._float32_network

    def classes_swapped(est):
        net = real(est)
        head = net.get_layer("softmax")
        kernel, bias = head.get_weights()
        head.set_weights([kernel[:, ::-1], bias[::-1]])
        return net

    monkeypatch.setattr(type(clf), "_float32_network", classes_swapped)
    with pytest.raises(ExportError, match="predict_proba \\(computed in bfloat16"):
        export_model(clf, tmp_path / "m.onnx")
    assert listing(tmp_path) == []


def test_failed_conversion_leaves_nothing_behind(mlp, tmp_path, monkeypatch):
    def broken(serve, net, tmp):
        tmp.write_bytes(b"half a model")
        raise RuntimeError("converter crashed")

    monkeypatch.setitem(export_mod._WRITERS, "litert", broken)
    with pytest.raises(ExportError, match="to 'litert' failed: RuntimeError"):
        export_model(mlp, tmp_path / "m.tflite", "litert")
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    "fmt, module", [("onnx", "tf2onnx"), ("litert", "ai_edge_litert")]
)
def test_missing_runtime_names_the_export_extra(
    mlp, tmp_path, monkeypatch, fmt, module
):
    monkeypatch.setitem(sys.modules, module, None)  # import fails
    with pytest.raises(ImportError, match=r'pip install "emnist-estimators\[export\]"'):
        export_model(mlp, tmp_path / "m", fmt)
    assert listing(tmp_path) == []


def test_importing_the_export_module_imports_no_runtime():
    heavy = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai_edge_litert")
    assert modules_loaded_by("import emnist_estimators.export", heavy) == []


# --- command line ---------------------------------------------------------------------
def test_cli_export_writes_the_model_and_says_where(mlp, bars, tmp_path, capsys):
    mlp.save(tmp_path / "model.keras")
    out = tmp_path / "model.tflite"
    argv = ["export", str(tmp_path / "model.keras"), "--format", "litert"]
    assert main([*argv, "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert str(out) in text and str(sidecar_path(out)) in text
    X = bars[0][:10]
    np.testing.assert_array_equal(load_exported(out).predict(X), mlp.predict(X))
    # again: refused (usage error), then replaced with --overwrite and --json
    assert main([*argv, "--output", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*argv, "--output", str(out), "--overwrite", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["output"] == str(out) and result["format"] == "litert"
    assert result["check"]["vs_predict_proba"]["labels_differ"] == 0


# --- real EMNIST images ---------------------------------------------------------------
#: What each variant is trained with: briefly, on 3,000 real images.
FIT = {
    "epochs": 1,
    "batch_size": 32,
    "lr_schedule": "constant",
    "validation_fraction": 0.0,
    "random_state": 0,
}

VARIANTS = {
    "mlp-float32": lambda: EmnistMLP(precision="float32", **FIT),
    "mlp-auto": lambda: EmnistMLP(precision="auto", **FIT),
    "cnn-auto": lambda: EmnistCNN(precision="auto", **FIT),
    "cnn-auto-augment": lambda: EmnistCNN(precision="auto", augment=True, **FIT),
    "cnn-float32": lambda: EmnistCNN(precision="float32", **FIT),
    "cnn-float32-augment": lambda: EmnistCNN(precision="float32", augment=True, **FIT),
    # EMNIST's files hold transposed images: the pipeline turns them upright
    "pipeline": lambda: make_pipeline(
        PixelScaler(fix_orientation=True),
        EmnistMLP(precision="float32", **FIT),
    ),
}
FAST = ["cnn-auto-augment", "mlp-float32", "pipeline"]
SLOW = [name for name in VARIANTS if name not in FAST]


@pytest.fixture(scope="module")
def emnist_4000():
    """4,000 bymerge test images (upright) with their characters as labels."""
    from emnist_estimators.datasets import default_mapping, read_idx

    folder = require_dir(EMNIST_DIR)
    X = read_idx(folder / "emnist-bymerge-test-images-idx3-ubyte.gz", transpose=True)
    y = read_idx(folder / "emnist-bymerge-test-labels-idx1-ubyte.gz")
    chars = np.array(list(default_mapping("bymerge").values()))
    return X[:4000].copy(), chars[y[:4000]]


def _export(name, emnist_4000, folder: Path) -> dict:
    """Train ``name`` on 3,000 images, export each format checked on 1,000 more."""
    X, y = emnist_4000
    if name == "pipeline":  # it takes the images as the files store them
        X = np.ascontiguousarray(X.transpose(0, 2, 1))
    model = VARIANTS[name]().fit(X[:3000], y[:3000])
    X_check = X[3000:]
    shape = "image" if name.startswith("cnn") else "flat"
    files = {
        fmt: export_model(
            model,
            folder / f"{name}{EXPORT_SUFFIX[fmt]}",
            fmt,
            check_X=X_check,
            input_shape=shape,
        )
        for fmt in FORMATS
    }
    return {"model": model, "X": X_check, "files": files}


def _compare(name, run, capsys) -> None:
    """Each exported file, run with its runtime, against predict/predict_proba."""
    model, X = run["model"], run["X"]
    est = model[-1] if name == "pipeline" else model
    labels, proba = model.predict(X), model.predict_proba(X)
    lines = []
    for fmt, path in run["files"].items():
        got = load_exported(path).predict_proba(X)
        diff = np.abs(got - proba).max()
        differ = int((est.classes_[got.argmax(1)] != labels).sum())
        lines.append(f"{name:<20} {fmt:<15} {diff:9.2e} {differ:4d}/1000")
        if est.dtype_policy_ == "float32":
            assert differ == 0, (name, fmt)
            assert diff <= FLOAT32_TOLERANCE, (name, fmt)
        else:
            # bfloat16 predict vs the float32 export: see export.py's docstring
            assert diff <= BFLOAT16_TOLERANCE, (name, fmt)
            assert differ <= 10, (name, fmt)  # near-ties only: measured 0..5
            check = json.loads(sidecar_path(path).read_text())["check"]
            assert check["vs_float32_twin"]["labels_differ"] == 0
            assert check["vs_float32_twin"]["max_abs_proba_diff"] <= FLOAT32_TOLERANCE
    with capsys.disabled():
        print(f"\n[export, {est.dtype_policy_}] variant, format, max|dp|, labels")
        print("\n".join(lines))


def _compare_fresh(runs: dict, folder: Path) -> None:
    """One fresh process runs every file; same output as in this process."""
    files = {
        f"{name}-{fmt}": (fmt, path, run["X"])
        for name, run in runs.items()
        for fmt, path in run["files"].items()
    }
    fresh = fresh_process_proba(files, folder)
    assert set(fresh) == set(files)
    for key, (_, path, X) in files.items():
        here = load_exported(path).predict_proba(X)
        np.testing.assert_allclose(fresh[key], here, atol=FLOAT32_TOLERANCE)


@pytest.fixture(scope="module")
def real_fast(emnist_4000, tmp_path_factory):
    folder = tmp_path_factory.mktemp("real")
    return {name: _export(name, emnist_4000, folder) for name in FAST}


@pytest.mark.parametrize("name", FAST)
def test_real_images_exports_agree_with_predict(name, real_fast, capsys):
    _compare(name, real_fast[name], capsys)


def test_real_images_a_fresh_process_runs_each_export(real_fast, tmp_path):
    _compare_fresh(real_fast, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_real_images_exports_agree_with_predict_full_matrix(
    name, emnist_4000, tmp_path, capsys
):
    run = _export(name, emnist_4000, tmp_path)
    _compare(name, run, capsys)
    _compare_fresh({name: run}, tmp_path)


def test_long_names_and_empty_paths(tmp_path):
    from emnist_estimators.exceptions import OutputFolderError
    from emnist_estimators.export import export_model

    X = np.random.default_rng(0).integers(0, 256, (60, 784), dtype=np.uint8)
    est = EmnistMLP(hidden_layer_sizes=(8,), epochs=1, precision="float32").fit(
        X, np.arange(60) % 3
    )
    long_name = "m" * 240 + ".onnx"  # legal; a temp name built from it was not
    assert export_model(est, tmp_path / long_name, format="tf_saved_model").exists()
    # replacing it moves the old folder aside under a temporary name too
    export_model(est, tmp_path / long_name, format="tf_saved_model", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        long_name,
        long_name + ".json",
    ]
    with pytest.raises(OutputFolderError, match="names no file or folder"):
        export_model(est, ".", format="onnx")
