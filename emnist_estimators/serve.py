"""A local draw-and-predict web page, and a JSON endpoint, for a fitted model.

``emnist-estimators serve MODEL`` (or :func:`serve`) starts it;
:func:`create_app` gives the ASGI application for any ASGI server.

How it works and why: the design notes in the docs (``docs/design.rst``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import socket
import sys
import threading
from http import HTTPStatus
from os import PathLike

import numpy as np

from .exceptions import DataFormatError, EmnistEstimatorsError
from .serve_api import (
    MAX_BODY_BYTES,
    MAX_UPLOAD_PIXELS,
    N_PIXELS,
    Predictor,
    RequestError,
    body_length,
    declared_length,
    decode_image,
)

__all__ = [
    "HEADER_TIMEOUT",
    "BODY_TIMEOUT",
    "LOCAL_HOSTS",
    "MAX_CONCURRENT_REQUESTS",
    "MAX_BODY_BYTES",
    "MAX_UPLOAD_PIXELS",
    "PredictServer",
    "ServeError",
    "create_app",
    "decode_image",
    "make_server",
    "require_http_stack",
    "serve",
]

log = logging.getLogger(__name__)

#: Requests handled at once; one more gets 503 at once (with ``Retry-After``)
#: rather than a place in an unbounded queue. Their bodies (at most
#: :data:`MAX_BODY_BYTES` each) are what the cap bounds; the pictures are
#: decoded and classified by :data:`WORKERS` threads, one model call at a time.
MAX_CONCURRENT_REQUESTS = 256

#: Threads that parse, decode and classify request bodies: a 2000x2000
#: picture takes about 100 MB while it is converted, so memory stays bounded
#: however many arrive at once.
WORKERS = 2

#: Open connections the server keeps; beyond it requests get 503.
MAX_CONNECTIONS = 1024

#: Seconds a client has to send a request's headers (408 after that).
HEADER_TIMEOUT = 10.0

#: Seconds a client has to send a request's whole body (408 after that).
BODY_TIMEOUT = 10.0

#: Pending connections the kernel queues before the server accepts them.
BACKLOG = 1024

#: Host names every server answers to: this machine's loopback names.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

_INSTALL = 'pip install "emnist-estimators[serve]"'

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
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class ServeError(EmnistEstimatorsError, OSError):
    """The server cannot listen on the address it was given."""


def require_http_stack():
    """Import the ``serve`` extra (Starlette, uvicorn), or say how to install it.

    Returns
    -------
    tuple of modules
        ``(starlette.applications, uvicorn)``.

    Raises
    ------
    ImportError
        If Starlette or uvicorn is not installed, naming the extra.
    """
    try:
        import starlette.applications
        import uvicorn
    except ImportError as exc:
        raise ImportError(
            f"Serving a model needs Starlette and uvicorn ({exc.name} is not "
            f"installed): {_INSTALL}"
        ) from exc
    return starlette.applications, uvicorn


def _hostname(value: str) -> str:
    """The host part of a ``Host`` header or an origin's netloc, lower case."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.rsplit(":", 1)[0]
    return value.rstrip(".")


def _json_response(status: int, payload: dict, headers=None):
    from starlette.responses import Response

    return Response(
        json.dumps(payload).encode(),
        status_code=status,
        media_type="application/json",
        headers={**_HEADERS, **(headers or {})},
    )


def _refusal(status: int, reason: str, headers=None):
    return _json_response(status, {"error": " ".join(reason.split())}, headers)


