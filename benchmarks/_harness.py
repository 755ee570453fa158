"""Helpers shared by the benchmarks: child-process runs, medians, result files.

Every measurement runs in a fresh Python process (``benchmarks/_child.py``)
so its peak memory (VmHWM) belongs to that measurement alone; A and B
alternate and medians are reported, because these machines are noisy.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(
    os.environ.get("EMNIST_SHARED_DATA", REPO.parent / "shared" / "data")
)
WORK = Path(os.environ.get("EMNIST_BENCH_WORK", REPO / "benchmarks" / ".work"))
# Where write_results() puts its files; point it elsewhere to try a benchmark
# without replacing the committed results.
RESULTS = Path(os.environ.get("EMNIST_BENCH_RESULTS", REPO / "benchmarks" / "results"))


@dataclass(frozen=True)
class Case:
    """One measurement: a function of a benchmark module and its arguments.

    ``function`` is named from the ``benchmarks`` package, e.g.
    ``"bench_wrappers.fit_ours"``; ``kwargs`` must be JSON-serialisable.
    """

    function: str
    kwargs: dict = field(default_factory=dict)


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


def bymerge_test_files() -> dict[str, str]:
    """Paths of the real EMNIST bymerge test split (images, labels); exits if absent.

    The only full EMNIST image file in the shared data: stored transposed,
    as NIST publishes it.
    """
    folder = SHARED_DATA / "emnist"
    images = folder / "emnist-bymerge-test-images-idx3-ubyte.gz"
    if not images.is_file():
        sys.exit(f"needs the real EMNIST bymerge test files in {folder}")
    return {
        "images": str(images),
        "labels": str(folder / "emnist-bymerge-test-labels-idx1-ubyte.gz"),
    }


def run_case(case: Case, *, timeout: float = 3600) -> dict:
    """Run ``case`` in a fresh Python process and return what it reported."""
    command = ["-m", "benchmarks._child", case.function, json.dumps(case.kwargs)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, *command],
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


def alternate(cases: dict[str, Case], repeats: int) -> dict[str, list[dict]]:
    """Run each case ``repeats`` times, interleaved A, B, A, B..."""
    out: dict[str, list[dict]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            out[name].append(run_case(case))
    return out


def median_call_seconds(fn, calls: int, warmup: int = 2) -> float:
    """Median wall seconds of ``fn()`` over ``calls`` calls, after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
