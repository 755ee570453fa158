"""The train command (cli/train.py): its report, CSV hold-outs, quiet output,
checkpoint folders, and no output folder after a failure."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from helpers import (
    CLI_MLP,
    REPO,
    REPORT_FIGURES,
    assert_real_png,
    bar_images,
    run_cli,
    run_cli_json,
    write_csv,
)

from emnist_estimators.cli import main


def test_train_report_writes_the_report(cli_trained, bar_folder):
    out, metrics = cli_trained
    report = out / "report"
    assert (report / "index.html").is_file()
    assert {p.name for p in report.glob("*.png")} == REPORT_FIGURES
    for name in REPORT_FIGURES:
        assert_real_png(report / name)
        assert f'src="{name}"' in (report / "index.html").read_text()
    # the report scores the same held-out images as metrics.json
    shown = json.loads((report / "metrics.json").read_text())
    assert shown["n_samples"] == metrics["n_test"] == 90
    assert shown["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert metrics["test_accuracy"] > 0.8
    manifest = json.loads((out / ".emnist-estimators.json").read_text())
    assert "report/index.html" in manifest["files"]
    # issue 13.5: the header says what was trained on what, and how long
    page = (report / "index.html").read_text()
    facts = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", page, re.S))
    assert facts["Model"] == "EmnistMLP"
    assert "batch_size=16" in facts["Parameters"].split("<details>")[0]
    idx = "images-idx3-ubyte.gz"
    assert facts["Evaluated on"] == f"t10k-{idx} (test) in {bar_folder}: 90 images"
    assert facts["Trained on"] == f"train-{idx} (train) in {bar_folder}: 300 images"
    assert facts["Training time"] == f"{metrics['fit_seconds']:,.1f} s (5 epochs)"


def test_train_report_says_where_it_is(cli_trained, bar_folder, tmp_path):
    out, metrics = cli_trained
    assert metrics.get("report") == str(out / "report" / "index.html")
    code, text = run_cli(
        "train",
        *CLI_MLP,
        "--dataset",
        bar_folder,
        "--epochs",
        1,
        "--output",
        tmp_path / "m",
        "--report",
    )
    assert code == 0
    assert str(tmp_path / "m" / "report" / "index.html") in text, text


def test_train_csv_holds_out_test_size_for_metrics_and_report(tmp_path):
    X, y = bar_images(60, rng=1)
    write_csv(tmp_path / "bars.csv", X, y)
    metrics = run_cli_json(
        "train",
        *CLI_MLP,
        "--dataset",
        tmp_path / "bars.csv",
        "--epochs",
        1,
        "--test-size",
        0.25,
        "--output",
        tmp_path / "m",
        "--report",
    )
    assert metrics["dataset"] == "bars.csv"
    assert (metrics["n_train"], metrics["n_test"]) == (45, 15)
    shown = json.loads((tmp_path / "m" / "report" / "metrics.json").read_text())
    assert shown["n_samples"] == 15
    assert shown["accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_train_csv_without_test_size_reports_no_test_accuracy(tmp_path, capsys, caplog):
    """A CSV has no test subset: its own training images are no test set."""
    X, y = bar_images(60, rng=1)
    write_csv(tmp_path / "bars.csv", X, y)
    metrics = run_cli_json(
        "train",
        *CLI_MLP,
        "--dataset",
        tmp_path / "bars.csv",
        "--epochs",
        1,
        "--output",
        tmp_path / "m",
        "--report",
    )
    # a warning reaches stderr through logging; in-process pytest captures it
    err = capsys.readouterr().err + caplog.text
    assert metrics["n_train"] == 60
    assert "test_accuracy" not in metrics and "n_test" not in metrics, metrics
    # no report on the training images; and --report is not ignored silently
    assert not (tmp_path / "m" / "report").exists()
    assert "--test-size" in err, err


def test_failed_training_leaves_no_output_folder(tmp_path, capsys):
    code = main(
        [
            "train",
            "--dataset",
            "digits",
            "--output",
            str(tmp_path / "o"),
            "--param",
            "dropout=2.0",
        ]
    )
    assert code == 2 and "dropout" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # a CLI training, 10 s
def test_train_quiet_prints_only_the_result_line(tmp_path):
    """Issue 13.1: TensorFlow's C++ lines (E0000 remapper, I0000 oneDNN) and
    progress bars appeared even with --quiet, for users with no
    TF_CPP_MIN_LOG_LEVEL set."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    args = ["train", "--model", "cnn", "--dataset", "digits", "--epochs", "1"]
    proc = subprocess.run(
        [sys.executable, "-m", "emnist_estimators", *args, "--output", "m", "--quiet"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert not [ln for ln in proc.stderr.splitlines() if NATIVE_LOG.match(ln)]
    assert proc.stderr == ""  # no progress bar, no warning either
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("EmnistCNN trained on 1,347 images")
    assert str(tmp_path / "m" / "model.keras") in lines[0]


def test_cli_train_passes_checkpoint_dir_to_the_estimator(tmp_path, monkeypatch):
    from emnist_estimators import cli
    from emnist_estimators.cli import loading

    seen = {}

    def capture(args, params):
        seen.update(params)
        raise cli.UsageError("stop here")

    monkeypatch.setattr(loading, "make_estimator", capture)
    argv = ["train", "--dataset", "digits", "--output", str(tmp_path / "run")]
    assert main([*argv, "--checkpoint-dir", str(tmp_path / "ckpt")]) == 2
    assert seen["checkpoint_dir"] == str(tmp_path / "ckpt")
    seen.clear()
    assert main(argv) == 2
    assert "checkpoint_dir" not in seen


@pytest.mark.parametrize("inside", ["run", "run/ckpt"])
def test_cli_train_refuses_a_checkpoint_dir_inside_the_output(tmp_path, capsys, inside):
    # the output folder is written whole at the end: checkpoints in it would
    # be lost with a finished training
    argv = ["train", "--dataset", "digits", "--output", str(tmp_path / "run")]
    assert main([*argv, "--checkpoint-dir", str(tmp_path / inside)]) == 2
    assert "is inside --output" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


NATIVE_LOG = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl)")
