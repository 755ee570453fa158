"""Every command's options (cli/parser.py): help with defaults and examples,
sizes checked as they are parsed, names in any case with did-you-mean."""

from __future__ import annotations

import pytest

from emnist_estimators.cli import main

SHARE = "greater than 0 and less than 1"


@pytest.mark.parametrize(
    "argv, option, allowed",
    [
        (["train", "--max-samples", "-1"], "--max-samples", "1 or more"),
        (["train", "--max-samples", "0"], "--max-samples", "1 or more"),
        (["tune", "--max-samples", "1.5"], "--max-samples", "1 or more"),
        (["train", "--test-size", "2"], "--test-size", SHARE),
        (["train", "--test-size", "0"], "--test-size", SHARE),
        (["train", "--test-size", "nan"], "--test-size", SHARE),
    ],
)
def test_sizes_are_checked_as_they_are_parsed(argv, option, allowed, capsys):
    """One line naming the option and its range, not scikit-learn's words."""
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--dataset", "digits", "--output", "never-written"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"emnist-estimators {argv[0]}: error: argument {option}: ")
    assert allowed in last and repr(argv[2]) in last, last
    assert "train_size" not in err and "Got" not in err and "2.0" not in err


def test_help_everywhere(capsys):
    for command in ("data", "demo", "train", "evaluate", "predict", "report", "tune"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        assert "usage: emnist-estimators" in capsys.readouterr().out


def test_split_and_subset_options_take_any_case_and_suggest(capsys):
    """Issue 31, item 5: `--split BYMERGE` is bymerge; a typo gets a suggestion."""
    from emnist_estimators.cli.parser import build_parser

    parser = build_parser()
    args = parser.parse_args(
        ["data", "download", "--split", "BYMERGE", "--subset", "Test"]
    )
    assert (args.split, args.subset) == ("bymerge", "test")
    args = parser.parse_args(
        ["evaluate", "m.keras", "--dataset", "digits", "--subset", "TEST"]
    )
    assert args.subset == "test"
    with pytest.raises(SystemExit) as info:
        main(["data", "download", "--split", "balancd"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown EMNIST split 'balancd'; did you mean 'balanced'?" in err


def _commands(parser, path=()):
    """``(command path, parser)`` for every command and sub-command."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


def test_every_option_has_help_with_its_default_and_every_command_examples():
    """Issue 13.4: --model, --epochs, --subset, --overwrite had no help."""
    import argparse

    from emnist_estimators.cli import build_parser

    parser = build_parser()
    commands = dict(_commands(parser))
    assert {("train",), ("tune",), ("data",), ("data", "clean")} <= set(commands)
    for path, sub in [((), parser), *commands.items()]:
        formatter = sub._get_formatter()
        where = " ".join(path) or "emnist-estimators"
        if path:
            assert "Examples:\n  emnist-estimators " + " ".join(path) in (
                sub.epilog or ""
            ), where
            assert "Examples:" in sub.format_help(), where
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                continue
            if isinstance(action, argparse._SubParsersAction):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help and action.help.strip(), f"{where} {name}: no help"
            if action.option_strings and not action.required:
                shown = formatter._get_help_string(action) % {"default": action.default}
                assert "default" in shown, f"{where} {name}: no default in {shown!r}"
                assert "(default: None)" not in shown, f"{where} {name}"
