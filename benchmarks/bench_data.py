"""Data loading: our IDX path vs the original report's pandas/float64 path.

For each dataset, in fresh child processes, alternating:

- ``idx cold``: gzip IDX -> upright uint8 .npy cache (memory-mapped), labels;
- ``idx warm``: the cached .npy memory-mapped again (open, then one full pass);
- ``csv uint8``: our CSV reader (pandas C parser straight to uint8 chunks);
- ``pandas float64``: the report's ``pd.read_csv`` of the same data as CSV,
  then ``/ 255`` as float64;
- ``inflate zlib`` / ``inflate isal``: decompressing the gzip images file
  alone, in the readers' 4 MiB chunks, with zlib and with ISA-L (why the
  package depends on ``isal``).

Datasets: the real Fashion-MNIST training set (60,000) and, with ``--full``, a
generated file of EMNIST bymerge size (814,255 images: real bymerge test
images tiled when ../shared/data is present). Goals: idx cold >= 20x faster
and >= 8x less peak memory than pandas/float64; cached load < 0.1 s for
balanced size (112,800 images).

Run: ``python -m benchmarks.bench_data [--full] [--repeats N]``
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._child import mark_baseline
from benchmarks._harness import (
    NO_TRAINING,
    SHARED_DATA,
    WORK,
    Case,
    alternate,
    median_of,
    write_results,
)

# Each case below runs in its own child process (benchmarks/_child.py) and
# returns its numbers; "seconds" and "nbytes" in every one, "open_seconds" in
# "idx warm".

_CHUNK = 1 << 22  # the readers' 4 MiB


def inflate(*, images: str, library: str, **_files) -> dict:
    """Decompress the gzip ``images`` file, already read, with zlib or ISA-L."""
    if library == "isal":
        from isal import isal_zlib as zlib_like
    elif library == "zlib":
        import zlib as zlib_like
    else:
        raise ValueError(f"library must be 'zlib' or 'isal', not {library!r}")
    mark_baseline()
    # The file's bytes count above the baseline, as they always did here.
    with open(images, "rb") as fh:
        blob = fh.read()
    t = time.perf_counter()
    inflater = zlib_like.decompressobj(31)  # gzip framing
    n = 0
    for start in range(0, len(blob), _CHUNK):
        n += len(inflater.decompress(blob[start : start + _CHUNK]))
    n += len(inflater.flush())
    return {"seconds": time.perf_counter() - t, "n": n, "nbytes": n}


def _import_loaders() -> None:
    """Import everything the loading cases use, so that none of it is measured.

    pandas too, in every loading case: the baseline is the same for all four.
    """
    import pandas  # noqa: F401

    import emnist_estimators.datasets  # noqa: F401
    import emnist_estimators.datasets.cache  # noqa: F401


def idx_cold(*, images: str, labels: str, **_files) -> dict:
    """Gzip IDX -> the upright .npy cache (memory-mapped), with the labels."""
    _import_loaders()
    from emnist_estimators.datasets import read_idx
    from emnist_estimators.datasets.cache import cache_path_for, load_cached_images

    mark_baseline()
    cache_path_for(Path(images)).unlink(missing_ok=True)
    t = time.perf_counter()
    X = load_cached_images(Path(images))
    y = read_idx(labels)
    seconds = time.perf_counter() - t
    return {
        "seconds": seconds,
        "n": len(y),
        "nbytes": X.nbytes,
        "checksum": int(X[-1].sum()),
    }


def idx_warm(*, images: str, labels: str, **_files) -> dict:
    """The cached .npy memory-mapped again: open, then one full pass."""
    _import_loaders()
    from emnist_estimators.datasets import read_idx
    from emnist_estimators.datasets.cache import load_cached_images

    mark_baseline()
    load_cached_images(Path(images))  # make sure the cache exists
    t = time.perf_counter()
    X = load_cached_images(Path(images))
    y = read_idx(labels)
    open_seconds = time.perf_counter() - t
    X.sum(dtype=np.uint64)  # one full pass over the pages
    return {
        "seconds": time.perf_counter() - t,
        "open_seconds": open_seconds,
        "n": len(y),
        "nbytes": X.nbytes,
    }


def csv_uint8(*, csv: str, **_files) -> dict:
    """Our CSV reader: pandas' C parser straight to uint8 chunks."""
    _import_loaders()
    from emnist_estimators.datasets import read_emnist_csv

    mark_baseline()
    t = time.perf_counter()
    X, y = read_emnist_csv(csv)
    return {"seconds": time.perf_counter() - t, "n": len(y), "nbytes": X.nbytes}


def pandas_float64(*, csv: str, **_files) -> dict:
    """The original report's path: ``pd.read_csv``, then ``/ 255`` as float64."""
    _import_loaders()
    import pandas as pd

    mark_baseline()
    t = time.perf_counter()
    df = pd.read_csv(csv, header=None)
    y = df[0].values
    X = df.iloc[:, 1:].values / 255.0
    return {"seconds": time.perf_counter() - t, "n": len(y), "nbytes": X.nbytes}


