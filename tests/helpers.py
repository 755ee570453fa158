"""Helpers shared by the tests: where the real data is, skip-or-fail, tiny
generated images and IDX folders, saved-model files rewritten, and the
downloads' loopback HTTP server with the archives it serves. Fixtures live in
conftest.py, which imports from here; tests import these names from here, not
from conftest nor from each other.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SMALL_MNIST_N = 64


def _shared_data() -> Path:
    env = os.environ.get("EMNIST_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


SHARED_DATA = _shared_data()
EMNIST_DIR = SHARED_DATA / "emnist"
FASHION_DIR = SHARED_DATA / "fashion-mnist"


def skip_unless_ci(reason: str) -> None:
    """Skip with ``reason`` - or fail, under ``CI=true``, where all must be there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def require_dir(path: Path) -> Path:
    if not path.is_dir():
        skip_unless_ci(
            f"real data folder {path} is absent (set EMNIST_SHARED_DATA to the "
            "folder holding emnist/ and fashion-mnist/)"
        )
    return path


#: Overrides the slow stage's choice of workload: "full" or "reduced".
SLOW_WORKLOAD_ENV = "EMNIST_SLOW_WORKLOAD"


def slow_workload() -> tuple[str, str]:
    """The slow stage's workload, "full" or "reduced", and why (one line).

    The full recipes (20-epoch CNNs on the EMNIST protocol and Fashion-MNIST)
    take about 25 minutes on 2 cores where ``precision="auto"`` trains in
    mixed precision, but over two hours in float32 on a CPU without native
    bfloat16 (one default-CNN epoch on the protocol: 199 s on an AMD EPYC
    without AVX-512) - past CI's limit. There the reduced workload trains the
    same networks for fewer epochs, against floors measured for it.
    """
    from emnist_estimators._utils import resolve_precision

    forced = os.environ.get(SLOW_WORKLOAD_ENV, "").strip()
    if forced:
        if forced not in ("full", "reduced"):
            raise ValueError(
                f"{SLOW_WORKLOAD_ENV}={forced!r}: expected 'full' or 'reduced'"
            )
        return forced, f"{SLOW_WORKLOAD_ENV}={forced} asks for it"
    policy = resolve_precision("auto")
    if policy is None:
        return "reduced", (
            "precision='auto' trains in float32 here (no native bfloat16 or "
            "fast GPU): the full recipes would outrun CI's time; set "
            f"{SLOW_WORKLOAD_ENV}=full to train them anyway"
        )
    return "full", f"precision='auto' trains in {policy} here"


def glyph_images(n: int, rng=None) -> np.ndarray:
    """Upright images of an asymmetric glyph 'L' (left bar, bottom bar)."""
    rng = np.random.default_rng(rng)
    img = np.zeros((28, 28), np.uint8)
    img[4:24, 6:9] = 255  # vertical bar on the left
    img[21:24, 6:20] = 255  # horizontal bar at the bottom
    noise = rng.integers(0, 30, size=(n, 28, 28), dtype=np.uint8)
    return np.maximum(img[None], noise)


def bar_images(n: int, rng=0):
    """28x28 uint8 images of three easy classes: vertical bar, horizontal bar, box."""
    rng = np.random.default_rng(rng)
    X = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
    y = np.arange(n) % 3
    for i in range(n):
        a, b = rng.integers(6, 20, 2)
        if y[i] == 0:
            X[i, 4:24, a : a + 3] = 255
        elif y[i] == 1:
            X[i, a : a + 3, 4:24] = 255
        else:
            X[i, a - 3 : a + 5, b - 3 : b + 5] = 255
    return X, y.astype(np.uint8)


def write_idx_folder(folder: Path, n_train: int = 300, n_test: int = 90) -> Path:
    """A Fashion-MNIST-style folder of IDX files (upright) with bar images."""
    from emnist_estimators.datasets import write_idx

    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        X, y = bar_images(n, seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", X)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", y)
    return folder


