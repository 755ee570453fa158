"""Where an export is written: what it may replace, its temporaries, its errors.

How it works and why: the design notes in the docs (``docs/design.rst``).

Examples
--------
>>> import tempfile, pathlib
>>> from emnist_estimators.export_files import check_destination
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> check_destination(folder / "model.onnx", "onnx", overwrite=False)
>>> _ = (folder / "notes.txt").write_text("mine")
>>> check_destination(folder / "notes.txt", "onnx", overwrite=False)
Traceback (most recent call last):
...
emnist_estimators.exceptions.OutputFolderError: ...notes.txt already exists: ...
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

from .datasets._tempfiles import temp_path
from .exceptions import ExportError, OutputFolderError
from .exported import FORMATS, sidecar_path
from .output_folder import check_output_folder, remove_stale, write_manifest

__all__ = [
    "check_destination",
    "move_into_place",
    "remove_stale_exports",
    "temporaries",
    "write_errors_named",
]

#: ``.export.<pid>@<host>.<tag><kind>.tmp``; names from before the host was
#: recorded (``.export.<pid>.<tag>.tmp``) count as this machine's.
_TEMP = re.compile(
    r"\.export\.(?P<pid>\d+)(?:@(?P<host>[\w-]+))?\.(?P<tag>[0-9a-f]{8})"
    r"(?P<kind>\.json|\.sm|\.old)?\.tmp"
)


def _kind(path: Path) -> str | None:
    """What ``path`` is, in words, when it is something else than a regular
    file or a real folder (None then); None also when it does not exist."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputFolderError(
            f"Cannot look at {path}: {exc.strerror or exc}. Choose another path."
        ) from exc
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def _is_our_sidecar(path: Path) -> bool:
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > 1 << 20:
            return False
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(meta, dict)
        and meta.get("format") in FORMATS
        and "emnist_estimators_version" in meta
    )


def check_destination(path: Path, fmt: str, overwrite: bool) -> None:
    """Refuse a destination that an export must not write or replace.

    Parameters
    ----------
    path : Path
        The model's file or folder.
    fmt : str
        The format: a folder for ``"tf_saved_model"``, else a file.
    overwrite : bool
        Whether an existing model and sidecar may be replaced.

    Raises
    ------
    OutputFolderError
        With what was found and what to do instead.
    """
    path = Path(path)
    if not path.name or path.name in (".", ".."):
        raise OutputFolderError(
            f"{str(path)!r} names no file or folder to write: give a path such "
            "as model.onnx or exported/model."
        )
    if not path.parent.is_dir():
        raise OutputFolderError(
            f"Folder {path.parent} does not exist: create it, or export elsewhere."
        )
    limit = _name_max(path.parent)
    for target in (path, sidecar_path(path)):
        size = len(os.fsencode(target.name))
        if size > limit:
            raise OutputFolderError(
                f"Cannot write {target}: its name is {size} bytes, more than the "
                f"{limit} this file system allows (the sidecar adds '.json' to "
                "the model's name). Choose a shorter name."
            )
    for target in (path, sidecar_path(path)):
        kind = _kind(target)
        if kind is not None:
            raise OutputFolderError(
                f"{target} is {kind}: an export replaces only a regular file or a "
                "folder it wrote. Nothing was changed; choose another path."
            )
        if not target.exists():
            continue
        if not overwrite:
            raise OutputFolderError(
                f"{target} already exists: pass overwrite=True (--overwrite) to "
                "replace it, or choose another path."
            )
        if target != path:
            if not _is_our_sidecar(target):
                raise OutputFolderError(
                    f"{target} exists and is not the sidecar of an export: "
                    "overwrite replaces only what an export wrote. Move it away, "
                    "or choose another path."
                )
        elif fmt == "tf_saved_model":
            if not path.is_dir():
                raise OutputFolderError(
                    f"{path} exists and is not a SavedModel folder: overwrite "
                    "replaces only a SavedModel. Choose another path."
                )
            check_output_folder(path, overwrite=True)  # its manifest lists all
        elif path.is_dir():
            raise OutputFolderError(
                f"{path} is a folder: overwrite replaces only a file. Choose "
                "another path."
            )


