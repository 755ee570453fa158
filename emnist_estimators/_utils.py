"""Private helpers: input validation, seeding, precision, parameters as JSON.

Also the capture of TensorFlow's native stderr lines around long operations.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import os
import random
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Literal, TypeGuard, TypeVar, cast, get_args

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse
from sklearn.utils._missing import is_pandas_na, is_scalar_nan
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import validate_data

from .exceptions import DataFormatError

__all__ = [
    "check_elements",
    "check_labels",
    "check_pixels",
    "seeded",
    "resolve_seed",
    "resolve_precision",
    "is_int",
    "is_real",
    "jsonable",
    "jsonable_params",
    "PRECISIONS",
    "DTYPE_POLICIES",
    "Precision",
    "capturing_native_stderr",
    "native_log_shown",
    "native_stderr_captured",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The estimators' ``precision`` parameter: 'auto' or a Keras dtype policy.
Precision = Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"]
#: Its values, in the order above.
PRECISIONS: tuple[str, ...] = get_args(Precision)
#: The dtype policies a network trains in (a fitted ``dtype_policy_``).
DTYPE_POLICIES: tuple[str, ...] = PRECISIONS[1:]


def _image_shape_of(X: np.ndarray) -> tuple[int, int] | None:
    if X.ndim == 3:
        return X.shape[1], X.shape[2]
    if X.ndim == 4:
        if X.shape[3] != 1:
            raise DataFormatError(
                f"X has shape {X.shape}: images must have one grey channel, "
                "(n, height, width) or (n, height, width, 1). Convert colour "
                "images to grey first."
            )
        return X.shape[1], X.shape[2]
    return None


def _plain_pixels(estimator: object, X: object, want: Any) -> np.ndarray | None:
    """``X`` as validate_data would return it, if it needs none of its checks.

    That is a plain 2-D ndarray of uint8, or of floats finite as ``want``,
    with at least one row and the fitted ``n_features_in_`` columns, for an
    estimator fitted without feature names: validate_data would only cast
    it, and its checks cost about as much as the network's answer for one
    image. None otherwise (validate_data then raises its errors).
    """
    if not (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.shape[0] >= 1
        and X.shape[1] == getattr(estimator, "n_features_in_", None)
        and not hasattr(estimator, "feature_names_in_")
        and X.dtype in (np.uint8, np.float32, np.float64)
    ):
        return None
    X = X if want is None else X.astype(want, copy=False)
    return X if X.dtype == np.uint8 or np.isfinite(X).all() else None


def check_pixels(
    estimator: object,
    X: ArrayLike,
    *,
    reset: bool,
    max_value: float | None = 255.0,
    keep_uint8: bool = True,
) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Validate pixel input and return it as a 2-D array plus its image shape.

    Accepts arrays, lists and DataFrames of shape (n, n_features), (n, h, w)
    or (n, h, w, 1). Rejects sparse input, 1-D input, empty input, NaN/inf
    and values outside ``0..max_value`` with a message that names the fix.
    uint8 input stays uint8 (no float copy of a whole split); anything else
    becomes float32.

    Parameters
    ----------
    estimator : estimator
        The estimator validating: named in messages, and given
        ``n_features_in_`` (and ``feature_names_in_``) when ``reset``.
    X : array-like
        The pixels.
    reset : bool
        True in ``fit`` (record the number of features), False afterwards
        (check it against the recorded one).
    max_value : float or None, default=255.0
        The largest valid pixel value; None skips the range check.
    keep_uint8 : bool, default=True
        Return uint8 input as uint8 instead of converting it to float32.

    Returns
    -------
    X2d : ndarray of shape (n_samples, n_features)
        The pixels, uint8 or float32.
    image_shape : tuple of (height, width) or None
        The shape the images had, None for flat input.

    Raises
    ------
    DataFormatError
        Wrong number of dimensions or channels, or values out of range (a
        ``ValueError``, as are scikit-learn's own NaN and shape errors).
    TypeError
        Sparse input.
    """
    name = type(estimator).__name__
    if sparse.issparse(X):
        raise TypeError(
            f"{name} does not accept sparse input (got {type(X).__name__}): images "
            "are dense. Convert with X.toarray()."
        )
    image_shape = None
    if not hasattr(X, "columns"):  # keep DataFrames whole for feature names
        X = np.asarray(X) if not isinstance(X, np.ndarray) else X
        if X.ndim == 1:
            raise DataFormatError(
                f"Expected a 2-D array of shape (n_samples, n_pixels) or image "
                f"batches (n, height, width), got a 1-D array of shape {X.shape}. "
                "Reshape your data with X.reshape(1, -1) for a single sample or "
                "X.reshape(-1, 1) for a single feature."
            )
        if X.ndim in (3, 4):
            image_shape = _image_shape_of(X)
            X = X.reshape(X.shape[0], -1)
        elif X.ndim > 4:
            raise DataFormatError(
                f"X has {X.ndim} dimensions; expected 2 (n_samples, n_pixels), "
                "3 (n, height, width) or 4 (n, height, width, 1)."
            )
    dtype = getattr(X, "dtype", None)
    want = None if (keep_uint8 and dtype == np.uint8) else np.float32
    if isinstance(X, np.ndarray) and X.dtype.kind in "OUS":
        want = np.float32
    plain = None if reset else _plain_pixels(estimator, X, want)
    if plain is not None:  # fitted, and X as validate_data would return it
        X = plain
    else:
        # validate_data returns an ndarray (sparse and DataFrames are handled
        # above or converted by it); sklearn has no type hints, so say so.
        X = cast(
            np.ndarray,
            validate_data(
                estimator,
                X,
                reset=reset,
                dtype=want,
                accept_sparse=False,
                ensure_all_finite=True,
                ensure_min_samples=1,
            ),
        )
    # uint8 is within 0..255 by its type: scanning a whole split for that is
    # skipped, unless a smaller max_value (1.0: "already scaled") can be exceeded.
    may_exceed = X.dtype != np.uint8 or (max_value is not None and max_value < 255)
    if max_value is not None and may_exceed and X.size:
        lo, hi = float(X.min()), float(X.max())
        if lo < 0:
            raise DataFormatError(
                f"Negative values in data passed to {name} (minimum {lo:g}): pixel "
                f"values must lie in [0, {max_value:g}]. Pass raw grey pixels "
                "0..255 or values scaled to [0, 1]; negative values usually mean "
                "the data was standardised - undo that, or scale with PixelScaler."
            )
        if hi > max_value:
            raise DataFormatError(
                f"Pixel values up to {hi:g} passed to {name}, which expects values "
                f"in [0, {max_value:g}]. Clip or rescale the images to 0..255 grey "
                "levels."
            )
    return X, image_shape


