"""The search space: the default one, its checks, and a trial's parameters.

A space is ``{parameter name: optuna distribution}`` keyed by the names
``set_params`` takes, or a callable ``trial -> dict of parameters``; both
the local objective and the Dask driver draw a trial's parameters through
:func:`trial_params`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from numbers import Integral, Real

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

__all__ = [
    "DEFAULT_SPACE",
    "check_space",
    "default_search_space",
    "final_step",
    "trial_params",
]

#: The default search: batch size, dropout and learning rate.
DEFAULT_SPACE: dict[str, BaseDistribution] = {
    "batch_size": CategoricalDistribution([32, 64, 128, 256, 512]),
    "dropout": FloatDistribution(0.0, 0.5),
    "learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
}


def final_step(estimator):
    """The last estimator of a (nested) Pipeline and its parameter prefix.

    Parameters
    ----------
    estimator : estimator or Pipeline
        An estimator, or a Pipeline (possibly of Pipelines) ending in one.

    Returns
    -------
    prefix : str
        What ``set_params`` names the final estimator's parameters with
        (``"clf__"``); ``""`` for an estimator that is not a Pipeline.
    final : estimator
        The final estimator itself.

    Examples
    --------
    >>> from sklearn.pipeline import Pipeline
    >>> from emnist_estimators import EmnistMLP, PixelScaler
    >>> pipe = Pipeline([("scale", PixelScaler()), ("clf", EmnistMLP())])
    >>> prefix, final = final_step(pipe)
    >>> prefix, type(final).__name__
    ('clf__', 'EmnistMLP')
    """
    if hasattr(estimator, "steps"):
        name, last = estimator.steps[-1]
        inner_prefix, inner = final_step(last)
        return f"{name}__{inner_prefix}", inner
    return "", estimator


def default_search_space(estimator) -> dict[str, BaseDistribution]:
    """The default space keyed by ``estimator``'s real parameter names.

    Parameters
    ----------
    estimator : estimator or Pipeline
        An EmnistMLP/EmnistCNN, or a Pipeline ending in one.

    Returns
    -------
    dict of str to optuna distribution
        Batch size, dropout and learning rate, under the names ``set_params``
        takes (``clf__dropout`` in a Pipeline).

    Raises
    ------
    ValueError
        If the estimator has none of those parameters.

    Examples
    --------
    >>> from sklearn.pipeline import Pipeline
    >>> from emnist_estimators import EmnistCNN, PixelScaler
    >>> from emnist_estimators.tuning import default_search_space
    >>> pipe = Pipeline([("scale", PixelScaler()), ("clf", EmnistCNN())])
    >>> sorted(default_search_space(pipe))
    ['clf__batch_size', 'clf__dropout', 'clf__learning_rate']
    """
    prefix, final = final_step(estimator)
    names = final.get_params(deep=False)
    space = {prefix + k: v for k, v in DEFAULT_SPACE.items() if k in names}
    if not space:
        raise ValueError(
            f"{type(final).__name__} has none of the default search parameters "
            f"{sorted(DEFAULT_SPACE)}; pass param_distributions explicitly."
        )
    return space


def _as_distribution(name: str, value) -> BaseDistribution:
    if isinstance(value, BaseDistribution):
        return value
    if isinstance(value, list):
        if not value:
            raise ValueError(f"The choices for {name!r} are empty.")
        return CategoricalDistribution(value)
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, Real) for v in value)
    ):
        low, high = value
        if not low < high:
            raise ValueError(
                f"Invalid range for {name!r}: low {low!r} must be smaller than "
                f"high {high!r}."
            )
        if all(isinstance(v, Integral) for v in value):
            return IntDistribution(int(low), int(high))
        return FloatDistribution(float(low), float(high))
    raise TypeError(
        f"Cannot search {name!r} over {value!r}: give an optuna distribution, a "
        "list of choices or a (low, high) tuple."
    )


def check_space(estimator, space) -> dict[str, BaseDistribution] | Callable:
    """The search space as optuna distributions; its type is checked already.

    Parameters
    ----------
    estimator : estimator or Pipeline
        The estimator searched, whose parameter names the space must use.
    space : dict or callable
        ``{name: distribution, list of choices or (low, high) tuple}``, or a
        callable ``trial -> dict`` (returned as is).

    Returns
    -------
    dict of str to optuna distribution, or callable
        The space with every value an optuna distribution.

    Raises
    ------
    ValueError
        An empty space, a name ``estimator`` does not take, no choices or an
        empty range.
    TypeError
        A value that is none of the above.

    Examples
    --------
    >>> from emnist_estimators import EmnistMLP
    >>> check_space(EmnistMLP(), {"epochs": (1, 5), "dropout": [0.0, 0.2]})
    {'epochs': IntDistribution(high=5, log=False, low=1, step=1), \
'dropout': CategoricalDistribution(choices=(0.0, 0.2))}
    """
    if not isinstance(space, Mapping):
        return space  # a callable trial -> params
    if not space:
        raise ValueError(
            "param_distributions is empty: name at least one parameter to search, "
            "or pass None for the default (batch size, dropout, learning rate)."
        )
    valid = estimator.get_params(deep=True)
    unknown = sorted(set(space) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {unknown} for {type(estimator).__name__}. "
            f"Valid names: {sorted(k for k in valid if not k.endswith('steps'))}."
        )
    return {name: _as_distribution(name, value) for name, value in space.items()}


def trial_params(trial, space) -> dict:
    """The parameters ``trial`` tries, drawn from ``space`` by its sampler.

    Parameters
    ----------
    trial : optuna.Trial or optuna.trial.FixedTrial
        The trial (a FixedTrial replays a finished trial's values).
    space : dict of str to optuna distribution, or callable
        A space from :func:`check_space` or :func:`default_search_space`.

    Returns
    -------
    dict
        ``{parameter name: value}`` for ``set_params``.

    Raises
    ------
    TypeError
        A callable space that does not return a dict.

    Examples
    --------
    >>> import optuna
    >>> from optuna.distributions import FloatDistribution
    >>> trial = optuna.trial.FixedTrial({"dropout": 0.25})
    >>> trial_params(trial, {"dropout": FloatDistribution(0.0, 0.5)})
    {'dropout': 0.25}
    """
    if callable(space):
        params = space(trial)
        if not isinstance(params, Mapping):
            raise TypeError("A callable search space must return a dict of parameters.")
        return dict(params)
    # _suggest draws any distribution (public suggest_* are one per kind)
    return {name: trial._suggest(name, dist) for name, dist in space.items()}
