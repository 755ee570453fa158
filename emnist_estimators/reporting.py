"""Figures and a one-page report for a fitted classifier.

Every plot function is public, takes arrays (or a fitted estimator) and returns
a matplotlib Figure, so notebooks can use them one by one; ``write_report``
saves them as PNG next to an HTML page that embeds them with the metrics.
matplotlib is driven through its object API with the non-interactive Agg
canvas, so no display is needed.
"""

from __future__ import annotations

import html
import json
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "plot_learning_curves",
    "plot_confusion_matrix",
    "plot_misclassified",
    "plot_sample_predictions",
    "plot_confused_pairs",
    "most_confused_pairs",
    "label_order",
    "write_report",
    "save_tuning_figures",
]

log = logging.getLogger(__name__)

#: How many confused pairs the report lists, in its table and its figure alike.
TOP_PAIRS = 10

#: Width in inches of the report's wide figures: 1100 pixels at the page's
#: 110 dpi, the page's column, so a laptop shows them unscaled and uncut.
PAGE_INCHES = 10.0

#: The figures :func:`save_tuning_figures` writes, by the name in their file.
TUNING_FIGURES = (
    "optimization_history",
    "param_importances",
    "parallel_coordinate",
    "intermediate_values",
)


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _final_estimator(estimator):
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def _image_grid(n: int, *, row_inches: float, cols: int = 10):
    """Axes, all hidden, for ``n`` images in rows of ``cols``, page-wide."""
    rows = max(1, int(np.ceil(n / cols)))
    fig = _figure((PAGE_INCHES, rows * row_inches + 0.4))
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for ax in axes:
        ax.axis("off")
    return axes


def label_order(classes) -> np.ndarray:
    """Put classes in their dataset's label order, not alphabetical order.

    A fitted estimator's ``classes_`` are sorted (scikit-learn's
    ``LabelEncoder``), which is the label order for EMNIST's characters
    (digits, then upper case, then lower case) but not for Fashion-MNIST's
    names (``Ankle boot`` would come first instead of label 9) nor for labels
    10 and up kept as text (``"10"`` before ``"2"``).

    Parameters
    ----------
    classes : array-like of shape (n_classes,)
        The classes, e.g. ``estimator.classes_``.

    Returns
    -------
    ndarray of shape (n_classes,)
        The same classes: Fashion-MNIST's names in label order (T-shirt/top
        first), integer labels written as text in numeric order, anything
        else as given.

    Examples
    --------
    >>> label_order(["Bag", "Ankle boot", "T-shirt/top"]).tolist()
    ['T-shirt/top', 'Bag', 'Ankle boot']
    >>> label_order(["0", "1", "10", "2"]).tolist()
    ['0', '1', '2', '10']
    """
    from .sources import FASHION_MNIST_CLASSES

    classes = np.asarray(classes)
    names = [str(c) for c in classes]
    if set(names) <= set(FASHION_MNIST_CLASSES):
        return classes[np.argsort([FASHION_MNIST_CLASSES.index(n) for n in names])]
    if classes.dtype.kind in "US" and all(n.isdigit() for n in names):
        return classes[np.argsort([int(n) for n in names], kind="stable")]
    return classes


