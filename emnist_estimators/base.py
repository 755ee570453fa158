"""The base class of ``EmnistMLP`` and ``EmnistCNN``: scikeras, made current.

:class:`_EmnistClassifier` subclasses scikeras'
:class:`~scikeras.wrappers.KerasClassifier`, so ``isinstance(est,
KerasClassifier)`` holds and scikeras users find the API they expect. scikeras
0.13 (its last release) predates scikit-learn 1.6, so this class owns the
scikit-learn contract itself. Exactly:

Taken from scikeras' ``KerasClassifier`` (inherited unchanged)
    - the class identity (``isinstance``) and ``initialized_`` (True once a
      network exists);
    - ``scorer`` (accuracy, what :meth:`score` computes);
    - the import of scikeras, which registers ``__reduce__`` on Keras models
      so that ``model_`` pickles with the estimator.

Overridden, and why
    - ``__init__``: each estimator lists its hyper-parameters explicitly and
      only stores them (scikit-learn's rule); scikeras' ``**kwargs`` routing
      and its ``model``/``build_fn`` arguments are not used - the network
      comes from :meth:`_build_model` (``architectures.py``).
    - ``_get_param_names``, ``__repr__``, ``set_params``: scikit-learn's
      ``BaseEstimator`` versions; scikeras' ones add routed ``fit__``/
      ``model__`` parameters that these estimators do not have.
    - Tags: :meth:`__sklearn_tags__`. scikeras lists ``BaseEstimator`` before
      ``ClassifierMixin``, so scikit-learn would not see a classifier
      (``GridSearchCV(cv=5)`` would not stratify); scikeras' ``_more_tags``
      is the pre-1.6 API, which scikit-learn >= 1.7 no longer reads.
    - Validation: scikit-learn's ``_parameter_constraints`` plus the elements
      of layer-size sequences, then pixels (``n_features_in_``, sparse, NaN,
      0..255) and labels, all before any network is built.
    - Seeding: ``random_state`` seeds one fit and is then restored
      (``_utils.seeded``); scikeras leaves TensorFlow's determinism flag and
      global seeds changed for the whole process.
    - Label encoding: ``classes_`` from scikit-learn's ``LabelEncoder``, any
      label type, one label per sample; scikeras' ``target_encoder`` and
      ``feature_encoder`` are not used, so reading them raises
      ``AttributeError`` instead of returning an encoder that does nothing.
    - ``fit``, ``partial_fit``, ``initialize``: one shared set-up
      (:meth:`_prepare`); ``initialize`` builds the network without training,
      as scikeras documents it.
    - ``predict``, ``predict_proba``: a fast path (``predict_on_batch``) for
      batches up to ``_direct_predict_max`` rows, and a refusal of pixels
      scaled unlike the training pixels.
    - ``score``: scikit-learn's ``ClassifierMixin.score`` (accuracy, with
      ``sample_weight``).
    - ``current_epoch``: ``n_iter_`` (scikeras reads ``history_["loss"]``,
      absent after ``initialize``).
    - Pickling: ``__reduce_ex__`` sizes TensorFlow's thread pools
      (:mod:`~emnist_estimators.threads`) before the network is unpickled;
      ``__getstate__`` serializes the network (scikeras' format) with
      numpy's copy-keyword warning from Keras' code silenced.
    - Logging: TensorFlow's "triggered tf.function retracing" warning is
      dropped while these estimators train and predict (see
      :func:`_expected_retracing`).
    - ``save``/``load``: :mod:`~emnist_estimators.persistence`.

Same names as scikeras', own meaning: ``warm_start`` (scikit-learn's: a new
optimizer and schedule on the kept weights, classes checked) and
``class_weight`` (scikit-learn's "balanced" formula, dicts keyed by the
original labels, multiplied into ``sample_weight``).

Not set, although scikeras' class reads them in code these estimators never
run: ``model``, ``build_fn``, ``optimizer``, ``loss``, ``metrics``,
``validation_batch_size``, ``validation_split``, ``shuffle`` and
``run_eagerly``. The optimizer is Adam with ``learning_rate`` and
``lr_schedule``, the loss sparse categorical cross-entropy, the hold-out set
set by ``validation_fraction``; training batches are gathered by index and
shuffled every epoch by :mod:`~emnist_estimators.batches`.
"""

from __future__ import annotations

