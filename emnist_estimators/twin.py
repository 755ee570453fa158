"""The inference-only float32 twin of a fitted network: what export converts.

The same architecture built with ``precision="float32"``, ``dropout=0`` and
``augment=False``, holding the fitted weights. The estimator hands it out
(``_float32_network``); export converts it and checks it against ``predict``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
import numpy as np

from .architectures import image_shape_for
from .exceptions import ExportError

__all__ = ["fitted_image_shape", "float32_twin"]


def fitted_image_shape(est) -> tuple[int, int]:
    """(height, width) of the images a fitted estimator's network takes.

    Parameters
    ----------
    est : EmnistMLP or EmnistCNN
        A fitted estimator.

    Returns
    -------
    (int, int)
        The CNN's reshape target, else the square (or EMNIST) shape of its
        ``n_features_in_``.
    """
    layer = {lay.name: lay for lay in est.model_.layers}.get("to_image")
    if layer is not None:  # EmnistCNN: the shape its network reshapes to
        height, width, _ = layer.target_shape
        return int(height), int(width)
    return image_shape_for(int(est.n_features_in_))


@contextlib.contextmanager
def _global_float32() -> Iterator[None]:
    """Keras' global dtype policy float32 for the block, then restored.

    Layers built without a policy follow the global one, which a user may
    have set to mixed precision: the twin must be float32 regardless.
    """
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def float32_twin(est):
    """Build ``est.model_``'s architecture, float32 and inference-only, its weights.

    Built from a copy of the estimator with ``precision="float32"``,
    ``dropout=0`` and ``augment=False`` (the latter two add no weights), so
    the layers with weights are the same, in the same order.

    Parameters
    ----------
    est : EmnistMLP or EmnistCNN
        A fitted estimator.

    Returns
    -------
    keras.Model
        The twin, holding ``est.model_``'s weights as float32.

    Raises
    ------
    ExportError
        If ``model_``'s layers or weight shapes are not those the
        estimator's parameters build (a network replaced by hand).
    """
    params = {**est.get_params(deep=False), "callbacks": None}
    params.update(precision="float32", dropout=0.0)
    if "augment" in params:
        params["augment"] = False
    twin = type(est)(**params)
    image_shape = None
    if "image_shape" in params:
        image_shape = fitted_image_shape(est)
    with _global_float32():
        # seed 0: fixed initial weights (replaced below), no global RNG drawn
        net = twin._build_model(
            int(est.n_features_in_), len(est.classes_), image_shape, est.input_scale_, 0
        )
    _copy_weights(est.model_, net)
    return net


def _copy_weights(source, target) -> None:
    """Copy weights layer by layer; refuse any mismatch of names or shapes."""
    src = [lay for lay in source.layers if lay.weights]
    dst = [lay for lay in target.layers if lay.weights]
    pairs = [(s.name, d.name) for s, d in zip(src, dst, strict=False)]
    if len(src) != len(dst) or any(a != b for a, b in pairs):
        raise ExportError(
            f"The rebuilt network's layers with weights {[d.name for d in dst]} "
            f"differ from the fitted network's {[s.name for s in src]}: was "
            "model_ replaced or changed by hand? Refit, then export."
        )
    for s, d in zip(src, dst, strict=True):
        weights = s.get_weights()
        shapes = [w.shape for w in weights]
        wanted = [tuple(w.shape) for w in d.weights]
        if shapes != wanted:
            raise ExportError(
                f"Layer {s.name!r} holds weights of shapes {shapes}, the rebuilt "
                f"network expects {wanted}: was model_ changed by hand? Refit, "
                "then export."
            )
        d.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
