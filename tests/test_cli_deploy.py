"""The export and serve commands (cli/deploy.py)."""

from __future__ import annotations

import sys

import pytest

from emnist_estimators.cli import main


def test_without_the_serve_extra_the_command_says_how_to_install_it(monkeypatch):
    from emnist_estimators.serve import require_http_stack

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn fails
    with pytest.raises(ImportError, match=r"emnist-estimators\[serve\]"):
        require_http_stack()
    assert main(["serve", "no-such-model.keras"]) == 1  # before loading the model


def test_the_serve_command_takes_allow_host():
    from emnist_estimators.cli.parser import build_parser

    args = build_parser().parse_args(
        ["serve", "m.keras", "--allow-host", "a.example", "--allow-host", "10.0.0.5"]
    )
    assert args.allow_host == ["a.example", "10.0.0.5"]