import logging
import os
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
from numpy.typing import ArrayLike
from scikeras.wrappers import KerasClassifier
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import ClassifierTags, Tags

# Interval and StrOptions have no public import in scikit-learn; they are what
# its own estimators' _parameter_constraints use.
from sklearn.utils._param_validation import Interval, StrOptions
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
from .distribute import global_batch_size
from .exceptions import DataFormatError, EmnistEstimatorsError
from .persistence import load_model, pack_network, save_estimator, variables_as_numpy
from .threads import configure_at_first_use

__all__ = ["_EmnistClassifier"]


def _unpickle(cls, fitted=True):
    """Make an empty ``cls`` for pickle, after sizing TensorFlow's pools.

    Also registers the network's custom Keras layers (``architectures``) and
    its loss (``losses``).

    Pickle calls this before it unpickles the state, whose Keras network
    (``model_``, when ``fitted``) starts TensorFlow's runtime; the pools can
    only be sized before that. Pickles hold this function's name: keep it.
    """
    if fitted:
        configure_at_first_use()
        # The network's custom layers and loss must be registered with Keras
        # before it is deserialized; a fresh process may not have imported
        # them yet.
        from . import architectures, losses  # noqa: F401
    return cls.__new__(cls)


class _RetracingFilter(logging.Filter):
    """Drop TensorFlow's "triggered tf.function retracing" log warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


@contextmanager
def _expected_retracing() -> Iterator[None]:
    """Hide TensorFlow's retracing warning for the block: retracing is expected.

    Each fit builds a new network, and Keras keeps one ``tf.function`` per
    network and step (train, test, predict), traced at its first call and
    kept for the network's life. TensorFlow counts traces per Python
    function, not per network, so five new networks within its last ten
    calls (cross-validation, a search, tiny fits) make it warn about
    "creating @tf.function repeatedly in a loop" - which is what a new
    network per fit is. Only that message of the ``tensorflow`` logger is
    dropped, only during the block; a filter on the logger, not a level, so
    every other TensorFlow warning still shows.
    """
    logger = logging.getLogger("tensorflow")
    retracing = _RetracingFilter()
    logger.addFilter(retracing)
    try:
        yield
    finally:
        logger.removeFilter(retracing)


def _snapshot(model) -> list:
    """The network's variables (weights, generator states), as numpy arrays."""
    return variables_as_numpy(model.variables)


def _restore(model, snapshot: list) -> None:
    for variable, value in zip(model.variables, snapshot, strict=True):
        variable.assign(value)


def _digest(snapshot: list) -> str:
    """A digest of a network's variables: where a warm-started fit starts."""
    import hashlib

    digest = hashlib.sha256()
    for value in snapshot:
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def _seed_or_fresh(seed: int | None) -> int:
    """``seed``, or a fresh one when None: an order must come from some seed."""
    if seed is not None:
        return seed
    return int(np.random.SeedSequence().generate_state(1)[0] >> 1)


def _scope(strategy):
    """``strategy.scope()``, or nothing for None."""
    return nullcontext() if strategy is None else strategy.scope()


def _in_strategy() -> bool:
    import tensorflow as tf

    return tf.distribute.has_strategy()


