"""Model lifecycle beyond one fit: checkpoints, warm_start, class_weight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, bar_images, write_members, zip_members
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils.class_weight import compute_sample_weight

from emnist_estimators import EmnistCNN, EmnistMLP
from emnist_estimators.checkpoints import (
    CHECKPOINT_NAME,
    CheckpointMismatchError,
)
from emnist_estimators.exceptions import DataFormatError

CHILD = Path(__file__).with_name("checkpoint_child.py")


def _mlp(**kw):
    params = {
        "hidden_layer_sizes": (16,),
        "epochs": 2,
        "batch_size": 32,
        "random_state": 0,
    }
    return EmnistMLP(**{**params, **kw})


@pytest.fixture(scope="module")
def bars():
    return bar_images(240, rng=0)


# --- checkpoints -------------------------------------------------------------
def _run_child(*args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, str(CHILD), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _kill_mid_epoch(kind, folder, out, epoch):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, str(CHILD), kind, str(folder), str(out), str(epoch)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    flag = Path(f"{out}.killme")
    deadline = time.monotonic() + 300
    while not flag.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            raise AssertionError(f"child never reached epoch {epoch}: {child.stderr}")
        time.sleep(0.1)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL


# the CNN's child fits take half a minute: in the slow stage (CI runs both)
@pytest.mark.parametrize("kind", ["mlp", pytest.param("cnn", marks=pytest.mark.slow)])
def test_sigkilled_fit_resumes_and_ends_as_an_uninterrupted_fit(kind, tmp_path):
    whole = _run_child(kind, tmp_path / "whole", tmp_path / "whole.npz")
    assert whole.returncode == 0, whole.stderr

    folder = tmp_path / "killed"
    _kill_mid_epoch(kind, folder, tmp_path / "killed.npz", epoch=2)
    # killed inside epoch 2: epochs 0 and 1 are saved, nothing half-written
    assert sorted(p.name for p in folder.iterdir()) == [CHECKPOINT_NAME]
    with np.load(folder / CHECKPOINT_NAME) as saved:
        state = json.loads(saved["state"].tobytes())
    assert state["epoch"] == 2 and not state["finished"]
    assert not (tmp_path / "killed.npz").exists()

    resumed = _run_child(kind, folder, tmp_path / "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr
    a, b = np.load(tmp_path / "whole.npz"), np.load(tmp_path / "resumed.npz")
    assert sorted(a.files) == sorted(b.files)
    for name in a.files:  # bit for bit: weights, batch-norm statistics, proba
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    history = json.loads((tmp_path / "whole.npz.json").read_text())
    assert json.loads((tmp_path / "resumed.npz.json").read_text()) == history
    assert len(history["loss"]) >= 3


def test_checkpoint_is_written_each_epoch_atomically(bars, tmp_path):
    X, y = bars
    seen = []
    import keras

    class Look(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            path = tmp_path / CHECKPOINT_NAME
            if path.exists():
                with np.load(path) as saved:
                    seen.append(json.loads(saved["state"].tobytes())["epoch"])
            seen.append(sorted(p.name for p in tmp_path.iterdir()))

    _mlp(epochs=3, checkpoint_dir=tmp_path).fit(X, y, callbacks=[Look()])
    assert seen == [[], 1, [CHECKPOINT_NAME], 2, [CHECKPOINT_NAME]]


def test_finished_checkpoint_is_loaded_without_training(bars, tmp_path):
    X, y = bars
    first = _mlp(checkpoint_dir=tmp_path).fit(X, y)
    import keras

    class Count(keras.callbacks.Callback):
        batches = 0

        def on_train_batch_begin(self, batch, logs=None):
            Count.batches += 1

    again = _mlp(checkpoint_dir=tmp_path).fit(X, y, callbacks=[Count()])
    assert Count.batches == 0
    assert again.history_ == first.history_ and again.n_iter_ == 2
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda X, y: (_mlp(hidden_layer_sizes=(8,)), X, y), "hidden_layer_sizes"),
        (
            lambda X, y: (
                EmnistCNN(filters=(4,), dense_units=(8,), epochs=2, random_state=0),
                X,
                y,
            ),
            "it is of a EmnistMLP, not a EmnistCNN",
        ),
        (lambda X, y: (_mlp(), X, np.where(y == 2, 5, y)), "its classes are"),
        (lambda X, y: (_mlp(), X[:, ::-1].copy(), y), "trained on other data"),
        (lambda X, y: (_mlp(), X, y[::-1].copy()), "trained on other data"),
    ],
    ids=["parameters", "estimator", "classes", "pixels", "labels"],
)
def test_checkpoint_of_another_fit_is_refused(bars, tmp_path, change, message):
    X, y = bars
    _mlp(checkpoint_dir=tmp_path).fit(X, y)
    est, X2, y2 = change(X, y)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    with pytest.raises(CheckpointMismatchError, match=message) as info:
        est.set_params(checkpoint_dir=tmp_path).fit(X2, y2)
    assert "Pass another checkpoint_dir" in str(info.value)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before  # left alone


def test_free_parameters_may_change_on_resume(bars, tmp_path):
    X, y = bars
    _mlp(checkpoint_dir=tmp_path).fit(X, y)
    # verbosity, callbacks and the folder's spelling do not change training
    _mlp(checkpoint_dir=str(tmp_path), verbose=0, callbacks=[]).fit(X, y)


def _rewrite(path: Path, **members: bytes | None) -> None:
    """Replace (or, with None, drop) members of the checkpoint ``path``."""
    write_members(path, {**zip_members(path), **members})


def _npy(array) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize(
    "members, message",
    [
        ({"model_0.npy": _npy(np.zeros(10**6, np.float32))}, "model_0.npy is"),
        ({"model_0.npy": _npy(np.array([object()], dtype=object))}, "cannot|is"),
        ({"optimizer_1.npy": None}, "arrays where this network has"),
        ({"state.npy": b"not an npy file"}, "cannot be read"),
        ({"state.npy": _npy(np.frombuffer(b'{"format": 99}', np.uint8))}, "format"),
    ],
    ids=["oversized", "pickled-object", "missing", "garbage-state", "format"],
)
def test_hostile_or_damaged_checkpoint_is_refused(bars, tmp_path, members, message):
    X, y = bars
    _mlp(checkpoint_dir=tmp_path).fit(X, y)
    _rewrite(tmp_path / CHECKPOINT_NAME, **members)
    with pytest.raises(DataFormatError, match=message) as info:
        _mlp(checkpoint_dir=tmp_path).fit(X, y)
    assert "Delete it to train from scratch" in str(info.value)


# --- warm_start --------------------------------------------------------------
def test_warm_start_continues_from_the_current_weights(bars):
    X, y = bars
    est = _mlp(epochs=2, warm_start=True, lr_schedule="constant").fit(X, y)
    network, loss_after_first = est.model_, est.history_["loss"][-1]
    est.fit(X, y)
    assert est.model_ is network  # the same network, trained further
    assert est.n_iter_ == 4 and len(est.history_["loss"]) == 4
    # the second fit's first epoch starts where the first one ended, far below
    # a new network's first epoch
    cold = _mlp(epochs=2, lr_schedule="constant").fit(X, y)
    assert est.history_["loss"][2] < cold.history_["loss"][0]
    assert est.history_["loss"][2] < 1.5 * loss_after_first

    cold.fit(X, y)  # warm_start=False: a new network each fit
    assert cold.n_iter_ == 2 and cold.model_ is not network


def test_warm_start_refuses_other_classes_or_pixels(bars):
    X, y = bars
    est = _mlp(warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="same classes as in the previous fit"):
        est.fit(X, np.where(y == 2, 7, y))
    with pytest.raises(ValueError, match="same classes"):
        est.fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="784 features"):
        est.fit(X.reshape(len(X), -1)[:, :700], y)
    assert est.n_iter_ == 2  # nothing trained by the refused calls


def test_warm_start_in_a_grid_search(bars):
    X, y = bars
    search = GridSearchCV(
        _mlp(), {"warm_start": [False, True], "class_weight": [None, "balanced"]}, cv=2
    ).fit(X.reshape(len(X), -1), y)
    assert search.cv_results_["mean_test_score"].shape == (4,)
    assert search.best_estimator_.n_iter_ == 2  # refit: a fresh clone


# --- class_weight ------------------------------------------------------------
def _proba(est, X, y, **fit):
    return est.fit(X, y, **fit).predict_proba(X)


def test_class_weight_dict_equals_the_same_sample_weight(bars):
    X, y = bars
    labels = np.array(["x", "y", "z"])[y]  # characters as keys
    by_class = _proba(_mlp(class_weight={"x": 3.0, "z": 0.5}), X, labels)
    w = np.select([labels == "x", labels == "z"], [3.0, 0.5], 1.0)
    by_sample = _proba(_mlp(), X, labels, sample_weight=w)
    np.testing.assert_array_equal(by_class, by_sample)


def test_balanced_equals_scikit_learns_sample_weights_times_sample_weight(bars):
    X, y = bars
    keep = (y != 0) | (np.arange(len(y)) % 4 == 0)  # class 0 rarer
    X, y = X[keep], y[keep]
    w = np.linspace(0.5, 2.0, len(y))
    balanced = _proba(_mlp(class_weight="balanced"), X, y, sample_weight=w)
    expected = w * compute_sample_weight("balanced", y)
    by_sample = _proba(_mlp(), X, y, sample_weight=expected)
    np.testing.assert_allclose(balanced, by_sample, atol=1e-6)
    unweighted = _proba(_mlp(), X, y, sample_weight=w)
    assert not np.allclose(balanced, unweighted, atol=1e-3)


def test_class_weight_in_partial_fit(bars):
    X, y = bars
    a = _mlp(class_weight={0: 0.0}).partial_fit(X, y)
    b = _mlp().partial_fit(X, y, sample_weight=(y != 0).astype(float))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    _mlp(class_weight="balanced").partial_fit(X, y).partial_fit(X[:30], y[:30])


def test_class_weight_naming_an_unknown_label_is_refused(bars):
    X, y = bars
    with pytest.raises(ValueError, match=r"class_weight names labels \['a'\]"):
        _mlp(class_weight={"a": 2.0}).fit(X, y)


@pytest.mark.parametrize("weights", [{0: 2.0, 2: 0.5}, {"b": 2.0}, "balanced"])
def test_class_weight_survives_save_and_clone(bars, tmp_path, weights):
    X, y = bars
    labels = np.array(["a", "b", "c"])[y] if "b" in weights else y
    est = _mlp(class_weight=weights, checkpoint_dir=tmp_path / "ck").fit(X, labels)
    est.save(tmp_path / "m.keras")
    loaded = EmnistMLP.load(tmp_path / "m.keras")
    assert loaded.get_params() == est.get_params() | {
        "checkpoint_dir": os.fspath(tmp_path / "ck")
    }
    assert clone(est).get_params()["class_weight"] == weights


# --- found by a hostile review ---------------------------------------------
def test_warm_start_with_a_checkpoint_trains_from_the_current_weights(bars, tmp_path):
    X, y = bars
    est = _mlp(warm_start=True, checkpoint_dir=tmp_path).fit(X, y)
    first = est.model_.get_weights()
    est.fit(X, y)  # the first fit's finished checkpoint is not this fit's
    assert est.n_iter_ == 4
    assert est.history_["loss"][2:] != est.history_["loss"][:2]
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(first, est.model_.get_weights(), strict=True)
    )


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), -1.0, None, "2", True])
def test_class_weight_values_must_be_finite_non_negative_numbers(bars, weight):
    X, y = bars
    with pytest.raises(ValueError, match=r"class_weight\[0\] is .*finite numbers >= 0"):
        _mlp(class_weight={0: weight}).fit(X, y)


def test_unusable_checkpoint_folder_fails_before_training(bars, tmp_path):
    X, y = bars
    (tmp_path / "file").write_text("not a folder")
    import keras

    class Count(keras.callbacks.Callback):
        batches = 0

        def on_train_batch_begin(self, batch, logs=None):
            Count.batches += 1

    from emnist_estimators.exceptions import OutputFolderError

    with pytest.raises(OutputFolderError, match="cannot hold checkpoints"):
        _mlp(checkpoint_dir=tmp_path / "file").fit(X, y, callbacks=[Count()])
    assert Count.batches == 0
    assert (tmp_path / "file").read_text() == "not a folder"


def test_other_sample_weights_are_another_fit(bars, tmp_path):
    X, y = bars
    _mlp(checkpoint_dir=tmp_path).fit(X, y, sample_weight=np.ones(len(y)))
    with pytest.raises(CheckpointMismatchError, match="trained on other data"):
        _mlp(checkpoint_dir=tmp_path).fit(X, y, sample_weight=(y != 0) * 1.0)


def _npy_header(shape, dtype="<f4") -> bytes:
    import io

    buf = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return np.lib.format.magic(1, 0) + buf.getvalue()[8:]


@pytest.mark.parametrize(
    "members, message",
    [
        ({"model_0.npy": _npy_header((2**42,))}, "model_0.npy is float32"),
        ({"state.npy": _npy_header((2**42,), "|u1")}, "state.npy is uint8"),
        (
            {
                "state.npy": _npy(
                    np.frombuffer(b"[" * 200_000 + b"]" * 200_000, np.uint8)
                )
            },
            "cannot be read",
        ),
    ],
    ids=["huge-weights", "huge-state", "deep-json"],
)
def test_crafted_headers_are_refused_before_allocating(
    bars, tmp_path, members, message
):
    X, y = bars
    _mlp(checkpoint_dir=tmp_path).fit(X, y)
    _rewrite(tmp_path / CHECKPOINT_NAME, **members)
    with pytest.raises(DataFormatError, match=message):
        _mlp(checkpoint_dir=tmp_path).fit(X, y)


@pytest.mark.parametrize(
    "field, value", [("epoch", "abc"), ("epoch", 99), ("seed", -1), ("history", 5)]
)
def test_malformed_state_fields_are_refused(bars, tmp_path, field, value):
    X, y = bars
    _mlp(checkpoint_dir=tmp_path).fit(X, y)
    with np.load(tmp_path / CHECKPOINT_NAME) as saved:
        state = json.loads(saved["state"].tobytes())
    state[field] = value
    raw = np.frombuffer(json.dumps(state).encode(), np.uint8)
    _rewrite(tmp_path / CHECKPOINT_NAME, **{"state.npy": _npy(raw)})
    with pytest.raises(DataFormatError, match=f"its {field}"):
        _mlp(checkpoint_dir=tmp_path).fit(X, y)


def test_warm_start_refuses_a_changed_network_shape(bars, tmp_path):
    X, y = bars
    est = _mlp(warm_start=True).fit(X, y)
    est.set_params(hidden_layer_sizes=(16, 4))
    with pytest.raises(ValueError, match=r"hidden_layer_sizes=\[16\] -> \[16, 4\]"):
        est.fit(X, y)
    est.set_params(hidden_layer_sizes=(16,), learning_rate=3e-3, epochs=1)
    est.fit(X, y)  # training parameters may change
    est.save(tmp_path / "m.keras")
    loaded = EmnistMLP.load(tmp_path / "m.keras").set_params(dropout=0.5)
    with pytest.raises(ValueError, match="dropout"):
        loaded.fit(X, y)


def test_interrupted_warm_fit_gives_the_network_back_unchanged(bars):
    X, y = bars
    est = _mlp(warm_start=True).fit(X, y)
    before = est.predict_proba(X)
    import keras

    class Boom(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 3:
                raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        est.fit(X, y, callbacks=[Boom()])
    np.testing.assert_array_equal(est.predict_proba(X), before)
    assert est.n_iter_ == 2


def test_unfinished_checkpoint_from_other_start_weights_is_refused(bars, tmp_path):
    X, y = bars
    import keras

    class Boom(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):  # leaves the checkpoint of epoch 0
        _mlp(checkpoint_dir=tmp_path).fit(X, y, callbacks=[Boom()])
    warm = _mlp(warm_start=True).fit(X, y).set_params(checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointMismatchError, match="started from other weights"):
        warm.fit(X, y)
