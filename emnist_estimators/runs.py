"""Training runs: the folder ``emnist-estimators train`` writes, read back.

A run folder holds the model (``model.keras``), its parameters
(``params.json``), its per-epoch history (``history.json``), its metrics with
the data it came from (``metrics.json``) and, when training held part of its
data out, which rows (``held_out_rows.npy``). :func:`write_run` writes one,
:func:`read_run` reads it back (folders written before the rows file existed
too), and :meth:`TrainingRun.held_out` loads exactly the images it held out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from ._splits import holdout_split
from ._utils import jsonable_params
from .sources import Dataset, load_source

__all__ = [
    "HELD_OUT_FILE",
    "DataSource",
    "TrainingRun",
    "data_description",
    "read_run",
    "sample",
    "sample_rows",
    "source_key",
    "split_rows",
    "take",
    "training_facts",
    "write_run",
]

#: The file of a run folder that lists the rows training held out.
HELD_OUT_FILE = "held_out_rows.npy"


def source_key(spec: str) -> str:
    """Name a data source as one comparable string: paths made absolute.

    Parameters
    ----------
    spec : str
        A data source as :func:`~emnist_estimators.sources.load_source` takes
        it: ``digits``, ``emnist:<split>``, a folder or a file.

    Returns
    -------
    str
        ``spec`` itself, or the full path of an existing file or folder.

    Examples
    --------
    >>> source_key("emnist:balanced")
    'emnist:balanced'
    """
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def data_description(description: str, dataset: str) -> str:
    """Complete a dataset's description with its folder, for report headers.

    An IDX folder's description is only its file name (e.g.
    ``t10k-images-idx3-ubyte.gz (test)``); the folder tells which one.

    Parameters
    ----------
    description : str
        What :func:`~emnist_estimators.sources.load_source` said the data is.
    dataset : str
        The data source the description came from.

    Returns
    -------
    str
        ``"<description> in <folder>"`` for a folder, else ``description``.

    Examples
    --------
    >>> data_description("scikit-learn digits as 28x28 (train)", "digits")
    'scikit-learn digits as 28x28 (train)'
    """
    folder = Path(dataset).expanduser()
    return f"{description} in {folder}" if folder.is_dir() else description


def sample_rows(y, max_samples: int | None, *, random_state=0) -> np.ndarray | None:
    """Pick the rows of a stratified sample of ``max_samples`` labels ``y``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        The labels to stratify by.
    max_samples : int or None
        How many rows to keep; None, 0, or at least ``len(y)``: all of them.
    random_state : int, RandomState or None, default=0
        The seed of the sample.

    Returns
    -------
    ndarray of int or None
        The sample's rows, in the order scikit-learn's ``train_test_split``
        draws them; None when every row is kept, in its order.

    Examples
    --------
    >>> rows = sample_rows(["a", "b"] * 5, 4, random_state=0)
    >>> len(rows), sample_rows(["a", "b"], 10) is None
    (4, True)
    """
    if not max_samples or max_samples >= len(y):
        return None
    rows, _ = holdout_split(y, train_size=max_samples, random_state=random_state)
    return rows


def split_rows(
    y,
    *,
    max_samples: int | None = None,
    test_size: float | None = None,
    random_state=0,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Choose the rows a training run learns from and the rows it holds out.

    First a stratified sample of ``max_samples`` rows, then a stratified
    share ``test_size`` of the sample held out; both through the package's
    one hold-out split (unstratified where a class is too small), so the rows
    and their order are those of scikit-learn's ``train_test_split`` on the
    data itself.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        The labels of the whole data source.
    max_samples : int or None, default=None
        Size of the sample; None: every row.
    test_size : float or None, default=None
        Share of the sample held out; None or 0: nothing held out.
    random_state : int, RandomState or None, default=0
        The seed of the sample and of the hold-out split.

    Returns
    -------
    train : ndarray of int or None
        The rows trained on, in training order; None: every row, in order.
    held_out : ndarray of int or None
        The rows held out; None when nothing is held out.

    Examples
    --------
    >>> train, held_out = split_rows(["a", "b"] * 10, test_size=0.2, random_state=0)
    >>> len(train), len(held_out), sorted(set(train) | set(held_out)) == list(range(20))
    (16, 4, True)
    """
    y = np.asarray(y)
    rows = sample_rows(y, max_samples, random_state=random_state)
    if not test_size:
        return rows, None
    sampled = y if rows is None else y[rows]
    train, held_out = holdout_split(
        sampled, test_size=test_size, random_state=random_state
    )
    if rows is None:
        return train, held_out
    return rows[train], rows[held_out]


