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

import numpy as np

__all__ = [
    "plot_learning_curves",
    "plot_confusion_matrix",
    "plot_misclassified",
    "plot_sample_predictions",
    "plot_confused_pairs",
    "most_confused_pairs",
    "write_report",
    "save_tuning_figures",
]

log = logging.getLogger(__name__)

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


def plot_learning_curves(history) -> Figure:  # noqa: F821
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
    if not isinstance(history, dict):
        history = _final_estimator(history).history_
    fig = _figure((10, 4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = history.get(prefix + metric)
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
        ax.set_xlabel("epoch")
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
        or ``y_pred``, sorted.
    class_names : list of str, default=None
        Names shown for ``labels``; None: the labels themselves.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, not shown or saved (``fig.savefig(path)``).
    """
    from sklearn.metrics import confusion_matrix

    labels = np.unique(np.concatenate([y_true, y_pred])) if labels is None else labels
    names = [str(c) for c in (class_names if class_names is not None else labels)]
    cm = confusion_matrix(y_true, y_pred, labels=labels, normalize="true")
    n = len(labels)
    size = max(5.0, 0.28 * n + 2)
    fig = _figure((size, size * 0.9))
    ax = fig.subplots()
    image = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    long_names = max(len(name) for name in names) > 2
    ax.set_xticks(
        range(n),
        names,
        fontsize=8 if n > 20 else 10,
        rotation=45 if long_names else 0,
        ha="right" if long_names else "center",
        rotation_mode="anchor",
    )
    ax.set_yticks(range(n), names, fontsize=8 if n > 20 else 10)
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
    cols = 10
    rows = max(1, int(np.ceil(len(idx) / cols)))
    # class names longer than a character go on two lines so titles never overlap
    long_names = (
        max(
            (len(str(v)) for v in np.concatenate([y_true[idx], y_pred[idx]])), default=1
        )
        > 3
    )
    fig = _figure(
        (
            cols * (1.35 if long_names else 1.1),
            rows * (1.55 if long_names else 1.25) + 0.4,
        )
    )
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, idx, strict=False):  # the grid may have spare cells
        ax.imshow(images[i], cmap="gray_r")
        if long_names:
            ax.set_title(f"{y_true[i]}\n→ {y_pred[i]}", fontsize=7)
        else:
            ax.set_title(f"{y_true[i]}→{y_pred[i]}", fontsize=9)
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
    cols = 10
    rows = max(1, int(np.ceil(len(images) / cols)))
    fig = _figure((cols * 1.15, rows * 1.35 + 0.4))
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for ax in axes:
        ax.axis("off")
    for i, ax in enumerate(axes[: len(images)]):
        ax.imshow(images[i], cmap="gray_r")
        ok = y_true[i] == y_pred[i]
        label = f"{y_pred[i]}" if ok else f"{y_pred[i]} (true {y_true[i]})"
        if proba is not None:
            label += f"\n{proba[i]:.2f}"
        ax.set_title(label, fontsize=8, color="black" if ok else "crimson")
    fig.suptitle("Sample predictions (red: wrong)")
    return fig


def plot_confused_pairs(images, y_true, y_pred, *, top: int = 8, examples: int = 6):
    """Plot the most confused (true, predicted) pairs, each with example images.

    Parameters
    ----------
    images : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
        The images, upright.
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    top : int, default=8
        How many pairs, one per row.
    examples : int, default=6
        Example images per pair.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, not shown or saved (``fig.savefig(path)``).
    """
    images = np.asarray(images).reshape(len(images), 28, 28)
    y_true, y_pred = np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)
    pairs = most_confused_pairs(y_true, y_pred, top=top)
    rows = max(1, len(pairs))
    fig = _figure((examples * 1.0 + 2.6, rows * 1.1 + 0.5))
    axes = np.atleast_2d(fig.subplots(rows, examples + 1))
    for ax in axes.flat:
        ax.axis("off")
    for r, (true, pred, count, share) in enumerate(pairs):
        axes[r, 0].text(
            0.0,
            0.5,
            f"{true} → {pred}\n{count}x ({share:.1%})",
            fontsize=10,
            va="center",
            ha="left",
            transform=axes[r, 0].transAxes,
        )
        idx = np.flatnonzero((y_true == true) & (y_pred == pred))[:examples]
        for c, i in enumerate(idx, start=1):
            axes[r, c].imshow(images[i], cmap="gray_r")
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
) -> Path:
    """Write figures, metrics and an HTML page for ``estimator`` on ``(X, y)``.

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
        Added to ``metrics.json`` and the page.

    Returns
    -------
    Path
        The HTML page.
    """
    from sklearn.metrics import accuracy_score, classification_report

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    proba = estimator.predict_proba(X)
    labels = _final_estimator(estimator).classes_
    y_pred = labels[proba.argmax(axis=1)]
    confidence = proba.max(axis=1)
    figures = {
        "learning_curves.png": plot_learning_curves(estimator),
        "confusion_matrix.png": plot_confusion_matrix(
            y, y_pred, labels=labels, class_names=class_names
        ),
        "misclassified.png": plot_misclassified(X, y, y_pred),
        "sample_predictions.png": plot_sample_predictions(
            X, y, y_pred, proba=confidence
        ),
        "confused_pairs.png": plot_confused_pairs(X, y, y_pred),
    }
    for name, fig in figures.items():
        fig.savefig(output / name, dpi=110)
    metrics = {
        "accuracy": float(accuracy_score(y, y_pred)),
        "n_samples": int(len(y)),
        **(extra_metrics or {}),
    }
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2))
    text_report = classification_report(y, y_pred, zero_division=0)
    pairs = most_confused_pairs(y, y_pred)
    rows = "".join(
        f"<tr><td>{html.escape(t)}</td><td>{html.escape(p)}</td><td>{c}</td>"
        f"<td>{s:.1%}</td></tr>"
        for t, p, c, s in pairs
    )
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>
<body style="font-family: sans-serif; max-width: 1100px; margin: auto">
<h1>{html.escape(title)}</h1>
<p>Accuracy: <b>{metrics["accuracy"]:.4f}</b> on {metrics["n_samples"]} samples.</p>
<h2>Learning curves</h2><img src="learning_curves.png" alt="learning curves">
<h2>Confusion matrix</h2><img src="confusion_matrix.png" alt="confusion matrix">
<h2>Sample predictions</h2><img src="sample_predictions.png" alt="sample predictions">
<h2>Most confused pairs</h2>
<table border="1" cellpadding="4"><tr><th>true</th><th>predicted</th><th>count</th>
<th>share of true class</th></tr>{rows}</table>
<img src="confused_pairs.png" alt="most confused pairs with examples">
<h2>Per-class precision, recall, F1</h2><pre>{html.escape(text_report)}</pre>
<h2>Misclassified images</h2><img src="misclassified.png" alt="misclassified">
</body></html>
"""
    index = output / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


# --- tuning studies ------------------------------------------------------------
def save_tuning_figures(study, folder) -> list[Path]:
    """Save optuna's figures of a study as PNG files named after it.

    Writes ``<study name>-<figure>.png`` for each of :data:`TUNING_FIGURES`
    (900x500 pixels), drawn by ``optuna.visualization.matplotlib``. A figure
    that cannot be drawn - parameter importances need two completed trials -
    is skipped with a warning on the ``emnist_estimators.reporting`` logger.

    Parameters
    ----------
    study : optuna.Study
        The study, e.g. ``EmnistSearchCV.study_``.
    folder : str or path-like
        An existing folder for the PNG files.

    Returns
    -------
    list of Path
        The files written, in the order of :data:`TUNING_FIGURES`.
    """
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    written = []
    for name in TUNING_FIGURES:
        plot = getattr(ovm, f"plot_{name}")
        try:
            with warnings.catch_warnings():
                # optuna marks its matplotlib figures experimental, every call
                warnings.simplefilter("ignore")
                ax = plot(study)
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
