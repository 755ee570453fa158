"""persistence.py: the saved .keras file - atomic, size-capped, safe mode.

Hostile or mistaken files (zip bombs, foreign members, tampered or missing
members, other formats) end in ``DataFormatError`` naming the file and the
fix, before memory or disk blow up; a file saved without the optimizer is
smaller and predicts the same.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest
from helpers import (
    REPO,
    assert_tampered_state_refused,
    bar_images,
    rewrite_saved_state,
    write_members,
    zip_members,
)

from emnist_estimators import EmnistMLP, load_model
from emnist_estimators.exceptions import DataFormatError, EmnistEstimatorsError
from emnist_estimators.persistence import MEMBER_CAPS, STATE_ENTRY

STATE = STATE_ENTRY


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


# --- a state member that is not the estimator's JSON object ----------------------
# (the values inside it are the estimator's to check: tests/test_saved_state.py)
TAMPERS = {
    "not json": lambda state: b"{not json",
    "not an object": lambda state: [1, 2],
    "class unhashable": lambda state: {**state, "class": ["EmnistMLP"]},
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampered_state_is_refused_at_load(saved, tmp_path, tamper):
    assert_tampered_state_refused(saved[0], tmp_path, TAMPERS[tamper])


def test_missing_member_is_named(saved, tmp_path):
    members = zip_members(saved[0])
    del members["model.weights.h5"]
    write_members(tmp_path / "m.keras", members)
    with pytest.raises(DataFormatError, match="'model.weights.h5' is missing"):
        load_model(tmp_path / "m.keras")


# --- not a saved model, or another format ----------------------------------------
# Keras warns inside its own code when this test calls Keras directly (not
# through our save/pickle, which tests/test_warnings.py checks stay silent).
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_load_rejects_foreign_files(tmp_path):
    import keras

    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(EmnistEstimatorsError, match="not a saved emnist-estimators"):
        load_model(tmp_path / "junk.keras")
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    plain.save(tmp_path / "plain.keras")
    with pytest.raises(EmnistEstimatorsError, match="not written by emnist-estimators"):
        load_model(tmp_path / "plain.keras")
    with pytest.raises(EmnistEstimatorsError, match="not a saved"):
        load_model(tmp_path / "missing.keras")


def test_load_rejects_other_format_version(saved, tmp_path):
    rewrite_saved_state(saved[0], tmp_path / "new.keras", lambda s: s.update(format=99))
    with pytest.raises(EmnistEstimatorsError, match="save format 99"):
        load_model(tmp_path / "new.keras")


# --- include_optimizer=False ------------------------------------------------------
def test_a_file_saved_without_the_optimizer_is_smaller_and_predicts_the_same(
    tmp_path, recwarn
):
    X, y = bar_images(60, rng=0)
    clf = EmnistMLP(hidden_layer_sizes=(64,), epochs=1, random_state=0).fit(X, y)
    clf.save(tmp_path / "full.keras")
    clf.save(tmp_path / "small.keras", include_optimizer=False)
    # Adam keeps two moments per weight: the file without them is a third
    full, small = ((tmp_path / n).stat().st_size for n in ("full.keras", "small.keras"))
    assert small < 0.45 * full
    loaded = load_model(tmp_path / "small.keras")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # left out on purpose: Keras' "Skipping variable loading" is not shown
    assert not [w for w in recwarn if "optimizer" in str(w.message)]
    # and it still trains on: a warm start begins the optimizer afresh
    loaded.set_params(warm_start=True, epochs=1).fit(X, y)
    assert np.isfinite(loaded.predict_proba(X)).all()
