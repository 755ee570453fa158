"""Keras callbacks the package passes to ``fit``: a progress bar and optuna pruning.

Both become :class:`keras.callbacks.Callback` subclasses when first
instantiated, not when this module is imported: importing it (the command
line does) must not import TensorFlow, which takes seconds and starts its
runtime before the thread pools are sized (see ``threads.py``).

Examples
--------
>>> from emnist_estimators.callbacks import EpochProgressBar
>>> bar = EpochProgressBar(epochs=3, enabled=False)
>>> import keras
>>> isinstance(bar, keras.callbacks.Callback)
True
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["EpochProgressBar", "PruningCallback"]

# one Keras subclass per class of ours, made once (isinstance checks and
# repeated instantiation then see the same class)
_WITH_KERAS_BASE: dict[type, type] = {}


class _LazyKerasCallback:
    """Base that adds :class:`keras.callbacks.Callback` at the first instance."""

    # Set by Keras (set_model, set_params) on the subclass made at first use.
    model: Any
    params: dict[str, Any]

    def __new__(cls, *args, **kwargs):
        import keras

        if not issubclass(cls, keras.callbacks.Callback):
            if cls not in _WITH_KERAS_BASE:
                _WITH_KERAS_BASE[cls] = type(
                    cls.__name__,
                    (cls, keras.callbacks.Callback),
                    {"__module__": cls.__module__, "__doc__": cls.__doc__},
                )
            cls = _WITH_KERAS_BASE[cls]
        return super().__new__(cls)

    def __init__(self):
        import keras

        keras.callbacks.Callback.__init__(self)


class EpochProgressBar(_LazyKerasCallback):
    """Keras callback: a tqdm bar over the epochs, and one over each epoch's batches.

    The epoch bar shows each finished epoch's metrics. The batch bar (done /
    total, rate, time left in the epoch) is drawn only on a terminal: piped
    output and log files get the epoch bar alone.

    Parameters
    ----------
    epochs : int
        Epochs the fit will run at most (the bar's length).
    enabled : bool, default=True
        False draws nothing (the command line's ``--quiet`` and ``--json``).
    file : file-like, default=None
        Where the bars are drawn; None: ``sys.stderr`` at the start of
        training, so results on stdout stay clean.
    batches : bool, default=None
        Whether to draw the batch bar; None: only if ``file`` is a terminal.

    Notes
    -----
    Keras calls ``on_train_batch_end`` after every step. This callback is
    ``async_safe``, so Keras keeps running batch callbacks on its worker
    threads and the training step never waits for them; per batch it only
    advances a counter, and tqdm redraws at most every ``mininterval``
    seconds.

    Examples
    --------
    >>> from emnist_estimators import EmnistMLP
    >>> from emnist_estimators.callbacks import EpochProgressBar
    >>> clf = EmnistMLP(epochs=2)
    >>> callbacks = [EpochProgressBar(clf.epochs)]  # clf.fit(X, y, callbacks=...)
    """

    # Keras may run batch hooks on its executor threads (no wait for the step)
    async_safe = True

    def __init__(
        self,
        epochs: int,
        *,
        enabled: bool = True,
        file=None,
        batches: bool | None = None,
    ):
        super().__init__()
        self.epochs, self.enabled, self.file = epochs, enabled, file
        self.batches = batches
        self.bar: Any = None  # a tqdm bar once training begins
        self.batch_bar: Any = None  # the epoch's batches, on a terminal
        self._show_batches = False
        self._lock = threading.Lock()  # batch hooks may run on several threads

    def on_train_begin(self, logs=None):
        """Open the bars.

        Parameters
        ----------
        logs : dict, default=None
            Unused; Keras passes it.
        """
        from tqdm.auto import tqdm

        file = self.file or sys.stderr
        self.bar = tqdm(
            total=self.epochs,
            desc="training",
            unit="epoch",
            disable=not self.enabled,
            file=file,
        )
        show = self.batches
        if show is None:
            show = _is_terminal(file)
        self._show_batches = self.enabled and show
        self.batch_bar = None

    def on_epoch_begin(self, epoch, logs=None):
        """Start the batch bar over for this epoch (open it at the first).

        Parameters
        ----------
        epoch : int
            The epoch that begins, from 0.
        logs : dict, default=None
            Unused; Keras passes it.
        """
        if not self._show_batches:
            return
        steps = (self.params or {}).get("steps")
        desc = f"epoch {epoch + 1}/{self.epochs}"
        if self.batch_bar is None:
            from tqdm.auto import tqdm

            self.batch_bar = tqdm(
                total=steps,
                desc=desc,
                unit="batch",
                file=self.file or sys.stderr,
                leave=False,
                position=1,
                mininterval=0.2,
            )
        else:
            self.batch_bar.reset(total=steps)
            self.batch_bar.set_description(desc, refresh=False)

    def on_train_batch_end(self, batch, logs=None):
        """Count one more batch done (tqdm redraws when ``mininterval`` passed).

        Parameters
        ----------
        batch : int
            The batch that ended, from 0 within the epoch.
        logs : dict, default=None
            Unused: the batch bar shows counts, the epoch bar the metrics.
        """
        if self.batch_bar is not None:
            with self._lock:
                self.batch_bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        """Advance the bar by one epoch and show that epoch's metrics.

        Parameters
        ----------
        epoch : int
            The epoch that ended, from 0.
        logs : dict, default=None
            Keras' metrics of the epoch (``loss``, ``accuracy``, ``val_...``).
        """
        logs = logs or {}
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
        self.bar.update(1)

    def on_train_end(self, logs=None):
        """Close the bars.

        Parameters
        ----------
        logs : dict, default=None
            Unused; Keras passes it.
        """
        if self.batch_bar is not None:
            self.batch_bar.close()
            self.batch_bar = None
        self.bar.close()


def _is_terminal(file) -> bool:
    """Whether ``file`` is a terminal (False for pipes, files, ``StringIO``)."""
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class PruningCallback(_LazyKerasCallback):
    """Keras callback: report a score to an optuna trial each epoch, stop if pruned.

    Parameters
    ----------
    trial : optuna.Trial
        The trial whose fit this callback watches.
    score : callable
        ``score() -> float``, evaluated after every epoch (e.g. accuracy on
        the hold-out set, computed with the partly trained estimator).
    step_offset : int, default=0
        Added to the epoch number when reporting.

    Attributes
    ----------
    pruned : bool
        Whether the pruner stopped the fit.
    epochs_run : int
        Epochs the fit ran.
    last_score : float or None
        The score after the last epoch run.

    Examples
    --------
    >>> import optuna
    >>> from emnist_estimators import EmnistMLP
    >>> from emnist_estimators.callbacks import PruningCallback
    >>> trial = optuna.create_study(direction="maximize").ask()
    >>> clf = EmnistMLP(epochs=5)
    >>> X_val, y_val = ..., ...  # a hold-out set
    >>> callback = PruningCallback(trial, lambda: clf.score(X_val, y_val))
    >>> # clf.fit(X, y, callbacks=[callback]) stops when the trial is pruned
    """

    def __init__(self, trial, score: Callable[[], float], *, step_offset: int = 0):
        super().__init__()
        self.trial, self.score, self.step_offset = trial, score, step_offset
        self.pruned = False
        self.epochs_run = 0
        self.last_score: float | None = None

    def on_epoch_end(self, epoch, logs=None):
        """Report this epoch's score; stop training if the trial should be pruned.

        Parameters
        ----------
        epoch : int
            The epoch that ended, from 0; reported as step
            ``step_offset + epoch``.
        logs : dict, default=None
            Unused: the score comes from ``score()``.
        """
        self.epochs_run += 1
        value = float(self.score())
        self.last_score = value
        self.trial.report(value, self.step_offset + epoch)
        if self.trial.should_prune():
            self.pruned = True
            self.model.stop_training = True
