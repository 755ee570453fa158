"""``EmnistMLP`` and ``EmnistCNN``: Keras models with the scikit-learn contract.

Both subclass scikeras' :class:`~scikeras.wrappers.KerasClassifier`, so they
are what scikeras users expect, but own the parts that scikeras 0.13 gets
wrong on current scikit-learn (see DESIGN.md): the tags API and classifier
type, input validation (``n_features_in_``, sparse, NaN, pixel range) before
any training, seeding that does not leak process-wide state, label encoding
and a fast prediction path for small batches.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
import zlib
from abc import abstractmethod
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from scikeras.wrappers import KerasClassifier
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Tags
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils._tags import ClassifierTags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d

from ._utils import (
    check_elements,
    check_labels,
    check_pixels,
    resolve_precision,
    resolve_seed,
    seeded,
)
from .exceptions import DataFormatError, DataNotFoundError, EmnistEstimatorsError
from .threads import configure_threads

# scikeras imported TensorFlow above; size its thread pools to the cores this
# process is given before its runtime starts (see threads.py for why).
configure_threads()

__all__ = ["EmnistMLP", "EmnistCNN", "load_model"]

#: Format version of files written by ``save``; bump on incompatible changes.
SAVE_FORMAT = 1
_STATE_ENTRY = "emnist_estimators.json"


class _EmnistClassifier(KerasClassifier):
    """Shared fit/predict machinery; subclasses only build their Keras model."""

    # scikeras reads these attributes; they are fixed for our estimators, so
    # they live on the class and are not hyper-parameters (get_params ignores
    # them, as scikit-learn's estimator checks require).
    model = None
    build_fn = None
    warm_start = False
    optimizer = "adam"
    loss = "sparse_categorical_crossentropy"
    metrics = None
    validation_batch_size = None
    validation_split = 0.0
    shuffle = True
    run_eagerly = False
    class_weight = None

    #: Batches up to this size are predicted with one direct call
    #: (``predict_on_batch``), skipping ``Model.predict``'s per-call set-up.
    _direct_predict_max = 4096

    _common_constraints: dict = {
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 0, None, closed="left")],
        "rescale": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "precision": [StrOptions({"auto", "float32", "mixed_bfloat16"})],
        "lr_schedule": [StrOptions({"constant", "cosine"})],
        "callbacks": [list, None],
        "random_state": ["random_state"],
        "verbose": [Interval(Integral, 0, 2, closed="both")],
    }

    #: What each element of a sequence parameter (layer widths, filters) must
    #: be; scikit-learn's constraints above check only that it is a sequence.
    _element_constraints: dict = {}

    def _validate_params(self) -> None:
        """scikit-learn's parameter validation, then the sequences' elements.

        Every fit and ``load_model`` call this before a network is built, so
        ``hidden_layer_sizes=(0,)`` is refused with scikit-learn's wording
        instead of failing inside Keras (``MLPClassifier`` checks its
        ``hidden_layer_sizes > 0`` in fit the same way).
        """
        super()._validate_params()
        check_elements(self, self._element_constraints)

    # --- scikit-learn plumbing (scikeras' versions predate scikit-learn 1.6) --
    _get_param_names = classmethod(BaseEstimator._get_param_names.__func__)
    __repr__ = BaseEstimator.__repr__
    set_params = BaseEstimator.set_params

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of ``predict(X)`` against ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or (n_samples, h, w[, 1])
            Grey pixels, scaled like the training data.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Accuracy in [0, 1].
        """
        return ClassifierMixin.score(self, X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self) -> Tags:
        tags = BaseEstimator.__sklearn_tags__(self)
        # scikeras puts BaseEstimator before ClassifierMixin in the MRO, so
        # ClassifierMixin's tags never run: is_classifier() would be False and
        # GridSearchCV(cv=5) would use KFold instead of StratifiedKFold.
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        tags.input_tags.positive_only = True  # grey levels
        # a few epochs on a few dozen samples is not a converged network
        tags.classifier_tags.poor_score = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6 reads this
        return {"requires_positive_X": True, "poor_score": True}

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    # --- building ----------------------------------------------------------
    @abstractmethod
    def _build_model(self, n_features, n_classes, image_shape, rescale, seed):
        """Return an uncompiled keras.Model for these inputs."""

    def _dtype_policy(self) -> str | None:
        policy = getattr(self, "dtype_policy_", "float32")
        return None if policy == "float32" else policy

    def _compile(self, model, decay_steps: int | None = None) -> None:
        import keras

        learning_rate = self.learning_rate
        if self.lr_schedule == "cosine" and decay_steps:
            # decays to 1% of the initial rate over the planned epochs
            learning_rate = keras.optimizers.schedules.CosineDecay(
                self.learning_rate, decay_steps=decay_steps, alpha=0.01
            )
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )

    def _input_scale(self, X) -> float:
        if self.rescale != "auto":
            return float(self.rescale)
        if X.dtype == np.uint8 or (X.size and float(X.max()) > 1.0):
            return 1.0 / 255.0
        return 1.0

    # --- fitting -----------------------------------------------------------
    def _encode_targets(self, y, n_samples: int, classes=None) -> np.ndarray:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim != 1:
            raise ValueError(
                f"y must be 1-D (one label per sample), got shape {y.shape}. "
                "Multi-output and one-hot targets are not supported: pass class "
                "labels, e.g. y.argmax(axis=1) for one-hot."
            )
        if len(y) != n_samples:
            raise ValueError(
                f"X has {n_samples} samples but y has {len(y)}; they must match."
            )
        check_labels(y)  # None/NaN labels: a clear error, not sorting's TypeError
        check_classification_targets(y)
        if classes is None:
            encoder = LabelEncoder().fit(y)
            if len(encoder.classes_) < 2:
                raise ValueError(
                    f"y contains only one class ({encoder.classes_[0]!r}); a "
                    "classifier needs samples of at least two classes."
                )
            self.classes_ = encoder.classes_
        unseen = np.setdiff1d(y, self.classes_)
        if unseen.size:
            raise ValueError(
                f"y contains labels {unseen[:10].tolist()} that are not among the "
                f"classes {self.classes_[:10].tolist()}... given at the first fit. "
                "Pass every class with partial_fit(classes=...) or refit."
            )
        return np.searchsorted(self.classes_, y).astype(np.int32)

    @staticmethod
    def _check_weights(sample_weight, X) -> np.ndarray | None:
        if sample_weight is None:
            return None
        # As scikit-learn's estimators: a negative weight would make the loss
        # reward mistakes on that sample (the loss goes negative).
        return _check_sample_weight(
            sample_weight, X, dtype=np.float32, ensure_non_negative=True
        )

    def _split_validation(self, X, y, w, seed):
        n_val = int(round(self.validation_fraction * len(y)))
        if n_val < 1 or len(y) - n_val < 1:
            return X, y, w, None
        idx = np.arange(len(y))
        try:
            train, val = train_test_split(
                idx, test_size=n_val, stratify=y, random_state=seed
            )
        except ValueError:  # some class too small to stratify
            train, val = train_test_split(idx, test_size=n_val, random_state=seed)
        train, val = np.sort(train), np.sort(val)
        w_val = None if w is None else w[val]
        val_data = (X[val], y[val]) if w is None else (X[val], y[val], w_val)
        return X[train], y[train], (None if w is None else w[train]), val_data

    def _callbacks(self, extra, has_validation: bool):
        import keras

        callbacks = list(self.callbacks or []) + list(extra or [])
        if self.early_stopping:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss" if has_validation else "loss",
                    patience=self.patience,
                    restore_best_weights=True,
                )
            )
        return callbacks

    def fit(self, X, y, sample_weight=None, *, callbacks=None):
        """Build a new network and train it on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or (n_samples, h, w[, 1])
            Grey pixels: uint8 0..255 (kept uint8, scaled inside the model) or
            floats in [0, 255] or [0, 1].
        y : array-like of shape (n_samples,)
            Class labels: ints, strings or characters, all of one type and
            none missing (None/NaN).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights of the loss, non-negative (0 ignores a sample).
        callbacks : list of keras.callbacks.Callback, default=None
            Extra callbacks for this fit only (e.g. a pruning callback).

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self._validate_params()
        X, image_shape = check_pixels(self, X, reset=True)
        y_enc = self._encode_targets(y, X.shape[0])
        w = self._check_weights(sample_weight, X)
        seed = resolve_seed(self.random_state)
        self.input_scale_ = self._input_scale(X)
        self.dtype_policy_ = resolve_precision(self.precision) or "float32"
        with seeded(seed):
            model = self._build_model(
                X.shape[1], len(self.classes_), image_shape, self.input_scale_, seed
            )
            X_tr, y_tr, w_tr, val = self._split_validation(X, y_enc, w, seed)
            steps = self.epochs * -(-len(y_tr) // self.batch_size)
            self._compile(model, decay_steps=steps)
            # Usable (predict, score) while it trains, so callbacks such as the
            # tuning module's pruning callback can score it after each epoch.
            self.model_ = model
            try:
                history = model.fit(
                    X_tr,
                    y_tr,
                    sample_weight=w_tr,
                    validation_data=val,
                    batch_size=self.batch_size,
                    epochs=self.epochs,
                    verbose=self.verbose,
                    callbacks=self._callbacks(callbacks, val is not None),
                    shuffle=True,
                )
            except BaseException:
                del self.model_
                raise
        self.history_ = {
            k: [float(v) for v in vals] for k, vals in history.history.items()
        }
        self.n_iter_ = len(self.history_.get("loss", []))
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch on ``(X, y)``, keeping the current weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or (n_samples, h, w[, 1])
            Grey pixels.
        y : array-like of shape (n_samples,)
            Class labels.
        classes : array-like of shape (n_classes,), default=None
            Every class, required on the first call unless ``y`` has them all.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights of the loss, non-negative.

        Returns
        -------
        self : object
            The estimator.
        """
        first = not hasattr(self, "model_")
        if first:
            self._validate_params()
        X, image_shape = check_pixels(self, X, reset=first)
        w = self._check_weights(sample_weight, X)  # before building a network
        if first:
            if classes is not None:
                self.classes_ = np.unique(np.asarray(classes))
            y_enc = self._encode_targets(y, X.shape[0], classes=classes)
            self.input_scale_ = self._input_scale(X)
            self.dtype_policy_ = resolve_precision(self.precision) or "float32"
            seed = resolve_seed(self.random_state)
            with seeded(seed):
                self.model_ = self._build_model(
                    X.shape[1], len(self.classes_), image_shape, self.input_scale_, seed
                )
                self._compile(self.model_)
            self.history_, self.n_iter_ = {}, 0
        else:
            self._check_scale(X)
            y_enc = self._encode_targets(y, X.shape[0], classes=self.classes_)
        history = self.model_.fit(
            X,
            y_enc,
            sample_weight=w,
            batch_size=self.batch_size,
            epochs=1,
            verbose=self.verbose,
            shuffle=True,
        )
        for key, vals in history.history.items():
            self.history_.setdefault(key, []).extend(float(v) for v in vals)
        self.n_iter_ += 1
        return self

    # --- prediction --------------------------------------------------------
    def _check_scale(self, X) -> None:
        """Refuse X scaled unlike the training X (auto ``rescale`` only).

        The network divides by 255 inside when the training X was raw pixels
        (uint8, or values above 1) and not otherwise, so X scaled the other
        way gives silently wrong predictions. Raw pixels then must have a
        value above 1 or be uint8; an all-zero batch fits both and passes.
        """
        if self.rescale != "auto" or not X.size:
            return
        name = type(self).__name__
        if self.input_scale_ == 1.0:
            hi = float(X.max())
            if hi > 1.0:
                raise DataFormatError(
                    f"This {name} was fitted on pixels scaled to [0, 1], but X has "
                    f"values up to {hi:g}. Scale X the same way (e.g. keep the "
                    "PixelScaler in front of it in a Pipeline)."
                )
        elif X.dtype != np.uint8:
            hi = float(X.max())
            if 0.0 < hi <= 1.0:
                raise DataFormatError(
                    f"This {name} was fitted on raw pixels 0..255, but X holds "
                    f"{X.dtype} values no larger than {hi:g}: it looks scaled to "
                    "[0, 1] (e.g. X / 255), and the network would scale it again. "
                    "Pass raw pixels as at fit (e.g. X * 255), or refit on scaled "
                    "pixels. Raw pixels of near-black images pass as uint8."
                )

    def _forward(self, X) -> np.ndarray:
        if len(X) <= self._direct_predict_max:
            out = self.model_.predict_on_batch(X)
        else:
            out = self.model_.predict(
                X, batch_size=max(self.batch_size, 1024), verbose=0
            )
        proba = np.asarray(out, dtype=np.float64)
        proba /= proba.sum(axis=1, keepdims=True)
        return proba

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or (n_samples, h, w[, 1])
            Grey pixels, scaled like the training data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``.
        """
        check_is_fitted(self)
        X, _ = check_pixels(self, X, reset=False)
        self._check_scale(X)
        return self._forward(X)

    def predict(self, X):
        """Most likely class of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or (n_samples, h, w[, 1])
            Grey pixels, scaled like the training data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)  # checks fitted-ness first
        return self.classes_[proba.argmax(axis=1)]

    # --- persistence -------------------------------------------------------
    def save(self, path) -> None:
        """Save the fitted estimator as a ``.keras`` file.

        The file is a regular Keras archive (``keras.saving.load_model`` opens
        the network alone) with one more entry holding the estimator's
        parameters and fitted state. Written to a temporary file, then renamed.

        Parameters
        ----------
        path : str or path-like
            Destination, conventionally ending in ``.keras``.
        """
        check_is_fitted(self)
        from . import __version__

        path = Path(path)
        params = {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in self.get_params().items()
            if k not in ("callbacks", "random_state")
        }
        state = {
            "format": SAVE_FORMAT,
            "package_version": __version__,
            "class": type(self).__name__,
            "params": params,
            "random_state": self.random_state
            if isinstance(self.random_state, (int, type(None)))
            else None,
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
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.keras")
        try:
            self.model_.save(tmp)
            with zipfile.ZipFile(tmp, "a") as zf:
                zf.writestr(_STATE_ENTRY, json.dumps(state))
                _check_loadable(zf, tmp)  # never write a file load_model refuses
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path):
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
        est = load_model(path)
        if not isinstance(est, cls):
            raise EmnistEstimatorsError(
                f"{path} holds a {type(est).__name__}, not a {cls.__name__}."
            )
        return est


