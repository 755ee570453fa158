"""``PixelScaler``: validate raw grey pixels and scale them to float32 [0, 1]."""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._utils import check_pixels

__all__ = ["PixelScaler"]


class PixelScaler(TransformerMixin, BaseEstimator):
    """Validate grey pixels, optionally fix EMNIST's orientation, scale to [0, 1].

    A stateless transformer for the front of a Pipeline: it accepts uint8 or
    numeric arrays of shape (n, 784), (n, 28, 28) or (n, 28, 28, 1), lists and
    DataFrames (e.g. the 784 pixel columns of the CSV export), checks that the
    values are finite and within ``[0, max_value]``, and returns float32.

    Parameters
    ----------
    max_value : float, default=255.0
        The value of a white pixel: inputs are divided by it. Use 1.0 for data
        already scaled to [0, 1] (then it is only validated).
    fix_orientation : bool, default=False
        Transpose each image. EMNIST files store images transposed; set this
        when feeding raw EMNIST pixels (``load_emnist`` already returns them
        upright by default).
    output_shape : {'flat', 'image'}, default='flat'
        'flat' returns (n_samples, n_pixels); 'image' returns
        (n_samples, height, width, 1) for square images.

    Attributes
    ----------
    n_features_in_ : int
        Number of pixels seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when fitted on a DataFrame with string column names.

    See Also
    --------
    EmnistMLP, EmnistCNN : Classifiers that take its output.

    Notes
    -----
    The output is float32, four times the size of uint8 input. For a whole
    EMNIST split it is leaner to pass uint8 straight to the estimators, which
    scale inside the Keras model one batch at a time.

    Examples
    --------
    >>> import numpy as np
    >>> from emnist_estimators import PixelScaler
    >>> X = np.array([[0, 51, 255, 102]], dtype=np.uint8)
    >>> PixelScaler().fit_transform(X)
    array([[0. , 0.2, 1. , 0.4]], dtype=float32)
    >>> PixelScaler(fix_orientation=True).fit_transform(X)
    array([[0. , 1. , 0.2, 0.4]], dtype=float32)
    >>> PixelScaler(output_shape="image").fit_transform(X).shape
    (1, 2, 2, 1)
    """

    _parameter_constraints: dict = {
        "max_value": [Interval(Real, 0, None, closed="neither")],
        "fix_orientation": ["boolean"],
        "output_shape": [StrOptions({"flat", "image"})],
    }

    def __init__(
        self,
        *,
        max_value: float = 255.0,
        fix_orientation: bool = False,
        output_shape: str = "flat",
    ) -> None:
        self.max_value = max_value
        self.fix_orientation = fix_orientation
        self.output_shape = output_shape

    def fit(self, X: ArrayLike, y: object = None) -> PixelScaler:
        """Validate ``X`` and record its number of pixels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or (n_samples, h, w[, 1])
            Grey pixels.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            The transformer.
        """
        self._validate_params()
        X, _ = check_pixels(self, X, reset=True, max_value=self.max_value)
        if self.fix_orientation or self.output_shape == "image":
            self.image_side(X.shape[1])
        return self

    def image_side(self, n_features: int) -> int:
        """The side of the square images of ``n_features`` pixels.

        Parameters
        ----------
        n_features : int
            Pixels per sample.

        Returns
        -------
        int
            The side, e.g. 28 for 784.

        Raises
        ------
        ValueError
            If ``n_features`` is not a square number.
        """
        side = int(round(np.sqrt(n_features)))
        if side * side != n_features:
            raise ValueError(
                f"{n_features} pixels per sample are not a square image; "
                "fix_orientation and output_shape='image' need square images "
                "such as 28x28 = 784 pixels."
            )
        return side

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Scale ``X`` to float32 in [0, 1], upright and in the asked shape.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or (n_samples, h, w[, 1])
            Grey pixels in ``[0, max_value]``.

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_pixels) or (n_samples, h, w, 1)
            Values in [0, 1], float32.
        """
        check_is_fitted(self)
        X, _ = check_pixels(self, X, reset=False, max_value=self.max_value)
        out = X.astype(np.float32)  # the one float copy, divided in place
        out /= np.float32(self.max_value)
        if self.fix_orientation or self.output_shape == "image":
            side = self.image_side(out.shape[1])
            images = out.reshape(-1, side, side)
            if self.fix_orientation:
                images = np.ascontiguousarray(images.transpose(0, 2, 1))
            if self.output_shape == "image":
                return images[..., np.newaxis]
            out = images.reshape(len(images), -1)
        return out

    def get_feature_names_out(
        self, input_features: ArrayLike | None = None
    ) -> np.ndarray:
        """Output pixel names, in output order.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Input names; default ``feature_names_in_`` or ``x0..x<n-1>``.

        Returns
        -------
        feature_names_out : ndarray of str
            The input names, permuted like the pixels when
            ``fix_orientation`` is set.
        """
        check_is_fitted(self, "n_features_in_")
        names = _check_feature_names_in(self, input_features)
        if self.fix_orientation:
            side = self.image_side(len(names))
            names = names.reshape(side, side).T.reshape(-1)
        return names

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_features_in_")

    def __sklearn_tags__(self) -> Any:  # sklearn.utils.Tags
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