def write_emnist_split(folder: Path, upright, labels, *, gz=True, subset="test"):
    """The official files of the mnist split's ``subset``, images transposed
    as EMNIST stores them (the small_mnist fixture accepts their count)."""
    from emnist_estimators.datasets import write_idx

    raw = upright.transpose(0, 2, 1)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"emnist-mnist-{subset}-images-idx3-ubyte{suffix}", raw)
    write_idx(folder / f"emnist-mnist-{subset}-labels-idx1-ubyte{suffix}", labels)


#: Flags Chromium needs on a machine without a screen or a network.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_driver(profile: Path, window: str, monkeypatch):
    """A headless Chromium driven by Selenium, or skip (fail under CI=true).

    ``profile`` is a fresh user-data folder the test owns; ``window`` is the
    window size, e.g. ``"1366,768"``; ``monkeypatch`` (pytest's) sets the
    environment for this test only. The caller quits the driver.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        skip_unless_ci(
            "no Chromium and ChromeDriver found (Debian: apt-get install chromium "
            "chromium-driver)"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        skip_unless_ci("selenium is not installed (pip install -e '.[test]')")
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager: never download
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [
        *CHROMIUM_FLAGS,
        f"--window-size={window}",
        f"--user-data-dir={profile}",
    ]:
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(driver_path))


def modules_loaded_by(statements: str, watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` a fresh Python has imported after ``statements``."""
    code = (
        f"import json, sys\n{statements}\n"
        f"print(json.dumps(sorted(set(sys.modules) & {set(watched)!r})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


#: What a loopback server of :func:`loopback_server` answers a connection.
HTTP_400 = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@contextlib.contextmanager
def loopback_server(answer: bytes | None) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that speaks no cluster protocol: its address.

    Each connection it accepts gets ``answer`` as soon as the client has sent
    something, or at once if the client sends nothing for 0.2 s (an HTTP
    server answers a Dask or gRPC greeting with 400); ``None``: it stays
    silent. Connections are kept open until the server stops.
    """
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.1)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conns.append(conn)
            if answer is not None:
                conn.settimeout(0.2)
                with contextlib.suppress(OSError):
                    conn.recv(4096)
                with contextlib.suppress(OSError):
                    conn.sendall(answer)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        server.close()
        for conn in conns:
            conn.close()


def zip_members(path) -> dict[str, bytes]:
    """Every member of the zip file ``path`` (a saved model, a checkpoint)."""
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write_members(path, members: dict[str, bytes | None]) -> None:
    """Write ``members`` as the zip file ``path``; a None member is left out.

    With :func:`zip_members`, how tests forge saved files: read, change or
    drop members, write.
    """
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            if blob is not None:
                zf.writestr(name, blob)


def rewrite_saved_state(src, dst, edit: Callable[[dict], None]) -> None:
    """Copy a saved estimator file with its state JSON changed by ``edit``.

    For files as other builds of the package would write them: ``edit``
    changes the parsed ``emnist_estimators.json`` in place; every other
    member is copied unchanged.
    """
    entries = zip_members(src)
    state = json.loads(entries["emnist_estimators.json"])
    edit(state)
    entries["emnist_estimators.json"] = json.dumps(state).encode()
    write_members(dst, entries)


def assert_tampered_state_refused(path, tmp_path, tamper: Callable) -> None:
    """A copy of ``path`` whose state member ``tamper`` changed fails to load.

    ``tamper`` takes the parsed state and returns the new member: a JSON
    value, or raw bytes. The refusal must come at load (not at predict
    time), as a DataFormatError (a ValueError) naming the file.
    """
    import pytest

    from emnist_estimators import load_model
    from emnist_estimators.exceptions import DataFormatError

    members = zip_members(path)
    new = tamper(json.loads(members["emnist_estimators.json"]))
    members["emnist_estimators.json"] = (
        new if isinstance(new, bytes) else json.dumps(new).encode()
    )
    target = tmp_path / "tampered.keras"
    write_members(target, members)
    with pytest.raises(DataFormatError) as info:
        load_model(target)  # not later, at predict time
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert str(target) in message
    assert "not saved by emnist-estimators" in message or "save format" in message


# --- the downloads' loopback server and archives -------------------------------
MEMBERS = [
    "gzip/emnist-mnist-test-images-idx3-ubyte.gz",
    "gzip/emnist-mnist-test-labels-idx1-ubyte.gz",
]
_CHUNK = 16 * 1024  # the server sends bodies in pieces this size
_HOLD_S = 10  # a stalling handler gives up after this, if the test forgot it


@dataclass
class Served:
    """One request: the byte range asked for (None: a plain GET) and bytes sent."""

    start: int | None
    end: int | None
    sent: int = 0
    cut: bool = False


class ArchiveServer:
    """Serves one byte string on 127.0.0.1; logs each request in ``self.log``.

    Parameters
    ----------
    ranges : honour Range requests (else answer 200 with the whole body).
    cuts : how many responses longer than ``cut_min`` are cut mid-body.
    cut_at : body bytes sent before a cut: an int, or a float fraction.
    drop_every : cut every response after this many body bytes.
    send_length : send Content-Length (else the body ends at the close).
    stall_after : for responses longer than ``cut_min``, send this many body
        bytes, then nothing, holding the connection open; a list gives one
        value per such response, its last value repeating. -1: answer no
        request at all, not even with a status line.
    """

    def __init__(
        self,
        payload: bytes,
        *,
        ranges=True,
        cuts=0,
        cut_at=1 / 3,
        cut_min=1000,
        drop_every=None,
        stall_after=None,
        content_type=None,
        send_length=True,
    ):
        self.payload, self.ranges = payload, ranges
        self.cuts, self.cut_at, self.cut_min = cuts, cut_at, cut_min
        self.drop_every, self.stall_after = drop_every, stall_after
        self.content_type = content_type or "application/zip"
        self.send_length = send_length
        self.log: list[Served] = []
        self.agents: list[str | None] = []  # each request's User-Agent
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server._serve(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/gzip.zip"
        self.thread = threading.Thread(  # a 50 ms poll: it stops in 50 ms, not 500
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def bytes_served(self) -> int:
        return sum(r.sent for r in self.log)

    def _body_limit(self, n: int) -> tuple[int, bool]:
        """How many of ``n`` body bytes to send, and whether to cut after them."""
        if self.drop_every is not None and n > self.drop_every:
            return self.drop_every, True
        if self.cuts and n > self.cut_min:
            self.cuts -= 1
            at = self.cut_at if isinstance(self.cut_at, int) else int(n * self.cut_at)
            return at, True
        return n, False

    def _stall(self, n: int) -> int | None:
        if self.stall_after is None or n <= self.cut_min:
            return None
        if isinstance(self.stall_after, int):
            return self.stall_after
        return (
            self.stall_after.pop(0)
            if len(self.stall_after) > 1
            else self.stall_after[0]
        )

    def _serve(self, handler):
        self.agents.append(handler.headers.get("User-Agent"))
        data, rng = self.payload, handler.headers.get("Range")
        entry = Served(None, None)
        self.log.append(entry)
        if self.stall_after == -1:  # accept, read the request, say nothing
            self.release.wait(_HOLD_S)
            return
        start, end = 0, len(data) - 1
        if rng and self.ranges:
            lo, hi = rng.removeprefix("bytes=").split("-")
            start, end = int(lo), min(int(hi), len(data) - 1)
            entry.start, entry.end = start, end
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            handler.send_response(200)
        body = data[start : end + 1]
        handler.send_header("Content-Type", self.content_type)
        if self.send_length:  # else HTTP/1.0: the body ends when the link closes
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        limit, entry.cut = self._body_limit(len(body))
        stall = self._stall(len(body))
        if stall is not None and stall < limit:
            limit, entry.cut = stall, False
        try:
            for i in range(0, limit, _CHUNK):
                piece = body[i : min(i + _CHUNK, limit)]
                handler.wfile.write(piece)
                entry.sent += len(piece)
        except OSError:  # the client hung up: it has what it read
            return
        if stall is not None and limit < len(body):
            self.release.wait(_HOLD_S)
        elif entry.cut:
            handler.connection.shutdown(2)  # cut mid-transfer

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def fetch_members(server, tmp_path, checksums=None, members=MEMBERS):
    """``download_members`` from ``server`` into ``tmp_path / "out"``, quietly."""
    from emnist_estimators.datasets import download_members

    return download_members(
        members,
        tmp_path / "out",
        url=server.url,
        progress=False,
        checksums=checksums,
    )


def make_archive(tmp_path, *, corrupt=None, extra=None, members=None, big=200_000):
    """A zip laid out like NIST's gzip.zip, with generated members.

    An incompressible member of ``big`` bytes sits between the two wanted ones,
    and another one after them, so fetching a wanted member must skip them.
    """
    from emnist_estimators.datasets import write_idx

    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    write_idx(src / "i.gz", rng.integers(0, 256, (300, 28, 28), dtype=np.uint8))
    write_idx(src / "l.gz", (np.arange(300) % 10).astype(np.uint8))
    contents = {
        MEMBERS[0]: (src / "i.gz").read_bytes(),
        "gzip/emnist-letters-train-images-idx3-ubyte.gz": rng.bytes(big),
        MEMBERS[1]: (src / "l.gz").read_bytes(),
        "gzip/emnist-letters-test-images-idx3-ubyte.gz": rng.bytes(big),
    }
    if members:
        contents.update(members)
    checksums = {k: hashlib.sha256(v).hexdigest() for k, v in contents.items()}
    if corrupt:
        contents[corrupt] = contents[corrupt][:-10] + b"0123456789"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue(), checksums, contents


def needed_bytes(payload: bytes, members) -> tuple[int, int]:
    """``(central directory + end record, local headers + data of members)``."""
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        directory = len(payload) - zf.start_dir
        total = 0
        for name in members:
            info = zf.getinfo(name)
            # A local header: 30 fixed bytes, the name, and an extra field that
            # zipfile.writestr leaves empty.
            total += 30 + len(info.filename.encode()) + info.compress_size
    return directory, total


BOMB = 32 << 20  # bytes of zeros a bomb member inflates to (about 32 kB zipped)
SLACK = 64 << 10  # bytes written besides the capped member (logs, tqdm)


def bytes_written() -> int:
    """Bytes this process has passed to write(2) so far."""
    try:
        text = Path("/proc/self/io").read_text()
    except OSError:
        pytest.skip("/proc/self/io is not available on this system")
    return int(next(ln for ln in text.splitlines() if ln.startswith("wchar:"))[6:])


def bomb(name: str, *, local: int | None = None, central: int | None = None) -> bytes:
    """A zip whose only member inflates to ``BOMB`` zero bytes.

    ``local`` and ``central`` overwrite the uncompressed size the member's
    local header and central-directory entry declare.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, bytes(BOMB))
    data = bytearray(buf.getvalue())
    if local is not None:
        data[22:26] = struct.pack("<I", local)  # the header is at offset 0
    if central is not None:
        entry = data.index(b"PK\x01\x02")
        data[entry + 24 : entry + 28] = struct.pack("<I", central)
    return bytes(data)


