"""The tune command (cli/tune.py): its figures, the train command of its
best parameters, and what it prints."""

from __future__ import annotations

import json

import pytest
from helpers import (
    assert_real_png,
    run_cli,
    run_cli_json,
)


def test_tune_writes_real_figures(bar_folder, tmp_path):
    out = tmp_path / "tuning"
    result = run_cli_json(
        "tune",
        "--model",
        "mlp",
        "--dataset",
        bar_folder,
        "--max-samples",
        150,
        "--n-trials",
        3,
        "--epochs",
        2,
        "--pruner",
        "none",
        "--random-state",
        0,
        "--param",
        "hidden_layer_sizes=(16,)",
        "--output",
        out,
    )
    names = {
        "optimization_history", "param_importances", "parallel_coordinate",
        "intermediate_values",
    }  # fmt: skip
    expected = {str(out / f"emnist-mlp-{name}.png") for name in names}
    assert set(result["figures"]) == expected
    for figure in result["figures"]:
        assert_real_png(out.joinpath(figure), size=(900, 500))
    summary = json.loads((out / "emnist-mlp-summary.json").read_text())
    assert set(summary["figures"]) == expected
    manifest = json.loads((out / ".emnist-estimators.json").read_text())
    assert {f"emnist-mlp-{name}.png" for name in names} <= set(manifest["files"])


def test_tune_ends_with_the_train_command_of_its_best_parameters(bar_folder, tmp_path):
    """Issue 13.2: the last line trains the best parameters, as it reads."""
    import shlex

    out = tmp_path / "tuning"
    code, text = run_cli(
        "tune",
        "--model",
        "mlp",
        "--dataset",
        bar_folder,
        "--max-samples",
        90,
        "--n-trials",
        2,
        "--epochs",
        1,
        "--pruner",
        "none",
        "--no-plots",
        "--random-state",
        3,
        "--param",
        "hidden_layer_sizes=(16,)",
        "--output",
        out,
    )
    assert code == 0
    summary = json.loads((out / "emnist-mlp-summary.json").read_text())
    last = text.splitlines()[-1]
    assert last.startswith("train the best parameters: emnist-estimators train ")
    words = shlex.split(last.split(": ", 1)[1])
    assert words == shlex.split(summary["train_command"])
    assert run_cli(*words[1:], "--quiet")[0] == 0  # the command works as printed
    trained = json.loads((out / "best-model" / "params.json").read_text())
    for key, value in summary["best_params"].items():
        assert trained[key] == pytest.approx(value), key
    assert trained["hidden_layer_sizes"] == [16] and trained["epochs"] == 1
    assert trained["random_state"] == 3
    # optuna-dashboard is not installed here: say how to get it
    assert "pip install optuna-dashboard, then optuna-dashboard sqlite:///" in text


def test_tune_suggests_optuna_dashboard_only_when_installed(monkeypatch):
    import importlib.util

    from emnist_estimators.cli import tune

    real = importlib.util.find_spec
    for installed in (True, False):
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *a, on=installed: (
                (object() if on else None) if name == "optuna_dashboard" else real(name)
            ),
        )
        hint = tune.dashboard_hint("journal:study.log")
        if installed:
            assert hint == "view: optuna-dashboard study.log"
        else:
            assert hint.startswith("view in a browser: pip install optuna-dashboard")


def test_tune_shows_optuna_trial_lines_only_when_verbose(bar_folder, tmp_path):
    """Issue 13.1: optuna's per-trial INFO lines are hidden unless -v."""
    import logging

    import optuna

    records = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = records.append
    logger = logging.getLogger("optuna")
    logger.addHandler(handler)
    before = optuna.logging.get_verbosity()
    tune = [
        "tune",
        "--model",
        "mlp",
        "--param",
        "hidden_layer_sizes=(16,)",
        "--dataset",
        bar_folder,
        "--max-samples",
        90,
        "--n-trials",
        2,
        "--epochs",
        1,
        "--pruner",
        "none",
        "--no-plots",
    ]
    try:
        assert run_cli(*tune, "--output", tmp_path / "quiet")[0] == 0
        quiet = [r.getMessage() for r in records if r.levelno < logging.WARNING]
        records.clear()
        assert run_cli(*tune, "--output", tmp_path / "verbose", "-v")[0] == 0
        verbose = [r.getMessage() for r in records if r.levelno < logging.WARNING]
    finally:
        logger.removeHandler(handler)
    assert quiet == []
    assert any("Trial 0 finished" in m for m in verbose), verbose
    assert optuna.logging.get_verbosity() == before  # restored after each run


def test_tune_with_two_objectives_draws_the_pareto_front(bar_folder, tmp_path):
    """Issue 33.2: --objectives score,fit_time; the front in the figures, the
    summary and the text."""
    out = tmp_path / "tuning"
    args = [
        *("tune", "--model", "mlp", "--dataset", bar_folder, "--max-samples", 120),
        *("--n-trials", 3, "--epochs", 1, "--random-state", 0),
        *("--param", "hidden_layer_sizes=(16,)", "--objectives", "score, fit_time"),
    ]
    code, text = run_cli(*args, "--output", out)
    assert code == 0, text
    front = out / "emnist-mlp-pareto_front-fit_time.png"
    assert_real_png(front, size=(900, 500))
    summary = json.loads((out / "emnist-mlp-summary.json").read_text())
    assert summary["objectives"] == ["score", "fit_time"]
    assert str(front) in summary["figures"]
    assert summary["pareto_front"], "an empty front"
    assert {"score", "fit_time"} == set(summary["pareto_front"][0]["values"])
    assert summary["states"]["PRUNED"] == 0  # 'auto' prunes nothing here
    manifest = json.loads((out / ".emnist-estimators.json").read_text())
    assert front.name in manifest["files"]
    lines = text.splitlines()
    start = lines.index(f"Pareto front ({len(summary['pareto_front'])} trials):")
    assert lines[start + 1].split() == ["trial", "score", "fit_time"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--objectives", "score,speed"], "Unknown objectives ['speed']"),
        (["--objectives", "fit_time"], "must include 'score'"),
        (
            ["--objectives", "score,n_params", "--pruner", "median"],
            "does not prune multi-objective studies",
        ),
    ],
)
def test_tune_refuses_bad_objectives_before_any_work(
    bar_folder, tmp_path, capsys, extra, message
):
    out = tmp_path / "tuning"
    code, _ = run_cli(
        *("tune", "--dataset", bar_folder, "--n-trials", 1), *extra, "--output", out
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
