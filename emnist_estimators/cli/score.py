"""``emnist-estimators evaluate`` and ``report``: score a saved model on a dataset.

Both warn when the score cannot be trusted: labels the model does not know,
or images its ``train`` run learnt from (as its record says); both can score
exactly the images that run held out (``--subset held-out``).
"""

from __future__ import annotations

import json
import logging

import numpy as np

from ..output_folder import check_output_folder, output_folder
from ..reporting import write_report
from ..runs import data_description, read_run, source_key, training_facts
from ..sources import has_test_subset
from ..tracking import start_run, tracking_uri
from . import loading
from .console import EXIT_OK, emit
from .parser import HELD_OUT

__all__ = ["run_evaluate", "run_report"]

log = logging.getLogger("emnist_estimators.cli")


def run_evaluate(args) -> int:
    """Run ``evaluate``: print the model's accuracy (and per-class table).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit code, 0.
    """
    from sklearn.metrics import classification_report

    clf = loading.load_model_file(args)
    data = loading.load_data(args)
    _warn_unknown_labels(clf, data)
    _warn_trained_on(args)
    accuracy = float(clf.score(data.X, data.y))
    result = {
        "accuracy": accuracy,
        "n_samples": int(len(data.y)),
        "dataset": data.description,
    }
    text = f"accuracy {accuracy:.4f} on {len(data.y):,} images of {data.description}"
    if not args.json and not args.quiet:
        text += "\n" + classification_report(
            data.y, clf.predict(data.X), zero_division=0
        )
    emit(args, result, text)
    return EXIT_OK


def run_report(args) -> int:
    """Run ``report``: write the figures and HTML page of the model's scores.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit code, 0.
    """
    output = check_output_folder(args.output, overwrite=args.overwrite)
    uri = tracking_uri(args.mlflow)  # MLflow missing: said before any work
    clf = loading.load_model_file(args)
    data = loading.load_data(args)
    _warn_unknown_labels(clf, data)
    _warn_trained_on(args)
    run = read_run(args.model_file)
    dataset, about = args.dataset, data.description  # held-out: named in full
    if args.subset != HELD_OUT:
        about = data_description(data.description, args.dataset)
    elif dataset is None:
        # a run read for its held-out rows always records its source
        dataset = run.source.dataset  # type: ignore[union-attr]
    with output_folder(output, overwrite=args.overwrite, command="report") as tmp:
        write_report(
            clf,
            data.X,
            data.y,
            tmp,
            title=f"{type(clf).__name__} on {dataset}",
            data=about,
            training=training_facts(run.metrics),
        )
    metrics = json.loads((output / "metrics.json").read_text())
    result = {**metrics, "report": str(output / "index.html")}
    text = f"accuracy {metrics['accuracy']:.4f}; report written to {result['report']}"
    if uri is not None:
        result["mlflow_run_id"] = _log_report(args, uri, clf, dataset, metrics, output)
        text += f"; logged to MLflow run {result['mlflow_run_id']}"
    emit(args, result, text)
    return EXIT_OK


def _log_report(args, uri: str, clf, dataset, metrics: dict, output) -> str:
    """Log a written report to MLflow: its scores, and its folder as artifacts."""
    tags = {"command": "report", "dataset": dataset, "subset": args.subset}
    with start_run(
        uri,
        experiment=args.mlflow_experiment,
        run_name=f"report {type(clf).__name__} on {dataset}",
        tags={**tags, "model_file": args.model_file},
    ) as run:
        run.log_params(clf.get_params())
        run.log_metrics(metrics)
        run.log_artifacts(output, "report")
    return run.run_id


def _warn_unknown_labels(clf, data) -> None:
    """Warn when test labels are not classes of the model: always wrong."""
    y = np.asarray(data.y).astype(str)
    labels = np.unique(y)
    unknown = np.setdiff1d(labels, np.asarray(clf.classes_).astype(str))
    if not len(unknown):
        return
    shown = ", ".join(repr(str(u)) for u in unknown[:5])
    shown += ", ..." if len(unknown) > 5 else ""
    log.warning(
        "%d of the %d labels in %s (%s) are not classes of the model, which "
        "knows %d: their %s images always count as wrong. Evaluate on the "
        "dataset the model was trained on, or train a model on this one.",
        len(unknown),
        len(labels),
        data.description,
        shown,
        len(clf.classes_),
        f"{int(np.isin(y, unknown).sum()):,}",
    )


def _warn_trained_on(args) -> None:
    """Warn when train's record says the model learnt from these images."""
    if args.subset == HELD_OUT:
        return  # exactly the images training did not learn from
    source = read_run(args.model_file).source
    if source is None:
        return  # no record (a model saved from Python): nothing to compare
    separate_test = has_test_subset(args.dataset)
    if source.dataset != source_key(args.dataset) or (
        separate_test and source.subset != args.subset
    ):
        return
    log.warning(
        "%s was trained on these images (%s, %s subset): the accuracy "
        "overstates what it does on new images; %s.",
        args.model_file,
        args.dataset,
        args.subset,
        _unseen_images(source, args.subset, separate_test),
    )


def _unseen_images(source, subset: str, separate_test: bool) -> str:
    """What to score instead: images the ``train`` run did not learn from."""
    ways = []
    if source.test_size:
        ways.append(f"--subset {HELD_OUT} (the images train held out)")
    if separate_test:
        ways.append("--subset " + ("train" if subset == "test" else "test"))
    if not ways:
        return "hold images out at training with train --test-size"
    return "use " + " or ".join(ways)
