"""An exported model read back and run with its own runtime.

What :func:`~emnist_estimators.export.export_model` writes is read here:
:func:`load_exported` opens a file or folder by its sidecar
(``<path>.json``), and :class:`ExportedModel` runs it with onnxruntime,
TensorFlow or LiteRT. :data:`RUNNERS` opens each format; ``export_model``
runs the model it wrote with them before keeping it. The runtimes are
imported only when a model is opened.

Examples
--------
>>> from emnist_estimators.exported import FORMATS, sidecar_path
>>> FORMATS
('onnx', 'tf_saved_model', 'litert')
>>> sidecar_path("models/cnn.onnx").name
'cnn.onnx.json'
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "BFLOAT16_TOLERANCE",
    "FLOAT32_TOLERANCE",
    "FORMATS",
    "INPUT_NAME",
    "ONNX_OPSET",
    "OUTPUT_NAME",
    "RUNNERS",
    "ExportedModel",
    "as_input",
    "check_format",
    "load_exported",
    "sidecar_path",
]

#: The formats :func:`~emnist_estimators.export.export_model` writes.
FORMATS = ("onnx", "tf_saved_model", "litert")

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"

#: Largest probability difference accepted between an export and the float32
#: network it was made from (measured: about 1e-7).
FLOAT32_TOLERANCE = 1e-4

#: Largest probability difference accepted between the float32 export of a
#: bfloat16-trained estimator and that estimator's ``predict_proba``.
BFLOAT16_TOLERANCE = 0.05

#: ONNX operator set of exported files: onnxruntime >= 1.13 runs it.
ONNX_OPSET = 17


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON file written beside an exported model: ``<path>.json``.

    Parameters
    ----------
    path : str or path-like
        The exported model's file or folder.

    Returns
    -------
    pathlib.Path
        ``path`` with ``.json`` appended.

    Examples
    --------
    >>> from emnist_estimators.export import sidecar_path
    >>> sidecar_path("out/saved_model").as_posix()
    'out/saved_model.json'
    """
    path = Path(path)
    return path.with_name(path.name + ".json")


def check_format(fmt) -> None:
    """Refuse a format that is not one of :data:`FORMATS`.

    Parameters
    ----------
    fmt : str
        The format to check.

    Raises
    ------
    ValueError
        ``fmt`` is not one of :data:`FORMATS`.
    """
    if fmt not in FORMATS:
        raise ValueError(
            f"Unknown export format {fmt!r}; expected one of {list(FORMATS)}."
        )


def as_input(X, shape: tuple, dtype) -> np.ndarray:
    """``X`` reshaped and cast to the exported input; a lossy cast is refused.

    Parameters
    ----------
    X : array-like
        Pixels, flat or image-shaped.
    shape : tuple
        The exported input's shape, ``None`` (or any value) for the batch.
    dtype : str or numpy.dtype
        The exported input's dtype.

    Returns
    -------
    ndarray
        C-contiguous, of ``shape`` (its batch size from ``X``) and ``dtype``.

    Raises
    ------
    ValueError
        ``X`` does not hold whole images of ``shape``, or the cast to
        ``dtype`` changes its values.
    """
    X = np.asarray(X)
    n_pixels = int(np.prod(shape[1:]))
    if X.size % n_pixels:
        raise ValueError(
            f"X of shape {X.shape} does not hold images of {n_pixels} pixels: the "
            f"exported input is {list(shape)}."
        )
    out = X.reshape(-1, *shape[1:]).astype(dtype)
    if not np.array_equal(out, X.reshape(out.shape)):
        raise ValueError(
            f"X of dtype {X.dtype} changes values when cast to the exported input's "
            f"{np.dtype(dtype).name}: pass {np.dtype(dtype).name} pixels, as "
            "predict takes them."
        )
    return np.ascontiguousarray(out)


# --- running an exported model --------------------------------------------------------
def _onnx_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda X: session.run([OUTPUT_NAME], {INPUT_NAME: X})[0]


def _saved_model_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return lambda X: loaded.serve(X)[OUTPUT_NAME].numpy()


def _litert_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner()
    # the signature runner resizes its input to each batch
    return lambda X: runner(**{INPUT_NAME: X})[OUTPUT_NAME]


#: For each format, what opens an exported model: ``RUNNERS[fmt](path)``
#: returns a function from input pixels to probabilities.
RUNNERS = {
    "onnx": _onnx_runner,
    "tf_saved_model": _saved_model_runner,
    "litert": _litert_runner,
}


class ExportedModel:
    """An exported model, run with its own runtime, read with its sidecar.

    For checks and benchmarks in Python; elsewhere use the runtime directly
    (``docs/export.rst``). Open one with :func:`load_exported`.

    Parameters
    ----------
    path : str or path-like
        The exported file or SavedModel folder.
    format : {'onnx', 'tf_saved_model', 'litert'}
        Its format.
    classes : array-like of shape (n_classes,)
        The labels of the output's columns.
    input_dtype : str, default='uint8'
        The dtype of the input, e.g. 'uint8'.
    input_shape : tuple, default=(None, 784)
        The shape of the input, ``None`` for the batch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels of the output's columns.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        format: str,
        classes: Sequence,
        input_dtype: str = "uint8",
        input_shape: tuple = (None, 784),
    ) -> None:
        check_format(format)
        self.path = Path(path)
        self.format = format
        self.classes_ = np.asarray(classes)
        self.input_dtype = np.dtype(input_dtype)
        self.input_shape = tuple(input_shape)
        self._run = RUNNERS[format](self.path)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities computed by the exported model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or (n_samples, h, w)
            Pixels as the exported input takes them; reshaped and cast to
            its shape and dtype (a cast that changes values is refused).

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Float32 probabilities in the order of ``classes_``.
        """
        return np.asarray(self._run(as_input(X, self.input_shape, self.input_dtype)))

    def predict(self, X) -> np.ndarray:
        """Most likely class of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or (n_samples, h, w)
            Pixels, as for :meth:`predict_proba`.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def load_exported(path: str | os.PathLike) -> ExportedModel:
    """Open a model written by :func:`export_model`, as its sidecar describes it.

    Parameters
    ----------
    path : str or path-like
        The exported file or folder; ``<path>.json`` must be beside it.

    Returns
    -------
    ExportedModel
        Runs the model with its own runtime (onnxruntime, TensorFlow, LiteRT).
    """
    meta = json.loads(sidecar_path(path).read_text())
    classes = meta["classes"]
    return ExportedModel(
        path,
        meta["format"],
        classes,
        input_dtype=meta["input"]["dtype"],
        input_shape=tuple(meta["input"]["shape"]),
    )