class RangeLiar(ArchiveServer):
    """Answers the probe correctly, then every ranged request with ``lie``'s
    Content-Range (None: no Content-Range header at all)."""

    def __init__(self, payload, lie):
        super().__init__(payload)
        self.lie = lie

    def _serve(self, handler):
        if handler.headers.get("Range") != "bytes=0-63":
            send = handler.send_header

            def send_header(key, value):
                if key == "Content-Range":
                    value = self.lie(value)
                    if value is None:
                        return
                send(key, value)

            handler.send_header = send_header
        super()._serve(handler)


class Oversender(ArchiveServer):
    """Honours where a range starts but sends everything after it."""

    def _serve(self, handler):
        rng = handler.headers.get("Range")
        if rng and rng != "bytes=0-63":
            lo = rng.removeprefix("bytes=").split("-")[0]
            handler.headers.replace_header("Range", f"bytes={lo}-{len(self.payload)}")
        super()._serve(handler)


class ScriptedServer(ArchiveServer):
    """Serves responses over ``cut_min`` bytes as scripted, in order: an int n
    sends n body bytes and cuts the connection, "stall" sends nothing and
    holds it; responses past the script are served whole."""

    def __init__(self, payload, script, cut_min=100_000):
        super().__init__(payload, cut_min=cut_min)
        self.script = list(script)
        self.big = 0

    def _body_limit(self, n):
        if n <= self.cut_min:
            return n, False
        self.big += 1
        step = self.script[self.big - 1] if self.big <= len(self.script) else None
        if step is None or step == "stall":
            return n, False
        return step, True

    def _stall(self, n):
        if n > self.cut_min and self.big <= len(self.script):
            return 0 if self.script[self.big - 1] == "stall" else None
        return None


