"""One training recipe on real data, with its test accuracy after every epoch.

Used to choose the defaults and to measure what each change buys (the
"What each change buys" table in docs/performance.rst): a recipe is any
estimator expression, trained on the EMNIST protocol (official bymerge test
split, 85/15 stratified, random_state=0, upright) or on Fashion-MNIST, with
the test accuracy and the training seconds (scoring excluded) recorded after
each epoch. Each run appends one row to ``results/bench_recipes.json`` and
rewrites ``results/bench_recipes.md``.

Run::

    python -m benchmarks.bench_recipes fashion "EmnistCNN(epochs=20, random_state=0)"
"""

from __future__ import annotations

import argparse
import json

from benchmarks._harness import RESULTS, Case, run_case, write_results
from benchmarks.bench_accuracy import DATASETS


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["emnist", "fashion"])
    parser.add_argument("recipe", help='an estimator expression, e.g. "EmnistMLP()"')
    args = parser.parse_args(argv)
    case = Case("_recipes.fit_recipe", {"dataset": args.dataset, "recipe": args.recipe})
    result = run_case(case, timeout=3600)
    path = RESULTS / "bench_recipes.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    rows = stored.get("rows", [])
    rows.append(
        {
            "dataset": DATASETS[args.dataset],
            "recipe": args.recipe,
            "fit s": round(result["seconds"], 1),
            "test accuracy": round(result["accuracy"], 4),
            "curve (s, test accuracy) per epoch": result["curve"],
        }
    )
    write_results(
        "bench_recipes",
        rows,
        command='python -m benchmarks.bench_recipes DATASET "RECIPE" (one row per run)',
        notes=stored.get("notes")
        or "fit s excludes the per-epoch test scoring (curves in the JSON file).",
    )


if __name__ == "__main__":
    main()
