"""What a fitted estimator writes into its saved file, and how it comes back.

:class:`SavedStateMixin` gives the estimators ``save``, ``load`` and
``export``, and the documented protected pair the file format calls:
``_saved_state()`` (the JSON-able parameters and fitted state) and
``_from_saved_state(state, network)`` (an estimator rebuilt from them,
every value checked against the network). The file itself - members, caps,
safe mode, atomic writes - is :mod:`~emnist_estimators.persistence`'s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils.validation import check_is_fitted

from ._utils import DTYPE_POLICIES, capturing_native_stderr, is_int, is_real
from .exceptions import EmnistEstimatorsError
from .export import export_model
from .keras_io import variables_as_numpy
from .persistence import corrupt_file, read_saved, write_saved

__all__ = ["SavedStateMixin"]

#: Parameters a saved file does not keep: callbacks are code, and the seed is
#: stored apart (an int or None only).
_NOT_SAVED = ("callbacks", "random_state")

_Saved = TypeVar("_Saved", bound="SavedStateMixin")


def _plain(value: object) -> object:
    """A numpy scalar label as the Python value JSON writes."""
    return value.item() if isinstance(value, np.generic) else value


class SavedStateMixin:
    """``save``/``load``/``export`` and the state behind them, for the estimators.

    Subclasses register themselves by class name, so that a file naming
    ``EmnistCNN`` loads as one.
    """

    #: The classes a saved file may name, by name (filled by subclassing).
    _saved_classes: ClassVar[dict[str, type[SavedStateMixin]]] = {}

    if TYPE_CHECKING:
        # What the estimator this is mixed into provides (scikit-learn's
        # BaseEstimator, the estimator's parameters and its fitted state):
        # declared for the type checker only, never assigned here.
        random_state: int | np.random.RandomState | None
        classes_: np.ndarray
        n_features_in_: int
        feature_names_in_: np.ndarray
        input_scale_: float
        dtype_policy_: str
        history_: dict[str, list[float]]
        n_iter_: int
        model_: Any  # a keras.Model
        _network_params_: dict

        def __init__(self, **params: Any) -> None: ...
        def get_params(self, deep: bool = True) -> dict[str, Any]: ...
        @classmethod
        def _get_param_names(cls) -> list[str]: ...
        def _validate_params(self) -> None: ...
        def _network_params(self) -> dict: ...

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            SavedStateMixin._saved_classes[cls.__name__] = cls

    # --- the state ------------------------------------------------------------
    def _saved_state(self) -> dict:
        """The JSON-able class name, parameters and fitted state of ``self``.

        Returns
        -------
        dict
            What ``persistence.write_saved`` stores beside the network.
        """
        params: dict[str, Any] = {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in self.get_params().items()
            if k not in _NOT_SAVED
        }
        if isinstance(params.get("class_weight"), dict):
            # JSON object keys are strings: pairs keep int labels ints.
            params["class_weight"] = [
                [_plain(k), float(v)] for k, v in params["class_weight"].items()
            ]
        if params.get("checkpoint_dir") is not None:
            params["checkpoint_dir"] = os.fspath(params["checkpoint_dir"])
        seed = self.random_state
        return {
            "class": type(self).__name__,
            "params": params,
            "random_state": seed if isinstance(seed, (int, type(None))) else None,
            "classes": self.classes_.tolist(),
            "classes_dtype": self.classes_.dtype.str,
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": getattr(
                self, "feature_names_in_", np.array([])
            ).tolist(),
            "input_scale": self.input_scale_,
            "dtype_policy": self.dtype_policy_,
            "history": self.history_,
            "n_iter": self.n_iter_,
        }

    @classmethod
    def _from_saved_state(cls: type[_Saved], state: dict, network: Any) -> _Saved:
        """An estimator of ``cls`` from a saved state and its network.

        Parameters
        ----------
        state : dict
            As :meth:`_saved_state` wrote it.
        network : keras.Model
            The saved network.

        Returns
        -------
        estimator
            The fitted estimator.

        Raises
        ------
        ValueError
            Saying what in ``state`` is wrong or disagrees with ``network``.
        """
        est = cls._estimator_from_params(state)
        est.model_ = network
        n_outputs, n_inputs = _network_shape(network)
        _check_finite_weights(network)
        est.classes_ = _classes_from_state(state, n_outputs)
        n_features = state.get("n_features_in")
        if not is_int(n_features) or n_features != n_inputs:
            raise ValueError(
                f"n_features_in {n_features!r} differs from the network's {n_inputs}"
            )
        est.n_features_in_ = n_features
        names = state.get("feature_names_in")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("feature_names_in is not a list of names")
        if names:
            if len(names) != n_features:
                raise ValueError(f"{len(names)} feature names for {n_features} pixels")
            est.feature_names_in_ = np.array(names, dtype=object)
        scale = state.get("input_scale")
        if not is_real(scale) or not 0 < scale < float("inf"):
            raise ValueError(f"input_scale {scale!r} is not a positive number")
        est.input_scale_ = float(scale)
        policy = state.get("dtype_policy", "float32")
        if policy not in DTYPE_POLICIES:
            raise ValueError(f"unknown dtype_policy {policy!r}")
        est.dtype_policy_ = policy
        est.history_, est.n_iter_ = _history_from_state(state)
        # the network was built with the saved parameters (warm_start checks them)
        est._network_params_ = est._network_params()
        return est

    @classmethod
    def _estimator_from_params(cls: type[_Saved], state: dict) -> _Saved:
        params, seed = state.get("params"), state.get("random_state")
        allowed = set(cls._get_param_names()) - set(_NOT_SAVED)
        if not isinstance(params, dict) or not set(params) <= allowed:
            raise ValueError(f"its parameters are not those of {cls.__name__}")
        if seed is not None and not is_int(seed):
            raise ValueError(f"random_state {seed!r} is not an int or null")
        params = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()
        }
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
                raise ValueError("class_weight is not a list of [label, weight]")
            params["class_weight"] = dict(weights)
        est = cls(**params, random_state=seed)
        try:
            est._validate_params()
        except ValueError as exc:
            raise ValueError(f"bad parameters ({exc})") from exc
        return est

    # --- files ----------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, include_optimizer: bool = True) -> None:
        """Save the fitted estimator as a ``.keras`` file.

        The file is a regular Keras archive (``keras.saving.load_model`` opens
        the network alone) with one more entry holding the estimator's
        parameters and fitted state. Written to a temporary file, then renamed.

        Parameters
        ----------
        path : str or path-like
            Destination, conventionally ending in ``.keras``.
        include_optimizer : bool, default=True
            False: leave the optimizer's state out, for a file a third the
            size that predicts the same; a warm start from it begins the
            optimizer afresh (the pretrained models are saved so).
        """
        check_is_fitted(self)
        write_saved(
            self.model_,
            self._saved_state(),
            path,
            include_optimizer=include_optimizer,
        )

    @classmethod
    @capturing_native_stderr
    def load(cls: type[_Saved], path: str | os.PathLike) -> _Saved:
        """Load an estimator written by :meth:`save` (Keras safe mode).

        Parameters
        ----------
        path : str or path-like
            A file written by ``save``.

        Returns
        -------
        estimator : EmnistMLP or EmnistCNN
            Ready to predict.
        """
        classes = SavedStateMixin._saved_classes
        state, network = read_saved(path, classes)
        try:
            est = classes[state["class"]]._from_saved_state(state, network)
        except ValueError as exc:
            raise corrupt_file(path, str(exc)) from exc
        if not isinstance(est, cls):
            raise EmnistEstimatorsError(
                f"{path} holds a {type(est).__name__}, not a {cls.__name__}."
            )
        return est

    def export(
        self,
        path: str | os.PathLike,
        format: str = "onnx",
        *,
        overwrite: bool = False,
        input_shape: str = "flat",
        check_X: ArrayLike | None = None,
        class_names: Sequence[str] | Mapping | None = None,
    ) -> Path:
        """Export the fitted network for use outside Python/scikit-learn.

        See :func:`emnist_estimators.export.export_model`, which this calls
        (it also exports a Pipeline ending in this estimator).

        Parameters
        ----------
        path : str or path-like
            Destination file (ONNX, LiteRT) or folder (SavedModel).
        format : {'onnx', 'tf_saved_model', 'litert'}, default='onnx'
            The runtime the exported model is for.
        overwrite : bool, default=False
            Replace an existing ``path`` (a file, or a SavedModel folder).
        input_shape : {'flat', 'image'}, default='flat'
            The exported model's input: (n, 784) or (n, 28, 28) pixels.
        check_X : array-like, default=None
            Images the exported file is checked on against this estimator
            before it is kept; default: a fixed set of synthetic images.
        class_names : sequence of str or dict, default=None
            A name per class for the sidecar JSON (e.g. EMNIST's characters
            for integer labels).

        Returns
        -------
        path : pathlib.Path
            Where the model was written.
        """
        return export_model(
            self,
            path,
            format=format,
            overwrite=overwrite,
            input_shape=input_shape,
            check_X=check_X,
            class_names=class_names,
        )


def _network_shape(model: Any) -> tuple[int, int]:
    try:
        n_outputs = int(model.output_shape[-1])
        n_inputs = int(np.prod(model.input_shape[1:]))
    except (AttributeError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"its network has no single input/output ({exc})") from exc
    return n_outputs, n_inputs


def _check_finite_weights(network: Any) -> None:
    """Refuse a network with a NaN or infinite weight (a diverged fit's).

    Such a network answers NaN probabilities and the first class for every
    row, silently.
    """
    for variable, value in zip(
        network.weights, variables_as_numpy(network.weights), strict=True
    ):
        value = np.asarray(value)
        if value.dtype.kind in "biu":  # counters, seeds
            continue
        finite = np.isfinite(value.astype(np.float32, copy=False))
        if not finite.all():
            bad = int(finite.size - finite.sum())
            raise ValueError(
                f"its network's weight {variable.path!r} holds {bad} NaN or "
                "infinite values (a fit that diverged); train it again"
            )


def _classes_from_state(state: dict, n_outputs: int) -> np.ndarray:
    classes, dtype = state.get("classes"), state.get("classes_dtype")
    if not isinstance(classes, list) or len(classes) != n_outputs:
        raise ValueError(f"its classes do not match the network's {n_outputs} outputs")
    try:
        arr = np.array(classes, dtype=np.dtype(dtype))
        ordered = arr.ndim == 1 and np.array_equal(np.unique(arr), arr)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"its classes cannot be read ({exc})") from exc
    if not ordered or arr.dtype.kind not in "biufUSO":
        raise ValueError("its classes are not distinct sorted labels")
    return arr


def _history_from_state(state: dict) -> tuple[dict, int]:
    history, n_iter = state.get("history"), state.get("n_iter")
    if not isinstance(history, dict) or not all(
        isinstance(v, list) and all(is_real(x) for x in v) for v in history.values()
    ):
        raise ValueError("its training history is not lists of numbers")
    if not is_int(n_iter) or n_iter < 0:
        raise ValueError(f"n_iter {n_iter!r} is not a count of epochs")
    return history, n_iter