def _cases(images_gz, labels_gz, csv) -> dict[str, Case]:
    """The measurements of one dataset, by the row names of the results."""
    files = {"images": str(images_gz), "labels": str(labels_gz), "csv": str(csv)}
    return {
        "inflate zlib": Case("bench_data.inflate", {**files, "library": "zlib"}),
        "inflate isal": Case("bench_data.inflate", {**files, "library": "isal"}),
        "idx cold": Case("bench_data.idx_cold", files),
        "idx warm": Case("bench_data.idx_warm", files),
        "csv uint8": Case("bench_data.csv_uint8", files),
        "pandas float64": Case("bench_data.pandas_float64", files),
    }


def _write_csv(path, X, y, chunk=20_000):
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        for start in range(0, len(y), chunk):
            block = np.column_stack(
                [y[start : start + chunk], X[start : start + chunk]]
            )
            np.savetxt(fh, block, fmt="%d", delimiter=",")
    tmp.replace(path)


def fashion_files():
    from emnist_estimators.datasets import read_idx

    src = SHARED_DATA / "fashion-mnist"
    if not src.is_dir():
        return None
    out = WORK / "fashion"
    out.mkdir(parents=True, exist_ok=True)
    images, labels = (
        out / "train-images-idx3-ubyte.gz",
        out / "train-labels-idx1-ubyte.gz",
    )
    for name in (images.name, labels.name):
        if not (out / name).exists():
            shutil.copy(src / name, out / name)
    csv = out / "fashion-train.csv"
    if not csv.exists():
        X = read_idx(images).reshape(-1, 784)
        _write_csv(csv, X, read_idx(labels))
    return images, labels, csv


def bymerge_size_files(n=814_255):
    from emnist_estimators.datasets import read_idx, write_idx

    out = WORK / "bymerge-size"
    out.mkdir(parents=True, exist_ok=True)
    images, labels, csv = (
        out / "big-images-idx3-ubyte.gz",
        out / "big-labels-idx1-ubyte.gz",
        out / "big.csv",
    )
    if images.exists() and labels.exists() and csv.exists():
        return images, labels, csv
    real = SHARED_DATA / "emnist" / "emnist-bymerge-test-images-idx3-ubyte.gz"
    if real.exists():
        base = read_idx(real)
        base_y = read_idx(real.with_name("emnist-bymerge-test-labels-idx1-ubyte.gz"))
    else:  # synthetic strokes: compress about like real glyphs
        rng = np.random.default_rng(0)
        base = np.zeros((10_000, 28, 28), np.uint8)
        for i in range(len(base)):
            r, c = rng.integers(4, 20, 2)
            base[i, r : r + 8, 4:24] = rng.integers(100, 256)
            base[i, 4:24, c : c + 3] = 255
        base_y = rng.integers(0, 47, len(base)).astype(np.uint8)
    reps = -(-n // len(base))
    X = np.tile(base, (reps, 1, 1))[:n]
    y = np.tile(base_y, reps)[:n]
    with gzip.open(images, "wb", compresslevel=6) as fh:
        fh.write(bytes([0, 0, 8, 3]) + np.array([n, 28, 28], ">u4").tobytes())
        fh.write(X.tobytes())
    write_idx(labels, y)
    _write_csv(csv, X.reshape(n, 784), y)
    return images, labels, csv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="add the bymerge-size file")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    datasets = []
    fashion = fashion_files()
    if fashion:
        datasets.append(("Fashion-MNIST train (60,000)", fashion, args.repeats))
    else:
        print("Fashion-MNIST not found under", SHARED_DATA, file=sys.stderr)
    if args.full:
        datasets.append(("bymerge size (814,255)", bymerge_size_files(), 1))
    rows = []
    for label, files, repeats in datasets:
        runs = alternate(_cases(*files), repeats)
        ref_t = median_of(runs["pandas float64"], "seconds")
        ref_m = median_of(runs["pandas float64"], "peak_rss_mib") - median_of(
            runs["pandas float64"], "baseline_rss_mib"
        )
        for case, case_runs in runs.items():
            seconds = median_of(case_runs, "seconds")
            mem = median_of(case_runs, "peak_rss_mib") - median_of(
                case_runs, "baseline_rss_mib"
            )
            row = {
                "dataset": label,
                "path": case,
                "seconds (median of runs)": round(seconds, 3),
                "peak RSS above baseline MiB": round(mem, 1),
                "result MiB": round(case_runs[0]["nbytes"] / 2**20, 1),
                "speed-up vs pandas": round(ref_t / seconds, 1),
                "memory ratio pandas/this": round(ref_m / max(mem, 1e-9), 1),
                "runs": len(case_runs),
            }
            if "open_seconds" in case_runs[0]:
                row["open only s"] = round(median_of(case_runs, "open_seconds"), 4)
            rows.append(row)
    write_results(
        "bench_data",
        rows,
        precision=NO_TRAINING,
        command="python -m benchmarks.bench_data " + " ".join(argv or sys.argv[1:]),
        notes=(
            "Peak RSS counts pages of the memory-mapped cache that were touched. "
            "'idx warm' includes one full pass over the data; 'open only' is the "
            "memory-map itself. 'inflate' rows decompress the gzip images file "
            "only (file already read into memory); compare them with each other."
        ),
    )


if __name__ == "__main__":
    main()
