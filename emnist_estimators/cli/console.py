"""What the commands print, and the exit codes: results, usage errors, quiet imports.

Results go to stdout (JSON with ``--json``); TensorFlow's start-up lines and
other native stderr output are hidden unless ``--verbose`` and replayed if
the step fails.
"""

from __future__ import annotations

import contextlib
import json
import sys

from .._utils import jsonable, native_stderr_captured
from ..exceptions import EmnistEstimatorsError

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "emit",
    "import_tensorflow",
    "native_stderr_muted",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class UsageError(EmnistEstimatorsError, ValueError):
    """Bad command-line input: exit code 2."""


def emit(args, result: dict, text: str) -> None:
    """Print a command's result: JSON with ``--json``, else the text.

    The text is printed even with ``--quiet``: it is the result.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.
    result : dict
        The result for ``--json``.
    text : str
        The result for a person.
    """
    if getattr(args, "json", False):
        print(json.dumps(jsonable(result), indent=2))
    else:
        print(text)


def import_tensorflow(args) -> None:
    """Import TensorFlow now: unless ``--verbose``, with its start-up lines muted.

    TensorFlow's C++ side logs at import before its log level applies
    (``TF_CPP_MIN_LOG_LEVEL`` does not hide them), so file descriptor 2 is
    pointed away for the import alone; if the import fails, what it wrote is
    shown with the error.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line; its ``verbose`` shows the lines.
    """
    if args.verbose or "tensorflow" in sys.modules:
        return
    with native_stderr_muted():
        import tensorflow  # noqa: F401


def native_stderr_muted() -> contextlib.AbstractContextManager[None]:
    """Send what C code writes to stderr to a file; replay it on failure.

    The package's own capture, which its export and load use too: one
    capture for the whole process.

    Returns
    -------
    context manager
        Inside its ``with`` block, file descriptor 2 goes to a temporary
        file.
    """
    return native_stderr_captured()