def plot_learning_curves(history) -> Figure:
    """Plot training and validation loss and accuracy per epoch.

    Parameters
    ----------
    history : dict or fitted estimator
        ``history_`` of an EmnistMLP/EmnistCNN (or a Pipeline ending in one),
        or a dict with ``loss``/``accuracy`` and optional ``val_`` lists.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, not shown or saved (``fig.savefig(path)``).
    """
    from matplotlib.ticker import MaxNLocator

    if not isinstance(history, dict):
        history = _final_estimator(history).history_
    fig = _figure((PAGE_INCHES, 3.4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = history.get(prefix + metric)
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.25
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def plot_confusion_matrix(y_true, y_pred, *, labels=None, class_names=None):
    """Plot the row-normalised confusion matrix, labelled with the class names.

    Readable at 47 classes: rows sum to 1, the diagonal is shown, and cells
    below 1% are left blank so the confusions stand out.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    labels : array-like, default=None
        The classes, in the order of the rows; None: those seen in ``y_true``
        or ``y_pred``, in :func:`label_order`.
    class_names : list of str, default=None
        Names shown for ``labels``; None: the labels themselves.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, not shown or saved (``fig.savefig(path)``).
    """
    from sklearn.metrics import confusion_matrix

    if labels is None:
        labels = label_order(np.unique(np.concatenate([y_true, y_pred])))
    names = [str(c) for c in (class_names if class_names is not None else labels)]
    cm = confusion_matrix(y_true, y_pred, labels=labels, normalize="true")
    n = len(labels)
    # As wide as the report's page, where it is shown: at 47 classes a wider
    # figure was scaled down in the page and its 8-point labels with it. Each
    # class gets its own tick label, in a font that fills most of its cell.
    size = min(PAGE_INCHES, max(5.0, 0.28 * n + 2))
    fig = _figure((size, size * 0.9))
    ax = fig.subplots()
    image = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    long_names = max(len(name) for name in names) > 2
    fontsize = tick_font_size(n, size)
    ax.set_xticks(
        range(n),
        names,
        fontsize=fontsize,
        rotation=45 if long_names else 0,
        ha="right" if long_names else "center",
        rotation_mode="anchor",
    )
    ax.set_yticks(range(n), names, fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix (each row sums to 1)")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if cm[i, j] >= 0.01:
                    ax.text(
                        j,
                        i,
                        f"{cm[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if cm[i, j] > 0.5 else "black",
                    )
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    return fig


def tick_font_size(n_classes: int, figure_inches: float) -> float:
    """The confusion matrix's tick-label size: most of a cell, 7 to 11 points.

    Parameters
    ----------
    n_classes : int
        Rows (and columns) of the matrix.
    figure_inches : float
        The figure's width; the matrix takes about 70% of it.

    Returns
    -------
    float
        The font size in points.

    Examples
    --------
    >>> tick_font_size(47, 10.0), tick_font_size(10, 5.0)
    (8.6, 11.0)
    """
    cell_points = 0.7 * figure_inches * 72 / max(n_classes, 1)
    return round(float(np.clip(0.8 * cell_points, 7.0, 11.0)), 1)


def most_confused_pairs(y_true, y_pred, *, top: int = 10):
    """List the most frequent (true, predicted) errors, largest first.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    top : int, default=10
        How many pairs to return at most.

    Returns
    -------
    list of tuple
        ``(true, predicted, count, share_of_true_class)``.

    Examples
    --------
    >>> most_confused_pairs(["O", "O", "0", "0"], ["0", "O", "0", "0"])
    [(np.str_('O'), np.str_('0'), 1, np.float64(0.5))]
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    wrong = y_true != y_pred
    pairs, counts = (
        np.unique(
            np.stack([y_true[wrong].astype(str), y_pred[wrong].astype(str)], axis=1),
            axis=0,
            return_counts=True,
        )
        if wrong.any()
        else (np.empty((0, 2)), np.empty(0, int))
    )
    totals = {
        c: int(n)
        for c, n in zip(*np.unique(y_true.astype(str), return_counts=True), strict=True)
    }
    order = np.argsort(-counts, kind="stable")[:top]
    return [
        (pairs[i][0], pairs[i][1], int(counts[i]), counts[i] / totals[pairs[i][0]])
        for i in order
    ]


def plot_misclassified(images, y_true, y_pred, *, max_images: int = 100):
    """Plot the first ``max_images`` misclassified images, true -> predicted.

    Parameters
    ----------
    images : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
        The images, upright.
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    max_images : int, default=100
        At most this many images, ten per row.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, not shown or saved (``fig.savefig(path)``).
    """
    images = np.asarray(images).reshape(len(images), 28, 28)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    idx = np.flatnonzero(y_true != y_pred)[:max_images]
    # class names longer than a few characters go on two lines, in smaller
    # type, so that ten columns fit the page's width without overlapping
    long_names = (
        max(
            (len(str(v)) for v in np.concatenate([y_true[idx], y_pred[idx]])), default=1
        )
        > 3
    )
    axes = _image_grid(len(idx), row_inches=1.45 if long_names else 1.2)
    for ax, i in zip(axes, idx, strict=False):  # the grid may have spare cells
        ax.imshow(images[i], cmap="gray_r")
        if long_names:
            ax.set_title(f"{y_true[i]}\n→ {y_pred[i]}", fontsize=7)
        else:
            ax.set_title(f"{y_true[i]}→{y_pred[i]}", fontsize=9)
    fig = axes[0].figure
    fig.suptitle(f"{len(idx)} misclassified images (true→predicted)")
    return fig


def plot_sample_predictions(images, y_true, y_pred, *, n: int = 40, proba=None):
    """Plot the first ``n`` test images with their predictions.

    Titles read ``predicted (probability)``; wrong ones are red and show the
    true class too.

    Parameters
    ----------
    images : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
        The images, upright.
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    n : int, default=40
        How many images, ten per row.
    proba : array-like of shape (n_samples,), default=None
        The probability of each prediction, shown under it.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, not shown or saved (``fig.savefig(path)``).
    """
    images = np.asarray(images).reshape(len(images), 28, 28)[:n]
    y_true, y_pred = np.asarray(y_true)[:n], np.asarray(y_pred)[:n]
    axes = _image_grid(len(images), row_inches=1.5)
    for i, ax in enumerate(axes[: len(images)]):
        ax.imshow(images[i], cmap="gray_r")
        ok = y_true[i] == y_pred[i]
        # one short line each, so ten columns fit the page's width
        lines = [str(y_pred[i])] + ([] if ok else [f"true {y_true[i]}"])
        if proba is not None:
            lines.append(f"{proba[i]:.2f}")
        ax.set_title("\n".join(lines), fontsize=7, color="black" if ok else "crimson")
    fig = axes[0].figure
    fig.suptitle("Sample predictions (red: wrong)")
    return fig


def plot_confused_pairs(
    images, y_true, y_pred, *, top: int = TOP_PAIRS, examples: int = 8
):
    """Plot the most confused (true, predicted) pairs, each with example images.

    The pairs are :func:`most_confused_pairs` with the same ``top``, so the
    figure and that table list the same pairs in the same order. A row holds
    up to ``examples`` images; columns that no pair fills are left out.

    Parameters
    ----------
    images : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
        The images, upright.
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    top : int, default=TOP_PAIRS
        How many pairs at most, one per row.
    examples : int, default=8
        Example images per pair at most.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, not shown or saved (``fig.savefig(path)``); its first
        column's texts read ``true → predicted`` and the count.
    """
    images = np.asarray(images).reshape(len(images), 28, 28)
    y_true, y_pred = np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)
    pairs = most_confused_pairs(y_true, y_pred, top=top)
    if not pairs:
        fig = _figure((PAGE_INCHES * 0.6, 1.0))
        fig.text(0.5, 0.5, "No misclassified images.", ha="center", va="center")
        return fig
    # as many image columns as the most frequent pair fills, so a figure of
    # rare confusions is not mostly empty cells
    cols = max(1, min(examples, max(count for _, _, count, _ in pairs)))
    fig = _figure((min(PAGE_INCHES, 2.2 + 0.95 * cols), 0.95 * len(pairs) + 0.5))
    axes = np.atleast_2d(
        fig.subplots(len(pairs), cols + 1, width_ratios=[2.2] + [0.95] * cols)
    )
    for ax in axes.flat:
        ax.axis("off")
    for row, (true, pred, count, share) in zip(axes, pairs, strict=True):
        row[0].text(
            1.0,
            0.5,
            f"{true} → {pred}\n{count}x ({share:.1%} of {true})",
            fontsize=9,
            va="center",
            ha="right",
            transform=row[0].transAxes,
        )
        idx = np.flatnonzero((y_true == true) & (y_pred == pred))[:cols]
        for ax, i in zip(row[1:], idx, strict=False):
            ax.imshow(images[i], cmap="gray_r")
    fig.suptitle("Most confused pairs (true → predicted), with examples")
    return fig


def write_report(
    estimator,
    X,
    y,
    output,
    *,
    title: str = "Model report",
    class_names=None,
    extra_metrics: dict | None = None,
    data: str | None = None,
    training: dict | None = None,
) -> Path:
    """Write figures, metrics and an HTML page for ``estimator`` on ``(X, y)``.

    The page opens with the model, its parameters that differ from the
    defaults, the data, the accuracy and the training time; its figures
    scale down to the page's column, so nothing scrolls sideways on a laptop
    screen. Classes come in :func:`label_order`; the confused-pairs table and
    figure list the same :data:`TOP_PAIRS` pairs.

    Parameters
    ----------
    estimator : fitted EmnistMLP, EmnistCNN or Pipeline ending in one
        The model to report on.
    X : array-like of shape (n_samples, 784)
        Test images (uint8 pixels).
    y : array-like of shape (n_samples,)
        Their labels.
    output : str or path-like
        Folder (created if needed).
    title : str, default="Model report"
        Heading of the page.
    class_names : list of str, default=None
        Names for the confusion-matrix axes, in ``classes_`` order.
    extra_metrics : dict, default=None
        Added to ``metrics.json`` and the page; its ``fit_seconds``, if any,
        is shown as the training time.
    data : str, default=None
        What ``(X, y)`` are (e.g. ``"Fashion-MNIST test set"``), for the
        header; None: only their number.
    training : dict, default=None
        What the training recorded, as ``emnist-estimators train`` writes it
        in ``metrics.json``: ``dataset``, ``n_train``, ``fit_seconds``; each
        optional. None: the training time reads "not recorded".

    Returns
    -------
    Path
        The HTML page.
    """
    from sklearn.metrics import accuracy_score, classification_report

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    y = np.asarray(y)
    proba = estimator.predict_proba(X)
    final = _final_estimator(estimator)
    y_pred = final.classes_[proba.argmax(axis=1)]
    labels = label_order(final.classes_)
    by_class: dict = {}
    if class_names is not None:
        by_class = dict(zip(final.classes_.tolist(), class_names, strict=True))
    # the matrix and the table: only classes the images hold or the model
    # predicted (a 47-class model on digits: 10 rows, not 37 more empty ones);
    # labels the model does not know get their (all-wrong) rows, last
    unknown = np.setdiff1d(y, final.classes_)
    present = np.isin(labels, np.concatenate([y, y_pred]))
    shown = np.concatenate([labels[present], label_order(unknown)])
    names = None
    if class_names is not None:
        names = [str(by_class.get(c, c)) for c in shown.tolist()]
    pairs = most_confused_pairs(y, y_pred, top=TOP_PAIRS)
    figures = {
        "learning_curves.png": plot_learning_curves(estimator),
        "confusion_matrix.png": plot_confusion_matrix(
            y, y_pred, labels=shown, class_names=names
        ),
        "misclassified.png": plot_misclassified(X, y, y_pred),
        "sample_predictions.png": plot_sample_predictions(
            X, y, y_pred, proba=proba.max(axis=1)
        ),
        "confused_pairs.png": plot_confused_pairs(X, y, y_pred, top=TOP_PAIRS),
    }
    for name, fig in figures.items():
        fig.savefig(output / name, dpi=110)
    metrics = {
        "accuracy": float(accuracy_score(y, y_pred)),
        "n_samples": int(len(y)),
        **(extra_metrics or {}),
    }
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2))
    per_class = classification_report(
        y, y_pred, labels=shown, zero_division=0, output_dict=True
    )
    table = _per_class_rows(per_class, shown, by_class)
    facts = _header_facts(
        estimator, metrics, data, {**(extra_metrics or {}), **(training or {})}
    )
    index = output / "index.html"
    index.write_text(_page(title, facts, pairs, table), encoding="utf-8")
    return index


_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: auto; padding: 0 1em;
       line-height: 1.4 }
img { max-width: 100%; height: auto; display: block }
table { border-collapse: collapse; margin: 0.5em 0 }
th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: left;
         vertical-align: top; overflow-wrap: anywhere }
table.facts th { background: #f2f2f2; white-space: nowrap }
td.n { text-align: right }
pre { overflow-x: auto }
"""


def _per_class_rows(report: dict, labels, by_class: dict) -> list[tuple]:
    """(class, precision, recall, F1, support) per class, then the averages."""
    rows = []
    for label in labels.tolist():
        scores = report[str(label)]
        name = str(by_class.get(label, label))
        rows.append((name, *(scores[k] for k in _SCORES)))
    for average in ("macro avg", "weighted avg"):
        if average in report:
            rows.append((average, *(report[average][k] for k in _SCORES)))
    return rows


_SCORES = ("precision", "recall", "f1-score", "support")


def _page(title: str, facts: list, pairs: list, per_class: list) -> str:
    """The report's HTML: header facts, then each figure under its heading."""
    esc = html.escape
    head = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in facts)
    rows = "".join(
        f"<tr><td>{esc(str(t))}</td><td>{esc(str(p))}</td>"
        f'<td class="n">{c}</td><td class="n">{s:.1%}</td></tr>'
        for t, p, c, s in pairs
    )

    scores = "".join(
        f"<tr><td>{esc(name)}</td>"
        + "".join(f'<td class="n">{v:.3f}</td>' for v in (p, r, f))
        + f'<td class="n">{int(n):,}</td></tr>'
        for name, p, r, f, n in per_class
    )

    def figure(name: str, alt: str) -> str:
        # a click opens the figure at full size, e.g. 47 classes' matrix
        return f'<a href="{name}"><img src="{name}" alt="{alt}"></a>'

    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{esc(title)}</h1>
<table class="facts">{head}</table>
<h2>Learning curves</h2>{figure("learning_curves.png", "learning curves")}
<h2>Confusion matrix</h2>{figure("confusion_matrix.png", "confusion matrix")}
<h2>Sample predictions</h2>
{figure("sample_predictions.png", "sample predictions")}
<h2>Most confused pairs</h2>
<table class="pairs"><tr><th>true</th><th>predicted</th><th>count</th>
<th>share of true class</th></tr>{rows}</table>
{figure("confused_pairs.png", "most confused pairs with examples")}
<h2>Per-class precision, recall, F1</h2>
<table class="per-class"><tr><th>class</th><th>precision</th><th>recall</th>
<th>F1</th><th>images</th></tr>{scores}</table>
<h2>Misclassified images</h2>{figure("misclassified.png", "misclassified")}
</body></html>
"""


def _header_facts(estimator, metrics: dict, data, training: dict) -> list:
    """``(name, HTML)`` rows: model, parameters, data, accuracy, training time."""
    esc = html.escape
    final = _final_estimator(estimator)
    steps = getattr(estimator, "steps", [("", final)])
    changed, every = _parameters(final)
    shown = ", ".join(f"{k}={v!r}" for k, v in changed.items()) or "all defaults"
    full = ", ".join(f"{k}={v!r}" for k, v in every.items())
    tested = f"{metrics['n_samples']:,} images"
    if data:
        tested = f"{esc(data)}: {tested}"
    trained = training.get("dataset")
    if trained is not None and "n_train" in training:
        trained = f"{trained}: {training['n_train']:,} images"
    seconds = training.get("fit_seconds")
    epochs = getattr(final, "n_iter_", None)
    time_text = "not recorded" if seconds is None else f"{float(seconds):,.1f} s"
    if epochs is not None:
        time_text += f" ({epochs} epochs)"
    return [
        ("Model", esc(" → ".join(type(step).__name__ for _, step in steps))),
        (
            "Parameters",
            f"{esc(shown)} <details><summary>all</summary>{esc(full)}</details>",
        ),
        ("Evaluated on", tested),
        *([("Trained on", esc(str(trained)))] if trained is not None else []),
        ("Accuracy", f"<b>{metrics['accuracy']:.4f}</b>"),
        ("Training time", esc(time_text)),
    ]


def _parameters(estimator) -> tuple[dict, dict]:
    """The constructor parameters that differ from the defaults, and all."""
    every = {
        k: v
        for k, v in estimator.get_params(deep=False).items()
        if k not in ("callbacks", "verbose")
    }
    try:
        defaults = type(estimator)().get_params(deep=False)
    except TypeError:  # a class with required parameters: no defaults to compare
        return every, every
    changed = {k: v for k, v in every.items() if _differs(v, defaults.get(k))}
    return changed, every


def _differs(value, default) -> bool:
    # CLI and JSON round trips turn tuples into lists: (32,) equals [32] here
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) != list(default)
    try:
        return bool(value != default)
    except (TypeError, ValueError):  # e.g. arrays: compare their text
        return repr(value) != repr(default)


# --- tuning studies ------------------------------------------------------------
def save_tuning_figures(study, folder) -> list[Path]:
    """Save optuna's figures of a study as PNG files named after it.

    Writes ``<study name>-<figure>.png`` for each of :data:`TUNING_FIGURES`
    (900x500 pixels), drawn by ``optuna.visualization.matplotlib``. A figure
    that cannot be drawn - parameter importances need two completed trials -
    is skipped with a warning on the ``emnist_estimators.reporting`` logger.
    A multi-objective study (a search with several ``objectives``) gets
    instead its Pareto front, ``pareto_front-<objective>.png``: the score
    against each other objective, the front's trials highlighted; then the
    figures of one objective for the score (no intermediate values: its
    trials are not pruned).

    Parameters
    ----------
    study : optuna.Study
        The study, e.g. ``EmnistSearchCV.study_``.
    folder : str or path-like
        An existing folder for the PNG files.

    Returns
    -------
    list of Path
        The files written, in the order of :data:`TUNING_FIGURES` (the Pareto
        fronts first).
    """
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    written = []
    for name, plot in _tuning_plots(study, ovm):
        try:
            with warnings.catch_warnings():
                # optuna marks its matplotlib figures experimental, every call
                warnings.simplefilter("ignore")
                ax = plot()
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.set_size_inches(9, 5)
            fig.tight_layout()
            path = Path(folder) / f"{study.study_name}-{name}.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            written.append(path)
        except Exception as exc:  # noqa: BLE001 - e.g. too few trials for importances
            log.warning("skipped the %s figure: %s", name, exc)
    return written


def _tuning_plots(study, ovm) -> list:
    """``(name, draw)`` of each figure of ``study``; ``draw()`` returns axes."""
    from functools import partial

    if len(study.directions) == 1:
        return [
            (name, partial(getattr(ovm, f"plot_{name}"), study))
            for name in TUNING_FIGURES
        ]
    names = study.metric_names or [
        f"objective {i}" for i in range(len(study.directions))
    ]
    score = names.index("score") if "score" in names else 0
    fronts = [
        (
            f"pareto_front-{names[i]}",
            partial(
                ovm.plot_pareto_front,
                study,
                targets=_values_at(score, i),
                target_names=[names[score], names[i]],
            ),
        )
        for i in range(len(names))
        if i != score
    ]
    return fronts + [
        (
            name,
            partial(
                getattr(ovm, f"plot_{name}"),
                study,
                target=_values_at(score),
                target_name=names[score],
            ),
        )
        for name in TUNING_FIGURES
        if name != "intermediate_values"  # multi-objective trials report none
    ]


def _values_at(*indices: int):
    """A trial's values at ``indices``: one float, or a tuple of several."""

    def values(trial):
        picked = tuple(trial.values[i] for i in indices)
        return picked[0] if len(picked) == 1 else picked

    return values