class DropHeader(ArchiveServer):
    """Answers without the header ``name`` (for the requests ``which`` picks)."""

    def __init__(self, payload, name, which=lambda rng: True, **kwargs):
        super().__init__(payload, **kwargs)
        self.name, self.which = name, which

    def _serve(self, handler):
        if self.which(handler.headers.get("Range")):
            send = handler.send_header

            def send_header(key, value):
                if key != self.name:
                    send(key, value)

            handler.send_header = send_header
        super()._serve(handler)


class ProgressCounter:
    """Stands in for the tqdm bar; adds up what it is told."""

    def __init__(self, *args, **kwargs):
        self.n, self.total = 0, None

    def update(self, n):
        self.n += n

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


class _Unseekable(io.BytesIO):
    """An output zipfile cannot seek in: it writes sizes after the data."""

    def seek(self, *args):
        raise OSError("not seekable")


def make_zip(
    members: dict[str, bytes], *, zip64=False, unseekable=False, extra=b""
) -> bytes:
    """A deflated zip of ``members``; options change how the headers are written."""
    buf = _Unseekable() if unseekable else io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type, info.extra = zipfile.ZIP_DEFLATED, extra
            with zf.open(info, "w", force_zip64=zip64) as fh:
                fh.write(data)
    return buf.getvalue()


