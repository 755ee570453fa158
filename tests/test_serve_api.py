"""serve_api.py: the server's JSON API - request bodies to pixels, refusals.

Uploaded bytes decode as ``predict`` reads the same file; a huge canvas or a
format that is not a picture is refused from its header; a body's fields are
checked and refused with the status and the reason the server answers.
(The endpoint over HTTP: tests/test_serve.py.)
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from http import HTTPStatus

import numpy as np
import pytest
from helpers import REPO, glyph_picture, png_bytes
from PIL import Image

from emnist_estimators.exceptions import DataFormatError
from emnist_estimators.images import read_image, to_emnist
from emnist_estimators.serve_api import (
    DEFAULT_TOP,
    MAX_BODY_BYTES,
    RequestError,
    body_length,
    decode_image,
    parse_request,
)


# --- uploaded pictures -------------------------------------------------------------
@pytest.mark.parametrize(
    "mode, fmt",
    [("L", "PNG"), ("RGB", "PNG"), ("RGBA", "PNG"), ("LA", "PNG"), ("P", "PNG")]
    + [("RGB", "JPEG"), ("RGB", "BMP"), ("P", "GIF")],
)
def test_decoding_bytes_matches_reading_the_file(mode, fmt, tmp_path):
    """decode_image mirrors images.read_image (which only reads paths)."""
    img = glyph_picture("RGBA" if mode in ("LA", "P") else mode)
    if mode == "LA":
        img = img.convert("LA")
    if mode == "P":  # palette with a transparent index
        img = glyph_picture("RGB").convert("P", palette=Image.Palette.ADAPTIVE)
        img.info["transparency"] = 0
    path = tmp_path / f"x.{fmt.lower()}"
    img.save(path, format=fmt)
    np.testing.assert_array_equal(decode_image(path.read_bytes()), read_image(path))


DECODE_AND_MEASURE = """
import sys
from emnist_estimators.serve import decode_image
def peak_mb():  # VmHWM: ru_maxrss would include the parent's RSS at fork
    with open("/proc/self/status") as fh:
        return int(next(ln for ln in fh if ln.startswith("VmHWM:")).split()[1]) // 1024
data = open(sys.argv[1], "rb").read()
print("BASE_MB", peak_mb())
try:
    decode_image(data)
except Exception as exc:
    print(type(exc).__name__, exc)
print("PEAK_MB", peak_mb())
print("TENSORFLOW", "tensorflow" in sys.modules)
"""


def test_a_small_upload_of_a_huge_canvas_is_refused_before_decoding(tmp_path):
    """81 MB of grey (324 MB as floats) in an 80 KB PNG: read from the header."""
    path = tmp_path / "bomb.png"
    Image.new("L", (9000, 9000), 0).save(path, optimize=True)
    # fits in one request
    assert len(base64.b64encode(path.read_bytes())) < MAX_BODY_BYTES
    proc = subprocess.run(
        [sys.executable, "-c", DECODE_AND_MEASURE, str(path)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "DataFormatError" in proc.stdout and "9000x9000" in proc.stdout
    base = int(proc.stdout.split("BASE_MB")[1].split()[0])
    assert int(proc.stdout.split("PEAK_MB")[1].split()[0]) - base < 30, proc.stdout
    # the server module does not load TensorFlow by itself
    assert "TENSORFLOW False" in proc.stdout


def test_decode_image_refuses_a_non_image():
    with pytest.raises(DataFormatError, match="not a PNG, JPEG"):
        decode_image(b"GIF89a but not really")


# --- request bodies ----------------------------------------------------------------
def test_a_body_of_pixels_or_a_picture_gives_the_row_predict_takes():
    flat = [0] * 783 + [255]
    X, top = parse_request(json.dumps({"pixels": flat}).encode(), 10)
    assert X.shape == (1, 784) and X.dtype == np.uint8 and top == DEFAULT_TOP
    np.testing.assert_array_equal(X[0], flat)
    rows = [flat[i : i + 28] for i in range(0, 784, 28)]  # 28 rows of 28
    X_rows, top = parse_request(json.dumps({"pixels": rows, "top": 2}).encode(), 3)
    np.testing.assert_array_equal(X_rows, X)
    assert top == 2
    X, top = parse_request(json.dumps({"pixels": [0.5] * 784}).encode(), 3)
    assert X.dtype == np.float32 and top == 3  # top: at most the classes
    picture = glyph_picture()
    for image in (
        base64.b64encode(png_bytes(picture)).decode(),
        "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode(),
    ):
        X, _ = parse_request(json.dumps({"image": image}).encode(), 10)
        grey = decode_image(png_bytes(picture))
        np.testing.assert_array_equal(X, to_emnist(grey).reshape(1, 784))


@pytest.mark.parametrize(
    "body, words",
    [
        (b"[0]", "JSON object"),
        (b'{"pixels": [NaN]}', "NaN is not a number"),
        (b'{"pixel": []}', "Unknown field(s) ['pixel']"),
        (b'{"top": 2}', "exactly one of 'image'"),
        (json.dumps({"pixels": [0] * 784, "top": 11}).encode(), "1..10, got 11"),
        (json.dumps({"pixels": [0] * 784, "top": True}).encode(), "got True"),
        (json.dumps({"pixels": [0] * 783}).encode(), "783 values; give 784"),
        (json.dumps({"pixels": [0] * 783 + [256]}).encode(), "from 0 to 256"),
        (json.dumps({"pixels": [0] * 783 + [True]}).encode(), "found true"),
        (b'{"image": "not base64!"}', "not valid base64"),
        (b'{"image": "data:image/png,abc"}', "without ';base64'"),
    ],
)
def test_a_wrong_body_is_a_400_saying_what_is_wrong(body, words):
    with pytest.raises(RequestError) as info:
        parse_request(body, 10)
    assert info.value.status == HTTPStatus.BAD_REQUEST
    assert isinstance(info.value, ValueError)
    assert words in str(info.value)


def test_the_body_length_is_checked_before_the_body_is_read():
    json_type = {"content-type": "application/json; charset=utf-8"}
    assert body_length({**json_type, "content-length": "120"}) == 120
    refusals = [  # headers, status, words of the reason
        ({"content-type": "text/plain", "content-length": "3"}, 415, "JSON"),
        (json_type, 411, "Content-Length header is required"),
        ({**json_type, "content-length": "ten"}, 400, "'ten' is not a byte count"),
        ({**json_type, "content-length": "-5"}, 400, "'-5' is not a byte count"),
        ({**json_type, "content-length": str(MAX_BODY_BYTES + 1)}, 413, "1,048,577"),
    ]
    for headers, status, words in refusals:
        with pytest.raises(RequestError) as info:
            body_length(headers)
        assert info.value.status == status, headers
        assert words in str(info.value), headers
