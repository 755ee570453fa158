"""The ``emnist-estimators`` command line (also ``python -m emnist_estimators``).

Parsing and dispatch only: :mod:`.parser` defines every command's options,
and one module per kind of work runs the commands (``data``, ``train`` and
``demo``, ``score`` for evaluate and report, ``predict``, ``tune``, ``deploy``
for export and serve), calling the package's modules for the work. Exit
codes scripts can rely on: 0 success, 1 runtime failure (data, network,
training), 2 bad usage or input. A traceback only with ``--debug``. Progress
goes to stderr, results to stdout (``--json`` for machines); ``--quiet``
keeps only the result. TensorFlow's native log and optuna's per-trial lines
are hidden unless ``-v``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

# Nothing imported here may import TensorFlow: main() must set its log level
# first, and commands that never train (data, --help) should start fast.
from .._utils import native_log_shown
from ..exceptions import EmnistEstimatorsError
from ..threads import set_num_threads
from .console import EXIT_ERROR, EXIT_OK, EXIT_USAGE, UsageError
from .data import run_data
from .deploy import run_export, run_serve
from .parser import build_parser, check_arguments
from .predict import run_predict
from .score import run_evaluate, run_report
from .train import run_demo_command, run_train
from .tune import run_tune

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "RUNS",
    "UsageError",
    "build_parser",
    "main",
]

#: The function that runs each command of :func:`build_parser`.
RUNS = {
    "data": run_data,
    "demo": run_demo_command,
    "train": run_train,
    "evaluate": run_evaluate,
    "predict": run_predict,
    "report": run_report,
    "tune": run_tune,
    "export": run_export,
    "serve": run_serve,
}


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments after the program name; None: ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code: 0 success, 1 runtime failure, 2 bad usage or input,
        130 interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    if not args.verbose:
        # Before anything imports TensorFlow, which reads it once. 3 hides
        # ERROR lines too: a CNN's fit logs "E0000 ... remapper failed", a
        # skipped graph optimisation, not a failure; real failures still
        # raise. A value the user exported wins.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING)
    if args.verbose:  # e.g. where a new cache goes, said once at INFO
        logging.getLogger("emnist_estimators").setLevel(logging.INFO)
    try:
        if args.threads is not None:
            set_num_threads(args.threads)
        # -v: the package's own captures of TensorFlow's C++ lines let them through
        shown = native_log_shown() if args.verbose else contextlib.nullcontext()
        with shown:
            return RUNS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        usage = isinstance(exc, (ValueError, TypeError, FileNotFoundError))
        if not isinstance(exc, (EmnistEstimatorsError, ValueError, TypeError, OSError)):
            msg = f"{type(exc).__name__}: {exc}"
        else:
            msg = str(exc)
        print(f"emnist-estimators: error: {msg}", file=sys.stderr)
        return EXIT_USAGE if usage else EXIT_ERROR
