"""The one boundary with scikeras: what the estimators take from it and override.

scikeras 0.13 (its last release; the project is no longer maintained)
predates scikit-learn 1.6, so :class:`ScikerasClassifier` owns the
scikit-learn contract itself. Replacing scikeras (a fork, or Keras' own
scikit-learn wrapper) is a change to this module; ``tests/
test_scikeras_boundary.py`` pins what it takes and what it overrides:
overridden here ``_get_param_names``, ``__repr__``, ``set_params``, ``score``,
``__sklearn_tags__``, ``__sklearn_is_fitted__``, ``__reduce_ex__``,
``__getstate__``, ``__copy__``, ``target_encoder``, ``feature_encoder``,
``current_epoch``; by the estimators' base class ``fit``, ``partial_fit``,
``initialize``, ``predict``, ``predict_proba``, ``_validate_params``. Why
each: the design notes in the docs (``docs/design.rst``).
"""

from __future__ import annotations

from scikeras.wrappers import KerasClassifier
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import ClassifierTags, Tags

from . import architectures, losses  # noqa: F401  (registered with Keras)
from .keras_io import pack_network
from .threads import configure_at_first_use

__all__ = ["KerasClassifier", "ScikerasClassifier", "unpickle_estimator"]


def unpickle_estimator(cls, fitted=True):
    """Make an empty ``cls`` for pickle, after sizing TensorFlow's pools.

    Pickle calls this before it unpickles the state, whose Keras network
    (``model_``, when ``fitted``) starts TensorFlow's runtime; the pools can
    only be sized before that. The network's custom layers and loss are
    registered with Keras by this module's imports. Pickles hold this
    function's name (and ``base._unpickle``, its name before): keep both.

    Parameters
    ----------
    cls : type
        The estimator class.
    fitted : bool, default=True
        Whether the pickled estimator holds a network.

    Returns
    -------
    object
        An empty instance, for pickle to fill.
    """
    if fitted:
        configure_at_first_use()
    return cls.__new__(cls)


class ScikerasClassifier(KerasClassifier):
    """The scikeras ``KerasClassifier`` with the scikit-learn contract made current.

    The base of the estimators' base class; it holds only what the module
    docstring lists.
    """

    # the plain function made a classmethod again: its type is sklearn's own
    _get_param_names = classmethod(BaseEstimator._get_param_names.__func__)  # type: ignore[var-annotated]
    __repr__ = BaseEstimator.__repr__
    set_params = BaseEstimator.set_params

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy of ``predict(X)`` against ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or (n_samples, h, w[, 1])
            Grey pixels, scaled like the training data.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Accuracy in [0, 1].
        """
        return ClassifierMixin.score(self, X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self) -> Tags:
        tags = BaseEstimator.__sklearn_tags__(self)
        # scikeras puts BaseEstimator before ClassifierMixin in the MRO, so
        # ClassifierMixin's tags never run: is_classifier() would be False and
        # GridSearchCV(cv=5) would use KFold instead of StratifiedKFold.
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        tags.input_tags.positive_only = True  # grey levels
        # a few epochs on a few dozen samples is not a converged network
        tags.classifier_tags.poor_score = True
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def __reduce_ex__(self, protocol):
        # The state (with model_) unpickles after unpickle_estimator has run.
        _, _, *rest = super().__reduce_ex__(protocol)
        return (unpickle_estimator, (type(self), hasattr(self, "model_")), *rest)

    def __getstate__(self) -> dict:
        # A copy: object.__getstate__ returns the instance's own __dict__.
        state = dict(super().__getstate__())
        if "model_" in state:
            # Serialized here, where numpy's copy-keyword warning from Keras'
            # saving code can be silenced; pickle would do it after we return.
            state["model_"] = pack_network(state["model_"])
        return state

    def __copy__(self) -> ScikerasClassifier:
        # copy.copy would take __getstate__'s packed network as model_: share
        # the network instead, as a shallow copy does.
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    @property
    def target_encoder(self):
        """Not used: labels are encoded into ``classes_`` by ``fit``.

        Raises
        ------
        AttributeError
            Always; scikeras' encoder would have no effect here.
        """
        raise AttributeError(
            f"{type(self).__name__} encodes labels itself (see classes_); "
            "scikeras' target_encoder is not used."
        )

    @property
    def feature_encoder(self):
        """Not used: pixels are validated and passed to the network as given.

        Raises
        ------
        AttributeError
            Always; scikeras' encoder would have no effect here.
        """
        raise AttributeError(
            f"{type(self).__name__} validates pixels itself; scikeras' "
            "feature_encoder is not used."
        )

    @property
    def current_epoch(self) -> int:
        """The number of epochs trained so far (``n_iter_``; 0 before any).

        Returns
        -------
        int
            The number of epochs run.
        """
        return getattr(self, "n_iter_", 0)
