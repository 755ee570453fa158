"""The models shipped inside the package: intact, accurate, used by default."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, slow_workload
from PIL import Image
from sklearn.model_selection import train_test_split

from emnist_estimators import load_emnist, load_model, load_pretrained
from emnist_estimators.cli import main
from emnist_estimators.cli.parser import build_parser, check_arguments
from emnist_estimators.exceptions import DataFormatError
from emnist_estimators.pretrained import PRETRAINED, PretrainedModel

CNN = PRETRAINED["cnn-bymerge"]


def card_text(model: PretrainedModel) -> str:
    return model.card.read_text(encoding="utf-8")


def card_command(model: PretrainedModel) -> list[str]:
    """The one ``emnist-estimators train`` line of the card's command block."""
    lines = [
        line.strip()
        for line in card_text(model).splitlines()
        if line.strip().startswith("emnist-estimators train")
    ]
    assert len(lines) == 1, "the card names one training command"
    return shlex.split(lines[0])[1:]


@pytest.fixture(scope="module")
def protocol_held_out():
    """The EMNIST protocol's 15%: 17,449 images the bundled CNN never saw."""
    from helpers import EMNIST_DIR, require_dir

    folder = require_dir(EMNIST_DIR)
    X, y = load_emnist(
        "bymerge",
        "test",
        data_home=folder,
        download=False,
        return_X_y=True,
        as_characters=True,
    )
    _, X_test, _, y_test = train_test_split(
        X, y, test_size=0.15, stratify=y, random_state=0
    )
    return X_test, y_test


@pytest.mark.parametrize("model", PRETRAINED.values(), ids=PRETRAINED)
def test_the_bundled_file_is_the_one_its_card_describes(model):
    digest = hashlib.sha256(model.path.read_bytes()).hexdigest()
    assert digest == model.sha256
    card = card_text(model)
    assert digest in card
    assert f"{model.held_out_accuracy:.2%}" in card
    # a small network: the wheel stays small
    assert model.path.stat().st_size < 4 << 20


def test_the_bundled_cnn_scores_its_card_on_the_protocols_held_out_images(
    protocol_held_out,
):
    X_test, y_test = protocol_held_out
    assert len(y_test) == 17_449
    clf = load_pretrained("cnn-bymerge")
    assert type(clf).__name__ == "EmnistCNN"
    assert len(clf.classes_) == 47
    accuracy = clf.score(X_test, y_test)
    assert accuracy >= 0.895
    # the card's figure is this very number (float32 inference on any CPU)
    assert accuracy == pytest.approx(CNN.held_out_accuracy, abs=0.001)


def test_an_unknown_name_lists_the_bundled_ones():
    with pytest.raises(
        ValueError, match=r"No pretrained model named 'cnn'.*cnn-bymerge"
    ):
        load_pretrained("cnn")


def test_a_changed_file_is_refused_before_it_is_loaded(tmp_path, monkeypatch):
    changed = tmp_path / "cnn-bymerge.keras"
    data = bytearray(CNN.path.read_bytes())
    data[-100] ^= 1
    changed.write_bytes(bytes(data))
    monkeypatch.setattr(PretrainedModel, "path", property(lambda self: changed))
    with pytest.raises(DataFormatError, match="sha256.*Reinstall"):
        load_pretrained("cnn-bymerge")


def parsed(*argv):
    parser = build_parser()
    args = parser.parse_args(list(argv))
    check_arguments(parser, args)
    return args


def test_predict_and_serve_default_to_the_bundled_model():
    assert parsed("serve").model_file == "pretrained:cnn-bymerge"
    args = parsed("predict", "a.png", "b.png")
    assert (args.model_file, args.inputs) == (
        "pretrained:cnn-bymerge",
        ["a.png", "b.png"],
    )
    # the form of earlier versions: a saved model first
    args = parsed("predict", "runs/m.keras", "a.png")
    assert (args.model_file, args.inputs) == ("runs/m.keras", ["a.png"])
    args = parsed("serve", "--model", "pretrained:cnn-bymerge")
    assert args.model_file == "pretrained:cnn-bymerge"
    assert parsed("serve", "runs/m.keras").model_file == "runs/m.keras"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["serve", "a.keras", "--model", "b.keras"], "two models given"),
        (["predict", "m.keras"], "no input to classify"),
    ],
)
def test_a_model_named_twice_or_no_input_is_a_usage_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        parsed(*argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_an_unknown_pretrained_name_exits_2_before_loading(capsys):
    assert main(["predict", "--model", "pretrained:nope", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "No pretrained model named 'nope'" in err and "cnn-bymerge" in err


def test_predict_without_a_model_reads_real_characters(
    protocol_held_out, tmp_path, capsys
):
    """A newcomer's first command: pictures in, the bundled CNN's answers out."""
    X_test, y_test = protocol_held_out
    rows = np.flatnonzero(np.isin(y_test, ["A", "7", "e"]))[:30]
    paths = []
    for i in rows:
        path = tmp_path / f"char{i}.png"
        # a scan of dark ink on white paper, as people photograph characters
        Image.fromarray(255 - X_test[i].reshape(28, 28)).save(path)
        paths.append(str(path))
    assert main(["predict", *paths, "--json"]) == 0
    predictions = json.loads(capsys.readouterr().out)["predictions"]
    assert [p["input"] for p in predictions] == paths
    right = sum(
        p["prediction"] == y for p, y in zip(predictions, y_test[rows], strict=True)
    )
    assert right >= 0.85 * len(rows)


WORKLOAD, WHY = slow_workload()


@pytest.mark.slow
@pytest.mark.skipif(
    WORKLOAD != "full",
    reason="retraining the bundled CNN takes 16 epochs (about 25 minutes "
    f"in float32 on 2 cores): full workload only; {WHY}",
)
def test_the_cards_command_retrains_the_bundled_cnn_within_half_a_point(
    tmp_path, protocol_held_out
):
    from helpers import EMNIST_DIR

    argv = card_command(CNN)
    out = argv.index("--output") + 1
    argv[out] = str(tmp_path / "run")
    env = {**os.environ, "PYTHONPATH": str(REPO), "EMNIST_DATA": str(EMNIST_DIR)}
    proc = subprocess.run(
        [sys.executable, "-m", "emnist_estimators", *argv, "--quiet", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # scored on the protocol's 15%: the run held out exactly those images
    X_test, y_test = protocol_held_out
    accuracy = load_model(tmp_path / "run" / "model.keras").score(X_test, y_test)
    assert accuracy >= 0.895
    assert accuracy == pytest.approx(CNN.held_out_accuracy, abs=0.005)
