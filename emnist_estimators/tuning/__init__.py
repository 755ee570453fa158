"""Hyper-parameter search with optuna: pruning, resumable and shared studies.

:class:`EmnistSearchCV` runs an optuna study over clones of an estimator (or
a Pipeline ending in one) and behaves like scikit-learn's search estimators;
:func:`tune` is the one-call form for scripts. The modules:

- ``search``: :class:`EmnistSearchCV`, :func:`tune`, :func:`make_pruner`,
  :func:`study_summary`;
- ``space``: the default search space, its checks, a trial's parameters;
- ``objective``: :class:`~.objective.TrialObjective`, what one trial runs
  (picklable: the same objective runs here and on a Dask worker);
- ``waves``: trials on a Dask cluster, in waves of ``n_jobs``;
- ``storage``: optuna storages from URLs, and the study opened in one.
"""

from __future__ import annotations

from ..callbacks import PruningCallback
from .search import EmnistSearchCV, make_pruner, study_summary, tune
from .space import DEFAULT_SPACE as DEFAULT_SPACE  # beside __all__, as it was
from .space import default_search_space
from .storage import count_trials, hide_password, make_storage

__all__ = [
    "EmnistSearchCV",
    "PruningCallback",
    "count_trials",
    "default_search_space",
    "hide_password",
    "make_pruner",
    "make_storage",
    "study_summary",
    "tune",
]
