"""What the commands load: ``--param`` values, a new estimator, a saved model, data.

Data named by ``--dataset`` and ``--subset`` (``held-out``: the part a
``train`` run held out, from its record), sampled to ``--max-samples``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from ..pretrained import load_pretrained, pretrained_name
from ..runs import read_run, sample
from ..sources import Dataset, load_source
from .console import UsageError, import_tensorflow
from .parser import HELD_OUT

__all__ = ["load_data", "load_model_file", "make_estimator", "parse_params"]


def parse_params(pairs: list[str] | None) -> dict:
    """Read ``--param KEY=VALUE`` pairs: Python literals, else plain strings.

    Parameters
    ----------
    pairs : list of str or None
        The ``KEY=VALUE`` texts.

    Returns
    -------
    dict
        The values by key; ``relu`` stays the string ``'relu'``.

    Raises
    ------
    UsageError
        If a pair has no ``=`` or no key.
    """
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param expects KEY=VALUE, got {pair!r}.")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value  # a plain string such as relu
    return params


def make_estimator(args, params: dict):
    """Build the ``--model`` estimator with the given parameters.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (``model``, ``verbose``).
    params : dict
        Constructor parameters; a bare int for a sizes tuple becomes a
        1-tuple.

    Returns
    -------
    EmnistMLP or EmnistCNN
        The unfitted estimator.

    Raises
    ------
    UsageError
        If a parameter is not one of the estimator's.
    """
    import_tensorflow(args)
    # the public names, wherever the package keeps them; imports TensorFlow
    from ..estimators import EmnistCNN, EmnistMLP

    cls = {"mlp": EmnistMLP, "cnn": EmnistCNN}[args.model]
    valid = cls().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise UsageError(
            f"Unknown {cls.__name__} parameter(s) {unknown}; valid: {sorted(valid)}."
        )
    for key in ("hidden_layer_sizes", "filters", "dense_units", "image_shape"):
        if isinstance(params.get(key), int):
            params[key] = (params[key],)
    return cls(**params)


def load_model_file(args):
    """Load the saved model named on the command line.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (``model_file``: a file, or
        ``pretrained:NAME`` for a model shipped with the package; ``verbose``).

    Returns
    -------
    EmnistMLP, EmnistCNN or Pipeline
        The fitted model.

    Raises
    ------
    UsageError
        If the file does not exist, or no bundled model has that name (said
        before TensorFlow is imported).
    """
    path = args.model_file
    try:
        name = pretrained_name(path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if name is None and not Path(path).exists():  # before TensorFlow: fail fast
        raise UsageError(f"Model file {path} does not exist.")
    import_tensorflow(args)
    if name is not None:
        return load_pretrained(name)
    from ..estimators import load_model  # imports TensorFlow

    return load_model(path)


def load_data(
    args, *, subset: str | None = None, sampled: bool = True, random_state=0
) -> Dataset:
    """Load ``--dataset``'s ``--subset``, sampled to ``--max-samples``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (``dataset``, ``subset``, ``data_home``,
        ``max_samples``; ``model_file`` for the ``held-out`` subset).
    subset : str, default=None
        Another subset than ``args.subset``.
    sampled : bool, default=True
        False: every row, ``--max-samples`` left to the caller (``train``
        samples and holds out rows itself, and records which).
    random_state : int or None, default=0
        The seed of the stratified sample.

    Returns
    -------
    Dataset
        The images and their labels; for ``held-out``, exactly the images
        the ``train`` run of ``args.model_file`` held out.
    """
    subset = subset or args.subset
    if subset == HELD_OUT:
        data = read_run(args.model_file).held_out(
            dataset=args.dataset, data_home=args.data_home
        )
    else:
        data = load_source(args.dataset, subset, data_home=args.data_home)
    if not sampled:
        return data
    return sample(data, args.max_samples, random_state=random_state)
