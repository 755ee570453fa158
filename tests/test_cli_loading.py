"""Data as ``--dataset`` names it (cli/loading.py): ``emnist:<split>``,
``file.csv`` and ``file.mat``, trained on and predicted with."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from helpers import (
    CLI_MLP,
    bar_images,
    prediction_accuracy,
    run_cli_json,
    write_csv,
)

from emnist_estimators import load_model


def test_dataset_emnist_split(emnist_dir, tmp_path):
    common = [
        "--dataset",
        "emnist:mnist",
        "--subset",
        "test",
        "--data-home",
        emnist_dir,
        "--max-samples",
        300,
    ]
    metrics = run_cli_json(
        "train",
        "--model",
        "mlp",
        *common,
        "--test-size",
        0.3,
        "--epochs",
        5,
        "--batch-size",
        16,
        "--param",
        "hidden_layer_sizes=(64,)",
        "--param",
        "lr_schedule=constant",
        "--output",
        tmp_path / "m",
    )
    assert metrics["dataset"] == "EMNIST mnist (test)"
    assert (metrics["n_train"], metrics["n_test"]) == (210, 90)
    assert metrics["test_accuracy"] > 0.5  # ten digits: chance is 0.1
    model = load_model(tmp_path / "m" / "model.keras")
    assert model.classes_.tolist() == list("0123456789")  # characters, from mapping
    result = run_cli_json("evaluate", tmp_path / "m" / "model.keras", *common)
    assert result["n_samples"] == 300 and result["dataset"] == "EMNIST mnist (test)"
    assert result["accuracy"] > 0.5


def test_dataset_emnist_split_names_classes_by_character(emnist_dir, tmp_path):
    metrics = run_cli_json(
        "train",
        "--model",
        "mlp",
        "--dataset",
        "emnist:byclass",
        "--subset",
        "test",
        "--data-home",
        emnist_dir,
        "--max-samples",
        300,
        "--epochs",
        1,
        "--param",
        "hidden_layer_sizes=(16,)",
        "--output",
        tmp_path / "m",
    )
    assert metrics["dataset"] == "EMNIST byclass (test)" and metrics["n_train"] == 300
    classes = load_model(tmp_path / "m" / "model.keras").classes_.tolist()
    # byclass labels 10..61 are the letters: the model predicts 'A', 'z', not '10'
    assert {"A", "Z", "a", "z", "0"} <= set(classes)
    assert all(len(c) == 1 for c in classes)


def test_dataset_csv(cli_trained, tmp_path):
    """CSV in the export layout; a file named emnist* is stored transposed."""
    out, _ = cli_trained
    model = out / "model.keras"
    X, y = bar_images(60, rng=2)  # upright, as the model was trained
    write_csv(tmp_path / "bars.csv", X, y)
    write_csv(tmp_path / "emnist-bars.csv", X.transpose(0, 2, 1), y)
    write_csv(tmp_path / "bars-transposed.csv", X.transpose(0, 2, 1), y)
    for name in ("bars.csv", "emnist-bars.csv"):
        result = run_cli_json("evaluate", model, "--dataset", tmp_path / name)
        assert result["n_samples"] == 60 and result["dataset"] == name
        assert result["accuracy"] > 0.8, name
    # control: the same transposed pixels without the EMNIST name stay sideways
    sideways = run_cli_json(
        "evaluate", model, "--dataset", tmp_path / "bars-transposed.csv"
    )
    assert sideways["accuracy"] < 0.6


def test_dataset_mat(tmp_path, pixels_file):
    """A .mat laid out like NIST's matlab.zip: transposed images, letter mapping."""
    X_train, y_train = bar_images(240, rng=3)
    X_test, y_test = bar_images(60, rng=4)

    def part(X, y):
        stored = X.transpose(0, 2, 1).reshape(len(X), 784)  # NIST's orientation
        return {"images": stored, "labels": y.reshape(-1, 1).astype(float)}

    dataset = {
        "train": part(X_train, y_train),
        "test": part(X_test, y_test),
        "mapping": np.array([[0, 65], [1, 66], [2, 67]]),  # A, B, C
    }
    mat = tmp_path / "emnist-bars.mat"
    scipy.io.savemat(mat, {"dataset": dataset})
    metrics = run_cli_json(
        "train", *CLI_MLP, "--dataset", mat, "--epochs", 5, "--output", tmp_path / "m"
    )
    assert metrics["dataset"] == "emnist-bars.mat"
    assert (metrics["n_train"], metrics["n_test"]) == (240, 60)  # the test part
    assert metrics["test_accuracy"] > 0.8
    model = tmp_path / "m" / "model.keras"
    assert load_model(model).classes_.tolist() == ["A", "B", "C"]
    result = run_cli_json("evaluate", model, "--dataset", mat)
    assert result["accuracy"] == pytest.approx(metrics["test_accuracy"])
    # upright pixels from elsewhere: the .mat images were turned upright too
    path, _, y = pixels_file
    predicted = run_cli_json("predict", model, path)
    assert prediction_accuracy(predicted, np.array(["A", "B", "C"])[y]) >= 5 / 6
