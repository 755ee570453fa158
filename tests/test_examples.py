"""Every script in examples/ runs end to end in its quick mode, quietly and tidily."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, glyph_images

EXAMPLES = sorted(
    p.name for p in (REPO / "examples").glob("*.py") if not p.name.startswith("_")
)
# Kept on purpose: the optuna example resumes its study on the next run.
KEPT_IN_TMP = {"optuna_tuning.py": {"emnist-example-study.db"}}
# "UserWarning: ...", "ExperimentalWarning: ..." as Python's warnings print them.
PY_WARNING = re.compile(r"\b\w*Warning: ")


def test_examples_are_found():
    assert len(EXAMPLES) >= 5


def _run(name: str, tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run an example in its own working folder, with its own empty TMPDIR."""
    (tmp_path / "tmp").mkdir()
    (tmp_path / "cwd").mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MPLBACKEND": "Agg",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TMPDIR": str(tmp_path / "tmp"),
        **env,
    }
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / name), *args],
        cwd=tmp_path / "cwd",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# Each example trains real models for up to half a minute: CI runs them in
# its slow stage (pytest -m slow), keeping the default run short.
@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name, tmp_path):
    """Quick mode: a result, no Python warning (optuna's search-space warnings
    included), and no temporary file left behind (issue 13, item 6)."""
    proc = _run(name, tmp_path, "--quick")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "accuracy" in proc.stdout
    assert PY_WARNING.findall(proc.stderr) == [], proc.stderr[-3000:]
    left = {p.name for p in (tmp_path / "tmp").iterdir()}
    assert left <= KEPT_IN_TMP.get(name, set())
    assert list((tmp_path / "cwd").iterdir()) == []


def _refused_url() -> str:
    """A loopback URL nothing listens on: the download fails at once, offline."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/gzip.zip"


def test_emnist_without_its_train_split_says_so_in_one_line(tmp_path):
    """Test files only (as in a shared folder): one line, exit 1, no traceback."""
    from emnist_estimators.datasets import write_idx

    data = tmp_path / "emnist"
    data.mkdir()
    images = glyph_images(8).transpose(0, 2, 1)
    write_idx(data / "emnist-mnist-test-images-idx3-ubyte.gz", images)
    write_idx(data / "emnist-mnist-test-labels-idx1-ubyte.gz", np.zeros(8, np.uint8))
    proc = _run(
        "quickstart_pipeline.py",
        tmp_path,
        "--emnist",
        "mnist",
        EMNIST_DATA=str(data),
        EMNIST_MIRROR_URL=_refused_url(),
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    (line,) = [s for s in proc.stderr.splitlines() if "quickstart_pipeline.py:" in s]
    assert "needs the EMNIST mnist train split" in line and str(data) in line
    assert "emnist-estimators data download --split mnist --subset train" in line
    assert "EMNIST_DATA" in line
