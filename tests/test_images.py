"""Image files to EMNIST-style pixels: decoding limits and blank pictures."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from emnist_estimators.exceptions import DataFormatError
from emnist_estimators.images import MAX_IMAGE_PIXELS, is_blank, read_image, to_emnist

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
