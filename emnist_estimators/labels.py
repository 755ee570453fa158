"""Labels and loss weights of a fit: ``y`` encoded, weights checked and combined.

``y`` is encoded into ``classes_``, the sample weights are checked, and
``class_weight`` becomes per-sample weights.

Functions of the estimator's parameters and data, called by its one fit path
(``base.py``) before any network is built.
"""

from __future__ import annotations

from numbers import Real
from typing import cast

import numpy as np
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, column_or_1d

from ._utils import check_labels

#: The largest loss weight of one sample (``sample_weight`` times its class's
#: ``class_weight``). The gradients grow with the weights and Adam squares
#: them: above about 1.8e19 (the square root of float32's largest number) the
#: squares overflow and the network trains to NaN. Only the weights' ratios
#: matter to Adam, so scaling them all down changes almost nothing.
MAX_WEIGHT = 1e15

__all__ = [
    "MAX_WEIGHT",
    "class_sample_weights",
    "combine_weights",
    "encode_labels",
    "same_classes",
    "validate_sample_weight",
]


def encode_labels(
    est, y, n_samples: int, classes=None
) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, y_enc)``: the classes and ``y`` as indices into them.

    Parameters
    ----------
    est : EmnistMLP or EmnistCNN
        The estimator (named in errors).
    y : array-like of shape (n_samples,)
        Class labels.
    n_samples : int
        The number of rows of X.
    classes : ndarray or None
        The known classes; None: those of ``y``.

    Returns
    -------
    classes : ndarray
        Sorted distinct labels.
    y_enc : ndarray of int32
        Indices into ``classes``.
    """
    if y is None:
        raise ValueError(
            f"{type(est).__name__} requires y to be passed, but the target y is None."
        )
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim != 1:
        raise ValueError(
            f"y must be 1-D (one label per sample), got shape {y.shape}. "
            "Multi-output and one-hot targets are not supported: pass class "
            "labels, e.g. y.argmax(axis=1) for one-hot."
        )
    if len(y) != n_samples:
        raise ValueError(
            f"X has {n_samples} samples but y has {len(y)}; they must match."
        )
    check_labels(y)  # None/NaN labels: a clear error, not sorting's TypeError
    check_classification_targets(y)
    if classes is None:
        classes = LabelEncoder().fit(y).classes_
        if len(classes) < 2:
            raise ValueError(
                f"y contains only one class ({classes[0]!r}); a "
                "classifier needs samples of at least two classes."
            )
    unseen = np.setdiff1d(y, classes)
    if unseen.size:
        raise ValueError(
            f"y contains labels {unseen[:10].tolist()} that are not among the "
            f"classes {classes[:10].tolist()}... given at the first fit. "
            "Pass every class with partial_fit(classes=...) or refit."
        )
    return classes, np.searchsorted(classes, y).astype(np.int32)


def same_classes(est, labels, *, warm: bool = False) -> None:
    """Refuse ``labels`` whose classes are not the fitted ``classes_``.

    Parameters
    ----------
    est : EmnistMLP or EmnistCNN
        The fitted estimator.
    labels : array-like
        ``partial_fit``'s ``classes``, or (``warm``) a warm-started fit's ``y``.
    warm : bool, default=False
        Whether ``labels`` is a warm-started fit's ``y``.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = column_or_1d(labels, warn=True)
    new = np.unique(labels) if labels.ndim == 1 and len(labels) else None
    if new is not None and np.array_equal(new, est.classes_):
        return
    shown = None if new is None else new[:10].tolist()
    if warm:
        raise ValueError(
            "warm_start can only be used where y has the same classes as in "
            f"the previous fit; previously got {est.classes_[:10].tolist()}, "
            f"y has {shown}. Use partial_fit(X, y) to train on a subset of the "
            "classes, or set warm_start=False to train a new network."
        )
    # scikit-learn's partial_fit refuses another class set the same way
    raise ValueError(
        f"classes={shown} is not the same as on the first call to partial_fit, "
        f"was: {est.classes_[:10].tolist()}. Pass the same classes (or none) to "
        "later calls, or call fit to start over."
    )


