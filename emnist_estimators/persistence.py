"""Saving and loading fitted estimators as ``.keras`` files.

A saved file is a regular Keras archive (``keras.saving.load_model`` opens the
network alone) with one more member, ``emnist_estimators.json``, holding the
estimator's class, parameters and fitted state. :func:`load_model` reads only
the members :func:`save_estimator` writes, each up to a size cap
(``MEMBER_CAPS``), and checks the state against the network before handing the
estimator back. ``SAVE_FORMAT`` is the version of that layout: files written
by any release with the same format load.

Examples
--------
>>> from emnist_estimators.persistence import SAVE_FORMAT
>>> SAVE_FORMAT
1
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .exceptions import DataFormatError, DataNotFoundError
from .threads import configure_at_first_use

if TYPE_CHECKING:
    from .base import _EmnistClassifier

__all__ = ["SAVE_FORMAT", "MEMBER_CAPS", "load_model", "save_estimator"]

#: Format version of files written by ``save``; bump on incompatible changes.
SAVE_FORMAT = 1
_STATE_ENTRY = "emnist_estimators.json"

#: numpy >= 2 warns when it converts an object whose ``__array__`` takes no
#: ``copy`` keyword. TensorFlow's variables take none, and Keras' saving code
#: converts every weight with ``np.array`` (``convert_to_numpy``), so each
#: save or pickle of a network warned once per weight. Still so in TensorFlow
#: 2.21 and Keras 3.15.1, the newest releases when this was written; the
#: conversion is correct, only its calling convention is deprecated.
_NUMPY_COPY_KEYWORD = r"__array__ implementation doesn't accept a copy keyword"


@contextmanager
def keras_saving_quietly() -> Iterator[None]:
    """Silence numpy's ``__array__`` copy-keyword warning from Keras' saving.

    Only that ``DeprecationWarning``, only where Keras' code issues it, and
    only inside the ``with`` block: every other warning, and this one from
    any other code, still shows. ``warnings.catch_warnings`` changes the
    process's filters for the block, so a warning issued by another thread
    meanwhile may be filtered too (Python < 3.14).

    Yields
    ------
    None
        Save or pickle a Keras network inside the block.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=_NUMPY_COPY_KEYWORD,
            category=DeprecationWarning,
            module=r"keras(\.|$)",
        )
        yield


def variables_as_numpy(variables) -> list[np.ndarray]:
    """Numpy copies of Keras variables, without numpy's copy-keyword warning.

    Parameters
    ----------
    variables : iterable of keras.Variable
        E.g. a network's ``variables`` or its optimizer's.

    Returns
    -------
    list of ndarray
        One array per variable, in order.
    """
    import keras

    with keras_saving_quietly():
        return [keras.ops.convert_to_numpy(v) for v in variables]


class _PackedNetwork:
    """A Keras network serialized now, that pickles as scikeras pickles it.

    scikeras makes Keras models picklable (``Model.__reduce__``), but pickle
    calls that only after the estimator's ``__getstate__`` returned, outside
    any scope of ours. Serializing here, inside :func:`keras_saving_quietly`,
    keeps the pickle's bytes as they were: unpickling runs scikeras'
    ``unpack_keras_model`` and yields the ``keras.Model`` itself.
    """

    __slots__ = ("_reduced",)

    def __init__(self, model: Any) -> None:
        with keras_saving_quietly():
            self._reduced = model.__reduce__()

    def __reduce__(self) -> Any:
        return self._reduced


def pack_network(model: Any) -> Any:
    """Return what to pickle for ``model_``: Keras networks pre-serialized.

    Parameters
    ----------
    model : keras.Model or object
        An estimator's ``model_``.

    Returns
    -------
    object
        A stand-in that unpickles as the same network, for a Keras model
        (scikeras registers its pickling); anything else unchanged.
    """
    import keras

    if isinstance(model, keras.Model):
        return _PackedNetwork(model)
    return model


