"""The .npy cache: identity, integrity under verify, leftovers, crash safety."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, SMALL_MNIST_N, glyph_images

from emnist_estimators import load_emnist
from emnist_estimators.datasets import (
    _tempfiles,
    cache,
    clean_cache,
    loader,
    summary,
    write_idx,
)
from emnist_estimators.datasets.cache import load_cached_images
from emnist_estimators.exceptions import DataFormatError

N = SMALL_MNIST_N  # images in the small_mnist fixture's split
IMAGES = "emnist-mnist-test-images-idx3-ubyte.gz"
LABELS = "emnist-mnist-test-labels-idx1-ubyte.gz"


def _write(folder: Path, upright: np.ndarray, labels=None) -> Path:
    """Write an mnist test split (stored transposed, as EMNIST does)."""
    write_idx(folder / IMAGES, upright.transpose(0, 2, 1))
    if labels is None:
        labels = (np.arange(len(upright)) % 10).astype(np.uint8)
    write_idx(folder / LABELS, labels)
    return folder / IMAGES


def _load(folder: Path, **kwargs):
    return load_emnist("mnist", "test", data_home=folder, download=False, **kwargs)


def _npy(folder: Path) -> Path:
    (found,) = folder.glob("*.npy")
    return found


def _sidecar(folder: Path) -> dict:
    (found,) = folder.glob("*.upright.json")
    return json.loads(found.read_text())


def _set_mtime_ns(path: Path, ns: int) -> None:
    os.utime(path, ns=(ns, ns))


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout)


# --- cache identity (issue 11, item 2) ---------------------------------------------
def test_sidecar_records_what_the_cache_was_built_from(tmp_path, small_mnist):
    source = _write(tmp_path, glyph_images(N, rng=0))
    _load(tmp_path)
    meta = _sidecar(tmp_path)
    st = source.stat()
    assert meta["cache_version"] == cache.CACHE_VERSION
    assert meta["source"]["size"] == st.st_size
    assert meta["source"]["mtime_ns"] == st.st_mtime_ns
    assert meta["source"]["sha256"] == loader.file_sha256(source)
    assert meta["shape"] == [N, 28, 28]
    assert meta["npy"]["size"] == _npy(tmp_path).stat().st_size


def _write_raw(folder: Path, upright: np.ndarray) -> Path:
    """Uncompressed files: a changed pixel keeps the file's size."""
    raw = folder / IMAGES.removesuffix(".gz")
    write_idx(raw, upright.transpose(0, 2, 1))
    write_idx(folder / LABELS, (np.arange(len(upright)) % 10).astype(np.uint8))
    return raw


@pytest.mark.parametrize("size", ["same", "other"])
def test_replaced_source_with_older_mtime_is_rebuilt(tmp_path, small_mnist, size):
    """``cp -p`` of another file: older mtime, other content -> new images."""
    old = glyph_images(N, rng=0)
    new = glyph_images(N, rng=1)
    if size == "same":
        source = _write_raw(tmp_path, old)
        _load(tmp_path, verify=False)
        _write_raw(tmp_path, new)
    else:
        source = _write(tmp_path, old)
        _load(tmp_path, verify=False)
        size_before = source.stat().st_size
        _write(tmp_path, new)
        assert source.stat().st_size != size_before
    _set_mtime_ns(source, 1_000_000_000)  # 1970: older than the cache
    for verify in (False, True):
        np.testing.assert_array_equal(_load(tmp_path, verify=verify).images, new)


def test_verify_catches_a_same_size_same_mtime_replacement(tmp_path, small_mnist):
    """Only the source's sha256 tells these apart, and verify=True checks it."""
    old = glyph_images(N, rng=0)
    source = _write_raw(tmp_path, old)
    _load(tmp_path)
    st = source.stat()
    new = old.copy()
    new[0, 5, 9] ^= 0xFF
    _write_raw(tmp_path, new)
    _set_mtime_ns(source, st.st_mtime_ns)
    assert source.stat().st_size == st.st_size
    np.testing.assert_array_equal(_load(tmp_path, verify=True).images, new)


