"""The command line, driven as a user would: subprocesses and exit codes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from helpers import REPO, bar_images, modules_loaded_by, write_idx_folder

from emnist_estimators.cli import main


def cli(*args, cwd, check=True):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-m", "emnist_estimators", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small CNN trained through the CLI, shared by the read-only tests."""
    work = tmp_path_factory.mktemp("cli")
    data = write_idx_folder(work / "bars")
    proc = cli(
        "train",
        "--model",
        "cnn",
        "--dataset",
        data,
        "--output",
        work / "model",
        "--epochs",
        8,
        "--batch-size",
        32,
        "--param",
        "filters=(8,)",
        "--param",
        "dense_units=(32,)",
        "--param",
        "lr_schedule=constant",
        "--json",
        cwd=work,
    )
    return work, data, json.loads(proc.stdout)


def test_train_writes_model_and_metrics(trained):
    work, _, metrics = trained
    out = work / "model"
    assert sorted(p.name for p in out.iterdir()) == [
        ".emnist-estimators.json",
        "history.json",
        "metrics.json",
        "model.keras",
        "params.json",
    ]
    manifest = json.loads((out / ".emnist-estimators.json").read_text())
    assert manifest["command"] == "train" and "model.keras" in manifest["files"]
    assert metrics["n_train"] == 300 and metrics["n_test"] == 90
    assert metrics["test_accuracy"] > 0.8
    params = json.loads((out / "params.json").read_text())
    assert params["filters"] == "(8,)" or params["filters"] == [8]
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 8
    assert not [p for p in work.iterdir() if p.name.startswith(".model.tmp")]


def test_evaluate(trained):
    work, data, metrics = trained
    proc = cli(
        "evaluate",
        work / "model" / "model.keras",
        "--dataset",
        data,
        "--json",
        cwd=work,
    )
    result = json.loads(proc.stdout)
    assert result["accuracy"] == pytest.approx(metrics["test_accuracy"])
    text = cli("evaluate", work / "model" / "model.keras", "--dataset", data, cwd=work)
    assert "precision" in text.stdout  # per-class report


def test_predict_png_files(trained, tmp_path):
    from PIL import Image

    work, _, _ = trained
    X, y = bar_images(6, rng=5)
    files = []
    for i, img in enumerate(X):
        # dark ink on white paper, larger than 28x28, in colour: as a user scans it
        page = np.kron(255 - img, np.ones((4, 4), np.uint8))
        path = tmp_path / f"char{i}.png"
        Image.fromarray(page).convert("RGB").save(path)
        files.append(path)
    proc = cli("predict", work / "model" / "model.keras", *files, "--json", cwd=work)
    predictions = json.loads(proc.stdout)["predictions"]
    # each input named by its path as given (issue 31, item 5), not its name only
    assert [p["input"] for p in predictions] == [str(f) for f in files]
    predicted = [int(p["prediction"]) for p in predictions]
    assert np.mean(np.array(predicted) == y) >= 5 / 6
    # 3 classes, --top 3 by default: the shown probabilities are all of them
    assert all(len(p["top"]) == 3 for p in predictions)
    assert all(
        abs(sum(t["probability"] for t in p["top"]) - 1) < 1e-3 for p in predictions
    )
    assert not any(p["blank"] for p in predictions)
    np.save(tmp_path / "pixels.npy", X.reshape(6, 784))
    text = cli(
        "predict", work / "model" / "model.keras", tmp_path / "pixels.npy", cwd=work
    )
    assert text.stdout.count("pixels.npy[") == 6


