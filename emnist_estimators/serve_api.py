"""The draw-and-predict server's JSON API: request bodies to pixels, answers.

What ``POST /predict`` and ``GET /info`` of :mod:`emnist_estimators.serve`
mean, apart from HTTP: the body's JSON validated and turned into one
EMNIST-style row (a picture through :func:`~emnist_estimators.images.to_emnist`,
like ``predict``'s picture files), and :class:`Predictor`, the fitted model
called one request at a time. Nothing here imports the HTTP stack (the
``serve`` extra) or TensorFlow.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import threading
from http import HTTPStatus
from importlib import resources

import numpy as np

from .exceptions import DataFormatError, EmnistEstimatorsError
from .images import PictureTooLarge, grey_levels, is_blank, to_emnist

__all__ = [
    "DEFAULT_TOP",
    "IMAGE_FORMATS",
    "MAX_BODY_BYTES",
    "MAX_UPLOAD_PIXELS",
    "N_PIXELS",
    "Predictor",
    "RequestError",
    "body_length",
    "declared_length",
    "decode_image",
    "parse_request",
]

#: Largest request body, in bytes (1 MiB), checked against ``Content-Length``
#: before anything is read. The page's 280x280 canvas is about 10-30 KB as a
#: base64 PNG; a 784-value pixel array under 5 KB.
MAX_BODY_BYTES = 1 << 20

#: Largest picture :func:`decode_image` decodes: 4 megapixels (2000x2000),
#: checked in the file's header before any pixel is decoded. A small PNG can
#: claim a huge canvas; ``predict``'s cap for files on disk
#: (:data:`~emnist_estimators.images.MAX_IMAGE_PIXELS`, 25 megapixels) would let
#: each request of a network client take about 500 MB.
MAX_UPLOAD_PIXELS = 4_000_000

#: Picture formats :func:`decode_image` opens. Pillow can open more, some
#: through outside programs (EPS through Ghostscript): none of those for data
#: from the network.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")

DEFAULT_TOP = 5
N_PIXELS = 28 * 28
PAGE = "serve_page.html"


class RequestError(EmnistEstimatorsError, ValueError):
    """A request the server refuses: answered with ``status`` and the message.

    Parameters
    ----------
    status : http.HTTPStatus
        The answer's status.
    message : str
        The one-line reason, answered as ``{"error": message}``.
    headers : iterable of (str, str), default=()
        Extra headers of the answer (``Allow`` for a 405).
    """

    def __init__(self, status: HTTPStatus, message: str, headers=()):
        super().__init__(message)
        self.status = status
        self.headers = tuple(headers)


def _bad(message: str) -> RequestError:
    return RequestError(HTTPStatus.BAD_REQUEST, message)


# --- request bodies to pixels ----------------------------------------------------
def decode_image(data: bytes) -> np.ndarray:
    """Decode a picture file's bytes as a float grey array in [0, 255].

    The same decoding as :func:`~emnist_estimators.images.read_image` gives
    files on disk - transparent pixels composited on white like a page, then
    grey - with a smaller size cap and only the usual picture formats, since
    the bytes come from the network.

    Parameters
    ----------
    data : bytes
        The content of a PNG, JPEG, BMP, GIF or WebP file.

    Returns
    -------
    ndarray of shape (height, width), float32
        The grey levels, 0 black to 255 white.

    Raises
    ------
    DataFormatError
        If ``data`` is not a picture in one of :data:`IMAGE_FORMATS`, or its
        header claims more than :data:`MAX_UPLOAD_PIXELS` pixels (checked
        before decoding).

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> from emnist_estimators.serve import decode_image
    >>> buf = io.BytesIO()
    >>> Image.new("L", (40, 30), 255).save(buf, format="PNG")
    >>> decode_image(buf.getvalue()).shape
    (30, 40)
    """
    from PIL import Image, UnidentifiedImageError

    try:
        return grey_levels(
            io.BytesIO(data), max_pixels=MAX_UPLOAD_PIXELS, formats=IMAGE_FORMATS
        )
    except PictureTooLarge as exc:
        raise DataFormatError(
            f"The picture is {exc.width}x{exc.height} pixels, more than the "
            f"{MAX_UPLOAD_PIXELS:,} this server decodes; crop or shrink "
            "it to the character first."
        ) from exc
    except Image.DecompressionBombError as exc:  # Pillow's own, larger cap
        raise DataFormatError(
            f"The picture is over the {MAX_UPLOAD_PIXELS:,} pixels this server "
            f"decodes ({exc}); crop or shrink it to the character first."
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataFormatError(
            f"The upload is not a PNG, JPEG, BMP, GIF or WebP picture ({reason})."
        ) from exc


def _image_pixels(value) -> np.ndarray:
    """The ``image`` field (base64 or a data: URL) as one EMNIST-style row."""
    if not isinstance(value, str) or not value:
        raise _bad("'image' must be a non-empty base64 string (or a data: URL).")
    if value.startswith("data:"):
        header, _, value = value.partition(",")
        if not header.endswith(";base64"):
            raise _bad("'image' is a data: URL without ';base64'.")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad(f"'image' is not valid base64 ({exc}).") from exc
    try:
        grey = decode_image(data)
    except DataFormatError as exc:
        raise _bad(str(exc)) from exc
    if min(grey.shape) < 2:
        raise _bad(f"'image' is {grey.shape[1]}x{grey.shape[0]} pixels; too small.")
    return to_emnist(grey).reshape(1, N_PIXELS)


def _array_pixels(value) -> np.ndarray:
    """The ``pixels`` field (784 numbers, flat or 28x28) as one row."""
    if not isinstance(value, list):
        raise _bad("'pixels' must be a list of 784 numbers or 28 lists of 28.")
    if len(value) == 28 and all(isinstance(row, list) for row in value):
        if any(len(row) != 28 for row in value):
            lengths = sorted({len(row) for row in value})
            raise _bad(f"'pixels' rows must hold 28 values each, got {lengths}.")
        value = [v for row in value for v in row]
    if len(value) != N_PIXELS:
        raise _bad(
            f"'pixels' has {len(value)} values; give {N_PIXELS} (28x28), flat or "
            "as 28 rows of 28."
        )
    # bool is an int in Python: true/false are not grey levels
    wrong = [v for v in value if type(v) not in (int, float)]
    if wrong:
        raise _bad(f"'pixels' must hold numbers 0..255, found {json.dumps(wrong[0])}.")
    try:
        X = np.asarray(value, dtype=np.float64)
    except OverflowError as exc:  # an integer beyond float range
        raise _bad("'pixels' must lie in 0..255, got a huge number.") from exc
    lo, hi = float(X.min()), float(X.max())
    if lo < 0 or hi > 255:
        raise _bad(f"'pixels' must lie in 0..255, got values from {lo:g} to {hi:g}.")
    # Whole numbers as uint8, like an EMNIST image: the model then reads them
    # as raw pixels even if all are small (a faint stroke).
    dtype = np.uint8 if np.all(X == np.rint(X)) else np.float32
    return X.astype(dtype).reshape(1, N_PIXELS)


def _request_pixels(body, n_classes: int) -> tuple[np.ndarray, int]:
    """Validate a decoded JSON body; return the row to classify and ``top``."""
    if not isinstance(body, dict):
        raise _bad('The body must be a JSON object such as {"pixels": [...]}.')
    unknown = sorted(set(body) - {"image", "pixels", "top"})
    if unknown:
        raise _bad(f"Unknown field(s) {unknown}; use 'image' or 'pixels', and 'top'.")
    top = body.get("top", min(DEFAULT_TOP, n_classes))
    if type(top) is not int or not 1 <= top <= n_classes:
        raise _bad(f"'top' must be a whole number 1..{n_classes}, got {top!r}.")
    if ("image" in body) == ("pixels" in body):
        raise _bad("Give exactly one of 'image' (base64 picture) or 'pixels'.")
    if "image" in body:
        return _image_pixels(body["image"]), top
    return _array_pixels(body["pixels"]), top


def _reject_constant(name: str):
    raise _bad(f"The body is not valid JSON: {name} is not a number in JSON.")


def declared_length(headers) -> int:
    """The ``Content-Length`` a request's headers announce; -1 if none or bad.

    Parameters
    ----------
    headers : mapping
        The request's headers, lower-case names.

    Returns
    -------
    int
        The byte count, or -1.
    """
    try:
        return int(headers.get("content-length", "-1"))
    except ValueError:
        return -1


def body_length(headers) -> int:
    """The body's announced length, after the checks made before reading it.

    Parameters
    ----------
    headers : mapping
        The request's headers, lower-case names.

    Returns
    -------
    int
        The ``Content-Length``, at most :data:`MAX_BODY_BYTES`.

    Raises
    ------
    RequestError
        415 for a body that is not JSON, 411 without ``Content-Length``, 400
        for one that is not a number, 413 over :data:`MAX_BODY_BYTES`.
    """
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise RequestError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "Send the body as JSON with 'Content-Type: application/json'.",
        )
    length = headers.get("content-length")
    if length is None:
        raise RequestError(
            HTTPStatus.LENGTH_REQUIRED,
            "A Content-Length header is required (chunked bodies are not read).",
        )
    n_bytes = declared_length(headers)
    if n_bytes < 0:
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f"Content-Length {length!r} is not a byte count."
        )
    if n_bytes > MAX_BODY_BYTES:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"The body is {n_bytes:,} bytes, over the {MAX_BODY_BYTES:,}-byte "
            "cap; send 784 pixels or a smaller picture.",
        )
    return n_bytes


def parse_request(data: bytes, n_classes: int) -> tuple[np.ndarray, int]:
    """Parse and validate a ``POST /predict`` body.

    Parameters
    ----------
    data : bytes
        The body, JSON.
    n_classes : int
        The model's number of classes (the largest ``top``).

    Returns
    -------
    X : ndarray of shape (1, 784)
        The row to classify, 0..255.
    top : int
        Classes to return.

    Raises
    ------
    RequestError
        A 400 with the reason, if the body is not valid JSON or its fields are
        wrong.

    Examples
    --------
    >>> from emnist_estimators.serve_api import parse_request
    >>> X, top = parse_request(b'{"pixels": [' + b"0," * 783 + b'255]}', 10)
    >>> X.shape, int(X.max()), top
    ((1, 784), 255, 5)
    """
    try:
        body = json.loads(data, parse_constant=_reject_constant)
    except RequestError:
        raise
    except (ValueError, RecursionError) as exc:  # RecursionError: [[[[...
        raise _bad(f"The body is not valid JSON ({exc}).") from exc
    return _request_pixels(body, n_classes)


class Predictor:
    """A fitted model behind the JSON API: ``GET /info`` and ``POST /predict``.

    Parameters
    ----------
    model : fitted EmnistMLP or EmnistCNN
        Any fitted classifier with ``predict_proba`` and ``classes_`` that
        takes 784 pixels per image.

    Attributes
    ----------
    model : estimator
        The model.
    classes : list of str
        Its classes, as the answers name them.
    page : bytes
        The draw-and-predict page (``serve_page.html``).
    """

    def __init__(self, model):
        self.model = model
        self.classes = [str(c) for c in model.classes_]
        self.page = resources.files(__package__).joinpath(PAGE).read_bytes()
        self._lock = threading.Lock()  # Keras predict is not promised thread-safe

    def info(self) -> dict:
        """Describe the model and the request limits, as ``GET /info`` answers.

        Returns
        -------
        dict
            ``model`` (class name), ``classes``, the default ``top`` and the
            caps ``max_body_bytes`` and ``max_upload_pixels``.
        """
        return {
            "model": type(self.model).__name__,
            "classes": self.classes,
            "top": min(DEFAULT_TOP, len(self.classes)),
            "max_body_bytes": MAX_BODY_BYTES,
            "max_upload_pixels": MAX_UPLOAD_PIXELS,
        }

    def predict(self, X: np.ndarray, top: int = DEFAULT_TOP) -> dict:
        """Classify one EMNIST-style row; the answer of ``POST /predict``.

        Parameters
        ----------
        X : ndarray of shape (1, 784)
            Pixels 0..255.
        top : int, default=5
            Classes to return, most likely first.

        Returns
        -------
        dict
            ``prediction``, ``blank``, ``top`` and ``pixels`` (see
            :mod:`emnist_estimators.serve`).
        """
        with self._lock:
            proba = self.model.predict_proba(X)[0]
        order = np.argsort(-proba, kind="stable")[:top]
        return {
            "prediction": self.classes[order[0]],
            "blank": bool(is_blank(X)[0]),
            "top": [
                {"class": self.classes[j], "probability": float(proba[j])}
                for j in order
            ],
            "pixels": X[0].tolist(),
        }

    def answer(self, data: bytes) -> dict:
        """The answer to one ``POST /predict`` body: parse, convert, classify.

        Parameters
        ----------
        data : bytes
            The request's body, JSON.

        Returns
        -------
        dict
            As :meth:`predict`.

        Raises
        ------
        RequestError
            A 400 with the reason, for a body the API refuses.
        """
        X, top = parse_request(data, len(self.classes))
        try:
            return self.predict(X, top)
        except DataFormatError as exc:  # e.g. pixels scaled unlike the training
            raise _bad(str(exc)) from exc
