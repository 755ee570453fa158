"""Exceptions raised by emnist_estimators.

Every exception subclasses both :class:`EmnistEstimatorsError` (catch all of the
package's errors at once) and the builtin that describes it (``ValueError``,
``OSError``), so code written against the builtins keeps working.
"""

from __future__ import annotations

__all__ = [
    "EmnistEstimatorsError",
    "DataFormatError",
    "DataNotFoundError",
    "ChecksumError",
    "DownloadError",
    "StorageError",
    "OutputFolderError",
    "ClusterError",
    "ClusterConfigError",
    "TrainingDivergedError",
    "ExportError",
]


class EmnistEstimatorsError(Exception):
    """Base class of every error raised by emnist_estimators."""


class DataFormatError(EmnistEstimatorsError, ValueError):
    """Data - a file, or arrays given to fit/predict - is not what it claims.

    It is corrupt, truncated, mis-scaled or in another format.
    """


class DataNotFoundError(EmnistEstimatorsError, FileNotFoundError):
    """The files of a split are not on disk and downloading is not allowed."""


class ChecksumError(EmnistEstimatorsError, OSError):
    """A file's sha256 differs from the official one."""


class DownloadError(EmnistEstimatorsError, OSError):
    """Downloading failed: network error, HTML instead of data, unsafe archive."""


class StorageError(EmnistEstimatorsError, ConnectionError):
    """A storage cannot be opened (server down, bad URL, no driver).

    An optuna storage URL, or an MLflow tracking URI (``--mlflow``).
    """


class OutputFolderError(EmnistEstimatorsError, ValueError):
    """An output path cannot be written or replaced safely; nothing was changed."""


class ClusterError(EmnistEstimatorsError, ConnectionError):
    """A cluster cannot be reached or lost its workers.

    For example a Dask scheduler that does not answer, or tf.distribute
    workers that never joined.
    """


class ClusterConfigError(EmnistEstimatorsError, ValueError):
    """A cluster description (e.g. the ``TF_CONFIG`` variable) is malformed."""


class TrainingDivergedError(EmnistEstimatorsError, FloatingPointError):
    """The training loss became NaN or infinite; the fit was stopped.

    The estimator is left as it was before that fit. A ``FloatingPointError``
    (an ``ArithmeticError``), as NumPy raises for invalid floating-point
    results under ``np.errstate(invalid="raise")``.
    """


class ExportError(EmnistEstimatorsError, RuntimeError):
    """An export failed: conversion, or the check against ``predict``.

    Nothing was written when it is raised.
    """
