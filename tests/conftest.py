"""Shared fixtures: real-data location and a private cache per test session.

Real-data tests skip with the reason where ``../shared/data`` is absent, but
under ``CI=true`` a missing data folder or service binary fails the run: CI
must never go green with the real-data tests skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import (
    CLI_MLP,
    EMNIST_DIR,
    EXPORT_SUFFIX,
    FASHION_DIR,
    SMALL_MNIST_N,
    bar_images,
    require_dir,
    run_cli_json,
    slow_workload,
    write_idx_folder,
)


def pytest_report_header(config):
    """Say in the log which slow workload runs (with -m slow) and why."""
    kind, why = slow_workload()
    return f"slow workload: {kind} ({why})"


@pytest.fixture
def emnist_dir() -> Path:
    return require_dir(EMNIST_DIR)


@pytest.fixture
def fashion_dir() -> Path:
    return require_dir(FASHION_DIR)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Keep every test's .npy cache out of the user's ~/.cache."""
    monkeypatch.setenv(
        "EMNIST_ESTIMATORS_CACHE", str(tmp_path_factory.getbasetemp() / "user-cache")
    )
    monkeypatch.delenv("EMNIST_DATA", raising=False)
    monkeypatch.delenv("EMNIST_MIRROR_URL", raising=False)
    # train/tune/report log to $MLFLOW_TRACKING_URI when set: never the user's
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def small_mnist(monkeypatch):
    """Pretend the official mnist split has SMALL_MNIST_N images, any checksum.

    Generated files carry official names but not official bytes or counts.
    """
    from emnist_estimators.datasets import EMNIST_SPLITS, loader

    sizes = dict(EMNIST_SPLITS)
    sizes["mnist"] = (SMALL_MNIST_N, SMALL_MNIST_N, 10)
    monkeypatch.setattr(loader, "EMNIST_SPLITS", sizes)
    monkeypatch.setattr(loader, "expected_sha256", lambda member: None)


@pytest.fixture(scope="module")
def cli_work(tmp_path_factory) -> Path:
    """A folder the command-line tests of one file share."""
    return tmp_path_factory.mktemp("cli-commands")


@pytest.fixture(scope="module")
def bar_folder(cli_work) -> Path:
    """An IDX folder of upright bar images (labels 0, 1, 2), train and test."""
    return write_idx_folder(cli_work / "bars", n_train=300, n_test=90)


@pytest.fixture(scope="module")
def cli_trained(cli_work, bar_folder):
    """``train --report`` of a small MLP: (output folder, printed JSON)."""
    out = cli_work / "model"
    metrics = run_cli_json("train", *CLI_MLP, "--dataset", bar_folder, "--epochs", 5,
                           "--output", out, "--report")  # fmt: skip
    return out, metrics


@pytest.fixture
def pixels_file(tmp_path):
    """Six upright bar images saved as a .npy file: (path, pixels, labels)."""
    X, y = bar_images(6, rng=5)
    path = tmp_path / "pixels.npy"
    np.save(path, X.reshape(6, 784))
    return path, X.reshape(6, 784), y


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small fitted MLP on raw uint8 pixels, saved: (path, estimator, X, y)."""
    from emnist_estimators import EmnistMLP  # TensorFlow only where it is used

    X, y = bar_images(300, 0)
    clf = EmnistMLP(
        hidden_layer_sizes=(16,),
        epochs=5,
        batch_size=32,
        learning_rate=3e-3,
        lr_schedule="constant",
        random_state=0,
    ).fit(X, y)
    path = tmp_path_factory.mktemp("saved") / "mlp.keras"
    clf.save(path)
    return path, clf, X, y


# --- tiny fits to export (test_export, test_exported, test_twin) ---------------------
@pytest.fixture(scope="module")
def bars():
    """150 bar images labelled with characters, as train's EMNIST labels."""
    X, y = bar_images(150, 0)
    return X, np.array(["|", "-", "#"])[y]


@pytest.fixture(scope="module")
def mlp(bars):
    """A float32 EmnistMLP fitted on ``bars``."""
    from emnist_estimators import EmnistMLP

    X, y = bars
    clf = EmnistMLP(
        (32,),
        epochs=4,
        batch_size=16,
        lr_schedule="constant",
        precision="float32",
        random_state=0,
    )
    return clf.fit(X.reshape(len(X), -1), y)


@pytest.fixture(scope="module")
def cnn_bf16(bars):
    """bfloat16 with augmentation: the network whose direct export fails."""
    from emnist_estimators import EmnistCNN

    X, y = bars
    clf = EmnistCNN(
        filters=(4,),
        dense_units=(8,),
        epochs=1,
        augment=True,
        precision="mixed_bfloat16",
        random_state=0,
    )
    return clf.fit(X, y)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, mlp, cnn_bf16):
    """Each format of each tiny model, exported once: ``{(model, format): path}``."""
    from emnist_estimators.export import FORMATS, export_model

    folder = tmp_path_factory.mktemp("exported")
    models = {"mlp": mlp, "cnn_bf16": cnn_bf16}
    return {
        (name, fmt): export_model(model, folder / f"{name}{EXPORT_SUFFIX[fmt]}", fmt)
        for name, model in models.items()
        for fmt in FORMATS
    }
