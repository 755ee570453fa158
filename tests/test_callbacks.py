"""The Keras callbacks: the training progress bar and optuna pruning."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import keras
import numpy as np
import optuna
import pytest
from helpers import REPO, bar_images, modules_loaded_by

from emnist_estimators import EmnistMLP
from emnist_estimators.callbacks import EpochProgressBar, PruningCallback


def small_mlp(**kw):
    return EmnistMLP(hidden_layer_sizes=(16,), epochs=3, batch_size=32, **kw)


def bars(n=60):
    X, y = bar_images(n, rng=0)
    return X.reshape(n, -1), y


def test_importing_callbacks_does_not_import_tensorflow():
    loaded = modules_loaded_by(
        "import emnist_estimators.callbacks",
        ("tensorflow", "keras"),
    )
    assert loaded == []


def test_callbacks_are_keras_callbacks_of_one_class_each():
    first, second = EpochProgressBar(1), EpochProgressBar(2)
    assert isinstance(first, keras.callbacks.Callback)
    assert type(first) is type(second)  # one Keras subclass, made once
    assert isinstance(first, EpochProgressBar)


def test_progress_bar_counts_epochs_and_shows_metrics():
    X, y = bars()
    out = io.StringIO()
    clf = small_mlp(random_state=0)
    clf.fit(X, y, callbacks=[EpochProgressBar(clf.epochs, file=out)])
    text = out.getvalue()
    assert "3/3" in text and "loss=" in text and "accuracy=" in text
    quiet = io.StringIO()
    small_mlp(random_state=0).fit(
        X, y, callbacks=[EpochProgressBar(3, enabled=False, file=quiet)]
    )
    assert quiet.getvalue() == ""


def test_pruning_callback_is_the_one_tuning_uses():
    from emnist_estimators import tuning

    assert tuning.PruningCallback is PruningCallback


def test_pruning_callback_reports_every_epoch_and_stops_when_pruned():
    X, y = bars()
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    clf = small_mlp(random_state=0)
    callback = PruningCallback(trial, lambda: clf.score(X, y), step_offset=10)
    clf.fit(X, y, callbacks=[callback])
    assert not callback.pruned and callback.epochs_run == 3 == clf.n_iter_
    assert sorted(trial.storage.get_trial(trial._trial_id).intermediate_values) == [
        10,
        11,
        12,
    ]
    assert callback.last_score == np.float64(clf.score(X, y))
    pruning = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2)
    )
    clf = small_mlp()
    callback = PruningCallback(pruning.ask(), lambda: clf.score(X, y))
    clf.fit(X, y, callbacks=[callback])
    assert callback.pruned and callback.epochs_run == 1 == clf.n_iter_


# --- progress within an epoch (issue 31.3) -----------------------------------------
# tqdm's batch bar: "epoch 1/2:  40%|####      | 135/337 [00:01<00:01, ...batch/s]"
BATCH_COUNT = re.compile(r"epoch (\d+)/(\d+):\s+\d+%\|[^|]*\|\s*(\d+)/(\d+) \[")
TRAIN = ["train", "--model", "mlp", "--dataset", "digits", "--epochs", "2",
         "--batch-size", "4", "--param", "hidden_layer_sizes=(16,)"]  # fmt: skip


def run_cli_in_terminal(args, cwd) -> tuple[int, str]:
    """Run the command line with stdout and stderr on a pseudo-terminal."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    leader, follower = pty.openpty()
    # a terminal 120 columns wide (a new pseudo-terminal has 0: tqdm draws nothing)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "emnist_estimators", *map(str, args)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=600), b"".join(chunks).decode(errors="replace")


def in_epoch_counts(text: str) -> list[tuple[int, int]]:
    """(batches done, batches in the epoch) of each batch-bar draw mid-epoch."""
    screens = re.split(r"[\r\n]", text)
    counts = [BATCH_COUNT.search(s) for s in screens]
    return [
        (int(m[3]), int(m[4]))
        for m in counts
        if m is not None and 0 < int(m[3]) < int(m[4])
    ]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([*TRAIN, "--output", "m"], id="train"),
        # the whole demo, 16 s: the slow stage (CI runs it)
        pytest.param(
            ["demo", "--epochs", "1", "--output", "d"],
            id="demo",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_terminal_shows_each_epochs_batches(tmp_path, args):
    """Issue 31.3: on a terminal, train and demo draw batches done / total."""
    code, text = run_cli_in_terminal(args, tmp_path)
    assert code == 0, text
    counts = in_epoch_counts(text)
    assert counts, text  # drawn while the epoch ran, not only at its ends
    # each epoch trains on 90% of the 1,347 digits (10% validate), in batches
    # of 4 (train) or 64 (demo)
    assert {total for _, total in counts} == {303 if args[0] == "train" else 19}
    assert re.search(r"<\d\d:\d\d", text)  # the time left in the epoch


@pytest.mark.slow  # three command-line trainings, 14 s
def test_piped_or_quiet_shows_no_batch_progress(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    piped = subprocess.run(
        [sys.executable, "-m", "emnist_estimators", *TRAIN, "--output", "p"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert piped.returncode == 0, piped.stderr
    assert "training" in piped.stderr and "2/2" in piped.stderr  # the epoch bar
    assert "batch" not in piped.stderr and not in_epoch_counts(piped.stderr)
    # --quiet on a terminal: the result line and nothing else
    code, text = run_cli_in_terminal([*TRAIN, "--output", "q", "--quiet"], tmp_path)
    assert code == 0, text
    assert [ln for ln in text.splitlines() if ln.strip()] == [
        ln for ln in text.splitlines() if ln.startswith("EmnistMLP trained on")
    ]
