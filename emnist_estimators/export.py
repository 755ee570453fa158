"""Export a fitted ``EmnistMLP``/``EmnistCNN`` (or its Pipeline) for other runtimes.

:func:`export_model` writes ONNX, a TensorFlow SavedModel or LiteRT, with a
JSON sidecar, once the exported model agrees with ``predict_proba``;
:func:`load_exported` runs one back.

How it works and why: the design notes in the docs (``docs/design.rst``).

Examples
--------
>>> from emnist_estimators.export import FORMATS, sidecar_path
>>> FORMATS
('onnx', 'tf_saved_model', 'litert')
>>> sidecar_path("models/cnn.onnx").name
'cnn.onnx.json'
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._utils import capturing_native_stderr, jsonable_params, quiet_tf2onnx
from .exceptions import EmnistEstimatorsError, ExportError
from .export_files import (
    check_destination,
    move_into_place,
    temporaries,
    write_errors_named,
)
from .exported import (
    BFLOAT16_TOLERANCE,
    FLOAT32_TOLERANCE,
    FORMATS,
    INPUT_NAME,
    ONNX_OPSET,
    OUTPUT_NAME,
    RUNNERS,
    ExportedModel,
    as_input,
    check_format,
    load_exported,
    sidecar_path,
)
from .preprocessing import PixelScaler

__all__ = [
    "FORMATS",
    "FLOAT32_TOLERANCE",
    "BFLOAT16_TOLERANCE",
    "ExportError",
    "UnsupportedModelError",
    "ExportedModel",
    "export_model",
    "load_exported",
    "sidecar_path",
    "synthetic_images",
]

_INSTALL_HINT = 'pip install "emnist-estimators[export]"'

#: Python modules each format needs, to write and to check the file.
_NEEDS = {
    "onnx": ("tf2onnx", "onnx", "onnxruntime"),
    "tf_saved_model": (),
    "litert": ("ai_edge_litert",),
}


class UnsupportedModelError(EmnistEstimatorsError, TypeError):
    """The object to export is not an estimator or Pipeline export supports."""


# --- what is exported -----------------------------------------------------------------
@dataclass
class _Plan:
    """The estimator, the scalers folded in front of it, and the input spec."""

    model: Any  # the estimator or Pipeline: the reference for the check
    estimator: Any
    scalers: list = field(default_factory=list)
    shape: tuple = ()
    dtype: str = "uint8"

    @property
    def reduced_precision(self) -> bool:
        """Trained in mixed bfloat16 or float16 (what ``predict`` computes in)."""
        return getattr(self.estimator, "dtype_policy_", "float32") != "float32"


def _is_estimator(model: Any) -> bool:
    """An EmnistMLP/EmnistCNN: what hands out its float32 twin (duck-typed, so
    that export need not import the estimators, which import it)."""
    return callable(getattr(model, "_float32_network", None)) and hasattr(
        model, "_build_model"
    )


def _unpack(model: Any) -> tuple[list, Any]:
    """``(scalers, estimator)`` of a supported model; else a clear error."""
    from sklearn.pipeline import Pipeline

    supported = (
        "export supports a fitted EmnistMLP or EmnistCNN, or a scikit-learn "
        "Pipeline of zero or more PixelScaler steps ending in one"
    )
    if _is_estimator(model):
        check_is_fitted(model, msg=_NOT_FITTED)
        return [], model
    if not isinstance(model, Pipeline):
        raise UnsupportedModelError(f"{supported}; got a {type(model).__name__}.")
    steps = [s for _, s in model.steps if s is not None and s != "passthrough"]
    others = [type(s).__name__ for s in steps[:-1] if not isinstance(s, PixelScaler)]
    if not steps or not _is_estimator(steps[-1]) or others:
        names = [type(s).__name__ for s in steps]
        raise UnsupportedModelError(
            f"{supported}; got a Pipeline of {names}. Fit the other steps' "
            "transformations into the data before the Pipeline, or export the "
            "final estimator alone."
        )
    for step in steps[::-1]:  # the network first: the likelier omission
        check_is_fitted(step, msg=_NOT_FITTED)
    return steps[:-1], steps[-1]


_NOT_FITTED = (
    "This %(name)s instance is not fitted yet: export needs a fitted estimator "
    "or Pipeline. Call 'fit' (or load a saved model with load_model) before "
    "exporting."
)


def _plan(model: Any, input_shape: str) -> _Plan:
    scalers, est = _unpack(model)
    first = scalers[0] if scalers else est
    n_features = int(first.n_features_in_)
    if scalers:
        raw = float(scalers[0].max_value) == 255.0
    else:
        raw = bool(np.isclose(est.input_scale_, 1 / 255))
    shape: tuple = (None, n_features)
    if input_shape == "image":
        shape = (None, *_image_size(scalers, est, n_features))
    return _Plan(model, est, scalers, shape, "uint8" if raw else "float32")


def _image_size(scalers: list, est: Any, n_features: int) -> tuple[int, int]:
    """(height, width) of the images the model takes, for input_shape='image'."""
    from .twin import fitted_image_shape  # Keras: imported when an export runs

    if scalers:  # PixelScaler's images are square
        side = scalers[0].image_side(n_features)
        return side, side
    return fitted_image_shape(est)


def _serving_function(net: Any, plan: _Plan) -> Any:
    """The exported computation: cast, reshape, fold the scalers, the network."""
    import tensorflow as tf

    n_pixels = int(np.prod(plan.shape[1:]))
    spec = tf.TensorSpec(plan.shape, plan.dtype, name=INPUT_NAME)

    @tf.function(input_signature=[spec])
    def serve(pixels: Any) -> dict[str, Any]:
        x = tf.reshape(tf.cast(pixels, tf.float32), [-1, n_pixels])
        for scaler in plan.scalers:
            x = _fold_scaler(tf, scaler, x)
        return {OUTPUT_NAME: net(x, training=False)}

    return serve


def _fold_scaler(tf: Any, scaler: PixelScaler, x: Any) -> Any:
    """``PixelScaler.transform`` as graph ops.

    Its ``output_shape`` needs no op: 'image' holds the same pixels in the
    same order, and the estimator flattens images.
    """
    x = x / np.float32(scaler.max_value)  # float32 division, as transform's
    if scaler.fix_orientation:
        side = scaler.image_side(int(x.shape[-1]))
        images = tf.transpose(tf.reshape(x, [-1, side, side]), [0, 2, 1])
        x = tf.reshape(images, [-1, side * side])
    return x


# --- writers --------------------------------------------------------------------------
def _require(fmt: str) -> None:
    """Import the modules ``fmt`` needs, or say how to install them."""
    import importlib

    for module in _NEEDS[fmt]:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(
                f"Exporting to {fmt!r} needs the Python package {module!r}, which "
                f"is not installed: {_INSTALL_HINT}"
            ) from exc


def _write_onnx(serve: Any, net: Any, tmp: Path) -> None:
    import tf2onnx

    with quiet_tf2onnx():
        tf2onnx.convert.from_function(
            serve,
            input_signature=serve.input_signature,
            opset=ONNX_OPSET,
            output_path=str(tmp),
        )


def _write_saved_model(serve: Any, net: Any, tmp: Path) -> None:
    import keras

    archive = keras.export.ExportArchive()
    archive.track(net)
    archive.add_endpoint(name="serve", fn=serve)
    archive.write_out(str(tmp), verbose=False)


def _write_litert(serve: Any, net: Any, tmp: Path) -> None:
    """Convert through a SavedModel: its variables are frozen into constants.

    ``from_concrete_functions([serve...], net)`` keeps Keras 3's variables as
    LiteRT resource variables that nothing initializes: the model then
    returns NaN (TensorFlow 2.21, ai-edge-litert 2.3).
    """
    import tensorflow as tf

    # a temporary name like the model's (removed by the next run if killed)
    sm = tmp.with_name(tmp.name.removesuffix(".tmp") + ".sm.tmp")
    try:
        _write_saved_model(serve, net, sm)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(sm), signature_keys=["serving_default"]
        )
        tmp.write_bytes(converter.convert())
    finally:
        shutil.rmtree(sm, ignore_errors=True)


_WRITERS = {
    "onnx": _write_onnx,
    "tf_saved_model": _write_saved_model,
    "litert": _write_litert,
}


# --- the check ------------------------------------------------------------------------
def synthetic_images(n: int = 256, seed: int = 0) -> np.ndarray:
    """Deterministic 28x28 uint8 test images: blank, noise, bars, boxes.

    Parameters
    ----------
    n : int, default=256
        How many images.
    seed : int, default=0
        Seed of their randomness.

    Returns
    -------
    ndarray of shape (n, 28, 28), uint8
        Images 0, 1 blank (black, white), then a mix of uniform noise, dark
        noise with a bright stroke, and boxes.

    Examples
    --------
    >>> from emnist_estimators.export import synthetic_images
    >>> X = synthetic_images(8)
    >>> X.shape, X.dtype.name, int(X[0].max()), int(X[1].min())
    ((8, 28, 28), 'uint8', 0, 255)
    """
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
    for i in range(n):
        kind = i % 4
        a, b = (int(v) for v in rng.integers(4, 20, 2))
        if kind == 0:
            X[i] = rng.integers(0, 256, size=(28, 28), dtype=np.uint8)
        elif kind == 1:
            X[i, 4:24, a : a + 3] = 255
        elif kind == 2:
            X[i, a : a + 3, 4:24] = 255
        else:
            X[i, a - 3 : a + 5, b - 3 : b + 5] = 200
    X[:1] = 0
    X[1:2] = 255
    return X


def _check_images(plan: _Plan, check_X: Any) -> tuple[np.ndarray, str]:
    """The check's input, in the exported input's shape and dtype."""
    n_pixels = int(np.prod(plan.shape[1:]))
    if check_X is None:
        source = "synthetic"
        images = synthetic_images()
        if n_pixels != 784:  # a model of other sizes: noise of its size
            rng = np.random.default_rng(0)
            images = rng.integers(0, 256, (256, n_pixels), dtype=np.uint8)
        X = images.reshape(len(images), -1)
        if plan.dtype == "float32":
            X = (X / 255.0).astype(np.float32)
    else:
        source = "check_X"
        X = check_X
    return as_input(X, plan.shape, plan.dtype), source


def _twin_proba(net: Any, plan: _Plan, X: np.ndarray) -> np.ndarray:
    """The float32 twin run by Keras, the scalers applied by numpy."""
    for scaler in plan.scalers:
        X = scaler.transform(X)
    X = np.asarray(X).reshape(len(X), -1)
    # called eagerly: no tf.function traced (and retraced) per export
    return np.asarray(net(X, training=False), dtype=np.float64)


def _compare(got: np.ndarray, want: np.ndarray, n_classes: int) -> dict:
    """How far ``got`` (the export) is from ``want``, in JSON-able numbers."""
    got = np.asarray(got, dtype=np.float64)
    if got.shape != want.shape or want.shape[1:] != (n_classes,):
        return {"shape_ok": False, "output_shape": list(got.shape)}
    differ = got.argmax(axis=1) != want.argmax(axis=1)
    top2 = np.sort(want, axis=1)[:, -2:]
    margins = (top2[:, 1] - top2[:, 0])[differ]
    return {
        "shape_ok": True,
        "max_abs_proba_diff": float(np.abs(got - want).max()) if got.size else 0.0,
        "labels_differ": int(differ.sum()),
        # where labels differ, how close the reference's top two were
        "largest_top2_margin_where_labels_differ": (
            float(margins.max()) if margins.size else None
        ),
    }


def _verify(plan: _Plan, net: Any, run: Any, check_X: Any) -> dict:
    """Run the exported file and compare it with predict_proba; raise if off."""
    X, source = _check_images(plan, check_X)
    got = np.asarray(run(X))
    with warnings.catch_warnings():
        # fitted on a DataFrame: its pixels' names do not matter here
        warnings.filterwarnings("ignore", message="X does not have valid feature")
        want = plan.model.predict_proba(X)
    n_classes = len(plan.estimator.classes_)
    report: dict[str, Any] = {
        "images": int(len(X)),
        "source": source,
        # mixed_bfloat16 or mixed_float16 (GPUs): both checked by the reduced-
        # precision rule below (float16 keeps more bits than bfloat16)
        "trained_precision": getattr(plan.estimator, "dtype_policy_", "float32"),
        "vs_predict_proba": _compare(got, want, n_classes),
    }
    if not plan.reduced_precision:
        report["rule"] = "every label equal, |diff| <= tolerance, vs predict_proba"
        report["tolerance"] = FLOAT32_TOLERANCE
        _judge(report["vs_predict_proba"], FLOAT32_TOLERANCE, "predict_proba")
        return report
    report["rule"] = (
        "bfloat16-trained: every label equal, |diff| <= tolerance, vs the float32 "
        "twin run by Keras; |diff| <= bfloat16_tolerance vs predict_proba, whose "
        "labels may then differ only where its top two are within twice that"
    )
    report["tolerance"] = FLOAT32_TOLERANCE
    report["bfloat16_tolerance"] = BFLOAT16_TOLERANCE
    report["vs_float32_twin"] = _compare(got, _twin_proba(net, plan, X), n_classes)
    _judge(report["vs_float32_twin"], FLOAT32_TOLERANCE, "the float32 twin")
    _judge(
        report["vs_predict_proba"],
        BFLOAT16_TOLERANCE,
        "predict_proba (computed in bfloat16)",
        labels=False,
    )
    return report


def _judge(
    result: dict, tolerance: float, against: str, *, labels: bool = True
) -> None:
    """Raise ExportError unless ``result`` is within ``tolerance`` (and labels)."""
    if not result["shape_ok"]:
        raise ExportError(
            f"The exported model returns an array of shape {result['output_shape']}, "
            f"not one probability per class like {against}. Nothing was written."
        )
    diff, n_differ = result["max_abs_proba_diff"], result["labels_differ"]
    if diff <= tolerance and not (labels and n_differ):
        return
    raise ExportError(
        f"The exported model disagrees with {against}: {n_differ} label(s) differ, "
        f"probabilities by up to {diff:.3g} (allowed {tolerance:g}"
        f"{' and no label' if labels else ''}). Nothing was written. Please report "
        "this with the versions of tensorflow, keras, tf2onnx, onnxruntime and "
        "ai-edge-litert."
    )


# --- the sidecar --------------------------------------------------------------------
def _class_names(classes: np.ndarray, class_names: Any) -> list | None:
    if class_names is None:
        return None
    if isinstance(class_names, Mapping):
        missing = [c for c in classes.tolist() if c not in class_names]
        if missing:
            raise ValueError(
                f"class_names has no name for the classes {missing[:10]}; give "
                "one for each of classes_ (e.g. default_mapping('balanced'))."
            )
        return [str(class_names[c]) for c in classes.tolist()]
    names = [str(name) for name in class_names]
    if len(names) != len(classes):
        raise ValueError(
            f"class_names has {len(names)} names, the model {len(classes)} "
            "classes: give one name per entry of classes_, in its order."
        )
    return names


def _sidecar(
    plan: _Plan, path: Path, fmt: str, names: list | None, check: dict
) -> dict:
    import keras
    import tensorflow as tf

    from ._version import __version__

    est = plan.estimator
    classes = est.classes_
    meta = {
        "format": fmt,
        "model": path.name,
        "emnist_estimators_version": __version__,
        "classes": classes.tolist(),
        "input": {
            "name": INPUT_NAME,
            "shape": list(plan.shape),
            "dtype": plan.dtype,
            "value_range": [0, 255] if plan.dtype == "uint8" else None,
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": [None, len(classes)],
            "dtype": "float32",
            "columns": "classes, in this order",
        },
        "estimator": {
            "class": type(est).__name__,
            "params": jsonable_params(est.get_params(deep=False)),
            "trained_precision": getattr(est, "dtype_policy_", "float32"),
            "exported_precision": "float32",
            "input_scale": est.input_scale_,
        },
        "pipeline_steps": [
            {
                "class": type(s).__name__,
                "params": jsonable_params(s.get_params(deep=False)),
            }
            for s in plan.scalers
        ],
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "check": check,
    }
    if names is not None:
        meta["class_names"] = names
    if fmt == "onnx":
        import onnx
        import tf2onnx

        meta["versions"].update(tf2onnx=tf2onnx.__version__, onnx=onnx.__version__)
        meta["onnx_opset"] = ONNX_OPSET
    if fmt == "tf_saved_model":
        meta["signature"] = "serve (also serving_default)"
    return meta


# --- export_model ---------------------------------------------------------------------
@capturing_native_stderr  # tf2onnx's graph optimiser logs from C++
def export_model(
    model: Any,
    path: str | os.PathLike,
    format: str = "onnx",
    *,
    overwrite: bool = False,
    check_X: Any = None,
    input_shape: str = "flat",
    class_names: Sequence[str] | Mapping | None = None,
) -> Path:
    """Export a fitted estimator or Pipeline, check it, then write it.

    The model is converted to a temporary file (or folder) beside ``path``,
    run there with its own runtime on ``check_X`` and compared with
    ``model.predict_proba`` (see the module's documentation for the rule),
    and only then renamed to ``path``, with the sidecar ``<path>.json``.

    Parameters
    ----------
    model : EmnistMLP, EmnistCNN or Pipeline
        Fitted; a Pipeline of zero or more :class:`PixelScaler` steps (folded
        into the exported graph) and a final ``EmnistMLP``/``EmnistCNN``.
    path : str or path-like
        Destination file (ONNX, LiteRT) or folder (SavedModel); its folder
        must exist.
    format : {'onnx', 'tf_saved_model', 'litert'}, default='onnx'
        The runtime the model is for.
    overwrite : bool, default=False
        Replace an existing ``path`` and sidecar: a regular file, or a
        SavedModel folder whose manifest lists every file in it, and the
        sidecar of an earlier export. Anything else (a FIFO, a device, a
        symbolic link, a folder of yours, a file you added) is refused
        before any work (:mod:`emnist_estimators.export_files`). Without
        it an existing one is refused.
    check_X : array-like, default=None
        Images to check the export on, as the exported input takes them
        (its dtype; flat or image-shaped). Default: 256 synthetic images.
    input_shape : {'flat', 'image'}, default='flat'
        The exported input's shape: ``(n, n_pixels)`` or ``(n, height,
        width)``. ``predict`` takes both; an exported model takes one.
    class_names : sequence of str or dict, default=None
        A name per class for the sidecar, e.g. the characters of EMNIST's
        integer labels: ``load_emnist(...).mapping`` or
        ``default_mapping("balanced")`` (a dict keyed by label), or a list
        in the order of ``classes_``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        ``model`` (or one of its steps) is not fitted.
    UnsupportedModelError
        ``model`` is neither an ``EmnistMLP``/``EmnistCNN`` nor a Pipeline of
        ``PixelScaler`` steps ending in one.
    OutputFolderError
        ``path`` or its sidecar exists (without ``overwrite``), cannot be
        replaced safely, or has a name too long for the file system.
    ImportError
        The format's runtime is not installed (the ``export`` extra).
    ExportError
        Conversion or writing failed (a write error names ``path``), or the
        exported model disagrees with ``predict_proba``. Nothing is written
        then.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from emnist_estimators import EmnistMLP
    >>> from emnist_estimators.export import export_model, load_exported
    >>> X = np.random.default_rng(0).integers(0, 256, (60, 784), dtype=np.uint8)
    >>> y = np.arange(60) % 2
    >>> clf = EmnistMLP((8,), epochs=1, precision="float32", random_state=0)
    >>> clf = clf.fit(X, y)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> out = pathlib.Path(tmp.name) / "mlp.onnx"
    >>> export_model(clf, out).name
    'mlp.onnx'
    >>> bool((load_exported(out).predict(X) == clf.predict(X)).all())
    True
    >>> tmp.cleanup()
    """
    check_format(format)
    if input_shape not in ("flat", "image"):
        raise ValueError(f"input_shape must be 'flat' or 'image', got {input_shape!r}.")
    plan = _plan(model, input_shape)  # fitted and supported, before any work
    path = Path(path)
    check_destination(path, format, overwrite)
    names = _class_names(plan.estimator.classes_, class_names)
    _require(format)
    from .threads import configure_at_first_use

    configure_at_first_use()
    with temporaries(path) as (tmp_model, tmp_sidecar):
        net = plan.estimator._float32_network()
        serve = _serving_function(net, plan)
        try:
            with write_errors_named(path):  # a full disk: say where
                _WRITERS[format](serve, net, tmp_model)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(
                f"Converting {type(plan.estimator).__name__} to {format!r} failed: "
                f"{type(exc).__name__}: {str(exc)[:2000]}"
            ) from exc
        check = _verify(plan, net, RUNNERS[format](tmp_model), check_X)
        meta = _sidecar(plan, path, format, names, check)
        with write_errors_named(path):
            tmp_sidecar.write_text(json.dumps(meta, indent=2) + "\n")
            check_destination(path, format, overwrite)  # again: it may have changed
            move_into_place(tmp_model, path, format)
            os.replace(tmp_sidecar, sidecar_path(path))
    return path
