"""Checkpoints that let an interrupted ``fit`` resume from its last epoch.

How it works and why: the design notes in the docs (``docs/design.rst``).

Examples
--------
>>> from emnist_estimators.checkpoints import CHECKPOINT_NAME
>>> CHECKPOINT_NAME
'emnist-checkpoint.npz'
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ._utils import is_int, is_real, jsonable, jsonable_params
from .exceptions import DataFormatError, EmnistEstimatorsError, OutputFolderError
from .keras_io import variables_as_numpy

__all__ = [
    "CHECKPOINT_NAME",
    "CHECKPOINT_FORMAT",
    "CheckpointMismatchError",
    "CheckpointStore",
    "ResumableEarlyStopping",
]

CHECKPOINT_NAME = "emnist-checkpoint.npz"
#: Version of the file's layout; a different one is refused, not guessed at.
CHECKPOINT_FORMAT = 1

#: The JSON state: parameters, history (a float per epoch and metric), ids.
_STATE_CAP = 64 << 20
#: A .npy member's header (magic, version, dict) is well under this.
_NPY_HEADER_CAP = 10_000
#: Parameters that do not change what is trained.
_FREE_PARAMS = ("verbose", "callbacks", "checkpoint_dir", "warm_start")
#: Bytes of X hashed per step of the data fingerprint: a memory-mapped split
#: is read a block at a time, never loaded whole.
_FINGERPRINT_BLOCK = 4 << 20
#: Marks fingerprints of every row (sha256); older checkpoints hashed a
#: sample of 1,024 rows and have no such prefix.
_FINGERPRINT_KIND = "sha256-rows:"


class CheckpointMismatchError(EmnistEstimatorsError, ValueError):
    """The checkpoint in ``checkpoint_dir`` is not of this fit."""


def _pairs_of_dicts(params: dict) -> dict:
    """``params`` as checkpoints written before :func:`jsonable` recorded it.

    Those wrote a dict (``class_weight``) as sorted ``[repr(key), value]``
    pairs; every other value as :func:`jsonable` does.
    """
    return {
        k: sorted([repr(key), jsonable(v)] for key, v in value.items())
        if isinstance(value, dict)
        else jsonable(value)
        for k, value in params.items()
    }


def _fingerprint(X: np.ndarray, y_enc: np.ndarray, w: np.ndarray | None) -> str:
    """sha256 of X's every row, the labels and the weights.

    Every row, so that a fit on data changed anywhere is not given another
    fit's weights. sha256 over blocks of rows: on CPUs with SHA instructions
    it ran faster than blake2b (1.1-1.5 against 0.5-0.8 GB/s measured), about
    0.5 s for EMNIST's 814,255 uint8 images once they are in memory.
    """
    digest = hashlib.sha256()
    digest.update(repr((X.shape, X.dtype.str, y_enc.shape)).encode())
    digest.update(np.ascontiguousarray(y_enc).tobytes())
    # the loss's weights (sample_weight times class_weight) shape training too
    weights = b"none" if w is None else np.ascontiguousarray(w, np.float32).tobytes()
    digest.update(weights)
    row_bytes = max(1, X.dtype.itemsize * int(np.prod(X.shape[1:], dtype=np.int64)))
    step = max(1, _FINGERPRINT_BLOCK // row_bytes)
    for start in range(0, len(X), step):
        # an ndarray is a buffer: numpy declares __buffer__ for Python >= 3.12 only
        digest.update(np.ascontiguousarray(X[start : start + step]))  # type: ignore[arg-type]
    return _FINGERPRINT_KIND + digest.hexdigest()


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' ``EarlyStopping`` whose counters survive a resumed fit.

    Keras resets ``wait``, ``best`` and ``best_weights`` when training
    begins; a resumed fit sets them back from the checkpoint
    (:meth:`resume_from`) so it stops on the epoch an uninterrupted fit would
    and restores the same best weights.

    Parameters
    ----------
    **kwargs
        ``keras.callbacks.EarlyStopping``'s arguments.
    """

    # Keras' EarlyStopping sets these (declared here for the type checker).
    wait: int
    best: float | None
    best_epoch: int

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._resume: dict | None = None

    def resume_from(self, counters: dict, best_weights: list | None) -> None:
        """Set the counters and best weights to restore when training begins.

        Parameters
        ----------
        counters : dict
            ``wait``, ``best``, ``best_epoch`` as :meth:`counters` gave them.
        best_weights : list of ndarray or None
            The weights of the best epoch so far.
        """
        self._resume = dict(counters, best_weights=best_weights)

    def counters(self) -> dict:
        """The state to store in a checkpoint, without the weights.

        Returns
        -------
        dict
            ``wait``, ``best`` and ``best_epoch``.
        """
        best = self.best
        return {
            "wait": int(self.wait),
            "best": None if best is None else float(best),
            "best_epoch": int(self.best_epoch),
        }

    def on_train_begin(self, logs=None) -> None:
        """Reset as Keras does, then restore the resumed fit's counters.

        Parameters
        ----------
        logs : dict, default=None
            Keras' logs (unused).
        """
        super().on_train_begin(logs)
        if self._resume is not None:
            self.wait = self._resume["wait"]
            best = self._resume["best"]
            self.best = best if best is not None else self.best
            self.best_epoch = self._resume["best_epoch"]
            self.best_weights = self._resume["best_weights"]


