"""Under CI=true a missing real-data folder fails the run instead of skipping."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import REPO, SLOW_WORKLOAD_ENV, slow_workload


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


@pytest.mark.parametrize(
    "bf16, forced, kind",
    [("0", "", "reduced"), ("1", "", "full"), ("0", "full", "full")],
)
def test_the_slow_stage_picks_a_workload_this_cpu_can_train(
    monkeypatch, bf16, forced, kind
):
    """Float32 training (no bfloat16) gets the reduced workload, and says why."""
    from emnist_estimators import _utils

    monkeypatch.setattr(_utils, "_gpu_compute_capabilities", lambda: [])
    monkeypatch.setenv(_utils.CPU_BF16_ENV, bf16)
    monkeypatch.setenv(SLOW_WORKLOAD_ENV, forced)
    chosen, why = slow_workload()
    assert chosen == kind
    assert ("float32" in why) == (kind == "reduced")
    monkeypatch.setenv(SLOW_WORKLOAD_ENV, "fast")
    with pytest.raises(ValueError, match="'full' or 'reduced'"):
        slow_workload()


def test_every_benchmark_result_row_names_its_cpu_bf16_and_precision():
    """No result row can be compared across machines or precisions by accident.

    Each row of benchmarks/results/*.json names the CPU it was measured on,
    whether that CPU has native bfloat16, and the precision it ran in (issue
    32 item 6), and each .md table shows those columns (``python -m
    benchmarks._harness --rerender`` rewrites the .md files from the JSON).
    """
    import json

    results = sorted((REPO / "benchmarks" / "results").glob("*.json"))
    assert results
    for path in results:
        rows = json.loads(path.read_text())["rows"]
        for i, row in enumerate(rows):
            where = f"{path.name} row {i}"
            assert row.get("cpu"), f"{where}: no cpu"
            assert row.get("bf16") in ("yes", "no"), f"{where}: bf16 not yes/no"
            assert row.get("precision") not in (None, "", "not recorded"), (
                f"{where}: no precision"
            )
        table = path.with_suffix(".md").read_text().split("\n| ", 1)[1]
        columns = [c.strip() for c in table.split("\n", 1)[0].split("|")]
        for column in ("cpu", "bf16", "precision"):
            assert column in columns, f"{path.stem}.md: no {column} column"
