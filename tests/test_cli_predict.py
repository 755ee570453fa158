"""The predict command (cli/predict.py): ``--top`` classes, best first, and
inputs named by the path given."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from helpers import (
    prediction_accuracy,
    run_cli,
    run_cli_json,
)

from emnist_estimators import load_model


def test_predict_top_lists_that_many_classes_best_first(cli_trained, pixels_file):
    out, _ = cli_trained
    path, X, y = pixels_file
    result = run_cli_json("predict", out / "model.keras", path, "--top", 2)
    proba = load_model(out / "model.keras").predict_proba(X)
    assert [p["input"] for p in result["predictions"]] == [
        f"{path}[{i}]" for i in range(6)
    ]
    for p, row in zip(result["predictions"], proba, strict=True):
        top = p["top"]
        assert len(top) == 2
        shown = [t["probability"] for t in top]
        assert shown[0] >= shown[1]
        assert top[0]["class"] == p["prediction"]
        assert top[0]["class"] != top[1]["class"]
        # the two most likely classes, with the model's probabilities
        np.testing.assert_allclose(shown, np.sort(row)[::-1][:2], atol=1e-4)
    assert prediction_accuracy(result, y.astype(str)) >= 5 / 6


def test_predict_names_inputs_by_the_path_given(
    cli_trained, pixels_file, tmp_path, monkeypatch
):
    """Issue 31, item 5: two files of one name in two folders stay apart."""
    out, _ = cli_trained
    path, _, _ = pixels_file
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copyfile(path, tmp_path / folder / "x.npy")
    monkeypatch.chdir(tmp_path)
    result = run_cli_json(
        "predict", out / "model.keras", "a/x.npy", "b/x.npy", "--top", 1
    )
    names = [p["input"] for p in result["predictions"]]
    assert names == [f"{d}/x.npy[{i}]" for d in "ab" for i in range(6)]


def test_predict_top_one_and_more_than_the_classes(cli_trained, pixels_file):
    out, _ = cli_trained
    path, _, _ = pixels_file
    code, text = run_cli("predict", out / "model.keras", path, "--top", 1)
    assert code == 0
    lines = text.splitlines()
    assert len(lines) == 6
    for i, line in enumerate(lines):  # "/tmp/.../pixels.npy[0]: 2  (2 0.987)"
        shown = re.fullmatch(
            rf"{re.escape(str(path))}\[{i}\]: (\S+)  \((\S+) (\d\.\d{{3}})\)", line
        )
        assert shown, line  # one class with one probability
        assert shown[1] == shown[2]
    # asking for more classes than the model has lists all 3, summing to 1
    result = run_cli_json("predict", out / "model.keras", path, "--top", 10)
    for p in result["predictions"]:
        assert sorted(t["class"] for t in p["top"]) == ["0", "1", "2"]
        assert sum(t["probability"] for t in p["top"]) == pytest.approx(1, abs=1e-3)
