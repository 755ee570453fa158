"""Training batches gathered by index from the caller's array, shuffled per epoch.

How it works and why: the design notes in the docs (``docs/design.rst``).

Examples
--------
>>> import numpy as np
>>> from emnist_estimators.batches import IndexBatches
>>> X = np.arange(10, dtype=np.uint8).reshape(5, 2)
>>> y = np.arange(5)
>>> batches = IndexBatches(X, y, np.arange(5), batch_size=2, seed=0)
>>> len(batches)
3
>>> [len(batch[1]) for batch in (batches[0], batches[1], batches[2])]
[2, 2, 1]
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["IndexBatches", "epoch_order"]


def epoch_order(indices: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """The order of ``indices`` in ``epoch``: a function of ``(seed, epoch)`` only.

    Parameters
    ----------
    indices : ndarray of int
        The training rows.
    seed : int
        The fit's shuffling seed.
    epoch : int
        The epoch, from 0.

    Returns
    -------
    ndarray of int
        ``indices`` permuted.

    Examples
    --------
    >>> import numpy as np
    >>> a = epoch_order(np.arange(6), seed=1, epoch=3)
    >>> bool((a == epoch_order(np.arange(6), seed=1, epoch=3)).all())
    True
    >>> sorted(a.tolist())
    [0, 1, 2, 3, 4, 5]
    """
    rng = np.random.default_rng([seed, epoch])
    return indices[rng.permutation(len(indices))]


class IndexBatches(keras.utils.PyDataset):
    """Batches ``(X[rows], y[rows][, w[rows]])`` for ``keras.Model.fit``.

    Rows within a batch are read in ascending order, which a memory map
    reads sequentially. One worker, no multiprocessing: batches come in order.

    Parameters
    ----------
    X : ndarray or numpy.memmap of shape (n_samples, n_features)
        All the pixels; never copied.
    y : ndarray of shape (n_samples,)
        Encoded labels.
    indices : ndarray of int
        The rows of this set (training or hold-out).
    batch_size : int
        Rows per batch (the last batch may be smaller).
    seed : int or None
        Shuffling seed; None keeps ``indices`` in order every epoch (for the
        hold-out set).
    sample_weight : ndarray of shape (n_samples,), default=None
        Per-row weights, returned as the batch's third element.
    epoch : int, default=0
        The epoch the first ``fit`` call starts at (a resumed fit's first).
    """

    def __init__(
        self,
        X,
        y,
        indices,
        *,
        batch_size: int,
        seed: int | None,
        sample_weight=None,
        epoch: int = 0,
    ):
        super().__init__()
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.indices = np.asarray(indices)
        self.batch_size = int(batch_size)
        self.seed = seed
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Order the rows for ``epoch`` (called by ``fit`` at each epoch start).

        Parameters
        ----------
        epoch : int
            The epoch about to run, from 0.
        """
        self.epoch = int(epoch)
        if self.seed is None:
            self.order = self.indices
        else:
            self.order = epoch_order(self.indices, self.seed, self.epoch)

    def __len__(self) -> int:
        return -(-len(self.indices) // self.batch_size)

    def rows(self, i: int) -> np.ndarray:
        """The rows of batch ``i`` in this epoch, ascending.

        Parameters
        ----------
        i : int
            The batch, from 0.

        Returns
        -------
        ndarray of int
            Row numbers into ``X``.
        """
        return np.sort(self.order[i * self.batch_size : (i + 1) * self.batch_size])

    def __getitem__(self, i: int):
        rows = self.rows(i)
        if self.sample_weight is None:
            return self.X[rows], self.y[rows]
        return self.X[rows], self.y[rows], self.sample_weight[rows]

    def as_dataset(self):
        """These batches as a ``tf.data.Dataset`` for ``keras.Model.fit``.

        Give ``fit`` this rather than the ``PyDataset`` itself. Keras wraps a
        ``PyDataset`` in a pipeline that tf.data autotunes, and the
        autotuner's thread only notices that an epoch's iterator is being
        deleted when its wait times out: at the start of about every other
        epoch the training stopped, idle, for 3.5 s (30,000 images) to 19 s
        (89,000), a third of the default CNN's wall time on the EMNIST
        protocol. Without the autotuner - one batch prefetched in the
        background, which is all a step that reads a batch by index needs -
        every epoch starts at once.

        Batches are read lazily, each when the pipeline asks for it, so the
        order :meth:`set_epoch` gives at an epoch's start is the order that
        epoch trains in: the prefetching starts with the epoch's first
        step, after the callbacks' ``on_epoch_begin``.

        Returns
        -------
        tf.data.Dataset
            ``len(self)`` batches, as :meth:`__getitem__` returns them.
        """
        import tensorflow as tf

        arrays: tuple[np.ndarray, ...] = (self.X, self.y)
        if self.sample_weight is not None:
            arrays += (self.sample_weight,)
        # each batch: its rows of every array, whatever their length
        signature = tuple(tf.TensorSpec((None, *a.shape[1:]), a.dtype) for a in arrays)
        dataset = tf.data.Dataset.from_generator(
            lambda: (self[i] for i in range(len(self))),
            output_signature=signature,
        )
        options = tf.data.Options()
        options.autotune.enabled = False
        return (
            dataset.apply(tf.data.experimental.assert_cardinality(len(self)))
            .prefetch(1)
            .with_options(options)
        )

    def epoch_callback(self) -> keras.callbacks.Callback:
        """A callback that orders the rows for each epoch as it begins.

        Returns
        -------
        keras.callbacks.Callback
            Put it in the ``fit`` call's callbacks.
        """
        return _OrderEachEpoch(self)


class _OrderEachEpoch(keras.callbacks.Callback):
    def __init__(self, batches: IndexBatches) -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.batches.set_epoch(epoch)