def take(data: Dataset, rows, description: str | None = None) -> Dataset:
    """Select rows of a dataset.

    Parameters
    ----------
    data : Dataset
        Pixels and labels, as :func:`~emnist_estimators.sources.load_source`
        returns them.
    rows : array-like of int or None
        The rows, in the order wanted; None: ``data`` itself (no copy).
    description : str, default=None
        The new dataset's description; None: ``data``'s.

    Returns
    -------
    Dataset
        The rows' pixels and labels.

    Examples
    --------
    >>> import numpy as np
    >>> from emnist_estimators.sources import Dataset
    >>> data = Dataset(np.zeros((3, 784), np.uint8), np.array(["a", "b", "c"]), "abc")
    >>> take(data, [2, 0]).y.tolist()
    ['c', 'a']
    """
    if rows is None:
        return data
    rows = np.asarray(rows)
    return Dataset(
        data.X[rows],
        data.y[rows],
        data.description if description is None else description,
    )


def sample(data: Dataset, max_samples: int | None, *, random_state=0) -> Dataset:
    """Draw a stratified sample of a dataset, as ``--max-samples`` does.

    Parameters
    ----------
    data : Dataset
        The dataset.
    max_samples : int or None
        The sample's size; None, 0, or at least the dataset's: all of it.
    random_state : int, RandomState or None, default=0
        The seed of the sample.

    Returns
    -------
    Dataset
        The sample, with ``data``'s description; ``data`` itself when no
        row is left out.

    Examples
    --------
    >>> from emnist_estimators.sources import load_source
    >>> len(sample(load_source("digits"), 100).y)
    100
    """
    rows = sample_rows(data.y, max_samples, random_state=random_state)
    return take(data, rows)


