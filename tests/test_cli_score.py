"""The evaluate and report commands (cli/score.py): their warnings, and
scoring exactly the images a train run held out."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from helpers import (
    CLI_MLP,
    bar_images,
    run_cli,
    run_cli_json,
    write_csv,
)

from emnist_estimators.cli import main
from emnist_estimators.datasets import write_idx


def test_evaluate_warns_of_labels_the_model_does_not_know(
    cli_trained, tmp_path, caplog
):
    """A 3-class model scored on 5-class data: 2 labels can never be right."""
    X, _ = bar_images(50, rng=3)
    folder = tmp_path / "five"
    folder.mkdir()
    write_idx(folder / "t10k-images-idx3-ubyte.gz", X)
    labels = (np.arange(50) % 5).astype(np.uint8)  # 0..4; the model knows 0..2
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    out, _ = cli_trained
    code, _ = run_cli("evaluate", out / "model.keras", "--dataset", folder, "--quiet")
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    message = warnings[0]
    assert message.startswith("2 of the 5 labels in t10k-images"), message
    assert "(test) ('3', '4') are not classes of the model, which knows 3" in message
    assert "their 20 images always count as wrong" in message
    assert message.endswith("or train a model on this one.")


def test_evaluate_warns_when_scoring_the_training_images(
    cli_trained, bar_folder, caplog
):
    out, metrics = cli_trained
    assert metrics["data_source"]["dataset"] == str(bar_folder.resolve())
    assert (
        run_cli("evaluate", out / "model.keras", "--dataset", bar_folder, "--quiet")[0]
        == 0
    )
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    code, _ = run_cli(
        "evaluate",
        out / "model.keras",
        "--dataset",
        bar_folder,
        "--subset",
        "train",
        "--quiet",
    )
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert "was trained on these images" in warnings[0]
    assert warnings[0].endswith("use --subset test.")


def test_evaluate_advises_the_part_not_in_use(bar_folder, tmp_path, caplog):
    """Issue 29.4: a model trained on the test subset is not told --subset test."""
    out = tmp_path / "on-test"
    run_cli_json(
        "train",
        *CLI_MLP,
        "--dataset",
        bar_folder,
        "--subset",
        "test",
        "--epochs",
        1,
        "--output",
        out,
    )
    code, _ = run_cli(
        "evaluate", out / "model.keras", "--dataset", bar_folder, "--quiet"
    )
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert "was trained on these images" in warnings[0]
    assert warnings[0].endswith("use --subset train."), warnings[0]


@pytest.fixture(scope="module")
def held_out_run(cli_work):
    """``train --test-size`` on a CSV (no test subset): (CSV, run folder, metrics)."""
    X, y = bar_images(80, rng=2)
    csv = cli_work / "held-out-bars.csv"
    write_csv(csv, X, y)
    out = cli_work / "held-out-run"
    metrics = run_cli_json(
        "train",
        *CLI_MLP,
        "--dataset",
        csv,
        "--epochs",
        3,
        "--max-samples",
        72,
        "--test-size",
        0.25,
        "--output",
        out,
    )
    return csv, out, metrics


def test_evaluate_scores_exactly_the_images_train_held_out(held_out_run, caplog):
    csv, out, metrics = held_out_run
    assert metrics["n_test"] == 18
    result = run_cli_json("evaluate", out / "model.keras", "--subset", "held-out")
    assert result == {
        "accuracy": metrics["test_accuracy"],
        "n_samples": 18,
        "dataset": "25% of held-out-bars.csv, held out",
    }
    # the data may be named again, under any name of the same file
    again = run_cli_json(
        "evaluate", out / "model.keras", "--subset", "held-out", "--dataset", csv
    )
    assert again == result
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    # scoring its training images instead: told where the unseen ones are
    code, _ = run_cli("evaluate", out / "model.keras", "--dataset", csv, "--quiet")
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert warnings[0].endswith("use --subset held-out (the images train held out).")


def test_report_of_the_held_out_images(held_out_run, tmp_path):
    csv, out, metrics = held_out_run
    code, text = run_cli(
        "report",
        out / "model.keras",
        "--subset",
        "held-out",
        "--output",
        tmp_path / "rep",
        "--quiet",
    )
    assert code == 0, text
    shown = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert shown["n_samples"] == 18
    assert shown["accuracy"] == pytest.approx(metrics["test_accuracy"])
    page = (tmp_path / "rep" / "index.html").read_text()
    facts = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", page, re.S))
    assert facts["Evaluated on"] == "25% of held-out-bars.csv, held out: 18 images"
    assert facts["Trained on"] == "held-out-bars.csv: 54 images"


def test_evaluate_held_out_of_a_run_folder_written_before_the_rows_file(
    held_out_run, tmp_path
):
    """Today's run folders: the rows are chosen again from the split's record."""
    _, out, metrics = held_out_run
    old = tmp_path / "old-run"
    shutil.copytree(out, old)
    (old / "held_out_rows.npy").unlink()
    record = json.loads((old / "metrics.json").read_text())
    record["data_source"] = {
        k: record["data_source"][k]
        for k in ("dataset", "subset", "test_size", "max_samples")
    }
    (old / "metrics.json").write_text(json.dumps(record))
    result = run_cli_json("evaluate", old / "model.keras", "--subset", "held-out")
    assert result["accuracy"] == metrics["test_accuracy"]
    assert result["n_samples"] == 18


def test_evaluate_held_out_says_when_there_is_none(cli_trained, held_out_run, capsys):
    out, _ = cli_trained
    code, _ = run_cli("evaluate", out / "model.keras", "--subset", "held-out")
    assert code == 2
    err = capsys.readouterr().err
    assert "held no images out (train ran without --test-size)" in err, err
    code, _ = run_cli(
        "evaluate",
        held_out_run[1] / "model.keras",
        "--subset",
        "held-out",
        "--dataset",
        "digits",
    )
    assert code == 2
    assert "held out images of " in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", str(out / "model.keras")])
    assert stop.value.code == 2
    assert "required: --dataset (unless --subset held-out)" in capsys.readouterr().err
