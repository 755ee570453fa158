"""Run the benchmark suite: ``python -m benchmarks --quick`` or ``--full``.

--quick: data loading on Fashion-MNIST and the wrapper overheads on a small
         training set (a few minutes).
--full:  adds the bymerge-size data file, longer wrapper runs, precision,
         threads, memory and Dask searches at bymerge scale, the pruning study
         and the accuracy table (about three hours on 2 cores).
"""

from __future__ import annotations

import argparse

from benchmarks import (
    bench_accuracy,
    bench_data,
    bench_memory,
    bench_precision,
    bench_scale,
    bench_threads,
    bench_tuning,
    bench_wrappers,
)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few minutes (default)")
    mode.add_argument("--full", action="store_true", help="everything, hours")
    args = parser.parse_args(argv)
    if args.full:
        bench_data.main(["--full", "--repeats", "5"])
        bench_wrappers.main(["--n", "20000", "--epochs", "2", "--repeats", "3"])
        bench_precision.main(["--n", "20000", "--epochs", "2", "--repeats", "2"])
        bench_threads.main(["--n", "20000", "--epochs", "1", "--repeats", "3"])
        bench_memory.main([])
        bench_scale.main([])
        bench_tuning.main(["--trials", "20", "--epochs", "10"])
        bench_accuracy.main([])
    else:
        bench_data.main(["--repeats", "3"])
        bench_wrappers.main(["--n", "5000", "--epochs", "1", "--repeats", "2"])


if __name__ == "__main__":
    main()
