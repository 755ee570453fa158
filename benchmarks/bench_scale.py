"""Training memory and epoch time vs data size; searches on Dask vs joblib (issue 17).

Part A - one training run per fresh child process, streaming and in-memory
side by side, on the first 100k, 400k and 814,255 images of a generated
file of EMNIST bymerge size (28x28 uint8, 47 classes: the real bymerge test
images tiled when ../shared/data is present; ``bench_data`` writes it once
as gzip IDX and ``load_cached_images`` memory-maps its ``.npy`` cache under
``benchmarks/.work/``):

- ``streaming``: today's ``est.fit(X_memmap, y)``, which reads each batch by
  index from the memory map (:class:`emnist_estimators.batches.IndexBatches`);
- ``in-memory``: what the estimators did before - the same compiled network
  (``_validate_new``, ``_new_network``, ``training.validation_rows``, ``_compile``, same
  seed), the split copied into RAM (``X[train]``, ``X[val]``) and handed to
  Keras' array adapter: ``model.fit(X_train, y_train, batch_size=...,
  shuffle=True, validation_data=(X_val, y_val))``.

The default EmnistMLP trains one whole epoch (hold-out included); the
default EmnistCNN stops after ``--cnn-batches`` training batches and
``_EVAL_BATCHES`` hold-out batches (an epoch at 814k takes too long on 2
cores), which is enough for the peak: the in-memory path copies the whole
split before the first batch. Reported: peak RSS (VmHWM), the peaks of its
anonymous and file-backed parts (sampled every 10 ms; the file part is the
memory map's pages, which the kernel may drop), fit and epoch seconds, the
steady-state seconds per batch, the slope of peak RSS vs images (MiB per
100k images, least squares over the sizes) and streaming/in-memory ratios.
Goals: streaming peak RSS at 814,255 images <= 1.5 GiB and nearly flat;
epoch time within 5% of the in-memory path.

Part B - the wall time of one GridSearchCV of 8 fits (4 candidates x cv=2,
``refit=False``) of a small EmnistMLP on 20,000 real images, in a fresh
child process each: joblib ``n_jobs=2`` (loky, the package's default
threads per worker, and one thread per worker), and under
``joblib.parallel_backend("dask")`` a ``distributed.LocalCluster`` of 1
worker x 2 threads and of 2 workers x 1 thread, TensorFlow's pools in each
worker sized to its share of the cores (``set_num_threads``) before its
first task. Process start-up (loky's executor, the cluster) is timed apart;
TensorFlow's import in the workers falls in the search for every engine.
Goal: Dask within 10% of local joblib.

Run: ``python -m benchmarks.bench_scale [--quick] [--parts A B]`` - about
20 minutes on 2 idle cores (24 measured on 2 shared ones), ``--quick``
(20k/50k/100k images, 15 CNN batches, the search on 5,000 images, single
runs) about 5. ``--cnn-batches``, ``--timing-pairs`` and
``--search-repeats`` override the run counts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks._child import mark_baseline
from benchmarks._harness import (
    Case,
    alternate,
    machine,
    median_of,
    precision_label,
    run_case,
    write_results,
)
from benchmarks.bench_data import bymerge_size_files

FULL_SIZES = (100_000, 400_000, 814_255)
QUICK_SIZES = (20_000, 50_000, 100_000)
_EVAL_BATCHES = 2  # hold-out batches the CNN runs after its training batches
_WARMUP_BATCHES = 5  # batches left out of the steady-state time (tracing)
_PER_BATCH = "streaming, one batch per read"  # the hand-off before issue 32
# Part B: 4 candidates x cv=2 = 8 fits.
_GRID = {"learning_rate": [1e-3, 3e-3], "dropout": [0.2, 0.4]}
_ENGINES = {
    # name: (backend, workers, threads per worker, TF threads per worker)
    "joblib loky n_jobs=2 (default threads)": ("loky", 2, 1, None),
    "joblib loky n_jobs=2, 1 TF thread each": ("loky", 2, 1, 1),
    "dask 1 worker x 2 threads": ("dask", 1, 2, 2),
    "dask 2 workers x 1 thread": ("dask", 2, 1, 1),
}


# --- data ---------------------------------------------------------------------
def _bymerge_memmap(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` images (memory-mapped uint8, flat) and labels."""
    from emnist_estimators.datasets import read_idx
    from emnist_estimators.datasets.cache import load_cached_images

    images, labels, _ = bymerge_size_files()
    X = load_cached_images(Path(images)).reshape(-1, 784)[:n]
    return X, read_idx(labels)[:n]