def validate_sample_weight(sample_weight, X) -> np.ndarray | None:
    """``sample_weight`` as float32, one non-negative weight per row of X.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,) or None
        The weights.
    X : ndarray
        The pixels.

    Returns
    -------
    ndarray of float32 or None
        The weights.
    """
    if sample_weight is None:
        return None
    # As scikit-learn's estimators: a negative weight would make the loss
    # reward mistakes on that sample (the loss goes negative); all zero
    # would train nothing. Checked in float64, so that a weight too large
    # for float32 gets our error, not an overflow.
    try:
        w = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
    except OverflowError:  # a Python int beyond float64, e.g. 10**400
        w = np.array([np.inf])
    _check_largest(w, "sample_weight")
    return w.astype(np.float32)


def _check_largest(w: np.ndarray, what: str) -> None:
    """Refuse a loss weight above :data:`MAX_WEIGHT` (it trains to NaN)."""
    largest = float(w.max()) if w.size else 0.0
    if not largest <= MAX_WEIGHT:  # also NaN or inf
        raise ValueError(
            f"{what} reaches {largest:g}; a sample's weight must be at most "
            f"{MAX_WEIGHT:g}: Adam squares the gradients, which grow with the "
            "weights, and beyond that the squares overflow float32 and the "
            "network trains to NaN. Divide the weights by a common factor "
            "(only their ratios matter)."
        )


def class_sample_weights(est, y_enc: np.ndarray) -> np.ndarray | None:
    """Per-sample weights from ``est.class_weight`` (None when it is None).

    "balanced" is scikit-learn's ``n_samples / (n_classes * count)`` over
    the classes present in ``y`` (in ``partial_fit``: in each call's ``y``);
    a dict maps original labels to weights, and classes it does not name
    weigh 1.

    Parameters
    ----------
    est : EmnistMLP or EmnistCNN
        Its ``class_weight`` and ``classes_``.
    y_enc : ndarray of int
        Labels as indices into ``classes_``.

    Returns
    -------
    ndarray of float32 or None
        One weight per sample.
    """
    class_weight, classes = est.class_weight, est.classes_
    if class_weight is None:
        return None
    if isinstance(class_weight, dict):
        known = set(classes.tolist())
        unknown = [k for k in class_weight if k not in known]
        if unknown:
            raise ValueError(
                f"class_weight names labels {unknown[:10]!r} that are not "
                f"classes of y (classes: {classes[:10].tolist()}...). "
                "Key it by the labels as they appear in y."
            )
        for label, weight in class_weight.items():
            if (
                not isinstance(weight, Real)
                or isinstance(weight, bool)
                or not 0 <= cast(float, weight) < np.inf  # a Real, by the test above
            ):
                raise ValueError(
                    f"class_weight[{label!r}] is {weight!r}: class weights must "
                    "be finite numbers >= 0 (0 ignores the class)."
                )
            _check_largest(np.array([weight], float), f"class_weight[{label!r}]")
        per_class = np.array(
            [float(class_weight.get(c, 1.0)) for c in classes.tolist()]
        )
    else:  # "balanced"
        present = np.unique(y_enc)
        per_class = np.ones(len(classes))
        per_class[present] = compute_class_weight("balanced", classes=present, y=y_enc)
    return per_class.astype(np.float32)[y_enc]


def combine_weights(w, class_w):
    """``sample_weight`` times the class's weight, as scikit-learn's estimators.

    Parameters
    ----------
    w, class_w : ndarray of float32 or None
        The sample weights and the per-sample class weights.

    Returns
    -------
    ndarray of float32 or None
        Their product, or whichever is not None.

    Raises
    ------
    ValueError
        If a product is above :data:`MAX_WEIGHT` (or overflows), or every
        product is 0: the network would train to NaN, or not at all.
    """
    if class_w is None:
        return w
    if w is None:
        product = np.asarray(class_w, np.float64)
    else:  # in float64: a product beyond float32's range gets our error
        product = np.asarray(w, np.float64) * np.asarray(class_w, np.float64)
        _check_largest(product, "sample_weight times class_weight")
    if product.size and not product.any():
        raise ValueError(
            "Every sample's weight (sample_weight times class_weight) is 0: "
            "the loss would be 0 and nothing would be trained. Give the "
            "classes in y (or some samples) a weight above 0."
        )
    return product.astype(np.float32)
