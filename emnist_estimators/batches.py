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
    :meth:`as_dataset` reads several consecutive batches at once (about
    :attr:`bytes_per_read` bytes) and splits them again inside tf.data, so
    Python runs once per read rather than once per batch; the batches are
    the same either way.

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

    Attributes
    ----------
    bytes_per_read : int
        About how many bytes of ``X``, ``y`` and the weights
        :meth:`as_dataset` gathers per Python call (8 MiB; at least one
        batch per read). A class attribute: set it on an instance to
        change one pipeline.
    """

    # Each Python hand-off to tf.data (from_generator's call back into the
    # interpreter, the tensors made from its arrays) cost about 0.9 ms on
    # 2 cores against 0.1 ms for gathering a 256-row batch itself: reading
    # ~40 batches per call makes that hand-off negligible (issue 32).
    bytes_per_read: int = 8 << 20

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
        return self._gather(self.rows(i))

    def _arrays(self) -> tuple[np.ndarray, ...]:
        if self.sample_weight is None:
            return self.X, self.y
        return self.X, self.y, self.sample_weight

    def _gather(self, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(a[rows] for a in self._arrays())

    def batches_per_read(self) -> int:
        """How many consecutive batches :meth:`as_dataset` gathers at once.

        Returns
        -------
        int
            At least 1: :attr:`bytes_per_read` over one batch's bytes.
        """
        row_bytes = sum(a[:1].nbytes for a in self._arrays())
        return max(1, int(self.bytes_per_read) // max(1, row_bytes * self.batch_size))

    def _reads(self):
        """Batches ``[k, k + per_read)`` of this epoch, gathered at once.

        Each batch's rows ascending as :meth:`rows` gives them, batch after
        batch; the order is taken when the first read is asked for.
        """
        order, size, n = self.order, self.batch_size, len(self)
        per_read = self.batches_per_read()
        for first in range(0, n, per_read):
            part = order[first * size : (first + per_read) * size]
            full = len(part) // size * size
            # every batch's rows sorted on their own: the same batches as rows(i)
            rows = np.concatenate(
                [
                    np.sort(part[:full].reshape(-1, size), axis=1).ravel(),
                    np.sort(part[full:]),
                ]
            )
            yield self._gather(rows)

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

        Batches are read lazily, :meth:`batches_per_read` at a time when
        the pipeline asks for the first of them, so the order
        :meth:`set_epoch` gives at an epoch's start is the order that epoch
        trains in: the prefetching starts with the epoch's first step,
        after the callbacks' ``on_epoch_begin``. Each read is split back
        into its batches inside tf.data (``rebatch``): the network sees
        the batches :meth:`__getitem__` returns, in the same order.

        Returns
        -------
        tf.data.Dataset
            ``len(self)`` batches, as :meth:`__getitem__` returns them.
        """
        import tensorflow as tf

        # each read: its rows of every array, whatever their length
        signature = tuple(
            tf.TensorSpec((None, *a.shape[1:]), a.dtype) for a in self._arrays()
        )
        dataset = tf.data.Dataset.from_generator(
            self._reads, output_signature=signature
        )
        if self.batches_per_read() > 1:
            # the next read is gathered while this one's batches train; every
            # read but the last holds whole batches, so rebatch (unbatch then
            # batch, without the copies) gives back exactly those batches
            dataset = dataset.prefetch(1).rebatch(self.batch_size)
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
