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


def stale_files(folder, pattern: re.Pattern) -> list[Path]:
    """Plain files in ``folder`` named by ``pattern`` whose writer is dead.

    ``pattern`` must have the named groups ``pid`` and ``host`` (which may
    match nothing, for names from before the host was recorded).
    """
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    found = []
    for entry in entries:
        match = pattern.match(entry.name)
        if (
            match is not None
            and writer_is_dead(int(match["pid"]), match["host"])
            and entry.is_file(follow_symlinks=False)
        ):
            found.append(Path(entry.path))
    return sorted(found)