def load_model(path):
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
    if not isinstance(name, str) or name not in _CLASSES:
        raise _corrupt(path, f"unknown estimator class {name!r}")
    return state


def _estimator_from_state(state: dict, path):
    cls = _CLASSES[state["class"]]
    params, seed = state.get("params"), state.get("random_state")
    allowed = set(cls._get_param_names()) - {"callbacks", "random_state"}
    if not isinstance(params, dict) or not set(params) <= allowed:
        raise _corrupt(path, f"its parameters are not those of {cls.__name__}")
    if seed is not None and not _is_int(seed):
        raise _corrupt(path, f"random_state {seed!r} is not an int or null")
    params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()}
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
    if policy not in ("float32", "mixed_bfloat16"):
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


_DOC_COMMON = """
    learning_rate : float, default=1e-3
        Adam's (initial) step size.
    lr_schedule : {'constant', 'cosine'}, default='cosine'
        'cosine' decays the learning rate to 1% of its initial value over the
        ``epochs`` of a fit (cosine decay, per batch); 'constant' keeps it.
    batch_size : int, default=256
        Samples per gradient step.
    epochs : int, default={epochs}
        Passes over the training data (fewer with early stopping).
    validation_fraction : float, default=0.1
        Share of the training data held out (stratified) to report validation
        loss/accuracy each epoch and for early stopping. 0 disables it.
    early_stopping : bool, default=False
        Stop when the validation loss (training loss without a validation
        set) has not improved for ``patience`` epochs, and restore the best
        weights.
    patience : int, default=3
        Epochs without improvement before early stopping.
    rescale : 'auto' or float, default='auto'
        Factor applied to inputs inside the model. 'auto': 1/255 when the
        training X is uint8 or has values above 1 (raw pixels), else 1 (X
        already scaled, e.g. by PixelScaler). Then predict refuses X scaled
        the other way: float X no larger than 1 after raw training, values
        above 1 after scaled training (an all-zero X fits both and passes).
    precision : {'auto', 'float32', 'mixed_bfloat16'}, default='auto'
        Arithmetic of the hidden layers (weights and the softmax stay
        float32). 'auto': mixed bfloat16 on a CPU-only machine whose processor
        has native bfloat16 (AVX512-BF16 or AMX; about 1.9x faster CNN
        training), float32 elsewhere.
    callbacks : list of keras.callbacks.Callback, default=None
        Extra Keras callbacks for every fit.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, dropout, shuffling and the validation
        split, for this fit only. With an int, fits on CPU are reproducible.
    verbose : {0, 1, 2}, default=0
        Keras' progress output while training.
"""

