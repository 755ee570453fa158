"""The ``emnist-estimators`` command line (also ``python -m emnist_estimators``).

One ``_add_<cmd>_arguments(parser)`` and one ``_run_<cmd>(args) -> int`` per
command. Exit codes scripts can rely on: 0 success, 1 runtime failure (data,
network, training), 2 bad usage or input. A traceback only with ``--debug``.
Progress goes to stderr, results to stdout (``--json`` for machines).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import logging
import sys
import time
from pathlib import Path

from .exceptions import EmnistEstimatorsError
from .output_folder import check_output_folder, output_folder, write_manifest
from .threads import set_num_threads

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

log = logging.getLogger("emnist_estimators.cli")


class UsageError(EmnistEstimatorsError, ValueError):
    """Bad command-line input: exit code 2."""


# --- helpers -----------------------------------------------------------------
def _emit(args, result: dict, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, default=str))
    elif not getattr(args, "quiet", False):
        print(text)


def _parse_params(pairs: list[str]) -> dict:
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param expects KEY=VALUE, got {pair!r}.")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value  # a plain string such as relu
    return params


def _add_data_source(parser, *, subset="train"):
    parser.add_argument(
        "--dataset",
        required=True,
        help="digits | emnist:<split> | folder of IDX files | file.csv | file.mat",
    )
    parser.add_argument("--subset", default=subset, choices=["train", "test"])
    parser.add_argument(
        "--data-home", default=None, help="EMNIST folder ($EMNIST_DATA)"
    )
    parser.add_argument(
        "--max-samples", type=int, default=None, help="use a stratified sample this big"
    )


def _load(args, *, subset=None, random_state=0):
    from .sources import load_source

    data = load_source(args.dataset, subset or args.subset, data_home=args.data_home)
    if args.max_samples and args.max_samples < len(data.y):
        from sklearn.model_selection import train_test_split

        X, _, y, _ = train_test_split(
            data.X,
            data.y,
            train_size=args.max_samples,
            stratify=data.y,
            random_state=random_state,
        )
        data.X, data.y = X, y
    return data


def _add_overwrite(parser):
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the output folder if an earlier emnist-estimators run wrote "
        "it (never any other folder or file); default: refuse an existing folder",
    )


def _add_output(parser, default=None):
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--json", action="store_true", help="print results as JSON")


def _estimator(model: str, params: dict):
    from .estimators import EmnistCNN, EmnistMLP

    cls = {"mlp": EmnistMLP, "cnn": EmnistCNN}[model]
    valid = cls().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise UsageError(
            f"Unknown {cls.__name__} parameter(s) {unknown}; valid: {sorted(valid)}."
        )
    for key in ("hidden_layer_sizes", "filters", "dense_units", "image_shape"):
        if isinstance(params.get(key), int):
            params[key] = (params[key],)
    return cls(**params)


def _epoch_progress(enabled: bool, epochs: int):
    """A Keras callback drawing one tqdm bar over epochs, with loss/accuracy."""
    import keras
    from tqdm.auto import tqdm

    class EpochBar(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(
                total=epochs,
                desc="training",
                unit="epoch",
                disable=not enabled,
                file=sys.stderr,
            )

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return EpochBar()


def _load_model(path):
    if not Path(path).exists():  # before importing TensorFlow: fail fast
        raise UsageError(f"Model file {path} does not exist.")
    from .estimators import load_model

    return load_model(path)


# --- data ----------------------------------------------------------------------
def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", required=True)
    dl = sub.add_parser("download", help="download EMNIST files from NIST")
    dl.add_argument(
        "--split", default="balanced", help="EMNIST split (default: balanced)"
    )
    dl.add_argument(
        "--subset", default="all", choices=["train", "test", "all"], help="default: all"
    )
    dl.add_argument("--data-home", default=None, help="folder (default: $EMNIST_DATA)")
    dl.add_argument("--url", default=None, help="archive URL or mirror")
    _add_output(dl)
    info = sub.add_parser("info", help="show which EMNIST files are present")
    info.add_argument("--data-home", default=None)
    info.add_argument("--checksums", action="store_true", help="verify sha256 of files")
    _add_output(info)
    clean = sub.add_parser(
        "clean",
        help="remove the .npy caches this package built and temp files left by "
        "killed runs (never a data file)",
    )
    clean.add_argument(
        "--data-home", default=None, help="folder (default: $EMNIST_DATA)"
    )
    clean.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be removed, remove nothing",
    )
    _add_output(clean)


def _run_data(args) -> int:
    from .datasets import load_emnist
    from .datasets.loader import data_info

    if args.data_command == "clean":
        from .datasets import clean_cache

        removed = clean_cache(args.data_home, dry_run=args.dry_run)
        verb = "would remove" if args.dry_run else "removed"
        size = (
            sum(p.stat().st_size for p in removed if p.exists())
            if args.dry_run
            else None
        )
        lines = [str(p) for p in removed] + [
            f"{verb} {len(removed)} file(s)"
            + (f", {size / 2**20:,.1f} MiB" if size is not None else "")
        ]
        _emit(
            args,
            {
                "dry_run": args.dry_run,
                verb.replace(" ", "_"): [str(p) for p in removed],
            },
            "\n".join(lines),
        )
        return EXIT_OK
    if args.data_command == "download":
        bunch = load_emnist(
            args.split,
            args.subset,
            data_home=args.data_home,
            url=args.url,
            progress=not (args.quiet or args.json),
        )
        folder = Path(bunch.files[0].images).parent
        _emit(
            args,
            {
                "split": args.split,
                "subset": args.subset,
                "n_samples": len(bunch.target),
                "n_classes": len(bunch.target_names),
                "folder": str(folder),
            },
            f"EMNIST {args.split}/{args.subset}: {len(bunch.target):,} images, "
            f"{len(bunch.target_names)} classes, files in {folder}",
        )
        return EXIT_OK
    rows = data_info(args.data_home, checksums=args.checksums)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("No EMNIST files found.")
    for row in rows:
        check = {True: "sha256 ok", False: "sha256 MISMATCH", None: ""}[
            row["sha256_ok"]
        ]
        print(f"{row['size']:>12,}  {row['path']}  {row['kind']}  {check}".rstrip())
    bad = [r for r in rows if r["sha256_ok"] is False]
    return EXIT_ERROR if bad else EXIT_OK


# --- demo ------------------------------------------------------------------------
def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--output", default="emnist-demo-output", help="report folder")
    _add_overwrite(parser)
    parser.add_argument("--random-state", type=int, default=0)
    _add_output(parser)


def _run_demo(args) -> int:
    from .demo import run_demo

    result = run_demo(
        model=args.model,
        epochs=args.epochs,
        output=args.output,
        random_state=args.random_state,
        overwrite=args.overwrite,
    )
    _emit(
        args,
        result,
        f"{result['model']} on the digits demo: test accuracy "
        f"{result['accuracy']:.4f} in {result['fit_seconds']:.1f} s; report "
        f"written to {result['report']}",
    )
    return EXIT_OK


# --- train ----------------------------------------------------------------------
def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=["mlp", "cnn"], default="cnn")
    _add_data_source(parser)
    parser.add_argument(
        "--test-size",
        type=float,
        default=None,
        help="hold out this stratified share of the data and report its accuracy "
        "(default: evaluate on the test subset when it exists)",
    )
    parser.add_argument("--output", required=True, help="folder for model and metrics")
    _add_overwrite(parser)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--dropout", type=float)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="any constructor parameter, e.g. --param batch_norm=True (repeatable)",
    )
    parser.add_argument("--report", action="store_true", help="also write the report")
    _add_output(parser)


def _run_train(args) -> int:
    import numpy as np

    from .sources import has_test_subset

    output = check_output_folder(args.output, overwrite=args.overwrite)
    params = _parse_params(args.param)
    for key in ("epochs", "batch_size", "learning_rate", "dropout", "random_state"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    clf = _estimator(args.model, params)
    data = _load(args, random_state=args.random_state)
    X_test = y_test = None
    if args.test_size:
        from sklearn.model_selection import train_test_split

        X, X_test, y, y_test = train_test_split(
            data.X,
            data.y,
            test_size=args.test_size,
            stratify=data.y,
            random_state=args.random_state,
        )
    else:
        X, y = data.X, data.y
    with output_folder(output, overwrite=args.overwrite, command="train") as tmp:
        start = time.perf_counter()
        show = not (args.quiet or args.json)
        clf.fit(X, y, callbacks=[_epoch_progress(show, clf.epochs)])
        seconds = time.perf_counter() - start
        metrics = {
            "model": type(clf).__name__,
            "dataset": data.description,
            "n_train": int(len(y)),
            "fit_seconds": round(seconds, 2),
            "epochs_run": clf.n_iter_,
        }
        if X_test is None and args.subset == "train" and has_test_subset(args.dataset):
            with contextlib.suppress(EmnistEstimatorsError, FileNotFoundError):
                test = _load(args, subset="test")
                X_test, y_test = test.X, test.y
        if X_test is not None:
            metrics["test_accuracy"] = float(clf.score(X_test, y_test))
            metrics["n_test"] = int(len(y_test))
        clf.save(tmp / "model.keras")
        params_out = {k: v for k, v in clf.get_params().items() if k != "callbacks"}
        (tmp / "params.json").write_text(json.dumps(params_out, indent=2, default=str))
        (tmp / "history.json").write_text(json.dumps(clf.history_, indent=2))
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        report = None
        if args.report and X_test is not None:
            from .reporting import write_report

            write_report(
                clf,
                X_test,
                np.asarray(y_test),
                tmp / "report",
                title=f"{type(clf).__name__} on {data.description}",
            )
            report = output / "report" / "index.html"
        elif args.report:
            log.warning(
                "--report needs held-out images: add --test-size (e.g. 0.2) "
                "or use a dataset with a test subset; no report written."
            )
    metrics["output"] = str(output)
    if report is not None:
        metrics["report"] = str(report)
    text = (
        f"{metrics['model']} trained on {metrics['n_train']:,} images "
        f"in {seconds:.1f} s"
    )
    if "test_accuracy" in metrics:
        text += (
            f"; test accuracy {metrics['test_accuracy']:.4f} on {metrics['n_test']:,}"
        )
    text += f"; saved to {output / 'model.keras'}"
    if report is not None:
        text += f"; report written to {report}"
    _emit(args, metrics, text)
    return EXIT_OK


# --- evaluate ---------------------------------------------------------------------
def _add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_file", help="model.keras written by train")
    _add_data_source(parser, subset="test")
    _add_output(parser)


def _run_evaluate(args) -> int:
    from sklearn.metrics import classification_report

    clf = _load_model(args.model_file)
    data = _load(args)
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
    _emit(args, result, text)
    return EXIT_OK


# --- predict ----------------------------------------------------------------------
def _add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_file", help="model.keras written by train")
    parser.add_argument(
        "inputs",
        nargs="+",
        help="image files (PNG, JPEG...), or .npy / .csv files of 784-pixel rows",
    )
    parser.add_argument("--top", type=int, default=3, help="classes to show per input")
    _add_output(parser)


def _predict_inputs(paths):
    import numpy as np

    from .images import read_image, to_emnist

    names, rows = [], []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"Input {path} does not exist.")
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False).reshape(-1, 784)
            names += [f"{path.name}[{i}]" for i in range(len(arr))]
            rows.append(arr)
        elif path.suffix == ".csv":
            arr = np.loadtxt(path, delimiter=",", ndmin=2)
            if arr.shape[1] == 785:  # label,pixels export: drop the label
                arr = arr[:, 1:]
            if arr.shape[1] != 784:
                raise UsageError(
                    f"{path}: rows must have 784 pixels, got {arr.shape[1]}."
                )
            names += [f"{path.name}[{i}]" for i in range(len(arr))]
            rows.append(arr)
        else:
            rows.append(to_emnist(read_image(path)).reshape(1, 784))
            names.append(path.name)
    X = np.concatenate([np.asarray(r, dtype=np.float32) for r in rows])
    return names, X


def _run_predict(args) -> int:
    import numpy as np

    from .images import is_blank

    clf = _load_model(args.model_file)
    names, X = _predict_inputs(args.inputs)
    proba = clf.predict_proba(X)
    blank = is_blank(X)
    top = np.argsort(-proba, axis=1)[:, : max(1, args.top)]
    results = [
        {
            "input": name,
            "prediction": str(clf.classes_[order[0]]),
            # no character in the picture: the label above is a forced guess
            "blank": bool(empty),
            "top": [
                {"class": str(clf.classes_[j]), "probability": round(float(p[j]), 4)}
                for j in order
            ],
        }
        for name, p, order, empty in zip(names, proba, top, blank, strict=True)
    ]
    lines = [
        f"{r['input']}: {r['prediction']}  ("
        + ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"])
        + ")"
        + ("  BLANK: no character found, the label means nothing" if r["blank"] else "")
        for r in results
    ]
    _emit(args, {"predictions": results}, "\n".join(lines))
    if blank.any() and not args.json:
        log.warning(
            "%d of %d inputs are blank (one grey level, e.g. all white, all black "
            "or transparent); their labels are guesses.",
            blank.sum(),
            len(blank),
        )
    return EXIT_OK


# --- report ------------------------------------------------------------------------
def _add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_file", help="model.keras written by train")
    _add_data_source(parser, subset="test")
    parser.add_argument("--output", required=True, help="report folder")
    _add_overwrite(parser)
    _add_output(parser)


def _run_report(args) -> int:
    from .reporting import write_report

    output = check_output_folder(args.output, overwrite=args.overwrite)
    clf = _load_model(args.model_file)
    data = _load(args)
    with output_folder(output, overwrite=args.overwrite, command="report") as tmp:
        write_report(
            clf,
            data.X,
            data.y,
            tmp,
            title=f"{type(clf).__name__} on {data.description}",
        )
    metrics = json.loads((output / "metrics.json").read_text())
    _emit(
        args,
        {**metrics, "report": str(output / "index.html")},
        f"accuracy {metrics['accuracy']:.4f}; "
        f"report written to {output / 'index.html'}",
    )
    return EXIT_OK


# --- tune ----------------------------------------------------------------------------
def _add_tune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    _add_data_source(parser)
    parser.add_argument(
        "--n-trials", type=int, default=20, help="trials for this worker"
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds")
    parser.add_argument(
        "--storage",
        default=None,
        help="optuna storage URL (sqlite:///study.db, postgresql://...) or "
        "journal:FILE; default: sqlite in the output folder",
    )
    parser.add_argument("--study-name", default=None, help="default: emnist-<model>")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue (or join) an existing study of that name",
    )
    parser.add_argument(
        "--pruner", default="median", choices=["median", "hyperband", "halving", "none"]
    )
    parser.add_argument(
        "--cv", type=int, default=None, help="k-fold instead of hold-out"
    )
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--random-state", type=int, default=None)
    parser.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="fixed estimator parameter (repeatable)",
    )
    parser.add_argument("--output", default="emnist-tuning", help="folder for figures")
    parser.add_argument("--no-plots", action="store_true")
    _add_output(parser)


def _run_tune(args) -> int:
    from .output_folder import discard_created, prepare_reusable

    params = _parse_params(args.param)
    if args.epochs:
        params["epochs"] = args.epochs
    clf = _estimator(args.model, params)
    if args.n_trials <= 0:
        raise UsageError(f"--n-trials must be positive, got {args.n_trials}.")
    check_output_folder(args.output, reuse=True)
    data = _load(args, random_state=args.random_state or 0)
    output, created = prepare_reusable(args.output, command="tune")
    try:
        result, text, written = _tune(args, clf, data, output)
    except BaseException:
        # A failed run leaves nothing it created - unless trials were stored
        # in the default study file, which --resume can continue.
        db = output / "study.db"
        if created and not (args.storage is None and _stored_trials(db)):
            discard_created(output, created, files=["study.db"])
        raise
    write_manifest(output, command="tune", files=written)
    _emit(args, result, text)
    return EXIT_OK


def _stored_trials(db: Path) -> int:
    """Trials in the SQLite study file ``db`` (0 when absent or unreadable)."""
    import sqlite3

    if not db.is_file():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            return con.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    except sqlite3.Error:
        return 0


def _tune(args, clf, data, output: Path):
    from .tuning import EmnistSearchCV

    storage = args.storage or f"sqlite:///{output / 'study.db'}"
    study_name = args.study_name or f"emnist-{args.model}"
    search = EmnistSearchCV(
        clf,
        n_trials=args.n_trials,
        timeout=args.timeout,
        cv=args.cv,
        pruner=args.pruner,
        storage=storage,
        study_name=study_name,
        load_if_exists=args.resume,
        refit=False,
        random_state=args.random_state,
        show_progress_bar=not (args.quiet or args.json),
    ).fit(data.X, data.y)
    study = search.study_
    figures = [] if args.no_plots else _tuning_figures(study, output)
    done = [
        t for t in study.trials if t.value is not None and t.state.name == "COMPLETE"
    ]
    best = sorted(done, key=lambda t: -t.value)[:5]
    counts = {
        s: sum(t.state.name == s for t in study.trials)
        for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
    }
    result = {
        "study_name": study.study_name,
        "storage": _safe_url(storage),
        "best_value": search.best_score_,
        "best_params": search.best_params_,
        "n_trials": len(study.trials),
        "states": counts,
        "epochs_spent": int(sum(search.cv_results_["epochs"])),
        "top": [
            {"number": t.number, "value": t.value, "params": t.params} for t in best
        ],
        "figures": [str(f) for f in figures],
    }
    summary = output / f"{study.study_name}-summary.json"
    summary.write_text(json.dumps(result, indent=2, default=str))
    header = f"{'trial':>5}  {'score':>7}  params"
    rows = [
        f"{t.number:>5}  {t.value:7.4f}  "
        + ", ".join(f"{k}={_short(v)}" for k, v in t.params.items())
        for t in best
    ]
    text = (
        f"study {study.study_name!r}: {len(study.trials)} trials "
        f"({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed); best {search.best_score_:.4f}\n"
        + "\n".join([header, *rows])
        + (f"\nfigures in {output}" if figures else "")
        + f"\nview: optuna-dashboard {_safe_url(storage)}"
    )
    written = [f.name for f in (*figures, summary)]
    if args.storage is None:
        written.append("study.db")
    return result, text, written


def _short(value):
    return f"{value:.4g}" if isinstance(value, float) else value


def _safe_url(url: str) -> str:
    from .tuning import _hide_password

    return _hide_password(url)


def _tuning_figures(study, output: Path) -> list[Path]:
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    written = []
    plots = {
        "optimization_history": ovm.plot_optimization_history,
        "param_importances": ovm.plot_param_importances,
        "parallel_coordinate": ovm.plot_parallel_coordinate,
        "intermediate_values": ovm.plot_intermediate_values,
    }
    for name, plot in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = plot(study)
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.set_size_inches(9, 5)
            fig.tight_layout()
            path = output / f"{study.study_name}-{name}.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            written.append(path)
        except Exception as exc:  # noqa: BLE001 - e.g. too few trials for importances
            log.warning("skipped the %s figure: %s", name, exc)
    return written


COMMANDS = {
    "data": ("download EMNIST and show what is cached", _add_data_arguments, _run_data),
    "demo": (
        "offline demo: train on scikit-learn's digits, print the accuracy",
        _add_demo_arguments,
        _run_demo,
    ),
    "train": (
        "train a model and save it with its metrics",
        _add_train_arguments,
        _run_train,
    ),
    "evaluate": (
        "score a saved model on a dataset",
        _add_evaluate_arguments,
        _run_evaluate,
    ),
    "predict": (
        "classify image files or pixel arrays",
        _add_predict_arguments,
        _run_predict,
    ),
    "report": ("write figures and an HTML report", _add_report_arguments, _run_report),
    "tune": ("search hyper-parameters with optuna", _add_tune_arguments, _run_tune),
}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="emnist-estimators",
        description="Neural-network classifiers for handwritten characters (EMNIST).",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads for TensorFlow (default: the cores this process may use; "
        "also $EMNIST_ESTIMATORS_THREADS)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_, add_args, _) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_, description=help_))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING)
    try:
        if args.threads is not None:
            set_num_threads(args.threads)
        return COMMANDS[args.command][2](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        usage = isinstance(exc, (ValueError, TypeError, FileNotFoundError))
        if not isinstance(exc, (EmnistEstimatorsError, ValueError, TypeError, OSError)):
            msg = f"{type(exc).__name__}: {exc}"
        else:
            msg = str(exc)
        print(f"emnist-estimators: error: {msg}", file=sys.stderr)
        return EXIT_USAGE if usage else EXIT_ERROR
