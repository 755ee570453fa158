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
from helpers import REPO, bar_images, write_idx_folder


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


@pytest.mark.slow  # three pictures through a CLI process, 17 s
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


def test_console_script_is_installed():
    exe = shutil.which("emnist-estimators") or (
        os.path.join(os.path.dirname(sys.executable), "emnist-estimators")
    )
    if not os.path.exists(exe):
        pytest.skip("the package is not installed in this environment (pip install .)")
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and re.match(r"\d+\.\d+", proc.stdout)


def test_saved_model_is_a_keras_archive(trained):
    work, _, _ = trained
    with zipfile.ZipFile(work / "model" / "model.keras") as zf:
        names = set(zf.namelist())
    assert {"config.json", "model.weights.h5", "emnist_estimators.json"} <= names