def check_elements(estimator: object, element_constraints: dict) -> None:
    """Check every element of an estimator's sequence parameters.

    scikit-learn's ``_parameter_constraints`` check a parameter's type (a
    tuple or list), not what it holds; ``MLPClassifier`` checks the elements
    of ``hidden_layer_sizes`` in ``fit`` instead. This does that for any
    sequence parameter, before a Keras model is built: without it, ``(0,)``
    fails deep inside Keras and ``("a",)`` with int()'s "invalid literal".

    Parameters
    ----------
    estimator : estimator
        Holds the parameters, already checked by their constraints; one that
        may also be a scalar (``convs_per_block``'s single int) is skipped
        when it is one.
    element_constraints : dict
        ``{parameter name: constraint}`` with a scikit-learn constraint such
        as ``Interval(Integral, 1, None, closed="left")`` that each element
        must satisfy. Booleans are refused although they are ints.

    Raises
    ------
    InvalidParameterError
        scikit-learn's parameter error (a ValueError and a TypeError), worded
        like its other messages, naming the bad element and the default as an
        example of a valid value.
    """
    name = type(estimator).__name__
    for param, rule in element_constraints.items():
        value = getattr(estimator, param)
        if not isinstance(value, (tuple, list)):
            continue  # a scalar alternative (an int depth): its own constraint
        for i, element in enumerate(value):
            if not isinstance(element, bool) and rule.is_satisfied_by(element):
                continue
            default = inspect.signature(type(estimator)).parameters[param].default
            raise InvalidParameterError(
                f"The {param!r} parameter of {name} must be a tuple or list with "
                f"each element {rule}. Got {value!r} instead: element {i} is "
                f"{element!r} ({type(element).__name__}). Pass e.g. "
                f"{param}={default!r} (the default)."
            )