# --- part A: measurements in the child process ---------------------------------
class _RssSampler:
    """Peaks of RssAnon and RssFile, sampled in a thread (VmHWM has no split)."""

    def __init__(self, every: float = 0.01) -> None:
        self.every = every
        self.peak = {"RssAnon": 0, "RssFile": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        with open("/proc/self/status") as fh:
            for line in fh:
                key = line.split(":", 1)[0]
                if key in self.peak:
                    self.peak[key] = max(self.peak[key], int(line.split()[1]))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self) -> _RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def mib(self) -> dict:
        return {
            "peak_anon_mib": self.peak["RssAnon"] / 1024,
            "peak_file_mib": self.peak["RssFile"] / 1024,
        }


def _timer(batches: int | None):
    """A callback that times the batches and stops after ``batches`` (None: all).

    When it stops training early it also stops the hold-out pass after
    ``_EVAL_BATCHES`` batches, which Keras runs after a stopped epoch too.
    """
    import keras

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batch_ends: list[float] = []
            self.epoch_begin = self.epoch_end = None
            self.stopped = False

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_begin = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.batch_ends.append(time.perf_counter())
            if batches is not None and len(self.batch_ends) >= batches:
                self.model.stop_training = self.stopped = True

        def on_test_batch_end(self, batch, logs=None):
            if self.stopped and batch + 1 >= _EVAL_BATCHES:
                self.model.stop_evaluating = True

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_end = time.perf_counter()

        def times(self) -> dict:
            ends = self.batch_ends
            steady = ends[_WARMUP_BATCHES - 1 :]
            return {
                "batches": len(ends),
                "epoch_seconds": self.epoch_end - self.epoch_begin,
                "seconds_per_batch": (steady[-1] - steady[0]) / (len(steady) - 1),
            }

    return Timer()


def _estimator(model: str):
    from emnist_estimators import EmnistCNN, EmnistMLP

    cls = {"mlp": EmnistMLP, "cnn": EmnistCNN}[model]
    return cls(epochs=1, random_state=0)


def train_streaming(
    *, model: str, n: int, batches: int | None, per_batch: bool = False
) -> dict:
    """Today's path: ``est.fit`` on the memory map (child process).

    ``per_batch``: one Python call per batch into tf.data, as before issue 32
    (``IndexBatches.bytes_per_read`` of one byte), instead of one per read of
    several batches.
    """
    import keras  # noqa: F401 - imported before the baseline, as in the other case

    from emnist_estimators.batches import IndexBatches

    if per_batch:
        IndexBatches.bytes_per_read = 1
    X, y = _bymerge_memmap(n)
    est, timer = _estimator(model), _timer(batches)
    mark_baseline()
    with _RssSampler() as rss:
        t = time.perf_counter()
        est.fit(X, y, callbacks=[timer])
        seconds = time.perf_counter() - t
    return {"fit_seconds": seconds, **timer.times(), **rss.mib()}


