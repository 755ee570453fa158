"""The scikeras boundary: one module imports scikeras, and what the estimators
take from its KerasClassifier or override is exactly what that module says.

Replacing scikeras (a fork, Keras' own scikit-learn wrapper) is then a change
to ``scikeras_boundary.py``; these tests say what the replacement must give.
"""

from __future__ import annotations

import ast

import pytest
from helpers import REPO
from scikeras.wrappers import KerasClassifier

from emnist_estimators import EmnistCNN, EmnistMLP
from emnist_estimators import scikeras_boundary as boundary

PACKAGE = REPO / "emnist_estimators"

#: Taken from scikeras unchanged.
TAKEN = ("initialized_", "scorer")
#: Overridden or added by the boundary module (the scikit-learn contract made
#: current: scikeras 0.13 has no __sklearn_tags__, for one).
OVERRIDDEN_HERE = (
    "_get_param_names",
    "__repr__",
    "set_params",
    "score",
    "__sklearn_tags__",
    "__sklearn_is_fitted__",
    "__reduce_ex__",
    "__getstate__",
    "__copy__",
    "target_encoder",
    "feature_encoder",
    "current_epoch",
)
#: Overridden by the estimators' own base class (one fit path, prediction).
OVERRIDDEN_BY_THE_ESTIMATORS = (
    "fit",
    "partial_fit",
    "initialize",
    "predict",
    "predict_proba",
    "_validate_params",
)


def _owner(cls, name: str) -> type:
    return next(k for k in cls.__mro__ if name in vars(k))


def test_only_the_boundary_module_imports_scikeras():
    importers = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            if any(n.split(".")[0] == "scikeras" for n in names):
                importers.append(path.name)
    assert importers == ["scikeras_boundary.py"]


@pytest.mark.parametrize("cls", [EmnistMLP, EmnistCNN])
def test_the_estimators_are_scikeras_classifiers(cls):
    assert issubclass(cls, boundary.ScikerasClassifier)
    assert issubclass(cls, KerasClassifier)


@pytest.mark.parametrize("name", TAKEN)
def test_what_is_taken_from_scikeras(name):
    owner = _owner(EmnistMLP, name)
    assert owner.__module__.startswith("scikeras"), owner


@pytest.mark.parametrize("name", OVERRIDDEN_HERE)
def test_what_the_boundary_overrides(name):
    assert _owner(EmnistMLP, name) is boundary.ScikerasClassifier


@pytest.mark.parametrize("name", OVERRIDDEN_BY_THE_ESTIMATORS)
def test_what_the_estimators_override_themselves(name):
    owner = _owner(EmnistMLP, name)
    assert owner.__module__ == "emnist_estimators.base", owner
    assert hasattr(KerasClassifier, name)


def test_the_module_docstring_names_every_override():
    doc = boundary.__doc__
    missing = [
        name.strip("_")
        for name in (*OVERRIDDEN_HERE, *OVERRIDDEN_BY_THE_ESTIMATORS)
        if name.strip("_") not in doc
    ]
    assert missing == []