def save_estimator(est: _EmnistClassifier, path: str | os.PathLike) -> None:
    """Save a fitted ``EmnistMLP`` or ``EmnistCNN`` as a ``.keras`` file.

    The network is saved by Keras, then the estimator's state is added as one
    more member. Written to a temporary file beside ``path``, checked to be
    loadable (no member above its cap), then renamed, so ``path`` is never
    left half-written.

    Parameters
    ----------
    est : EmnistMLP or EmnistCNN
        A fitted estimator.
    path : str or path-like
        Destination, conventionally ending in ``.keras``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``est`` is not fitted.
    DataFormatError
        If a member would exceed what :func:`load_model` reads.
    """
    check_is_fitted(est)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.keras")
    try:
        with keras_saving_quietly():
            est.model_.save(tmp)
        with zipfile.ZipFile(tmp, "a") as zf:
            zf.writestr(_STATE_ENTRY, json.dumps(_state_of(est)))
            _check_loadable(zf, tmp)  # never write a file load_model refuses
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _state_of(est) -> dict:
    """The JSON-able parameters and fitted state of ``est``."""
    from . import __version__

    params = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in est.get_params().items()
        if k not in ("callbacks", "random_state")
    }
    if isinstance(params.get("class_weight"), dict):
        # JSON object keys are strings: pairs keep int labels ints.
        params["class_weight"] = [
            [_plain(k), float(v)] for k, v in params["class_weight"].items()
        ]
    if params.get("checkpoint_dir") is not None:
        params["checkpoint_dir"] = os.fspath(params["checkpoint_dir"])
    return {
        "format": SAVE_FORMAT,
        "package_version": __version__,
        "class": type(est).__name__,
        "params": params,
        "random_state": est.random_state
        if isinstance(est.random_state, (int, type(None)))
        else None,
        "classes": est.classes_.tolist(),
        "classes_dtype": est.classes_.dtype.str,
        "n_features_in": int(est.n_features_in_),
        "feature_names_in": getattr(est, "feature_names_in_", np.array([])).tolist(),
        "input_scale": est.input_scale_,
        "dtype_policy": est.dtype_policy_,
        "history": est.history_,
        "n_iter": est.n_iter_,
    }


def _plain(value):
    """A numpy scalar label as the Python value JSON writes."""
    return value.item() if isinstance(value, np.generic) else value


def _estimator_classes() -> dict:
    """The classes a file may name, by name."""
    # Imported here: estimators imports base, which imports this module.
    from .estimators import EmnistCNN, EmnistMLP

    return {"EmnistMLP": EmnistMLP, "EmnistCNN": EmnistCNN}


def load_model(path: str | os.PathLike) -> _EmnistClassifier:
    """Load an :class:`EmnistMLP` or :class:`EmnistCNN` saved with ``save``.

    The Keras network is loaded with ``safe_mode=True`` (no arbitrary code).
    Only the members ``save`` writes are read - ``config.json``,
    ``metadata.json``, ``model.weights.h5`` and the estimator state - each up
    to a size cap (``MEMBER_CAPS``; the weights up to 64 MiB plus 4 times
    the file's size), checked against the size the archive declares and again
    while inflating, so a small hostile file cannot exhaust memory or disk.
    Other members are ignored. The state is checked against the network.

    Parameters
    ----------
    path : str or path-like
        A ``.keras`` file written by ``EmnistMLP.save`` / ``EmnistCNN.save``.

    Returns
    -------
    estimator : EmnistMLP or EmnistCNN
        The fitted estimator, ready to predict.

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    EmnistEstimatorsError
        The file is not a zip (Keras) archive.
    DataFormatError
        The archive was not written by emnist-estimators, or by an
        incompatible version, is corrupt or tampered with, or a member
        exceeds its size cap.
    """
    path = Path(path)
    configure_at_first_use()  # before Keras builds the network
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError as exc:
        raise DataNotFoundError(
            f"Cannot load {path}: no such file, so not a saved emnist-estimators "
            "model. Check the path."
        ) from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataFormatError(
            f"Cannot load {path}: not a saved emnist-estimators model ({exc}). "
            "Give a .keras file written by est.save() or the train command."
        ) from exc
    with zf, tempfile.TemporaryDirectory() as tmp:
        state = _read_state(zf, path)
        est = _estimator_from_state(state, path)
        # Keras reads a copy holding only its own members, each size-capped.
        model_path = Path(tmp) / "model.keras"
        _copy_network(zf, path, model_path)
        est.model_ = _load_network(model_path, path)
    _restore_state(est, state, path)
    # the network was built with the saved parameters (warm_start checks them)
    est._network_params_ = est._network_params()
    return est


#: Most bytes ``load_model`` reads from each JSON member of a saved model;
#: real ones are a few kilobytes (the state grows ~100 bytes per epoch).
MEMBER_CAPS = {
    "metadata.json": 1 << 16,
    "config.json": 1 << 24,
    _STATE_ENTRY: 1 << 26,
}
_WEIGHTS_ENTRY = "model.weights.h5"
# Keras stores the weights uncompressed, so they never exceed the file; the
# floor and factor leave room for a file zipped again with compression.
_WEIGHTS_CAP_FLOOR = 1 << 26
_WEIGHTS_CAP_FACTOR = 4
_CHUNK = 1 << 20