class _Guard:
    """ASGI middleware: the Host allow-list, the Origin check, the request cap."""

    def __init__(self, app, allowed_hosts, max_concurrent: int):
        self.app = app
        self.allowed = {_hostname(h) for h in allowed_hosts}
        self.max_concurrent = max_concurrent
        self.active = 0  # changed only in the event loop's thread

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self._refusal(scope)
        if refusal is None and self.active >= self.max_concurrent:
            refusal = _refusal(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"The server is answering {self.max_concurrent} requests "
                "already; try again in a moment.",
                {"Retry-After": "1", "Connection": "close"},
            )
        if refusal is not None:
            return await refusal(scope, receive, send)
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1

    def _refusal(self, scope):
        """A 400 for a Host not allowed, a 403 for a POST from another site."""
        headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
        }
        host = headers.get("host")
        # No Host: an HTTP/1.0 client, never a browser (browsers always send it).
        if host is not None and not self._allows(_hostname(host)):
            return _refusal(
                HTTPStatus.BAD_REQUEST,
                f"This server does not answer to the host {host!r}; it answers to "
                f"{sorted(self.allowed)}. Start it with --allow-host "
                f"{_hostname(host) or 'NAME'} (or create_app(allowed_hosts=...)) "
                "to add it.",
                {"Connection": "close"},
            )
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD") and origin is not None:
            match = re.fullmatch(r"https?://([^/]+)", origin.strip(), re.IGNORECASE)
            if match is None or not self._allows(_hostname(match.group(1))):
                return _refusal(
                    HTTPStatus.FORBIDDEN,
                    f"A page from {origin!r} may not post to this server; "
                    "only its own page and programs (no Origin header) may.",
                    {"Connection": "close"},
                )
        return None

    def _allows(self, hostname: str) -> bool:
        return "*" in self.allowed or hostname in self.allowed


async def _drain(receive, n_bytes: int) -> None:
    """Read and drop an unread body, so that a client still sending gets the
    answer rather than a reset connection: up to 16 MB, 1 s per chunk."""
    import anyio

    left = n_bytes if 0 <= n_bytes <= _DISCARD_BYTES else 0
    while left > 0:
        with anyio.move_on_after(1.0) as scope:
            message = await receive()
        if scope.cancelled_caught or message["type"] != "http.request":
            return
        left -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _read_body(receive, n_bytes: int, timeout: float) -> bytes | None:
    """The body, at most ``n_bytes``; None if the client went away.

    Raises TimeoutError if the whole body takes longer than ``timeout``.
    """
    import anyio

    chunks, size = [], 0
    with anyio.fail_after(timeout):
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > n_bytes:  # more than announced: h11 refuses this first
                raise RequestError(HTTPStatus.BAD_REQUEST, "The body is too long.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def create_app(
    model,
    *,
    allowed_hosts=LOCAL_HOSTS,
    max_concurrent_requests: int = MAX_CONCURRENT_REQUESTS,
    body_timeout: float = BODY_TIMEOUT,
    workers: int = WORKERS,
):
    """The draw-and-predict page and JSON API as an ASGI application.

    Run it with any ASGI server - several processes included - when one
    process is not enough; :func:`make_server` runs it with uvicorn.

    Parameters
    ----------
    model : fitted EmnistMLP or EmnistCNN, or str or path-like
        The estimator, or a ``.keras`` file written by its ``save``.
    allowed_hosts : iterable of str, default=LOCAL_HOSTS
        Host names (or addresses) the ``Host`` header may name, and a
        ``POST``'s ``Origin``; ``"*"`` allows any. Guards against DNS
        rebinding: another site's page reaching this server by a name it
        controls.
    max_concurrent_requests : int, default=256
        Requests handled at once; one more gets 503.
    body_timeout : float, default=10.0
        Seconds a client has to send a request's whole body (408 after).
    workers : int, default=2
        Threads that parse, decode and classify bodies (each picture takes
        up to about 100 MB while it is converted).

    Returns
    -------
    starlette.applications.Starlette
        The application.

    Raises
    ------
    ImportError
        Without Starlette (the ``serve`` extra).
    DataFormatError
        If the model does not take 28x28 = 784 pixels per image.

    Examples
    --------
    A file ``app.py`` for ``uvicorn app:app --workers 4 --host 0.0.0.0``:

    >>> from emnist_estimators.serve import create_app
    >>> app = create_app(
    ...     "runs/cnn/model.keras", allowed_hosts=["digits.example.org"]
    ... )  # doctest: +SKIP
    """
    applications, _ = require_http_stack()
    import anyio.to_thread
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response
    from starlette.routing import Route

    predictor = model if isinstance(model, Predictor) else Predictor(_load(model))
    limiter = anyio.CapacityLimiter(workers)

    async def page(request):  # numpydoc ignore=GL08
        return Response(
            predictor.page,
            media_type="text/html; charset=utf-8",
            headers={**_HEADERS, "Content-Security-Policy": _PAGE_POLICY},
        )

    async def info(request):  # numpydoc ignore=GL08
        return _json_response(200, predictor.info())

    async def predict(request):  # numpydoc ignore=GL08
        n_bytes = -1
        try:
            n_bytes = body_length(request.headers)
            data = await _read_body(request.receive, n_bytes, body_timeout)
            if data is None:  # the client went away: no one to answer
                return Response(status_code=HTTPStatus.NO_CONTENT)
            answer = await anyio.to_thread.run_sync(
                predictor.answer, data, limiter=limiter
            )
            return _json_response(200, answer)
        except RequestError as exc:
            if n_bytes < 0 or exc.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
                await _drain(request.receive, declared_length(request.headers))
            return _refusal(
                exc.status, str(exc), {**dict(exc.headers), "Connection": "close"}
            )
        except TimeoutError:
            return _refusal(
                HTTPStatus.REQUEST_TIMEOUT,
                f"The body took longer than {body_timeout:g} s to arrive.",
                {"Connection": "close"},
            )
        except ClientDisconnect:
            return Response(status_code=HTTPStatus.NO_CONTENT)
        except Exception as exc:  # noqa: BLE001 - one request fails, not the server
            log.exception("POST /predict failed")
            reason = str(exc).splitlines()[0] if str(exc) else ""
            return _refusal(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                f"The model failed on this request: {type(exc).__name__}: {reason}",
            )

    async def refused(request, exc):  # numpydoc ignore=GL08
        path, method = request.url.path, request.method
        if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
            methods = _ROUTES[path]
            return _refusal(
                405,
                f"{method} is not allowed on {path}; use {' or '.join(methods)}.",
                {"Allow": ", ".join(methods), "Connection": "close"},
            )
        if exc.status_code == HTTPStatus.NOT_FOUND:
            return _refusal(
                404,
                f"No page at {path}; the page is / and the endpoint POST /predict.",
                {"Connection": "close"},
            )
        return _refusal(exc.status_code, exc.detail or "", {"Connection": "close"})

    endpoints = {"/": page, "/index.html": page, "/info": info, "/predict": predict}
    routes = [
        Route(path, endpoints[path], methods=list(_ROUTES[path])) for path in _ROUTES
    ]
    app = applications.Starlette(
        routes=routes,
        middleware=[
            Middleware(
                _Guard,
                allowed_hosts=list(allowed_hosts),
                max_concurrent=max_concurrent_requests,
            )
        ],
        exception_handlers={HTTPException: refused},
    )
    app.state.predictor = predictor
    return app


