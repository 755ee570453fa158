"""Report figures from arrays: each public plot returns a labelled Figure; the
HTML page fits a laptop screen in headless Chromium, its confused-pairs table
and figure agree, and its classes come in label order (issue 13.5)."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest
from helpers import bar_images, chromium_driver
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, ClassifierMixin

from emnist_estimators import reporting
from emnist_estimators.reporting import (
    TOP_PAIRS,
    label_order,
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
    assert len(titles) == len(X) and "0\ntrue O\n0.90" in titles
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


def test_a_multi_objective_study_gets_its_pareto_fronts(tmp_path):
    """Issue 33.2: the score against each other objective, the front marked;
    the one-objective figures of the score, none of intermediate values."""
    import optuna
    from helpers import assert_real_png

    from emnist_estimators.reporting import save_tuning_figures

    study = optuna.create_study(
        study_name="m", directions=["minimize", "maximize", "minimize"]
    )
    study.set_metric_names(["fit_time", "score", "n_params"])
    dropout = optuna.distributions.FloatDistribution(0, 0.5)
    for i in range(6):
        trial = study.ask({"dropout": dropout})
        study.tell(trial, [1.0 + i, 0.5 + 0.05 * (i % 4), 100.0 * (6 - i)])
    written = save_tuning_figures(study, tmp_path)
    assert [p.name for p in written] == [
        "m-pareto_front-fit_time.png",
        "m-pareto_front-n_params.png",
        "m-optimization_history.png",
        "m-param_importances.png",
        "m-parallel_coordinate.png",
    ]
    for path in written:
        assert_real_png(path, size=(900, 500))


# --- write_report: the page (issue 13.5) ---------------------------------------------
FASHION = np.array(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                    "Shirt", "Sneaker", "Bag", "Ankle boot"])  # fmt: skip


class Answers(ClassifierMixin, BaseEstimator):
    """A fitted classifier that answers ``answers[i]`` for image ``i``.

    Lets a test choose every confusion without training a network.
    """

    def __init__(self, epochs=40, dropout=0.4):
        self.epochs = epochs
        self.dropout = dropout

    def fit(self, X, y, answers=None):
        self.classes_ = np.unique(y)
        self.answers_ = np.asarray(y if answers is None else answers)
        self.history_ = {"loss": [0.9, 0.5], "accuracy": [0.6, 0.8]}
        self.n_iter_ = 2
        return self

    def predict_proba(self, X):
        proba = np.full((len(X), len(self.classes_)), 0.01)
        proba[np.arange(len(X)), np.searchsorted(self.classes_, self.answers_)] = 0.9
        return proba


def fashion_case(n=200, seed=0):
    """Images, Fashion-MNIST labels, and answers with 14 kinds of mistake."""
    rng = np.random.default_rng(seed)
    X, _ = bar_images(n, rng=seed)
    y = FASHION[np.arange(n) % 10]
    answers = y.copy()
    wrong = rng.choice(n, size=n // 4, replace=False)
    # each true class is mistaken for the next or the one after: 20 pairs of
    # varied counts, more than the table and the figure show
    label = np.array([FASHION.tolist().index(c) for c in y[wrong]])
    answers[wrong] = FASHION[(label + 1 + (np.arange(len(wrong)) % 3 == 0)) % 10]
    return X.reshape(n, 784), y, answers


def spy_figures(monkeypatch) -> dict:
    """Record the figure each plot function returns while write_report runs."""
    made = {}
    for name in ("plot_confusion_matrix", "plot_confused_pairs"):
        real = getattr(reporting, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            made[_name] = _real(*args, **kwargs)
            return made[_name]

        monkeypatch.setattr(reporting, name, spy)
    return made


def table_rows(page: str, table_class: str) -> list[list[str]]:
    """The cells of each data row of ``<table class=table_class>``."""
    table = re.search(rf'<table class="{table_class}">(.*?)</table>', page, re.S)
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r, re.S) for r in rows]
    return [[html.unescape(c) for c in row] for row in cells if row]


def header(page: str) -> dict:
    """The page's header table: {name: HTML of its value}."""
    return dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", page, re.S))


