"""The ``.keras`` file of a saved estimator: atomic, size-capped, safe mode.

Written whole or not at all, read member by member under size caps, the
network loaded in Keras' safe mode.

A saved file is a regular Keras archive (``keras.saving.load_model`` opens the
network alone) with one more member, ``emnist_estimators.json``, holding the
estimator's class, parameters and fitted state. This module knows the file,
not the estimators: :func:`write_saved` takes a network and a JSON-able state,
:func:`read_saved` gives them back; the estimator makes and checks its state
(``BaseEmnistClassifier._saved_state`` / ``_from_saved_state``).
``SAVE_FORMAT`` is the version of that layout: files written by any release
with the same format load.

Examples
--------
>>> from emnist_estimators.persistence import SAVE_FORMAT
>>> SAVE_FORMAT
1
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ._version import __version__
from .exceptions import DataFormatError, DataNotFoundError
from .keras_io import keras_saving_quietly
from .threads import configure_at_first_use

__all__ = [
    "MEMBER_CAPS",
    "SAVE_FORMAT",
    "STATE_ENTRY",
    "corrupt_file",
    "read_saved",
    "write_saved",
]

#: Format version of files written by ``save``; bump on incompatible changes.
SAVE_FORMAT = 1
#: The archive member holding the estimator's state.
STATE_ENTRY = "emnist_estimators.json"


def write_saved(
    network: Any, state: dict, path: str | os.PathLike, *, include_optimizer=True
) -> None:
    """Write ``network`` and the estimator ``state`` as one ``.keras`` file.

    The network is saved by Keras, then ``state`` (with the format version
    and this package's version added) as one more member. Written to a
    temporary file beside ``path``, checked to be readable (no member above
    its cap), then renamed, so ``path`` is never left half-written.

    Parameters
    ----------
    network : keras.Model
        The fitted network.
    state : dict
        The estimator's JSON-able class name, parameters and fitted state.
    path : str or path-like
        Destination, conventionally ending in ``.keras``.
    include_optimizer : bool, default=True
        False: leave out the optimizer's variables (Adam's two moments make
        the file three times the weights' size) and deflate the weights, for
        a file that is shared to predict; a warm start from it begins the
        optimizer afresh.

    Raises
    ------
    DataFormatError
        If a member would exceed what :func:`read_saved` reads.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.keras")
    state = {"format": SAVE_FORMAT, "package_version": __version__, **state}
    if not include_optimizer:
        state["optimizer_saved"] = False
    try:
        with keras_saving_quietly():
            network.save(tmp)
        if not include_optimizer:
            _drop_optimizer(tmp)
        with zipfile.ZipFile(tmp, "a") as zf:
            zf.writestr(STATE_ENTRY, json.dumps(state))
            _check_loadable(zf, tmp)  # never write a file read_saved refuses
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _drop_optimizer(archive: Path) -> None:
    """Rewrite the Keras ``archive`` without the optimizer's variables."""
    import h5py  # a Keras dependency

    with tempfile.TemporaryDirectory(dir=archive.parent) as tmp:
        weights = Path(tmp) / "weights.h5"
        kept = Path(tmp) / "kept.h5"
        smaller = Path(tmp) / "smaller.keras"
        with zipfile.ZipFile(archive) as src:
            weights.write_bytes(src.read(_WEIGHTS_ENTRY))
            with h5py.File(weights, "r") as h5, h5py.File(kept, "w") as out:
                out.attrs.update(h5.attrs)
                for group in h5:
                    if group != "optimizer":
                        h5.copy(group, out)
            with zipfile.ZipFile(smaller, "w", zipfile.ZIP_DEFLATED) as dst:
                for item in src.infolist():
                    if item.filename == _WEIGHTS_ENTRY:
                        dst.write(kept, _WEIGHTS_ENTRY)
                    else:
                        dst.writestr(item.filename, src.read(item))
        os.replace(smaller, archive)


def read_saved(path: str | os.PathLike, classes: Collection[str]) -> tuple[dict, Any]:
    """The state and the network of a file written by :func:`write_saved`.

    The Keras network is loaded with ``safe_mode=True`` (no arbitrary code).
    Only the members ``write_saved`` writes are read - ``config.json``,
    ``metadata.json``, ``model.weights.h5`` and the estimator state - each up
    to a size cap (``MEMBER_CAPS``; the weights up to 64 MiB plus 4 times
    the file's size), checked against the size the archive declares and again
    while inflating, so a small hostile file cannot exhaust memory or disk.
    Other members are ignored.

    Parameters
    ----------
    path : str or path-like
        A ``.keras`` file written by ``EmnistMLP.save`` / ``EmnistCNN.save``.
    classes : collection of str
        The estimator class names the file may name.

    Returns
    -------
    state : dict
        The estimator state, its format checked and its class one of
        ``classes``; its values are the estimator's to check.
    network : keras.Model
        The network.

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    DataFormatError
        The file is not a zip (Keras) archive, was not written by
        emnist-estimators or by an incompatible version, is corrupt, or a
        member exceeds its size cap.
    """
    path = Path(path)
    configure_at_first_use()  # before Keras builds the network
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError as exc:
        raise DataNotFoundError(
            f"Cannot load {path}: no such file, so not a saved emnist-estimators "
            "model. Check the path."
        ) from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataFormatError(
            f"Cannot load {path}: not a saved emnist-estimators model ({exc}). "
            "Give a .keras file written by est.save() or the train command."
        ) from exc
    with zf, tempfile.TemporaryDirectory() as tmp:
        state = _read_state(zf, path, classes)
        # Keras reads a copy holding only its own members, each size-capped.
        model_path = Path(tmp) / "model.keras"
        _copy_network(zf, path, model_path)
        network = _load_network(
            model_path, path, optimizer_saved=state.get("optimizer_saved", True)
        )
    return state, network


def corrupt_file(path, what: str) -> DataFormatError:
    """The error for a saved file that is damaged or was not saved by us.

    Parameters
    ----------
    path : str or path-like
        The file.
    what : str
        What is wrong with it.

    Returns
    -------
    DataFormatError
        The error to raise.
    """
    return DataFormatError(
        f"{path} is corrupt or was not saved by emnist-estimators: {what}. "
        "Save the model again with EmnistMLP.save / EmnistCNN.save."
    )


#: Most bytes ``read_saved`` reads from each JSON member of a saved model;
#: real ones are a few kilobytes (the state grows ~100 bytes per epoch).
MEMBER_CAPS = {
    "metadata.json": 1 << 16,
    "config.json": 1 << 24,
    STATE_ENTRY: 1 << 26,
}
_WEIGHTS_ENTRY = "model.weights.h5"
# Keras stores the weights uncompressed, so they never exceed the file; the
# floor and factor leave room for a file zipped again with compression.
_WEIGHTS_CAP_FLOOR = 1 << 26
_WEIGHTS_CAP_FACTOR = 4
_CHUNK = 1 << 20


def _member_cap(name: str, archive_bytes: int) -> tuple[int, str]:
    """The most bytes read from member ``name``, and that cap in words."""
    if name == _WEIGHTS_ENTRY:
        cap = _WEIGHTS_CAP_FLOOR + _WEIGHTS_CAP_FACTOR * archive_bytes
        return cap, f"64 MiB + {_WEIGHTS_CAP_FACTOR}x the file's size"
    cap = MEMBER_CAPS[name]
    size = f"{cap >> 20} MiB" if cap >= 1 << 20 else f"{cap >> 10} KiB"
    return cap, f"{size} for {name}"


def _check_loadable(zf, path) -> None:
    """Raise if a member of ``zf`` exceeds what :func:`load_model` reads."""
    size = Path(path).stat().st_size
    for name in (*MEMBER_CAPS, _WEIGHTS_ENTRY):
        if name in zf.namelist():
            cap, why = _member_cap(name, size)
            if zf.getinfo(name).file_size > cap:
                raise DataFormatError(
                    f"Cannot save: the member {name!r} would hold "
                    f"{zf.getinfo(name).file_size:,} bytes, more than the "
                    f"{cap:,} read_saved reads ({why}). Train with fewer epochs "
                    "or a smaller network."
                )


def _copy_member(zf, path, name: str, dst) -> None:
    """Copy member ``name`` into the binary file ``dst``, at most its cap."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise corrupt_file(path, f"the member {name!r} is missing") from None
    cap, why = _member_cap(name, Path(path).stat().st_size)
    refusal = (
        f"{path}: the member {name!r} {{}}, but read_saved reads at most "
        f"{cap:,} bytes of it ({why}). The file is corrupt or hostile (a "
        "decompression bomb), not a model saved by emnist-estimators."
    )
    if info.file_size > cap:
        raise DataFormatError(refusal.format(f"declares {info.file_size:,} bytes"))
    total = 0
    try:
        with zf.open(info) as src:
            while chunk := src.read(min(_CHUNK, cap + 1 - total)):
                total += len(chunk)
                if total > cap:  # the header lied about the size
                    raise DataFormatError(refusal.format("inflates past the cap"))
                dst.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError) as exc:
        raise corrupt_file(path, f"the member {name!r} cannot be read ({exc})") from exc


def _read_state(zf, path, classes: Collection[str]) -> dict:
    if STATE_ENTRY not in zf.namelist():
        raise DataFormatError(
            f"{path} is a zip/Keras file but was not written by emnist-estimators "
            "(no estimator state inside). Load plain Keras models with "
            "keras.saving.load_model."
        )
    buf = io.BytesIO()
    _copy_member(zf, path, STATE_ENTRY, buf)
    try:
        state = json.loads(buf.getvalue())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise corrupt_file(
            path, f"its {STATE_ENTRY} is not valid JSON ({exc})"
        ) from exc
    if not isinstance(state, dict):
        raise corrupt_file(path, f"its {STATE_ENTRY} is not a JSON object")
    fmt, name = state.get("format"), state.get("class")
    if fmt != SAVE_FORMAT:
        raise DataFormatError(
            f"{path} was written by emnist-estimators "
            f"{state.get('package_version', '?')} in save format {fmt!r}; this "
            f"version reads format {SAVE_FORMAT}. Re-save it with a matching version."
        )
    if not isinstance(name, str) or name not in classes:
        raise corrupt_file(path, f"unknown estimator class {name!r}")
    return state


def _copy_network(zf, path, model_path: Path) -> None:
    with zipfile.ZipFile(model_path, "w") as dst:
        for name in ("metadata.json", "config.json", _WEIGHTS_ENTRY):
            if name == "metadata.json" and name not in zf.namelist():
                continue  # Keras itself does not need it
            # zip64 lets weights above 2 GiB through (their size is unknown here)
            with dst.open(name, "w", force_zip64=name == _WEIGHTS_ENTRY) as out:
                _copy_member(zf, path, name, out)


def _load_network(model_path: Path, path, *, optimizer_saved: bool = True):
    import keras

    # Registers the custom layers (FusableLeakyReLU) and loss
    # (SmoothedSparseCrossentropy) the saved config names; a fresh process
    # may not have imported them yet.
    from . import architectures, losses  # noqa: F401

    try:
        with warnings.catch_warnings():
            if not optimizer_saved:  # saved so on purpose: not worth a warning
                warnings.filterwarnings(
                    "ignore", "Skipping variable loading for optimizer"
                )
            return keras.saving.load_model(model_path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for bad archives
        raise corrupt_file(path, f"its Keras network cannot be loaded ({exc})") from exc
