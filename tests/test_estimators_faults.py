"""Hostile and mistaken input to the estimators: saved-model files, pixels, labels.

Every fault must end in the package's error class with a message that names
the file or value and the fix, before any memory blows up or a wrong answer
comes back.
"""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pandas as pd
import pytest
from helpers import REPO, bar_images, write_members, zip_members

from emnist_estimators import EmnistMLP, load_model
from emnist_estimators.exceptions import DataFormatError

STATE = "emnist_estimators.json"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small fitted MLP on raw uint8 pixels, saved, and its training data."""
    X, y = bar_images(300, 0)
    clf = EmnistMLP(
        hidden_layer_sizes=(16,),
        epochs=5,
        batch_size=32,
        learning_rate=3e-3,
        lr_schedule="constant",
        random_state=0,
    ).fit(X, y)
    path = tmp_path_factory.mktemp("saved") / "mlp.keras"
    clf.save(path)
    return path, clf, X, y


# --- zip bombs -----------------------------------------------------------------
def deflated_zeros(n_mib: int) -> tuple[bytes, int, int]:
    """A raw deflate stream of n_mib MiB of zeros (~1 KiB per MiB), size, CRC.

    A full flush resets the compressor, so every MiB compresses to the same
    block: building a 1 GiB member costs one MiB of compression.
    """
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    block = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(n_mib):
        crc = zlib.crc32(chunk, crc)
    return block * n_mib + comp.flush(), n_mib << 20, crc


def write_zip(path, members) -> None:
    """Write a zip of (name, stored bytes, method, declared size, crc) members.

    Written by hand so a member can be pre-compressed and declare any size.
    """
    central = []
    with open(path, "wb") as fh:
        for name, data, method, size, crc in members:
            offset, raw = fh.tell(), name.encode()
            head = (20, 0, method, 0, 0x21, crc, len(data), size, len(raw), 0)
            fh.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", *head) + raw + data)
            central.append(
                struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *head, 0, 0, 0, 0, offset)
                + raw
            )
        directory = b"".join(central)
        end = (0, 0, len(members), len(members), len(directory), fh.tell(), 0)
        fh.write(directory + struct.pack("<4s4H2LH", b"PK\x05\x06", *end))


def bomb(saved_path, dst, *, replace=None, declared=None, extra=None):
    """The saved model with ``replace`` swapped for (or ``extra`` added as) a
    member inflating to 1 GiB of zeros, declaring ``declared`` bytes."""
    body, size, crc = deflated_zeros(1024)
    members = []
    for name, data in zip_members(saved_path).items():
        if name == replace:
            members.append((name, body, zipfile.ZIP_DEFLATED, declared or size, crc))
        else:
            members.append(
                (name, data, zipfile.ZIP_STORED, len(data), zlib.crc32(data))
            )
    if extra:
        members.append((extra, body, zipfile.ZIP_DEFLATED, size, crc))
    write_zip(dst, members)
    return dst


_PEAK_RSS = """
import json, resource, sys
import numpy as np
from emnist_estimators import load_model