LABELS_NAME = Path(MEMBERS[1]).name  # an official member of 5,144 bytes


def member_spans(payload: bytes, members) -> list[tuple[int, int]]:
    """Byte spans (first, last) of the central directory and of each member."""
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        spans = [(zf.start_dir, len(payload) - 1)]
        for name in members:
            info = zf.getinfo(name)
            end = info.header_offset + 30 + len(info.filename.encode())
            spans.append(
                (info.header_offset, end + len(info.extra) + info.compress_size - 1)
            )
    return spans


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height: no picture data to decode."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


# --- the command line run in this process (tests/test_cli_*.py) -----------------
#: The figures ``train --report`` draws.
REPORT_FIGURES = {
    "learning_curves.png",
    "confusion_matrix.png",
    "misclassified.png",
    "sample_predictions.png",
    "confused_pairs.png",
}
#: A small MLP that learns the three bar classes in a few epochs.
CLI_MLP = [
    *("--model", "mlp", "--batch-size", "16"),
    *("--param", "hidden_layer_sizes=(32,)", "--param", "lr_schedule=constant"),
]


def run_cli(*args) -> tuple[int, str]:
    """``main(args)`` with stdout captured: (exit code, stdout)."""
    from emnist_estimators.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(a) for a in args])
    return code, out.getvalue()


