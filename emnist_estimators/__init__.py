"""Neural-network classifiers for handwritten characters, scikit-learn compatible.

>>> from emnist_estimators import EmnistMLP, EmnistCNN, PixelScaler, load_emnist

The estimators import TensorFlow, which takes seconds; they are loaded on
first use so that the data layer and the command line start fast. Importing
the package changes no environment variable and no TensorFlow setting; the
one process-wide setting the estimators make, TensorFlow's thread pools, is
made at their first use (see :mod:`emnist_estimators.threads`).
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._utils import native_stderr_captured
from ._version import __version__
from .datasets import load_emnist
from .preprocessing import PixelScaler
from .pretrained import load_pretrained
from .threads import set_num_threads

if TYPE_CHECKING:  # for type checkers; loaded on first use by __getattr__ below
    from .estimators import EmnistCNN, EmnistMLP, load_model

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
    "load_pretrained",
    "set_num_threads",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # importing TensorFlow logs from C++ (cpu_feature_guard, absl): kept
        # out of the user's stderr unless the import fails
        with native_stderr_captured():
            module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