def _corrupt(path, what: str) -> DataFormatError:
    return DataFormatError(
        f"{path} is corrupt or was not saved by emnist-estimators: {what}. "
        "Save the model again with EmnistMLP.save / EmnistCNN.save."
    )


def _member_cap(name: str, archive_bytes: int) -> tuple[int, str]:
    """The most bytes read from member ``name``, and that cap in words."""
    if name == _WEIGHTS_ENTRY:
        cap = _WEIGHTS_CAP_FLOOR + _WEIGHTS_CAP_FACTOR * archive_bytes
        return cap, f"64 MiB + {_WEIGHTS_CAP_FACTOR}x the file's size"
    cap = MEMBER_CAPS[name]
    size = f"{cap >> 20} MiB" if cap >= 1 << 20 else f"{cap >> 10} KiB"
    return cap, f"{size} for {name}"


def _check_loadable(zf, path) -> None:
    """Raise if a member of ``zf`` exceeds what :func:`load_model` reads."""
    size = Path(path).stat().st_size
    for name in (*MEMBER_CAPS, _WEIGHTS_ENTRY):
        if name in zf.namelist():
            cap, why = _member_cap(name, size)
            if zf.getinfo(name).file_size > cap:
                raise DataFormatError(
                    f"Cannot save: the member {name!r} would hold "
                    f"{zf.getinfo(name).file_size:,} bytes, more than the "
                    f"{cap:,} load_model reads ({why}). Train with fewer epochs "
                    "or a smaller network."
                )


