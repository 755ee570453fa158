"""``emnist-estimators predict``: classify pictures or pixel arrays, best first."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..images import is_blank, read_prediction_inputs
from . import loading
from .console import EXIT_OK, emit

__all__ = ["run_predict"]

log = logging.getLogger("emnist_estimators.cli")


def run_predict(args) -> int:
    """Run ``predict``: the ``--top`` classes of each input, blank ones flagged.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit code, 0.
    """
    clf = loading.load_model_file(args)
    names, X = _read_inputs(args.inputs)
    proba = clf.predict_proba(X)
    blank = is_blank(X)
    top = np.argsort(-proba, axis=1)[:, : max(1, args.top)]
    results: list[dict[str, Any]] = [
        {
            "input": name,
            "prediction": str(clf.classes_[order[0]]),
            # no character in the picture: the label above is a forced guess
            "blank": bool(empty),
            "top": [
                {"class": str(clf.classes_[j]), "probability": round(float(p[j]), 4)}
                for j in order
            ],
        }
        for name, p, order, empty in zip(names, proba, top, blank, strict=True)
    ]
    lines = [
        f"{r['input']}: {r['prediction']}  ("
        + ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"])
        + ")"
        + ("  BLANK: no character found, the label means nothing" if r["blank"] else "")
        for r in results
    ]
    emit(args, {"predictions": results}, "\n".join(lines))
    if blank.any() and not args.json:
        log.warning(
            "%d of %d inputs are blank (one grey level, e.g. all white, all black "
            "or transparent); their labels are guesses.",
            blank.sum(),
            len(blank),
        )
    return EXIT_OK


def _read_inputs(inputs) -> tuple[list[str], np.ndarray]:
    """The rows of ``inputs``, each named by its path as given (``a/x.npy[3]``).

    :func:`read_prediction_inputs` names rows by file name only, which two
    files of the same name in different folders would share.
    """
    names, blocks = [], [np.empty((0, 784), np.float32)]
    for given in inputs:
        found, rows = read_prediction_inputs([given])
        short = len(Path(given).name)
        names += [os.fspath(given) + name[short:] for name in found]
        blocks.append(rows)
    return names, np.concatenate(blocks)
