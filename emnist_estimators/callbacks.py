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
from collections.abc import Callable
from typing import Any

__all__ = ["EpochProgressBar", "PruningCallback"]

# one Keras subclass per class of ours, made once (isinstance checks and
# repeated instantiation then see the same class)
_WITH_KERAS_BASE: dict[type, type] = {}


class _LazyKerasCallback:
    """Base that adds :class:`keras.callbacks.Callback` at the first instance."""

    # Set by Keras (Callback.set_model) on the subclass made at first use.
    model: Any

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
    """Keras callback: one tqdm bar over the epochs, with the epoch's metrics.

    Parameters
    ----------
    epochs : int
        Epochs the fit will run at most (the bar's length).
    enabled : bool, default=True
        False draws nothing (the command line's ``--quiet`` and ``--json``).
    file : file-like, default=None
        Where the bar is drawn; None: ``sys.stderr`` at the start of training,
        so results on stdout stay clean.

    Examples
    --------
    >>> from emnist_estimators import EmnistMLP
    >>> from emnist_estimators.callbacks import EpochProgressBar
    >>> clf = EmnistMLP(epochs=2)
    >>> callbacks = [EpochProgressBar(clf.epochs)]  # clf.fit(X, y, callbacks=...)
    """

    def __init__(self, epochs: int, *, enabled: bool = True, file=None):
        super().__init__()
        self.epochs, self.enabled, self.file = epochs, enabled, file
        self.bar: Any = None  # a tqdm bar once training begins

    def on_train_begin(self, logs=None):
        """Open the bar.

        Parameters
        ----------
        logs : dict, default=None
            Unused; Keras passes it.
        """
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=self.epochs,
            desc="training",
            unit="epoch",
            disable=not self.enabled,
            file=self.file or sys.stderr,
        )

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
        """Close the bar.

        Parameters
        ----------
        logs : dict, default=None
            Unused; Keras passes it.
        """
        self.bar.close()


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
