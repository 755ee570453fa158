"""Turn ordinary image files into EMNIST-style 28x28 grey characters.

:func:`read_prediction_inputs` reads what ``emnist-estimators predict`` is
given - pictures, ``.npy`` or ``.csv`` pixel rows - as one array.

EMNIST was made from NIST's 128x128 scans by blurring, cropping to the
character, centring it in a square frame with a 2-pixel margin and
downsampling to 28x28 (Cohen et al., 2017). :func:`to_emnist` does the same
for any picture of one character: grey, inverted if it is dark ink on a light
background, cropped, centred, resized and stretched to 0..255.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from pathlib import Path

import numpy as np

from .exceptions import DataFormatError, DataNotFoundError

__all__ = [
    "MAX_IMAGE_PIXELS",
    "PictureTooLarge",
    "grey_levels",
    "is_blank",
    "read_image",
    "read_prediction_inputs",
    "to_emnist",
]

#: Largest picture :func:`read_image` decodes: 25 megapixels (a 6000x4000
#: camera photo fits). A character needs far less, and a small PNG can claim
#: a huge canvas (a 145 KB file of 12000x12000 pixels took 2.4 GB to decode),
#: so the size in the file's header is checked before any pixel is decoded.
MAX_IMAGE_PIXELS = 25_000_000


class PictureTooLarge(DataFormatError):
    """A picture's header claims more pixels than the reader decodes.

    Raised by :func:`grey_levels` before any pixel is decoded; the
    attributes are kept for the caller's own message.

    Parameters
    ----------
    width, height : int
        The size the header claims.
    max_pixels : int
        The reader's limit.
    """

    def __init__(self, width: int, height: int, max_pixels: int):
        super().__init__(
            f"{width}x{height} pixels, more than the {max_pixels:,} decoded"
        )
        self.width, self.height, self.max_pixels = width, height, max_pixels


def grey_levels(source, *, max_pixels: int, formats=None) -> np.ndarray:
    """Decode a picture as float32 grey levels, 0 black to 255 white.

    The one decoder of pictures, for files on disk (:func:`read_image`) and
    uploads (:func:`emnist_estimators.serve.decode_image`): the size in the
    header is checked before any pixel is decoded (a small PNG can claim a
    huge canvas), the EXIF orientation is applied (a phone's sideways JPEG
    comes out upright), 16-bit grey is scaled by its bit depth, and
    transparent pixels are composited on white like a page.

    Parameters
    ----------
    source : str, path-like or binary file object
        The picture.
    max_pixels : int
        Largest width x height decoded.
    formats : tuple of str, default=None
        Pillow format names to try; None: every format Pillow opens.

    Returns
    -------
    ndarray of shape (height, width), float32
        The grey levels.

    Raises
    ------
    PictureTooLarge
        The header claims more than ``max_pixels`` pixels.
    PIL.UnidentifiedImageError, OSError, SyntaxError, \
PIL.Image.DecompressionBombError
        Pillow's errors for data that is not a picture it can decode; each
        caller words them for its own users.

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> from emnist_estimators.images import grey_levels
    >>> buf = io.BytesIO()
    >>> Image.new("LA", (3, 2), (0, 0)).save(buf, format="PNG")
    >>> grey_levels(buf, max_pixels=100).tolist()  # transparent: white paper
    [[255.0, 255.0, 255.0], [255.0, 255.0, 255.0]]
    """
    from PIL import Image, ImageOps

    with _open_quietly(source, formats) as img:
        width, height = img.size
        if width * height > max_pixels:
            raise PictureTooLarge(width, height, max_pixels)
        img.load()
        # a phone stores a photo as the sensor saw it, with an EXIF tag saying
        # how to turn it upright: turned here, as a picture viewer turns it
        img = ImageOps.exif_transpose(img)
        if img.mode.startswith("I"):  # 16-bit grey ("I;16", or "I" from a PNG)
            return _sixteen_bit_grey(img)
        if img.mode in ("RGBA", "LA") or "transparency" in img.info:
            # transparent background: composite on white like a page
            img = img.convert("RGBA")
            background = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, img)
        return np.asarray(img.convert("L"), dtype=np.float32)


# Pillow warns (DecompressionBombWarning) on opening a picture over its own
# cap, before grey_levels refuses it with a clear message: silenced around the
# open only. A lock, since catch_warnings changes the process' warning filters.
_QUIET_OPEN = threading.Lock()


@contextlib.contextmanager
def _open_quietly(source, formats):
    """``PIL.Image.open`` without Pillow's DecompressionBombWarning."""
    from PIL import Image

    with _QUIET_OPEN, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = Image.open(source, formats=formats)
    with img:
        yield img


