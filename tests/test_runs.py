"""The training-run record (``emnist_estimators.runs``): the rows a run held out.

``train`` samples, holds out and records; ``evaluate --subset held-out`` and
Python callers read the record back and must get exactly the rows held out -
from the rows file, or chosen again for folders written before it existed -
or an error when the data changed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import bar_images, write_idx_folder
from sklearn.model_selection import train_test_split

from emnist_estimators.datasets import write_idx
from emnist_estimators.runs import (
    HELD_OUT_FILE,
    DataSource,
    data_description,
    read_run,
    sample,
    sample_rows,
    source_key,
    split_rows,
    take,
    training_facts,
    write_run,
)
from emnist_estimators.sources import Dataset, load_source


class FakeEstimator:
    """What write_run uses of a fitted estimator."""

    history_ = {"loss": [1.0, 0.5]}

    def save(self, path):
        path.write_bytes(b"PK model")

    def get_params(self):
        return {"random_state": 3, "epochs": 2, "callbacks": [object()]}


@pytest.fixture
def bars(tmp_path):
    return write_idx_folder(tmp_path / "bars", n_train=300, n_test=90)


def labels(n=200, classes=5, seed=0):
    return np.random.default_rng(seed).integers(0, classes, n).astype(str)


# --- the split: exactly what train_test_split gave the CLI before -----------------
@pytest.mark.parametrize(
    "max_samples, test_size, seed",
    [(None, 0.2, 0), (120, 0.25, 3), (150, None, 1), (None, None, 0), (190, 0.1, 7)],
)
def test_split_rows_are_train_test_split_on_the_data(max_samples, test_size, seed):
    """The rows and their order: seeded runs train on the same images as before."""
    y = labels()
    X = np.arange(len(y) * 2).reshape(len(y), 2)
    X_s, y_s = X, y
    if max_samples:
        X_s, _, y_s, _ = train_test_split(
            X, y, train_size=max_samples, stratify=y, random_state=seed
        )
    X_test = None
    if test_size:
        X_s, X_test, y_s, _ = train_test_split(
            X_s, y_s, test_size=test_size, stratify=y_s, random_state=seed
        )
    train, held_out = split_rows(
        y, max_samples=max_samples, test_size=test_size, random_state=seed
    )
    np.testing.assert_array_equal(X if train is None else X[train], X_s)
    if test_size:
        np.testing.assert_array_equal(X[held_out], X_test)
    else:
        assert held_out is None


def test_split_rows_fall_back_when_a_class_is_too_small():
    """A class of one image splits unstratified instead of failing."""
    y = np.array(["a"] * 30 + ["b"])
    train, held_out = split_rows(y, max_samples=20, test_size=0.25, random_state=0)
    assert len(train) + len(held_out) == 20
    assert not set(train) & set(held_out)


def test_sample_keeps_everything_without_a_smaller_size():
    data = Dataset(np.zeros((6, 784), np.uint8), np.array(list("aabbcc")), "six")
    assert sample(data, None) is data and sample(data, 6) is data
    assert sample_rows(data.y, 10) is None
    picked = sample(data, 3, random_state=1)
    assert sorted(picked.y) == ["a", "b", "c"] and picked.description == "six"


def test_take_orders_rows_and_renames():
    data = Dataset(np.arange(3 * 784).reshape(3, 784), np.array(["x", "y", "z"]), "d")
    part = take(data, np.array([2, 0]), "two of d")
    assert part.y.tolist() == ["z", "x"] and part.description == "two of d"
    np.testing.assert_array_equal(part.X, data.X[[2, 0]])


# --- names and descriptions -----------------------------------------------------------
def test_source_key_names_paths_in_full(bars, monkeypatch):
    monkeypatch.chdir(bars.parent)
    assert source_key("bars") == str(bars.resolve())
    assert source_key("emnist:balanced") == "emnist:balanced"


def test_descriptions_name_the_folder_and_the_share(bars):
    assert data_description("t10k (test)", str(bars)) == f"t10k (test) in {bars}"
    source = DataSource(str(bars), test_size=0.2)
    assert source.held_out_description("d") == "20% of d, held out"
    facts = training_facts({"dataset": "t (train)", "data_source": source.to_dict()})
    assert facts["dataset"] == f"t (train) in {bars}"


def test_data_source_round_trips_and_reads_old_records():
    source = DataSource("digits", "test", 100, 0.3, 5, "/data")
    assert DataSource.from_dict(source.to_dict()) == source
    old = {
        "dataset": "digits",
        "subset": "train",
        "test_size": 0.2,
        "max_samples": None,
    }
    assert DataSource.from_dict(old, random_state=4).random_state == 4
    assert DataSource.from_dict({**old, "n_rows": 9}).random_state is None


# --- write_run and read_run ----------------------------------------------------
def write_bars_run(folder, bars, **source_args):
    """A run folder as train writes it, of the bars folder's train subset."""
    source = DataSource(source_key(str(bars)), random_state=3, **source_args)
    data = source.load()
    train, held_out = source.split(data.y)
    folder.mkdir()
    metrics = {"model": "Fake", "data_source": source.to_dict()}
    if held_out is not None:
        metrics["n_test"] = len(held_out)
    written = write_run(
        folder, FakeEstimator(), metrics, data=data, held_out_rows=held_out
    )
    return data, held_out, written


