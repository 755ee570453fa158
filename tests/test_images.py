"""Image files to EMNIST-style pixels: decoding limits and blank pictures."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, modules_loaded_by, png_header_only
from PIL import Image

from emnist_estimators.exceptions import DataFormatError, DataNotFoundError
from emnist_estimators.images import (
    MAX_IMAGE_PIXELS,
    is_blank,
    read_image,
    read_prediction_inputs,
    to_emnist,
)

READ_AND_MEASURE = """
import resource, sys
from emnist_estimators.images import read_image
import PIL.Image, PIL.PngImagePlugin
def peak_mb():  # VmHWM: ru_maxrss would include the parent's RSS at fork
    with open("/proc/self/status") as fh:
        return int(next(ln for ln in fh if ln.startswith("VmHWM:")).split()[1]) // 1024
print("BASE_MB", peak_mb())
try:
    read_image(sys.argv[1])
except Exception as exc:
    print(type(exc).__name__, exc)
print("MAXRSS_MB", peak_mb())
"""


def test_huge_canvas_is_refused_before_decoding(tmp_path):
    """Issue 11.4d: a 145 KB PNG of 12000x12000 pixels took 2.4 GB in predict."""
    path = tmp_path / "huge.png"
    Image.new("L", (12000, 12000), 255).save(path, optimize=True)
    assert path.stat().st_size < 1_000_000  # small file, huge canvas
    proc = subprocess.run(
        [sys.executable, "-c", READ_AND_MEASURE, str(path)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "DataFormatError" in proc.stdout and "12000x12000" in proc.stdout
    assert f"{MAX_IMAGE_PIXELS:,}" in proc.stdout
    # Decoding would need 144 MB for the grey pixels alone and about 2.4 GB
    # for the float copies; refusing from the header needs almost nothing.
    base = int(proc.stdout.split("BASE_MB")[1].split()[0])
    assert int(proc.stdout.split("MAXRSS_MB")[-1]) - base < 50, proc.stdout


def test_largest_allowed_picture_still_reads(tmp_path):
    path = tmp_path / "photo.png"
    side = int(MAX_IMAGE_PIXELS**0.5)
    Image.new("L", (side, side), 0).save(path)
    assert read_image(path).shape == (side, side)


def test_not_an_image_is_a_data_format_error(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataFormatError, match="Cannot decode"):
        read_image(path)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("L", (60, 80), 255),  # white page
        lambda: Image.new("L", (60, 80), 0),  # black page
        lambda: Image.new("RGBA", (60, 80), (10, 200, 30, 0)),  # fully transparent
    ],
    ids=["white", "black", "transparent"],
)
def test_blank_pictures_are_recognised(tmp_path, make):
    path = tmp_path / "blank.png"
    make().save(path)
    pixels = to_emnist(read_image(path))
    assert is_blank(pixels[None]).tolist() == [True]


def test_a_character_is_not_blank():
    page = np.full((100, 60), 255.0)
    page[10:90, 25:35] = 0
    X = np.stack([to_emnist(page), np.zeros((28, 28), np.uint8)])
    assert is_blank(X).tolist() == [False, True]


# --- read_prediction_inputs: what `predict` is given ---------------------------
def test_prediction_inputs_keep_order_and_name_every_row(tmp_path):
    rng = np.random.default_rng(0)
    cube = rng.integers(0, 256, size=(2, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "cube.npy", cube)  # (n, 28, 28) is read as (n, 784)
    rows = rng.integers(0, 256, size=(3, 784))
    labelled = np.column_stack([[7, 8, 9], rows])  # EMNIST CSV export: label first
    np.savetxt(tmp_path / "export.csv", labelled, fmt="%d", delimiter=",")
    page = np.full((60, 40), 255, np.uint8)
    page[10:50, 15:25] = 0  # a dark bar on white paper
    Image.fromarray(page).save(tmp_path / "bar.png")
    names, X = read_prediction_inputs(
        [tmp_path / "bar.png", tmp_path / "cube.npy", str(tmp_path / "export.csv")]
    )
    assert names == [
        "bar.png",
        "cube.npy[0]",
        "cube.npy[1]",
        "export.csv[0]",
        "export.csv[1]",
        "export.csv[2]",
    ]
    assert X.shape == (6, 784) and X.dtype == np.float32
    np.testing.assert_array_equal(X[0], to_emnist(page.astype(np.float32)).ravel())
    np.testing.assert_array_equal(X[1:3], cube.reshape(2, 784))
    np.testing.assert_array_equal(X[3:], rows)  # the label column dropped


def test_prediction_input_missing_is_data_not_found(tmp_path):
    with pytest.raises(DataNotFoundError, match="nothere.png does not exist"):
        read_prediction_inputs([tmp_path / "nothere.png"])


@pytest.mark.parametrize(
    "name, write, message",
    [
        (
            "narrow.csv",
            lambda p: np.savetxt(p, np.zeros((2, 100)), delimiter=","),
            "rows must have 784 pixels, got 100",
        ),
        (
            "odd.npy",
            lambda p: np.save(p, np.zeros((3, 100), np.uint8)),
            "not a whole number of 784-pixel images",
        ),
    ],
)
def test_prediction_pixel_files_of_the_wrong_size_name_the_file(
    tmp_path, name, write, message
):
    write(tmp_path / name)
    with pytest.raises(DataFormatError, match=message) as info:
        read_prediction_inputs([tmp_path / name])
    assert name in str(info.value)


def test_prediction_inputs_import_no_estimator_or_tensorflow():
    """The data side reads prediction inputs; it must not pull in training."""
    loaded = modules_loaded_by(
        "from emnist_estimators.images import read_prediction_inputs",
        (
            "tensorflow",
            "keras",
            "emnist_estimators.estimators",
            "emnist_estimators.cli",
        ),
    )
    assert loaded == []


# --- what phones and scanners write (issue 30, items 6 and 11) --------------------
def l_glyph(size=(60, 90)) -> Image.Image:
    """A dark, upright 'L' on white paper; asymmetric, so a turn shows."""
    page = np.full(size[::-1], 255, np.uint8)
    page[10:80, 12:22] = 0
    page[70:80, 12:50] = 0
    return Image.fromarray(page)


def test_a_phone_jpeg_stored_sideways_is_read_upright(tmp_path):
    """EXIF orientation 6: stored turned a quarter, shown upright by viewers."""
    upright = l_glyph()
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to show
    path = tmp_path / "phone.jpg"
    sideways.convert("RGB").save(path, format="JPEG", quality=95, exif=exif)

    grey = read_image(path)
    assert grey.shape == (90, 60)  # height, width of the upright picture
    assert np.abs(grey - np.asarray(upright, np.float32)).mean() < 8
    # predict and serve decode alike
    from emnist_estimators.serve import decode_image

    np.testing.assert_array_equal(decode_image(path.read_bytes()), grey)
    # the model's input is the upright character (it was the turned one)
    seen = to_emnist(grey).ravel().astype(float)
    want = to_emnist(np.asarray(upright, np.float32)).ravel().astype(float)
    assert np.corrcoef(seen, want)[0, 1] > 0.95


def test_a_16_bit_grey_png_is_scaled_by_its_bit_depth(tmp_path):
    """A mid-grey stroke (32768) on white (65535): clipped at 255, it vanished."""
    page = np.full((40, 30), 65535, np.uint16)
    page[5:35, 12:18] = 32768
    path = tmp_path / "scan16.png"
    Image.fromarray(page).save(path)
    assert Image.open(path).mode.startswith("I")  # a 16-bit grey picture

    grey = read_image(path)
    assert grey[0, 0] == 255 and abs(grey[20, 15] - 127.5) < 0.01
    X = to_emnist(grey)
    assert not is_blank(X.reshape(1, 784))[0] and X.max() == 255
    from emnist_estimators.serve import decode_image

    np.testing.assert_array_equal(decode_image(path.read_bytes()), grey)


def test_only_our_refusal_shows_for_a_picture_over_pillows_warning_size(tmp_path):
    """100 megapixels: over Pillow's warning size (89M), under its error (179M)."""
    import warnings

    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(10_000, 10_000))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(DataFormatError, match="10000x10000 pixels"):
            read_image(path)
    assert [str(w.message) for w in seen] == []
