"""``EmnistMLP`` and ``EmnistCNN``: Keras models with the scikit-learn contract.

Each class lists its hyper-parameters, their constraints and the Keras
network it builds (:mod:`~emnist_estimators.architectures`); everything else
- validation, encoding, seeding, training, prediction, the scikeras and
scikit-learn compatibility - is their base class's
(:mod:`~emnist_estimators.base`). :func:`load_model` loads either from a
file written by ``save``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from numbers import Integral, Real
from typing import TYPE_CHECKING, Literal

import numpy as np

# Hidden, Interval and StrOptions have no public import in scikit-learn; they
# are what its own estimators' _parameter_constraints use.
from sklearn.utils._param_validation import Hidden, Interval, StrOptions

from ._utils import Precision
from .base import BaseEmnistClassifier

if TYPE_CHECKING:
    import keras
    from keras.callbacks import Callback

__all__ = ["EmnistMLP", "EmnistCNN", "load_model"]

#: Keras activations (``keras.activations.get`` names) offered for EmnistMLP's
#: hidden layers, as scikit-learn's MLPClassifier offers relu, tanh, logistic
#: and identity (Keras calls the last two "sigmoid" and "linear").
_ACTIVATIONS = {
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "tanh",
    "sigmoid",
    "softplus",
    "linear",
}

#: The other names Keras 3 accepts that work in a Dense layer: still accepted
#: (they worked before activation was constrained) but not offered in error
#: messages - rarely used, or (softmax, log_softmax, sparsemax) normalising
#: across units, which is meant for an output layer. Keras' "glu" and
#: "threshold" are left out: they fail in a Dense layer.
_OTHER_ACTIVATIONS = {
    "relu6",
    "celu",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "log_sigmoid",
    "sparse_sigmoid",
    "sparse_plus",
    "squareplus",
    "softsign",
    "exponential",
    "hard_shrink",
    "soft_shrink",
    "tanh_shrink",
    "softmax",
    "log_softmax",
    "sparsemax",
}


class EmnistMLP(BaseEmnistClassifier):
    """Multi-layer perceptron classifier for 28x28 grey characters (Keras).

    Defaults: 784-768-768-n_classes, ReLU, dropout 0.3, Adam 1e-3 with a
    cosine-decayed learning rate, label smoothing 0.1, batch 256, 30 epochs,
    10% held out: chosen for accuracy per CPU-second (docs: Performance).
    ``EmnistMLP((1024, 1024), dropout=0.4, epochs=40, label_smoothing=0)``,
    the 0.1.0 defaults, scores the same within 0.1 point for 1.5-1.9x the
    training time. The original report's network is
    ``hidden_layer_sizes=(512, 512), dropout=0.2, epochs=10,
    lr_schedule="constant", label_smoothing=0``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(768, 768)
        Width of each hidden layer.
    activation : str, default='relu'
        Keras activation of the hidden layers.
    dropout : float, default=0.3
        Dropout rate after each hidden layer.
    learning_rate : float, default=1e-3
        Adam's (initial) step size.
    batch_size : int, default=256
        Samples per gradient step.
    epochs : int, default=30
        Passes over the training data (fewer with early stopping).
    validation_fraction : float, default=0.1
        Share of the training data held out (stratified) to report validation
        loss/accuracy each epoch and for early stopping. 0 disables it.
    early_stopping : bool, default=False
        Stop when the validation loss (training loss without a validation
        set) has not improved for ``patience`` epochs, and restore the best
        weights.
    patience : int, default=3
        Epochs without improvement before early stopping.
    lr_schedule : {'constant', 'cosine', 'warmup_cosine'}, default='cosine'
        'cosine' decays the learning rate to 1% of its initial value over the
        ``epochs`` of a fit (cosine decay, per batch); 'warmup_cosine' first
        raises it linearly from 10% over 5% of the steps; 'constant' keeps it.
    label_smoothing : float, default=0.1
        Share of each training target spread evenly over all classes (0: the
        plain cross-entropy); it regularises and keeps ``predict_proba`` from
        saturating. See :class:`~emnist_estimators.losses.SmoothedSparseCrossentropy`.
    rescale : 'auto' or float, default='auto'
        Factor applied to inputs inside the model. 'auto': 1/255 when the
        training X is uint8 or has values above 1 (raw pixels), else 1 (X
        already scaled, e.g. by PixelScaler). Then predict refuses X scaled
        the other way: float X no larger than 1 after raw training, values
        above 1 after scaled training (an all-zero X fits both and passes).
    precision : {'auto', 'float32', 'mixed_bfloat16', 'mixed_float16'}, \