@pytest.mark.parametrize("damage", ["flip", "zero"])
def test_damaged_cache_is_never_served_under_verify(tmp_path, small_mnist, damage):
    upright = glyph_images(N, rng=0)
    _write(tmp_path, upright)
    _load(tmp_path)
    npy = _npy(tmp_path)
    st = npy.stat()
    data = bytearray(npy.read_bytes())
    if damage == "flip":
        for i in (200, 1000, len(data) - 1):
            data[i] ^= 0x5A
    else:
        data[128:] = bytes(len(data) - 128)
    npy.write_bytes(bytes(data))
    _set_mtime_ns(npy, st.st_mtime_ns)  # hide the edit from the cheap checks
    np.testing.assert_array_equal(_load(tmp_path, verify=True).images, upright)


def test_edited_cache_is_rebuilt_without_verify(tmp_path, small_mnist):
    """An edit that changes the .npy's mtime is caught by the cheap checks."""
    upright = glyph_images(N, rng=0)
    _write(tmp_path, upright)
    _load(tmp_path)
    npy = _npy(tmp_path)
    data = bytearray(npy.read_bytes())
    data[500:900] = bytes(400)
    npy.write_bytes(bytes(data))
    np.testing.assert_array_equal(_load(tmp_path, verify=False).images, upright)


@pytest.mark.parametrize("verify", [False, True])
def test_edited_row_count_in_cache_header(tmp_path, small_mnist, verify):
    """A .npy header edited from N to fewer rows never gives X and y apart."""
    upright = glyph_images(N, rng=0)
    _write(tmp_path, upright)
    _load(tmp_path)
    npy = _npy(tmp_path)
    st = npy.stat()
    data = npy.read_bytes()
    edited = data.replace(f"({N}, 28, 28)".encode(), f"({N // 4}, 28, 28) ".encode())
    assert len(edited) == len(data) + 1
    header_end = data.index(b"\n") + 1
    edited = edited[: header_end - 1] + edited[header_end:]  # keep the header length
    npy.write_bytes(edited)
    _set_mtime_ns(npy, st.st_mtime_ns)
    X, y = _load(tmp_path, verify=verify, return_X_y=True)
    assert len(X) == len(y) == N
    np.testing.assert_array_equal(X.reshape(-1, 28, 28), upright)


def test_cache_without_sidecar_is_rebuilt(tmp_path, small_mnist):
    """A cache of an older version (no sidecar) is not trusted."""
    upright = glyph_images(N, rng=0)
    _write(tmp_path, upright)
    _load(tmp_path)
    npy = _npy(tmp_path)
    np.save(npy, np.zeros((N, 28, 28), np.uint8))
    next(tmp_path.glob("*.upright.json")).unlink()
    np.testing.assert_array_equal(_load(tmp_path, verify=False).images, upright)


def test_warm_open_reads_no_source_data_and_hashes_nothing(
    tmp_path, small_mnist, monkeypatch
):
    """Without verify a cached open costs a few system calls, not a pass over data."""
    _write(tmp_path, glyph_images(N, rng=0))
    _load(tmp_path, verify=False)

    def forbidden(*args, **kwargs):
        raise AssertionError("a warm cached open must not read or hash the data")

    monkeypatch.setattr(cache, "iter_idx_blocks", forbidden)
    monkeypatch.setattr(cache, "_payload_sha256", forbidden)
    monkeypatch.setattr(loader, "file_sha256", forbidden)
    images = load_cached_images(tmp_path / IMAGES)
    assert isinstance(images, np.memmap) and images.shape == (N, 28, 28)


def test_full_disk_while_caching_still_loads(tmp_path, small_mnist, monkeypatch):
    """No room for the cache: the data comes from memory, no temp is left."""
    import errno

    upright = glyph_images(N, rng=0)
    _write(tmp_path, upright)
    real = cache._write_npy

    def full(tmp, *args):
        real(tmp, *args)
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    monkeypatch.setattr(cache, "_write_npy", full)
    np.testing.assert_array_equal(_load(tmp_path).images, upright)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([IMAGES, LABELS])


def test_count_against_labels_for_direct_callers(tmp_path):
    source = _write(tmp_path, glyph_images(N))
    with pytest.raises(DataFormatError, match=f"{N} images but {N + 1:,} were"):
        load_cached_images(source, expected_count=N + 1)
    assert not list(tmp_path.glob("*.npy"))


