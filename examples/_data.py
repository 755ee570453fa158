"""Data for the examples: real EMNIST when available, else the offline demo.

Set ``EMNIST_DATA`` to a folder holding EMNIST files (or let ``load_emnist``
download them) and pass ``--emnist`` to run an example on real EMNIST; without
it every example runs offline on scikit-learn's digits upscaled to 28x28.
"""

from __future__ import annotations

import argparse


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
        from emnist_estimators import load_emnist

        X, y = load_emnist(args.emnist, "train", return_X_y=True, as_characters=True)
        X_test, y_test = load_emnist(
            args.emnist, "test", return_X_y=True, as_characters=True
        )
        return X, X_test, y, y_test
    from emnist_estimators.datasets.digits import digits_train_test_split

    return digits_train_test_split(random_state=random_state)
