"""A local draw-and-predict web page, and a JSON endpoint, for a fitted model.

``emnist-estimators serve MODEL`` (or :func:`serve`) starts it. Three paths:

``GET /``
    The page (``serve_page.html``, shipped with the package): a canvas to draw
    one character on with a mouse, pen or finger, and the model's top 5
    classes with their probabilities, updated while drawing.
``GET /info``
    JSON: the model's class name, its classes, and the request limits.
``POST /predict``
    JSON in, JSON out (``Content-Type: application/json``). The body is an
    object with exactly one of

    - ``"image"``: a picture file (PNG, JPEG, BMP, GIF or WebP) in base64,
      optionally as a ``data:`` URL - the page sends its canvas this way;
    - ``"pixels"``: 784 numbers 0..255, flat or as 28 rows of 28, already in
      EMNIST's format (white character on black, upright, centred);

    and optionally ``"top"`` (classes to return, default 5). The answer holds
    ``prediction``, ``top`` (``class``, ``probability``; most likely first),
    ``blank`` (the picture holds no character, so the label is a forced guess)
    and ``pixels``, the 28x28 grey image the model was given.

A picture goes through the same conversion as ``emnist-estimators predict``
gives picture files (:func:`~emnist_estimators.images.to_emnist`: grey,
inverted if dark ink on light paper, cropped to the character, centred in a
square with a 2-pixel margin, resized to 28x28, stretched to 0..255), so the
page, a program posting a PNG, and ``predict my_letter.png`` give one answer
for one picture. Pixel arrays are used as they are, like ``predict``'s
``.npy`` and ``.csv`` rows. The probabilities are the estimator's
``predict_proba`` on that one row: its direct path for small batches, one
model call at a time (Keras does not promise that ``predict`` is safe to call
from several threads at once).

Bad requests get a 4xx answer with a one-line JSON reason,
``{"error": "..."}``, and the server keeps serving: a body without
``Content-Length`` (411), over :data:`MAX_BODY_BYTES` (413, refused from the
header before any of it is read), not JSON (415 for another content type, 400
for a body that does not parse), missing or unknown fields, the wrong number
of pixels, values outside 0..255, a picture that does not decode or whose
header claims more than :data:`MAX_UPLOAD_PIXELS` pixels (400), an unknown
path (404) or method (405).

Why the standard library (:class:`http.server.ThreadingHTTPServer`): this
serves one page and one JSON endpoint to the person at this machine. A web
framework (Flask, FastAPI with uvicorn) would add a runtime dependency, and
its release cadence, to every install of a classifier package for three
routes; the limits that matter here - the body size before reading, the
picture size before decoding, a socket timeout for stalled clients - are a few
lines either way. ``http.server`` has no TLS and is not hardened for the open
internet, which is why the server listens on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import socket
import socketserver
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from os import PathLike
from urllib.parse import urlsplit

import numpy as np

from .exceptions import DataFormatError, EmnistEstimatorsError
from .images import PictureTooLarge, grey_levels, is_blank, to_emnist

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_UPLOAD_PIXELS",
    "PredictServer",
    "ServeError",
    "decode_image",
    "make_server",
    "serve",
]

log = logging.getLogger(__name__)

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

# After an error answer to a body that was not read, up to this much of it is
# read and thrown away (never stored), so that a client still sending gets the
# answer rather than a reset connection.
_DISCARD_BYTES = 16 << 20

_ROUTES = {
    "/": ("GET", "HEAD"),
    "/index.html": ("GET", "HEAD"),
    "/info": ("GET", "HEAD"),
    "/predict": ("POST",),
}

# The page holds its script and style inline and loads nothing else: the
# browser is told to refuse anything from elsewhere.
_PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


class ServeError(EmnistEstimatorsError, OSError):
    """The server cannot listen on the address it was given."""


class _RequestError(EmnistEstimatorsError, ValueError):
    """A request the server refuses: answered with ``status`` and the message."""

    def __init__(self, status: HTTPStatus, message: str, headers=()):
        super().__init__(message)
        self.status = status
        self.headers = tuple(headers)


def _bad(message: str) -> _RequestError:
    return _RequestError(HTTPStatus.BAD_REQUEST, message)


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


# --- HTTP ------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    server: PredictServer
    server_version = "emnist-estimators"
    sys_version = ""
    # Seconds a client may stall mid-request before its thread is freed.
    timeout = 10

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def _dispatch(self) -> None:
        self._body_read = False
        try:
            path = urlsplit(self.path).path
            methods = _ROUTES.get(path)
            if methods is None:
                raise _RequestError(
                    HTTPStatus.NOT_FOUND,
                    f"No page at {path}; the page is / and the endpoint POST /predict.",
                )
            if self.command not in methods:
                raise _RequestError(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    f"{self.command} is not allowed on {path}; use "
                    f"{' or '.join(methods)}.",
                    [("Allow", ", ".join(methods))],
                )
            if path == "/predict":
                self._send_json(HTTPStatus.OK, self._predict())
            elif path == "/info":
                self._send_json(HTTPStatus.OK, self.server.info())
            else:
                self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        except _RequestError as exc:
            self._refuse(exc.status, str(exc), exc.headers)
        except Exception as exc:  # noqa: BLE001 - one request fails, not the server
            log.exception("request %s %s failed", self.command, self.path)
            reason = str(exc).splitlines()[0] if str(exc) else ""
            self._refuse(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                f"The model failed on this request: {type(exc).__name__}: {reason}",
            )

    def _predict(self) -> dict:
        body = self._read_json()
        X, top = _request_pixels(body, len(self.server.classes))
        try:
            return self.server.predict(X, top)
        except DataFormatError as exc:  # e.g. pixels scaled unlike the training
            raise _bad(str(exc)) from exc

    def _read_json(self):
        if self.headers.get_content_type() != "application/json":
            raise _RequestError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "Send the body as JSON with 'Content-Type: application/json'.",
            )
        length = self.headers.get("Content-Length")
        if length is None:
            raise _RequestError(
                HTTPStatus.LENGTH_REQUIRED,
                "A Content-Length header is required (chunked bodies are not read).",
            )
        try:
            n_bytes = int(length)
        except ValueError:
            n_bytes = -1
        if n_bytes < 0:
            raise _bad(f"Content-Length {length!r} is not a byte count.")
        if n_bytes > MAX_BODY_BYTES:
            raise _RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"The body is {n_bytes:,} bytes, over the {MAX_BODY_BYTES:,}-byte "
                "cap; send 784 pixels or a smaller picture.",
            )
        data = self.rfile.read(n_bytes)
        self._body_read = True
        if len(data) < n_bytes:
            raise _bad(f"The body ended after {len(data)} of {n_bytes} bytes.")
        try:
            return json.loads(data, parse_constant=_reject_constant)
        except _RequestError:
            raise
        except (ValueError, RecursionError) as exc:  # RecursionError: [[[[...
            raise _bad(f"The body is not valid JSON ({exc}).") from exc

    def send_error(self, code, message=None, explain=None):
        """Answer in JSON, also for errors http.server raises itself."""
        headers = ()
        if code == HTTPStatus.NOT_IMPLEMENTED:  # an unknown method, e.g. PUT
            code = HTTPStatus.METHOD_NOT_ALLOWED
            message = f"{self.command} is not allowed; use GET / or POST /predict."
            methods = _ROUTES.get(urlsplit(self.path).path, ("GET", "HEAD", "POST"))
            headers = [("Allow", ", ".join(methods))]
        self._refuse(HTTPStatus(code), message or HTTPStatus(code).phrase, headers)

    def _refuse(self, status: HTTPStatus, reason: str, headers=()) -> None:
        self.close_connection = True
        self._send_json(status, {"error": " ".join(reason.split())}, headers)
        if not getattr(self, "_body_read", True):
            self._discard_body()

    def _discard_body(self) -> None:
        try:
            left = min(int(self.headers.get("Content-Length", 0)), _DISCARD_BYTES)
            self.connection.settimeout(1.0)
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
        except (OSError, ValueError, AttributeError):
            pass  # the answer is sent; the connection closes either way

    def _send_json(self, status: HTTPStatus, payload: dict, headers=()) -> None:
        data = json.dumps(payload).encode()
        self._send(status, data, "application/json", headers)

    def _send(self, status, data: bytes, content_type: str, headers=()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", _PAGE_POLICY)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        # One line per request at debug level: the CLI stays quiet unless -v.
        log.debug("%s %s", self.address_string(), format % args)


class PredictServer(ThreadingHTTPServer):
    """The draw-and-predict HTTP server for one fitted model.

    Use :func:`make_server` to create one; ``serve_forever()`` runs it.

    Parameters
    ----------
    model : fitted EmnistMLP or EmnistCNN
        Any fitted classifier with ``predict_proba`` and ``classes_`` that
        takes 784 pixels per image.
    host : str, default="127.0.0.1"
        Address to listen on.
    port : int, default=0
        TCP port; 0 picks a free one (see :attr:`url`).

    Attributes
    ----------
    url : str
        The address of the page, with the port actually bound.
    """

    daemon_threads = True

    def __init__(self, model, host: str = "127.0.0.1", port: int = 0):
        self.model = model
        self.classes = [str(c) for c in model.classes_]
        self.page = resources.files(__package__).joinpath(PAGE).read_bytes()
        self._lock = threading.Lock()  # Keras predict is not promised thread-safe
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:  # numpydoc ignore=GL08
        # HTTPServer.server_bind looks the host up with socket.getfqdn, a
        # reverse DNS query that can take seconds where DNS is unreachable.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def url(self) -> str:  # numpydoc ignore=RT01
        """The page's address, e.g. ``http://127.0.0.1:8000/``."""
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

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
            ``prediction``, ``blank``, ``top`` and ``pixels`` (see the module
            docstring).
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


