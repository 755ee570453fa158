"""scikit-learn compatible neural-network classifiers for handwritten characters.

>>> from emnist_estimators import EmnistMLP, EmnistCNN, PixelScaler, load_emnist

The estimators import TensorFlow, which takes seconds; they are loaded on
first use so that the data layer and the command line start fast.
"""

import importlib
import os as _os

# TensorFlow's C++ start-up chatter is noise for a library's users.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .datasets import load_emnist  # noqa: E402
from .preprocessing import PixelScaler  # noqa: E402
from .threads import set_num_threads  # noqa: E402

__version__ = "0.1.0"

_LAZY = {
    "EmnistCNN": "estimators",
    "EmnistMLP": "estimators",
    "load_model": "estimators",
}

__all__ = [
    "EmnistCNN",
    "EmnistMLP",
    "PixelScaler",
    "load_emnist",
    "load_model",
    "set_num_threads",
    "__version__",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
