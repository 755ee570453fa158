"""Helpers shared by the tests: where the real data is, skip-or-fail, tiny
generated images and IDX folders, and saved-model files rewritten. Fixtures
live in conftest.py, which imports from here; tests import these names from
here, not from conftest.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
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
