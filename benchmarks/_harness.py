"""Helpers shared by the benchmarks: child-process runs, medians, result files.

Every measurement runs in a fresh Python process so peak memory (ru_maxrss)
belongs to that measurement alone; A and B alternate and medians are
reported, because these machines are noisy.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SHARED_DATA = Path(
    os.environ.get("EMNIST_SHARED_DATA", REPO.parent / "shared" / "data")
)
WORK = Path(os.environ.get("EMNIST_BENCH_WORK", REPO / "benchmarks" / ".work"))

_CHILD_PRELUDE = """
import json, os, resource, sys, time
def _rss_kib():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
def _peak_kib():
    # VmHWM belongs to this process image; ru_maxrss would include the
    # parent's memory, inherited across fork+exec.
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
def report(**values):
    values["peak_rss_mib"] = _peak_kib() / 1024
    values["baseline_rss_mib"] = BASELINE / 1024
    print("RESULT " + json.dumps(values), flush=True)
"""


_DATA_SETUP = """
import numpy as np
from sklearn.model_selection import train_test_split
from emnist_estimators import load_emnist, EmnistMLP, EmnistCNN
from emnist_estimators.datasets import read_idx
if {dataset!r} == "emnist":
    X, y = load_emnist("bymerge", "test", data_home={emnist!r}, download=False,
                       return_X_y=True, orientation={orientation!r})
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.15, stratify=y,
                                              random_state=0)
elif {dataset!r} == "balanced":  # official train/test, from EMNIST_DATA
    X_tr, y_tr = load_emnist("balanced", "train", download=False, return_X_y=True,
                             orientation={orientation!r})
    X_te, y_te = load_emnist("balanced", "test", download=False, return_X_y=True,
                             orientation={orientation!r})
else:
    f = {fashion!r}
    X_tr = read_idx(f + "/train-images-idx3-ubyte.gz").reshape(-1, 784)
    y_tr = read_idx(f + "/train-labels-idx1-ubyte.gz")
    X_te = read_idx(f + "/t10k-images-idx3-ubyte.gz").reshape(-1, 784)
    y_te = read_idx(f + "/t10k-labels-idx1-ubyte.gz")
"""


def accuracy_data_setup(dataset: str, orientation: str = "upright") -> str:
    """Child-process code defining X_tr, X_te, y_tr, y_te for an accuracy run.

    'emnist': the EMNIST protocol (official bymerge test split, 85/15
    stratified, random_state=0); 'fashion': Fashion-MNIST's 60k/10k files;
    'balanced': EMNIST balanced's official train/test files from EMNIST_DATA.
    """
    return _DATA_SETUP.format(
        dataset=dataset,
        orientation=orientation,
        emnist=str(SHARED_DATA / "emnist"),
        fashion=str(SHARED_DATA / "fashion-mnist"),
    )


def fashion_files() -> dict[str, str]:
    """Paths of the real Fashion-MNIST IDX files; exits with a message if absent."""
    folder = SHARED_DATA / "fashion-mnist"
    if not folder.is_dir():
        sys.exit(f"needs the real Fashion-MNIST files in {folder}")
    return {
        "images": str(folder / "train-images-idx3-ubyte.gz"),
        "labels": str(folder / "train-labels-idx1-ubyte.gz"),
        "test_images": str(folder / "t10k-images-idx3-ubyte.gz"),
        "test_labels": str(folder / "t10k-labels-idx1-ubyte.gz"),
    }


def run_child(setup: str, body: str, *, timeout: float = 3600) -> dict:
    """Run ``setup`` (imports), note the RSS baseline, run ``body``; parse RESULT."""
    code = (
        _CHILD_PRELUDE
        + textwrap.dedent(setup)
        + "\nBASELINE = _rss_kib()\n"
        + textwrap.dedent(body)
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(
        f"benchmark child failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )


def alternate(cases: dict[str, tuple[str, str]], repeats: int) -> dict[str, list[dict]]:
    """Run each case ``repeats`` times, interleaved A, B, A, B..."""
    out: dict[str, list[dict]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (setup, body) in cases.items():
            out[name].append(run_child(setup, body))
    return out


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def machine() -> dict:
    import numpy

    info = {
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu": _cpu_name(),
        "numpy": numpy.__version__,
    }
    for mod in ("tensorflow", "keras", "sklearn", "scikeras", "pandas", "optuna"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional in some benchmarks
            pass
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_results(
    name: str,
    rows: list[dict],
    *,
    command: str,
    notes: str = "",
    meta: dict | None = None,
) -> Path:
    """Write ``results/<name>.json`` and ``results/<name>.md``.

    ``meta`` (machine and versions) defaults to this process's; pass the
    stored one to re-render a results file.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = meta or machine()
    payload = {
        "benchmark": name,
        "command": command,
        "machine": meta,
        "rows": rows,
        "notes": notes,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    # Lists (e.g. learning curves) go to the JSON file only.
    nested = {k for row in rows for k, v in row.items() if isinstance(v, (list, dict))}
    columns = [
        k for k in dict.fromkeys(k for row in rows for k in row) if k not in nested
    ]
    lines = [
        f"# {name}",
        "",
        f"Command: `{command}`  ",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in meta.items()),
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    if notes:
        lines += ["", notes]
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return path


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
