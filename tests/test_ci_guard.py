"""Under CI=true a missing real-data folder fails the run instead of skipping."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import REPO


@pytest.mark.parametrize(
    "ci, code, word",
    [("true", 1, "CI=true but real data folder"), ("", 0, "real data folder")],
)
def test_missing_real_data_fails_only_under_ci(tmp_path, ci, code, word):
    env = {
        **os.environ,
        "CI": ci,
        "EMNIST_SHARED_DATA": str(tmp_path / "absent"),
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_datasets_real.py::test_every_mapping_file",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            "--no-header",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == code, proc.stdout[-2000:]
    assert word in proc.stdout
