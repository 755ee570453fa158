"""Read EMNIST in the common CSV export (the Kaggle "crawford/emnist" files)
=========================================================================

Each row is ``label,p0,...,p783`` without a header, images transposed like
NIST's IDX files. ``read_emnist_csv`` parses straight to uint8 (no float64
frame of the whole split) and ``PixelScaler(fix_orientation=True)`` turns the
images upright inside the Pipeline.

.. code-block:: bash

    python examples/read_kaggle_csv.py [--csv emnist-balanced-train.csv]

Without ``--csv`` the script writes a small CSV in the same format from the
offline demo data first.
"""

# %%
import argparse
import tempfile
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from emnist_estimators import EmnistMLP, PixelScaler
from emnist_estimators.datasets import read_emnist_csv
from emnist_estimators.datasets.digits import load_digits_28

parser = argparse.ArgumentParser(
    description="Read EMNIST in the common CSV export (Kaggle's crawford/emnist)"
)
parser.add_argument("--csv", type=Path, help="an EMNIST CSV export")
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()


def write_demo_csv(folder: Path) -> Path:
    """The offline demo data as a CSV export, stored transposed as NIST does."""
    X, y = load_digits_28()
    stored = X.reshape(-1, 28, 28).transpose(0, 2, 1).reshape(-1, 784)
    path = folder / "emnist-digits-demo.csv"
    np.savetxt(path, np.column_stack([y, stored]), fmt="%d", delimiter=",")
    print(
        f"wrote {path.name} ({path.stat().st_size / 1e6:.1f} MB) in the export format"
    )
    return path


# %%
with tempfile.TemporaryDirectory() as folder:  # the demo CSV goes with it
    X, y = read_emnist_csv(args.csv or write_demo_csv(Path(folder)))
print(f"read {X.shape} {X.dtype} pixels and {len(np.unique(y))} classes")
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
pipe = Pipeline(
    [
        ("scale", PixelScaler(fix_orientation=True)),  # stored transposed -> upright
        ("clf", EmnistMLP(epochs=3 if args.quick else 30, random_state=0)),
    ]
)
pipe.fit(X_train, y_train)
print(f"test accuracy: {pipe.score(X_test, y_test):.4f}")