def test_confused_pairs_figure_and_table_list_the_same_pairs(tmp_path, monkeypatch):
    """Issue 13.5: the figure showed 8 pairs while the table listed 9."""
    X, y, answers = fashion_case()
    made = spy_figures(monkeypatch)
    est = Answers().fit(X, y, answers=answers)
    page = reporting.write_report(est, X, y, tmp_path).read_text()
    expected = most_confused_pairs(y, answers, top=TOP_PAIRS)
    assert len(most_confused_pairs(y, answers, top=100)) > TOP_PAIRS
    table = [(t, p, int(c)) for t, p, c, _ in table_rows(page, "pairs")]
    figure = [
        tuple(text.get_text().split("\n")[0].split(" → "))
        for ax in made["plot_confused_pairs"].axes
        for text in ax.texts
    ]
    assert table == [(t, p, c) for t, p, c, _ in expected]
    assert figure == [(t, p) for t, p, _ in table]
    # called on its own, the figure lists the table's pairs too
    alone = plot_confused_pairs(X, y, answers)
    assert len([t for ax in alone.axes for t in ax.texts]) == TOP_PAIRS


def test_fashion_classes_come_in_label_order(tmp_path, monkeypatch):
    """Issue 13.5: Fashion-MNIST's classes were sorted alphabetically."""
    X, y, answers = fashion_case()
    made = spy_figures(monkeypatch)
    est = Answers().fit(X, y, answers=answers)
    assert est.classes_[0] == "Ankle boot"  # what LabelEncoder gives
    page = reporting.write_report(est, X, y, tmp_path).read_text()
    ax = made["plot_confusion_matrix"].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(FASHION)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(FASHION)
    rows = [row[0] for row in table_rows(page, "per-class")]
    assert rows == [*FASHION, "macro avg", "weighted avg"]
    assert label_order(["10", "9", "1"]).tolist() == ["1", "9", "10"]
    assert label_order(["b", "A", "0"]).tolist() == ["b", "A", "0"]  # as given


@pytest.mark.slow  # a fit and a whole report, 9 s
def test_report_header_names_model_parameters_data_accuracy_and_time(tmp_path):
    X, y, answers = fashion_case()
    est = Answers(epochs=3).fit(X, y, answers=answers)
    page = reporting.write_report(
        est, X, y, tmp_path / "a", data="Fashion-MNIST test set"
    ).read_text()
    facts = header(page)
    assert facts["Model"] == "Answers"
    assert facts["Parameters"].startswith("epochs=3 <details>")  # not dropout
    assert "dropout=0.4" in facts["Parameters"]  # under "all"
    assert facts["Evaluated on"] == "Fashion-MNIST test set: 200 images"
    accuracy = np.mean(y == answers)
    assert facts["Accuracy"] == f"<b>{accuracy:.4f}</b>"
    assert facts["Training time"] == "not recorded (2 epochs)"
    training = {"dataset": "train.gz (train)", "n_train": 60000, "fit_seconds": 20.24}
    page = reporting.write_report(est, X, y, tmp_path / "b", training=training)
    facts = header(page.read_text())
    assert facts["Trained on"] == "train.gz (train): 60,000 images"
    assert facts["Training time"] == "20.2 s (2 epochs)"


# --- the page in headless Chromium ----------------------------------------------------
@pytest.fixture
def browser(tmp_path, monkeypatch):
    driver = chromium_driver(tmp_path / "profile", "1366,768", monkeypatch)
    yield driver
    driver.quit()


def test_report_page_fits_a_laptop_screen(tmp_path, browser):
    """Issue 13.5: sample_predictions.png was wider than the page (1265 px)."""
    X, y, answers = fashion_case()
    est = Answers().fit(X, y, answers=answers)
    page = reporting.write_report(est, X, y, tmp_path / "report")
    browser.get(page.as_uri())
    width, inner = browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert inner == 1366
    assert width <= inner, f"the page scrolls sideways: {width} > {inner} px"
    images = browser.execute_script(
        "return [...document.images].map(i => [i.getAttribute('src'), "
        "i.naturalWidth, i.getBoundingClientRect().right])"
    )
    assert len(images) == 5
    for src, natural, right in images:
        assert natural > 0, f"{src} did not load"
        assert right <= inner, f"{src} is cut at the right edge"
    # the header is on the first screen
    top = browser.execute_script(
        "return document.querySelector('table.facts').getBoundingClientRect().bottom"
    )
    assert top < 768


