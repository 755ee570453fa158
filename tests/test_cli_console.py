"""The console (cli/console.py): TensorFlow stays unimported until needed,
and quiet unless ``--verbose``."""

from __future__ import annotations

import os

from helpers import (
    modules_loaded_by,
)

from emnist_estimators.cli import main


def test_tensorflow_log_level_is_set_by_the_cli_unless_verbose(tmp_path, monkeypatch):
    info = ["data", "info", "--data-home", str(tmp_path), "--json"]
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert main(["-v", *info]) == 0
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ  # -v: TensorFlow's own log
    assert main([*info, "--verbose"]) == 0  # after the command, too
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    assert main(info) == 0
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert main(info) == 0
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"  # the user's choice wins


def test_cli_module_imports_no_tensorflow():
    """main() sets TensorFlow's log level: nothing may import it before."""
    loaded = modules_loaded_by(
        "from emnist_estimators.cli import build_parser\n"
        "build_parser().parse_args(['train', '--dataset', 'digits', '--output', 'o'])",
        ("tensorflow", "keras"),
    )
    assert loaded == []
