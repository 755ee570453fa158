"""``EmnistMLP`` and ``EmnistCNN``: Keras models with the scikit-learn contract.

Both subclass scikeras' :class:`~scikeras.wrappers.KerasClassifier`, so they
are what scikeras users expect, but own the parts that scikeras 0.13 gets
wrong on current scikit-learn (see DESIGN.md): the tags API and classifier
type, input validation (``n_features_in_``, sparse, NaN, pixel range) before
any training, seeding that does not leak process-wide state, label encoding
and a fast prediction path for small batches.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from abc import abstractmethod
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from scikeras.wrappers import KerasClassifier
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Tags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._tags import ClassifierTags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d

from ._utils import check_pixels, resolve_precision, resolve_seed, seeded
from .exceptions import EmnistEstimatorsError
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
            Class labels: ints, strings or characters.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights of the loss.
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
        w = None
        if sample_weight is not None:
            w = _check_sample_weight(sample_weight, X, dtype=np.float32)
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
        self.history_ = {k: [float(v) for v in vals] for k, vals in history.history.items()}
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
            Per-sample weights.

        Returns
        -------
        self : object
            The estimator.
        """
        first = not hasattr(self, "model_")
        if first:
            self._validate_params()
        X, image_shape = check_pixels(self, X, reset=first)
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
        w = None
        if sample_weight is not None:
            w = _check_sample_weight(sample_weight, X, dtype=np.float32)
        history = self.model_.fit(
            X, y_enc, sample_weight=w, batch_size=self.batch_size, epochs=1,
            verbose=self.verbose, shuffle=True,
        )
        for key, vals in history.history.items():
            self.history_.setdefault(key, []).extend(float(v) for v in vals)
        self.n_iter_ += 1
        return self

    # --- prediction --------------------------------------------------------
    def _check_scale(self, X) -> None:
        if (
            self.rescale == "auto"
            and self.input_scale_ == 1.0
            and X.size
            and float(X.max()) > 1.0
        ):
            raise ValueError(
                f"This {type(self).__name__} was fitted on pixels scaled to [0, 1], "
                f"but X has values up to {float(X.max()):g}. Scale X the same way "
                "(e.g. keep the PixelScaler in front of it in a Pipeline)."
            )

    def _forward(self, X) -> np.ndarray:
        if len(X) <= self._direct_predict_max:
            out = self.model_.predict_on_batch(X)
        else:
            out = self.model_.predict(X, batch_size=max(self.batch_size, 1024), verbose=0)
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
            "feature_names_in": getattr(self, "feature_names_in_", np.array([])).tolist(),
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

    Parameters
    ----------
    path : str or path-like
        A ``.keras`` file written by ``EmnistMLP.save`` / ``EmnistCNN.save``.

    Returns
    -------
    estimator : EmnistMLP or EmnistCNN

    Raises
    ------
    EmnistEstimatorsError
        The file is missing, not a Keras archive, not written by
        emnist-estimators, or written by an incompatible version.
    """
    import keras

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            if _STATE_ENTRY not in zf.namelist():
                raise EmnistEstimatorsError(
                    f"{path} is a zip/Keras file but was not written by "
                    "emnist-estimators (no estimator state inside). Load plain Keras "
                    "models with keras.saving.load_model."
                )
            state = json.loads(zf.read(_STATE_ENTRY))
    except (zipfile.BadZipFile, FileNotFoundError, IsADirectoryError) as exc:
        raise EmnistEstimatorsError(
            f"Cannot load {path}: not a saved emnist-estimators model ({exc})."
        ) from exc
    if state.get("format") != SAVE_FORMAT or state.get("class") not in _CLASSES:
        raise EmnistEstimatorsError(
            f"{path} was written by emnist-estimators "
            f"{state.get('package_version', '?')} in save format "
            f"{state.get('format')!r}; this version reads format {SAVE_FORMAT}. "
            "Re-save it with a matching version."
        )
    cls = _CLASSES[state["class"]]
    params = {
        k: (tuple(v) if isinstance(v, list) else v) for k, v in state["params"].items()
    }
    est = cls(**params, random_state=state["random_state"])
    with tempfile.TemporaryDirectory() as tmp:
        # Keras reads the archive by name; the extra entry is ignored.
        model_path = Path(tmp) / "model.keras"
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(model_path, "w") as dst:
            for item in src.infolist():
                if item.filename != _STATE_ENTRY:
                    dst.writestr(item, src.read(item.filename))
        try:
            est.model_ = keras.saving.load_model(model_path, safe_mode=True)
        except Exception as exc:  # Keras raises many types for bad archives
            raise EmnistEstimatorsError(
                f"Cannot load the Keras network in {path}: {exc}"
            ) from exc
    est.classes_ = np.array(state["classes"], dtype=np.dtype(state["classes_dtype"]))
    est.n_features_in_ = state["n_features_in"]
    if state["feature_names_in"]:
        est.feature_names_in_ = np.array(state["feature_names_in"], dtype=object)
    est.input_scale_ = state["input_scale"]
    est.dtype_policy_ = state.get("dtype_policy", "float32")
    est.history_ = state["history"]
    est.n_iter_ = state["n_iter"]
    return est


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
        already scaled, e.g. by PixelScaler).
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
        "activation": [str],
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