def _copy_member(zf, path, name: str, dst) -> None:
    """Copy member ``name`` into the binary file ``dst``, at most its cap."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise _corrupt(path, f"the member {name!r} is missing") from None
    cap, why = _member_cap(name, Path(path).stat().st_size)
    refusal = (
        f"{path}: the member {name!r} {{}}, but load_model reads at most "
        f"{cap:,} bytes of it ({why}). The file is corrupt or hostile (a "
        "decompression bomb), not a model saved by emnist-estimators."
    )
    if info.file_size > cap:
        raise DataFormatError(refusal.format(f"declares {info.file_size:,} bytes"))
    total = 0
    try:
        with zf.open(info) as src:
            while chunk := src.read(min(_CHUNK, cap + 1 - total)):
                total += len(chunk)
                if total > cap:  # the header lied about the size
                    raise DataFormatError(refusal.format("inflates past the cap"))
                dst.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError) as exc:
        raise _corrupt(path, f"the member {name!r} cannot be read ({exc})") from exc


def _read_state(zf, path) -> dict:
    if _STATE_ENTRY not in zf.namelist():
        raise DataFormatError(
            f"{path} is a zip/Keras file but was not written by emnist-estimators "
            "(no estimator state inside). Load plain Keras models with "
            "keras.saving.load_model."
        )
    buf = io.BytesIO()
    _copy_member(zf, path, _STATE_ENTRY, buf)
    try:
        state = json.loads(buf.getvalue())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(path, f"its {_STATE_ENTRY} is not valid JSON ({exc})") from exc
    if not isinstance(state, dict):
        raise _corrupt(path, f"its {_STATE_ENTRY} is not a JSON object")
    fmt, name = state.get("format"), state.get("class")
    if fmt != SAVE_FORMAT:
        raise DataFormatError(
            f"{path} was written by emnist-estimators "
            f"{state.get('package_version', '?')} in save format {fmt!r}; this "
            f"version reads format {SAVE_FORMAT}. Re-save it with a matching version."
        )
    if not isinstance(name, str) or name not in _estimator_classes():
        raise _corrupt(path, f"unknown estimator class {name!r}")
    return state


def _estimator_from_state(state: dict, path):
    cls = _estimator_classes()[state["class"]]
    params, seed = state.get("params"), state.get("random_state")
    allowed = set(cls._get_param_names()) - {"callbacks", "random_state"}
    if not isinstance(params, dict) or not set(params) <= allowed:
        raise _corrupt(path, f"its parameters are not those of {cls.__name__}")
    if seed is not None and not _is_int(seed):
        raise _corrupt(path, f"random_state {seed!r} is not an int or null")
    params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()}
    # Files written before label_smoothing existed trained without it; the
    # class default (0.1 for the CNN) would misreport how they were trained.
    params.setdefault("label_smoothing", 0.0)
    # Likewise block_dropout: before it, the CNN's blocks used ``dropout``
    # (None), whatever the class default becomes.
    if "block_dropout" in cls._get_param_names():
        params.setdefault("block_dropout", None)
    weights = params.get("class_weight")
    if isinstance(weights, tuple):
        if not all(isinstance(p, list) and len(p) == 2 for p in weights):
            raise _corrupt(path, "class_weight is not a list of [label, weight]")
        params["class_weight"] = dict(weights)
    est = cls(**params, random_state=seed)
    try:
        est._validate_params()
    except ValueError as exc:
        raise _corrupt(path, f"bad parameters ({exc})") from exc
    return est


def _copy_network(zf, path, model_path: Path) -> None:
    with zipfile.ZipFile(model_path, "w") as dst:
        for name in ("metadata.json", "config.json", _WEIGHTS_ENTRY):
            if name == "metadata.json" and name not in zf.namelist():
                continue  # Keras itself does not need it
            # zip64 lets weights above 2 GiB through (their size is unknown here)
            with dst.open(name, "w", force_zip64=name == _WEIGHTS_ENTRY) as out:
                _copy_member(zf, path, name, out)


def _load_network(model_path: Path, path):
    import keras

    # Registers the custom layers (FusableLeakyReLU) and loss
    # (SmoothedSparseCrossentropy) the saved config names; a fresh process
    # may not have imported them yet.
    from . import architectures, losses  # noqa: F401

    try:
        return keras.saving.load_model(model_path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for bad archives
        raise _corrupt(path, f"its Keras network cannot be loaded ({exc})") from exc


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _restore_state(est, state: dict, path) -> None:
    """Check the fitted state against the network, then set it on ``est``."""
    n_outputs, n_inputs = _network_shape(est.model_, path)
    est.classes_ = _classes_from_state(state, n_outputs, path)
    n_features = state.get("n_features_in")
    if not _is_int(n_features) or n_features != n_inputs:
        raise _corrupt(
            path, f"n_features_in {n_features!r} differs from the network's {n_inputs}"
        )
    est.n_features_in_ = n_features
    names = state.get("feature_names_in")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _corrupt(path, "feature_names_in is not a list of names")
    if names:
        if len(names) != n_features:
            raise _corrupt(path, f"{len(names)} feature names for {n_features} pixels")
        est.feature_names_in_ = np.array(names, dtype=object)
    scale = state.get("input_scale")
    if not _is_real(scale) or not 0 < scale < float("inf"):
        raise _corrupt(path, f"input_scale {scale!r} is not a positive number")
    est.input_scale_ = float(scale)
    policy = state.get("dtype_policy", "float32")
    if policy not in ("float32", "mixed_bfloat16", "mixed_float16"):
        raise _corrupt(path, f"unknown dtype_policy {policy!r}")
    est.dtype_policy_ = policy
    est.history_, est.n_iter_ = _history_from_state(state, path)


def _network_shape(model, path) -> tuple[int, int]:
    try:
        n_outputs = int(model.output_shape[-1])
        n_inputs = int(np.prod(model.input_shape[1:]))
    except (AttributeError, TypeError, ValueError, IndexError) as exc:
        raise _corrupt(path, f"its network has no single input/output ({exc})") from exc
    return n_outputs, n_inputs


def _classes_from_state(state: dict, n_outputs: int, path) -> np.ndarray:
    classes, dtype = state.get("classes"), state.get("classes_dtype")
    if not isinstance(classes, list) or len(classes) != n_outputs:
        raise _corrupt(
            path, f"its classes do not match the network's {n_outputs} outputs"
        )
    try:
        arr = np.array(classes, dtype=np.dtype(dtype))
        ordered = arr.ndim == 1 and np.array_equal(np.unique(arr), arr)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _corrupt(path, f"its classes cannot be read ({exc})") from exc
    if not ordered or arr.dtype.kind not in "biufUSO":
        raise _corrupt(path, "its classes are not distinct sorted labels")
    return arr


def _history_from_state(state: dict, path) -> tuple[dict, int]:
    history, n_iter = state.get("history"), state.get("n_iter")
    if not isinstance(history, dict) or not all(
        isinstance(v, list) and all(_is_real(x) for x in v) for v in history.values()
    ):
        raise _corrupt(path, "its training history is not lists of numbers")
    if not _is_int(n_iter) or n_iter < 0:
        raise _corrupt(path, f"n_iter {n_iter!r} is not a count of epochs")
    return history, n_iter