# --- wrong-size sources and leftovers (issue 11, item 3) -----------------------------
@pytest.mark.parametrize("change", ["truncate", "append"])
def test_wrong_size_idx_gets_no_cache(tmp_path, small_mnist, change):
    raw = tmp_path / IMAGES.removesuffix(".gz")
    write_idx(raw, glyph_images(N).transpose(0, 2, 1))
    write_idx(tmp_path / LABELS, (np.arange(N) % 10).astype(np.uint8))
    want = raw.stat().st_size
    data = raw.read_bytes()
    raw.write_bytes(data[:-100] if change == "truncate" else data + b"extra")
    got = raw.stat().st_size
    with pytest.raises(DataFormatError) as info:
        _load(tmp_path)
    msg = str(info.value)
    assert str(raw) in msg and f"{want:,}" in msg and f"{got:,}" in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([raw.name, LABELS])


def test_source_truncated_after_caching_is_an_error(tmp_path, small_mnist):
    """A good cache must not hide a source that became invalid (mtime kept)."""
    source = _write(tmp_path, glyph_images(N))
    _load(tmp_path)
    st = source.stat()
    source.write_bytes(source.read_bytes()[: st.st_size // 2])
    _set_mtime_ns(source, st.st_mtime_ns - 10**9)
    with pytest.raises(DataFormatError, match="truncated|corrupt"):
        _load(tmp_path, verify=False)


def _temp(folder: Path, target: str, pid: int, host: str | None = None) -> Path:
    tag = f"{pid}" if host is None else f"{pid}@{host}"
    path = folder / f".{target}.{tag}.tmp"
    path.write_bytes(b"partial")
    return path


def test_stale_temps_of_dead_writers_are_removed_on_next_load(tmp_path, small_mnist):
    _write(tmp_path, glyph_images(N))
    target = f"{IMAGES}.v{cache.CACHE_VERSION}.upright.npy"
    host = _tempfiles.host()
    dead = _dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [
            _temp(tmp_path, target, dead, host),
            _temp(tmp_path, f"{IMAGES}.v1.upright.npy", dead),  # version 1 naming
            _temp(tmp_path, f"{IMAGES}.v2.upright.json", dead, host),
        ]
        kept = [
            _temp(tmp_path, target, live.pid, host),  # its writer still runs
            _temp(tmp_path, target, dead, "another-host"),  # may run elsewhere
            _temp(tmp_path, "notes.txt", dead, host),  # not a name of ours
        ]
        (tmp_path / ".notes.1.tmp").write_text("user file")
        kept.append(tmp_path / ".notes.1.tmp")
        _load(tmp_path)
        assert not [p for p in stale if p.exists()]
        assert all(p.exists() for p in kept)
    finally:
        live.kill()
        live.wait()


def test_clean_cache_removes_only_our_files(tmp_path, small_mnist):
    data = tmp_path / "data"
    data.mkdir()
    _write(data, glyph_images(N))
    ro = tmp_path / "ro"
    ro.mkdir()
    write_idx(ro / "x-images-idx3-ubyte.gz", glyph_images(5))
    _load(data)
    os.chmod(ro, 0o555)
    try:
        load_cached_images(ro / "x-images-idx3-ubyte.gz")  # goes to the user cache
    finally:
        os.chmod(ro, 0o755)
    user = Path(os.environ["EMNIST_ESTIMATORS_CACHE"])
    stale = _temp(data, f"{IMAGES}.v2.upright.npy", _dead_pid(), _tempfiles.host())
    (data / "notes.npy").write_bytes(b"mine")
    (data / ".x.123.tmp").write_bytes(b"mine")
    before = sorted(p.name for p in data.iterdir())
    ours = {
        p
        for p in [*data.iterdir(), *user.rglob("*")]
        if p.is_file() and (".upright." in p.name or p == stale)
    }
    assert len(ours) >= 5  # two caches, two sidecars, one stale temp
    listed = clean_cache(data, dry_run=True)
    assert set(listed) >= {p for p in ours if p.parent == data}
    assert sorted(p.name for p in data.iterdir()) == before  # dry run deletes nothing
    removed = clean_cache(data)
    assert set(removed) == set(listed)
    assert not [p for p in ours if p.exists()]
    assert sorted(p.name for p in data.iterdir()) == sorted(
        [IMAGES, LABELS, "notes.npy", ".x.123.tmp"]
    )
    assert clean_cache(data) == []
    assert _load(data).images.shape == (N, 28, 28)  # rebuilt on the next load


def test_data_info_shows_hidden_temps(tmp_path, small_mnist):
    _write(tmp_path, glyph_images(N))
    _load(tmp_path)
    _temp(tmp_path, f"{IMAGES}.v2.upright.npy", 4_000_000, _tempfiles.host())
    kinds = {Path(r["path"]).name: r["kind"] for r in summary.data_info(tmp_path)}
    assert kinds[f".{IMAGES}.v2.upright.npy.4000000@{_tempfiles.host()}.tmp"] == "temp"
    assert kinds[f"{IMAGES}.v2.upright.json"] == "cache"


# --- crash safety: SIGKILL the cache writer (issue 11, must show) -------------------
_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from emnist_estimators.datasets import cache, readers

    point, source = sys.argv[1], Path(sys.argv[2])
    readers._CHUNK = 1 << 14  # many small blocks: "during the write" is real

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    real_blocks, real_replace = cache.iter_idx_blocks, os.replace
    replaces = []

    def blocks(*args, **kwargs):
        if point == "before-write":
            die()
        for i, block in enumerate(real_blocks(*args, **kwargs)):
            if point == "during-write" and i == 3:
                die()
            yield block

    def replace(src, dst):
        replaces.append(dst)
        if point == "before-rename" or (
            point == "during-sidecar" and len(replaces) == 2
        ):
            die()
        real_replace(src, dst)

    def write_sidecar(*args, **kwargs):
        if point == "before-sidecar":
            die()
        real_sidecar(*args, **kwargs)

    real_sidecar = cache._write_sidecar
    cache.iter_idx_blocks, os.replace = blocks, replace
    cache._write_sidecar = write_sidecar
    cache.load_cached_images(source)
    die()  # "after": the cache is complete
    """
)

POINTS = [
    "before-write",
    "during-write",
    "before-rename",
    "before-sidecar",
    "during-sidecar",
    "after",
]


@pytest.mark.parametrize(
    "point, earlier_cache",
    [(p, True) for p in POINTS] + [("during-write", False), ("before-sidecar", False)],
)
def test_sigkill_while_writing_the_cache(tmp_path, small_mnist, point, earlier_cache):
    """Kill the writer at each step; later loads give the source, no temp survives."""
    n = 300  # 300 images: several 16 KiB blocks
    if earlier_cache:  # a cache of an earlier version of the file is in place
        _write(tmp_path, glyph_images(n, rng=1))
        load_cached_images(tmp_path / IMAGES)
    upright = glyph_images(n, rng=2)
    source = _write(tmp_path, upright)
    _set_mtime_ns(source, 10**9)  # older than the earlier cache, like cp -p
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, point, str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = list(tmp_path.glob(".*.tmp"))
    assert bool(left) == (point not in ("before-sidecar", "after")), left
    for verify in (None, loader._checked_sha256, None):
        images = load_cached_images(source, verify_source=verify, expected_count=n)
        np.testing.assert_array_equal(images, upright)
        assert not list(tmp_path.glob(".*.tmp"))
    meta = _sidecar(tmp_path)
    assert meta["source"]["sha256"] == loader.file_sha256(source)


def test_temp_names_carry_pid_and_host(tmp_path):
    path = cache._temp_path(tmp_path / "x.v2.upright.npy")
    assert path.name == f".x.v2.upright.npy.{os.getpid()}@{_tempfiles.host()}.tmp"
    assert cache._TEMP_RE.match(path.name)


# --- one cache per source (issue 13, item 3) -----------------------------------------
@pytest.fixture
def own_user_cache(tmp_path, monkeypatch) -> Path:
    """An empty user cache of the test's own: what lands there is ours."""
    user = tmp_path / "user-cache"
    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(user))
    return user


@pytest.fixture
def data(tmp_path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    _write(folder, glyph_images(N, rng=0))
    yield folder
    os.chmod(folder, 0o755)


def _user_files(user: Path) -> list[Path]:
    return [p for p in user.rglob("*") if p.is_file()] if user.exists() else []


@pytest.mark.parametrize("verify", [True, False])
def test_valid_cache_beside_read_only_source_is_served(
    data, own_user_cache, small_mnist, verify
):
    """No duplicate in the user cache: the cache already there is memory-mapped."""
    _load(data, verify=verify)  # built beside the source while it was writable
    beside = _npy(data)
    mtime = beside.stat().st_mtime_ns
    os.chmod(data, 0o555)  # read-only from now on (the loader says so even for root)
    again = _load(data, verify=verify)
    assert isinstance(again.images, np.memmap)
    assert Path(again.images.filename) == beside
    assert beside.stat().st_mtime_ns == mtime
    assert _user_files(own_user_cache) == []
    np.testing.assert_array_equal(again.images, glyph_images(N, rng=0))


def test_valid_user_cache_is_served_when_the_folder_turns_writable(
    data, own_user_cache, small_mnist
):
    os.chmod(data, 0o555)
    _load(data)  # built in the user cache
    (cached,) = own_user_cache.rglob("*.npy")
    os.chmod(data, 0o755)
    again = _load(data)
    assert Path(again.images.filename) == cached
    assert not list(data.glob("*.npy"))


def test_stale_cache_beside_read_only_source_is_not_served(
    data, own_user_cache, small_mnist
):
    _load(data)
    beside = _npy(data)
    sidecar = json.loads(next(data.glob("*.upright.json")).read_text())
    source = data / IMAGES
    _write(data, 255 - glyph_images(N, rng=0))  # new source: the cache is stale
    assert source.stat().st_mtime_ns != sidecar["source"]["mtime_ns"]
    os.chmod(data, 0o555)
    rebuilt = _load(data, verify=False)
    np.testing.assert_array_equal(rebuilt.images, 255 - glyph_images(N, rng=0))
    (cached,) = own_user_cache.rglob("*.npy")
    again = _load(data, verify=False)  # the new cache, not the stale one
    assert Path(again.images.filename) == cached != beside
    np.testing.assert_array_equal(again.images, rebuilt.images)


@pytest.mark.parametrize("read_only", [False, True])
def test_a_new_cache_is_announced_once_at_info_level(
    data, own_user_cache, small_mnist, read_only, caplog
):
    if read_only:
        os.chmod(data, 0o555)
    with caplog.at_level("INFO", logger="emnist_estimators.datasets.cache"):
        _load(data)
        _load(data)
    records = [r for r in caplog.records if r.name.endswith("datasets.cache")]
    assert len(records) == 1 and records[0].levelname == "INFO"
    (cached,) = [*data.glob("*.npy"), *own_user_cache.rglob("*.npy")]
    message = records[0].getMessage()
    assert str(cached) in message and IMAGES in message
    assert (f"{data} is read-only" in message) == read_only


# --- what decides a rebuild (issue 16) ---
def _edit_keeping_stat(path: Path, old: bytes, new: bytes) -> None:
    """Replace bytes of ``path`` (same length), keeping its size and mtime."""
    st = path.stat()
    data = path.read_bytes()
    assert len(old) == len(new) and old in data
    path.write_bytes(data.replace(old, new, 1))
    _set_mtime_ns(path, st.st_mtime_ns)


@pytest.mark.parametrize(
    "old, new",
    [
        (b"'fortran_order': False", b"'fortran_order': True "),
        (f"({N}, 28, 28)".encode(), f"({N // 2}, 28, 28)".encode()),
        (b"'descr': '|u1'", b"'descr': '|i1'"),  # int8: 255 would read as -1
    ],
    ids=["fortran-order", "row-count", "dtype"],
)
def test_a_cache_whose_npy_header_disagrees_is_rebuilt(tmp_path, small_mnist, old, new):
    """Size and mtime still match the sidecar, but the header does not
    describe the images asked for: the cache is rebuilt, not served."""
    upright = glyph_images(N, rng=0)
    _write(tmp_path, upright)
    _load(tmp_path)
    npy = _npy(tmp_path)
    _edit_keeping_stat(npy, old, new.ljust(len(old)))
    np.testing.assert_array_equal(_load(tmp_path, verify=False).images, upright)
    repaired = np.load(npy, mmap_mode="r")  # the file was written anew
    assert repaired.shape == (N, 28, 28) and not np.isfortran(repaired)
    assert repaired.dtype == np.uint8


@pytest.mark.parametrize("field, value", [("shape", [N, 28, 29]), ("dtype", "<u2")])
def test_a_cache_whose_sidecar_disagrees_is_rebuilt(
    tmp_path, small_mnist, field, value
):
    upright = glyph_images(N, rng=0)
    _write(tmp_path, upright)
    _load(tmp_path)
    sidecar = next(tmp_path.glob("*.upright.json"))
    meta = json.loads(sidecar.read_text())
    meta[field] = value
    sidecar.write_text(json.dumps(meta))
    np.testing.assert_array_equal(_load(tmp_path, verify=False).images, upright)
    assert json.loads(sidecar.read_text())[field] != value  # written anew


def test_a_cache_whose_sidecar_is_not_an_object_is_rebuilt(tmp_path, small_mnist):
    upright = glyph_images(N, rng=0)
    _write(tmp_path, upright)
    _load(tmp_path)
    sidecar = next(tmp_path.glob("*.upright.json"))
    sidecar.write_text("[]")
    np.testing.assert_array_equal(_load(tmp_path, verify=False).images, upright)
    assert json.loads(sidecar.read_text())["shape"] == [N, 28, 28]


def test_a_verified_warm_load_serves_the_cache_without_converting(
    tmp_path, small_mnist, monkeypatch
):
    """verify=True hashes the source and the cached payload, and then
    serves the cache: it does not convert the source again."""
    upright = glyph_images(N, rng=0)
    _write(tmp_path, upright)
    _load(tmp_path, verify=True)

    def rebuild(*args, **kwargs):
        raise AssertionError("a verified warm load rebuilt the cache")

    monkeypatch.setattr(cache, "iter_idx_blocks", rebuild)
    images = _load(tmp_path, verify=True).images
    np.testing.assert_array_equal(images, upright)


def test_without_the_cache_nothing_is_written(tmp_path, small_mnist):
    upright = glyph_images(N, rng=0)
    source = _write(tmp_path, upright)
    before = sorted(os.listdir(tmp_path))
    images = load_cached_images(source, use_cache=False)
    assert type(images) is np.ndarray  # in memory, not a memory map
    np.testing.assert_array_equal(images, upright)
    assert sorted(os.listdir(tmp_path)) == before


def test_with_no_writable_cache_folder_the_images_are_read_into_memory(
    data, own_user_cache, small_mnist
):
    """Neither the data folder nor the user cache may be written: the split
    still loads, read into memory, and nothing is written anywhere."""
    folders = sorted({c.parent for c in cache.cache_candidates(data / IMAGES)})
    assert data in folders and any(own_user_cache in f.parents for f in folders)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    before = sorted(p for folder in folders for p in folder.iterdir())
    try:
        for folder in folders:
            os.chmod(folder, 0o555)  # read-only (the loader says so even for root)
        images = _load(data).images
    finally:
        for folder in folders:
            os.chmod(folder, 0o755)
    assert type(images) is np.ndarray  # in memory, not a memory map
    np.testing.assert_array_equal(images, glyph_images(N, rng=0))
    assert sorted(p for folder in folders for p in folder.iterdir()) == before


@pytest.mark.parametrize("route", ["cold-cache", "no-cache", "full-disk"])
def test_a_source_changed_between_its_check_and_its_read_is_refused(
    tmp_path, small_mnist, monkeypatch, route
):
    """The source changed between its check and its read (the check's sha256
    is not the one of the bytes read): an error, on every route."""
    source = _write(tmp_path, glyph_images(N, rng=0))
    if route == "full-disk":

        def full(tmp, *args):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

        monkeypatch.setattr(cache, "_write_npy", full)
    with pytest.raises(DataFormatError, match="changed while it was being read"):
        load_cached_images(
            source, use_cache=route != "no-cache", verify_source=lambda p: "0" * 64
        )
    assert not list(tmp_path.glob("*.npy"))
