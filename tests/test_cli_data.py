"""The data commands (cli/data.py): ``data info`` says what a folder holds
and how to get what it lacks."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from helpers import (
    SMALL_MNIST_N,
    ArchiveServer,
    bar_images,
    glyph_images,
    run_cli,
    run_cli_json,
    write_emnist_split,
    write_idx_folder,
)

from emnist_estimators import load_emnist
from emnist_estimators.cli import main
from emnist_estimators.datasets import EMNIST_SPLITS, loader, write_idx
from emnist_estimators.datasets import download as download_mod

N = SMALL_MNIST_N  # images in the small_mnist fixture's split


def test_data_info_says_how_to_get_data(tmp_path, capsys, monkeypatch):
    """`data info` on a missing folder lists every split as missing, the files
    each needs, and how to get them."""
    from emnist_estimators.cli import main

    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(tmp_path / "cache"))
    assert main(["data", "info", "--data-home", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert "(the folder does not exist)" in out
    assert "mnist    test  missing" in out
    assert "emnist-mnist-test-images-idx3-ubyte.gz" in out
    assert "data download --split balanced" in out and "EMNIST_MIRROR_URL" in out


def test_data_info_heading_columns_and_user_cache(
    tmp_path, small_mnist, capsys, monkeypatch
):
    """Issue 31, item 5: the file list comes after its heading, with column
    names, and a cache in the user cache is never called "no cache yet"."""
    from emnist_estimators.cli import main

    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(tmp_path / "user-cache"))
    shared, copy = tmp_path / "shared", tmp_path / "copy"
    for folder in (shared, copy):
        folder.mkdir()
        write_emnist_split(folder, glyph_images(N), np.zeros(N, np.uint8))
    os.chmod(shared, 0o555)  # read-only: the cache goes to the user cache
    try:
        load_emnist("mnist", "test", data_home=shared, download=False)
    finally:
        os.chmod(shared, 0o755)
    assert not list(shared.glob("*.npy"))

    def info(folder):
        assert main(["data", "info", "--data-home", str(folder)]) == 0
        lines = capsys.readouterr().out.splitlines()
        (row,) = [line for line in lines if line.startswith("  mnist    test")]
        return lines, row

    lines, row = info(shared)
    assert lines[0].startswith(f"Files in {shared} and the user cache")
    assert lines[1].split() == ["bytes", "path", "kind"]
    assert any(".upright.npy" in line and "cache" in line for line in lines[2:])
    assert "cache" in row and "MiB" in row and "no cache" not in row
    assert "split    part  status" in "\n".join(lines)
    _, row = info(copy)  # same file names, another folder: not its cache
    assert "no cache of these files yet" in row and "another folder" in row


# --- data download / data info --checksums -------------------------------------------
N_DOWNLOAD = 60


MAPPING = "".join(f"{i} {48 + i}\n" for i in range(10)).encode()


def _split_archive(tmp_path) -> tuple[bytes, dict[str, bytes]]:
    """A gzip.zip-like archive with a generated mnist test split and one more."""
    X, _ = bar_images(N_DOWNLOAD, rng=6)
    y = (np.arange(N_DOWNLOAD) % 10).astype(np.uint8)
    write_idx(tmp_path / "i.gz", X.transpose(0, 2, 1))
    write_idx(tmp_path / "l.gz", y)
    members = {
        "gzip/emnist-mnist-test-images-idx3-ubyte.gz": (tmp_path / "i.gz").read_bytes(),
        "gzip/emnist-mnist-test-labels-idx1-ubyte.gz": (tmp_path / "l.gz").read_bytes(),
        "gzip/emnist-mnist-mapping.txt": MAPPING,
        "gzip/emnist-mnist-train-labels-idx1-ubyte.gz": b"\0" * 5000,  # not wanted
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue(), members


@pytest.fixture
def generated_official(tmp_path, monkeypatch):
    """Make a generated archive's members the 'official' ones, sizes included."""
    payload, members = _split_archive(tmp_path)
    sha = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    size = {name: len(data) for name, data in members.items()}
    monkeypatch.setattr(download_mod, "expected_sha256", sha.get)
    monkeypatch.setattr(download_mod, "official_size", size.get)
    monkeypatch.setattr(loader, "expected_sha256", sha.get)
    sizes = dict(EMNIST_SPLITS)
    sizes["mnist"] = (N_DOWNLOAD, N_DOWNLOAD, 10)
    monkeypatch.setattr(loader, "EMNIST_SPLITS", sizes)
    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(tmp_path / "user-cache"))
    return payload, members


