"""CLI commands and options run in-process through ``cli.main``, as a user runs
them: ``data download`` and ``data info --checksums`` against a loopback
server, ``train --report``, ``predict --top``, the figures of ``tune``, and the
``--dataset`` forms ``emnist:<split>``, ``file.csv`` and ``file.mat``.

In-process (not subprocesses) so the tests can point the checksum table at
generated files with monkeypatch, and so TensorFlow is imported only once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shutil
import zipfile

import numpy as np
import pytest
import scipy.io
from helpers import ArchiveServer, bar_images, write_idx_folder

from emnist_estimators import load_model
from emnist_estimators.cli import main
from emnist_estimators.datasets import EMNIST_SPLITS, loader, write_idx
from emnist_estimators.datasets import download as download_mod

REPORT_FIGURES = {
    "learning_curves.png",
    "confusion_matrix.png",
    "misclassified.png",
    "sample_predictions.png",
    "confused_pairs.png",
}
# A small MLP that learns the three bar classes in a few epochs.
MLP = ["--model", "mlp", "--batch-size", "16", "--param", "hidden_layer_sizes=(32,)",
       "--param", "lr_schedule=constant"]  # fmt: skip


def run(*args) -> tuple[int, str]:
    """``main(args)`` with stdout captured: (exit code, stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(a) for a in args])
    return code, out.getvalue()


def run_json(*args) -> dict:
    code, out = run(*args, "--json")
    assert code == 0, out
    return json.loads(out)


def assert_real_png(path, size=None) -> None:
    """A PNG file that decodes, of ``size`` pixels if given, and not blank."""
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        if size is not None:
            assert image.size == size, path
        low, high = image.convert("L").getextrema()
        assert high - low > 100, f"{path} is blank"


def write_csv(path, X, y) -> None:
    """The EMNIST CSV export layout: ``label,p0,...,p783``, no header."""
    rows = np.column_stack([y, X.reshape(len(X), -1)]).astype(int)
    np.savetxt(path, rows, fmt="%d", delimiter=",")


def accuracy(result: dict, y) -> float:
    predicted = [p["prediction"] for p in result["predictions"]]
    return float(np.mean(np.array(predicted) == np.asarray(y)))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("cli-commands")


@pytest.fixture(scope="module")
def bars(work):
    """An IDX folder of upright bar images (labels 0, 1, 2), train and test."""
    return write_idx_folder(work / "bars", n_train=300, n_test=90)


@pytest.fixture(scope="module")
def trained(work, bars):
    """``train --report`` of a small MLP: (output folder, printed JSON)."""
    out = work / "model"
    metrics = run_json("train", *MLP, "--dataset", bars, "--epochs", 5, "--output",
                       out, "--report")  # fmt: skip
    return out, metrics


@pytest.fixture
def pixels(tmp_path):
    """Six upright bar images saved as a .npy file, and their labels."""
    X, y = bar_images(6, rng=5)
    path = tmp_path / "pixels.npy"
    np.save(path, X.reshape(6, 784))
    return path, X.reshape(6, 784), y


# --- train --report ------------------------------------------------------------
def test_train_report_writes_the_report(trained, bars):
    out, metrics = trained
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
    assert facts["Evaluated on"] == f"t10k-{idx} (test) in {bars}: 90 images"
    assert facts["Trained on"] == f"train-{idx} (train) in {bars}: 300 images"
    assert facts["Training time"] == f"{metrics['fit_seconds']:,.1f} s (5 epochs)"


def test_train_report_says_where_it_is(trained, bars, tmp_path):
    out, metrics = trained
    assert metrics.get("report") == str(out / "report" / "index.html")
    code, text = run("train", *MLP, "--dataset", bars, "--epochs", 1, "--output",
                     tmp_path / "m", "--report")  # fmt: skip
    assert code == 0
    assert str(tmp_path / "m" / "report" / "index.html") in text, text