def _load(model):
    """The estimator, loaded if a path, checked to take 28x28 pictures."""
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
    return model


@functools.cache
def _protocol(header_timeout: float):
    """uvicorn's HTTP/1.1 protocol (h11) with a header timeout and JSON 400s."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    def raw_answer(status: HTTPStatus, reason: str) -> bytes:
        body = json.dumps({"error": reason}).encode()
        return (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body

    class Protocol(H11Protocol):
        _timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc):
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data):
            super().data_received(data)
            if self.cycle is not None and not self.cycle.response_complete:
                self._disarm()  # the headers are in: the body has its own timeout

        def on_response_complete(self):
            super().on_response_complete()
            if self.cycle.response_complete and not self.transport.is_closing():
                self._arm()  # the next request's headers

        def eof_received(self):
            # A client that closes its side mid-body still gets the answer.
            if (
                self.conn.their_state is h11.SEND_BODY
                and self.conn.our_state is h11.SEND_RESPONSE
            ):
                self.conn.receive_data(b"")
                self.handle_events()

        def send_400_response(self, msg):
            # called in h11's except clause: say what was wrong, in JSON
            exc = sys.exc_info()[1]
            cut = re.search(r"received (\d+) bytes, expected (\d+)", str(exc))
            if cut:
                reason = f"The body ended after {cut[1]} of {cut[2]} bytes."
            else:
                reason = f"The request is not valid HTTP ({exc or msg})."
            self.transport.write(raw_answer(HTTPStatus.BAD_REQUEST, reason))
            self.transport.close()

        def _arm(self):
            self._disarm()
            self._timer = self.loop.call_later(header_timeout, self._too_slow)

        def _disarm(self):
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _too_slow(self):
            self._timer = None
            busy = self.cycle is not None and not self.cycle.response_complete
            if busy or self.transport.is_closing():
                return
            reason = f"The request's headers took longer than {header_timeout:g} s."
            self.transport.write(raw_answer(HTTPStatus.REQUEST_TIMEOUT, reason))
            self.transport.close()

    return Protocol


class PredictServer:
    """The draw-and-predict server for one fitted model: uvicorn, one process.

    Use :func:`make_server` to create one: it listens at once;
    ``serve_forever()`` answers until ``shutdown()`` (from another thread) or
    Ctrl+C; ``server_close()`` closes the socket.

    Parameters
    ----------
    predictor : Predictor
        The model behind the API.
    sock : socket.socket
        The listening socket.
    app : ASGI application
        :func:`create_app`'s application for ``predictor``.
    header_timeout : float
        Seconds a client has to send a request's headers.

    Attributes
    ----------
    url : str
        The address of the page, with the port actually bound.
    server_address : tuple
        The (host, port) listened on.
    """

    def __init__(self, predictor, sock, app, header_timeout: float):
        _, uvicorn = require_http_stack()
        self.predictor, self.socket, self.app = predictor, sock, app
        self.model, self.classes = predictor.model, predictor.classes
        self.server_address = sock.getsockname()
        config = uvicorn.Config(
            app,
            http=_protocol(header_timeout),
            loop="asyncio",
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            limit_concurrency=MAX_CONNECTIONS,
            backlog=BACKLOG,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=5,
        )
        self._uvicorn = uvicorn.Server(config)
        self._stopped = threading.Event()
        self._started = False

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
            See :meth:`emnist_estimators.serve_api.Predictor.info`.
        """
        return self.predictor.info()

    def predict(self, X: np.ndarray, top: int = 5) -> dict:
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
            ``prediction``, ``blank``, ``top`` and ``pixels``.
        """
        return self.predictor.predict(X, top)

    def serve_forever(self) -> None:
        """Answer requests until :meth:`shutdown` or Ctrl+C (in the main thread)."""
        self._started = True
        self._stopped.clear()
        try:
            self._uvicorn.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` and wait until it has returned."""
        self._uvicorn.should_exit = True
        if self._started:
            self._stopped.wait()

    def server_close(self) -> None:
        """Close the listening socket."""
        self.socket.close()