default='auto'
        Arithmetic of the hidden layers (weights and the softmax stay
        float32). 'auto': mixed float16 (with loss scaling) when every GPU is
        a CUDA GPU of compute capability >= 7.0, float32 on other GPUs; on a
        CPU-only machine mixed bfloat16 where the processor has native
        bfloat16 (AVX512-BF16 or AMX; about 1.9x faster CNN training),
        float32 elsewhere.
    class_weight : dict, 'balanced' or None, default=None
        Weight of each class in the loss, multiplying ``sample_weight``. A
        dict maps labels as they appear in ``y`` (characters included) to
        weights; classes it does not name weigh 1. 'balanced' weighs each
        class by ``n_samples / (n_classes * count)`` (scikit-learn's formula)
        over the training labels - in ``partial_fit``, each call's labels.
    warm_start : bool, default=False
        When fitted already, ``fit`` trains the current network further (the
        same classes and number of pixels required) with a new optimizer
        and learning-rate schedule, as scikit-learn's ``MLPClassifier``
        does; ``history_`` and ``n_iter_`` add up. False: a new network.
    checkpoint_dir : str, path-like or None, default=None
        Folder where ``fit`` saves its state after every epoch (weights,
        optimizer, history, random state; ``emnist-checkpoint.npz``, written
        atomically). A ``fit`` that finds a checkpoint there resumes after its
        last epoch and ends as an uninterrupted fit would (on CPU); one of
        another estimator, parameters, classes or data is refused. Use one
        folder per fit (not in searches, whose fits would share it). With
        ``warm_start``, a finished checkpoint of the previous fit is
        replaced by this fit's.
    distribution : {'mirrored', 'multi_worker'} or None, default=None
        Train one network on several devices (``tf.distribute``). 'mirrored':
        this machine's GPUs, or its logical CPU devices. 'multi_worker': one
        process per machine, each calling ``fit`` with the same data and
        parameters, configured by the ``TF_CONFIG`` environment variable.
        ``batch_size`` is then per replica (each step trains on
        ``batch_size * replicas`` rows); the learning rate is used as given.
        The fitted ``model_`` is an ordinary single-device network (predict,
        save, pickle and export as usual). Not with ``checkpoint_dir``,
        ``partial_fit`` or a warm-started fit (docs: Scaling out).
    callbacks : list of keras.callbacks.Callback, default=None
        Extra Keras callbacks for every fit.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, dropout, shuffling and the validation
        split, for this fit only. With an int, fits on CPU are reproducible.
    verbose : {0, 1, 2}, default=0
        Keras' progress output while training.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, as given in ``y``.
    n_features_in_ : int
        Number of pixels per sample seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when fitted on a DataFrame with string column names.
    model_ : keras.Model
        The trained network.
    history_ : dict of list of float
        Per-epoch ``loss``, ``accuracy`` and, with a validation set,
        ``val_loss`` and ``val_accuracy``.
    n_iter_ : int
        Epochs run.
    input_scale_ : float
        Factor applied to inputs inside the model.
    dtype_policy_ : str
        The Keras dtype policy the network was built with.

    See Also
    --------
    EmnistCNN : Convolutional network, more accurate and slower.
    PixelScaler : Validates and scales pixels in a Pipeline.

    Examples
    --------
    >>> import numpy as np
    >>> from emnist_estimators import EmnistMLP
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(200, 784), dtype=np.uint8)
    >>> y = np.where(X[:, :392].mean(axis=1) > X[:, 392:].mean(axis=1), "a", "b")
    >>> clf = EmnistMLP(hidden_layer_sizes=(32,), epochs=2, random_state=0)
    >>> clf.fit(X, y).predict(X[:3]).shape
    (3,)
    >>> clf.classes_
    array(['a', 'b'], dtype='<U1')
    """

    _parameter_constraints: dict = {
        **BaseEmnistClassifier._common_constraints,
        "hidden_layer_sizes": [tuple, list],
        "activation": [
            StrOptions(_ACTIVATIONS),
            Hidden(StrOptions(_OTHER_ACTIVATIONS)),
        ],
    }
    _element_constraints: dict = {
        "hidden_layer_sizes": Interval(Integral, 1, None, closed="left"),
    }

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] = (768, 768),
        *,
        activation: str = "relu",
        dropout: float = 0.3,
        learning_rate: float = 1e-3,
        batch_size: int = 256,
        epochs: int = 30,
        validation_fraction: float = 0.1,
        early_stopping: bool = False,
        patience: int = 3,
        lr_schedule: Literal["constant", "cosine", "warmup_cosine"] = "cosine",
        label_smoothing: float = 0.1,
        rescale: Literal["auto"] | float = "auto",
        precision: Precision = "auto",
        class_weight: dict | Literal["balanced"] | None = None,
        warm_start: bool = False,
        checkpoint_dir: str | os.PathLike | None = None,
        distribution: Literal["mirrored", "multi_worker"] | None = None,
        callbacks: list[Callback] | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.lr_schedule = lr_schedule
        self.label_smoothing = label_smoothing
        self.rescale = rescale
        self.precision = precision
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.distribution = distribution
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

    def _build_model(
        self,
        n_features: int,
        n_classes: int,
        image_shape: tuple[int, int] | None,
        rescale: float,
        seed: int | None,
    ) -> keras.Model:
        from .architectures import build_mlp

        return build_mlp(
            n_features,
            n_classes,
            hidden_layer_sizes=self.hidden_layer_sizes,
            activation=self.activation,
            dropout=self.dropout,
            rescale=rescale,
            seed=seed,
            dtype_policy=self._dtype_policy(),
        )


class EmnistCNN(BaseEmnistClassifier):
    """Convolutional network classifier for 28x28 grey characters (Keras).

    Defaults: the original report's network - two blocks of
    [2 x (Conv2D 3x3 'same' + LeakyReLU(0.3)), MaxPool 2x2, Dropout 0.25] with
    32 then 64 filters, two ReLU Dense layers (256, 128), softmax - trained
    with Adam 1e-3 and a cosine-decayed learning rate, label smoothing 0.1,
    batch 256, 20 epochs (the report: constant rate, no smoothing, 10
    epochs), 10% held out. Flat input of 784
    pixels is reshaped to 28x28 inside the model; image-shaped input keeps its
    height and width.

    Parameters
    ----------
    filters : tuple of int, default=(32, 64)
        Filters of each convolutional block.
    convs_per_block : int or tuple of int, default=2
        Conv2D layers per block; a tuple gives each block its own depth (one
        entry per entry of ``filters``), e.g. ``(2, 1, 1)``.
    dense_units : tuple of int, default=(256, 128)
        Widths of the Dense layers before the softmax.
    negative_slope : float, default=0.3
        Slope of the LeakyReLU activations.
    dropout : float, default=0.25
        Dropout after each Dense layer, and after each convolutional block
        when ``block_dropout`` is None.
    block_dropout : float or None, default=None
        Dropout after each convolutional block; None: ``dropout``. 0 keeps
        dropout in the dense head only, for 9-15% less CPU per epoch (the
        blocks' random masks are 16% of a step's op time): ahead on both
        validation splits at 10 epochs, behind on Fashion-MNIST at the
        default 20 (``benchmarks/results/bench_recipes.md``) - for short fits.
    batch_norm : bool, default=False
        Batch normalisation after each convolution.
    augment : bool, default=False
        Light augmentation while training: shifts of up to 2 pixels and
        rotations of up to 10 degrees (no flips).
    image_shape : (int, int), default=None
        Height and width of flat input; default square (784 -> 28x28) or
        the shape of image-shaped X.
    learning_rate : float, default=1e-3
        Adam's (initial) step size.
    batch_size : int, default=256
        Samples per gradient step.
    epochs : int, default=20
        Passes over the training data (fewer with early stopping).
    validation_fraction : float, default=0.1
        Share of the training data held out (stratified) to report validation
        loss/accuracy each epoch and for early stopping. 0 disables it.
    early_stopping : bool, default=False
        Stop when the validation loss (training loss without a validation
        set) has not improved for ``patience`` epochs, and restore the best
        weights.
    patience : int, default=3
        Epochs without improvement before early stopping.
    lr_schedule : {'constant', 'cosine', 'warmup_cosine'}, default='cosine'
        'cosine' decays the learning rate to 1% of its initial value over the
        ``epochs`` of a fit (cosine decay, per batch); 'warmup_cosine' first
        raises it linearly from 10% over 5% of the steps; 'constant' keeps it.
    label_smoothing : float, default=0.1
        Share of each training target spread evenly over all classes (0: the
        plain cross-entropy, the report's); it regularises and keeps
        ``predict_proba`` from saturating: +0.2 points of validation accuracy
        on the EMNIST protocol and +0.3 on Fashion-MNIST at no extra cost
        (``benchmarks/results/bench_recipes.md``). See
        :class:`~emnist_estimators.losses.SmoothedSparseCrossentropy`.
    rescale : 'auto' or float, default='auto'
        Factor applied to inputs inside the model. 'auto': 1/255 when the
        training X is uint8 or has values above 1 (raw pixels), else 1 (X
        already scaled, e.g. by PixelScaler). Then predict refuses X scaled
        the other way: float X no larger than 1 after raw training, values
        above 1 after scaled training (an all-zero X fits both and passes).
    precision : {'auto', 'float32', 'mixed_bfloat16', 'mixed_float16'}, \
default='auto'
        Arithmetic of the hidden layers (weights and the softmax stay
        float32). 'auto': mixed float16 (with loss scaling) when every GPU is
        a CUDA GPU of compute capability >= 7.0, float32 on other GPUs; on a
        CPU-only machine mixed bfloat16 where the processor has native
        bfloat16 (AVX512-BF16 or AMX; about 1.9x faster CNN training),
        float32 elsewhere.
    class_weight : dict, 'balanced' or None, default=None
        Weight of each class in the loss, multiplying ``sample_weight``. A
        dict maps labels as they appear in ``y`` (characters included) to
        weights; classes it does not name weigh 1. 'balanced' weighs each
        class by ``n_samples / (n_classes * count)`` (scikit-learn's formula)
        over the training labels - in ``partial_fit``, each call's labels.
    warm_start : bool, default=False
        When fitted already, ``fit`` trains the current network further (the
        same classes and number of pixels required) with a new optimizer
        and learning-rate schedule, as scikit-learn's ``MLPClassifier``
        does; ``history_`` and ``n_iter_`` add up. False: a new network.
    checkpoint_dir : str, path-like or None, default=None
        Folder where ``fit`` saves its state after every epoch (weights,
        optimizer, history, random state; ``emnist-checkpoint.npz``, written
        atomically). A ``fit`` that finds a checkpoint there resumes after its
        last epoch and ends as an uninterrupted fit would (on CPU); one of
        another estimator, parameters, classes or data is refused. Use one
        folder per fit (not in searches, whose fits would share it). With
        ``warm_start``, a finished checkpoint of the previous fit is
        replaced by this fit's.
    distribution : {'mirrored', 'multi_worker'} or None, default=None
        Train one network on several devices (``tf.distribute``). 'mirrored':
        this machine's GPUs, or its logical CPU devices. 'multi_worker': one
        process per machine, each calling ``fit`` with the same data and
        parameters, configured by the ``TF_CONFIG`` environment variable.
        ``batch_size`` is then per replica (each step trains on
        ``batch_size * replicas`` rows); the learning rate is used as given.
        The fitted ``model_`` is an ordinary single-device network (predict,
        save, pickle and export as usual). Not with ``checkpoint_dir``,
        ``partial_fit`` or a warm-started fit (docs: Scaling out).
    callbacks : list of keras.callbacks.Callback, default=None
        Extra Keras callbacks for every fit.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, dropout, shuffling and the validation
        split, for this fit only. With an int, fits on CPU are reproducible.
    verbose : {0, 1, 2}, default=0
        Keras' progress output while training.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, as given in ``y``.
    n_features_in_ : int
        Number of pixels per sample seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when fitted on a DataFrame with string column names.
    model_ : keras.Model
        The trained network.
    history_ : dict of list of float
        Per-epoch ``loss``, ``accuracy`` and, with a validation set,
        ``val_loss`` and ``val_accuracy``.
    n_iter_ : int
        Epochs run.
    input_scale_ : float
        Factor applied to inputs inside the model.
    dtype_policy_ : str
        The Keras dtype policy the network was built with.

    See Also
    --------
    EmnistMLP : Faster, less accurate.
    PixelScaler : Validates and scales pixels in a Pipeline.

    Examples
    --------
    >>> import numpy as np
    >>> from emnist_estimators import EmnistCNN
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(100, 28, 28), dtype=np.uint8)
    >>> y = np.arange(100) % 2
    >>> clf = EmnistCNN(filters=(4,), dense_units=(8,), epochs=1, random_state=0)
    >>> clf.fit(X, y).predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        **BaseEmnistClassifier._common_constraints,
        "filters": [tuple, list],
        "convs_per_block": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "dense_units": [tuple, list],
        "negative_slope": [Interval(Real, 0, None, closed="left")],
        "block_dropout": [Interval(Real, 0, 1, closed="left"), None],
        "batch_norm": ["boolean"],
        "augment": ["boolean"],
        "image_shape": [tuple, list, None],
    }
    _element_constraints: dict = {
        "filters": Interval(Integral, 1, None, closed="left"),
        "convs_per_block": Interval(Integral, 1, None, closed="left"),
        "dense_units": Interval(Integral, 1, None, closed="left"),
    }

    def __init__(
        self,
        filters: Sequence[int] = (32, 64),
        *,
        convs_per_block: int | Sequence[int] = 2,
        dense_units: Sequence[int] = (256, 128),
        negative_slope: float = 0.3,
        dropout: float = 0.25,
        block_dropout: float | None = None,
        batch_norm: bool = False,
        augment: bool = False,
        image_shape: tuple[int, int] | None = None,
        learning_rate: float = 1e-3,
        batch_size: int = 256,
        epochs: int = 20,
        validation_fraction: float = 0.1,
        early_stopping: bool = False,
        patience: int = 3,
        lr_schedule: Literal["constant", "cosine", "warmup_cosine"] = "cosine",
        label_smoothing: float = 0.1,
        rescale: Literal["auto"] | float = "auto",
        precision: Precision = "auto",
        class_weight: dict | Literal["balanced"] | None = None,
        warm_start: bool = False,
        checkpoint_dir: str | os.PathLike | None = None,
        distribution: Literal["mirrored", "multi_worker"] | None = None,
        callbacks: list[Callback] | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.filters = filters
        self.convs_per_block = convs_per_block
        self.dense_units = dense_units
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.block_dropout = block_dropout
        self.batch_norm = batch_norm
        self.augment = augment
        self.image_shape = image_shape
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.lr_schedule = lr_schedule
        self.label_smoothing = label_smoothing
        self.rescale = rescale
        self.precision = precision
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.distribution = distribution
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

    def _build_model(
        self,
        n_features: int,
        n_classes: int,
        image_shape: tuple[int, int] | None,
        rescale: float,
        seed: int | None,
    ) -> keras.Model:
        from .architectures import build_cnn

        return build_cnn(
            n_features,
            n_classes,
            image_shape=self.image_shape or image_shape,
            filters=self.filters,
            convs_per_block=self.convs_per_block,
            dense_units=self.dense_units,
            negative_slope=self.negative_slope,
            dropout=self.dropout,
            block_dropout=self.block_dropout,
            batch_norm=self.batch_norm,
            augment=self.augment,
            rescale=rescale,
            seed=seed,
            dtype_policy=self._dtype_policy(),
        )


def load_model(path: str | os.PathLike) -> EmnistMLP | EmnistCNN:
    """Load an :class:`EmnistMLP` or :class:`EmnistCNN` saved with ``save``.

    The Keras network is loaded with ``safe_mode=True`` (no arbitrary code).
    Only the members ``save`` writes are read - ``config.json``,
    ``metadata.json``, ``model.weights.h5`` and the estimator state - each up
    to a size cap (``persistence.MEMBER_CAPS``; the weights up to 64 MiB plus
    4 times the file's size), checked against the size the archive declares
    and again while inflating, so a small hostile file cannot exhaust memory
    or disk. Other members are ignored. The state is checked against the
    network.

    Parameters
    ----------
    path : str or path-like
        A ``.keras`` file written by ``EmnistMLP.save`` / ``EmnistCNN.save``.

    Returns
    -------
    estimator : EmnistMLP or EmnistCNN
        The fitted estimator, ready to predict.

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    DataFormatError
        The file is not a zip (Keras) archive, was not written by
        emnist-estimators or by an incompatible version, is corrupt or
        tampered with, or a member exceeds its size cap.
    """
    return BaseEmnistClassifier.load(path)
