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


def _study(n_trials: int):
    """An optuna study of ``n_trials`` finished trials, no training needed."""
    import optuna

    study = optuna.create_study(study_name="s", direction="maximize")
    for i in range(n_trials):
        trial = study.ask(
            {
                "dropout": optuna.distributions.FloatDistribution(0, 0.5),
                "batch_size": optuna.distributions.CategoricalDistribution([32, 64]),
            }
        )
        for epoch in range(3):
            trial.report(0.5 + 0.1 * epoch + 0.01 * i, epoch)
        study.tell(trial, 0.7 + 0.01 * i)
    return study


def test_save_tuning_figures_writes_each_figure(tmp_path):
    from PIL import Image

    from emnist_estimators.reporting import TUNING_FIGURES, save_tuning_figures

    written = save_tuning_figures(_study(4), tmp_path)
    assert written == [tmp_path / f"s-{name}.png" for name in TUNING_FIGURES]
    for path in written:
        with Image.open(path) as image:
            assert image.size == (900, 500)
            low, high = image.convert("L").getextrema()
            assert high - low > 100, f"{path} is blank"


def test_save_tuning_figures_skips_a_figure_that_fails(tmp_path, caplog, monkeypatch):
    from optuna.visualization import matplotlib as ovm

    from emnist_estimators.reporting import save_tuning_figures

    def fails(study):
        raise RuntimeError("too few trials")

    monkeypatch.setattr(ovm, "plot_param_importances", fails)
    written = save_tuning_figures(_study(2), tmp_path)
    assert [p.name for p in written] == [
        "s-optimization_history.png",
        "s-parallel_coordinate.png",
        "s-intermediate_values.png",
    ]
    assert "skipped the param_importances figure: too few trials" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)
