"""demo.py: the offline digits demo, from the command line and from Python.

It trains on scikit-learn's digits, scores the held-out part, and writes its
report into a folder once: a second run into it is refused unless told to
overwrite.
"""

from __future__ import annotations

import json

import pytest
from helpers import run_cli

from emnist_estimators.demo import run_demo


def test_demo_command_writes_its_report_once(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout = run_cli(
        "demo", "--model", "mlp", "--epochs", 2, "--output", out, "--json"
    )
    assert code == 0, capsys.readouterr().err
    result = json.loads(stdout)
    assert 0.5 < result["accuracy"] <= 1 and result["n_test"] == 450
    assert (tmp_path / "demo" / "index.html").exists()
    assert result["report"] == str(tmp_path / "demo" / "index.html")
    code, _ = run_cli("demo", "--model", "mlp", "--epochs", 1, "--output", out)
    assert code == 2 and "--overwrite" in capsys.readouterr().err


def test_run_demo_returns_what_it_records_and_refuses_an_unknown_model(tmp_path):
    with pytest.raises(ValueError, match="model must be 'cnn' or 'mlp', got 'svm'"):
        run_demo(model="svm", output=tmp_path / "svm")
    assert not (tmp_path / "svm").exists()  # refused before anything is written
    result = run_demo(model="mlp", epochs=1, output=tmp_path / "run")
    assert result["model"] == "EmnistMLP"
    assert result["n_train"] + result["n_test"] == 1797  # all the digits, once
    assert json.loads((tmp_path / "run" / "demo.json").read_text()) == result
    assert (tmp_path / "run" / "index.html").is_file()
    assert result["report"] == str(tmp_path / "run" / "index.html")
