"""Keras networks as numpy arrays and pickles, without numpy's copy warning.

Shared by the estimator (pickling, warm starts), its saved files and its
checkpoints; it knows Keras, not the estimators.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["keras_saving_quietly", "pack_network", "variables_as_numpy"]

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
