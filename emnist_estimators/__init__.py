"""scikit-learn compatible neural-network classifiers for handwritten characters.

>>> from emnist_estimators import EmnistMLP, EmnistCNN, PixelScaler, load_emnist
"""

import os as _os

# TensorFlow's C++ start-up chatter is noise for a library's users.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .datasets import load_emnist  # noqa: E402
from .estimators import EmnistCNN, EmnistMLP, load_model  # noqa: E402
from .preprocessing import PixelScaler  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "EmnistCNN",
    "EmnistMLP",
    "PixelScaler",
    "load_emnist",
    "load_model",
    "__version__",
]