# --- the report's figures and table read well (issue 31.5) -------------------------
EMNIST_47 = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt"))


def test_report_of_digits_with_a_47_class_model_shows_only_their_classes(
    tmp_path, monkeypatch
):
    """Issue 31.5: an MNIST report drew 37 empty rows for absent classes."""
    n = 200
    X, _ = bar_images(n, rng=0)
    y = EMNIST_47[np.arange(n) % 10]  # digits only
    answers = y.copy()
    answers[:3] = "e"  # one class the images do not hold, predicted
    est = Answers().fit(X.reshape(n, 784), y, answers=answers)
    est.classes_ = EMNIST_47.copy()  # the model knows all 47
    made = spy_figures(monkeypatch)
    page = reporting.write_report(est, X.reshape(n, 784), y, tmp_path).read_text()
    ax = made["plot_confusion_matrix"].axes[0]
    present = [*"0123456789", "e"]
    assert [t.get_text() for t in ax.get_yticklabels()] == present
    assert [t.get_text() for t in ax.get_xticklabels()] == present
    assert ax.images[0].get_array().shape == (11, 11)
    rows = [row[0] for row in table_rows(page, "per-class")]
    assert rows == [*present, "macro avg", "weighted avg"]


def test_47_class_matrix_labels_every_class_readably_at_page_width():
    """Issue 31.5: the 47-class matrix's 8-point labels were drawn on a figure
    1.5 times the page's width, so the page showed them at about 5 points."""
    y_true = np.repeat(EMNIST_47, 3)
    y_pred = np.roll(y_true, 1)
    fig = plot_confusion_matrix(y_true, y_pred, labels=EMNIST_47)
    ax = fig.axes[0]
    width = fig.get_size_inches()[0]
    assert width <= reporting.PAGE_INCHES  # shown at its own size in the page
    for ticks in (ax.get_xticklabels(), ax.get_yticklabels()):
        assert [t.get_text() for t in ticks] == EMNIST_47.tolist()  # each class
        assert {t.get_fontsize() for t in ticks} == {
            reporting.tick_font_size(47, width)
        }
        assert min(t.get_fontsize() for t in ticks) >= 8
    # neighbouring labels do not overlap once drawn
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.get_xticklabels()]
    assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:], strict=False))
    # few classes: larger labels, never above 11 points
    assert reporting.tick_font_size(10, 5.0) == 11.0


def test_learning_curves_mark_whole_epochs_only():
    """Issue 31.5: three epochs were marked 1.00, 1.25, ..., 3.00."""
    fig = plot_learning_curves({"loss": [0.9, 0.6, 0.5], "accuracy": [0.5, 0.7, 0.8]})
    fig.canvas.draw()
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks == [1.0, 2.0, 3.0]


def test_per_class_scores_are_an_html_table_with_escaped_names(tmp_path):
    """Issue 31.5: the per-class scores were preformatted text."""
    X, y, answers = fashion_case()
    names = ["<b>" + c + "</b> & co" for c in FASHION]
    est = Answers().fit(X, y, answers=answers)
    class_names = [names[FASHION.tolist().index(c)] for c in est.classes_]
    page = reporting.write_report(
        est, X, y, tmp_path, class_names=class_names
    ).read_text()
    assert "<pre>" not in page and "<b>T-shirt" not in page  # escaped
    table = re.search(r'<table class="per-class">(.*?)</table>', page, re.S)[1]
    assert re.findall(r"<th>(.*?)</th>", table) == [
        "class", "precision", "recall", "F1", "images"
    ]  # fmt: skip
    rows = table_rows(page, "per-class")
    assert [row[0] for row in rows[:10]] == names  # one row per class, in order
    assert len(rows) == 12  # and the macro and weighted averages
    from sklearn.metrics import recall_score

    recall = recall_score(y, answers, labels=FASHION, average=None)
    assert [float(row[2]) for row in rows[:10]] == pytest.approx(recall, abs=5e-4)
    assert [int(row[4]) for row in rows[:10]] == [20] * 10
