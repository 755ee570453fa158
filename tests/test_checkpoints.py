"""checkpoints.py: arrays and headers, the fingerprint, the folder, early stopping."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from helpers import bar_images, write_members, zip_members

from emnist_estimators import EmnistMLP
from emnist_estimators.checkpoints import (
    CHECKPOINT_NAME,
    CheckpointMismatchError,
    CheckpointStore,
    ResumableEarlyStopping,
)
from emnist_estimators.exceptions import DataFormatError, OutputFolderError


def _mlp(**kw):
    params = {"hidden_layer_sizes": (8,), "epochs": 2, "random_state": 0}
    return EmnistMLP(**{**params, **kw})


@pytest.fixture(scope="module")
def bars():
    X, y = bar_images(90, rng=0)
    return X.reshape(len(X), -1), y


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _read(path, name):
    with np.load(path) as saved:
        return saved[name]


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("member", ["model_0.npy", "optimizer_2.npy"])
def test_a_checkpoint_with_non_finite_arrays_is_refused(bars, tmp_path, member, value):
    # right shape and dtype, all NaN: was accepted, and the finished fit
    # returned a NaN network without training
    X, y = bars
    _mlp(checkpoint_dir=tmp_path).fit(X, y)
    path = tmp_path / CHECKPOINT_NAME
    good = _read(path, member[:-4])
    assert good.dtype.kind == "f"
    write_members(path, {**zip_members(path), member: _npy(np.full_like(good, value))})
    est = _mlp(checkpoint_dir=tmp_path)
    with pytest.raises(DataFormatError, match=f"{member} holds .* NaN or infinite"):
        est.fit(X, y)
    assert not hasattr(est, "model_")


def test_a_change_between_sampled_rows_is_a_mismatch(bars, tmp_path):
    # the fingerprint hashed 1,024 evenly spaced rows: with more rows than
    # that, a change between them reused the finished checkpoint
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(3000, 784), dtype=np.uint8)
    y = np.arange(3000) % 3
    _mlp(epochs=1, checkpoint_dir=tmp_path).fit(X, y)
    sampled = set(np.linspace(0, len(X) - 1, 1024).astype(int).tolist())
    row = next(i for i in range(1, len(X)) if i not in sampled)
    X2 = X.copy()
    X2[row, 400] ^= 1  # one pixel of one row the old sample skipped
    with pytest.raises(CheckpointMismatchError, match="trained on other data"):
        _mlp(epochs=1, checkpoint_dir=tmp_path).fit(X2, y)


def test_the_fingerprint_reads_a_memmap_in_blocks_and_equals_the_arrays(
    bars, tmp_path, monkeypatch
):
    from emnist_estimators import checkpoints

    X, y = bars
    path = tmp_path / "X.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    monkeypatch.setattr(checkpoints, "_FINGERPRINT_BLOCK", 784 * 7)  # 7 rows a step
    est = _mlp().initialize(X, y)
    y_enc = y.astype(np.int32)
    on_disk = CheckpointStore(tmp_path / "a", est, mm, y_enc).identity["data"]
    in_memory = CheckpointStore(tmp_path / "b", est, X, y_enc).identity["data"]
    fortran = np.asfortranarray(X)
    assert on_disk == in_memory
    assert CheckpointStore(tmp_path / "c", est, fortran, y_enc).identity["data"] == (
        in_memory
    )
    X2 = X.copy()
    X2[-1, -1] ^= 1  # the last pixel of the last block
    assert CheckpointStore(tmp_path / "d", est, X2, y_enc).identity["data"] != (
        in_memory
    )


def _state(path) -> dict:
    return json.loads(_read(path, "state").tobytes())


def _write_state(path, state: dict) -> None:
    raw = np.frombuffer(json.dumps(state).encode(), np.uint8)
    write_members(path, {**zip_members(path), "state.npy": _npy(raw)})


def test_a_checkpoint_of_the_old_fingerprint_is_refused_saying_why(bars, tmp_path):
    # checkpoints written before the fingerprint covered every row cannot be
    # matched to their data: refused with the mismatch error, not reused
    X, y = bars
    _mlp(checkpoint_dir=tmp_path).fit(X, y)
    path = tmp_path / CHECKPOINT_NAME
    state = _state(path)
    state["identity"]["data"] = "0" * 64  # an old, unprefixed sha256
    _write_state(path, state)
    with pytest.raises(CheckpointMismatchError, match="older version") as info:
        _mlp(checkpoint_dir=tmp_path).fit(X, y)
    assert "delete the file to train from scratch" in str(info.value)


def test_a_checkpoint_with_class_weight_pairs_still_resumes(bars, tmp_path):
    # checkpoints written before jsonable_params recorded a dict parameter as
    # sorted [repr(key), value] pairs: the same fit still takes them up
    X, y = bars
    weights = {0: 2.0, 1: 1.0, 2: 0.5}
    first = _mlp(checkpoint_dir=tmp_path, class_weight=weights).fit(X, y)
    path = tmp_path / CHECKPOINT_NAME
    state = _state(path)
    assert state["identity"]["params"]["class_weight"] == {"0": 2.0, "1": 1.0, "2": 0.5}
    state["identity"]["params"]["class_weight"] = [["0", 2.0], ["1", 1.0], ["2", 0.5]]
    _write_state(path, state)
    again = _mlp(checkpoint_dir=tmp_path, class_weight=weights).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))
    other = {0: 1.0, 1: 1.0, 2: 0.5}  # another weight is still another fit
    with pytest.raises(CheckpointMismatchError, match="class_weight="):
        _mlp(checkpoint_dir=tmp_path, class_weight=other).fit(X, y)


def test_an_empty_checkpoint_dir_is_refused(bars, tmp_path, monkeypatch):
    # Path("") is the current directory: the checkpoint was written there
    X, y = bars
    monkeypatch.chdir(tmp_path)
    est = _mlp(checkpoint_dir="")
    with pytest.raises(OutputFolderError, match="checkpoint_dir is ''"):
        est.fit(X, y)
    assert not hasattr(est, "model_")
    assert os.listdir(tmp_path) == []


def _batch_counter():
    import keras

    class Count(keras.callbacks.Callback):
        batches = 0

        def on_train_batch_begin(self, batch, logs=None):
            self.batches += 1

    return Count()


def test_a_new_networks_checkpoint_as_released_versions_wrote_it_is_loaded(
    bars, tmp_path
):
    # releases record a fit from a new network as "start": "new"; an upgrade
    # must take up their finished checkpoints, not train again
    X, y = bars
    first = _mlp(checkpoint_dir=tmp_path).fit(X, y)
    path = tmp_path / CHECKPOINT_NAME
    state = _state(path)
    state["identity"]["start"] = "new"
    _write_state(path, state)
    count = _batch_counter()
    again = _mlp(checkpoint_dir=tmp_path).fit(X, y, callbacks=[count])
    assert count.batches == 0
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))


def test_malformed_early_stopping_counters_are_refused(bars, tmp_path):
    X, y = bars
    _mlp(checkpoint_dir=tmp_path, early_stopping=True).fit(X, y)
    path = tmp_path / CHECKPOINT_NAME
    state = _state(path)
    assert set(state["early_stopping"]) == {"wait", "best", "best_epoch"}
    state["early_stopping"] = {"wait": "2", "best": 0.5}  # a string, one missing
    _write_state(path, state)
    with pytest.raises(DataFormatError, match="early-stopping counters are malformed"):
        _mlp(checkpoint_dir=tmp_path, early_stopping=True).fit(X, y)


def test_an_interrupted_fit_with_early_stopping_resumes_as_never_interrupted(
    bars, tmp_path
):
    import keras

    class Boom(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    X, y = bars
    params = {"epochs": 2, "early_stopping": True, "patience": 3}
    whole = _mlp(checkpoint_dir=tmp_path / "whole", **params).fit(X, y)
    with pytest.raises(RuntimeError, match="interrupted"):  # after epoch 0's write
        _mlp(checkpoint_dir=tmp_path / "cut", **params).fit(X, y, callbacks=[Boom()])
    resumed = _mlp(checkpoint_dir=tmp_path / "cut", **params).fit(X, y)
    assert resumed.history_ == whole.history_
    np.testing.assert_array_equal(resumed.predict_proba(X), whole.predict_proba(X))
    counters = _state(tmp_path / "whole" / CHECKPOINT_NAME)["early_stopping"]
    assert _state(tmp_path / "cut" / CHECKPOINT_NAME)["early_stopping"] == counters


def test_resumed_early_stopping_ends_on_the_best_weights_from_before():
    # the best epoch came before the interruption and the resumed epoch is
    # worse: training ends on the best epoch's weights, as uninterrupted
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    best = [np.full_like(w, 7.0) for w in model.get_weights()]
    stop = ResumableEarlyStopping(monitor="loss", patience=3, restore_best_weights=True)
    stop.set_model(model)
    stop.resume_from({"wait": 1, "best": 0.25, "best_epoch": 1}, best)
    stop.on_train_begin()
    stop.on_epoch_end(2, {"loss": 0.5})
    stop.on_train_end()
    for got, want in zip(model.get_weights(), best, strict=True):
        np.testing.assert_array_equal(got, want)
    assert stop.counters() == {"wait": 2, "best": 0.25, "best_epoch": 1}


def test_early_stopping_counters_before_any_epoch_resume_as_they_were():
    # no epoch measured yet: best is None, not a number, and resumes as such
    stop = ResumableEarlyStopping(monitor="loss")
    stop.on_train_begin()
    counters = stop.counters()
    assert counters == {"wait": 0, "best": None, "best_epoch": 0}
    again = ResumableEarlyStopping(monitor="loss")
    again.resume_from(json.loads(json.dumps(counters)), None)
    again.on_train_begin()
    assert again.counters() == counters and again.best_weights is None


def _npy_header_v2(shape, dtype="<f4") -> bytes:
    buf = io.BytesIO()  # magic, version 2.0, then the header: no data
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_2_0(buf, header)
    return buf.getvalue()


def test_a_crafted_version_2_npy_header_is_refused_before_allocating(bars, tmp_path):
    # .npy version 2.0 (a 4-byte header length) is checked like version 1.0
    X, y = bars
    _mlp(checkpoint_dir=tmp_path).fit(X, y)
    path = tmp_path / CHECKPOINT_NAME
    huge = _npy_header_v2((2**42,))
    write_members(path, {**zip_members(path), "model_0.npy": huge})
    with pytest.raises(DataFormatError, match="model_0.npy is float32"):
        _mlp(checkpoint_dir=tmp_path).fit(X, y)
