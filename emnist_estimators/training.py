"""One training run of an estimator's network, from optimizer to Keras' fit.

The optimizer, the strategy, the resume plan read from a checkpoint, and
Keras' fit over index batches.

The estimator (``base.py``) validates the data and owns the fitted state;
this module trains the network it is handed, as Keras keeps its trainers
apart from its models. :class:`TrainingRun` holds everything one run needs,
made complete before training starts.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any, cast

import keras
import numpy as np
import tensorflow as tf

from ._splits import holdout_split
from .batches import IndexBatches
from .checkpoints import CheckpointStore, ResumableEarlyStopping
from .distribute import fit_multi_worker, global_batch_size, make_strategy
from .exceptions import TrainingDivergedError
from .keras_io import variables_as_numpy
from .losses import training_loss

__all__ = [
    "FiniteLossCheck",
    "TrainingRun",
    "compile_network",
    "early_stopping_for",
    "expected_retracing",
    "fit_network",
    "network_digest",
    "plan_run",
    "restore_variables",
    "single_device_copy",
    "strategy_for",
    "validation_rows",
    "variables_snapshot",
]


class _RetracingFilter(logging.Filter):
    """Drop TensorFlow's "triggered tf.function retracing" log warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


@contextmanager
def expected_retracing() -> Iterator[None]:
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

    Yields
    ------
    None
        Train or predict inside the block.
    """
    logger = logging.getLogger("tensorflow")
    retracing = _RetracingFilter()
    logger.addFilter(retracing)
    try:
        yield
    finally:
        logger.removeFilter(retracing)


def variables_snapshot(model) -> list:
    """The network's variables (weights, generator states), as numpy arrays.

    Parameters
    ----------
    model : keras.Model
        The network.

    Returns
    -------
    list of ndarray
        One array per variable.
    """
    return variables_as_numpy(model.variables)


def restore_variables(model, snapshot: list) -> None:
    """Give ``model`` back the variables of :func:`variables_snapshot`.

    Parameters
    ----------
    model : keras.Model
        The network the snapshot was taken of.
    snapshot : list of ndarray
        Its variables.
    """
    for variable, value in zip(model.variables, snapshot, strict=True):
        variable.assign(value)


def network_digest(snapshot: list) -> str:
    """A digest of a network's variables: where a warm-started fit starts.

    Parameters
    ----------
    snapshot : list of ndarray
        From :func:`variables_snapshot`.

    Returns
    -------
    str
        The sha256 of the variables' bytes.
    """
    digest = hashlib.sha256()
    for value in snapshot:
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def validation_rows(y, fraction: float, seed) -> tuple[np.ndarray, np.ndarray | None]:
    """Training and hold-out rows (indices, sorted), stratified if possible.

    Parameters
    ----------
    y : ndarray
        The encoded labels.
    fraction : float
        The estimator's ``validation_fraction``.
    seed : int
        The run's seed.

    Returns
    -------
    train : ndarray of int
        The training rows.
    val : ndarray of int or None
        The hold-out rows; None when ``fraction`` leaves none (or no
        training row).
    """
    idx = np.arange(len(y))
    n_val = int(round(fraction * len(y)))
    if n_val < 1 or len(y) - n_val < 1:
        return idx, None
    train, val = holdout_split(y, test_size=n_val, random_state=seed)
    return np.sort(train), np.sort(val)


def early_stopping_for(est, has_validation: bool) -> ResumableEarlyStopping | None:
    """The early-stopping callback ``est`` asks for, or None.

    Parameters
    ----------
    est : EmnistMLP or EmnistCNN
        Its ``early_stopping`` and ``patience``.
    has_validation : bool
        Whether the run holds rows out (else the training loss is watched).

    Returns
    -------
    ResumableEarlyStopping or None
        The callback; it restores the best epoch's weights.
    """
    if not est.early_stopping:
        return None
    return ResumableEarlyStopping(
        monitor="val_loss" if has_validation else "loss",
        patience=est.patience,
        restore_best_weights=True,
    )


class FiniteLossCheck(keras.callbacks.Callback):
    """Stop a fit whose training loss becomes NaN or infinite.

    Keras trains on: every later weight is NaN, ``predict`` answers the
    first class for every row and checkpoints save NaN. The loss Keras logs
    is the epoch's running mean, so one non-finite batch shows at the
    epoch's end, where it is read - before the other callbacks (checkpoint,
    pruning) see that epoch. Only there: a per-batch hook would make Keras
    hand over every batch's logs on the training loop's hot path. It reads
    the logs only, so a seeded fit trains exactly as without it.

    Parameters
    ----------
    epochs : int
        The epoch the run ends at (named in the error).

    Raises
    ------
    TrainingDivergedError
        From the batch or epoch whose loss is not finite.
    """

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None) -> None:
        """Note the epoch (named in the error).

        Parameters
        ----------
        epoch : int
            Keras' epoch index (0-based).
        logs : dict, default=None
            Unused.
        """
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None) -> None:
        """Check the epoch's loss.

        Parameters
        ----------
        epoch : int
            Keras' epoch index (0-based).
        logs : dict, default=None
            Keras' logs, with ``loss``.
        """
        self.epoch = epoch
        self._check(logs, "")

    def _check(self, logs, where: str) -> None:
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(np.asarray(loss))
        if np.isfinite(loss):
            return
        raise TrainingDivergedError(
            f"The training loss became {loss} in epoch {self.epoch + 1} of "
            f"{self.epochs}{where}: the network diverged, and training on would "
            "leave NaN weights. The fit was stopped and the estimator left as "
            "before it. Lower learning_rate, scale the pixels or the weights "
            "(sample_weight, class_weight) down, or use precision='float32'."
        )


def compile_network(est, model, decay_steps: int | None = None) -> None:
    """Compile ``model`` with Adam, ``est``'s schedule and its loss.

    Parameters
    ----------
    est : EmnistMLP or EmnistCNN
        Its ``learning_rate``, ``lr_schedule``, ``label_smoothing`` and
        ``dtype_policy_`` decide the optimizer and loss.
    model : keras.Model
        The network.
    decay_steps : int, default=None
        The optimizer steps the schedule spans; None: a constant rate.
    """
    learning_rate = est.learning_rate
    if est.lr_schedule == "cosine" and decay_steps:
        # decays to 1% of the initial rate over the planned epochs
        learning_rate = keras.optimizers.schedules.CosineDecay(
            est.learning_rate, decay_steps=decay_steps, alpha=0.01
        )
    elif est.lr_schedule == "warmup_cosine" and decay_steps:
        # rises linearly from 10% over the first 5% of the steps (Adam's
        # early moments are noisy), then decays as 'cosine'
        warmup = max(1, decay_steps // 20)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            est.learning_rate / 10,
            decay_steps=max(1, decay_steps - warmup),
            alpha=0.01,
            warmup_target=est.learning_rate,
            warmup_steps=warmup,
        )
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    if getattr(est, "dtype_policy_", None) == "mixed_float16":
        # float16 gradients underflow without it. Keras wraps the optimizer
        # itself only when the whole model's policy is mixed_float16; here
        # only the hidden layers' policy is.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer=optimizer,
        loss=training_loss(getattr(est, "label_smoothing", 0.0)),
        metrics=["accuracy"],
    )


def strategy_for(est, warm: bool):
    """The fit's tf.distribute strategy (None without ``distribution``).

    Parameters
    ----------
    est : EmnistMLP or EmnistCNN
        The estimator about to fit.
    warm : bool
        Whether the fit continues a fitted network.

    Returns
    -------
    tf.distribute.Strategy or None
        The strategy.
    """
    if est.distribution is None:
        return None
    name = type(est).__name__
    for refused, why in (
        (est.checkpoint_dir is not None, "checkpoint_dir"),
        (warm, "a warm-started fit (warm_start=True on a fitted network)"),
    ):
        if refused:
            raise ValueError(
                f"{name}(distribution={est.distribution!r}) does not support "
                f"{why}: set distribution=None for it, or leave it out."
            )
    if est.distribution == "multi_worker" and not isinstance(
        est.random_state, Integral
    ):
        raise ValueError(
            f"{name}(distribution='multi_worker') needs an int random_state, "
            "the same on every worker: each epoch's order and the hold-out "
            "split come from it, and every worker must take the same rows. "
            "Set e.g. random_state=0 in every worker's script."
        )
    return make_strategy(est.distribution)


@dataclass
class TrainingRun:
    """Everything one training run needs, complete before it starts.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        The validated pixels (a memmap stays on disk).
    y : ndarray of int32
        Labels as indices into ``classes_``.
    w : ndarray of float32 or None
        The loss's per-sample weights.
    train, val : ndarray of int, ndarray of int or None
        Training and hold-out rows.
    seed : int
        The shuffling seed (a resumed run's own).
    epochs : int
        The epoch the run ends at (exclusive).
    start_epoch : int
        The epoch it starts at (a resumed or incremental run's first).
    batch_size : int
        The global batch size.
    strategy : tf.distribute.Strategy or None
        What it trains under; None: one device.
    early_stopping : ResumableEarlyStopping or None
        The early-stopping callback.
    store : CheckpointStore or None
        Where each epoch is checkpointed.
    finished : bool
        A resumed run whose checkpoint says it already ended.
    history : dict
        The epochs a resumed run already ran.
    """

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray | None
    train: np.ndarray
    val: np.ndarray | None
    seed: int
    epochs: int
    start_epoch: int = 0
    batch_size: int = 32
    strategy: Any = None
    early_stopping: ResumableEarlyStopping | None = None
    store: CheckpointStore | None = None
    finished: bool = False
    history: dict = field(default_factory=dict)


def plan_run(run: TrainingRun, model, store: CheckpointStore | None, saved) -> None:
    """Apply a checkpoint's resume plan, read once, to ``run`` and ``model``.

    Parameters
    ----------
    run : TrainingRun
        The run, its epochs and early stopping set; updated in place.
    model : keras.Model
        The compiled network; given the checkpoint's variables.
    store : CheckpointStore or None
        The fit's checkpoint file.
    saved : dict or None
        ``store.read_state()``: None to start afresh.
    """
    run.store = store
    if saved is None:
        return
    # saved came from store.read_state(): store is not None here
    store = cast(CheckpointStore, store)
    run.start_epoch, run.history = store.restore(saved, model, run.early_stopping)
    run.finished = bool(saved.get("finished"))


def fit_network(est, model, run: TrainingRun, callbacks=None) -> dict:
    """Run Keras' fit of ``model`` over ``run``; return the new epochs' history.

    Parameters
    ----------
    est : EmnistMLP or EmnistCNN
        Its ``callbacks``, ``verbose`` and ``distribution``.
    model : keras.Model
        The compiled network.
    run : TrainingRun
        The run.
    callbacks : list of keras.callbacks.Callback, default=None
        This fit's extra callbacks.

    Returns
    -------
    dict
        Each metric's values for the epochs run, as floats.
    """
    if run.finished:
        return {}
    batches = IndexBatches(
        run.X,
        run.y,
        run.train,
        batch_size=run.batch_size,
        seed=run.seed,
        sample_weight=run.w,
        epoch=run.start_epoch,
    )
    val_batches = None
    if run.val is not None:
        val_batches = IndexBatches(
            run.X,
            run.y,
            run.val,
            batch_size=max(run.batch_size, 1024),
            seed=None,
            sample_weight=run.w,
        )
    # the loss check first: at a non-finite epoch's end it raises before any
    # other callback (a checkpoint's write, pruning) sees NaN weights
    every = [FiniteLossCheck(run.epochs)]
    every += list(est.callbacks or []) + list(callbacks or [])
    every.append(batches.epoch_callback())
    if run.early_stopping is not None:
        every.append(run.early_stopping)
    if run.store is not None:  # after early stopping: saves the best weights
        every.append(
            run.store.callback(
                seed=run.seed, history=run.history, early_stopping=run.early_stopping
            )
        )
    with expected_retracing(), network_scope(run.strategy):
        if est.distribution == "multi_worker":
            return fit_multi_worker(
                model,
                run.strategy,
                batches,
                val_batches,
                epochs=run.epochs,
                initial_epoch=run.start_epoch,
                callbacks=every,
                verbose=est.verbose,
            )
        fitted = model.fit(
            batches.as_dataset(),
            validation_data=None if val_batches is None else val_batches.as_dataset(),
            epochs=run.epochs,
            initial_epoch=run.start_epoch,
            verbose=est.verbose,
            callbacks=every,
            # IndexBatches orders each epoch itself; Keras would shuffle the
            # batches with Python's global random state, which a resumed fit
            # cannot restore.
            shuffle=False,
        )
    return {k: [float(v) for v in vals] for k, vals in fitted.history.items()}


def single_device_copy(est, model, build, decay_steps: int):
    """Copy ``model``'s weights into a network outside any strategy.

    A network built under a strategy keeps mirrored variables: its
    ``predict_on_batch`` returns one output per replica, and TensorFlow
    allows only one multi-worker strategy per process. The fitted estimator
    holds an ordinary network instead.

    Parameters
    ----------
    est : EmnistMLP or EmnistCNN
        The estimator (its optimizer settings).
    model : keras.Model
        The network trained under a strategy.
    build : callable
        ``build() -> keras.Model``: a new network of the same architecture.
    decay_steps : int
        The schedule's length, as the trained network was compiled.

    Returns
    -------
    keras.Model
        The copy, with the weights and the optimizer's state.
    """
    copy = build()
    copy.set_weights(model.get_weights())
    est._compile(copy, decay_steps=decay_steps)
    # the optimizer's state too, as a network trained without a strategy
    # keeps it (and pickles and saves it)
    copy.optimizer.build(copy.trainable_variables)
    for mine, theirs in zip(
        copy.optimizer.variables, model.optimizer.variables, strict=True
    ):
        mine.assign(theirs)
    return copy


def in_strategy() -> bool:
    """True inside a tf.distribute strategy's scope (a callback scoring).

    Returns
    -------
    bool
        Whether a strategy is in scope.
    """
    return tf.distribute.has_strategy()


def network_scope(strategy) -> AbstractContextManager:
    """``strategy.scope()``, or nothing for None: where to build a network.

    Parameters
    ----------
    strategy : tf.distribute.Strategy or None
        The run's strategy.

    Returns
    -------
    context manager
        The scope.
    """
    return nullcontext() if strategy is None else strategy.scope()


def global_batch(est, strategy) -> int:
    """The batch size over all replicas of ``strategy``.

    Parameters
    ----------
    est : EmnistMLP or EmnistCNN
        Its ``batch_size`` (per replica).
    strategy : tf.distribute.Strategy or None
        The run's strategy.

    Returns
    -------
    int
        The global batch size.
    """
    return global_batch_size(est.batch_size, strategy)