def test_data_download_then_info_checksums(tmp_path, generated_official, capsys):
    payload, members = generated_official
    home = tmp_path / "home"
    wanted = [name for name in members if "train" not in name]
    with ArchiveServer(payload) as server:
        result = run_cli_json(
            "data",
            "download",
            "--split",
            "mnist",
            "--subset",
            "test",
            "--data-home",
            home,
            "--url",
            server.url,
        )
        assert result["n_samples"] == N_DOWNLOAD and result["n_classes"] == 10
        assert result["folder"] == str(home)
        for name in wanted:  # the files landed, byte for byte, and nothing else
            assert (home / name.removeprefix("gzip/")).read_bytes() == members[name]
        assert not (home / "emnist-mnist-train-labels-idx1-ubyte.gz").exists()
        requests = len(server.log)
        again = run_cli_json(
            "data",
            "download",
            "--split",
            "mnist",
            "--subset",
            "test",
            "--data-home",
            home,
            "--url",
            server.url,
        )
        assert again["n_samples"] == N_DOWNLOAD
        assert len(server.log) == requests  # files present: nothing fetched again

    rows = run_cli_json("data", "info", "--data-home", home, "--checksums")
    data_rows = {r["path"]: r for r in rows if r["kind"] != "cache"}
    assert set(data_rows) == {str(home / n.removeprefix("gzip/")) for n in wanted}
    assert all(r["sha256_ok"] is True for r in data_rows.values())
    unchecked = run_cli_json("data", "info", "--data-home", home)
    assert all(r["sha256_ok"] is None for r in unchecked)
    capsys.readouterr()

    code, text = run_cli("data", "info", "--data-home", home, "--checksums")
    assert code == 0 and text.count("sha256 ok") == 3 and "MISMATCH" not in text
    labels = home / "emnist-mnist-test-labels-idx1-ubyte.gz"
    blob = bytearray(labels.read_bytes())
    blob[-1] ^= 0xFF  # one byte differs from the recorded file
    labels.write_bytes(bytes(blob))
    code, text = run_cli("data", "info", "--data-home", home, "--checksums")
    assert code == 1
    (bad,) = [line for line in text.splitlines() if "MISMATCH" in line]
    assert str(labels) in bad and text.count("sha256 ok") == 2


def test_data_info_checksums_on_official_files(emnist_dir, tmp_path, monkeypatch):
    """NIST's real files pass against the published table; a changed copy fails."""
    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(tmp_path / "user-cache"))
    home = tmp_path / "home"
    home.mkdir()
    names = [
        "emnist-mnist-test-images-idx3-ubyte.gz",
        "emnist-mnist-test-labels-idx1-ubyte.gz",
        "emnist-mnist-mapping.txt",
    ]
    for name in names:
        shutil.copyfile(emnist_dir / name, home / name)
    rows = run_cli_json("data", "info", "--data-home", home, "--checksums")
    assert {r["path"]: r["sha256_ok"] for r in rows} == {
        str(home / n): True for n in names
    }
    with open(home / names[1], "ab") as fh:
        fh.write(b"\0")
    code, text = run_cli("data", "info", "--data-home", home, "--checksums")
    assert code == 1
    assert [line.split()[1] for line in text.splitlines() if "MISMATCH" in line] == [
        str(home / names[1])
    ]


def test_data_info_json(tmp_path, capsys, monkeypatch):
    # its own empty user cache: other tests' caches must not show up here
    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(tmp_path / "cache"))
    assert main(["data", "info", "--data-home", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_data_clean_removes_caches_and_stale_temps_only(tmp_path, capsys, monkeypatch):
    """Issue 11.3: caches and temps of killed writers can be listed and removed."""
    # data clean also empties the user cache: give it one that only this test
    # fills (the session's is shared with tests that cache real data)
    monkeypatch.setenv("EMNIST_ESTIMATORS_CACHE", str(tmp_path / "user-cache"))
    from emnist_estimators.datasets.cache import load_cached_images

    data = write_idx_folder(tmp_path / "bars", n_train=30, n_test=9)
    load_cached_images(data / "train-images-idx3-ubyte.gz")
    caches = sorted(p.name for p in data.iterdir() if ".upright." in p.name)
    assert caches  # the .npy and its sidecar
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    stale = data / f".{caches[0]}.{dead}.tmp"  # a writer killed mid-write
    stale.write_bytes(b"\0" * 1000)
    originals = sorted(p.name for p in data.iterdir() if p.name.endswith("ubyte.gz"))
    assert main(["data", "clean", "--data-home", str(data), "--dry-run", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["would_remove"]
    assert sorted(os.path.basename(p) for p in listed) == sorted([*caches, stale.name])
    assert stale.exists()  # dry run removes nothing
    assert main(["data", "clean", "--data-home", str(data)]) == 0
    assert "removed 3 file(s)" in capsys.readouterr().out
    assert sorted(p.name for p in data.iterdir()) == originals
