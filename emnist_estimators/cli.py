"""The ``emnist-estimators`` command line.

One ``_add_<cmd>_arguments(parser)`` and one ``_run_<cmd>(args) -> int`` per
command; user errors print one line on stderr and exit with code 2 (a
traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .exceptions import EmnistEstimatorsError

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", required=True)
    dl = sub.add_parser("download", help="download EMNIST files from NIST")
    dl.add_argument("--split", default="balanced", help="EMNIST split (default: balanced)")
    dl.add_argument(
        "--subset", default="all", choices=["train", "test", "all"], help="default: all"
    )
    dl.add_argument("--data-home", default=None, help="folder (default: $EMNIST_DATA)")
    dl.add_argument("--url", default=None, help="archive URL or mirror")
    dl.add_argument("--quiet", action="store_true", help="no progress bars")
    info = sub.add_parser("info", help="show which EMNIST files are present")
    info.add_argument("--data-home", default=None)
    info.add_argument("--checksums", action="store_true", help="verify sha256 of files")
    info.add_argument("--json", action="store_true", help="machine-readable output")


def _run_data(args) -> int:
    from .datasets import load_emnist
    from .datasets.loader import data_info

    if args.data_command == "download":
        bunch = load_emnist(
            args.split,
            args.subset,
            data_home=args.data_home,
            url=args.url,
            progress=not args.quiet,
        )
        print(
            f"EMNIST {args.split}/{args.subset}: {len(bunch.target):,} images, "
            f"{len(bunch.target_names)} classes, files in "
            f"{Path(bunch.files[0].images).parent}"
        )
        return EXIT_OK
    rows = data_info(args.data_home, checksums=args.checksums)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("No EMNIST files found.")
    for row in rows:
        check = {True: "sha256 ok", False: "sha256 MISMATCH", None: ""}[row["sha256_ok"]]
        print(f"{row['size']:>12,}  {row['path']}  {row['kind']}  {check}".rstrip())
    return EXIT_OK


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--output", default="emnist-demo-output", help="report folder")
    parser.add_argument("--random-state", type=int, default=0)


def _run_demo(args) -> int:
    from .demo import run_demo

    result = run_demo(
        model=args.model,
        epochs=args.epochs,
        output=args.output,
        random_state=args.random_state,
    )
    print(
        f"{result['model']} on the digits demo: test accuracy "
        f"{result['accuracy']:.4f} in {result['fit_seconds']:.1f} s; report "
        f"written to {result['report']}"
    )
    return EXIT_OK


COMMANDS = {
    "data": ("download EMNIST and show what is cached", _add_data_arguments, _run_data),
    "demo": (
        "offline demo: train on scikit-learn's digits, print the accuracy",
        _add_demo_arguments,
        _run_demo,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emnist-estimators",
        description="Neural-network classifiers for handwritten characters (EMNIST).",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_, add_args, _) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_, description=help_))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING)
    try:
        return COMMANDS[args.command][2](args)
    except (EmnistEstimatorsError, ValueError, OSError) as exc:
        if args.debug:
            raise
        print(f"emnist-estimators: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ValueError) else EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