def _sixteen_bit_grey(img) -> np.ndarray:
    """A 16-bit grey picture scaled by its bit depth to 0..255, not clipped.

    Pillow's ``convert("L")`` clips such pixels at 255, so that a mid-grey
    stroke (32768) on white paper (65535) becomes white on white.
    """
    raw = np.asarray(img)
    grey = raw.astype(np.float32) * np.float32(255 / 65535)
    transparent = img.info.get("transparency")
    if isinstance(transparent, int):  # one grey value marked transparent
        grey[raw == transparent] = 255.0  # white paper, as for other pictures
    return np.clip(grey, 0, 255)


def read_image(path) -> np.ndarray:
    """Read an image file (PNG, JPEG, BMP, ...) as a float grey array in [0, 255].

    Parameters
    ----------
    path : str or path-like
        The image file.

    Returns
    -------
    ndarray of shape (height, width), float32
        The grey levels; a transparent background is composited on white.

    Raises
    ------
    DataFormatError
        If the file is not an image Pillow can decode, or its header claims
        more than :data:`MAX_IMAGE_PIXELS` pixels (checked before decoding).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        return grey_levels(path, max_pixels=MAX_IMAGE_PIXELS)
    except PictureTooLarge as exc:
        raise DataFormatError(
            f"{path} is {exc.width}x{exc.height} pixels, more than the "
            f"{MAX_IMAGE_PIXELS:,} this reader decodes (a character needs "
            "far fewer). Crop or shrink the picture to the character first."
        ) from exc
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        Image.DecompressionBombError,
    ) as exc:
        raise DataFormatError(
            f"Cannot decode {path} as an image ({exc}). Give a PNG, JPEG or "
            "BMP file of one character."
        ) from exc


def is_blank(pixels) -> np.ndarray:
    """True for each image that holds no character: every pixel the same value.

    All-white, all-black and fully transparent pictures become such images
    (:func:`to_emnist` returns all zeros for them); a classifier still gives
    them a label, which means nothing.

    Parameters
    ----------
    pixels : array-like of shape (n_images, ...)
        Images, flat or 2-D each.

    Returns
    -------
    ndarray of shape (n_images,), bool
        True where the image is blank.

    Examples
    --------
    >>> import numpy as np
    >>> from emnist_estimators.images import is_blank
    >>> X = np.zeros((2, 784), np.uint8)
    >>> X[1, 300] = 255
    >>> is_blank(X)
    array([ True, False])
    """
    flat = np.asarray(pixels).reshape(len(pixels), -1)
    return flat.min(axis=1) == flat.max(axis=1)


def to_emnist(image: np.ndarray, *, margin: int = 2) -> np.ndarray:
    """Convert one grey image of a character to EMNIST's 28x28 uint8 format.

    Parameters
    ----------
    image : ndarray of shape (h, w)
        Grey levels, any range; light-on-dark or dark-on-light.
    margin : int, default=2
        Border left around the character, in output pixels.

    Returns
    -------
    ndarray of shape (28, 28), uint8
        White character (255) on black (0), centred and upright.

    Examples
    --------
    >>> import numpy as np
    >>> from emnist_estimators.images import to_emnist
    >>> page = np.full((100, 60), 255.0)
    >>> page[10:90, 25:35] = 0  # a black bar on white paper
    >>> out = to_emnist(page)
    >>> out.shape, out.dtype, int(out.max()), int(out[0, 0])
    ((28, 28), dtype('uint8'), 255, 0)
    """
    from PIL import Image

    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2 or min(img.shape) < 2:
        raise ValueError(f"Expected one grey image (h, w), got shape {img.shape}.")

    def _border(a):
        return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])

    if np.median(_border(img)) > (img.min() + img.max()) / 2:
        img = img.max() - img  # dark ink on light paper -> light on dark
    img = np.clip(img - np.median(_border(img)), 0, None)  # background to 0
    if img.max() <= 0:
        return np.zeros((28, 28), np.uint8)
    mask = img > 0.2 * img.max()
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = img[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    side = max(crop.shape)
    square = np.zeros((side, side), np.float32)
    r0, c0 = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    square[r0 : r0 + crop.shape[0], c0 : c0 + crop.shape[1]] = crop
    inner = 28 - 2 * margin
    small = Image.fromarray(square).resize((inner, inner), Image.Resampling.BICUBIC)
    out = np.zeros((28, 28), np.float32)
    out[margin : margin + inner, margin : margin + inner] = np.asarray(small)
    out = np.clip(out, 0, None)
    out *= 255.0 / out.max()
    return np.rint(out).astype(np.uint8)


def read_prediction_inputs(paths) -> tuple[list[str], np.ndarray]:
    """Read pictures and pixel files as rows of 784 pixels, one per character.

    A picture (PNG, JPEG, BMP...) is one character, converted by
    :func:`to_emnist`. A ``.npy`` file holds any number of images of 784
    pixels each (shape ``(n, 784)`` or ``(n, 28, 28)``); a ``.csv`` file one
    image per row, 784 pixels, or 785 with a leading label (EMNIST's CSV
    export), which is dropped. Pixel files are taken as they are: upright,
    0..255, white on black.

    Parameters
    ----------
    paths : iterable of str or path-like
        The files, in the order their rows are wanted.

    Returns
    -------
    names : list of str
        One name per row: the file name of a picture, ``name[i]`` for row
        ``i`` of a pixel file.
    X : ndarray of shape (n_rows, 784), float32
        The pixels.

    Raises
    ------
    DataNotFoundError
        If a file does not exist.
    DataFormatError
        If a picture cannot be decoded, or a pixel file's rows are not 784
        pixels.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from emnist_estimators.images import read_prediction_inputs
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> np.save(folder / "two.npy", np.zeros((2, 28, 28), np.uint8))
    >>> names, X = read_prediction_inputs([folder / "two.npy"])
    >>> names, X.shape, X.dtype
    (['two.npy[0]', 'two.npy[1]'], (2, 784), dtype('float32'))
    """
    names, rows = [], []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise DataNotFoundError(f"Input {path} does not exist.")
        if path.suffix in (".npy", ".csv"):
            pixels = _read_pixel_rows(path)
            names += [f"{path.name}[{i}]" for i in range(len(pixels))]
        else:
            pixels = to_emnist(read_image(path)).reshape(1, 784)
            names.append(path.name)
        rows.append(np.asarray(pixels, dtype=np.float32))
    if not rows:
        return names, np.empty((0, 784), np.float32)
    return names, np.concatenate(rows)


def _read_pixel_rows(path: Path) -> np.ndarray:
    """The rows of a ``.npy`` or ``.csv`` pixel file, shape (n, 784)."""
    if path.suffix == ".npy":
        arr = np.load(path, allow_pickle=False)
        if arr.size % 784:
            raise DataFormatError(
                f"{path}: holds {arr.size} values of shape {arr.shape}, not a whole "
                "number of 784-pixel images. Save arrays of shape (n, 784) or "
                "(n, 28, 28)."
            )
        return arr.reshape(-1, 784)
    arr = np.loadtxt(path, delimiter=",", ndmin=2)
    if arr.shape[1] == 785:  # label,pixels export: drop the label
        arr = arr[:, 1:]
    if arr.shape[1] != 784:
        raise DataFormatError(f"{path}: rows must have 784 pixels, got {arr.shape[1]}.")
    return arr
