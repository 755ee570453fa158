"""The offline demo: scikit-learn's bundled digits, upscaled to EMNIST's format.

Needs no download, so a fresh install can show the whole path - uint8 28x28
images, ``Pipeline(PixelScaler, EmnistCNN)``, a held-out score and a report -
in well under a minute on a laptop CPU.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

__all__ = ["load_digits_28", "run_demo"]


def load_digits_28(*, return_X_y: bool = True):
    """scikit-learn's 1,797 handwritten digits as EMNIST-style 28x28 uint8.

    The 8x8 images (values 0..16) are scaled to 0..255, enlarged to 20x20 by
    bilinear interpolation and centred in a 28x28 frame, like MNIST/EMNIST
    digits (a 20x20 glyph in a 4-pixel margin), upright.

    Returns
    -------
    X : ndarray of shape (1797, 784), uint8
    y : ndarray of shape (1797,), int
    """
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = digits.images.astype(np.float32) * (255.0 / 16.0)
    big = zoom(small, (1, 20 / 8, 20 / 8), order=1)
    images = np.zeros((len(small), 28, 28), dtype=np.uint8)
    images[:, 4:24, 4:24] = np.clip(np.rint(big), 0, 255).astype(np.uint8)
    X = images.reshape(len(images), 784)
    return X, digits.target


def run_demo(
    *,
    model: str = "cnn",
    epochs: int | None = None,
    output="emnist-demo-output",
    random_state: int = 0,
    overwrite: bool = False,
) -> dict:
    """Train ``Pipeline(PixelScaler, EmnistCNN|EmnistMLP)`` on the digits demo.

    Parameters
    ----------
    model : {'cnn', 'mlp'}, default='cnn'
    epochs : int, default=None
        Default: 15 for the CNN, 30 for the MLP (the demo set is small).
    output : str or path-like, default='emnist-demo-output'
        Folder for the report, created when the demo succeeds.
    random_state : int, default=0
        Seeds the split and the network.
    overwrite : bool, default=False
        Replace ``output`` if it exists - only a folder this package wrote
        (see :mod:`emnist_estimators.output_folder`); anything else is refused.

    Returns
    -------
    dict
        ``model``, ``accuracy``, ``fit_seconds``, ``n_train``, ``n_test`` and
        ``report`` (path of the report's index file).
    """
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    from .estimators import EmnistCNN, EmnistMLP
    from .output_folder import check_output_folder, output_folder
    from .preprocessing import PixelScaler
    from .reporting import write_report

    output = check_output_folder(output, overwrite=overwrite)  # before training
    X, y = load_digits_28()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=random_state
    )
    if model == "cnn":
        clf = EmnistCNN(epochs=epochs or 15, batch_size=64, random_state=random_state)
    elif model == "mlp":
        clf = EmnistMLP(epochs=epochs or 30, batch_size=64, random_state=random_state)
    else:
        raise ValueError(f"model must be 'cnn' or 'mlp', got {model!r}.")
    pipe = Pipeline([("scale", PixelScaler()), ("clf", clf)])
    start = time.perf_counter()
    pipe.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    accuracy = float(pipe.score(X_test, y_test))
    result = {
        "model": type(clf).__name__,
        "accuracy": accuracy,
        "fit_seconds": fit_seconds,
        "n_train": len(y_train),
        "n_test": len(y_test),
    }
    with output_folder(output, overwrite=overwrite, command="demo") as tmp:
        report = write_report(
            pipe,
            X_test,
            y_test,
            tmp,
            title=f"Digits demo: {type(clf).__name__}",
            class_names=[str(c) for c in range(10)],
            extra_metrics={"fit_seconds": round(fit_seconds, 2)},
        )
        result["report"] = str(output / Path(report).relative_to(tmp))
        (tmp / "demo.json").write_text(json.dumps(result, indent=2))
    return result
