"""Data for the examples: real EMNIST when available, else the offline demo.

Set ``EMNIST_DATA`` to a folder holding EMNIST files (or let ``load_emnist``
download them) and pass ``--emnist`` to run an example on real EMNIST; without
it every example runs offline on scikit-learn's digits upscaled to 28x28.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def example_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--emnist",
        metavar="SPLIT",
        nargs="?",
        const="balanced",
        help="use this EMNIST split (default balanced) instead of the demo",
    )
    parser.add_argument("--quick", action="store_true", help="tiny settings for tests")
    return parser.parse_args()


def load_example_data(args, *, random_state: int = 0):
    """``X_train, X_test, y_train, y_test`` as uint8 pixels and labels."""
    if args.emnist:
        X, y = _load_emnist(args.emnist, "train")
        X_test, y_test = _load_emnist(args.emnist, "test")
        return X, X_test, y, y_test
    from emnist_estimators.datasets.digits import digits_train_test_split

    return digits_train_test_split(random_state=random_state)


def _load_emnist(split: str, subset: str):
    """One EMNIST subset; missing files end the example with one line, exit 1."""
    from emnist_estimators import load_emnist
    from emnist_estimators.datasets import get_data_home, how_to_get
    from emnist_estimators.exceptions import DataNotFoundError, DownloadError

    try:
        return load_emnist(split, subset, return_X_y=True, as_characters=True)
    except (DataNotFoundError, DownloadError):
        # One line, no traceback: what is missing, where, and how to get it
        # (how_to_get's lines joined).
        how = " ".join(how_to_get(split, subset).splitlines())
        raise SystemExit(
            f"{Path(sys.argv[0]).name}: needs the EMNIST {split} {subset} split, "
            f"which is not in {get_data_home()} and could not be downloaded. "
            f"{how} Or run without --emnist: the offline "
            "demo needs no files."
        ) from None
