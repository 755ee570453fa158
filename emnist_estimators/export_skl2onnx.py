"""Converters for skl2onnx: our estimators and PixelScaler in scikit-learn models.

With skl2onnx installed (the ``export`` extra), importing this module
registers a shape calculator and a converter for ``PixelScaler``,
``EmnistMLP`` and ``EmnistCNN``; ``skl2onnx.to_onnx`` then converts
scikit-learn models that hold them (``CalibratedClassifierCV``,
``VotingClassifier(voting="soft")``, a ``Pipeline`` of convertible steps).

An estimator is converted as ``export_model`` converts it: its float32 twin
by tf2onnx, run in onnxruntime and checked against ``predict_proba`` with the
same tolerances before its graph joins the model's (every name prefixed, so
that two estimators never clash).

Examples
--------
>>> from emnist_estimators.export_skl2onnx import ALIAS_PREFIX
>>> ALIAS_PREFIX
'EmnistEstimators'
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ._utils import capturing_native_stderr, quiet_tf2onnx
from .estimators import EmnistCNN, EmnistMLP
from .exceptions import ExportError
from .exported import BFLOAT16_TOLERANCE, FLOAT32_TOLERANCE, ONNX_OPSET
from .preprocessing import PixelScaler

__all__ = ["ALIAS_PREFIX", "register_converters"]

#: skl2onnx's name of each registered class: this prefix and the class name.
ALIAS_PREFIX = "EmnistEstimators"

_INSTALL_HINT = 'pip install "emnist-estimators[export]"'

#: Images the converter checks each estimator's graph on.
_N_CHECK = 64


def _is_estimator(cls: type) -> bool:
    """An EmnistMLP/EmnistCNN class, or a subclass."""
    return isinstance(cls, type) and issubclass(cls, (EmnistMLP, EmnistCNN))


def register_converters(*classes: type, missing_ok: bool = False) -> bool:
    """Let ``skl2onnx.to_onnx`` convert models holding ``classes``.

    Registers, for each class, a shape calculator and a converter with
    skl2onnx (``update_registered_converter``); classifiers also get the
    ``zipmap`` option that skl2onnx's classifiers take. Registering again
    replaces the earlier registration.

    Parameters
    ----------
    *classes : type
        ``PixelScaler``, ``EmnistMLP``, ``EmnistCNN`` or subclasses of
        them (a subclass needs its own registration: skl2onnx looks a
        model's exact type up). Default: ``PixelScaler``.
    missing_ok : bool, default=False
        Return False when skl2onnx is not installed, or fails to import
        (a version incompatible with the installed onnx or scikit-learn),
        instead of raising: what importing this module does.

    Returns
    -------
    bool
        True once registered; False if skl2onnx is missing and
        ``missing_ok``.

    Raises
    ------
    ImportError
        skl2onnx is not installed (the ``export`` extra), unless
        ``missing_ok``.
    TypeError
        A class is none of those above.

    Examples
    --------
    >>> from emnist_estimators import EmnistMLP, PixelScaler
    >>> from emnist_estimators.export_skl2onnx import register_converters
    >>> register_converters(PixelScaler, EmnistMLP)
    True
    """
    classes = classes or (PixelScaler,)
    wrong = [c for c in classes if not (_is_pixel_scaler(c) or _is_estimator(c))]
    if wrong:
        raise TypeError(
            f"register_converters takes PixelScaler, EmnistMLP, EmnistCNN or "
            f"their subclasses; got {wrong!r}."
        )
    try:
        from skl2onnx import update_registered_converter
    except Exception as exc:
        # a broken skl2onnx must not stop the package from importing
        if missing_ok:
            return False
        if not isinstance(exc, ImportError):
            raise
        raise ImportError(
            "Converting scikit-learn models that hold emnist_estimators' "
            "estimators needs the Python package 'skl2onnx', which is not "
            f"installed: {_INSTALL_HINT}"
        ) from exc
    for cls in classes:
        alias = ALIAS_PREFIX + cls.__name__
        if _is_pixel_scaler(cls):
            update_registered_converter(
                cls, alias, _scaler_shape, _convert_scaler, overwrite=True
            )
        else:
            update_registered_converter(
                cls,
                alias,
                _classifier_shape,
                _convert_classifier,
                overwrite=True,
                options={"zipmap": [True, False, "columns"], "nocl": [False, True]},
            )
    return True


def _is_pixel_scaler(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, PixelScaler)


# --- shape calculators ------------------------------------------------------------
def _scaler_shape(operator: Any) -> None:
    """PixelScaler: float32, flat or (n, side, side, 1) like its transform."""
    from skl2onnx.common.data_types import FloatTensorType
    from skl2onnx.common.utils import check_input_and_output_numbers

    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    scaler = operator.raw_operator
    n_rows = operator.inputs[0].get_first_dimension()
    n_pixels = int(scaler.n_features_in_)
    shape = [n_rows, n_pixels]
    if scaler.output_shape == "image":
        side = scaler.image_side(n_pixels)
        shape = [n_rows, side, side, 1]
    operator.outputs[0].type = FloatTensorType(shape)


def _classifier_shape(operator: Any) -> None:
    """Label (int64 or string, as ``classes_``) and probabilities (n, classes)."""
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
    from skl2onnx.common.utils import check_input_and_output_numbers

    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=2)
    est = operator.raw_operator
    n_rows = operator.inputs[0].get_first_dimension()
    integer = _no_labels(operator) or _label_kind(est.classes_) == "int64"
    label = Int64TensorType if integer else StringTensorType
    operator.outputs[0].type = label([n_rows])
    # float32 unless the model around it computes in double (its input is)
    proba = operator.outputs[1].type
    kind = DoubleTensorType if isinstance(proba, DoubleTensorType) else FloatTensorType
    operator.outputs[1].type = kind([n_rows, len(est.classes_)])


def _no_labels(operator: Any) -> bool:
    """skl2onnx's option ``nocl``: the label output is the class index."""
    options = operator.scope_inst.get_options(operator.raw_operator, {"nocl": False})
    return bool(options["nocl"])


def _label_kind(classes: np.ndarray) -> str:
    """'int64' for integer (or bool) classes, 'string' for text; else an error."""
    if classes.dtype == np.bool_ or np.issubdtype(classes.dtype, np.integer):
        return "int64"
    if np.issubdtype(classes.dtype, np.floating):
        if np.all(classes == np.round(classes)):
            return "int64"
        raise ExportError(
            f"skl2onnx gives labels as int64 or strings; classes_ holds "
            f"fractional numbers {classes[:5].tolist()}. Fit on integer or "
            "string labels to convert."
        )
    return "string"


# --- converters ---------------------------------------------------------------------
def _convert_scaler(scope: Any, operator: Any, container: Any) -> None:
    """PixelScaler.transform as ONNX ops: cast, divide, transpose, reshape.

    Its validation (finite values within ``[0, max_value]``) has no op:
    the graph computes what ``transform`` returns for valid input.
    """
    scaler = operator.raw_operator
    n_pixels = int(scaler.n_features_in_)
    x = _as_flat_float(scope, container, operator.inputs[0].full_name, n_pixels)
    divisor = _constant(scope, container, "max_value", np.float32(scaler.max_value))
    out = operator.outputs[0].full_name
    last = scaler.fix_orientation or scaler.output_shape == "image"
    scaled = scope.get_unique_variable_name("scaled") if last else out
    # float32 division, as transform's
    container.add_node("Div", [x, divisor], scaled, name=_op(scope, "Div"))
    if not last:
        return
    side = scaler.image_side(n_pixels)
    if scaler.fix_orientation:
        images = _reshape(scope, container, scaled, [-1, side, side])
        upright = scope.get_unique_variable_name("upright")
        container.add_node(
            "Transpose", images, upright, name=_op(scope, "Transpose"), perm=[0, 2, 1]
        )
        scaled = upright
    shape = [-1, side, side, 1] if scaler.output_shape == "image" else [-1, n_pixels]
    _reshape(scope, container, scaled, shape, out)


def _convert_classifier(scope: Any, operator: Any, container: Any) -> None:
    """The estimator's float32 twin by tf2onnx, checked, then its label."""
    from onnx import TensorProto

    est = operator.raw_operator
    n_pixels = int(est.n_features_in_)
    x = _as_flat_float(scope, container, operator.inputs[0].full_name, n_pixels)
    opset = min(int(container.target_opset_any_domain("")), ONNX_OPSET)
    graph = _checked_twin_graph(est, opset)
    double = _is_double(operator.outputs[1].type)
    proba = operator.outputs[1].full_name
    float_proba = scope.get_unique_variable_name("probabilities") if double else proba
    _embed(scope, container, graph, x, float_proba, type(est).__name__)
    if double:
        container.add_node(
            "Cast", float_proba, proba, name=_op(scope, "Cast"), to=TensorProto.DOUBLE
        )
    label = operator.outputs[0].full_name
    if _no_labels(operator):
        container.add_node(
            "ArgMax", float_proba, label, name=_op(scope, "ArgMax"), axis=1, keepdims=0
        )
        return
    _label(scope, container, float_proba, est.classes_, label)


def _is_double(var_type: Any) -> bool:
    from skl2onnx.common.data_types import DoubleTensorType

    return isinstance(var_type, DoubleTensorType)


def _op(scope: Any, seed: str) -> str:
    return scope.get_unique_operator_name(seed)


def _constant(scope: Any, container: Any, seed: str, value: Any) -> str:
    from onnx import TensorProto, numpy_helper

    name = scope.get_unique_variable_name(seed)
    array = np.asarray(value)
    if array.dtype == object:  # strings: skl2onnx copies a tensor's raw data only
        container.add_initializer(
            name, TensorProto.STRING, list(array.shape), array.ravel().tolist()
        )
        return name
    tensor = numpy_helper.from_array(array, name)
    container.add_initializer(name, tensor.data_type, list(array.shape), tensor)
    return name


def _reshape(
    scope: Any, container: Any, x: str, shape: list[int], out: str | None = None
) -> str:
    target = _constant(scope, container, "shape", np.asarray(shape, dtype=np.int64))
    out = out or scope.get_unique_variable_name("reshaped")
    container.add_node("Reshape", [x, target], out, name=_op(scope, "Reshape"))
    return out


def _as_flat_float(scope: Any, container: Any, x: str, n_pixels: int) -> str:
    """The input as float32 of shape (n, n_pixels): what the estimator sees.

    ``predict`` takes uint8 and float pixels, flat or image-shaped, and
    casts them to float32; so does the graph.
    """
    from onnx import TensorProto

    cast = scope.get_unique_variable_name("pixels_float")
    container.add_node("Cast", x, cast, name=_op(scope, "Cast"), to=TensorProto.FLOAT)
    return _reshape(scope, container, cast, [-1, n_pixels])


def _label(
    scope: Any, container: Any, proba: str, classes: np.ndarray, out: str
) -> str:
    """``classes_[argmax(proba)]``, as ``predict`` computes it."""
    index = scope.get_unique_variable_name("class_index")
    container.add_node(
        "ArgMax", proba, index, name=_op(scope, "ArgMax"), axis=1, keepdims=0
    )
    if _label_kind(classes) == "int64":
        values = np.asarray(classes, dtype=np.int64)
    else:
        values = np.asarray([str(c).encode("utf-8") for c in classes], dtype=object)
    table = _constant(scope, container, "classes", values)
    picked = scope.get_unique_variable_name("label")
    container.add_node(
        "ArrayFeatureExtractor",
        [table, index],
        picked,
        op_domain="ai.onnx.ml",
        op_version=1,
        name=_op(scope, "ArrayFeatureExtractor"),
    )
    return _reshape(scope, container, picked, [-1], out)


# --- the twin's graph -------------------------------------------------------------


@capturing_native_stderr  # tf2onnx's graph optimiser logs from C++
def _checked_twin_graph(est: Any, opset: int) -> Any:
    """The float32 twin as an ONNX model, checked as ``export_model`` checks.

    Input: float32 pixels ``(n, n_features_in_)`` as the estimator takes
    them (its network scales them); output: the probabilities.
    """
    import tensorflow as tf

    from .threads import configure_at_first_use

    for module in ("tf2onnx", "onnxruntime"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(
                f"Converting {type(est).__name__} with skl2onnx needs the Python "
                f"package {module!r}, which is not installed: {_INSTALL_HINT}"
            ) from exc
    import tf2onnx

    configure_at_first_use()
    net = est._float32_network()
    n_pixels = int(est.n_features_in_)
    spec = tf.TensorSpec((None, n_pixels), tf.float32, name="pixels")

    @tf.function(input_signature=[spec])
    def serve(pixels: Any) -> dict[str, Any]:
        return {"probabilities": net(pixels, training=False)}

    try:
        with quiet_tf2onnx():
            model, _ = tf2onnx.convert.from_function(
                serve, input_signature=serve.input_signature, opset=opset
            )
    except Exception as exc:
        raise ExportError(
            f"Converting {type(est).__name__} to ONNX for skl2onnx failed: "
            f"{type(exc).__name__}: {str(exc)[:2000]}"
        ) from exc
    _check(est, net, model)
    return model


def _check_pixels(est: Any) -> np.ndarray:
    """Blank, white and noise images, scaled as the estimator's training X."""
    n_pixels = int(est.n_features_in_)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (_N_CHECK, n_pixels)).astype(np.float32)
    X[0], X[1] = 0, 255
    # dimmer images too: raw pixels rarely reach 255 everywhere
    X[2 : _N_CHECK // 2] *= rng.random((_N_CHECK // 2 - 2, 1), dtype=np.float32)
    if est.input_scale_ == 1.0:  # fitted on pixels scaled to [0, 1]
        return X / np.float32(255)
    return X.astype(np.uint8)


def _check(est: Any, net: Any, model: Any) -> None:
    """The ONNX graph against ``predict_proba``: export's rule and tolerances."""
    import onnxruntime as ort

    X = _check_pixels(est)
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    got = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})[0]
    want = est.predict_proba(X)
    if getattr(est, "dtype_policy_", "float32") == "float32":
        _judge(got, want, FLOAT32_TOLERANCE, "predict_proba", labels=True)
        return
    twin = np.asarray(net(X.astype(np.float32), training=False))
    _judge(got, twin, FLOAT32_TOLERANCE, "the float32 twin", labels=True)
    _judge(got, want, BFLOAT16_TOLERANCE, "predict_proba (bfloat16)", labels=False)