def test_predict_flags_blank_pictures(trained, tmp_path):
    """Issue 11.6: a blank picture got a confident-looking label."""
    from PIL import Image

    work, _, _ = trained
    Image.new("RGB", (50, 70), "white").save(tmp_path / "white.png")
    Image.new("RGBA", (50, 70), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    X, _ = bar_images(1, rng=3)
    Image.fromarray(255 - X[0]).save(tmp_path / "bar.png")
    files = [tmp_path / n for n in ("white.png", "bar.png", "clear.png")]
    proc = cli("predict", work / "model" / "model.keras", *files, "--json", cwd=work)
    blank = [p["blank"] for p in json.loads(proc.stdout)["predictions"]]
    assert blank == [True, False, True]
    proc = cli("predict", work / "model" / "model.keras", *files, cwd=work)
    lines = proc.stdout.splitlines()
    assert ["BLANK" in line for line in lines] == [True, False, True]
    assert "2 of 3 inputs are blank" in proc.stderr


def test_report_figures_and_html(trained, tmp_path):
    work, data, _ = trained
    cli(
        "report",
        work / "model" / "model.keras",
        "--dataset",
        data,
        "--output",
        tmp_path / "rep",
        cwd=work,
    )
    html = (tmp_path / "rep" / "index.html").read_text()
    pngs = sorted(p.name for p in (tmp_path / "rep").glob("*.png"))
    assert set(pngs) == {
        "learning_curves.png",
        "confusion_matrix.png",
        "misclassified.png",
        "sample_predictions.png",
        "confused_pairs.png",
    }
    for name in pngs:
        blob = (tmp_path / "rep" / name).read_bytes()
        assert blob.startswith(b"\x89PNG\r\n\x1a\n") and len(blob) > 2000
        assert f'src="{name}"' in html
    facts = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", html, re.S))
    assert re.fullmatch(r"<b>0\.\d{4}</b>", facts["Accuracy"])
    # the training time comes from the metrics.json train wrote beside the model
    metrics = json.loads((work / "model" / "metrics.json").read_text())
    assert facts["Training time"] == f"{metrics['fit_seconds']:,.1f} s (8 epochs)"
    assert (
        facts["Trained on"]
        == f"train-images-idx3-ubyte.gz (train) in {data.resolve()}: 300 images"
    )


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["evaluate", "missing.keras", "--dataset", "digits"], 2, "does not exist"),
        (["train", "--dataset", "no-such-dataset", "--output", "o"], 2, "not found"),
        (
            ["train", "--dataset", "digits", "--output", "o", "--param", "widht=3"],
            2,
            "Unknown EmnistCNN parameter",
        ),
    ],
)
def test_bad_input_exit_codes(tmp_path, args, code, message):
    proc = cli(*args, cwd=tmp_path, check=False)
    assert proc.returncode == code
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_corrupt_model_and_undecodable_image(trained, tmp_path):
    work, _, _ = trained
    (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04garbage")
    proc = cli(
        "predict",
        tmp_path / "bad.keras",
        tmp_path / "bad.keras",
        cwd=tmp_path,
        check=False,
    )
    # a corrupt model file is bad input, like an undecodable image: exit 2
    assert proc.returncode == 2 and "not a saved emnist-estimators model" in proc.stderr
    (tmp_path / "x.png").write_bytes(b"not an image")
    proc = cli(
        "predict",
        work / "model" / "model.keras",
        tmp_path / "x.png",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2 and "Cannot decode" in proc.stderr


def test_existing_output_is_refused_unless_overwrite(trained, tmp_path):
    work, data, _ = trained
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    args = ("train", "--model", "mlp", "--dataset", data, "--epochs", 1, "--quiet")
    proc = cli(*args, "--output", tmp_path / "out", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "already exists" in proc.stderr
    # --overwrite never deletes a folder this package did not write
    proc = cli(
        *args, "--output", tmp_path / "out", "--overwrite", cwd=tmp_path, check=False
    )
    assert proc.returncode == 2 and "not written by emnist-estimators" in proc.stderr
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    cli(*args, "--output", tmp_path / "run", cwd=tmp_path)
    first = (tmp_path / "run" / "model.keras").read_bytes()
    cli(
        *args,
        "--output",
        tmp_path / "run",
        "--overwrite",
        "--random-state",
        1,
        cwd=tmp_path,
    )
    assert (tmp_path / "run" / "model.keras").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "run"]


def test_demo_command_writes_its_report_once(tmp_path):
    proc = cli(
        "demo",
        "--model",
        "mlp",
        "--epochs",
        2,
        "--output",
        "demo",
        "--json",
        cwd=tmp_path,
    )
    result = json.loads(proc.stdout)
    assert 0.5 < result["accuracy"] <= 1 and result["n_test"] == 450
    assert (tmp_path / "demo" / "index.html").exists()
    assert result["report"] == str(tmp_path / "demo" / "index.html")
    proc = cli(
        "demo",
        "--model",
        "mlp",
        "--epochs",
        1,
        "--output",
        "demo",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2 and "--overwrite" in proc.stderr


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


def test_console_script_is_installed():
    exe = shutil.which("emnist-estimators") or (
        os.path.join(os.path.dirname(sys.executable), "emnist-estimators")
    )
    if not os.path.exists(exe):
        pytest.skip("the package is not installed in this environment (pip install .)")
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and re.match(r"\d+\.\d+", proc.stdout)


def test_data_info_json(tmp_path, capsys, monkeypatch):
    # its own empty user cache: other tests' caches must not show up here
    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(tmp_path / "cache"))
    assert main(["data", "info", "--data-home", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_saved_model_is_a_keras_archive(trained):
    work, _, _ = trained
    with zipfile.ZipFile(work / "model" / "model.keras") as zf:
        names = set(zf.namelist())
    assert {"config.json", "model.weights.h5", "emnist_estimators.json"} <= names


def test_data_clean_removes_caches_and_stale_temps_only(tmp_path, capsys, monkeypatch):
    """Issue 11.3: caches and temps of killed writers can be listed and removed."""
    # data clean also empties the user cache: give it one that only this test
    # fills (the session's is shared with tests that cache real data)
    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(tmp_path / "user-cache"))
    from emnist_estimators.datasets.cache import load_cached_images

    data = write_idx_folder(tmp_path / "bars", n_train=30, n_test=9)
    load_cached_images(data / "train-images-idx3-ubyte.gz")
    caches = sorted(p.name for p in data.iterdir() if ".upright." in p.name)
    assert caches  # the .npy and its sidecar
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    stale = data / f".{caches[0]}.{dead}.tmp"  # a writer killed mid-write
    stale.write_bytes(b"\0" * 1000)
    originals = sorted(p.name for p in data.iterdir() if p.name.endswith("ubyte.gz"))
    assert main(["data", "clean", "--data-home", str(data), "--dry-run", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["would_remove"]
    assert sorted(os.path.basename(p) for p in listed) == sorted([*caches, stale.name])
    assert stale.exists()  # dry run removes nothing
    assert main(["data", "clean", "--data-home", str(data)]) == 0
    assert "removed 3 file(s)" in capsys.readouterr().out
    assert sorted(p.name for p in data.iterdir()) == originals


# --- quiet by default (issue 13.1) ------------------------------------------------
NATIVE_LOG = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl)")


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


# --- help texts (issue 13.4) ------------------------------------------------------
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