def make_server(
    model,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    allowed_hosts=(),
    max_concurrent_requests: int = MAX_CONCURRENT_REQUESTS,
    header_timeout: float = HEADER_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
) -> PredictServer:
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
    allowed_hosts : iterable of str, default=()
        Host names answered besides :data:`LOCAL_HOSTS` and ``host``: the
        names other machines reach this one by; ``"*"`` allows any.
    max_concurrent_requests : int, default=256
        Requests handled at once; one more gets 503.
    header_timeout, body_timeout : float, default=10.0
        Seconds a client has to send a request's headers, and its body (408).

    Returns
    -------
    server : PredictServer
        Call ``server.serve_forever()`` (in a thread, or see :func:`serve`),
        then ``server.shutdown()`` and ``server.server_close()``.

    Raises
    ------
    ImportError
        Without Starlette and uvicorn (the ``serve`` extra).
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
    require_http_stack()
    model = _load(model)
    model.predict_proba(np.zeros((1, N_PIXELS), np.uint8))  # warm up
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(BACKLOG)
        except BaseException:
            sock.close()
            raise
    except (OSError, OverflowError) as exc:
        raise ServeError(
            f"Cannot listen on {host}:{port} ({exc}). Use --port 0 for any free "
            "port, or another port; --host must be an address of this machine."
        ) from exc
    bound = sock.getsockname()[0]
    hosts = [*LOCAL_HOSTS, *allowed_hosts]
    if bound not in ("0.0.0.0", "::"):
        hosts.append(bound)
    predictor = Predictor(model)
    app = create_app(
        predictor,
        allowed_hosts=hosts,
        max_concurrent_requests=max_concurrent_requests,
        body_timeout=body_timeout,
    )
    return PredictServer(predictor, sock, app, header_timeout)


def serve(
    model, host: str = "127.0.0.1", port: int = 8000, *, allowed_hosts=(), out=None
) -> None:
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
    allowed_hosts : iterable of str, default=()
        Host names answered besides this machine's loopback names and
        ``host`` (see :func:`make_server`).
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
    server = make_server(model, host, port, allowed_hosts=allowed_hosts)
    host_bound = server.server_address[0]
    if not (host_bound.startswith("127.") or host_bound == "::1"):
        log.warning(
            "Listening on %s: any machine that can reach this one can use the "
            "model (by the names given with --allow-host). Use --host 127.0.0.1 "
            "to keep it to this machine.",
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