def peak_mib():
    # VmHWM, not ru_maxrss: Linux carries the parent's RSS at fork into a
    # child's ru_maxrss across exec, which would hide this process's peak.
    with open("/proc/self/status") as fh:
        line = next(ln for ln in fh if ln.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

genuine = load_model(sys.argv[1])  # TensorFlow and Keras warmed up
X = np.load(sys.argv[2])
base, out = peak_mib(), {}
for path in sys.argv[3:]:
    try:
        same = bool(np.array_equal(
            load_model(path).predict_proba(X), genuine.predict_proba(X)))
        out[path] = {"loaded": same}
    except Exception as exc:
        out[path] = {"error": type(exc).__name__, "message": str(exc)}
    out[path]["grew_mib"] = peak_mib() - base
print(json.dumps(out))
"""


def test_load_model_memory_bounded_on_zip_bombs(saved, tmp_path):
    path, _, X, _ = saved
    weights = len(zip_members(path)["model.weights.h5"])
    bombs = {
        "extra": bomb(path, tmp_path / "extra.keras", extra="junk.bin"),
        "weights": bomb(path, tmp_path / "w.keras", replace="model.weights.h5"),
        "config": bomb(path, tmp_path / "c.keras", replace="config.json"),
        # headers that understate the size: zipfile reads as much as it is given
        "weights_lie": bomb(
            path, tmp_path / "wl.keras", replace="model.weights.h5", declared=weights
        ),
        "state_lie": bomb(path, tmp_path / "sl.keras", replace=STATE, declared=500),
    }
    assert all(p.stat().st_size < 2 << 20 for p in bombs.values())
    np.save(tmp_path / "X.npy", X[:5])
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, str(path), str(tmp_path / "X.npy")]
        + [str(p) for p in bombs.values()],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    # reading any 1 GiB member whole would add >= 1024 MiB (before: 2 GiB)
    assert all(r["grew_mib"] < 64 for r in result.values()), result
    assert result[str(bombs["extra"])]["loaded"] is True  # never read
    for kind in ("weights", "config", "weights_lie", "state_lie"):
        r = result[str(bombs[kind])]
        assert r["error"] == "DataFormatError", r
        assert str(bombs[kind]) in r["message"]
    for kind in ("weights", "config"):
        r = result[str(bombs[kind])]
        assert "declares 1,073,741,824 bytes" in r["message"]
        assert "reads at most" in r["message"] and "bomb" in r["message"]
    assert "'model.weights.h5'" in result[str(bombs["weights_lie"])]["message"]
    assert f"'{STATE}'" in result[str(bombs["state_lie"])]["message"]


class _EndlessZeros(io.RawIOBase):
    """A member stream that ignores the size its header declares."""

    handed_out = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        buffer[:] = bytes(len(buffer))
        type(self).handed_out += len(buffer)
        return len(buffer)


def test_load_model_stops_reading_at_the_cap_even_if_zip_does_not(saved, monkeypatch):
    # CPython's zipfile stops at the declared size; a reader that does not
    # (or a header that lies) must still be cut off at the member's cap.
    path = saved[0]
    real_open = zipfile.ZipFile.open
    _EndlessZeros.handed_out = 0

    def open_member(self, name, *args, **kwargs):
        member = getattr(name, "filename", name)
        if self.filename == str(path) and member == STATE:
            return io.BufferedReader(_EndlessZeros())
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", open_member)
    from emnist_estimators.persistence import MEMBER_CAPS

    with pytest.raises(DataFormatError, match=f"'{STATE}' inflates past the cap"):
        load_model(path)
    assert _EndlessZeros.handed_out <= MEMBER_CAPS[STATE] + (2 << 20)


def test_save_then_load_ignores_foreign_members(saved, tmp_path):
    path, clf, X, _ = saved
    members = zip_members(path)
    members["assets/evil.py"] = b"raise SystemExit"
    write_members(tmp_path / "more.keras", members)
    loaded = load_model(tmp_path / "more.keras")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


# Keras warns inside its own code when this test calls Keras directly (not
# through our save/pickle, which tests/test_warnings.py checks stay silent).
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_load_model_keeps_keras_safe_mode(saved, tmp_path):
    # a network holding a Python lambda: Keras' safe mode must refuse it
    import keras

    path = saved[0]
    net = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Lambda(lambda x: x * 2.0),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    net.save(tmp_path / "lambda.keras")
    members = {**zip_members(path), **zip_members(tmp_path / "lambda.keras")}
    write_members(tmp_path / "evil.keras", members)
    with pytest.raises(DataFormatError, match="safe_mode"):
        load_model(tmp_path / "evil.keras")


# --- tampered state ------------------------------------------------------------
def _set(key, value):
    return lambda state: {**state, key: value}


TAMPERS = {
    "not json": lambda state: b"{not json",
    "not an object": lambda state: [1, 2],
    "class unhashable": _set("class", ["EmnistMLP"]),
    "params null": _set("params", None),
    "unknown param": lambda s: {**s, "params": {**s["params"], "bogus": 1}},
    "bad param value": lambda s: {**s, "params": {**s["params"], "dropout": "high"}},
    "random_state text": _set("random_state", "seed"),
    "fewer classes": lambda s: {**s, "classes": s["classes"][:-1]},
    "classes not a list": _set("classes", "abc"),
    "unsorted classes": lambda s: {**s, "classes": s["classes"][::-1]},
    "bad classes dtype": _set("classes_dtype", "no-such-dtype"),
    "classes dtype mismatch": _set("classes_dtype", "<M8[s]"),
    "n_features wrong": _set("n_features_in", 100),
    "feature names not str": _set("feature_names_in", [1, 2]),
    "input_scale text": _set("input_scale", "1/255"),
    "input_scale zero": _set("input_scale", 0),
    "dtype policy": _set("dtype_policy", "float64"),
    "history": _set("history", {"loss": "low"}),
    "n_iter": _set("n_iter", -1),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampered_state_is_refused_at_load(saved, tmp_path, tamper):
    path, _, X, _ = saved
    members = zip_members(path)
    new = TAMPERS[tamper](json.loads(members[STATE]))
    members[STATE] = new if isinstance(new, bytes) else json.dumps(new).encode()
    target = tmp_path / "tampered.keras"
    write_members(target, members)
    with pytest.raises(DataFormatError) as info:
        load_model(target)  # not later, at predict time
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert str(target) in message
    assert "not saved by emnist-estimators" in message or "save format" in message


def test_missing_member_is_named(saved, tmp_path):
    members = zip_members(saved[0])
    del members["model.weights.h5"]
    write_members(tmp_path / "m.keras", members)
    with pytest.raises(DataFormatError, match="'model.weights.h5' is missing"):
        load_model(tmp_path / "m.keras")


# --- pixels scaled unlike the training data ------------------------------------
def test_raw_fit_refuses_scaled_pixels_at_predict(saved):
    _, clf, X, y = saved
    assert clf.score(X, y) > 0.85
    fix = re.escape("X * 255")
    for scaled in (X / 255.0, (X / 255.0).astype(np.float32)):
        with pytest.raises(
            DataFormatError, match=f"fitted on raw pixels 0..255.*{fix}"
        ):
            clf.predict(scaled)
        with pytest.raises(ValueError, match="up to 1|no larger than 1"):
            clf.predict_proba(scaled[:3])
    # what remains valid: raw floats, uint8, and blank images of either kind
    np.testing.assert_array_equal(clf.predict(X.astype(float)), clf.predict(X))
    assert clf.predict(np.zeros((2, 784))).shape == (2,)
    assert clf.predict(np.zeros((2, 784), np.uint8)).shape == (2,)
    assert clf.predict(np.ones((2, 784), np.uint8)).shape == (2,)


def test_scaled_fit_refuses_raw_pixels_and_partial_fit_checks_both(saved):
    _, _, X, y = saved
    scaled = X / 255.0
    clf = EmnistMLP(hidden_layer_sizes=(8,), epochs=1, random_state=0).fit(scaled, y)
    with pytest.raises(DataFormatError, match="fitted on pixels scaled to"):
        clf.predict(X)
    raw = EmnistMLP(hidden_layer_sizes=(8,), random_state=0).partial_fit(X, y)
    with pytest.raises(DataFormatError, match="fitted on raw pixels"):
        raw.partial_fit(scaled, y)
    assert raw.n_iter_ == 1


# --- sample weights and labels -------------------------------------------------
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_negative_sample_weight_is_refused(saved, method):
    _, _, X, y = saved
    weights = np.ones(len(y))
    weights[3] = -0.5
    clf = EmnistMLP(hidden_layer_sizes=(8,), epochs=1)
    with pytest.raises(ValueError, match="Negative values .* `sample_weight`"):
        getattr(clf, method)(X, y, sample_weight=weights)
    assert not hasattr(clf, "model_")  # refused before any training


@pytest.mark.parametrize(
    "labels, match",
    [
        (
            np.array(["a", None, "b"] * 100, dtype=object),
            r"300 samples, at positions \[1, 4",
        ),
        (np.array([None, "a", "b"] * 100, dtype=object), r"at positions \[0, 3"),
        ([1, None, 2] * 100, r"no label \(None/NaN\) for 100 of 300"),
        (pd.array(["a", pd.NA, "b"] * 100, dtype="string"), "no label"),
        (pd.Series(["a", None, "b"] * 100, dtype=object), "no label"),
        (np.array(["a", 1, "b"] * 100, dtype=object), "mixes label types .int, str."),
    ],
)
def test_labels_missing_or_mixed_are_named(saved, labels, match):
    X = saved[2]
    with pytest.raises(DataFormatError, match=match) as info:
        EmnistMLP(epochs=1).fit(X, labels)
    assert isinstance(info.value, ValueError)  # sklearn code catches ValueError
