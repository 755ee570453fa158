"""Training recipes on real data: accuracy after every epoch against time.

How the defaults are chosen and what each change buys (docs/performance.rst):
a recipe is any estimator expression, trained on the EMNIST protocol
(official bymerge test split, 85/15 stratified, random_state=0, upright) or
on Fashion-MNIST. Recipes are compared and chosen on a validation split
carved from the training part (``--split validation``, the default: the
EMNIST protocol's training part less a stratified 15%, Fashion-MNIST's 60,000
less a stratified 10,000), never on the test split; a chosen recipe's test
accuracy is then reported once (``--split test``: the whole training part,
scored on the test split). After each epoch the run records the training
wall seconds, training CPU seconds (both without the scoring) and the
accuracy; the row also holds the network's training FLOPs per image.

Each run appends one row to ``results/bench_recipes.json`` and rewrites
``results/bench_recipes.md``; ``--plot`` draws the validation rows'
time-to-accuracy curves (against CPU seconds), one figure per dataset and
network (``results/bench_recipes_<dataset>.png`` for the CNNs,
``..._<dataset>_mlp.png`` for the MLPs), and, for a recipe also trained on
shares of the training set (``--train-fraction``), its accuracy against the
number of training images (``..._<dataset>_data.png``), from the JSON file
alone. The
recipe ``"sklearn_mlp_512()"`` is the scikit-learn reference
(``MLPClassifier((512, 512), early_stopping=True)``, one point).

Run::

    python -m benchmarks.bench_recipes fashion "EmnistCNN(random_state=0)" --name cnn
    python -m benchmarks.bench_recipes fashion "sklearn_mlp_512()" --name sklearn
    python -m benchmarks.bench_recipes emnist "EmnistCNN(random_state=0)" \
        --train-fraction 0.5 --name "defaults, half the training set"
    python -m benchmarks.bench_recipes --plot
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np

from benchmarks._harness import RESULTS, Case, machine, run_case, write_results
from benchmarks.bench_accuracy import DATASETS

NOTES = (
    "fit s and CPU s exclude the per-epoch scoring (curves in the JSON file: "
    "(wall s, accuracy, CPU s) per epoch). split 'validation': trained on the "
    "training part less a stratified validation share (EMNIST protocol 15%, "
    "Fashion-MNIST 10,000 images, random_state=1) and scored on that share - "
    "where recipes are chosen; split 'test': the whole training part, scored "
    "on the test split, once per chosen recipe. train MFLOP/image: 3 x the "
    "forward pass's Conv2D and Dense multiply-adds x 2. with shift TTA: the "
    "accuracy of the mean probabilities of each image and its four one-pixel "
    "shifts; TTA predict cost: its predict time / one plain predict_proba. "
    "Recipes run before a default changed are written with the defaults of "
    "their day made explicit (EmnistCNN label_smoothing=0 before 2026-11-27; "
    "EmnistMLP (1024, 1024), dropout 0.4, 40 epochs, label_smoothing=0 before "
    "the 768-768 defaults), so each still names what it trained. The 10-epoch "
    "'EmnistCNN(block_dropout=0, ...)' rows ran as "
    "cnn_variant(block_dropout=False), the same network before it was a "
    "parameter. The 12-epoch 'cnn_variant(blocks=((32, 1), (64, 1), (128, 1)), "
    "...)' row is the network of EmnistCNN(filters=(32, 64, 128), "
    "convs_per_block=1), layer for layer and seed for seed. Every row up to the "
    "Fashion-MNIST defaults rerun beside the 3-block network trained through "
    "Keras' autotuned input pipeline (before IndexBatches.as_dataset), whose "
    "idle epoch starts add wall seconds but no CPU seconds: compare CPU s. "
    "train share / train images: the stratified share of the training set "
    "fitted (--train-fraction, random_state=2) and its size; validation rows "
    "from before these columns trained on the whole carve (84,042 / 50,000 "
    "images) and carry those sizes."
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", choices=["emnist", "fashion"])
    parser.add_argument(
        "recipe", nargs="?", help='an estimator expression, e.g. "EmnistMLP()"'
    )
    parser.add_argument("--name", default="", help="a short label for tables and plots")
    parser.add_argument("--split", choices=["validation", "test"], default="validation")
    parser.add_argument(
        "--train-fraction",
        type=float,
        default=1.0,
        help="train on this stratified share of the training set (0 < F <= 1)",
    )
    parser.add_argument(
        "--plot", action="store_true", help="draw the curves from the JSON file"
    )
    args = parser.parse_args(argv)
    path = RESULTS / "bench_recipes.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    if args.plot:
        for dataset in ("emnist", "fashion"):
            for family in ("cnn", "mlp"):
                plot_curves(stored.get("rows", []), DATASETS[dataset], dataset, family)
            plot_data_size(stored.get("rows", []), DATASETS[dataset], dataset)
        return
    if not (args.dataset and args.recipe):
        parser.error("give DATASET and RECIPE, or --plot")
    if not 0 < args.train_fraction <= 1:
        parser.error(f"--train-fraction must be in (0, 1], got {args.train_fraction}")
    case = Case(
        "_recipes.fit_recipe",
        {
            "dataset": args.dataset,
            "recipe": args.recipe,
            "split": args.split,
            "train_fraction": args.train_fraction,
        },
    )
    result = run_case(case, timeout=3600)
    rows = stored.get("rows", [])
    flops = result.get("train_flops")
    rows.append(
        {
            "dataset": DATASETS[args.dataset],
            "split": args.split,
            "name": args.name,
            "recipe": args.recipe,
            "train share": args.train_fraction,
            "train images": result["n_train"],
            "fit s": round(result["seconds"], 1),
            "CPU s": round(result["cpu_seconds"], 1),
            "accuracy": round(result["accuracy"], 4),
            "train MFLOP/image": _rounded(None if flops is None else flops / 1e6, 1),
            "with shift TTA": _rounded(result.get("tta_accuracy"), 4),
            "TTA predict cost": _rounded(result.get("tta_predict_cost"), 1),
            "cpu": machine()["cpu"],
            "precision": result["precision"],
            "curve (s, accuracy, CPU s) per epoch": result["curve"],
        }
    )
    write_results(
        "bench_recipes",
        rows,
        command='python -m benchmarks.bench_recipes DATASET "RECIPE" '
        "[--name N] [--split validation|test] [--train-fraction F] (one row per run)",
        notes=NOTES,
    )


def _rounded(value, digits: int):
    return "" if value is None else round(value, digits)


def family(recipe: str) -> str:
    """'mlp' for MLP recipes and the scikit-learn MLP reference, else 'cnn'."""
    return "mlp" if recipe.startswith(("EmnistMLP", "sklearn", "report_mlp")) else "cnn"


def plot_curves(
    rows: list[dict], dataset_name: str, key: str, kind: str = "cnn"
) -> None:
    """Validation accuracy against training CPU seconds, one line per recipe.

    One figure per dataset and ``kind`` ('cnn' or 'mlp'):
    ``bench_recipes_<key>.png`` for the CNNs, ``bench_recipes_<key>_mlp.png``
    for the MLPs (the scikit-learn reference is one point, its end).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [
        r
        for r in rows
        if r["dataset"] == dataset_name
        and r.get("split") == "validation"
        and family(r["recipe"]) == kind
        # a fit on a share of the training set measures data, not a recipe
        and r.get("train share", 1) == 1
    ]
    if not chosen:
        return
    # CPU seconds compare only within one machine: the rows of any other CPU
    # are drawn with crosses and named with their CPU
    usual_cpu = Counter(r.get("cpu") for r in chosen).most_common(1)[0][0]
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, row in enumerate(chosen):
        curve = row["curve (s, accuracy, CPU s) per epoch"]
        if len(curve) == 1:  # a reference fit: its accuracy is the level to reach
            ax.axhline(curve[0][1], linestyle="--", linewidth=0.8, color="grey")
        label = row["name"] or row["recipe"]
        if row["train MFLOP/image"]:
            label += f" ({row['train MFLOP/image']} MFLOP)"
        other_cpu = row.get("cpu") != usual_cpu
        if other_cpu:
            label += f", on {row.get('cpu')}: CPU s not comparable"
        ax.plot(
            [p[2] for p in curve],
            [p[1] for p in curve],
            marker="x" if other_cpu else ".",
            # the colour cycle repeats after ten lines: a new style each time
            linestyle=("-", "--", ":", "-.")[i // 10 % 4],
            label=label,
        )
    best = max(p[1] for r in chosen for p in r["curve (s, accuracy, CPU s) per epoch"])
    ax.set_ylim(best - 0.03, best + 0.005)
    # CPU seconds: wall time on a shared 2-core machine moves with the load
    # of other processes, the work a fit does does not
    ax.set_xlabel(f"training CPU seconds (2 cores of {usual_cpu}, scoring excluded)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(
        f"{dataset_name}, {kind.upper()}: time to accuracy (results/bench_recipes.json)"
    )
    _save(fig, ax, f"bench_recipes_{key}{'' if kind == 'cnn' else '_mlp'}.png", -0.12)


#: the accuracy-per-CPU-second issue's goals for the CNN defaults, drawn on
#: the data-size figure
GOALS = {"emnist": 0.91, "fashion": 0.935}


def fit_data_curve(n, accuracy) -> tuple[float, float, float]:
    """``(c, a, b)`` of the error curve ``c + a * (n / 10,000) ** -b``.

    A power law with a floor ``c``, the usual shape of a learning curve in
    training-set size, fitted by least squares to (training images,
    accuracy) points; four points or more, as it has three parameters.
    """
    from scipy.optimize import curve_fit

    params, _ = curve_fit(
        _data_error,
        np.asarray(n, float),
        1 - np.asarray(accuracy, float),
        p0=[0.05, 0.1, 0.5],
        bounds=([0, 0, 0], [1, 10, 5]),
        maxfev=20_000,
    )
    return tuple(float(v) for v in params)


def _data_error(n, c, a, b):
    return c + a * (n / 1e4) ** -b


def plot_data_size(rows: list[dict], dataset_name: str, key: str) -> None:
    """Final validation accuracy against training images, one line per recipe.

    Drawn for each recipe also trained on a share of the training set
    (``--train-fraction``), with its whole-set row (the newest of each size),
    to ``bench_recipes_<key>_data.png``: how much accuracy more data buys,
    against a logarithmic axis of images. With four sizes or more, the
    :func:`fit_data_curve` fit is drawn on to 4x the largest and printed,
    with the images it puts at the goal of :data:`GOALS`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    same = [
        r
        for r in rows
        if r["dataset"] == dataset_name
        and r.get("split") == "validation"
        and r.get("train images")  # rows before the column cannot be placed
    ]
    recipes = {r["recipe"] for r in same if r.get("train share", 1) < 1}
    if not recipes:
        return
    goal = GOALS[key]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for recipe in sorted(recipes):
        sizes = {
            r["train images"]: r["accuracy"] for r in same if r["recipe"] == recipe
        }
        n = sorted(sizes)
        line = ax.plot(n, [sizes[k] for k in n], marker="o", label=recipe)[0]
        for k in n:
            ax.annotate(
                f"{sizes[k]:.2%}",
                (k, sizes[k]),
                textcoords="offset points",
                xytext=(4, -12),
                fontsize=8,
            )
        if len(n) < 4:
            continue
        c, a, b = fit_data_curve(n, [sizes[k] for k in n])
        grid = np.geomspace(n[0], 4 * n[-1], 50)
        at_goal = (
            1e4 * (a / (1 - goal - c)) ** (1 / b) if 1 - goal > c else float("inf")
        )
        label = (
            f"fit: error = {c:.4f} + {a:.4f} (n/10,000)^-{b:.3f}; "
            f"{goal:.1%} at n = {at_goal:,.0f}"
        )
        ax.plot(
            grid,
            1 - _data_error(grid, c, a, b),
            "--",
            color=line.get_color(),
            linewidth=0.8,
            label=label,
        )
        print(
            f"{dataset_name}, {recipe}: {label}; at 2x: "
            f"{1 - _data_error(2 * n[-1], c, a, b):.2%}, at 4x: "
            f"{1 - _data_error(4 * n[-1], c, a, b):.2%}, floor {1 - c:.2%}"
        )
    ax.axhline(goal, linestyle=":", color="grey", linewidth=0.8)
    ax.annotate(
        f"goal {goal:.1%}",
        (n[0], goal),
        textcoords="offset points",
        xytext=(0, 3),
        fontsize=8,
        color="grey",
    )
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("training images (log scale)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"{dataset_name}: accuracy against training-set size")
    _save(fig, ax, f"bench_recipes_{key}_data.png", -0.15)


def _save(fig, ax, name: str, legend_at: float) -> None:
    """Grid, legend below the axes at ``legend_at``, ``results/<name>``."""
    import matplotlib.pyplot as plt

    ax.grid(alpha=0.3)
    # below the axes: with many recipes a legend inside hides the curves
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, legend_at))
    out = RESULTS / name
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(out)


if __name__ == "__main__":
    main()