def remove_stale_exports(folder: Path) -> list[Path]:
    """Remove the temporaries that exports killed on this machine left in ``folder``.

    A SavedModel set aside while being replaced (``.old.tmp``) is kept while
    the new one (``.tmp`` of the same tag) is there too: killed between the
    two renames, it is the only copy of the previous export.

    Parameters
    ----------
    folder : Path
        The folder an export writes into.

    Returns
    -------
    list of Path
        What was removed.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = [m for m in map(_TEMP.fullmatch, names) if m is not None]
    plain = {m["tag"] for m in found if m["kind"] is None}
    kept = {m["tag"] for m in found if m["kind"] == ".old" and m["tag"] in plain}
    pattern = _TEMP
    if kept:
        lookahead = rf"(?!.*\.(?:{'|'.join(sorted(kept))})\.)"
        pattern = re.compile(lookahead + _TEMP.pattern)
    return remove_stale(folder, pattern)


@contextlib.contextmanager
def temporaries(path: Path) -> Iterator[tuple[Path, Path]]:
    """Temporary names for the model and sidecar beside ``path``; removed on exit.

    Beside the destination, so that the final rename stays on one file
    system (atomic); hidden names, so a half-written model is never taken
    for a finished one. Not built from the destination's name: a legal
    250-character name plus a suffix would pass the file system's 255-byte
    limit. Only names: the writers create the files (not ``mkstemp``, whose
    files and folders are private to the user, 0600/0700). Temporaries of
    killed exports are removed first.

    Parameters
    ----------
    path : Path
        The destination.

    Yields
    ------
    (Path, Path)
        The model's and the sidecar's temporary names.
    """
    remove_stale_exports(path.parent)
    tag = uuid.uuid4().hex[:8]
    tmp_model = temp_path(path.parent / "export", f"{tag}.tmp")
    tmp_sidecar = temp_path(path.parent / "export", f"{tag}.json.tmp")
    try:
        yield tmp_model, tmp_sidecar
    finally:  # after success both were renamed: nothing left to remove
        for tmp in (tmp_model, tmp_sidecar):
            _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def move_into_place(tmp: Path, path: Path, fmt: str) -> None:
    """Rename ``tmp`` to ``path``; a SavedModel folder gets its manifest first.

    An old SavedModel folder is renamed aside (``<tmp>``'s name with
    ``.old``), the new one renamed in, then the old one removed.

    Parameters
    ----------
    tmp : Path
        The checked model, under its temporary name.
    path : Path
        The destination, checked by :func:`check_destination`.
    fmt : str
        The format.
    """
    if fmt == "tf_saved_model":
        write_manifest(tmp, command="export")
    if fmt != "tf_saved_model" or not path.exists():
        os.replace(tmp, path)
        return
    old = tmp.with_name(tmp.name.removesuffix(".tmp") + ".old.tmp")
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def write_errors_named(path: Path) -> Iterator[None]:
    """Turn an ``OSError`` of writing the export into one that names ``path``.

    A full disk says ``[Errno 28] No space left on device`` and a file-size
    limit ``[Errno 27] File too large``, without the file: the temporary
    file's name would mean nothing to the user, so the destination is named.

    Parameters
    ----------
    path : Path
        The export's destination.

    Yields
    ------
    None

    Raises
    ------
    ExportError
        In place of the ``OSError``, naming ``path`` and the folder.
    """
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        code = f"[Errno {exc.errno}] " if exc.errno else ""
        raise ExportError(
            f"Writing the export to {path} failed: {code}{reason} (writing in "
            f"{path.parent.resolve()}). The export was not completed and {path} "
            "was not changed: free space there, or export elsewhere."
        ) from exc
