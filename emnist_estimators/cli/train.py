"""``emnist-estimators train`` and ``demo``: fit a model, save it as a training run.

``train`` loads the data, holds out ``--test-size`` of it (or scores the
dataset's test subset), fits, and writes the run folder through
:mod:`emnist_estimators.runs`, which records which rows were held out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

from .._utils import resolve_precision
from ..callbacks import EpochProgressBar
from ..demo import run_demo
from ..exceptions import EmnistEstimatorsError
from ..output_folder import check_output_folder, output_folder
from ..reporting import write_report
from ..runs import (
    DataSource,
    data_description,
    source_key,
    take,
    training_facts,
    write_run,
)
from ..sources import has_test_subset
from ..tracking import start_run, tracking_uri
from . import loading
from .console import EXIT_OK, emit, import_tensorflow

__all__ = ["run_demo_command", "run_train"]

log = logging.getLogger("emnist_estimators.cli")


def run_demo_command(args) -> int:
    """Run ``demo``: train on scikit-learn's digits and print the accuracy.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit code, 0.
    """
    import_tensorflow(args)
    result = run_demo(
        model=args.model,
        epochs=args.epochs,
        output=args.output,
        random_state=args.random_state,
        overwrite=args.overwrite,
        progress=not (args.quiet or args.json),
    )
    emit(
        args,
        result,
        f"{result['model']} on the digits demo: test accuracy "
        f"{result['accuracy']:.4f} in {result['fit_seconds']:.1f} s; report "
        f"written to {result['report']}",
    )
    return EXIT_OK


def _check_checkpoint_dir(checkpoint_dir: str | None, output: Path) -> None:
    """Refuse a checkpoint folder the output folder would replace or hold.

    The output folder is written whole at the end of training (a temporary
    folder renamed into place): checkpoints inside it would be lost with a
    finished training, and --overwrite could not replace what they left.
    """
    if checkpoint_dir is None:
        return
    ckpt, out = Path(checkpoint_dir).resolve(), Path(output).resolve()
    if ckpt == out or out in ckpt.parents:
        raise ValueError(
            f"--checkpoint-dir {checkpoint_dir} is inside --output {output}, "
            "which is written whole when training ends: give a folder outside "
            "it, e.g. --checkpoint-dir "
            f"{Path(output).name}-checkpoints."
        )


def _data_source(args) -> DataSource:
    """Which images ``train`` uses and holds out, as the run records them."""
    home = args.data_home
    return DataSource(
        dataset=source_key(args.dataset),
        subset=args.subset,
        max_samples=args.max_samples,
        test_size=args.test_size,
        random_state=args.random_state,
        data_home=None if home is None else str(Path(home).expanduser().resolve()),
    )


def run_train(args) -> int:
    """Run ``train``: fit the model and write the run folder.

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
    _check_checkpoint_dir(args.checkpoint_dir, output)
    uri = tracking_uri(args.mlflow)  # MLflow missing: said before any work
    params = loading.parse_params(args.param)
    for key in (
        "epochs",
        "batch_size",
        "learning_rate",
        "dropout",
        "random_state",
        "checkpoint_dir",
    ):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    clf = loading.make_estimator(args, params)
    source = _data_source(args)
    data = loading.load_data(args, sampled=False)
    train_rows, held_out_rows = source.split(data.y)
    train = take(data, train_rows)
    test = None
    if held_out_rows is not None:
        about = data_description(data.description, args.dataset)
        test = take(data, held_out_rows, source.held_out_description(about))
    tracked: contextlib.AbstractContextManager = contextlib.nullcontext()
    if uri is not None:
        tags = {"command": "train", "dataset": args.dataset, "model": args.model}
        name = f"train {args.model} on {args.dataset}"
        tracked = start_run(
            uri, experiment=args.mlflow_experiment, run_name=name, tags=tags
        )
    with tracked as run:
        metrics, report, seconds = _fit_and_write(
            args, clf, data, source, train, test, held_out_rows, output
        )
        if run is not None:
            _log_train(run, clf, metrics, output)
            metrics["mlflow_run_id"] = run.run_id
    metrics["output"] = str(output)
    if report is not None:
        metrics["report"] = str(output / report)
    emit(args, metrics, _train_text(metrics, seconds, output))
    return EXIT_OK


def _fit_and_write(args, clf, data, source, train, test, held_out_rows, output):
    """Fit, score the held-out images, write the run folder (and its report)."""
    with output_folder(output, overwrite=args.overwrite, command="train") as tmp:
        start = time.perf_counter()
        bar = EpochProgressBar(clf.epochs, enabled=not (args.quiet or args.json))
        clf.fit(train.X, train.y, callbacks=[bar])
        seconds = time.perf_counter() - start
        metrics = {
            "model": type(clf).__name__,
            "dataset": data.description,
            "n_train": int(len(train.y)),
            "fit_seconds": round(seconds, 2),
            "epochs_run": clf.n_iter_,
            # what evaluate reads: to warn when it scores the training
            # images, and to find the held-out ones (--subset held-out)
            "data_source": source.to_dict(),
        }
        if test is None and (test := _test_subset(args)) is not None:
            about = data_description(test.description, args.dataset)
            test = dataclasses.replace(test, description=about)
        if test is not None:
            metrics["test_accuracy"] = float(clf.score(test.X, test.y))
            metrics["n_test"] = int(len(test.y))
        metrics = write_run(tmp, clf, metrics, data=data, held_out_rows=held_out_rows)
        report = _train_report(args, clf, metrics, test, tmp)
    return metrics, report, seconds


def _log_train(run, clf, metrics: dict, output: Path) -> None:
    """Log a finished training to MLflow: what the run folder holds, and ONNX."""
    run.log_estimator(clf)
    # the images: dataset, subset, max_samples, test_size, random_state
    run.log_params(metrics.get("data_source") or {}, prefix="data.")
    run.log_metrics(metrics)
    run.set_tags({"precision": resolve_precision(clf.precision) or "float32"})
    # model.keras, params/history/metrics.json, report/ (with --report)
    run.log_artifacts(output)
    run.log_onnx(clf)


def _train_text(metrics: dict, seconds: float, output: Path) -> str:
    text = (
        f"{metrics['model']} trained on {metrics['n_train']:,} images "
        f"in {seconds:.1f} s"
    )
    if "test_accuracy" in metrics:
        text += (
            f"; test accuracy {metrics['test_accuracy']:.4f} on {metrics['n_test']:,}"
        )
    text += f"; saved to {output / 'model.keras'}"
    if "report" in metrics:
        text += f"; report written to {metrics['report']}"
    if "mlflow_run_id" in metrics:
        text += f"; logged to MLflow run {metrics['mlflow_run_id']}"
    return text


def _test_subset(args):
    """The dataset's own test subset, or None where it has none."""
    if args.subset == "train" and has_test_subset(args.dataset):
        with contextlib.suppress(EmnistEstimatorsError, FileNotFoundError):
            return loading.load_data(args, subset="test")
    return None


def _train_report(args, clf, metrics, test, folder: Path):
    """Write ``--report`` into ``folder/report``; its page relative to ``folder``."""
    if not args.report:
        return None
    if test is None:
        log.warning(
            "--report needs held-out images: add --test-size (e.g. 0.2) "
            "or use a dataset with a test subset; no report written."
        )
        return None
    write_report(
        clf,
        test.X,
        np.asarray(test.y),
        folder / "report",
        title=f"{type(clf).__name__} on {args.dataset}",
        data=test.description,
        training=training_facts(metrics),
    )
    return Path("report", "index.html")
