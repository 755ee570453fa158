"""Models that ship inside the package, trained on real EMNIST.

Each one is a ``.keras`` file written by ``save`` beside its model card (a
Markdown file: data, protocol, held-out accuracy, the command that trains it,
its sha256 and the CPU it was trained on), in ``emnist_estimators/models/``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .exceptions import DataFormatError

if TYPE_CHECKING:
    from .estimators import EmnistCNN, EmnistMLP

__all__ = [
    "PRETRAINED",
    "PRETRAINED_PREFIX",
    "PretrainedModel",
    "load_pretrained",
    "pretrained_name",
]

#: How the command line names a bundled model: ``--model pretrained:NAME``.
PRETRAINED_PREFIX = "pretrained:"


@dataclass(frozen=True)
class PretrainedModel:
    """A model that ships with the package.

    Attributes
    ----------
    name : str
        What :func:`load_pretrained` and ``pretrained:NAME`` call it.
    sha256 : str
        The sha256 of its ``.keras`` file, checked before every load.
    held_out_accuracy : float
        Its accuracy on the protocol's held-out images, as its card says.
    summary : str
        One line for listings.
    """

    name: str
    sha256: str
    held_out_accuracy: float
    summary: str

    @property
    def path(self) -> Path:
        """The ``.keras`` file inside the installed package.

        Returns
        -------
        Path
            ``emnist_estimators/models/NAME.keras``.
        """
        return Path(str(resources.files(__package__) / "models" / f"{self.name}.keras"))

    @property
    def card(self) -> Path:
        """The model card (Markdown) beside the file.

        Returns
        -------
        Path
            ``emnist_estimators/models/NAME.md``.
        """
        return self.path.with_suffix(".md")


#: The bundled models, by name. The first is the default of ``serve`` and
#: ``predict``.
PRETRAINED: dict[str, PretrainedModel] = {
    model.name: model
    for model in (
        PretrainedModel(
            name="cnn-bymerge",
            sha256="2b78654dc649e63b2ef5e445606a430c3dcacfb43cf8ca3c0cb2e5e4752d12c0",
            held_out_accuracy=0.9019,
            summary="EmnistCNN, three blocks (32, 64, 128), 47 bymerge classes",
        ),
    )
}
#: The model ``serve`` and ``predict`` use when none is named.
DEFAULT_PRETRAINED = next(iter(PRETRAINED))


def pretrained_name(spec: str) -> str | None:
    """Return NAME for ``'pretrained:NAME'``, None for anything else.

    Parameters
    ----------
    spec : str
        A model as the command line names it: a file, or ``pretrained:NAME``.

    Returns
    -------
    str or None
        The bundled model's name, checked against :data:`PRETRAINED`.

    Raises
    ------
    ValueError
        ``spec`` starts with ``pretrained:`` but names no bundled model.

    Examples
    --------
    >>> pretrained_name("pretrained:cnn-bymerge")
    'cnn-bymerge'
    >>> pretrained_name("runs/cnn/model.keras") is None
    True
    """
    if not spec.startswith(PRETRAINED_PREFIX):
        return None
    name = spec[len(PRETRAINED_PREFIX) :]
    _check_name(name)
    return name


def _check_name(name: str) -> PretrainedModel:
    if name not in PRETRAINED:
        raise ValueError(
            f"No pretrained model named {name!r}; the package ships "
            f"{', '.join(sorted(PRETRAINED))}."
        )
    return PRETRAINED[name]


def load_pretrained(name: str = DEFAULT_PRETRAINED) -> EmnistMLP | EmnistCNN:
    """Load a fitted model that ships with the package.

    The file's sha256 is checked first; then it loads as :func:`load_model`
    loads any saved model (Keras safe mode, size caps). Its model card,
    ``PRETRAINED[name].card``, says how it was trained and what it scores.

    Parameters
    ----------
    name : str, default='cnn-bymerge'
        Which model: one of :data:`PRETRAINED`. ``'cnn-bymerge'`` is an
        EmnistCNN trained on 85% of EMNIST bymerge's official test split
        (the project's protocol, stratified, ``random_state=0``); it takes
        raw pixels, 0..255, upright, flat (784) or 28x28.

    Returns
    -------
    EmnistMLP or EmnistCNN
        The fitted estimator; ``classes_`` are the split's characters.

    Raises
    ------
    ValueError
        No bundled model has that name.
    DataFormatError
        The installed file is not the one the package shipped (its sha256
        differs): reinstall the package.

    Examples
    --------
    >>> from emnist_estimators import load_pretrained
    >>> clf = load_pretrained("cnn-bymerge")  # doctest: +SKIP
    >>> # uint8 pixels 0..255, upright, shape (n, 784) or (n, 28, 28)
    >>> clf.predict(images)  # doctest: +SKIP
    """
    model = _check_name(name)
    digest = hashlib.sha256(model.path.read_bytes()).hexdigest()
    if digest != model.sha256:
        raise DataFormatError(
            f"The bundled model {model.path} has sha256 {digest}, not the "
            f"{model.sha256} it shipped with: the installation is damaged or "
            "was changed. Reinstall emnist-estimators."
        )
    from .estimators import load_model  # imports TensorFlow

    return load_model(model.path)