@dataclass
class _Run:
    """One fit's data, split, seed and resume point, handed to ``_train``."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray | None
    train: np.ndarray
    val: np.ndarray | None
    seed: int
    early: object = None
    store: object = None
    #: a warm fit's variables before training (None for a new network)
    before: list | None = None
    #: the tf.distribute strategy training runs under (None: one device)
    strategy: object = None
    epoch: int = 0
    history: dict = field(default_factory=dict)


class _EmnistClassifier(KerasClassifier):
    """Shared fit/predict machinery; subclasses only build their Keras model."""

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
        "precision": [
            StrOptions({"auto", "float32", "mixed_bfloat16", "mixed_float16"})
        ],
        "lr_schedule": [StrOptions({"constant", "cosine", "warmup_cosine"})],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "callbacks": [list, None],
        "random_state": ["random_state"],
        "verbose": [Interval(Integral, 0, 2, closed="both")],
        "warm_start": ["boolean"],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "checkpoint_dir": [str, os.PathLike, None],
        "distribution": [StrOptions({"mirrored", "multi_worker"}), None],
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

    def score(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> float:
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

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def __reduce_ex__(self, protocol):
        # The state (with model_) unpickles after _unpickle has run.
        _, _, *rest = super().__reduce_ex__(protocol)
        return (_unpickle, (type(self), hasattr(self, "model_")), *rest)

    def __getstate__(self) -> dict:
        # A copy: object.__getstate__ returns the instance's own __dict__.
        state = dict(super().__getstate__())
        if "model_" in state:
            # Serialized here, where numpy's copy-keyword warning from Keras'
            # saving code can be silenced; pickle would do it after we return.
            state["model_"] = pack_network(state["model_"])
        return state

    def __copy__(self) -> _EmnistClassifier:
        # copy.copy would take __getstate__'s packed network as model_: share
        # the network instead, as a shallow copy does.
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    # --- scikeras hooks these estimators do not use ---------------------------
    @property
    def target_encoder(self):
        """Not used: labels are encoded into ``classes_`` by ``fit``.

        Raises
        ------
        AttributeError
            Always; scikeras' encoder would have no effect here.
        """
        raise AttributeError(
            f"{type(self).__name__} encodes labels itself (see classes_); "
            "scikeras' target_encoder is not used."
        )

    @property
    def feature_encoder(self):
        """Not used: pixels are validated and passed to the network as given.

        Raises
        ------
        AttributeError
            Always; scikeras' encoder would have no effect here.
        """
        raise AttributeError(
            f"{type(self).__name__} validates pixels itself; scikeras' "
            "feature_encoder is not used."
        )

    @property
    def current_epoch(self) -> int:
        """Epochs trained so far (``n_iter_``; 0 before any training).

        Returns
        -------
        int
            The number of epochs run.
        """
        return getattr(self, "n_iter_", 0)

    # --- building ----------------------------------------------------------
    @abstractmethod
    def _build_model(self, n_features, n_classes, image_shape, rescale, seed):
        """Return an uncompiled keras.Model for these inputs."""

    def _dtype_policy(self) -> str | None:
        policy = getattr(self, "dtype_policy_", "float32")
        return None if policy == "float32" else policy

    #: Parameters that shape the network (its layers, precision, scaling):
    #: fixed once it is built, so a warm-started fit must not change them.
    _NETWORK_PARAMS = (
        "hidden_layer_sizes",
        "activation",
        "dropout",
        "block_dropout",
        "filters",
        "convs_per_block",
        "dense_units",
        "negative_slope",
        "batch_norm",
        "augment",
        "image_shape",
        "rescale",
        "precision",
    )

    def _network_params(self) -> dict:
        params = self.get_params(deep=False)
        return {
            k: (list(params[k]) if isinstance(params[k], tuple) else params[k])
            for k in self._NETWORK_PARAMS
            if k in params
        }

    def _new_network(self, X, image_shape, seed):
        """An uncompiled network for ``X`` (call inside ``seeded(seed)``)."""
        self._network_params_ = self._network_params()
        return self._build_model(
            X.shape[1], len(self.classes_), image_shape, self.input_scale_, seed
        )

    def _compile(self, model, decay_steps: int | None = None) -> None:
        import keras

        from .losses import training_loss

        learning_rate = self.learning_rate
        if self.lr_schedule == "cosine" and decay_steps:
            # decays to 1% of the initial rate over the planned epochs
            learning_rate = keras.optimizers.schedules.CosineDecay(
                self.learning_rate, decay_steps=decay_steps, alpha=0.01
            )
        elif self.lr_schedule == "warmup_cosine" and decay_steps:
            # rises linearly from 10% over the first 5% of the steps (Adam's
            # early moments are noisy), then decays as 'cosine'
            warmup = max(1, decay_steps // 20)
            learning_rate = keras.optimizers.schedules.CosineDecay(
                self.learning_rate / 10,
                decay_steps=max(1, decay_steps - warmup),
                alpha=0.01,
                warmup_target=self.learning_rate,
                warmup_steps=warmup,
            )
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        if getattr(self, "dtype_policy_", None) == "mixed_float16":
            # float16 gradients underflow without it. Keras wraps the
            # optimizer itself only when the whole model's policy is
            # mixed_float16; here only the hidden layers' policy is.
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(
            optimizer=optimizer,
            loss=training_loss(getattr(self, "label_smoothing", 0.0)),
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

    def _prepare(self, X, y, sample_weight=None, classes=None):
        """Set-up shared by fit, the first partial_fit and initialize.

        Sizes TensorFlow's thread pools (first use in the process), validates
        the parameters, pixels, labels and weights, and sets ``classes_``,
        ``n_features_in_``, ``input_scale_`` and ``dtype_policy_`` - all
        before a network is built.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y_enc : ndarray of int32
            Indices into ``classes_``.
        w : ndarray of float32 or None
            The sample weights.
        image_shape : (int, int) or None
            The shape of image-shaped X, None for flat X.
        seed : int or None
            The seed of this fit, from ``random_state``.
        """
        configure_at_first_use()
        self._validate_params()
        X, image_shape = check_pixels(self, X, reset=True)
        if classes is not None:
            self.classes_ = np.unique(np.asarray(classes))
        y_enc = self._encode_targets(y, X.shape[0], classes=classes)
        w = self._check_weights(sample_weight, X)
        self.input_scale_ = self._input_scale(X)
        self.dtype_policy_ = resolve_precision(self.precision) or "float32"
        seed = resolve_seed(self.random_state)
        return X, y_enc, w, image_shape, seed

    def _split_validation(self, y, seed):
        """Training and hold-out rows (indices, sorted), stratified if possible.

        Returns
        -------
        train : ndarray of int
        val : ndarray of int or None
            None without a hold-out set (``validation_fraction`` too small).
        """
        idx = np.arange(len(y))
        n_val = int(round(self.validation_fraction * len(y)))
        if n_val < 1 or len(y) - n_val < 1:
            return idx, None
        try:
            train, val = train_test_split(
                idx, test_size=n_val, stratify=y, random_state=seed
            )
        except ValueError:  # some class too small to stratify
            train, val = train_test_split(idx, test_size=n_val, random_state=seed)
        return np.sort(train), np.sort(val)

    def _early_stopping(self, has_validation: bool):
        if not self.early_stopping:
            return None
        from .checkpoints import ResumableEarlyStopping

        return ResumableEarlyStopping(
            monitor="val_loss" if has_validation else "loss",
            patience=self.patience,
            restore_best_weights=True,
        )

    def _class_weights(self, y_enc: np.ndarray) -> np.ndarray | None:
        """Per-sample weights from ``class_weight`` (None when it is None).

        "balanced" is scikit-learn's ``n_samples / (n_classes * count)`` over
        the classes present in ``y`` (in ``partial_fit``: in each call's
        ``y``); a dict maps original labels to weights, and classes it does
        not name weigh 1.
        """
        if self.class_weight is None:
            return None
        from sklearn.utils.class_weight import compute_class_weight

        if isinstance(self.class_weight, dict):
            known = set(self.classes_.tolist())
            unknown = [k for k in self.class_weight if k not in known]
            if unknown:
                raise ValueError(
                    f"class_weight names labels {unknown[:10]!r} that are not "
                    f"classes of y (classes: {self.classes_[:10].tolist()}...). "
                    "Key it by the labels as they appear in y."
                )
            for label, weight in self.class_weight.items():
                if (
                    not isinstance(weight, Real)
                    or isinstance(weight, bool)
                    or not 0 <= weight < np.inf
                ):
                    raise ValueError(
                        f"class_weight[{label!r}] is {weight!r}: class weights must "
                        "be finite numbers >= 0 (0 ignores the class)."
                    )
            per_class = np.array(
                [float(self.class_weight.get(c, 1.0)) for c in self.classes_.tolist()]
            )
        else:  # "balanced"
            present = np.unique(y_enc)
            per_class = np.ones(len(self.classes_))
            per_class[present] = compute_class_weight(
                "balanced", classes=present, y=y_enc
            )
        return per_class.astype(np.float32)[y_enc]

    @staticmethod
    def _combine_weights(w, class_w):
        # As scikit-learn's estimators: sample_weight times the class's weight.
        if class_w is None:
            return w
        return class_w if w is None else w * class_w

    def _prepare_warm(self, X, y, sample_weight):
        """Validate a warm-started fit's data against the fitted network."""
        configure_at_first_use()
        self._validate_params()
        built = getattr(self, "_network_params_", None)
        now = self._network_params()
        if built is not None and built != now:
            changed = ", ".join(
                f"{k}={built[k]!r} -> {now[k]!r}" for k in now if built[k] != now[k]
            )
            raise ValueError(
                f"warm_start keeps the network built by the previous fit, but its "
                f"shape changed: {changed}. Set warm_start=False to build a new "
                "network, or set the parameters back."
            )
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        new = np.unique(y) if y.ndim == 1 and len(y) else None
        if new is None or not np.array_equal(new, self.classes_):
            raise ValueError(
                "warm_start can only be used where y has the same classes as in "
                f"the previous fit; previously got {self.classes_[:10].tolist()}, "
                f"y has {None if new is None else new[:10].tolist()}. Use "
                "partial_fit(X, y) to train on a subset of the classes, or set "
                "warm_start=False to train a new network."
            )
        X, y_enc, w = self._check_more_data(X, y, sample_weight)
        return X, y_enc, w, resolve_seed(self.random_state)

    def _check_more_data(self, X, y, sample_weight):
        """Validate data for the fitted network: its pixels, scale and classes.

        Returns
        -------
        X, y_enc, w
            The validated pixels, labels as indices into ``classes_``, weights.
        """
        X, _ = check_pixels(self, X, reset=False)  # refuses another n_features
        w = self._check_weights(sample_weight, X)
        self._check_scale(X)
        y_enc = self._encode_targets(y, X.shape[0], classes=self.classes_)
        return X, y_enc, w

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        callbacks: list | None = None,
    ) -> _EmnistClassifier:
        """Build a new network and train it on ``(X, y)``.

        With ``warm_start=True`` and a fitted network, train that network
        further instead (a new optimizer and learning-rate schedule, as
        scikit-learn's ``MLPClassifier`` does). With ``checkpoint_dir``, save
        the state after each epoch and resume from a checkpoint found there.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or (n_samples, h, w[, 1])
            Grey pixels: uint8 0..255 (kept uint8, scaled inside the model) or
            floats in [0, 255] or [0, 1]. A ``numpy.memmap`` is read one batch
            at a time, never copied whole.
        y : array-like of shape (n_samples,)
            Class labels: ints, strings or characters, all of one type and
            none missing (None/NaN).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights of the loss, non-negative (0 ignores a sample);
            multiplied by the ``class_weight`` of each sample's class.
        callbacks : list of keras.callbacks.Callback, default=None
            Extra callbacks for this fit only (e.g. a pruning callback).

        Returns
        -------
        self : object
            Fitted estimator.
        """
        warm = bool(self.warm_start) and hasattr(self, "model_")
        # Before _prepare resets classes_: a refused or failed strategy leaves
        # a fitted estimator as it was. Thread pools first: making a strategy
        # starts TensorFlow.
        configure_at_first_use()
        self._validate_params()
        strategy = self._strategy(warm)
        image_shape = None
        if warm:
            X, y_enc, w, seed = self._prepare_warm(X, y, sample_weight)
        else:
            X, y_enc, w, image_shape, seed = self._prepare(X, y, sample_weight)
        w = self._combine_weights(w, self._class_weights(y_enc))
        # A warm fit's starting variables: restored if it is interrupted, and
        # what its checkpoint says it started from.
        before = _snapshot(self.model_) if warm else None
        store = saved = None
        if self.checkpoint_dir is not None:
            from .checkpoints import CheckpointStore

            start = _digest(before) if warm else None
            store = CheckpointStore(self.checkpoint_dir, self, X, y_enc, w, start)
            saved = store.read_state()
        # The shuffling and hold-out seed of this run: a resumed run's own.
        if saved is not None:
            run_seed = int(saved["seed"])
        else:
            run_seed = _seed_or_fresh(seed)
        with seeded(seed):
            with _scope(strategy):
                if warm:
                    model = self.model_
                else:
                    model = self._new_network(X, image_shape, seed)
                train, val = self._split_validation(y_enc, run_seed)
                batch = global_batch_size(self.batch_size, strategy)
                decay_steps = self.epochs * -(-len(train) // batch)
                self._compile(model, decay_steps=decay_steps)
            early = self._early_stopping(val is not None)
            run = _Run(X, y_enc, w, train, val, run_seed, early, store, before)
            run.strategy = strategy
            if saved is not None:
                run.epoch, run.history = store.restore(saved, model, early)
            finished = saved is not None and bool(saved.get("finished"))
            new = {} if finished else self._train(model, run, callbacks)
            if strategy is not None:
                model = self._single_device_copy(
                    model, X, image_shape, seed, decay_steps
                )
        self.model_ = model
        for key, vals in run.history.items():
            new[key] = list(vals) + new.get(key, [])
        if warm:
            for key, vals in new.items():
                self.history_.setdefault(key, []).extend(vals)
            self.n_iter_ += len(new.get("loss", []))
        else:
            self.history_ = new
            self.n_iter_ = len(new.get("loss", []))
        return self

    def _strategy(self, warm: bool):
        """The fit's tf.distribute strategy (None without ``distribution``)."""
        if self.distribution is None:
            return None
        name = type(self).__name__
        for refused, why in (
            (self.checkpoint_dir is not None, "checkpoint_dir"),
            (warm, "a warm-started fit (warm_start=True on a fitted network)"),
        ):
            if refused:
                raise ValueError(
                    f"{name}(distribution={self.distribution!r}) does not support "
                    f"{why}: set distribution=None for it, or leave it out."
                )
        if self.distribution == "multi_worker" and not isinstance(
            self.random_state, Integral
        ):
            raise ValueError(
                f"{name}(distribution='multi_worker') needs an int random_state, "
                "the same on every worker: each epoch's order and the hold-out "
                "split come from it, and every worker must take the same rows. "
                "Set e.g. random_state=0 in every worker's script."
            )
        from .distribute import make_strategy

        return make_strategy(self.distribution)

    def _single_device_copy(self, model, X, image_shape, seed, decay_steps):
        """``model``'s weights in a network outside any strategy.

        A network built under a strategy keeps mirrored variables: its
        ``predict_on_batch`` returns one output per replica, and TensorFlow
        allows only one multi-worker strategy per process. The fitted
        estimator holds an ordinary network instead.
        """
        copy = self._new_network(X, image_shape, seed)
        copy.set_weights(model.get_weights())
        self._compile(copy, decay_steps=decay_steps)
        # the optimizer's state too, as a network trained without a strategy
        # keeps it (and pickles and saves it)
        copy.optimizer.build(copy.trainable_variables)
        for mine, theirs in zip(
            copy.optimizer.variables, model.optimizer.variables, strict=True
        ):
            mine.assign(theirs)
        return copy

    def _train(self, model, run: _Run, callbacks) -> dict:
        """Run Keras' fit from ``run.epoch``; return the new epochs' history."""
        from .batches import IndexBatches

        batch_size = global_batch_size(self.batch_size, run.strategy)
        batches = IndexBatches(
            run.X,
            run.y,
            run.train,
            batch_size=batch_size,
            seed=run.seed,
            sample_weight=run.w,
            epoch=run.epoch,
        )
        val_batches = None
        if run.val is not None:
            val_batches = IndexBatches(
                run.X,
                run.y,
                run.val,
                batch_size=max(batch_size, 1024),
                seed=None,
                sample_weight=run.w,
            )
        every = list(self.callbacks or []) + list(callbacks or [])
        every.append(batches.epoch_callback())
        if run.early is not None:
            every.append(run.early)
        if run.store is not None:  # after early stopping: saves the best weights
            every.append(
                run.store.callback(
                    seed=run.seed, history=run.history, early_stopping=run.early
                )
            )
        # Usable (predict, score) while it trains, so callbacks such as the
        # tuning module's pruning callback can score it after each epoch.
        self.model_ = model
        try:
            with _expected_retracing(), _scope(run.strategy):
                if self.distribution == "multi_worker":
                    from .distribute import fit_multi_worker

                    return fit_multi_worker(
                        model,
                        run.strategy,
                        batches,
                        val_batches,
                        epochs=self.epochs,
                        initial_epoch=run.epoch,
                        callbacks=every,
                        verbose=self.verbose,
                    )
                fitted = model.fit(
                    batches.as_dataset(),
                    validation_data=(
                        None if val_batches is None else val_batches.as_dataset()
                    ),
                    epochs=self.epochs,
                    initial_epoch=run.epoch,
                    verbose=self.verbose,
                    callbacks=every,
                    # IndexBatches orders each epoch itself; Keras would shuffle
                    # the batches with Python's global random state, which a
                    # resumed fit cannot restore.
                    shuffle=False,
                )
        except BaseException:
            if run.before is not None:
                # an interrupted warm fit gives the network back as it was, to
                # match the unchanged history_ and n_iter_
                _restore(model, run.before)
            else:
                del self.model_
            raise
        return {k: [float(v) for v in vals] for k, vals in fitted.history.items()}

    def _initialize(self, X, y, sample_weight=None, classes=None):
        """Validate, then build and compile an untrained network.

        Returns
        -------
        X, y_enc, w
            The validated pixels, encoded labels and weights.
        """
        X, y_enc, w, image_shape, seed = self._prepare(X, y, sample_weight, classes)
        with seeded(seed):
            self.model_ = self._new_network(X, image_shape, seed)
            self._compile(self.model_)
        self.history_, self.n_iter_ = {}, 0
        return X, y_enc, w

    def initialize(
        self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None
    ) -> _EmnistClassifier:
        """Build the network for ``(X, y)`` without training it.

        What the first :meth:`partial_fit` does before its epoch: validate the
        data, set ``classes_``, build and compile a network with fresh
        weights. Then ``partial_fit`` trains it, or ``model_`` can be given
        pre-trained weights (``est.model_.load_weights(...)``) to predict.
        :meth:`fit` does this itself.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or (n_samples, h, w[, 1])
            Grey pixels, as for :meth:`fit`; they set ``n_features_in_`` and
            the input scaling.
        y : array-like of shape (n_samples,)
            Class labels.
        classes : array-like of shape (n_classes,), default=None
            Every class, if ``y`` does not hold them all.

        Returns
        -------
        self : object
            The estimator, with an untrained ``model_`` (``n_iter_`` is 0).
        """
        self._initialize(X, y, classes=classes)
        return self

    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        classes: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> _EmnistClassifier:
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
        if self.distribution is not None:
            raise ValueError(
                f"partial_fit trains on one device; {type(self).__name__}"
                f"(distribution={self.distribution!r}) trains with fit only. Set "
                "distribution=None to use partial_fit."
            )
        if not hasattr(self, "model_"):
            X, y_enc, w = self._initialize(X, y, sample_weight, classes)
        else:
            X, y_enc, w = self._check_more_data(X, y, sample_weight)
        w = self._combine_weights(w, self._class_weights(y_enc))
        from .batches import IndexBatches

        # This call's order: from random_state and the epoch count, so that
        # partial_fit calls with an int random_state repeat exactly.
        seed = _seed_or_fresh(resolve_seed(self.random_state))
        batches = IndexBatches(
            X,
            y_enc,
            np.arange(len(y_enc)),
            batch_size=self.batch_size,
            seed=seed,
            sample_weight=w,
            epoch=self.n_iter_,
        )
        with _expected_retracing():
            history = self.model_.fit(
                batches.as_dataset(), epochs=1, verbose=self.verbose, shuffle=False
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
        # Keras keeps model_'s predict function: traced at this network's
        # first call (again once, shape-relaxed, for a new batch size).
        with _expected_retracing():
            # a network training under a strategy (a callback scoring it)
            # answers predict_on_batch once per replica: use predict
            if len(X) <= self._direct_predict_max and not _in_strategy():
                out = self.model_.predict_on_batch(X)
            else:
                out = self.model_.predict(
                    X, batch_size=max(self.batch_size, 1024), verbose=0
                )
        proba = np.asarray(out, dtype=np.float64)
        proba /= proba.sum(axis=1, keepdims=True)
        return proba

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
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
        configure_at_first_use()  # e.g. model_ set by hand, not by fit or load
        X, _ = check_pixels(self, X, reset=False)
        self._check_scale(X)
        return self._forward(X)

    def predict(self, X: ArrayLike) -> np.ndarray:
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
    def save(self, path: str | os.PathLike) -> None:
        """Save the fitted estimator as a ``.keras`` file.

        The file is a regular Keras archive (``keras.saving.load_model`` opens
        the network alone) with one more entry holding the estimator's
        parameters and fitted state. Written to a temporary file, then renamed.

        Parameters
        ----------
        path : str or path-like
            Destination, conventionally ending in ``.keras``.
        """
        save_estimator(self, path)

    def export(
        self,
        path: str | os.PathLike,
        format: str = "onnx",
        *,
        overwrite: bool = False,
        input_shape: str = "flat",
        check_X: ArrayLike | None = None,
        class_names=None,
    ) -> os.PathLike:
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
        from .export import export_model

        return export_model(
            self,
            path,
            format=format,
            overwrite=overwrite,
            input_shape=input_shape,
            check_X=check_X,
            class_names=class_names,
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> _EmnistClassifier:
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
