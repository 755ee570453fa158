"""Keras model builders. Pure functions: no scikit-learn, no training.

Both builders take flat input ``(n_features,)`` so the estimators keep X 2-D
(what Pipelines and cross-validation expect) and can be fed uint8: the model
casts each batch to float32 and rescales it inside the graph, so no float copy
of a whole split is ever made.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import keras
from keras import layers

__all__ = ["build_mlp", "build_cnn", "image_shape_for", "FusableLeakyReLU"]


def image_shape_for(
    n_features: int, image_shape: tuple[int, int] | None = None
) -> tuple[int, int]:
    """Return the (height, width) that ``n_features`` flat pixels are reshaped to.

    An explicit ``image_shape`` wins; a perfect square (784) becomes a square
    image (28x28); anything else becomes a one-row strip, so the CNN still
    works on generic features (as scikit-learn's estimator checks require).

    Parameters
    ----------
    n_features : int
        Pixels per sample.
    image_shape : (int, int), default=None
        An explicit (height, width); it must hold ``n_features`` pixels.

    Returns
    -------
    tuple of (int, int)
        Height and width.

    Raises
    ------
    ValueError
        ``image_shape`` does not hold ``n_features`` pixels.

    Examples
    --------
    >>> from emnist_estimators.architectures import image_shape_for
    >>> image_shape_for(784), image_shape_for(10)
    ((28, 28), (1, 10))
    """
    if image_shape is not None:
        h, w = (int(v) for v in image_shape)
        if h * w != n_features:
            raise ValueError(
                f"image_shape {image_shape} holds {h * w} pixels, X has "
                f"{n_features} features."
            )
        return h, w
    side = int(round(n_features**0.5))
    if side * side == n_features:
        return side, side
    return 1, n_features


def _seed(seed: int | None, offset: int) -> int | None:
    return None if seed is None else seed + offset


def build_mlp(
    n_features: int,
    n_classes: int,
    *,
    hidden_layer_sizes: Sequence[int] = (512, 512),
    activation: str = "relu",
    dropout: float = 0.2,
    rescale: float = 1.0,
    seed: int | None = None,
    dtype_policy: str | None = None,
) -> keras.Model:
    """Multi-layer perceptron: [Dense, Dropout] x k, then softmax.

    The default is the original report's 784-512-512-n_classes network with
    dropout 0.2, Glorot-uniform weights and zero biases.

    Parameters
    ----------
    n_features : int
        Pixels per sample.
    n_classes : int
        Size of the softmax output.
    hidden_layer_sizes : sequence of int, default=(512, 512)
        Width of each hidden layer.
    activation : str, default='relu'
        Keras activation of the hidden layers.
    dropout : float, default=0.2
        Dropout rate after each hidden layer.
    rescale : float, default=1.0
        Inputs are multiplied by it inside the model (1/255 for raw pixels).
    seed : int, default=None
        Seeds weight initialisation and dropout.
    dtype_policy : str, default=None
        Keras dtype policy of the hidden layers, e.g. 'mixed_bfloat16'; the
        softmax output stays float32.

    Returns
    -------
    keras.Model
        Uncompiled model mapping (batch, n_features) to class probabilities.

    Examples
    --------
    >>> from emnist_estimators.architectures import build_mlp
    >>> model = build_mlp(784, 47, seed=0)
    >>> model.output_shape
    (None, 47)
    """
    lay = _TypedLayers(dtype_policy)
    inputs, x = _pixel_input(n_features, rescale, lay)
    for i, width in enumerate(hidden_layer_sizes):
        x = lay.Dense(
            int(width),
            activation=activation,
            kernel_initializer=keras.initializers.GlorotUniform(_seed(seed, i)),
            name=f"dense_{i}",
        )(x)
        if dropout > 0:
            x = lay.Dropout(dropout, seed=_seed(seed, 100 + i), name=f"dropout_{i}")(x)
    outputs = _softmax_head(x, n_classes, seed)
    return keras.Model(inputs, outputs, name="emnist_mlp")


class _TypedLayers:
    """``layers`` with one dtype policy for every layer it makes.

    ``mixed_bfloat16`` computes in bfloat16 and keeps float32 weights: on
    CPUs with AVX512-BF16 it trains the CNN about 1.9x faster
    (``benchmarks/bench_precision.py``); None keeps Keras' global policy.
    """

    def __init__(self, dtype):
        self.dtype = dtype

    def __getattr__(self, name):
        layer = getattr(layers, name)
        return functools.partial(layer, dtype=self.dtype) if self.dtype else layer


def _pixel_input(n_features: int, rescale: float, lay):
    """Flat pixel input, cast and rescaled inside the graph."""
    inputs = keras.Input(shape=(n_features,), name="pixels")
    return inputs, lay.Rescaling(rescale, name="rescale")(inputs)


def _softmax_head(x, n_classes: int, seed: int | None):
    # float32 whatever the policy: probabilities must sum to 1 precisely
    return layers.Dense(
        n_classes,
        activation="softmax",
        dtype="float32",
        kernel_initializer=keras.initializers.GlorotUniform(_seed(seed, 999)),
        name="softmax",
    )(x)


@keras.saving.register_keras_serializable(package="emnist_estimators")
class FusableLeakyReLU(layers.LeakyReLU):
    """Keras' LeakyReLU whose gradient reads its output, not its input.

    TensorFlow's LeakyRelu gradient reads the activation's input, the
    convolution's BiasAdd. Grappler's remapper fuses Conv2D + BiasAdd +
    LeakyRelu into one op and deletes that BiasAdd, so the pass fails
    (``E0000 ... remapper failed: INVALID_ARGUMENT ... LeakyReluGrad``) and is
    skipped for the whole training graph, all its fusions lost. With
    ``negative_slope >= 0`` (Keras refuses less) the output has the input's
    sign, so the gradient taken from the output is the same number: same
    function, same gradient, a graph the remapper accepts. The config is
    Keras' LeakyReLU's; networks saved with Keras' layer load as before.

    Parameters
    ----------
    negative_slope : float, default=0.3
        Slope for negative inputs, >= 0.
    **kwargs
        Keras layer arguments (``name``, ``dtype``...).

    Examples
    --------
    >>> import numpy as np
    >>> from emnist_estimators.architectures import FusableLeakyReLU
    >>> FusableLeakyReLU(0.5)(np.array([-2.0, 3.0])).numpy().tolist()
    [-1.0, 3.0]
    """

    def __init__(self, negative_slope: float = 0.3, **kwargs):
        super().__init__(negative_slope=negative_slope, **kwargs)

    def call(self, inputs):
        """Apply the activation; on TensorFlow, with the output-based gradient.

        Parameters
        ----------
        inputs : tensor
            Pre-activations, e.g. a convolution's output.

        Returns
        -------
        tensor
            ``inputs`` where positive, ``negative_slope * inputs`` elsewhere.
        """
        if keras.backend.backend() != "tensorflow":
            return super().call(inputs)
        return _leaky_relu_output_gradient(inputs, self.negative_slope)


def _leaky_relu_output_gradient(inputs, alpha: float):
    import tensorflow as tf

    @tf.custom_gradient
    def leaky_relu(x):
        y = tf.nn.leaky_relu(x, alpha=alpha)

        def grad(dy):
            # LeakyReluGrad(dy, y) == LeakyReluGrad(dy, x): y > 0 iff x > 0
            return tf.raw_ops.LeakyReluGrad(gradients=dy, features=y, alpha=alpha)

        return y, grad

    return leaky_relu(inputs)


def build_cnn(
    n_features: int,
    n_classes: int,
    *,
    image_shape: tuple[int, int] | None = None,
    filters: Sequence[int] = (32, 64),
    convs_per_block: int | Sequence[int] = 2,
    dense_units: Sequence[int] = (256, 128),
    negative_slope: float = 0.3,
    dropout: float = 0.25,
    block_dropout: float | None = None,
    batch_norm: bool = False,
    augment: bool = False,
    separable: bool = False,
    rescale: float = 1.0,
    seed: int | None = None,
    dtype_policy: str | None = None,
) -> keras.Model:
    """Convolutional network in the style of the original report.

    For each entry of ``filters`` one block of ``convs_per_block`` x [Conv2D
    3x3 'same' + LeakyReLU] (with optional batch normalisation), MaxPool 2x2
    and Dropout (``block_dropout``); then Flatten, the ReLU Dense layers of
    ``dense_units`` with dropout, and a softmax. Optional light augmentation
    (shifts of up to 2 pixels and rotations of up to 10 degrees, no flips: a
    flipped 'b' is a 'd') is active only while training.

    Parameters
    ----------
    n_features : int
        Pixels per sample (flat); reshaped to ``image_shape`` inside.
    n_classes : int
        Size of the softmax output.
    image_shape : (int, int), default=None
        Height and width; default: square if possible (784 -> 28x28).
    filters : sequence of int, default=(32, 64)
        Filters of each convolutional block.
    convs_per_block : int or sequence of int, default=2
        Conv2D layers per block; a sequence gives each block its own depth
        (one entry per entry of ``filters``).
    dense_units : sequence of int, default=(256, 128)
        Widths of the ReLU Dense layers (the report does not give them).
    negative_slope : float, default=0.3
        LeakyReLU slope (:class:`FusableLeakyReLU`, which Grappler can fuse
        with its convolution while training).
    dropout : float, default=0.25
        Dropout after each Dense layer, and after each block unless
        ``block_dropout`` is given.
    block_dropout : float or None, default=None
        Dropout after each convolutional block; None: ``dropout``. 0 leaves
        the blocks without a Dropout layer.
    batch_norm : bool, default=False
        BatchNormalization after each convolution.
    augment : bool, default=False
        Random shifts and rotations while training.
    separable : bool, default=False
        Depthwise-separable convolutions (SeparableConv2D) after the first
        one, which reads a single channel: 3 to 8 times fewer FLOPs per
        convolution (issue 32's candidates, ``benchmarks/bench_recipes.py``).
    rescale : float, default=1.0
        Inputs are multiplied by it inside the model (1/255 for raw pixels).
    seed : int, default=None
        Seeds initialisation, dropout and augmentation.
    dtype_policy : str, default=None
        Keras dtype policy of the hidden layers, e.g. 'mixed_bfloat16'; the
        softmax output stays float32.

    Returns
    -------
    keras.Model
        Uncompiled model mapping (batch, n_features) to class probabilities.

    Examples
    --------
    >>> from emnist_estimators.architectures import build_cnn
    >>> build_cnn(784, 47, seed=0).output_shape
    (None, 47)
    """
    height, width = image_shape_for(n_features, image_shape)
    lay = _TypedLayers(dtype_policy)
    inputs, x = _pixel_input(n_features, rescale, lay)
    x = lay.Reshape((height, width, 1), name="to_image")(x)
    if augment:
        shift_h = 2 / height if height > 2 else 0.0
        x = lay.RandomTranslation(
            shift_h,
            2 / width,
            fill_mode="constant",
            seed=_seed(seed, 500),
            name="shift",
        )(x)
        if height > 1:
            x = lay.RandomRotation(
                10 / 360, fill_mode="constant", seed=_seed(seed, 501), name="rotate"
            )(x)
    if block_dropout is None:
        block_dropout = dropout
    if isinstance(convs_per_block, int):
        convs_per_block = [convs_per_block] * len(filters)
    if len(convs_per_block) != len(filters):
        raise ValueError(
            f"convs_per_block has {len(convs_per_block)} entries for "
            f"{len(filters)} blocks of filters; give one per block, or one int."
        )
    k = 0
    for b, (n_filters, convs) in enumerate(zip(filters, convs_per_block, strict=True)):
        for c in range(convs):
            init = keras.initializers.GlorotUniform(_seed(seed, k))
            if separable and k > 0:
                conv = lay.SeparableConv2D(
                    int(n_filters),
                    3,
                    padding="same",
                    use_bias=not batch_norm,
                    depthwise_initializer=init,
                    pointwise_initializer=keras.initializers.GlorotUniform(
                        _seed(seed, 600 + k)
                    ),
                    name=f"conv_{b}_{c}",
                )
            else:
                conv = lay.Conv2D(
                    int(n_filters),
                    3,
                    padding="same",
                    use_bias=not batch_norm,
                    kernel_initializer=init,
                    name=f"conv_{b}_{c}",
                )
            x = conv(x)
            if batch_norm:
                x = lay.BatchNormalization(name=f"bn_{b}_{c}")(x)
            x = FusableLeakyReLU(
                negative_slope, name=f"leaky_{b}_{c}", dtype=dtype_policy
            )(x)
            k += 1
        x = lay.MaxPooling2D(2, padding="same", name=f"pool_{b}")(x)
        if block_dropout > 0:
            drop_seed = _seed(seed, 100 + b)
            x = lay.Dropout(block_dropout, seed=drop_seed, name=f"drop_{b}")(x)
    x = lay.Flatten(name="flatten")(x)
    for i, units in enumerate(dense_units):
        x = lay.Dense(
            int(units),
            activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(_seed(seed, 200 + i)),
            name=f"dense_{i}",
        )(x)
        if dropout > 0:
            x = lay.Dropout(dropout, seed=_seed(seed, 300 + i), name=f"dense_drop_{i}")(
                x
            )
    outputs = _softmax_head(x, n_classes, seed)
    return keras.Model(inputs, outputs, name="emnist_cnn")