def make_server(model, host: str = "127.0.0.1", port: int = 0) -> PredictServer:
    """Create the draw-and-predict server for a model, listening but not serving.

    The model is called once on a blank image first, so that the first
    person to draw does not wait for TensorFlow to build its predict function.

    Parameters
    ----------
    model : fitted EmnistMLP or EmnistCNN, or str or path-like
        The estimator, or a ``.keras`` file written by its ``save`` (loaded
        with :func:`~emnist_estimators.load_model`).
    host : str, default="127.0.0.1"
        Address to listen on. The default is this machine only; "0.0.0.0"
        lets any machine that can reach this one use the model.
    port : int, default=0
        TCP port; 0 picks a free one (read it from ``server.url``).

    Returns
    -------
    server : PredictServer
        Call ``server.serve_forever()`` (in a thread, or see :func:`serve`),
        then ``server.shutdown()`` and ``server.server_close()``.

    Raises
    ------
    DataFormatError
        If the model does not take 28x28 = 784 pixels per image.
    ServeError
        If the address cannot be listened on (port taken, unknown host).

    Examples
    --------
    >>> import threading, urllib.request
    >>> from emnist_estimators.serve import make_server
    >>> server = make_server("runs/cnn/model.keras")  # doctest: +SKIP
    >>> threading.Thread(target=server.serve_forever, daemon=True).start()
    ... # doctest: +SKIP
    >>> urllib.request.urlopen(server.url + "info").status  # doctest: +SKIP
    200
    >>> server.shutdown(); server.server_close()  # doctest: +SKIP
    """
    if isinstance(model, (str, PathLike)):
        from .estimators import load_model

        model = load_model(model)
    n_features = getattr(model, "n_features_in_", N_PIXELS)
    if n_features != N_PIXELS:
        raise DataFormatError(
            f"This {type(model).__name__} takes {n_features} pixels per image; "
            f"the page draws 28x28 = {N_PIXELS}. Serve a model trained on "
            "28x28 images."
        )
    model.predict_proba(np.zeros((1, N_PIXELS), np.uint8))  # warm up
    try:
        return PredictServer(model, host, port)
    except (OSError, OverflowError) as exc:
        raise ServeError(
            f"Cannot listen on {host}:{port} ({exc}). Use --port 0 for any free "
            "port, or another port; --host must be an address of this machine."
        ) from exc


