"""Report figures from arrays: each public plot returns a labelled Figure."""

from __future__ import annotations

import numpy as np
from conftest import bar_images
from matplotlib.figure import Figure

from emnist_estimators.reporting import (
    most_confused_pairs,
    plot_confused_pairs,
    plot_confusion_matrix,
    plot_learning_curves,
    plot_misclassified,
    plot_sample_predictions,
)


def _labels():
    y_true = np.array(list("OOOO00002222ZZZZ"))
    y_pred = np.array(list("O0O0000Z2222Z2ZZ"))
    return y_true, y_pred


def test_most_confused_pairs_counts_and_shares():
    y_true, y_pred = _labels()
    pairs = most_confused_pairs(y_true, y_pred)
    assert pairs[0] == ("O", "0", 2, 0.5)
    assert {p[:2] for p in pairs} == {("O", "0"), ("0", "Z"), ("Z", "2")}
    assert most_confused_pairs(y_true, y_true) == []


def test_plots_return_labelled_figures():
    y_true, y_pred = _labels()
    X, _ = bar_images(len(y_true))
    history = {
        "loss": [1.0, 0.5],
        "accuracy": [0.6, 0.8],
        "val_loss": [1.1, 0.7],
        "val_accuracy": [0.5, 0.7],
    }
    fig = plot_learning_curves(history)
    assert isinstance(fig, Figure)
    assert [ax.get_xlabel() for ax in fig.axes] == ["epoch", "epoch"]
    cm = plot_confusion_matrix(y_true, y_pred)
    ax = cm.axes[0]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "2", "O", "Z"]
    assert (
        "4 misclassified" in plot_misclassified(X, y_true, y_pred)._suptitle.get_text()
    )
    grid = plot_sample_predictions(X, y_true, y_pred, proba=np.full(len(X), 0.9))
    titles = [a.get_title() for a in grid.axes if a.get_title()]
    assert len(titles) == len(X) and "0 (true O)\n0.90" in titles
    pairs = plot_confused_pairs(X, y_true, y_pred)
    assert "O → 0" in " ".join(t.get_text() for a in pairs.axes for t in a.texts)
