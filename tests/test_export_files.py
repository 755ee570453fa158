"""What an export may replace, its temporaries after a kill, its write errors.

Issue 30, items 1, 2, 10 and 11 (export's parts). Every destination is made
in ``tmp_path``: a FIFO, a device node and a socket of the test's own, never
the machine's.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import bar_images

from emnist_estimators import EmnistMLP
from emnist_estimators import export as export_mod
from emnist_estimators.cli import main
from emnist_estimators.datasets._tempfiles import host
from emnist_estimators.exceptions import ExportError, OutputFolderError
from emnist_estimators.export import export_model, load_exported, sidecar_path
from emnist_estimators.output_folder import MANIFEST_NAME, read_manifest


@pytest.fixture(scope="module")
def mlp():
    X, y = bar_images(90, 0)
    clf = EmnistMLP((8,), epochs=1, precision="float32", random_state=0)
    return clf.fit(X.reshape(len(X), -1), y)


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if an export gets as far as converting anything."""

    def refuse(fmt):
        raise AssertionError("the export started before refusing")

    monkeypatch.setattr(export_mod, "_require", refuse)


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def _special(tmp_path: Path, kind: str) -> Path:
    """A FIFO, device node or socket named ``target`` in ``tmp_path``."""
    path = tmp_path / "target"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":  # like /dev/null: character device 1, 3
        try:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("creating a device node needs CAP_MKNOD")
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    return path


def _mode(path: Path) -> int:
    return stat.S_IFMT(os.lstat(path).st_mode)


# --- item 1: only a regular file or a folder of ours ----------------------------------
@pytest.mark.parametrize(
    "kind, words",
    [("fifo", "a FIFO"), ("device", "a device"), ("socket", "a socket")],
)
@pytest.mark.parametrize("fmt", ["onnx", "tf_saved_model"])
def test_overwrite_refuses_a_fifo_device_or_socket_before_work(
    mlp, tmp_path, no_work, kind, words, fmt
):
    target = _special(tmp_path, kind)
    before = _mode(target)
    for overwrite in (True, False):
        with pytest.raises(OutputFolderError, match=f"is {words}.*Nothing was changed"):
            export_model(mlp, target, fmt, overwrite=overwrite)
    assert _mode(target) == before  # still the special file
    assert listing(tmp_path) == ["target"]  # and no target.json beside it


def test_a_symlink_to_a_fifo_or_to_a_file_is_refused(mlp, tmp_path, no_work):
    fifo = _special(tmp_path, "fifo")
    (tmp_path / "file.onnx").write_bytes(b"someone's")
    for name, to in (("to_fifo", fifo), ("to_file", tmp_path / "file.onnx")):
        (tmp_path / name).symlink_to(to)
        with pytest.raises(OutputFolderError, match="is a symbolic link"):
            export_model(mlp, tmp_path / name, overwrite=True)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert (tmp_path / "file.onnx").read_bytes() == b"someone's"


def test_a_special_sidecar_is_refused(mlp, tmp_path, no_work):
    os.mkfifo(tmp_path / "m.onnx.json")
    with pytest.raises(OutputFolderError, match="m.onnx.json is a FIFO"):
        export_model(mlp, tmp_path / "m.onnx", overwrite=True)
    assert listing(tmp_path) == ["m.onnx.json"]


def test_a_sidecar_that_no_export_wrote_is_not_replaced(mlp, tmp_path, no_work):
    (tmp_path / "data.json").write_text('{"my": "settings"}')
    with pytest.raises(OutputFolderError, match="not the sidecar of an export"):
        export_model(mlp, tmp_path / "data", "tf_saved_model", overwrite=True)
    assert (tmp_path / "data.json").read_text() == '{"my": "settings"}'
    assert listing(tmp_path) == ["data.json"]


def test_cli_export_refuses_a_fifo_output(mlp, tmp_path, capsys):
    mlp.save(tmp_path / "model.keras")
    fifo = _special(tmp_path, "fifo")
    argv = ["export", str(tmp_path / "model.keras"), "--output", str(fifo)]
    assert main([*argv, "--overwrite"]) == 2
    assert "is a FIFO" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert listing(tmp_path) == ["model.keras", "target"]


# --- item 2: a SavedModel folder is replaced only as its manifest lists it ------------
@pytest.fixture
def saved_model(mlp, tmp_path):
    return export_model(mlp, tmp_path / "sm", "tf_saved_model")


def test_a_saved_model_folder_gets_a_manifest_of_its_files(saved_model):
    listed = read_manifest(saved_model)["files"]
    found = sorted(
        p.relative_to(saved_model).as_posix()
        for p in saved_model.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME
    )
    assert listed == found and "saved_model.pb" in listed
    assert any(name.startswith("variables/") for name in listed)


@pytest.mark.parametrize("inside", ["variables", "assets", "."])
def test_a_user_file_inside_our_saved_model_is_never_deleted(
    mlp, saved_model, inside, no_work
):
    (saved_model / inside).mkdir(exist_ok=True)
    mine = saved_model / inside / "notes.txt"
    mine.write_text("mine")
    shown = Path(inside, "notes.txt").as_posix()
    with pytest.raises(OutputFolderError, match=f"did not write \\({shown}\\)"):
        export_model(mlp, saved_model, "tf_saved_model", overwrite=True)
    assert mine.read_text() == "mine"