def serve(model, host: str = "127.0.0.1", port: int = 8000, *, out=None) -> None:
    """Serve the draw-and-predict page until Ctrl+C.

    Prints the page's address (one line) to ``out``; logs a warning when the
    address is not a loopback one.

    Parameters
    ----------
    model : fitted EmnistMLP or EmnistCNN, or str or path-like
        The estimator, or a ``.keras`` file written by its ``save``.
    host : str, default="127.0.0.1"
        Address to listen on; the default is this machine only.
    port : int, default=8000
        TCP port; 0 picks a free one.
    out : file-like, default=None
        Where the address goes; ``sys.stdout`` if None.

    Returns
    -------
    None
        After Ctrl+C (or ``shutdown()`` from another thread).

    Examples
    --------
    >>> from emnist_estimators.serve import serve
    >>> serve("runs/cnn/model.keras", port=0)  # doctest: +SKIP
    Draw and predict at http://127.0.0.1:39521/ (EmnistCNN, 47 classes); ...
    """
    server = make_server(model, host, port)
    host_bound = server.server_address[0]
    if not (host_bound.startswith("127.") or host_bound == "::1"):
        log.warning(
            "Listening on %s: any machine that can reach this one can use the "
            "model. Use --host 127.0.0.1 to keep it to this machine.",
            host_bound,
        )
    print(
        f"Draw and predict at {server.url} ({type(server.model).__name__}, "
        f"{len(server.classes)} classes); POST JSON to {server.url}predict. "
        "Ctrl+C stops.",
        file=out or sys.stdout,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