def check_labels(y: np.ndarray) -> None:
    """Refuse labels that are missing (None, NaN, pd.NA) or of mixed types.

    Without this, scikit-learn's label checks fail with a ``TypeError`` from
    sorting (``'<' not supported between 'NoneType' and 'str'``) or a vague
    "Unknown label type: unknown", depending on where the gap is.

    Raises
    ------
    DataFormatError
        Naming the positions of the missing labels or the mixed types.
    """
    if y.dtype != object:
        return  # numeric NaN is reported by check_classification_targets
    missing = [
        i for i, v in enumerate(y) if v is None or is_scalar_nan(v) or is_pandas_na(v)
    ]
    if missing:
        raise DataFormatError(
            f"y has no label (None/NaN) for {len(missing)} of {len(y)} samples, "
            f"at positions {missing[:10]}{'...' if len(missing) > 10 else ''}. "
            "Every training sample needs a class label: drop the unlabelled "
            "samples (and their rows of X) or fill in their labels."
        )
    try:
        np.unique(y)
    except TypeError as exc:
        kinds = sorted({type(v).__name__ for v in y})
        raise DataFormatError(
            f"y mixes label types ({', '.join(kinds)}) that cannot be sorted into "
            "classes. Give every label the same type, e.g. y.astype(str)."
        ) from exc