_DOC_ATTRIBUTES = """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, as given in ``y``.
    n_features_in_ : int
        Number of pixels per sample seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when fitted on a DataFrame with string column names.
    model_ : keras.Model
        The trained network.
    history_ : dict of list of float
        Per-epoch ``loss``, ``accuracy`` and, with a validation set,
        ``val_loss`` and ``val_accuracy``.
    n_iter_ : int
        Epochs run.
    input_scale_ : float
        Factor applied to inputs inside the model.
    dtype_policy_ : str
        The Keras dtype policy the network was built with.
"""


#: Keras activations (``keras.activations.get`` names) offered for EmnistMLP's
#: hidden layers, as scikit-learn's MLPClassifier offers relu, tanh, logistic
#: and identity (Keras calls the last two "sigmoid" and "linear").
_ACTIVATIONS = {
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "tanh",
    "sigmoid",
    "softplus",
    "linear",
}

#: The other names Keras 3 accepts that work in a Dense layer: still accepted
#: (they worked before activation was constrained) but not offered in error
#: messages - rarely used, or (softmax, log_softmax, sparsemax) normalising
#: across units, which is meant for an output layer. Keras' "glu" and
#: "threshold" are left out: they fail in a Dense layer.
_OTHER_ACTIVATIONS = {
    "relu6",
    "celu",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "log_sigmoid",
    "sparse_sigmoid",
    "sparse_plus",
    "squareplus",
    "softsign",
    "exponential",
    "hard_shrink",
    "soft_shrink",
    "tanh_shrink",
    "softmax",
    "log_softmax",
    "sparsemax",
}