def test_train_csv_holds_out_test_size_for_metrics_and_report(tmp_path):
    X, y = bar_images(60, rng=1)
    write_csv(tmp_path / "bars.csv", X, y)
    metrics = run_json("train", *MLP, "--dataset", tmp_path / "bars.csv", "--epochs",
                       1, "--test-size", 0.25, "--output", tmp_path / "m",
                       "--report")  # fmt: skip
    assert metrics["dataset"] == "bars.csv"
    assert (metrics["n_train"], metrics["n_test"]) == (45, 15)
    shown = json.loads((tmp_path / "m" / "report" / "metrics.json").read_text())
    assert shown["n_samples"] == 15
    assert shown["accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_train_csv_without_test_size_reports_no_test_accuracy(tmp_path, capsys, caplog):
    """A CSV has no test subset: its own training images are no test set."""
    X, y = bar_images(60, rng=1)
    write_csv(tmp_path / "bars.csv", X, y)
    metrics = run_json("train", *MLP, "--dataset", tmp_path / "bars.csv", "--epochs",
                       1, "--output", tmp_path / "m", "--report")  # fmt: skip
    # a warning reaches stderr through logging; in-process pytest captures it
    err = capsys.readouterr().err + caplog.text
    assert metrics["n_train"] == 60
    assert "test_accuracy" not in metrics and "n_test" not in metrics, metrics
    # no report on the training images; and --report is not ignored silently
    assert not (tmp_path / "m" / "report").exists()
    assert "--test-size" in err, err


# --- predict --top ---------------------------------------------------------------
def test_predict_top_lists_that_many_classes_best_first(trained, pixels):
    out, _ = trained
    path, X, y = pixels
    result = run_json("predict", out / "model.keras", path, "--top", 2)
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
    assert accuracy(result, y.astype(str)) >= 5 / 6


def test_predict_names_inputs_by_the_path_given(trained, pixels, tmp_path, monkeypatch):
    """Issue 31, item 5: two files of one name in two folders stay apart."""
    out, _ = trained
    path, _, _ = pixels
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copyfile(path, tmp_path / folder / "x.npy")
    monkeypatch.chdir(tmp_path)
    result = run_json("predict", out / "model.keras", "a/x.npy", "b/x.npy", "--top", 1)
    names = [p["input"] for p in result["predictions"]]
    assert names == [f"{d}/x.npy[{i}]" for d in "ab" for i in range(6)]


def test_predict_top_one_and_more_than_the_classes(trained, pixels):
    out, _ = trained
    path, _, _ = pixels
    code, text = run("predict", out / "model.keras", path, "--top", 1)
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
    result = run_json("predict", out / "model.keras", path, "--top", 10)
    for p in result["predictions"]:
        assert sorted(t["class"] for t in p["top"]) == ["0", "1", "2"]
        assert sum(t["probability"] for t in p["top"]) == pytest.approx(1, abs=1e-3)


# --- --dataset forms ---------------------------------------------------------------
def test_dataset_emnist_split(emnist_dir, tmp_path):
    common = ["--dataset", "emnist:mnist", "--subset", "test", "--data-home",
              emnist_dir, "--max-samples", 300]  # fmt: skip
    metrics = run_json("train", "--model", "mlp", *common, "--test-size", 0.3,
                       "--epochs", 5, "--batch-size", 16, "--param",
                       "hidden_layer_sizes=(64,)", "--param", "lr_schedule=constant",
                       "--output", tmp_path / "m")  # fmt: skip
    assert metrics["dataset"] == "EMNIST mnist (test)"
    assert (metrics["n_train"], metrics["n_test"]) == (210, 90)
    assert metrics["test_accuracy"] > 0.5  # ten digits: chance is 0.1
    model = load_model(tmp_path / "m" / "model.keras")
    assert model.classes_.tolist() == list("0123456789")  # characters, from mapping
    result = run_json("evaluate", tmp_path / "m" / "model.keras", *common)
    assert result["n_samples"] == 300 and result["dataset"] == "EMNIST mnist (test)"
    assert result["accuracy"] > 0.5


def test_dataset_emnist_split_names_classes_by_character(emnist_dir, tmp_path):
    metrics = run_json("train", "--model", "mlp", "--dataset", "emnist:byclass",
                       "--subset", "test", "--data-home", emnist_dir, "--max-samples",
                       300, "--epochs", 1, "--param", "hidden_layer_sizes=(16,)",
                       "--output", tmp_path / "m")  # fmt: skip
    assert metrics["dataset"] == "EMNIST byclass (test)" and metrics["n_train"] == 300
    classes = load_model(tmp_path / "m" / "model.keras").classes_.tolist()
    # byclass labels 10..61 are the letters: the model predicts 'A', 'z', not '10'
    assert {"A", "Z", "a", "z", "0"} <= set(classes)
    assert all(len(c) == 1 for c in classes)


def test_dataset_csv(trained, tmp_path):
    """CSV in the export layout; a file named emnist* is stored transposed."""
    out, _ = trained
    model = out / "model.keras"
    X, y = bar_images(60, rng=2)  # upright, as the model was trained
    write_csv(tmp_path / "bars.csv", X, y)
    write_csv(tmp_path / "emnist-bars.csv", X.transpose(0, 2, 1), y)
    write_csv(tmp_path / "bars-transposed.csv", X.transpose(0, 2, 1), y)
    for name in ("bars.csv", "emnist-bars.csv"):
        result = run_json("evaluate", model, "--dataset", tmp_path / name)
        assert result["n_samples"] == 60 and result["dataset"] == name
        assert result["accuracy"] > 0.8, name
    # control: the same transposed pixels without the EMNIST name stay sideways
    sideways = run_json(
        "evaluate", model, "--dataset", tmp_path / "bars-transposed.csv"
    )
    assert sideways["accuracy"] < 0.6


def test_dataset_mat(tmp_path, pixels):
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
    metrics = run_json("train", *MLP, "--dataset", mat, "--epochs", 5, "--output",
                       tmp_path / "m")  # fmt: skip
    assert metrics["dataset"] == "emnist-bars.mat"
    assert (metrics["n_train"], metrics["n_test"]) == (240, 60)  # the test part
    assert metrics["test_accuracy"] > 0.8
    model = tmp_path / "m" / "model.keras"
    assert load_model(model).classes_.tolist() == ["A", "B", "C"]
    result = run_json("evaluate", model, "--dataset", mat)
    assert result["accuracy"] == pytest.approx(metrics["test_accuracy"])
    # upright pixels from elsewhere: the .mat images were turned upright too
    path, _, y = pixels
    predicted = run_json("predict", model, path)
    assert accuracy(predicted, np.array(["A", "B", "C"])[y]) >= 5 / 6


# --- evaluate's warnings (issue 13.2) ---------------------------------------------
def test_evaluate_warns_of_labels_the_model_does_not_know(trained, tmp_path, caplog):
    """A 3-class model scored on 5-class data: 2 labels can never be right."""
    X, _ = bar_images(50, rng=3)
    folder = tmp_path / "five"
    folder.mkdir()
    write_idx(folder / "t10k-images-idx3-ubyte.gz", X)
    labels = (np.arange(50) % 5).astype(np.uint8)  # 0..4; the model knows 0..2
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    out, _ = trained
    code, _ = run("evaluate", out / "model.keras", "--dataset", folder, "--quiet")
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    message = warnings[0]
    assert message.startswith("2 of the 5 labels in t10k-images"), message
    assert "(test) ('3', '4') are not classes of the model, which knows 3" in message
    assert "their 20 images always count as wrong" in message
    assert message.endswith("or train a model on this one.")


def test_evaluate_warns_when_scoring_the_training_images(trained, bars, caplog):
    out, metrics = trained
    assert metrics["data_source"]["dataset"] == str(bars.resolve())
    assert run("evaluate", out / "model.keras", "--dataset", bars, "--quiet")[0] == 0
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    code, _ = run("evaluate", out / "model.keras", "--dataset", bars, "--subset",
                  "train", "--quiet")  # fmt: skip
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert "was trained on these images" in warnings[0]
    assert warnings[0].endswith("use --subset test.")


def test_evaluate_advises_the_part_not_in_use(bars, tmp_path, caplog):
    """Issue 29.4: a model trained on the test subset is not told --subset test."""
    out = tmp_path / "on-test"
    run_json("train", *MLP, "--dataset", bars, "--subset", "test", "--epochs", 1,
             "--output", out)  # fmt: skip
    code, _ = run("evaluate", out / "model.keras", "--dataset", bars, "--quiet")
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert "was trained on these images" in warnings[0]
    assert warnings[0].endswith("use --subset train."), warnings[0]


# --- evaluate --subset held-out (issue 29.4) -----------------------------------------
@pytest.fixture(scope="module")
def held_out_run(work):
    """``train --test-size`` on a CSV (no test subset): (CSV, run folder, metrics)."""
    X, y = bar_images(80, rng=2)
    csv = work / "held-out-bars.csv"
    write_csv(csv, X, y)
    out = work / "held-out-run"
    metrics = run_json("train", *MLP, "--dataset", csv, "--epochs", 3, "--max-samples",
                       72, "--test-size", 0.25, "--output", out)  # fmt: skip
    return csv, out, metrics


def test_evaluate_scores_exactly_the_images_train_held_out(held_out_run, caplog):
    csv, out, metrics = held_out_run
    assert metrics["n_test"] == 18
    result = run_json("evaluate", out / "model.keras", "--subset", "held-out")
    assert result == {
        "accuracy": metrics["test_accuracy"],
        "n_samples": 18,
        "dataset": "25% of held-out-bars.csv, held out",
    }
    # the data may be named again, under any name of the same file
    again = run_json("evaluate", out / "model.keras", "--subset", "held-out",
                     "--dataset", csv)  # fmt: skip
    assert again == result
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    # scoring its training images instead: told where the unseen ones are
    code, _ = run("evaluate", out / "model.keras", "--dataset", csv, "--quiet")
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert warnings[0].endswith("use --subset held-out (the images train held out).")


def test_report_of_the_held_out_images(held_out_run, tmp_path):
    csv, out, metrics = held_out_run
    code, text = run("report", out / "model.keras", "--subset", "held-out",
                     "--output", tmp_path / "rep", "--quiet")  # fmt: skip
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
    result = run_json("evaluate", old / "model.keras", "--subset", "held-out")
    assert result["accuracy"] == metrics["test_accuracy"]
    assert result["n_samples"] == 18


def test_evaluate_held_out_says_when_there_is_none(trained, held_out_run, capsys):
    out, _ = trained
    code, _ = run("evaluate", out / "model.keras", "--subset", "held-out")
    assert code == 2
    err = capsys.readouterr().err
    assert "held no images out (train ran without --test-size)" in err, err
    code, _ = run("evaluate", held_out_run[1] / "model.keras", "--subset",
                  "held-out", "--dataset", "digits")  # fmt: skip
    assert code == 2
    assert "held out images of " in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", str(out / "model.keras")])
    assert stop.value.code == 2
    assert "required: --dataset (unless --subset held-out)" in capsys.readouterr().err


# --- option ranges (issue 30.11) ----------------------------------------------------
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


# --- tune figures ----------------------------------------------------------------
def test_tune_writes_real_figures(bars, tmp_path):
    out = tmp_path / "tuning"
    result = run_json("tune", "--model", "mlp", "--dataset", bars, "--max-samples", 150,
                      "--n-trials", 3, "--epochs", 2, "--pruner", "none",
                      "--random-state", 0, "--param", "hidden_layer_sizes=(16,)",
                      "--output", out)  # fmt: skip
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


def test_tune_ends_with_the_train_command_of_its_best_parameters(bars, tmp_path):
    """Issue 13.2: the last line trains the best parameters, as it reads."""
    import shlex

    out = tmp_path / "tuning"
    code, text = run("tune", "--model", "mlp", "--dataset", bars, "--max-samples", 90,
                     "--n-trials", 2, "--epochs", 1, "--pruner", "none", "--no-plots",
                     "--random-state", 3, "--param", "hidden_layer_sizes=(16,)",
                     "--output", out)  # fmt: skip
    assert code == 0
    summary = json.loads((out / "emnist-mlp-summary.json").read_text())
    last = text.splitlines()[-1]
    assert last.startswith("train the best parameters: emnist-estimators train ")
    words = shlex.split(last.split(": ", 1)[1])
    assert words == shlex.split(summary["train_command"])
    assert run(*words[1:], "--quiet")[0] == 0  # the command works as printed
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


def test_tune_shows_optuna_trial_lines_only_when_verbose(bars, tmp_path):
    """Issue 13.1: optuna's per-trial INFO lines are hidden unless -v."""
    import logging

    import optuna

    records = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = records.append
    logger = logging.getLogger("optuna")
    logger.addHandler(handler)
    before = optuna.logging.get_verbosity()
    tune = ["tune", "--model", "mlp", "--param", "hidden_layer_sizes=(16,)",
            "--dataset", bars, "--max-samples", 90, "--n-trials", 2, "--epochs", 1,
            "--pruner", "none", "--no-plots"]  # fmt: skip
    try:
        assert run(*tune, "--output", tmp_path / "quiet")[0] == 0
        quiet = [r.getMessage() for r in records if r.levelno < logging.WARNING]
        records.clear()
        assert run(*tune, "--output", tmp_path / "verbose", "-v")[0] == 0
        verbose = [r.getMessage() for r in records if r.levelno < logging.WARNING]
    finally:
        logger.removeHandler(handler)
    assert quiet == []
    assert any("Trial 0 finished" in m for m in verbose), verbose
    assert optuna.logging.get_verbosity() == before  # restored after each run


# --- data download / data info --checksums -------------------------------------------
N_DOWNLOAD = 60
MAPPING = "".join(f"{i} {48 + i}\n" for i in range(10)).encode()


def _split_archive(tmp_path) -> tuple[bytes, dict[str, bytes]]:
    """A gzip.zip-like archive with a generated mnist test split and one more."""
    X, _ = bar_images(N_DOWNLOAD, rng=6)
    y = (np.arange(N_DOWNLOAD) % 10).astype(np.uint8)
    write_idx(tmp_path / "i.gz", X.transpose(0, 2, 1))
    write_idx(tmp_path / "l.gz", y)
    members = {
        "gzip/emnist-mnist-test-images-idx3-ubyte.gz": (tmp_path / "i.gz").read_bytes(),
        "gzip/emnist-mnist-test-labels-idx1-ubyte.gz": (tmp_path / "l.gz").read_bytes(),
        "gzip/emnist-mnist-mapping.txt": MAPPING,
        "gzip/emnist-mnist-train-labels-idx1-ubyte.gz": b"\0" * 5000,  # not wanted
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue(), members


@pytest.fixture
def generated_official(tmp_path, monkeypatch):
    """Make a generated archive's members the 'official' ones, sizes included."""
    payload, members = _split_archive(tmp_path)
    sha = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    size = {name: len(data) for name, data in members.items()}
    monkeypatch.setattr(download_mod, "expected_sha256", sha.get)
    monkeypatch.setattr(download_mod, "official_size", size.get)
    monkeypatch.setattr(loader, "expected_sha256", sha.get)
    sizes = dict(EMNIST_SPLITS)
    sizes["mnist"] = (N_DOWNLOAD, N_DOWNLOAD, 10)
    monkeypatch.setattr(loader, "EMNIST_SPLITS", sizes)
    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(tmp_path / "user-cache"))
    return payload, members


def test_data_download_then_info_checksums(tmp_path, generated_official, capsys):
    payload, members = generated_official
    home = tmp_path / "home"
    wanted = [name for name in members if "train" not in name]
    with ArchiveServer(payload) as server:
        result = run_json("data", "download", "--split", "mnist", "--subset", "test",
                          "--data-home", home, "--url", server.url)  # fmt: skip
        assert result["n_samples"] == N_DOWNLOAD and result["n_classes"] == 10
        assert result["folder"] == str(home)
        for name in wanted:  # the files landed, byte for byte, and nothing else
            assert (home / name.removeprefix("gzip/")).read_bytes() == members[name]
        assert not (home / "emnist-mnist-train-labels-idx1-ubyte.gz").exists()
        requests = len(server.log)
        again = run_json("data", "download", "--split", "mnist", "--subset", "test",
                         "--data-home", home, "--url", server.url)  # fmt: skip
        assert again["n_samples"] == N_DOWNLOAD
        assert len(server.log) == requests  # files present: nothing fetched again

    rows = run_json("data", "info", "--data-home", home, "--checksums")
    data_rows = {r["path"]: r for r in rows if r["kind"] != "cache"}
    assert set(data_rows) == {str(home / n.removeprefix("gzip/")) for n in wanted}
    assert all(r["sha256_ok"] is True for r in data_rows.values())
    unchecked = run_json("data", "info", "--data-home", home)
    assert all(r["sha256_ok"] is None for r in unchecked)
    capsys.readouterr()

    code, text = run("data", "info", "--data-home", home, "--checksums")
    assert code == 0 and text.count("sha256 ok") == 3 and "MISMATCH" not in text
    labels = home / "emnist-mnist-test-labels-idx1-ubyte.gz"
    blob = bytearray(labels.read_bytes())
    blob[-1] ^= 0xFF  # one byte differs from the recorded file
    labels.write_bytes(bytes(blob))
    code, text = run("data", "info", "--data-home", home, "--checksums")
    assert code == 1
    (bad,) = [line for line in text.splitlines() if "MISMATCH" in line]
    assert str(labels) in bad and text.count("sha256 ok") == 2


def test_data_info_checksums_on_official_files(emnist_dir, tmp_path, monkeypatch):
    """NIST's real files pass against the published table; a changed copy fails."""
    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(tmp_path / "user-cache"))
    home = tmp_path / "home"
    home.mkdir()
    names = [
        "emnist-mnist-test-images-idx3-ubyte.gz",
        "emnist-mnist-test-labels-idx1-ubyte.gz",
        "emnist-mnist-mapping.txt",
    ]
    for name in names:
        shutil.copyfile(emnist_dir / name, home / name)
    rows = run_json("data", "info", "--data-home", home, "--checksums")
    assert {r["path"]: r["sha256_ok"] for r in rows} == {
        str(home / n): True for n in names
    }
    with open(home / names[1], "ab") as fh:
        fh.write(b"\0")
    code, text = run("data", "info", "--data-home", home, "--checksums")
    assert code == 1
    assert [line.split()[1] for line in text.splitlines() if "MISMATCH" in line] == [
        str(home / names[1])
    ]