def test_a_saved_model_without_our_manifest_is_not_replaced(mlp, saved_model, no_work):
    (saved_model / MANIFEST_NAME).unlink()  # e.g. one TensorFlow wrote itself
    with pytest.raises(OutputFolderError, match="not written by emnist-estimators"):
        export_model(mlp, saved_model, "tf_saved_model", overwrite=True)
    assert (saved_model / "saved_model.pb").is_file()


def test_our_saved_model_is_replaced_and_keeps_a_true_manifest(mlp, saved_model):
    export_model(mlp, saved_model, "tf_saved_model", overwrite=True)
    assert listing(saved_model.parent) == ["sm", "sm.json"]
    assert read_manifest(saved_model)["command"] == "export"
    X = np.zeros((2, 784), np.uint8)
    np.testing.assert_array_equal(load_exported(saved_model).predict(X), mlp.predict(X))


def test_an_old_saved_model_that_cannot_be_removed_does_not_fail_the_export(
    mlp, saved_model, monkeypatch
):
    # the replaced folder set aside may be busy (a server still holding it on
    # NFS): the new model is already in place, so the export succeeds with
    # its sidecar, and does not claim that nothing changed
    real = os.rmdir

    def busy(path, *args, **kwargs):
        if str(path).endswith(".old.tmp"):
            raise OSError(errno.EBUSY, "Device or resource busy", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", busy)
    export_model(mlp, saved_model, "tf_saved_model", overwrite=True)
    assert read_manifest(saved_model)["command"] == "export"
    assert sidecar_path(saved_model).is_file()
    X = np.zeros((2, 784), np.uint8)
    np.testing.assert_array_equal(load_exported(saved_model).predict(X), mlp.predict(X))


# --- item 10: temporaries of killed exports -------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporaries_of_dead_exports_on_this_host_are_removed(mlp, tmp_path):
    dead, here = _dead_pid(), host()
    stale = [
        f".export.{dead}@{here}.0123abcd.tmp",
        f".export.{dead}@{here}.0123abcd.json.tmp",
        f".export.{dead}.89abcdef.tmp",  # named before the host was recorded
    ]
    for name in stale:
        (tmp_path / name).write_bytes(b"half")
    (tmp_path / f".export.{dead}@{here}.4567abcd.sm.tmp").mkdir()  # litert's
    kept = [
        f".export.{os.getppid()}@{here}.00000000.tmp",  # a live writer's
        f".export.{dead}@another-host.11111111.tmp",  # maybe alive there
        f".export.{dead}@{here}.22222222.old.tmp",  # killed mid-swap: the only
        f".export.{dead}@{here}.22222222.tmp",  # copies of both exports
        ".export.notes.tmp",  # not named like ours
    ]
    for name in kept:
        (tmp_path / name).mkdir()
    export_model(mlp, tmp_path / "m.onnx")
    assert listing(tmp_path) == sorted([*kept, "m.onnx", "m.onnx.json"])


def test_an_export_killed_midway_is_cleaned_up_by_the_next(mlp, tmp_path):
    mlp.save(tmp_path / "model.keras")
    code = f"""
import os, signal
from emnist_estimators import load_model
from emnist_estimators import export as e
def killed(*args):
    os.kill(os.getpid(), signal.SIGKILL)
e._verify = killed  # the model is written, not yet checked nor renamed
e.export_model(load_model({str(tmp_path / "model.keras")!r}),
               {str(tmp_path / "m.onnx")!r})
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    assert proc.wait(timeout=300) == -signal.SIGKILL
    left = [n for n in listing(tmp_path) if n != "model.keras"]
    assert len(left) == 1 and left[0].startswith(f".export.{proc.pid}@"), left
    export_model(mlp, tmp_path / "m.onnx")
    assert listing(tmp_path) == ["m.onnx", "m.onnx.json", "model.keras"]


# --- item 11: errors that name the path -----------------------------------------------
def test_a_sidecar_name_too_long_is_refused_naming_it(mlp, tmp_path, no_work):
    path = tmp_path / ("m" * 250 + ".onnx")  # legal; its sidecar's name is not
    with pytest.raises(OutputFolderError, match="260 bytes, more than the 255") as info:
        export_model(mlp, path)
    assert str(sidecar_path(path)) in str(info.value)
    assert listing(tmp_path) == []


def test_a_file_too_large_names_the_destination(mlp, tmp_path, monkeypatch):
    def too_large(serve, net, tmp):
        tmp.write_bytes(b"part")
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setitem(export_mod._WRITERS, "onnx", too_large)
    path = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="File too large") as info:
        export_model(mlp, path)
    assert f"export to {path} failed: [Errno 27]" in str(info.value)
    assert listing(tmp_path) == []


def test_a_full_disk_writing_the_sidecar_names_the_destination(
    mlp, tmp_path, monkeypatch
):
    real = Path.write_text

    def full(self, *args, **kwargs):
        if self.name.endswith(".json.tmp"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    path = tmp_path / "m.onnx"
    with pytest.raises(
        ExportError, match=re.escape(f"export to {path} failed: [Errno 28]")
    ):
        export_model(mlp, path)
    assert listing(tmp_path) == []
