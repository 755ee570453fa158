"""TensorFlow's C++ log lines kept off the user's stderr around the package's
long operations (importing TensorFlow, export, load), and shown on failure."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading

import pytest
from helpers import REPO, bar_images

from emnist_estimators import EmnistMLP, export
from emnist_estimators._utils import native_log_shown, native_stderr_captured
from emnist_estimators.exceptions import ExportError

# absl's first line, and its records: I0000 00:00:17... file.cc:12] message
NATIVE = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl)"
    r"|Starting new session|cpu_feature_guard",
    re.M,
)

CHILD = """
import sys
from pathlib import Path

out = Path(sys.argv[1])


def mark(step):
    sys.stderr.write(f"=== {step}\\n")
    sys.stderr.flush()


mark("import")
from emnist_estimators import EmnistMLP, load_model
from emnist_estimators.datasets.digits import load_digits_28
from emnist_estimators.export import load_exported

X, y = load_digits_28()
X, y = X[:300].reshape(300, -1), y[:300]
mark("fit")
clf = EmnistMLP(hidden_layer_sizes=(16,), epochs=1, random_state=0).fit(X, y)
mark("export")
clf.export(out / "m.onnx")
clf.export(out / "m-saved", format="tf_saved_model")
clf.save(out / "m.keras")
again = load_model(out / "m.keras")
for path in ("m.onnx", "m-saved"):
    assert (load_exported(out / path).predict(X) == clf.predict(X)).all()
assert (again.predict(X) == clf.predict(X)).all()
mark("done")
"""


def test_export_and_load_add_no_native_lines_in_a_child_process(tmp_path):
    """Issue 31.4: with no TF_CPP_MIN_LOG_LEVEL set, importing the estimators,
    exporting to ONNX (tf2onnx's "Starting new session" pair) and SavedModel,
    and loading back print no C++ line."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    steps = dict(re.findall(r"^=== (\w+)\n(.*?)(?=^=== )", proc.stderr, re.S | re.M))
    assert list(steps) == ["import", "fit", "export"], proc.stderr
    # fit is left out: TensorFlow's generator dataset logs one line at its
    # first use, and a fit's stderr holds its progress bar and warnings
    for step in ("import", "export"):
        assert not NATIVE.search(steps[step]), (step, steps[step])
    assert proc.stderr.endswith("=== done\n")


def _fitted():
    X, y = bar_images(60, rng=0)
    return EmnistMLP((8,), epochs=1, random_state=0).fit(X.reshape(60, -1), y)


def test_a_failing_export_shows_what_the_converter_wrote(tmp_path, capfd, monkeypatch):
    clf = _fitted()

    def fails(serve, net, tmp):
        os.write(2, b"E0000 00:00:1.0 converter.cc:1] the converter's own reason\n")
        raise RuntimeError("conversion failed")

    capfd.readouterr()
    monkeypatch.setitem(export._WRITERS, "onnx", fails)
    with pytest.raises(ExportError, match="conversion failed"):
        clf.export(tmp_path / "m.onnx")
    err = capfd.readouterr().err
    assert "the converter's own reason" in err  # shown with the failure
    assert not (tmp_path / "m.onnx").exists()
    os.write(2, b"after\n")  # descriptor 2 is the test's again
    assert capfd.readouterr().err == "after\n"


def test_capture_hides_native_lines_and_restores_the_descriptor(capfd):
    before = os.fstat(2)
    with native_stderr_captured():
        os.write(2, b"I0000 hidden\n")
        with native_stderr_captured():  # nested: the same capture
            os.write(2, b"I0000 hidden too\n")
        os.write(2, b"I0000 still hidden\n")
    after = os.fstat(2)
    assert (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)
    assert capfd.readouterr().err == ""
    with native_log_shown(), native_stderr_captured():  # the CLI's -v
        os.write(2, b"I0000 shown\n")
    assert capfd.readouterr().err == "I0000 shown\n"


def test_capture_replays_on_error_and_is_shared_by_threads(capfd):
    with pytest.raises(KeyError), native_stderr_captured():
        os.write(2, b"W0000 why it failed\n")
        raise KeyError("x")
    assert capfd.readouterr().err == "W0000 why it failed\n"
    # threads entering and leaving in any order leave descriptor 2 as it was
    before = os.fstat(2)
    go = threading.Barrier(4)

    def work(i):
        go.wait()
        for _ in range(50):
            with native_stderr_captured():
                os.write(2, b"I0000 thread\n")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = os.fstat(2)
    assert (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)
    assert capfd.readouterr().err == ""
