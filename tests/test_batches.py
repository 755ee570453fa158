"""Training batches read by index, and the tf.data pipeline that feeds them to fit.

The pipeline is ours rather than the one Keras builds around a ``PyDataset``:
that one is autotuned, and deleting an epoch's autotuned iterator waited for
the autotuner's timed sleep - seconds of idle CPU at the start of about every
other epoch (``IndexBatches.as_dataset``).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import bar_images

from emnist_estimators import EmnistMLP
from emnist_estimators.batches import IndexBatches


def batches(**kw):
    X = np.arange(70 * 4, dtype=np.uint8).reshape(70, 4)
    y = np.arange(70) % 3
    params = {"batch_size": 16, "seed": 7, "sample_weight": np.linspace(0, 1, 70)}
    return IndexBatches(X, y, np.arange(5, 70), **{**params, **kw})


def read(dataset):
    return [tuple(t.numpy() for t in batch) for batch in dataset]


def same(a, b):
    if len(a) != len(b):
        return False
    return all(
        len(x) == len(z) and all(map(np.array_equal, x, z))
        for x, z in zip(a, b, strict=True)
    )


def per_read(b, k):
    """Make ``b`` gather ``k`` batches per read (its X, y and weights' bytes)."""
    row = sum(a[:1].nbytes for a in (b.X, b.y, b.sample_weight) if a is not None)
    b.bytes_per_read = k * b.batch_size * row
    assert b.batches_per_read() == k
    return b


@pytest.mark.parametrize("reads", [1, 2, 3, 5])
@pytest.mark.parametrize("weighted", [True, False])
def test_the_dataset_yields_exactly_the_batches_of_the_current_epoch(weighted, reads):
    """Read several batches at a time (3 reads of 2 batches, the last one
    short; 2 of 3; all 5 in one) or one at a time: the same batches."""
    b = per_read(batches(**({} if weighted else {"sample_weight": None})), reads)
    dataset = b.as_dataset()
    for epoch in (0, 1, 2):
        b.set_epoch(epoch)  # as fit's epoch callback does, between iterations
        expected = [tuple(np.asarray(t) for t in b[i]) for i in range(len(b))]
        assert same(read(dataset), expected)
    assert len(expected) == 5 and len(expected[0]) == (3 if weighted else 2)
    assert not same(read(dataset), read(batches(seed=8).as_dataset()))


@pytest.mark.parametrize("reads", [1, 2])
def test_batches_are_read_when_the_epoch_runs_not_when_its_iterator_is_made(reads):
    """Keras makes the next epoch's iterator as the last one ends, before
    ``on_epoch_begin`` orders the rows: nothing may be read ahead then."""
    b = per_read(batches(), reads)
    iterator = iter(b.as_dataset())
    b.set_epoch(3)
    assert np.array_equal(next(iterator)[1].numpy(), b[0][1])
    assert np.array_equal(next(iterator)[1].numpy(), b[1][1])


def test_the_dataset_is_not_autotuned_and_knows_its_length():
    dataset = batches().as_dataset()
    assert dataset.options().autotune.enabled is False
    assert int(dataset.cardinality()) == len(batches()) == 5


def test_fit_and_partial_fit_train_on_the_untuned_pipeline(monkeypatch):
    made = []
    original = IndexBatches.as_dataset

    def spy(self):
        made.append(len(self.indices))
        return original(self)

    monkeypatch.setattr(IndexBatches, "as_dataset", spy)
    X, y = bar_images(100, 0)
    clf = EmnistMLP((8,), epochs=2, validation_fraction=0.2, random_state=0)
    clf.fit(X, y)
    assert sorted(made) == [20, 80]  # the hold-out rows and the training rows
    clf.partial_fit(X, y)
    assert made[-1] == 100


def test_a_memory_map_trains_the_same_network_as_the_arrays(tmp_path, monkeypatch):
    """Same seed: a fit on a memory-mapped X, reading 3 batches per Python
    call, gives bit-identical weights and predictions to a fit on X in RAM
    read one batch per call - the hand-off does not change what trains."""
    X, y = bar_images(150, 0)
    X = X.reshape(len(X), -1)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert isinstance(mapped, np.memmap)
    weight = np.linspace(0.5, 1.5, len(y))

    counts = []
    original = IndexBatches.batches_per_read

    def spy(self):
        counts.append(original(self))
        return counts[-1]

    monkeypatch.setattr(IndexBatches, "batches_per_read", spy)

    def fit(data, k):
        # bytes of X, y (int32 classes) and the float32 weights per batch row
        monkeypatch.setattr(IndexBatches, "bytes_per_read", k * 16 * (784 + 8))
        clf = EmnistMLP((8,), epochs=2, batch_size=16, validation_fraction=0.2)
        return clf.set_params(random_state=3).fit(data, y, sample_weight=weight)

    streamed = fit(mapped, 3)
    assert 3 in counts  # training: 120 rows, 8 batches in 3 reads
    counts.clear()
    in_ram = fit(X, 1)
    assert set(counts) == {1}
    for a, b in zip(
        streamed.model_.get_weights(), in_ram.model_.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(streamed.predict_proba(X), in_ram.predict_proba(X))
    assert streamed.history_ == in_ram.history_