def resolve_seed(
    random_state: int | np.random.RandomState | np.random.Generator | None,
) -> int | None:
    """An int seed from ``random_state`` (int, RandomState, Generator or None)."""
    if random_state is None:
        return None
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise ValueError(
        f"random_state must be None, an int or a numpy RandomState, got "
        f"{random_state!r}."
    )


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Seed Python, NumPy, TensorFlow and Keras for one fit, then restore them.

    ``keras.utils.set_random_seed`` changes process-wide state; restoring it
    afterwards keeps one estimator's ``random_state`` from leaking into the
    next estimator's fit (scikeras leaves TensorFlow's op determinism on).
    """
    if seed is None:
        yield
        return
    import keras
    import tensorflow as tf
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from tensorflow.python.eager import context

    py_state = random.getstate()
    np_state = np.random.get_state()
    tf_seed = context.global_seed()
    keras_seed = global_state.get_global_attribute("global_random_seed")
    keras_gen = global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR)
    try:
        keras.utils.set_random_seed(seed)
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        tf.random.set_seed(tf_seed)
        global_state.set_global_attribute("global_random_seed", keras_seed)
        global_state.set_global_attribute(
            seed_generator.GLOBAL_SEED_GENERATOR, keras_gen
        )


#: Environment variable that overrides the CPU's bfloat16 flag for
#: ``precision="auto"``: "0" resolves as on a CPU without native bfloat16
#: (float32), "1" as on one with it. CI runs its default suite with "0" so
#: that no test depends on bf16 numerics.
CPU_BF16_ENV = "EMNIST_ESTIMATORS_CPU_BF16"


def _cpu_has_bf16() -> bool:
    """True if the CPU computes bfloat16 natively (AVX512-BF16 or AMX).

    :data:`CPU_BF16_ENV` set to "0" or "1" answers instead of the CPU.
    """
    forced = os.environ.get(CPU_BF16_ENV, "").strip()
    if forced:
        if forced not in ("0", "1"):
            raise ValueError(
                f"{CPU_BF16_ENV}={forced!r} is not understood: set it to 0 "
                "(precision='auto' resolves as on a CPU without bfloat16), 1 "
                "(as on one with it), or unset it to read the CPU's flags."
            )
        return forced == "1"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    return False


def _gpu_compute_capabilities() -> list[tuple[int, int]]:
    """The CUDA compute capability of each GPU TensorFlow sees ([] on CPU)."""
    import tensorflow as tf

    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capabilities.append(tuple(details.get("compute_capability") or (0, 0)))
    return capabilities


#: The first CUDA compute capability with float16 tensor cores (Volta).
_FLOAT16_TENSOR_CORES = (7, 0)


def resolve_precision(precision: str) -> str | None:
    """The Keras dtype policy for ``precision``; None means float32.

    'auto' picks 'mixed_float16' when every GPU TensorFlow sees is a CUDA GPU
    with float16 tensor cores (compute capability >= 7.0: Volta and later;
    Keras then scales the loss, ``LossScaleOptimizer``), float32 on other
    GPUs, and on a CPU-only machine 'mixed_bfloat16' where the processor has
    native bfloat16 (about 1.9x faster CNN training, measured in
    benchmarks/bench_precision.py), else float32: where bfloat16 is emulated
    it would be slower.
    """
    if precision == "float32":
        return None
    if precision in ("mixed_bfloat16", "mixed_float16"):
        return precision
    capabilities = _gpu_compute_capabilities()
    if capabilities:
        fast = all(c >= _FLOAT16_TENSOR_CORES for c in capabilities)
        return "mixed_float16" if fast else None
    return "mixed_bfloat16" if _cpu_has_bf16() else None


def is_int(value: object) -> TypeGuard[int]:
    """True for an int that is not a bool (a JSON integer read back)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: object) -> TypeGuard[int | float]:
    """True for an int or float that is not a bool (a JSON number read back)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def jsonable(value: Any) -> Any:
    """A parameter's value as JSON-ready Python values.

    The one rule for every file that records parameters (a checkpoint's
    identity, an export's sidecar, a run's ``params.json``, a search's
    summary): None, bools, ints, floats and strings as they are; numpy
    scalars as the Python number; tuples and lists as lists and dicts as
    dicts with string keys (``json.dumps``' text for a non-string key), their
    items converted alike; paths as their string; a numpy random generator
    by its class name (its repr names an address that differs each run);
    anything else by its ``repr``.

    Parameters
    ----------
    value : object
        A parameter's value.

    Returns
    -------
    object
        ``value`` as values ``json.dumps`` writes.

    Examples
    --------
    >>> jsonable((64, np.int64(32)))
    [64, 32]
    >>> jsonable({0: np.float32(2.0), "a": None})
    {'0': 2.0, 'a': None}
    >>> jsonable(np.random.RandomState(0))
    'RandomState'
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {_json_key(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (np.random.RandomState, np.random.Generator)):
        return type(value).__name__
    return repr(value)


def _json_key(key: Any) -> str:
    key = jsonable(key)
    return key if isinstance(key, str) else json.dumps(key)


def jsonable_params(
    params: Mapping[str, Any], exclude: Iterable[str] = ("callbacks",)
) -> dict[str, Any]:
    """An estimator's parameters as JSON-ready values, by :func:`jsonable`.

    Parameters
    ----------
    params : mapping
        Parameter names and values, as ``get_params`` gives them.
    exclude : iterable of str, default=("callbacks",)
        Names left out (Keras callbacks are objects, not settings).

    Returns
    -------
    dict
        The other parameters, their values converted.

    Examples
    --------
    >>> jsonable_params({"hidden_layer_sizes": (64,), "callbacks": None})
    {'hidden_layer_sizes': [64]}
    """
    skip = set(exclude)
    return {k: jsonable(v) for k, v in params.items() if k not in skip}


# --- TensorFlow's native log around the package's long operations --------------
# One capture at a time for the whole process: file descriptor 2 is the
# process's, so nested or concurrent captures share the outermost one, and
# the last to leave restores the descriptor.
_capture_lock = threading.Lock()
_capture: dict[str, Any] = {"depth": 0, "saved": None, "sink": None}
_NATIVE_LOG_SHOWN: ContextVar[bool] = ContextVar("native_log_shown", default=False)


@contextlib.contextmanager
def native_log_shown() -> Iterator[None]:
    """Let :func:`native_stderr_captured` pass native output through (``-v``).

    Yields
    ------
    None
        Inside the block (this thread or task), nothing is captured.

    Examples
    --------
    >>> with native_log_shown(), native_stderr_captured():
    ...     pass  # TensorFlow's C++ lines would show here
    """
    token = _NATIVE_LOG_SHOWN.set(True)
    try:
        yield
    finally:
        _NATIVE_LOG_SHOWN.reset(token)


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    """Send what C code writes to stderr to a file; show it only on failure.

    TensorFlow's C++ side (and tf2onnx's graph optimiser through it) logs
    to file descriptor 2 directly - ``I0000 ... cpu_feature_guard``, absl's
    ``WARNING: All log messages before absl::InitializeLog()``, ``Starting new
    session`` - whatever ``TF_CPP_MIN_LOG_LEVEL`` says once TensorFlow is
    loaded. The package changes no logging setting; it points descriptor 2 at
    a temporary file while its own long operations (importing TensorFlow,
    loading, exporting) run. If the block raises, what was written meanwhile
    is written to ``sys.stderr`` before the error propagates; the descriptor
    is restored in every case. Python-level writes to ``sys.stderr`` made
    through descriptor 2 meanwhile (another thread's, say) are held with it.

    Nested and concurrent blocks share one capture; the last to leave
    restores the descriptor. Inside :func:`native_log_shown`, or where
    descriptor 2 is closed, nothing is captured.

    Yields
    ------
    None
        Inside the ``with`` block, file descriptor 2 goes to a temporary
        file.

    Examples
    --------
    >>> with native_stderr_captured():
    ...     import tensorflow  # its start-up lines are not shown
    """
    if _NATIVE_LOG_SHOWN.get():
        yield
        return
    with _capture_lock:
        if _capture["depth"] == 0:
            _flush_stderr()
            try:
                saved = os.dup(2)
            except OSError:  # no stderr to capture
                saved = None
            sink = None
            if saved is not None:
                sink = tempfile.TemporaryFile()
                os.dup2(sink.fileno(), 2)
            _capture.update(saved=saved, sink=sink)
        _capture["depth"] += 1
        sink = _capture["sink"]
        start = 0 if sink is None else os.fstat(sink.fileno()).st_size
    failed = True
    try:
        yield
        failed = False
    finally:
        text = b""
        with _capture_lock:
            if sink is not None:
                _flush_stderr()
                if failed:
                    end = os.fstat(sink.fileno()).st_size
                    text = os.pread(sink.fileno(), end - start, start)
            _capture["depth"] -= 1
            if _capture["depth"] == 0 and _capture["saved"] is not None:
                os.dup2(_capture["saved"], 2)
                os.close(_capture["saved"])
                _capture["sink"].close()
                _capture.update(saved=None, sink=None)
        if text:
            sys.stderr.write(text.decode(errors="replace"))
            _flush_stderr()


def _flush_stderr() -> None:
    """Flush ``sys.stderr`` so its buffered text goes where it was written."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()


def capturing_native_stderr(func: F) -> F:
    """Decorate ``func`` to run inside :func:`native_stderr_captured`.

    Parameters
    ----------
    func : callable
        A long operation of the package (export, load).

    Returns
    -------
    callable
        ``func``, its native stderr output captured.

    Examples
    --------
    >>> @capturing_native_stderr
    ... def work():
    ...     return 1
    >>> work()
    1
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with native_stderr_captured():
            return func(*args, **kwargs)

    return cast(F, wrapper)


@contextlib.contextmanager
def quiet_tf2onnx() -> Iterator[None]:
    """tf2onnx logs every conversion step at INFO: WARNING and above only."""
    logger = logging.getLogger("tf2onnx")
    before = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(before)