def _fingerprint(data: Dataset) -> str:
    """A sha256 of the pixels and labels, to tell the same rows again."""
    digest = hashlib.sha256()
    X = np.ascontiguousarray(data.X)
    digest.update(f"{X.dtype.str}{X.shape}".encode())
    digest.update(X.data)
    digest.update("\0".join(np.asarray(data.y).astype(str).tolist()).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class DataSource:
    """Which images a training run used, and which of them it held out.

    What ``metrics.json`` records as ``data_source``: enough to load the same
    data again and to choose the same rows.

    Attributes
    ----------
    dataset : str
        The data source, as :func:`source_key` names it.
    subset : {'train', 'test'}, default='train'
        Which part of the source.
    max_samples : int or None, default=None
        Size of the stratified sample trained on and held out; None: all.
    test_size : float or None, default=None
        Share of the sample held out; None: nothing held out.
    random_state : int or None, default=0
        The seed of the sample and of the hold-out split.
    data_home : str or None, default=None
        The EMNIST folder of ``emnist:<split>`` sources; None: the default.

    Examples
    --------
    >>> source = DataSource("digits", test_size=0.25)
    >>> data = source.load()
    >>> train, held_out = source.split(data.y)
    >>> len(held_out) == round(0.25 * len(data.y))
    True
    """

    dataset: str
    subset: str = "train"
    max_samples: int | None = None
    test_size: float | None = None
    random_state: int | None = 0
    data_home: str | None = None

    def to_dict(self) -> dict:
        """Give the source as ``metrics.json`` records it.

        Returns
        -------
        dict
            ``dataset``, ``subset``, ``test_size``, ``max_samples``,
            ``random_state`` and ``data_home``.
        """
        return {
            "dataset": self.dataset,
            "subset": self.subset,
            "test_size": self.test_size,
            "max_samples": self.max_samples,
            "random_state": self.random_state,
            "data_home": self.data_home,
        }

    @classmethod
    def from_dict(cls, record: dict, *, random_state=None) -> DataSource:
        """Read a source back from ``metrics.json``'s ``data_source``.

        Parameters
        ----------
        record : dict
            The recorded source; keys it does not know are ignored.
        random_state : int or None, default=None
            The seed for records written before the seed was part of them
            (the run's ``params.json`` has it).

        Returns
        -------
        DataSource
            The source.
        """
        return cls(
            dataset=str(record["dataset"]),
            subset=str(record.get("subset", "train")),
            max_samples=record.get("max_samples"),
            test_size=record.get("test_size"),
            random_state=record.get("random_state", random_state),
            data_home=record.get("data_home"),
        )

    def load(self, *, dataset: str | None = None, data_home=None) -> Dataset:
        """Load every row of the source's subset.

        Parameters
        ----------
        dataset : str, default=None
            Where to find the same data source under another name (say, a
            path relative to the current folder); None: :attr:`dataset`.
        data_home : str or path-like, default=None
            The EMNIST folder; None: :attr:`data_home`, else the default.

        Returns
        -------
        Dataset
            The pixels and labels, before any sample or hold-out.
        """
        return load_source(
            self.dataset if dataset is None else dataset,
            self.subset,
            data_home=self.data_home if data_home is None else data_home,
        )

    def split(self, y) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Choose the rows trained on and the rows held out, as :func:`split_rows`.

        Parameters
        ----------
        y : array-like of shape (n_samples,)
            The labels of every row of the source's subset.

        Returns
        -------
        train : ndarray of int or None
            The rows trained on; None: all of them, in order.
        held_out : ndarray of int or None
            The rows held out; None: none.
        """
        return split_rows(
            y,
            max_samples=self.max_samples,
            test_size=self.test_size,
            random_state=self.random_state,
        )

    def held_out_description(self, description: str) -> str:
        """Describe the held-out part of a dataset, for messages and reports.

        Parameters
        ----------
        description : str
            What the whole dataset is.

        Returns
        -------
        str
            For example ``"20% of EMNIST balanced (train), held out"``.
        """
        return f"{self.test_size:.0%} of {description}, held out"


def _read_json(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):  # absent (a model saved from Python) or bad
        return {}
    return record if isinstance(record, dict) else {}


@dataclass(frozen=True)
class TrainingRun:
    """A run folder written by ``emnist-estimators train``, read back.

    Attributes
    ----------
    folder : Path
        The run folder.
    params : dict
        ``params.json``: the estimator's parameters; {} if absent.
    history : dict
        ``history.json``: per-epoch loss and metrics; {} if absent.
    metrics : dict
        ``metrics.json``: the model, data, sizes, time and test accuracy;
        {} if absent (a model saved from Python has no record).
    source : DataSource or None
        The data trained on and held out; None without a record of it.

    Examples
    --------
    >>> run = read_run("no-such-folder/model.keras")
    >>> run.metrics, run.source
    ({}, None)
    """

    folder: Path
    params: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    source: DataSource | None = None

    @property
    def model_file(self) -> Path:
        """The saved model, ``model.keras`` in the run folder.

        Returns
        -------
        Path
            The file; load it with :func:`emnist_estimators.load_model`.
        """
        return self.folder / "model.keras"

    @property
    def held_out_rows(self) -> np.ndarray | None:
        """The rows training held out, as recorded in ``held_out_rows.npy``.

        Returns
        -------
        ndarray of int or None
            Rows of the source's subset, in the order scored; None when the
            folder has no such file (nothing held out, or a run written
            before the file existed: :meth:`held_out` chooses them again).
        """
        path = self.folder / HELD_OUT_FILE
        if not path.is_file():
            return None
        try:
            rows = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"Cannot read {path}: {exc}") from exc
        if rows.ndim != 1 or rows.dtype.kind not in "iu":
            raise ValueError(f"{path} is not a list of row numbers.")
        return rows.astype(np.intp, copy=False)

    def held_out(self, *, dataset: str | None = None, data_home=None) -> Dataset:
        """Load exactly the images the training run held out.

        Parameters
        ----------
        dataset : str, default=None
            The run's data source, if given: it must be the one it trained
            on (under any name, e.g. a relative path). None: as recorded.
        data_home : str or path-like, default=None
            The EMNIST folder; None: the run's, else the default.

        Returns
        -------
        Dataset
            The held-out images and labels in the order training scored
            them, described as e.g. ``"20% of EMNIST balanced (train), held
            out"``.

        Raises
        ------
        ValueError
            If the run has no record of its data, held nothing out, was
            trained on another dataset than ``dataset``, or its data changed
            since (other rows, pixels or labels).
        """
        source = self.source
        if source is None:
            raise ValueError(
                f"{self.folder} has no record of the data it was trained on "
                "(metrics.json written by `emnist-estimators train`): nothing "
                "says which images it held out."
            )
        if not source.test_size:
            raise ValueError(
                f"The training run in {self.folder} held no images out (train "
                "ran without --test-size): score it on other images, such as "
                "the dataset's test subset."
            )
        if dataset is not None and source_key(dataset) != source.dataset:
            raise ValueError(
                f"The training run in {self.folder} held out images of "
                f"{source.dataset}, not of {dataset}."
            )
        data = source.load(dataset=dataset, data_home=data_home)
        rows = self.held_out_rows
        if rows is None:  # a run folder written before the rows file existed
            if source.random_state is None:
                raise ValueError(
                    f"{self.folder} records no seed of its hold-out split: "
                    "its held-out images cannot be chosen again."
                )
            # a run with no hold-out was refused above: rows are held out
            rows = cast(np.ndarray, source.split(data.y)[1])
        description = source.held_out_description(
            data_description(data.description, dataset or source.dataset)
        )
        held_out = take(data, rows, description) if self._fit(data, rows) else None
        facts = self.metrics["data_source"]
        recorded = facts.get("held_out_sha256")
        if held_out is None or recorded not in (None, _fingerprint(held_out)):
            raise ValueError(
                f"{source.dataset} ({source.subset}) changed since the training "
                f"run in {self.folder}: its held-out images are not there any "
                "more."
            )
        return held_out

    def _fit(self, data: Dataset, rows: np.ndarray) -> bool:
        """Whether ``rows`` fit ``data`` as they fitted the data at training."""
        n = len(data.y)
        if self.metrics["data_source"].get("n_rows", n) != n:
            return False
        if self.metrics.get("n_test", len(rows)) != len(rows):
            return False
        return not len(rows) or 0 <= rows.min() <= rows.max() < n


def read_run(path) -> TrainingRun:
    """Read a training run's record.

    Parameters
    ----------
    path : str or path-like
        The run folder, or the ``model.keras`` file in it.

    Returns
    -------
    TrainingRun
        What ``train`` recorded; files it did not write read as empty (a
        model saved from Python has no record beside it).

    Examples
    --------
    >>> run = read_run("runs/cnn/model.keras")
    >>> run.folder.as_posix(), run.model_file.as_posix()
    ('runs/cnn', 'runs/cnn/model.keras')
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    params = _read_json(folder / "params.json")
    metrics = _read_json(folder / "metrics.json")
    recorded = metrics.get("data_source")
    source = None
    if isinstance(recorded, dict) and "dataset" in recorded:
        # runs written before the seed was recorded with the source: params
        # has it (train passes --random-state to the sample and the split)
        source = DataSource.from_dict(recorded, random_state=params.get("random_state"))
    return TrainingRun(
        folder=folder,
        params=params,
        history=_read_json(folder / "history.json"),
        metrics=metrics,
        source=source,
    )


def training_facts(metrics: dict) -> dict:
    """Give a run's ``metrics.json`` for a report header, its data named in full.

    Parameters
    ----------
    metrics : dict
        The record, as :func:`write_run` writes it (or {}).

    Returns
    -------
    dict
        ``metrics`` with ``dataset`` completed by :func:`data_description`.

    Examples
    --------
    >>> training_facts({"n_train": 10})
    {'n_train': 10}
    """
    source = metrics.get("data_source")
    if "dataset" in metrics and isinstance(source, dict):
        dataset = data_description(metrics["dataset"], str(source.get("dataset")))
        return {**metrics, "dataset": dataset}
    return metrics


def write_run(
    folder,
    estimator,
    metrics: dict,
    *,
    data: Dataset | None = None,
    held_out_rows=None,
) -> dict:
    """Write a training run into a folder.

    ``model.keras``, ``params.json``, ``history.json`` and ``metrics.json``;
    with ``held_out_rows``, also ``held_out_rows.npy`` and, in
    ``metrics["data_source"]``, the number of rows of ``data`` and a sha256
    of the held-out rows, so that :meth:`TrainingRun.held_out` finds exactly
    them again or says the data changed.

    Parameters
    ----------
    folder : str or path-like
        An existing folder.
    estimator : fitted EmnistMLP or EmnistCNN
        The model.
    metrics : dict
        What to record in ``metrics.json``; its ``data_source``, if any, as
        :meth:`DataSource.to_dict` gives it.
    data : Dataset, default=None
        Every row of the source's subset (needed with ``held_out_rows``).
    held_out_rows : array-like of int, default=None
        The rows of ``data`` held out, in the order scored.

    Returns
    -------
    dict
        The record written as ``metrics.json``: ``metrics``, its
        ``data_source`` completed as said above (``metrics`` is not changed).
    """
    folder = Path(folder)
    estimator.save(folder / "model.keras")
    params = jsonable_params(estimator.get_params())
    (folder / "params.json").write_text(json.dumps(params, indent=2))
    (folder / "history.json").write_text(json.dumps(estimator.history_, indent=2))
    if held_out_rows is not None:
        if data is None:
            raise ValueError("write_run needs the data its held_out_rows index.")
        rows = np.asarray(held_out_rows)
        dtype = np.min_scalar_type(max(len(data.y) - 1, 0))
        np.save(folder / HELD_OUT_FILE, rows.astype(dtype), allow_pickle=False)
        source = metrics.get("data_source")
        if isinstance(source, dict):
            metrics = {
                **metrics,
                "data_source": {
                    **source,
                    "n_rows": int(len(data.y)),
                    "held_out_sha256": _fingerprint(take(data, rows)),
                },
            }
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