def train_in_memory(*, model: str, n: int, batches: int | None) -> dict:
    """The former path: the split copied into RAM, Keras' array adapter.

    The network, compilation, hold-out rows and seed are the estimator's own
    (``base.BaseEmnistClassifier.fit``), so only the input path differs.
    """
    import keras  # noqa: F401

    from emnist_estimators._utils import resolve_seed, seeded
    from emnist_estimators.training import validation_rows

    X, y = _bymerge_memmap(n)
    est, timer = _estimator(model), _timer(batches)
    mark_baseline()
    with _RssSampler() as rss:
        t = time.perf_counter()
        est._validate_params()
        X2, y_enc, _, image_shape = est._validate_new(X, y, None, None)
        seed = resolve_seed(est.random_state)
        with seeded(seed):
            net = est._new_network(X2.shape[1], image_shape, seed)
            train, val = validation_rows(y_enc, est.validation_fraction, seed)
            est._compile(net, decay_steps=est.epochs * -(-len(train) // est.batch_size))
            net.fit(
                X2[train],
                y_enc[train],
                batch_size=est.batch_size,
                epochs=est.epochs,
                shuffle=True,
                validation_data=(X2[val], y_enc[val]),
                validation_batch_size=max(est.batch_size, 1024),
                verbose=0,
                callbacks=[timer],
            )
        seconds = time.perf_counter() - t
    return {"fit_seconds": seconds, **timer.times(), **rss.mib()}


# --- part B: measurements in the child process ---------------------------------
def _worker_threads() -> int:
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads()


def _share_threads(client, n: int) -> str:
    """Size each Dask worker's TensorFlow pools to its share; say how.

    The package's ``share_threads`` picks the share itself; without it (an
    older checkout) a plugin of this benchmark sets ``n`` threads.
    """
    try:
        from emnist_estimators.cluster import share_threads
    except ImportError:
        from distributed.diagnostics.plugin import WorkerPlugin

        class SetThreads(WorkerPlugin):
            def setup(self, worker):
                from emnist_estimators.threads import set_num_threads

                set_num_threads(n)

        client.register_plugin(SetThreads(), name="bench-scale-threads")
        return "benchmark's own WorkerPlugin"
    share_threads(client)  # n=None: each worker's share of the cores
    return "emnist_estimators.cluster.share_threads"


def search_fits(
    *,
    backend: str,
    workers: int,
    threads: int,
    tf_threads: int | None,
    n: int,
    epochs: int,
) -> dict:
    """One GridSearchCV of 8 fits on ``backend`` (child process)."""
    if tf_threads is not None and backend == "loky":
        # inherited by loky's workers, which it spawns after this
        os.environ["EMNIST_ESTIMATORS_THREADS"] = str(tf_threads)
    import joblib
    from sklearn.model_selection import GridSearchCV

    from emnist_estimators import EmnistMLP

    X, y = _bymerge_memmap(n)
    X, y = np.array(X), np.array(y)  # in RAM: pickled to Dask workers as is
    search = GridSearchCV(
        EmnistMLP(hidden_layer_sizes=(256,), epochs=epochs, random_state=0),
        _GRID,
        cv=2,
        refit=False,
        n_jobs=workers * threads,
    )
    mark_baseline()
    t = time.perf_counter()
    if backend == "loky":
        # start the reusable executor that the search then reuses
        joblib.Parallel(n_jobs=workers)(joblib.delayed(os.getpid)() for _ in range(4))
        start = time.perf_counter() - t
        t = time.perf_counter()
        search.fit(X, y)
        seconds, via = time.perf_counter() - t, "environment (loky inherits it)"
        if tf_threads is None:
            via = "package default (available_cpus)"
        pools = sorted(
            joblib.Parallel(n_jobs=workers)(
                joblib.delayed(_worker_threads)() for _ in range(workers)
            )
        )
    else:
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=threads,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            via = _share_threads(client, tf_threads)
            client.run(os.getpid)
            start = time.perf_counter() - t
            t = time.perf_counter()
            with joblib.parallel_backend("dask"):
                search.fit(X, y)
            seconds = time.perf_counter() - t
            pools = sorted(client.run(_worker_threads).values())
    return {
        "search_seconds": seconds,
        "start_seconds": start,
        "fits": len(search.cv_results_["params"]) * 2,
        "threads_via": via,
        "worker_pools": pools,
        "scores": search.cv_results_["mean_test_score"].tolist(),
    }


# --- the parent: run, tabulate --------------------------------------------------
def _slope(rows: list[dict], key: str) -> float:
    """Least-squares slope of ``key`` vs images, in MiB per 100k images."""
    x = np.array([r["images"] for r in rows], float)
    return float(np.polyfit(x, [r[key] for r in rows], 1)[0] * 100_000)


def _part_a(sizes, cnn_batches: int) -> tuple[list[dict], list[dict]]:
    """One streaming and one in-memory run per model and size, alternating."""
    rows, ratios = [], []
    for model, batches in (("mlp", None), ("cnn", cnn_batches)):
        for i, n in enumerate(sizes):
            # alternate which path runs first at each size (page cache, noise)
            paths = ("streaming", "in-memory")[:: -1 if i % 2 else 1]
            pair = {}
            for path in paths:
                pair[path] = run_case(
                    _train_case(path, model, n, batches), timeout=3600
                )
                rows.append(_row_a(model, path, n, pair[path]))
                print(rows[-1], flush=True)
            ratios.append(_ratio_row(model, n, pair["streaming"], pair["in-memory"]))
    return rows, ratios


def _train_case(path: str, model: str, n: int, batches: int | None) -> Case:
    kwargs = {"model": model, "n": n, "batches": batches}
    if path == _PER_BATCH:
        return Case("bench_scale.train_streaming", {**kwargs, "per_batch": True})
    fn = "train_streaming" if path == "streaming" else "train_in_memory"
    return Case(f"bench_scale.{fn}", kwargs)


def _ratio_row(model: str, n: int, s: dict, m: dict) -> dict:
    full_epoch = model == "mlp"
    return {
        "model": "EmnistMLP" if model == "mlp" else "EmnistCNN",
        "images": n,
        "peak RSS stream/mem": s["peak_rss_mib"] / m["peak_rss_mib"],
        "epoch s stream/mem": (
            s["epoch_seconds"] / m["epoch_seconds"] if full_epoch else ""
        ),
        "fit s stream/mem": s["fit_seconds"] / m["fit_seconds"],
        "ms/batch stream/mem": s["seconds_per_batch"] / m["seconds_per_batch"],
    }


def _mlp_timing(n: int, pairs: int, per_batch: bool = False) -> list[dict]:
    """EmnistMLP epoch time, ``pairs`` alternating runs per path, medians.

    ``per_batch`` adds a third path: streaming with one Python call per batch
    (the hand-off before issue 32), each ratio against in-memory.
    """
    paths = ["streaming", "in-memory"] + ([_PER_BATCH] if per_batch else [])
    cases = {path: _train_case(path, "mlp", n, None) for path in paths}
    runs = alternate(cases, pairs)
    rows = []
    for path, rs in runs.items():
        rows.append(
            {
                "path": path,
                "images": n,
                "epoch s (median)": median_of(rs, "epoch_seconds"),
                "runs epoch s": ", ".join(f"{r['epoch_seconds']:.1f}" for r in rs),
                "fit s (median)": median_of(rs, "fit_seconds"),
                "ms/batch (median)": median_of(rs, "seconds_per_batch") * 1000,
            }
        )
    memory = next(r for r in rows if r["path"] == "in-memory")
    for row in rows:
        if row is memory:
            continue
        for key in ("epoch s (median)", "fit s (median)", "ms/batch (median)"):
            row[key.replace("(median)", "stream/mem")] = row[key] / memory[key]
        # each run against the in-memory run of its own round (alternated)
        row["runs epoch s stream/mem"] = ", ".join(
            f"{s['epoch_seconds'] / m['epoch_seconds']:.3f}"
            for s, m in zip(runs[row["path"]], runs["in-memory"], strict=True)
        )
    return rows


def _row_a(model: str, path: str, n: int, r: dict) -> dict:
    full_epoch = model == "mlp"
    return {
        "model": "EmnistMLP" if model == "mlp" else "EmnistCNN",
        "path": path,
        "images": n,
        "batches": r["batches"],
        "peak RSS MiB": round(r["peak_rss_mib"]),
        "above baseline MiB": round(r["peak_rss_mib"] - r["baseline_rss_mib"]),
        "peak anon MiB": round(r["peak_anon_mib"]),
        "peak file MiB": round(r["peak_file_mib"]),
        "fit s": round(r["fit_seconds"], 1),
        "epoch s": round(r["epoch_seconds"], 1) if full_epoch else "",
        "ms/batch": round(r["seconds_per_batch"] * 1000, 1),
    }


def _slopes(rows: list[dict]) -> list[dict]:
    out = []
    for model in ("EmnistMLP", "EmnistCNN"):
        for path in ("streaming", "in-memory"):
            sel = [r for r in rows if r["model"] == model and r["path"] == path]
            out.append(
                {
                    "model": model,
                    "path": path,
                    "peak RSS MiB per 100k images": _slope(sel, "peak RSS MiB"),
                    "peak anon MiB per 100k images": _slope(sel, "peak anon MiB"),
                    "peak RSS at largest MiB": sel[-1]["peak RSS MiB"],
                }
            )
    return out


def _part_b(n: int, epochs: int, repeats: int) -> list[dict]:
    runs: dict[str, list[dict]] = {name: [] for name in _ENGINES}
    for _ in range(repeats):
        for name, (backend, workers, threads, tf_threads) in _ENGINES.items():
            kwargs = {
                "backend": backend,
                "workers": workers,
                "threads": threads,
                "tf_threads": tf_threads,
                "n": n,
                "epochs": epochs,
            }
            runs[name].append(run_case(Case("bench_scale.search_fits", kwargs)))
            print(name, runs[name][-1], flush=True)
    base = next(iter(_ENGINES))
    ref = statistics.median(r["search_seconds"] for r in runs[base])
    ref_scores = np.array(runs[base][0]["scores"])
    rows = []
    for name, rs in runs.items():
        seconds = statistics.median(r["search_seconds"] for r in rs)
        rows.append(
            {
                "engine": name,
                "TF threads per worker": "/".join(map(str, rs[0]["worker_pools"])),
                "threads set by": rs[0]["threads_via"],
                "fits": rs[0]["fits"],
                "search s (median)": round(seconds, 1),
                "runs s": ", ".join(f"{r['search_seconds']:.1f}" for r in rs),
                "start s": round(statistics.median(r["start_seconds"] for r in rs), 1),
                "vs loky default": round(seconds / ref, 3),
                "max abs score diff vs loky": float(
                    np.max(np.abs(np.array(rs[0]["scores"]) - ref_scores))
                ),
            }
        )
        print(rows[-1], flush=True)
    return rows


def _markdown(rows: list[dict]) -> str:
    from benchmarks._harness import _fmt

    columns = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [
        "| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows
    ]
    return "\n".join(lines)


class _MachineLoad:
    """The 1-min load average and other people's pytest processes, every 10 s.

    The benchmark adds its own load (1 to 2 on 2 cores); pytest processes
    not started by it show that the cores were shared.
    """

    def __init__(self) -> None:
        self.loads: list[float] = []
        self.others: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.loads.append(os.getloadavg()[0])
            self.others.append(_other_pytest_processes())
            if self._stop.wait(10):
                return

    def __enter__(self) -> _MachineLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        return (
            f"Machine load during the run (1-min load average, this benchmark "
            f"included): median {statistics.median(self.loads):.2f}, max "
            f"{max(self.loads):.2f}; pytest processes of other people running: "
            f"{max(self.others)} at most, in {sum(o > 0 for o in self.others)} of "
            f"{len(self.others)} samples (every 10 s)."
        )


def _other_pytest_processes() -> int:
    """pytest processes on the machine (the benchmark starts none)."""
    count = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"pytest" in cmdline.read_bytes():
                count += 1
        except OSError:  # the process ended meanwhile
            pass
    return count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (minutes)")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=["A", "B", "T"],
        default=["A", "B"],
        help="A: memory and time vs size; B: searches; T: only the alternating "
        "epoch-time pairs at --timing-size (results in bench_scale_epoch.md)",
    )
    parser.add_argument("--timing-size", type=int, default=None)
    parser.add_argument("--cnn-batches", type=int, default=None)
    parser.add_argument("--timing-pairs", type=int, default=None)
    parser.add_argument("--search-repeats", type=int, default=None)
    parser.add_argument(
        "--per-batch",
        action="store_true",
        help="T: also time streaming with one Python call per batch (before issue 32)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    cnn_batches = args.cnn_batches or (15 if args.quick else 50)
    pairs = args.timing_pairs or (2 if args.quick else 3)
    repeats = args.search_repeats or (1 if args.quick else 3)
    search_n, search_epochs = (5_000, 1) if args.quick else (20_000, 3)
    if "T" in args.parts:
        _epoch_pairs(args.timing_size or sizes[-1], pairs, argv, args.per_batch)
        return
    rows, sections = [], []
    with _MachineLoad() as load:
        if "A" in args.parts:
            rows, ratios = _part_a(sizes, cnn_batches)
            sections += [
                "## Slopes of peak memory vs images (least squares over the sizes)",
                _markdown(_slopes(rows)),
                "## Streaming / in-memory at each size (the runs above)",
                _markdown(ratios),
                f"## EmnistMLP epoch time at {sizes[0]:,} images, {pairs} "
                "alternating runs per path",
                _markdown(_mlp_timing(sizes[0], pairs)),
            ]
        if "B" in args.parts:
            sections += [
                "## Search: 8 fits (GridSearchCV 4 candidates x cv=2, refit=False) "
                f"of EmnistMLP(hidden_layer_sizes=(256,), epochs={search_epochs}) "
                f"on {search_n:,} images, median of {repeats} run(s) each",
                _markdown(_part_b(search_n, search_epochs, repeats)),
            ]
    notes = (
        f"Part A: EmnistMLP one full epoch; EmnistCNN {cnn_batches} training "
        f"batches + {_EVAL_BATCHES} hold-out batches (not a whole epoch). Peak RSS "
        "is VmHWM of the child process (imports included; the baseline is after "
        "the imports and the memory map's opening); anon/file peaks sampled every "
        "10 ms (the file part is TensorFlow's libraries plus the memory map's "
        f"pages). ms/batch leaves out the first {_WARMUP_BATCHES - 1} batches "
        "(tracing)."
    )
    if "A" not in args.parts:
        notes = ""
    write_results(
        "bench_scale",
        rows,
        precision=precision_label("auto"),
        command="python -m benchmarks.bench_scale " + " ".join(argv or sys.argv[1:]),
        notes="\n\n".join(filter(None, [notes, *sections, load.summary()])),
        meta={**machine(), **_dask_versions()},
    )


def _epoch_pairs(n: int, pairs: int, argv, per_batch: bool = False) -> None:
    """Streaming vs in-memory EmnistMLP epoch time at ``n`` images only."""
    with _MachineLoad() as load:
        rows = _mlp_timing(n, pairs, per_batch)
    write_results(
        "bench_scale_epoch",
        rows,
        precision=precision_label("auto"),
        command="python -m benchmarks.bench_scale " + " ".join(argv or sys.argv[1:]),
        notes=f"EmnistMLP defaults, one epoch (hold-out included) on {n:,} "
        f"memory-mapped images, {pairs} alternating runs per path (in the "
        "order of the rows). streaming: IndexBatches.as_dataset, several "
        f"batches gathered per Python call; {_PER_BATCH}: one call per batch "
        "(the hand-off before issue 32). Ratios against in-memory; the per-run "
        "ratios pair each run with the in-memory run of its round.\n\n"
        + load.summary(),
        meta={**machine(), **_dask_versions()},
    )


def _dask_versions() -> dict:
    """Dask's versions for the results (part A runs without Dask installed)."""
    try:
        import dask
        import distributed
    except ImportError:
        return {}
    return {"dask": dask.__version__, "distributed": distributed.__version__}


if __name__ == "__main__":
    main()