def test_a_run_reads_back_what_was_written(tmp_path, bars):
    data, rows, written = write_bars_run(tmp_path / "run", bars, test_size=0.2)
    run = read_run(tmp_path / "run" / "model.keras")
    assert run.folder == tmp_path / "run" and run.model_file.read_bytes() == b"PK model"
    assert run.params == {"random_state": 3, "epochs": 2}
    assert run.history == {"loss": [1.0, 0.5]}
    assert run.metrics == written and written["data_source"]["n_rows"] == 300
    assert run.source == DataSource(
        source_key(str(bars)), test_size=0.2, random_state=3
    )
    np.testing.assert_array_equal(run.held_out_rows, rows)
    held_out = run.held_out()
    np.testing.assert_array_equal(held_out.X, data.X[rows])
    np.testing.assert_array_equal(held_out.y, data.y[rows])
    assert held_out.description == (
        f"20% of train-images-idx3-ubyte.gz (train) in {bars.resolve()}, held out"
    )


def test_a_run_without_its_rows_file_chooses_the_same_rows(tmp_path, bars):
    """Run folders written before the rows file: the split's parameters."""
    data, rows, _ = write_bars_run(
        tmp_path / "run", bars, max_samples=200, test_size=0.3
    )
    (tmp_path / "run" / HELD_OUT_FILE).unlink()
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    old_keys = ("dataset", "subset", "test_size", "max_samples")
    record["data_source"] = {k: record["data_source"][k] for k in old_keys}
    (tmp_path / "run" / "metrics.json").write_text(json.dumps(record))
    run = read_run(tmp_path / "run")  # the seed comes from params.json
    assert run.held_out_rows is None and run.source.random_state == 3
    np.testing.assert_array_equal(run.held_out().X, data.X[rows])


def test_held_out_refuses_changed_data(tmp_path, bars):
    write_bars_run(tmp_path / "run", bars, test_size=0.2)
    X, y = bar_images(300, rng=9)  # same size, other pixels
    write_idx(bars / "train-images-idx3-ubyte.gz", X)
    write_idx(bars / "train-labels-idx1-ubyte.gz", y)
    with pytest.raises(ValueError, match=r"changed since the training run"):
        read_run(tmp_path / "run").held_out()


def test_held_out_refuses_rows_that_do_not_fit(tmp_path, bars):
    write_bars_run(tmp_path / "run", bars, test_size=0.2)
    np.save(tmp_path / "run" / HELD_OUT_FILE, np.arange(60) + 280)
    with pytest.raises(ValueError, match=r"changed since"):
        read_run(tmp_path / "run").held_out()
    np.save(tmp_path / "run" / HELD_OUT_FILE, np.zeros((2, 2), int))
    with pytest.raises(ValueError, match=r"not a list of row numbers"):
        read_run(tmp_path / "run").held_out()


def test_held_out_says_why_there_is_nothing_to_load(tmp_path, bars):
    write_bars_run(tmp_path / "run", bars)
    with pytest.raises(ValueError, match=r"held no images out .*--test-size"):
        read_run(tmp_path / "run").held_out()
    with pytest.raises(ValueError, match=r"no record of the data"):
        read_run(tmp_path / "elsewhere" / "model.keras").held_out()
    write_bars_run(tmp_path / "split", bars, test_size=0.2)
    with pytest.raises(ValueError, match=r"held out images of .*bars, not of digits"):
        read_run(tmp_path / "split").held_out(dataset="digits")


def test_held_out_finds_the_data_under_another_name(tmp_path, bars, monkeypatch):
    data, rows, _ = write_bars_run(tmp_path / "run", bars, test_size=0.2)
    monkeypatch.chdir(bars.parent)
    held_out = read_run(tmp_path / "run").held_out(dataset="bars")
    np.testing.assert_array_equal(held_out.y, data.y[rows])
    assert held_out.description.endswith(" in bars, held out")


def test_write_run_needs_the_data_of_its_rows(tmp_path):
    with pytest.raises(ValueError, match="needs the data"):
        write_run(tmp_path, FakeEstimator(), {}, held_out_rows=[0])


def test_held_out_of_digits_from_python(tmp_path):
    """The documented Python use: the same rows as the split of the source."""
    source = DataSource("digits", test_size=0.25, random_state=0)
    data = load_source("digits")
    _, rows = source.split(data.y)
    metrics = {"data_source": source.to_dict(), "n_test": len(rows)}
    write_run(tmp_path, FakeEstimator(), metrics, data=data, held_out_rows=rows)
    held_out = read_run(tmp_path).held_out()
    assert len(held_out.y) == len(rows) == round(0.25 * len(data.y))
    assert (
        held_out.description == "25% of scikit-learn digits as 28x28 (train), held out"
    )
