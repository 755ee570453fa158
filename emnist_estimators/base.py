"""The base class of ``EmnistMLP`` and ``EmnistCNN``: validation, fit, predict.

``fit`` and ``partial_fit`` both call :meth:`BaseEmnistClassifier._fit`, which
validates the parameters and data once, builds or keeps the network, hands
the training run to :mod:`~emnist_estimators.training`, and sets the fitted
attributes when it succeeds; a fit that fails leaves them as they were. What
is taken from scikeras is :mod:`~emnist_estimators.scikeras_boundary`'s,
saving and exporting :mod:`~emnist_estimators.saved_state`'s.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from numbers import Integral, Real
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._utils import (
    PRECISIONS,
    check_elements,
    check_pixels,
    resolve_precision,
    resolve_seed,
    seeded,
)
from .checkpoints import CheckpointStore
from .exceptions import DataFormatError
from .inference import network_proba
from .labels import (
    class_sample_weights,
    combine_weights,
    encode_labels,
    same_classes,
    validate_sample_weight,
)
from .saved_state import SavedStateMixin
from .scikeras_boundary import ScikerasClassifier, unpickle_estimator
from .threads import configure_at_first_use
from .training import (
    TrainingRun,
    compile_network,
    early_stopping_for,
    expected_retracing,
    fit_network,
    global_batch,
    in_strategy,
    network_digest,
    network_scope,
    plan_run,
    restore_variables,
    single_device_copy,
    strategy_for,
    validation_rows,
    variables_snapshot,
)
from .twin import float32_twin

__all__ = ["BaseEmnistClassifier"]

#: What ``_validate_new`` returns: X (2-D), y encoded, the weights, image shape.
_NewData = tuple[np.ndarray, np.ndarray, "np.ndarray | None", "tuple[int, int] | None"]

#: Pickles written before scikeras_boundary existed name this function.
_unpickle = unpickle_estimator


def _seed_or_fresh(seed: int | None) -> int:
    """``seed``, or a fresh one when None: an order must come from some seed."""
    if seed is not None:
        return seed
    return int(np.random.SeedSequence().generate_state(1)[0] >> 1)


def _fitted_attributes(est: object) -> dict[str, Any]:
    """The fitted attributes of ``est`` (names ending in ``_``), as they are."""
    return {
        k: v for k, v in vars(est).items() if k.endswith("_") and not k.endswith("__")
    }


#: The parameter constraints both estimators share (scikit-learn's form).
COMMON_CONSTRAINTS: dict = {
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "epochs": [Interval(Integral, 1, None, closed="left")],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "early_stopping": ["boolean"],
    "patience": [Interval(Integral, 0, None, closed="left")],
    "rescale": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
    "precision": [StrOptions(set(PRECISIONS))],
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


#: Parameters that shape the network (its layers, precision, scaling):
#: fixed once it is built, so a fit that continues it must not change them.
NETWORK_PARAMS = (
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


def check_scale(est: BaseEmnistClassifier, X: np.ndarray) -> None:
    """Refuse X scaled unlike the training X (auto ``rescale`` only).

    The network divides by 255 inside when the training X was raw pixels
    (uint8, or values above 1) and not otherwise, so X scaled the other
    way gives silently wrong predictions. Raw pixels then must have a
    value above 1 or be uint8; an all-zero batch fits both and passes.

    Parameters
    ----------
    est : EmnistMLP or EmnistCNN
        The fitted estimator.
    X : ndarray
        The validated pixels.

    Raises
    ------
    DataFormatError
        If X is scaled unlike the training pixels.
    """
    if est.rescale != "auto" or not X.size:
        return
    name = type(est).__name__
    if est.input_scale_ == 1.0:
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


def _check_network_unchanged(est: BaseEmnistClassifier, how: str) -> None:
    """Refuse parameters that would reshape the fitted network."""
    built = getattr(est, "_network_params_", None)
    now = est._network_params()
    if built is not None and built != now:
        changed = ", ".join(
            f"{k}={built[k]!r} -> {now[k]!r}" for k in now if built[k] != now[k]
        )
        raise ValueError(
            f"{how} keeps the network built by the previous fit, but its "
            f"shape changed: {changed}. Set warm_start=False and call fit "
            "to build a new network, or set the parameters back."
        )


def _input_scale(rescale: float | str, X: np.ndarray) -> float:
    """What the network multiplies pixels by: 1/255 for raw pixels, else 1."""
    if rescale != "auto":
        return float(rescale)
    if X.dtype == np.uint8 or (X.size and float(X.max()) > 1.0):
        return 1.0 / 255.0
    return 1.0


class BaseEmnistClassifier(SavedStateMixin, ScikerasClassifier):
    """Shared fit/predict machinery; subclasses only build their Keras model."""

    #: Batches up to this size are predicted with one call of the network's
    #: traced function, skipping ``Model.predict``'s per-call set-up.
    _direct_predict_max = 4096

    _common_constraints: dict = COMMON_CONSTRAINTS

    #: What each element of a sequence parameter (layer widths, filters) must
    #: be; scikit-learn's constraints above check only that it is a sequence.
    _element_constraints: dict = {}

    _NETWORK_PARAMS = NETWORK_PARAMS

    def _validate_params(self) -> None:
        """scikit-learn's parameter validation, then the sequences' elements.

        Every fit and ``load_model`` call this before a network is built, so
        ``hidden_layer_sizes=(0,)`` is refused with scikit-learn's wording
        instead of failing inside Keras (``MLPClassifier`` checks its
        ``hidden_layer_sizes > 0`` in fit the same way).
        """
        super()._validate_params()
        check_elements(self, self._element_constraints)

    # --- building ----------------------------------------------------------
    @abstractmethod
    def _build_model(self, n_features, n_classes, image_shape, rescale, seed):
        """Return an uncompiled keras.Model for these inputs."""

    def _dtype_policy(self) -> str | None:
        """The hidden layers' Keras dtype policy; None for float32."""
        policy = getattr(self, "dtype_policy_", "float32")
        return None if policy == "float32" else policy

    def _network_params(self) -> dict:
        params = self.get_params(deep=False)
        return {
            k: (list(params[k]) if isinstance(params[k], tuple) else params[k])
            for k in self._NETWORK_PARAMS
            if k in params
        }

    def _new_network(self, n_features: int, image_shape, seed):
        """An uncompiled network for the fitted classes and scale (seeded)."""
        return self._build_model(
            n_features, len(self.classes_), image_shape, self.input_scale_, seed
        )

    def _compile(self, model, decay_steps: int | None = None) -> None:
        """Compile ``model`` for training (a hook: subclasses may add to it)."""
        compile_network(self, model, decay_steps=decay_steps)

    def _float32_network(self):
        """The fitted network as float32 and inference-only, same weights.

        What ``export`` converts; see :func:`~emnist_estimators.twin.float32_twin`.

        Returns
        -------
        keras.Model
            A new network holding ``model_``'s weights.
        """
        check_is_fitted(self)
        return float32_twin(self)

    # --- fitting -----------------------------------------------------------
    def _validate_new(self, X, y, sample_weight, classes) -> _NewData:
        """Validate data for a new network; set the state it is built from."""
        X, image_shape = check_pixels(self, X, reset=True)
        known = None if classes is None else np.unique(np.asarray(classes))
        self.classes_, y_enc = encode_labels(self, y, X.shape[0], known)
        w = validate_sample_weight(sample_weight, X)
        self.input_scale_ = _input_scale(self.rescale, X)
        self.dtype_policy_ = resolve_precision(self.precision) or "float32"
        return X, y_enc, w, image_shape

    def _validate_more(self, X, y, sample_weight, classes, incremental: bool):
        """Validate data for the fitted network: its pixels, scale and classes."""
        _check_network_unchanged(self, "partial_fit" if incremental else "warm_start")
        if incremental and classes is not None:
            same_classes(self, classes)
        if not incremental:
            same_classes(self, y, warm=True)
        X, _ = check_pixels(self, X, reset=False)  # refuses another n_features
        w = validate_sample_weight(sample_weight, X)
        self._check_scale(X)
        _, y_enc = encode_labels(self, y, X.shape[0], self.classes_)
        return X, y_enc, w

    def _fit(
        self,
        X,
        y,
        sample_weight=None,
        *,
        classes=None,
        incremental: bool,
        callbacks=None,
    ):
        """The one fit path of ``fit`` and ``partial_fit``.

        ``incremental`` (``partial_fit``): one epoch over all rows, on the
        fitted network if there is one. Otherwise (``fit``): ``epochs``
        epochs with a hold-out set, on a new network - or, with
        ``warm_start``, on the fitted one - checkpointed with
        ``checkpoint_dir``, under ``distribution``'s strategy.
        """
        configure_at_first_use()  # making a strategy starts TensorFlow
        self._validate_params()
        if incremental and self.distribution is not None:
            raise ValueError(
                f"partial_fit trains on one device; {type(self).__name__}"
                f"(distribution={self.distribution!r}) trains with fit only. Set "
                "distribution=None to use partial_fit."
            )
        before = _fitted_attributes(self)
        keep = "model_" in before and (incremental or bool(self.warm_start))
        warm_weights = variables_snapshot(self.model_) if keep else None
        try:
            return self._fit_and_set(
                X,
                y,
                sample_weight,
                classes,
                incremental,
                keep,
                warm_weights,
                callbacks,
            )
        except BaseException:
            # a refused or failed fit leaves the estimator as it was: its
            # fitted attributes, and a kept network's weights
            for name in set(_fitted_attributes(self)) - set(before):
                delattr(self, name)
            cast(dict, vars(self)).update(before)  # an instance's __dict__
            if warm_weights is not None:
                restore_variables(before["model_"], warm_weights)
            raise

    def _fit_and_set(
        self, X, y, sample_weight, classes, incremental, keep, warm_weights, callbacks
    ):
        strategy = None if incremental else strategy_for(self, keep)
        image_shape = None
        if keep:
            X, y_enc, w = self._validate_more(X, y, sample_weight, classes, incremental)
        else:
            X, y_enc, w, image_shape = self._validate_new(X, y, sample_weight, classes)
        w = combine_weights(w, class_sample_weights(self, y_enc))
        seed = resolve_seed(self.random_state)
        if incremental:
            return self._fit_one_epoch(X, y_enc, w, image_shape, seed, keep, callbacks)
        store = saved = None
        if self.checkpoint_dir is not None:
            start = network_digest(warm_weights) if keep else None
            store = CheckpointStore(self.checkpoint_dir, self, X, y_enc, w, start)
            saved = store.read_state()
        # The shuffling and hold-out seed of this run: a resumed run's own.
        run_seed = int(saved["seed"]) if saved is not None else _seed_or_fresh(seed)
        n_features = X.shape[1]
        with seeded(seed):
            with network_scope(strategy):
                if keep:
                    model = self.model_
                else:
                    network_params = self._network_params()
                    model = self._new_network(n_features, image_shape, seed)
                train, val = validation_rows(y_enc, self.validation_fraction, run_seed)
                batch = global_batch(self, strategy)
                decay_steps = self.epochs * -(-len(train) // batch)
                self._compile(model, decay_steps=decay_steps)
            run = TrainingRun(
                X,
                y_enc,
                w,
                train,
                val,
                run_seed,
                self.epochs,
                batch_size=batch,
                strategy=strategy,
                early_stopping=early_stopping_for(self, val is not None),
            )
            plan_run(run, model, store, saved)
            # the network being trained answers predict and score meanwhile,
            # so callbacks (tuning's pruning) can score it after each epoch
            self.model_ = model
            new = fit_network(self, model, run, callbacks)
            if strategy is not None:
                model = single_device_copy(
                    self,
                    model,
                    lambda: self._new_network(n_features, image_shape, seed),
                    decay_steps,
                )
        self.model_ = model
        if not keep:
            self._network_params_ = network_params
        for key, vals in run.history.items():
            new[key] = list(vals) + new.get(key, [])
        self._record(new, keep)
        return self

    def _fit_one_epoch(self, X, y_enc, w, image_shape, seed, keep, callbacks):
        """``partial_fit``'s epoch: every row, its order from the epoch count."""
        if not keep:
            with seeded(seed):
                self.model_ = self._new_network(X.shape[1], image_shape, seed)
                self._compile(self.model_)
            self._network_params_ = self._network_params()
            self.history_, self.n_iter_ = {}, 0
            # the order's seed is a draw of its own (a RandomState random_state
            # gives the network and the order different seeds)
            seed = resolve_seed(self.random_state)
        # This call's order: from random_state and the epoch count, so that
        # partial_fit calls with an int random_state repeat exactly.
        run = TrainingRun(
            X,
            y_enc,
            w,
            np.arange(len(y_enc)),
            None,
            _seed_or_fresh(seed),
            self.n_iter_ + 1,
            start_epoch=self.n_iter_,
            batch_size=self.batch_size,
        )
        self._record(fit_network(self, self.model_, run, callbacks), True)
        return self

    def _record(self, new: dict, keep: bool) -> None:
        """Set (or, for a kept network, extend) ``history_`` and ``n_iter_``."""
        if keep:
            for key, vals in new.items():
                self.history_.setdefault(key, []).extend(vals)
            self.n_iter_ += len(new.get("loss", []))
        else:
            self.history_ = new
            self.n_iter_ = len(new.get("loss", []))

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        callbacks: list | None = None,
    ) -> BaseEmnistClassifier:
        """Build a new network and train it on ``(X, y)``.

        With ``warm_start=True`` and a fitted network, train that network
        further instead (a new optimizer and learning-rate schedule, as
        scikit-learn's ``MLPClassifier`` does). With ``checkpoint_dir``, save
        the state after each epoch and resume from a checkpoint found there.
        A fit that fails leaves the estimator as it was.

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
        return self._fit(X, y, sample_weight, incremental=False, callbacks=callbacks)

    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        classes: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> BaseEmnistClassifier:
        """Train for one epoch on ``(X, y)``, keeping the current weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or (n_samples, h, w[, 1])
            Grey pixels.
        y : array-like of shape (n_samples,)
            Class labels.
        classes : array-like of shape (n_classes,), default=None
            Every class, required on the first call unless ``y`` has them all;
            a later call may repeat the same classes only.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights of the loss, non-negative.

        Returns
        -------
        self : object
            The estimator.
        """
        return self._fit(X, y, sample_weight, classes=classes, incremental=True)

    def initialize(
        self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None
    ) -> BaseEmnistClassifier:
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
        configure_at_first_use()
        self._validate_params()
        X, _, _, image_shape = self._validate_new(X, y, None, classes)
        seed = resolve_seed(self.random_state)
        with seeded(seed):
            self.model_ = self._new_network(X.shape[1], image_shape, seed)
            self._compile(self.model_)
        self._network_params_ = self._network_params()
        self.history_, self.n_iter_ = {}, 0
        return self

    # --- prediction --------------------------------------------------------
    def _check_scale(self, X: np.ndarray) -> None:
        """Refuse X scaled unlike the training X (auto ``rescale`` only)."""
        check_scale(self, X)

    def _forward(self, X: np.ndarray) -> np.ndarray:
        # Small batches: model_ traced once per input dtype (inference.py).
        with expected_retracing():
            # a network training under a strategy (a callback scoring it)
            # has one output per replica: Model.predict gathers them
            if len(X) <= self._direct_predict_max and not in_strategy():
                out = network_proba(self, X)
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


#: Its name before it was public (kept for code that imported it).
_EmnistClassifier = BaseEmnistClassifier
