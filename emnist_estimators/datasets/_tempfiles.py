"""Temporary files of the cache and the downloader, and how stale ones are found.

Both write to a hidden sibling ``.<target name>.<pid>@<host>.<suffix>`` and
rename it into place when complete. A writer killed on the way leaves that
file behind; it is stale once no process ``<pid>`` runs on ``<host>`` (this
machine). A file of another host is never stale here: its writer may be alive
on that machine (a shared network folder).
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

__all__ = ["host", "pid_alive", "stale_files", "temp_path", "writer_is_dead"]


def host() -> str:
    """This machine's name as it goes into temporary names (``[A-Za-z0-9_-]``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64] or "host"


def temp_path(target: Path, suffix: str) -> Path:
    """This process's temporary sibling of ``target``.

    Named ``.<name>.<pid>@<host>.<suffix>``, so a later run can tell whether
    its writer still lives.
    """
    return target.with_name(f".{target.name}.{os.getpid()}@{host()}.{suffix}")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (in doubt: yes)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # none, or larger than any pid
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def writer_is_dead(pid: int, writer_host: str | None) -> bool:
    """True when the writer ``pid`` on ``writer_host`` (None: this one) is gone."""
    if writer_host is not None and writer_host != host():
        return False
    return pid != os.getpid() and not pid_alive(pid)


def stale_files(
    folder, pattern: re.Pattern, *, whole_name: bool = False, folders: bool = False
) -> list[Path]:
    """Plain files in ``folder`` named by ``pattern`` whose writer is dead.

    ``pattern`` must have the named groups ``pid`` and ``host`` (which may
    match nothing, for names from before the host was recorded). It matches
    a name's start (``re.match``), or with ``whole_name`` the whole name
    (``re.fullmatch``). With ``folders``, folders so named are found too. A
    symbolic link is never found, whatever it points to. The one scan behind
    every ``remove_stale*`` of the package (cache, download, output folders,
    exports).
    """
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    match_name = pattern.fullmatch if whole_name else pattern.match
    found = []
    for entry in entries:
        match = match_name(entry.name)
        if (
            match is not None
            and writer_is_dead(int(match["pid"]), match["host"])
            and _is_wanted(entry, folders)
        ):
            found.append(Path(entry.path))
    return sorted(found)


def _is_wanted(entry: os.DirEntry[str], folders: bool) -> bool:
    """A plain file, or (``folders``) a folder; never a link. In doubt: no."""
    try:
        return entry.is_file(follow_symlinks=False) or (
            folders and entry.is_dir(follow_symlinks=False)
        )
    except OSError:  # e.g. no permission to look: not ours to remove
        return False