def _judge(
    got: np.ndarray, want: np.ndarray, tolerance: float, against: str, labels: bool
) -> None:
    got = np.asarray(got, dtype=np.float64)
    if got.shape != want.shape:
        raise ExportError(
            f"The ONNX graph returns shape {got.shape}, {against} {want.shape}."
        )
    diff = float(np.abs(got - want).max())
    n_differ = int((got.argmax(axis=1) != want.argmax(axis=1)).sum()) if labels else 0
    if diff <= tolerance and not n_differ:
        return
    raise ExportError(
        f"The ONNX graph disagrees with {against}: {n_differ} label(s) differ, "
        f"probabilities by up to {diff:.3g} (allowed {tolerance:g}). Please "
        "report this with the versions of tensorflow, keras, tf2onnx, skl2onnx "
        "and onnxruntime."
    )


def _embed(scope: Any, container: Any, model: Any, x: str, out: str, seed: str) -> None:
    """Copy ``model``'s graph into the container, its names made unique.

    Its input becomes ``x``, its output ``out``; every other name (weights,
    intermediate values, nodes) gets a fresh name from the scope, so two
    estimators of one model never share one.
    """
    from onnx import numpy_helper

    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ExportError(
            f"tf2onnx gave a graph of {len(graph.input)} inputs and "
            f"{len(graph.output)} outputs; one of each was expected."
        )
    names = {graph.input[0].name: x, graph.output[0].name: out, "": ""}

    def rename(name: str) -> str:
        if name not in names:
            names[name] = scope.get_unique_variable_name(f"{seed}_{name}")
        return names[name]

    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        tensor = numpy_helper.from_array(array, rename(init.name))
        container.add_initializer(
            tensor.name, tensor.data_type, list(array.shape), tensor
        )
    versions = {o.domain: o.version for o in model.opset_import}
    for node in graph.node:
        if any(a.g.node or a.graphs for a in node.attribute):
            raise ExportError(
                f"tf2onnx gave a {node.op_type} node with a subgraph, which the "
                "skl2onnx converter cannot rename; please report this."
            )
        standard = node.domain in ("", "ai.onnx")  # its version: the model's opset
        container.add_node(
            node.op_type,
            [rename(n) for n in node.input],
            [rename(n) for n in node.output],
            op_domain=node.domain,
            op_version=None if standard else versions[node.domain],
            name=_op(scope, f"{seed}_{node.op_type}"),
        )
        # the attributes exactly as tf2onnx wrote them
        container.nodes[-1].attribute.extend(node.attribute)


# What importing this module is for: skl2onnx.to_onnx then converts
# scikit-learn models that hold these (a missing skl2onnx is said by
# to_onnx's own import, or by register_converters() called directly).
# Not done by the estimators' module: importing skl2onnx and onnx would
# add a second to every import of the package.
register_converters(PixelScaler, EmnistMLP, EmnistCNN, missing_ok=True)