class CheckpointStore:
    """The checkpoint file of one estimator's fit in ``folder``.

    Parameters
    ----------
    folder : str or path-like
        The estimator's ``checkpoint_dir``; created if missing.
    estimator : EmnistMLP or EmnistCNN
        The estimator being fitted (its class and parameters identify the run).
    X : ndarray of shape (n_samples, n_features)
        The validated training pixels.
    y_enc : ndarray of int
        The encoded labels.
    w : ndarray of float32, default=None
        The loss's per-sample weights (``sample_weight`` times
        ``class_weight``), part of the data's fingerprint.
    start : str, default=None
        A digest of the weights a warm-started fit starts from; None for a
        new network.
    """

    def __init__(self, folder, estimator, X, y_enc, w=None, start=None) -> None:
        if not os.fspath(folder):
            # Path("") is the current directory: refuse, not write there
            raise OutputFolderError(
                "checkpoint_dir is '' (empty): it would write checkpoints into "
                "the current directory. Pass a folder name (created if "
                "missing), or None for no checkpoints."
            )
        self.folder = Path(folder)
        self.path = self.folder / CHECKPOINT_NAME
        params = estimator.get_params(deep=False)
        self.identity = {
            "class": type(estimator).__name__,
            "params": jsonable_params(params, exclude=_FREE_PARAMS),
            "classes": jsonable(list(estimator.classes_)),
            "n_features": int(X.shape[1]),
            "data": _fingerprint(X, y_enc, w),
            # a warm-started fit continues from these weights, not new ones
            "start": "new" if start is None else start,
        }
        # how checkpoints written before jsonable_params recorded them
        self._old_params = _pairs_of_dicts(
            {k: v for k, v in params.items() if k not in _FREE_PARAMS}
        )
        self.epochs = int(params["epochs"])
        self._check_writable()

    def _check_writable(self) -> None:
        """Fail before training, not after its first epoch, on a bad folder."""
        probe = self.folder / f".{CHECKPOINT_NAME}.{os.getpid()}.probe"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise OutputFolderError(
                f"checkpoint_dir {self.folder} cannot hold checkpoints ({exc}). "
                "Pass a writable folder (created if missing)."
            ) from exc

    # --- reading ------------------------------------------------------------
    def read_state(self) -> dict | None:
        """The checkpoint's state if the file exists, checked against this fit.

        Returns
        -------
        dict or None
            ``seed``, ``epoch``, ``finished``, ``history``, ... ; None when
            there is no checkpoint yet.

        Raises
        ------
        CheckpointMismatchError
            If the checkpoint is of another estimator, parameters, class set
            or training data.
        DataFormatError
            If the file is not a checkpoint this version can read.
        """
        if not self.path.exists():
            return None
        try:
            with zipfile.ZipFile(self.path) as zf:
                raw = self._read_npy(zf, "state.npy", None, np.dtype(np.uint8))
            state = json.loads(raw.tobytes().decode("utf-8"))
        except (
            OSError,
            KeyError,
            ValueError,
            RecursionError,
            zipfile.BadZipFile,
        ) as exc:
            raise self._corrupt(f"it cannot be read ({exc})") from exc
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise self._corrupt(f"it is not in checkpoint format {CHECKPOINT_FORMAT}")
        self._check_identity(state.get("identity"))
        self._check_state(state)
        if state["identity"].get("start") != self.identity["start"]:
            # A warm-started fit from other weights than the checkpoint's fit.
            if state["finished"]:
                return None  # e.g. the previous fit's: this fit supersedes it
            raise CheckpointMismatchError(
                f"The checkpoint {self.path} is of an unfinished fit that started "
                "from other weights than this warm-started fit's. Pass another "
                "checkpoint_dir, or delete the file to train from these weights."
            )
        return state

    def _check_state(self, state: dict) -> None:
        """The fields ``fit`` uses, each of the type and range it needs."""
        epoch, seed, history = (
            state.get("epoch"),
            state.get("seed"),
            state.get("history"),
        )
        if not is_int(epoch) or not 0 <= epoch <= self.epochs:
            raise self._corrupt(f"its epoch {epoch!r} is not in 0..{self.epochs}")
        if not is_int(seed) or not 0 <= seed < 2**32:
            raise self._corrupt(f"its seed {seed!r} is not an int in [0, 2**32)")
        if not isinstance(state.get("finished"), bool):
            raise self._corrupt("it does not say whether the fit finished")
        if not isinstance(history, dict) or not all(
            isinstance(k, str)
            and isinstance(v, list)
            and len(v) == epoch
            and all(is_real(x) for x in v)
            for k, v in history.items()
        ):
            raise self._corrupt(f"its history is not {epoch} numbers per metric")
        early = state.get("early_stopping")
        if early is not None and not (
            isinstance(early, dict)
            and is_int(early.get("wait"))
            and is_int(early.get("best_epoch"))
            and (early.get("best") is None or is_real(early.get("best")))
        ):
            raise self._corrupt("its early-stopping counters are malformed")

    def _read_npy(self, zf, name: str, shape, dtype: np.dtype) -> np.ndarray:
        """Read one ``.npy`` member after checking its header.

        ``np.load`` allocates what the header declares before reading a
        byte, so the declared shape and dtype are compared with what this
        network needs (``shape`` None: a 1-D array up to the state's cap)
        first; pickled (object) arrays are never loaded.
        """
        info = zf.getinfo(name)
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(
                    f, max_header_size=_NPY_HEADER_CAP
                )
            elif version in ((2, 0), (3, 0)):
                header = np.lib.format.read_array_header_2_0(
                    f, max_header_size=_NPY_HEADER_CAP
                )
            else:
                raise self._corrupt(f"{name} has .npy version {version}")
            got_shape, fortran, got_dtype = header
            if shape is None:
                ok = len(got_shape) == 1 and got_shape[0] <= _STATE_CAP
            else:
                ok = tuple(got_shape) == tuple(shape)
            if not ok or got_dtype != dtype or got_dtype.hasobject:
                want = "a 1-D array" if shape is None else f"{dtype}{tuple(shape)}"
                raise self._corrupt(
                    f"{name} is {got_dtype}{tuple(got_shape)}, the network needs {want}"
                )
            count = int(np.prod(got_shape))
            data = f.read(count * dtype.itemsize + 1)
        if len(data) != count * dtype.itemsize:
            raise self._corrupt(
                f"{name} holds {len(data):,} bytes, not {count:,} values"
            )
        array = np.frombuffer(data, dtype=dtype)
        if dtype.kind not in "biu" and shape is not None:
            # of the right shape and dtype, yet a diverged network's: resuming
            # would train NaN on (or a finished fit return it)
            finite = np.isfinite(array.astype(np.float32, copy=False))
            if not finite.all():
                raise self._corrupt(
                    f"{name} holds {finite.size - int(finite.sum()):,} NaN or "
                    "infinite values"
                )
        if fortran:
            return array.reshape(got_shape[::-1]).T
        return array.reshape(got_shape)

    def _corrupt(self, why: str) -> DataFormatError:
        return DataFormatError(
            f"{self.path} is not a usable checkpoint: {why}. Delete it to train "
            "from scratch, or pass another checkpoint_dir."
        )

    def _check_identity(self, saved) -> None:
        if not isinstance(saved, dict):
            raise self._corrupt("it does not say which fit it belongs to")
        mine = self.identity
        problems = []
        if saved.get("class") != mine["class"]:
            problems.append(f"it is of a {saved.get('class')}, not a {mine['class']}")
        elif saved.get("params") not in (mine["params"], self._old_params):
            theirs = saved.get("params") or {}
            names = sorted(
                k
                for k in set(theirs) | set(mine["params"])
                if theirs.get(k) != mine["params"].get(k)
            )
            problems.append(
                "parameters differ: "
                + ", ".join(
                    f"{k}={theirs.get(k)!r} there, {mine['params'].get(k)!r} here"
                    for k in names
                )
            )
        if saved.get("classes") != mine["classes"]:
            problems.append(
                f"its classes are {saved.get('classes')!r}, this fit's "
                f"{mine['classes']!r}"
            )
        elif saved.get("n_features") != mine["n_features"]:
            problems.append(
                f"it has {saved.get('n_features')} pixels per image, this fit "
                f"{mine['n_features']}"
            )
        elif not str(saved.get("data")).startswith(_FINGERPRINT_KIND):
            problems.append(
                "it was written by an older version, whose data fingerprint "
                "sampled 1,024 rows, so it cannot tell whether its data is this "
                "fit's"
            )
        elif saved.get("data") != mine["data"]:
            problems.append("it was trained on other data (X or y differ)")
        if problems:
            raise CheckpointMismatchError(
                f"The checkpoint {self.path} is not of this fit: "
                + "; ".join(problems)
                + ". Pass another checkpoint_dir (each fit needs its own), or "
                "delete the file to train from scratch."
            )

    def restore(self, state: dict, model, early_stopping=None) -> tuple[int, dict]:
        """Load the saved variables into ``model`` (compiled, same network).

        Parameters
        ----------
        state : dict
            What :meth:`read_state` returned.
        model : keras.Model
            A freshly built and compiled network with the fit's parameters.
        early_stopping : ResumableEarlyStopping, default=None
            Given its counters and best weights back.

        Returns
        -------
        epoch : int
            Epochs already done.
        history : dict of list of float
            Their history.
        """
        model.optimizer.build(model.trainable_variables)
        groups = {
            "model": list(model.variables),
            "optimizer": list(model.optimizer.variables),
        }
        if early_stopping is not None and state.get("has_best_weights"):
            # the best weights have the shapes of the network's weights
            groups["best"] = list(model.weights)
        expected = {
            f"{group}_{i}.npy": (tuple(v.shape), np.dtype(_dtype_of(v)))
            for group, values in groups.items()
            for i, v in enumerate(values)
        }
        arrays = self._read_arrays(expected)
        for group in ("model", "optimizer"):
            for i, variable in enumerate(groups[group]):
                variable.assign(arrays[f"{group}_{i}.npy"])
        if early_stopping is not None and "early_stopping" in state:
            best = None
            if "best" in groups:
                best = [arrays[f"best_{i}.npy"] for i in range(len(groups["best"]))]
            early_stopping.resume_from(state["early_stopping"], best)
        return int(state["epoch"]), {k: list(v) for k, v in state["history"].items()}

    def _read_arrays(self, expected: dict) -> dict:
        try:
            with zipfile.ZipFile(self.path) as zf:
                names = set(zf.namelist()) - {"state.npy"}
                if names != set(expected):
                    raise self._corrupt(
                        f"it holds {len(names)} arrays where this network has "
                        f"{len(expected)}"
                    )
                return {
                    name: self._read_npy(zf, name, shape, dtype)
                    for name, (shape, dtype) in expected.items()
                }
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            if isinstance(exc, DataFormatError):
                raise
            raise self._corrupt(f"it cannot be read ({exc})") from exc

    # --- writing ------------------------------------------------------------
    def write(
        self,
        model,
        *,
        seed: int,
        epoch: int,
        history: dict,
        finished: bool,
        early_stopping=None,
    ) -> None:
        """Write the state after ``epoch`` epochs: temp file, then rename.

        Parameters
        ----------
        model : keras.Model
            The network being trained (compiled).
        seed : int
            The fit's shuffling seed.
        epoch : int
            Epochs done.
        history : dict of list of float
            Per-epoch metrics so far.
        finished : bool
            True once training ended (all epochs, or stopped early).
        early_stopping : ResumableEarlyStopping, default=None
            Its counters and best weights are saved too.
        """
        state = {
            "format": CHECKPOINT_FORMAT,
            "identity": self.identity,
            "seed": int(seed),
            "epoch": int(epoch),
            "finished": bool(finished),
            "history": history,
        }
        arrays: dict[str, np.ndarray] = {}
        for group, variables in (
            ("model", model.variables),
            ("optimizer", model.optimizer.variables),
        ):
            values = variables_as_numpy(variables)
            arrays.update((f"{group}_{i}", v) for i, v in enumerate(values))
        if early_stopping is not None:
            state["early_stopping"] = early_stopping.counters()
            best = early_stopping.best_weights
            state["has_best_weights"] = best is not None
            if best is not None:
                arrays.update((f"best_{i}", np.asarray(w)) for i, w in enumerate(best))
        arrays["state"] = np.frombuffer(json.dumps(state).encode("utf-8"), np.uint8)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                # by numpy's stub a **dict might also fill savez's allow_pickle (a bool)
                np.savez(f, **arrays)  # type: ignore[arg-type]
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def callback(self, *, seed: int, history: dict, early_stopping=None):
        """A Keras callback that writes this checkpoint after every epoch.

        Put it after ``early_stopping`` in the callback list, so the final
        write holds the best weights that early stopping restored.

        Parameters
        ----------
        seed : int
            The fit's shuffling seed.
        history : dict of list of float
            The history of the epochs already done (resumed fits).
        early_stopping : ResumableEarlyStopping, default=None
            The fit's early stopping, saved with each checkpoint.

        Returns
        -------
        keras.callbacks.Callback
            Writes after each epoch and once more when training ends.
        """
        return _EpochCheckpoint(self, seed, history, early_stopping)


def _dtype_of(variable) -> str:
    return keras.backend.standardize_dtype(variable.dtype)


class _EpochCheckpoint(keras.callbacks.Callback):
    """Write the store's checkpoint after each epoch and when training ends."""

    def __init__(self, store, seed, history, early_stopping) -> None:
        super().__init__()
        self.store, self.seed, self.early_stopping = store, seed, early_stopping
        self.history = {k: list(v) for k, v in history.items()}
        self.epochs_done = len(next(iter(history.values()), []))

    def _write(self, finished: bool) -> None:
        self.store.write(
            self.model,
            seed=self.seed,
            epoch=self.epochs_done,
            history=self.history,
            finished=finished,
            early_stopping=self.early_stopping,
        )

    def on_epoch_end(self, epoch, logs=None) -> None:
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.epochs_done = epoch + 1
        self._write(finished=False)

    def on_train_end(self, logs=None) -> None:
        self._write(finished=True)
