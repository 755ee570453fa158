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
        "bf16": cpu_bf16(),
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


def cpu_bf16() -> str:
    """Whether this CPU has native bfloat16 (AVX512-BF16 or AMX): "yes" or "no".

    Read from the CPU's flags, not from ``EMNIST_ESTIMATORS_CPU_BF16``: the
    column says what the machine is; the ``precision`` column says what ran.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return "yes" if {"avx512_bf16", "amx_bf16"} & flags else "no"
    except OSError:
        pass
    return "no"


#: The columns every result row has: the CPU it was measured on, whether that
#: CPU has native bfloat16, and the precision the row's numbers were computed
#: in. ``write_results`` fills them, so rows of different machines or
#: precisions are never compared by accident.
ROW_FIELDS = ("cpu", "bf16", "precision")
#: The ``precision`` of rows that train nothing (loading data, memory maps).
NO_TRAINING = "n/a (no training)"
#: What ``write_results`` writes where a benchmark named no precision; the
#: results test fails on it.
NOT_RECORDED = "not recorded"


def precision_label(requested: str = "auto", policy: str | None = None) -> str:
    """``"<requested> -> <dtype policy>"``, as a row's ``precision`` column says it.

    ``policy`` is the fitted estimator's ``dtype_policy_`` where the benchmark
    has it; without it, what ``requested`` resolves to in this process (the
    same machine and environment as the benchmark's children).
    """
    if policy is None:
        from emnist_estimators._utils import resolve_precision

        policy = resolve_precision(requested) or "float32"
    return f"{requested} -> {policy}"


def stamp_rows(rows: list[dict], meta: dict, precision: str | None) -> list[dict]:
    """``rows`` with the :data:`ROW_FIELDS` filled where a row lacks them.

    Rows kept from an earlier run already carry their own machine and keep it;
    new rows get ``meta``'s CPU and the benchmark's ``precision``.
    """
    bf16 = meta.get("bf16") or cpu_bf16()
    stamped = []
    for row in rows:
        row = dict(row)
        row.setdefault("cpu", meta.get("cpu") or _cpu_name())
        row.setdefault("bf16", bf16)
        row.setdefault("precision", precision or NOT_RECORDED)
        stamped.append(row)
    if any(row["precision"] == NOT_RECORDED for row in stamped):
        print(
            "warning: rows without a precision: pass write_results(precision=...) "
            "or give each row a 'precision'",
            file=sys.stderr,
        )
    return stamped


def write_results(
    name: str,
    rows: list[dict],
    *,
    command: str,
    precision: str | None = None,
    notes: str = "",
    meta: dict | None = None,
) -> Path:
    """Write ``results/<name>.json`` and ``results/<name>.md``.

    Every row gets the :data:`ROW_FIELDS` (see :func:`stamp_rows`):
    ``precision`` is the precision of rows that do not carry their own (e.g.
    ``precision_label("auto")``, or :data:`NO_TRAINING`). ``meta`` (machine
    and versions) defaults to this process's.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = meta or machine()
    payload = {
        "benchmark": name,
        "command": command,
        "machine": meta,
        "rows": stamp_rows(rows, meta, precision),
        "notes": notes,
    }
    _write_text(RESULTS / f"{name}.json", json.dumps(payload, indent=2) + "\n")
    text = render_markdown(payload)
    path = RESULTS / f"{name}.md"
    _write_text(path, text)
    print(text, end="")
    return path


def render_markdown(payload: dict) -> str:
    """The ``.md`` text of a results file's JSON payload."""
    rows, meta = payload["rows"], payload["machine"]
    # Lists (e.g. learning curves) go to the JSON file only.
    nested = {k for row in rows for k, v in row.items() if isinstance(v, (list, dict))}
    columns = [
        k for k in dict.fromkeys(k for row in rows for k in row) if k not in nested
    ]
    lines = [
        f"# {payload['benchmark']}",
        "",
        f"Command: `{payload['command']}`  ",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in meta.items()),
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    if payload.get("notes"):
        lines += ["", payload["notes"]]
    return "\n".join(lines) + "\n"


def rerender(folder: Path | None = None) -> list[Path]:
    """Rewrite every ``.md`` of ``folder`` (default: the results) from its ``.json``.

    Runs no benchmark and changes no number: the tables show the stored rows.
    Exits naming the file and row where a row lacks one of :data:`ROW_FIELDS`.
    """
    folder = folder or RESULTS
    written = []
    for source in sorted(folder.glob("*.json")):
        payload = json.loads(source.read_text())
        for i, row in enumerate(payload["rows"]):
            missing = [f for f in ROW_FIELDS if f not in row]
            if missing:
                sys.exit(
                    f"{source}: row {i} has no {', '.join(missing)}; add them to "
                    "the JSON (the machine and precision it was measured in)"
                )
        path = source.with_suffix(".md")
        _write_text(path, render_markdown(payload))
        written.append(path)
    return written


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Benchmark result files.")
    parser.add_argument(
        "--rerender",
        action="store_true",
        help="rewrite every results/*.md from its .json (runs no benchmark)",
    )
    args = parser.parse_args(argv)
    if not args.rerender:
        parser.error("nothing to do: pass --rerender")
    for path in rerender():
        print(path)


if __name__ == "__main__":
    main()
