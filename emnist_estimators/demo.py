"""The offline demo: scikit-learn's bundled digits, upscaled to EMNIST's format.

Needs no download, so a fresh install can show the whole path - uint8 28x28
images, ``Pipeline(PixelScaler, EmnistCNN)``, a held-out score and a report -
in well under a minute on a laptop CPU.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .datasets.digits import digits_train_test_split, load_digits_28

# load_digits_28 lived here before datasets/digits.py; kept importable.
__all__ = ["load_digits_28", "run_demo"]


def run_demo(
    *,
    model: str = "cnn",
    epochs: int | None = None,
    output: str | os.PathLike[str] = "emnist-demo-output",
    random_state: int = 0,
    overwrite: bool = False,
    progress: bool = False,
) -> dict:
    """Train ``Pipeline(PixelScaler, EmnistCNN|EmnistMLP)`` on the digits demo.

    Parameters
    ----------
    model : {'cnn', 'mlp'}, default='cnn'
        Which classifier the pipeline ends with: EmnistCNN or EmnistMLP.
    epochs : int, default=None
        Default: 15 for the CNN, 30 for the MLP (the demo set is small).
    output : str or path-like, default='emnist-demo-output'
        Folder for the report, created when the demo succeeds.
    random_state : int, default=0
        Seeds the split and the network.
    overwrite : bool, default=False
        Replace ``output`` if it exists - only a folder this package wrote
        (see :mod:`emnist_estimators.output_folder`); anything else is refused.
    progress : bool, default=False
        Draw the training's progress on stderr: epochs, and on a terminal
        each epoch's batches (see
        :class:`~emnist_estimators.callbacks.EpochProgressBar`).

    Returns
    -------
    dict
        ``model``, ``accuracy``, ``fit_seconds``, ``n_train``, ``n_test`` and
        ``report`` (path of the report's index file).
    """
    from sklearn.pipeline import Pipeline

    from .callbacks import EpochProgressBar
    from .estimators import EmnistCNN, EmnistMLP
    from .output_folder import check_output_folder, output_folder
    from .preprocessing import PixelScaler
    from .reporting import write_report

    output = check_output_folder(output, overwrite=overwrite)  # before training
    X_train, X_test, y_train, y_test = digits_train_test_split(
        random_state=random_state
    )
    if model == "cnn":
        clf = EmnistCNN(epochs=epochs or 15, batch_size=64, random_state=random_state)
    elif model == "mlp":
        clf = EmnistMLP(epochs=epochs or 30, batch_size=64, random_state=random_state)
    else:
        raise ValueError(f"model must be 'cnn' or 'mlp', got {model!r}.")
    pipe = Pipeline([("scale", PixelScaler()), ("clf", clf)])
    start = time.perf_counter()
    bar = EpochProgressBar(clf.epochs, enabled=progress)
    pipe.fit(X_train, y_train, clf__callbacks=[bar])
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