class EmnistMLP(_EmnistClassifier):
    __doc__ = (
        """Multi-layer perceptron classifier for 28x28 grey characters (Keras).

    Defaults: 784-1024-1024-n_classes, ReLU, dropout 0.4, Adam 1e-3 with a
    cosine-decayed learning rate, batch 256, 40 epochs, 10% held out. The
    original report's network is ``hidden_layer_sizes=(512, 512),
    dropout=0.2, epochs=10, lr_schedule="constant"``; the defaults add 1.7
    points on the EMNIST protocol (docs: Performance).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(1024, 1024)
        Width of each hidden layer.
    activation : str, default='relu'
        Keras activation of the hidden layers.
    dropout : float, default=0.4
        Dropout rate after each hidden layer."""
        + _DOC_COMMON.replace("{epochs}", "40")
        + _DOC_ATTRIBUTES
        + """
    See Also
    --------
    EmnistCNN : convolutional network, more accurate and slower.
    PixelScaler : validates and scales pixels in a Pipeline.

    Examples
    --------
    >>> import numpy as np
    >>> from emnist_estimators import EmnistMLP
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(200, 784), dtype=np.uint8)
    >>> y = np.where(X[:, :392].mean(axis=1) > X[:, 392:].mean(axis=1), "a", "b")
    >>> clf = EmnistMLP(hidden_layer_sizes=(32,), epochs=2, random_state=0)
    >>> clf.fit(X, y).predict(X[:3]).shape
    (3,)
    >>> clf.classes_
    array(['a', 'b'], dtype='<U1')
    """
    )

    _parameter_constraints: dict = {
        **_EmnistClassifier._common_constraints,
        "hidden_layer_sizes": [tuple, list],
        "activation": [
            StrOptions(_ACTIVATIONS),
            Hidden(StrOptions(_OTHER_ACTIVATIONS)),
        ],
    }
    _element_constraints: dict = {
        "hidden_layer_sizes": Interval(Integral, 1, None, closed="left"),
    }

    def __init__(
        self,
        hidden_layer_sizes=(1024, 1024),
        *,
        activation="relu",
        dropout=0.4,
        learning_rate=1e-3,
        batch_size=256,
        epochs=40,
        validation_fraction=0.1,
        early_stopping=False,
        patience=3,
        lr_schedule="cosine",
        rescale="auto",
        precision="auto",
        callbacks=None,
        random_state=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.lr_schedule = lr_schedule
        self.rescale = rescale
        self.precision = precision
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

    def _build_model(self, n_features, n_classes, image_shape, rescale, seed):
        from .architectures import build_mlp

        return build_mlp(
            n_features,
            n_classes,
            hidden_layer_sizes=self.hidden_layer_sizes,
            activation=self.activation,
            dropout=self.dropout,
            rescale=rescale,
            seed=seed,
            dtype_policy=self._dtype_policy(),
        )


class EmnistCNN(_EmnistClassifier):
    __doc__ = (
        """Convolutional network classifier for 28x28 grey characters (Keras).

    Defaults: the original report's network - two blocks of
    [2 x (Conv2D 3x3 'same' + LeakyReLU(0.3)), MaxPool 2x2, Dropout 0.25] with
    32 then 64 filters, two ReLU Dense layers (256, 128), softmax - trained
    with Adam 1e-3 and a cosine-decayed learning rate, batch 256, 20 epochs
    (the report: constant rate, 10 epochs), 10% held out. Flat input of 784
    pixels is reshaped to 28x28 inside the model; image-shaped input keeps its
    height and width.

    Parameters
    ----------
    filters : tuple of int, default=(32, 64)
        Filters of each convolutional block.
    convs_per_block : int, default=2
        Conv2D layers per block.
    dense_units : tuple of int, default=(256, 128)
        Widths of the Dense layers before the softmax.
    negative_slope : float, default=0.3
        Slope of the LeakyReLU activations.
    dropout : float, default=0.25
        Dropout after each block and each Dense layer.
    batch_norm : bool, default=False
        Batch normalisation after each convolution.
    augment : bool, default=False
        Light augmentation while training: shifts of up to 2 pixels and
        rotations of up to 10 degrees (no flips).
    image_shape : (int, int), default=None
        Height and width of flat input; default square (784 -> 28x28) or
        the shape of image-shaped X."""
        + _DOC_COMMON.replace("{epochs}", "20")
        + _DOC_ATTRIBUTES
        + """
    See Also
    --------
    EmnistMLP : faster, less accurate.
    PixelScaler : validates and scales pixels in a Pipeline.

    Examples
    --------
    >>> import numpy as np
    >>> from emnist_estimators import EmnistCNN
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(100, 28, 28), dtype=np.uint8)
    >>> y = np.arange(100) % 2
    >>> clf = EmnistCNN(filters=(4,), dense_units=(8,), epochs=1, random_state=0)
    >>> clf.fit(X, y).predict_proba(X[:2]).shape
    (2, 2)
    """
    )

    _parameter_constraints: dict = {
        **_EmnistClassifier._common_constraints,
        "filters": [tuple, list],
        "convs_per_block": [Interval(Integral, 1, None, closed="left")],
        "dense_units": [tuple, list],
        "negative_slope": [Interval(Real, 0, None, closed="left")],
        "batch_norm": ["boolean"],
        "augment": ["boolean"],
        "image_shape": [tuple, list, None],
    }
    _element_constraints: dict = {
        "filters": Interval(Integral, 1, None, closed="left"),
        "dense_units": Interval(Integral, 1, None, closed="left"),
    }

    def __init__(
        self,
        filters=(32, 64),
        *,
        convs_per_block=2,
        dense_units=(256, 128),
        negative_slope=0.3,
        dropout=0.25,
        batch_norm=False,
        augment=False,
        image_shape=None,
        learning_rate=1e-3,
        batch_size=256,
        epochs=20,
        validation_fraction=0.1,
        early_stopping=False,
        patience=3,
        lr_schedule="cosine",
        rescale="auto",
        precision="auto",
        callbacks=None,
        random_state=None,
        verbose=0,
    ):
        self.filters = filters
        self.convs_per_block = convs_per_block
        self.dense_units = dense_units
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.augment = augment
        self.image_shape = image_shape
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.lr_schedule = lr_schedule
        self.rescale = rescale
        self.precision = precision
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

    def _build_model(self, n_features, n_classes, image_shape, rescale, seed):
        from .architectures import build_cnn

        return build_cnn(
            n_features,
            n_classes,
            image_shape=self.image_shape or image_shape,
            filters=self.filters,
            convs_per_block=self.convs_per_block,
            dense_units=self.dense_units,
            negative_slope=self.negative_slope,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            augment=self.augment,
            rescale=rescale,
            seed=seed,
            dtype_policy=self._dtype_policy(),
        )


_CLASSES = {"EmnistMLP": EmnistMLP, "EmnistCNN": EmnistCNN}
