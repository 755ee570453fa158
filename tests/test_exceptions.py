"""The error classes (exceptions.py): each is one of the package's errors and
the builtin that describes it, so code written against either catches it."""

from __future__ import annotations

import inspect

import pytest

from emnist_estimators import exceptions
from emnist_estimators.exceptions import EmnistEstimatorsError

#: The builtin each error is documented to be (see each class's docstring).
BUILTIN = {
    "DataFormatError": ValueError,
    "DataNotFoundError": FileNotFoundError,
    "ChecksumError": OSError,
    "DownloadError": OSError,
    "StorageError": ConnectionError,
    "OutputFolderError": ValueError,
    "ClusterError": ConnectionError,
    "ClusterConfigError": ValueError,
    "TrainingDivergedError": FloatingPointError,
    "ExportError": RuntimeError,
}


def _classes():
    return {
        name: cls
        for name, cls in inspect.getmembers(exceptions, inspect.isclass)
        if cls.__module__ == exceptions.__name__ and cls is not EmnistEstimatorsError
    }


def test_every_error_class_is_listed_with_its_builtin():
    assert set(_classes()) == set(BUILTIN)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_one_except_clause_of_either_kind_catches_it(name):
    cls = getattr(exceptions, name)
    for catch in (EmnistEstimatorsError, BUILTIN[name]):
        with pytest.raises(catch, match="what was wrong"):
            raise cls("what was wrong, and how to fix it")


def test_every_error_class_is_exported_by_all():
    # `from emnist_estimators.exceptions import *` and the API docs see __all__
    defined = {
        name
        for name, cls in inspect.getmembers(exceptions, inspect.isclass)
        if cls.__module__ == exceptions.__name__
    }
    assert defined == set(exceptions.__all__)
