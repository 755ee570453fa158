"""Output folders that commands write, and the only folders they ever delete.

How it works and why: the design notes in the docs (``docs/design.rst``).

Examples
--------
>>> import tempfile, pathlib
>>> from emnist_estimators.output_folder import output_folder, read_manifest
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> with output_folder(root / "run", command="example") as tmp:
...     _ = (tmp / "metrics.json").write_text("{}")
>>> read_manifest(root / "run")["files"]
['metrics.json']
>>> with output_folder(root / "run", overwrite=True, command="example") as tmp:
...     _ = (tmp / "metrics.json").write_text('{"again": 1}')
>>> sorted(p.name for p in (root / "run").iterdir())
['.emnist-estimators.json', 'metrics.json']
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from .datasets._tempfiles import host, stale_files
from .exceptions import OutputFolderError

__all__ = [
    "MANIFEST_NAME",
    "OutputFolderError",
    "check_output_folder",
    "output_folder",
    "discard_created",
    "prepare_reusable",
    "read_manifest",
    "remove_stale",
    "write_manifest",
]

MANIFEST_NAME = ".emnist-estimators.json"
_WRITER = "emnist-estimators"


def read_manifest(folder: str | os.PathLike[str]) -> dict | None:
    """Read the manifest of a folder this package wrote.

    Parameters
    ----------
    folder : str or path-like
        The folder whose manifest file is read.

    Returns
    -------
    dict or None
        ``{"written_by", "version", "command", "created", "files"}``; None
        when the folder has no manifest or it is not one of ours.
    """
    path = Path(folder) / MANIFEST_NAME
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 20:
            return None
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(data, dict)
        and data.get("written_by") == _WRITER
        and isinstance(data.get("files"), list)
        and all(isinstance(f, str) for f in data["files"])
    )
    return data if ok else None


def _files_under(folder: Path) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if Path(root, d).is_symlink()]:
            rel = Path(root, name).relative_to(folder).as_posix()
            if rel != MANIFEST_NAME:
                found.append(rel)
    return sorted(found)


def write_manifest(
    folder: str | os.PathLike[str], *, command: str, files: Iterable[str] | None = None
) -> Path:
    """Record the files in ``folder`` that this package wrote.

    Parameters
    ----------
    folder : str or path-like
        The folder to list; the manifest is written into it.
    command : str
        The command that wrote it (shown to a user who finds the folder).
    files : iterable of str, default=None
        Paths relative to ``folder`` to add to those already listed; None
        lists every file in it (for a folder this package created whole).

    Returns
    -------
    Path
        The manifest file.
    """
    from ._version import __version__

    folder = Path(folder)
    manifest = {
        "written_by": _WRITER,
        "version": __version__,
        "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "files": _files_under(folder)
        if files is None
        else sorted(set((read_manifest(folder) or {}).get("files", [])) | set(files)),
    }
    path = folder / MANIFEST_NAME
    tmp = folder / f"{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, path)
    return path


def _protected(real: Path) -> str | None:
    """Why ``real`` (a resolved folder) must never be replaced, or None."""
    cwd = Path.cwd().resolve()
    home = Path.home().resolve()
    if real == Path(real.anchor):
        return "it is the root of the file system"
    if real == home:
        return "it is your home folder"
    if real == cwd:
        return "it is the current directory"
    if cwd.is_relative_to(real):
        return "it contains the current directory"
    if home.is_relative_to(real):
        return "it contains your home folder"
    return None


def check_output_folder(
    path: str | os.PathLike[str], *, overwrite: bool = False, reuse: bool = False
) -> Path:
    """Refuse an output path that a command must not write or replace.

    Call it before any long work (loading data, training), so a refusal
    costs nothing.

    Parameters
    ----------
    path : str or path-like
        The folder the command will write.
    overwrite : bool, default=False
        Whether the command may replace an existing folder (``--overwrite``):
        allowed only for a folder whose manifest lists all its files.
    reuse : bool, default=False
        Whether the command adds to an existing folder of ours (``tune``
        keeps its study there) instead of replacing it.

    Returns
    -------
    Path
        ``path`` with ``..`` and symlinks of its parents resolved.

    Raises
    ------
    OutputFolderError
        With what was found and what to do instead.
    """
    given = Path(path).expanduser()
    if given.is_symlink():
        raise OutputFolderError(
            f"Output {given} is a symbolic link; refusing to write through it. "
            "Give the real folder, or a new path."
        )
    real = given.resolve()
    if real.exists() and not real.is_dir():
        raise OutputFolderError(
            f"Output {given} is a file, not a folder; nothing was changed. Choose "
            "another --output."
        )
    if not real.exists():
        return real
    why = _protected(real)
    if why:
        raise OutputFolderError(
            f"Refusing to write or replace {given}: {why}. Choose a new --output."
        )
    if not overwrite and not reuse:
        raise OutputFolderError(
            f"Output folder {given} already exists. Choose another --output, or "
            "pass --overwrite to replace a folder this package wrote."
        )
    if not any(real.iterdir()):
        return real  # empty: replacing it loses nothing
    manifest = read_manifest(real)
    if manifest is None:
        raise OutputFolderError(
            f"Refusing to {'replace' if overwrite else 'write into'} {given}: it "
            f"was not written by emnist-estimators (no {MANIFEST_NAME} manifest), "
            "so it may hold your own files. Choose a new --output, or move the "
            "folder away yourself."
        )
    extra = sorted(set(_files_under(real)) - set(manifest["files"]))
    if extra and overwrite:
        shown = ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else "")
        raise OutputFolderError(
            f"Refusing to replace {given}: it holds files emnist-estimators did "
            f"not write ({shown}). Move them out, or choose a new --output."
        )
    return real


@contextlib.contextmanager
def output_folder(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    command: str = "emnist-estimators",
) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` only if the block succeeds.

    The temporary folder is a hidden sibling of ``path`` (same file system,
    so the final rename is atomic). On success a manifest is written into
    it and it is swapped in; the previous folder (checked by
    :func:`check_output_folder`) is removed only after the swap. On failure
    the temporary folder, and any parent folder created for it, is removed,
    and an existing ``path`` is left untouched.

    Parameters
    ----------
    path : str or path-like
        The folder the command writes.
    overwrite : bool, default=False
        See :func:`check_output_folder`.
    command : str
        Recorded in the manifest.

    Yields
    ------
    Path
        The temporary folder to write into.
    """
    real = check_output_folder(path, overwrite=overwrite)
    created = _make_parents(real.parent)
    _remove_stale_siblings(real)
    try:
        tmp = Path(
            tempfile.mkdtemp(prefix=_sibling_prefix(real, "tmp"), dir=real.parent)
        )
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield tmp
        write_manifest(tmp, command=command)
        # Checked again: the folder may have changed while we worked.
        check_output_folder(real, overwrite=overwrite)
        _swap_in(tmp, real)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise


def _swap_in(tmp: Path, real: Path) -> None:
    if not real.exists():
        os.replace(tmp, real)
        return
    old = Path(tempfile.mkdtemp(prefix=_sibling_prefix(real, "old"), dir=real.parent))
    os.rmdir(old)  # only the unique name is wanted
    os.replace(real, old)
    try:
        os.replace(tmp, real)
    except BaseException:
        os.replace(old, real)  # put the previous output back
        raise
    shutil.rmtree(old, ignore_errors=True)


def _sibling_prefix(real: Path, kind: str) -> str:
    """``.<name>.<kind>-<pid>@<host>.``: mkdtemp adds 8 random characters."""
    return f".{real.name}.{kind}-{os.getpid()}@{host()}."


def _remove_stale_siblings(real: Path) -> None:
    """Remove the temporary siblings of ``real`` that killed writers left.

    A ``tmp`` sibling is a new output never swapped in. An ``old`` one is a
    previous output set aside: garbage once ``real`` exists again (the swap
    finished), else it is the only copy left, so it stays.
    """
    kinds = "tmp|old" if real.exists() else "tmp"
    name = re.escape(real.name)
    remove_stale(
        real.parent,
        re.compile(rf"\.{name}\.(?:{kinds})-(?P<pid>\d+)@(?P<host>[\w-]+)\.\w{{8}}"),
    )


def remove_stale(folder: str | os.PathLike[str], pattern: re.Pattern) -> list[Path]:
    """Remove the temporaries in ``folder`` whose writer died on this machine.

    The data layer's rule and scan (``datasets._tempfiles.stale_files``),
    for folders as well as files: an entry is removed only when ``pattern``
    matches its whole name and no process of the recorded pid runs on the
    recorded host (this one). A symbolic link, a live writer's temporary and
    another host's are left alone.

    Parameters
    ----------
    folder : str or path-like
        Where to look (not recursively).
    pattern : re.Pattern
        Matches a temporary's whole name, with the named groups ``pid`` and
        ``host`` (``host`` may match nothing: a name from before hosts were
        recorded, taken as this machine's).

    Returns
    -------
    list of Path
        What was removed.
    """
    removed = []
    for path in stale_files(folder, pattern, whole_name=True, folders=True):
        with contextlib.suppress(OSError):  # e.g. removed meanwhile by another run
            if stat.S_ISDIR(os.lstat(path).st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed.append(path)
    return removed


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return the ones created, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for part in reversed(missing):
        part.mkdir()
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if still empty: never someone else's files


def prepare_reusable(
    path: str | os.PathLike[str], *, command: str
) -> tuple[Path, list[Path]]:
    """Create, or reuse, a folder that a command adds to (``tune`` keeps its study).

    Parameters
    ----------
    path : str or path-like
        The folder to create or reuse.
    command : str
        Recorded in the manifest.

    Returns
    -------
    (Path, list of Path)
        The folder, and the folders created now (for :func:`discard_created`).
    """
    real = check_output_folder(path, reuse=True)
    created = _make_parents(real)
    if read_manifest(real) is None:
        write_manifest(real, command=command)
    return real, created


def discard_created(
    folder: Path, created: list[Path], files: Iterable[str] = ()
) -> None:
    """After a failure, remove what :func:`prepare_reusable` created.

    Nothing happens when the folder existed before. Otherwise the named
    ``files`` (relative to ``folder``) and the manifest are removed, then
    each created folder if it is empty - so a file someone else put there
    meanwhile is never deleted.

    Parameters
    ----------
    folder : Path
        The folder :func:`prepare_reusable` returned.
    created : list of Path
        What :func:`prepare_reusable` returned.
    files : iterable of str, default=()
        Files the failed command wrote in ``folder``.
    """
    if not created:
        return
    for name in (*files, MANIFEST_NAME):
        (folder / name).unlink(missing_ok=True)
    _remove_empty(created)