def run_cli_json(*args) -> dict:
    """``main([*args, "--json"])``, which must succeed: its printed JSON."""
    code, out = run_cli(*args, "--json")
    assert code == 0, out
    return json.loads(out)


def assert_real_png(path, size=None) -> None:
    """A PNG file that decodes, of ``size`` pixels if given, and not blank."""
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        if size is not None:
            assert image.size == size, path
        low, high = image.convert("L").getextrema()
        assert high - low > 100, f"{path} is blank"


def write_csv(path, X, y) -> None:
    """The EMNIST CSV export layout: ``label,p0,...,p783``, no header."""
    rows = np.column_stack([y, X.reshape(len(X), -1)]).astype(int)
    np.savetxt(path, rows, fmt="%d", delimiter=",")


def prediction_accuracy(result: dict, y) -> float:
    """The share of ``predict --json``'s predictions equal to ``y``."""
    predicted = [p["prediction"] for p in result["predictions"]]
    return float(np.mean(np.array(predicted) == np.asarray(y)))


# --- exported models ----------------------------------------------------------------
#: The file suffix of each export format (a SavedModel is a folder).
EXPORT_SUFFIX = {"onnx": ".onnx", "tf_saved_model": "", "litert": ".tflite"}

#: Runs exported models with the runtimes alone, in a fresh process: the
#: code a deployment runs (docs/export.rst shows the same calls).
FRESH_PROCESS = r"""
import json, sys
import numpy as np

spec = json.loads(sys.argv[1])
out = {}
for key, (fmt, path, images) in spec["files"].items():
    X = np.load(images)
    meta = json.load(open(path + ".json"))
    x = X.reshape(-1, *meta["input"]["shape"][1:]).astype(meta["input"]["dtype"])
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        proba = session.run(["probabilities"], {"pixels": x})[0]
    elif fmt == "tf_saved_model":
        import tensorflow as tf

        serve = tf.saved_model.load(path).signatures["serving_default"]
        proba = serve(pixels=tf.constant(x))["probabilities"].numpy()
    else:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=path)
        pixels = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(pixels["index"], x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(pixels["index"], x)
        interpreter.invoke()
        proba = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    out[key] = proba
assert "emnist_estimators" not in sys.modules
np.savez(spec["out"], **out)
"""


def fresh_process_proba(files: dict, folder: Path) -> dict:
    """``{key: probabilities}`` of ``files`` ({key: (format, path, X)}), one process."""
    spec = {"files": {}, "out": str(folder / "fresh.npz")}
    for i, (key, (fmt, path, X)) in enumerate(files.items()):
        np.save(folder / f"X{i}.npy", X)
        spec["files"][key] = (fmt, str(path), str(folder / f"X{i}.npy"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, json.dumps(spec)],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(folder / "fresh.npz") as data:
        return {k: data[k] for k in data.files}


# --- pictures a user uploads (serve, serve_api) --------------------------------------
def png_bytes(img, fmt="PNG") -> bytes:
    """A Pillow image as the bytes of a ``fmt`` file."""
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def glyph_picture(mode="RGB"):
    """A dark 'L' on light paper, as a phone photo or a scan would be."""
    from PIL import Image

    img = Image.new("RGB", (90, 120), (235, 232, 220))
    pixels = np.asarray(img).copy()
    pixels[15:100, 20:32] = (20, 20, 40)
    pixels[88:100, 20:70] = (20, 20, 40)
    img = Image.fromarray(pixels)
    if mode == "RGBA":  # ink on a transparent sheet
        alpha = (np.asarray(img.convert("L")) < 128).astype(np.uint8) * 255
        img = Image.merge("RGBA", (*img.split(), Image.fromarray(alpha)))
    return img.convert(mode)
