"""scikit-learn compatible neural-network classifiers for handwritten characters.

>>> from emnist_estimators import EmnistMLP, EmnistCNN, PixelScaler, load_emnist
"""

from .datasets import load_emnist

__version__ = "0.1.0"

__all__ = ["load_emnist", "__version__"]
