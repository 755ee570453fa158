"""The ``emnist-estimators`` command line (also ``python -m emnist_estimators``).

Argument parsing and dispatch only: one ``_add_<cmd>_arguments(parser)`` and
one ``_run_<cmd>(args) -> int`` per command, which call the package's modules
for the work (data: ``sources``, ``images``; training: the estimators and
``callbacks``; figures: ``reporting``; searches: ``tuning``). Exit codes
scripts can rely on: 0 success, 1 runtime failure (data, network, training),
2 bad usage or input. A traceback only with ``--debug``. Progress goes to
stderr, results to stdout (``--json`` for machines); ``--quiet`` keeps only
the result. TensorFlow's native log and optuna's per-trial lines are hidden
unless ``-v``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

# Nothing imported here may import TensorFlow: main() must set its log level
# first, and commands that never train (data, --help) should start fast.
from .exceptions import EmnistEstimatorsError
from .output_folder import check_output_folder, output_folder, write_manifest
from .threads import set_num_threads

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

log = logging.getLogger("emnist_estimators.cli")


class UsageError(EmnistEstimatorsError, ValueError):
    """Bad command-line input: exit code 2."""


# --- arguments shared by the commands -----------------------------------------
class _HelpFormatter(
    argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter
):
    """Each option's default after its help; examples printed as written.

    A help text that already says its default in words (``default: all``)
    is left alone, so ``None`` never shows as ``(default: None)``.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.required:
            return text
        return super()._get_help_string(action)


def _examples(*lines: str) -> str:
    """An epilog of command lines, shown under 'Examples:' in ``--help``."""
    return "Examples:\n" + "\n".join(f"  emnist-estimators {line}" for line in lines)


def _add_command(subparsers, name: str, help_: str, examples: list[str]):
    """A command's parser: its help, its options' defaults, its examples."""
    return subparsers.add_parser(
        name,
        help=help_,
        description=help_,
        epilog=_examples(*examples),
        formatter_class=_HelpFormatter,
    )


def _add_data_source(parser, *, subset="train"):
    parser.add_argument(
        "--dataset",
        required=True,
        help="digits | emnist:<split> | folder of IDX files | file.csv | file.mat",
    )
    parser.add_argument(
        "--subset",
        default=subset,
        choices=["train", "test"],
        help="which part of the dataset",
    )
    parser.add_argument(
        "--data-home",
        default=None,
        help="EMNIST folder for emnist:<split> (default: $EMNIST_DATA, else the "
        "user cache ~/.cache/emnist-estimators)",
    )
    parser.add_argument(
        "--max-samples",
        type=int,
        default=None,
        help="use a stratified sample this big (default: all images)",
    )


def _add_data_home(parser):
    parser.add_argument(
        "--data-home",
        default=None,
        help="EMNIST folder (default: $EMNIST_DATA, else the user cache "
        "~/.cache/emnist-estimators)",
    )


def _add_model_file(parser):
    parser.add_argument("model_file", help="model.keras written by train")


def _add_model_choice(parser, default):
    parser.add_argument(
        "--model",
        choices=["mlp", "cnn"],
        default=default,
        help="EmnistMLP (dense layers) or EmnistCNN (convolutions)",
    )


def _add_params(parser, help_):
    parser.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help=help_ + " (repeatable; default: none)",
    )


def _add_overwrite(parser):
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the output folder if an earlier emnist-estimators run wrote "
        "it (never any other folder or file); default: refuse an existing folder",
    )


def _add_output(parser):
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars or per-class tables: print only the result",
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    _add_verbose(parser, default=argparse.SUPPRESS)


def _add_verbose(parser, *, default=False):
    # on the main parser and on each command, so that both
    # "emnist-estimators -v train ..." and "... train ... -v" work; a command's
    # copy sets nothing unless given (SUPPRESS), so it never undoes the main one
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="show TensorFlow's native log (C++ lines such as I0000/W0000/E0000) "
        "and optuna's per-trial lines; default: hidden",
    )


# --- quiet by default: TensorFlow's native log, optuna's trial lines ----------
def _tensorflow(args) -> None:
    """Import TensorFlow now: unless ``--verbose``, with its start-up lines muted.

    TensorFlow's C++ side logs at import before its log level applies
    (``TF_CPP_MIN_LOG_LEVEL`` does not hide them), so file descriptor 2 is
    pointed away for the import alone; if the import fails, what it wrote is
    shown with the error.
    """
    if args.verbose or "tensorflow" in sys.modules:
        return
    with _native_stderr_muted():
        import tensorflow  # noqa: F401


@contextlib.contextmanager
def _native_stderr_muted():
    """Send what C code writes to stderr to a file; replay it on failure."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to mute
        yield
        return
    failed = True
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))


# --- steps the commands share -------------------------------------------------
def _emit(args, result: dict, text: str) -> None:
    """Print the result: JSON with ``--json``, else the text (even ``--quiet``)."""
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, default=str))
    else:
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


def _estimator(args, params: dict):
    _tensorflow(args)
    # the public names, wherever the package keeps them
    from emnist_estimators import EmnistCNN, EmnistMLP

    cls = {"mlp": EmnistMLP, "cnn": EmnistCNN}[args.model]
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


def _load_model(args):
    path = args.model_file
    if not Path(path).exists():  # before importing TensorFlow: fail fast
        raise UsageError(f"Model file {path} does not exist.")
    _tensorflow(args)
    from emnist_estimators import load_model

    return load_model(path)


# --- data ---------------------------------------------------------------------
def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", required=True)
    dl = _add_command(
        sub,
        "download",
        "download EMNIST files from NIST",
        ["data download --split balanced", "data download --split mnist --subset test"],
    )
    dl.add_argument("--split", default="balanced", help="EMNIST split")
    dl.add_argument(
        "--subset", default="all", choices=["train", "test", "all"], help="which part"
    )
    _add_data_home(dl)
    dl.add_argument(
        "--url",
        default=None,
        help="archive URL or mirror (default: $EMNIST_MIRROR_URL, else NIST's)",
    )
    _add_output(dl)
    info = _add_command(
        sub,
        "info",
        "show which EMNIST files are present",
        ["data info", "data info --data-home ~/emnist --checksums"],
    )
    _add_data_home(info)
    info.add_argument(
        "--checksums",
        action="store_true",
        help="verify the files' sha256 against the official ones",
    )
    _add_output(info)
    clean = _add_command(
        sub,
        "clean",
        "remove the .npy caches this package built and temp files left by "
        "killed runs (never a data file)",
        ["data clean --dry-run", "data clean --data-home ~/emnist"],
    )
    _add_data_home(clean)
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
    print(_info_text(args, rows))
    bad = [r for r in rows if r["sha256_ok"] is False]
    return EXIT_ERROR if bad else EXIT_OK


def _split_lines(home, summary) -> list[str]:
    """``data info``'s per-split table: status, then cache size or files needed."""
    where = "" if home.is_dir() else " (the folder does not exist)"
    lines = [f"EMNIST splits in {home}{where}:"]
    for row in summary:
        if row["missing"]:
            detail = "needs " + ", ".join(row["missing"])
        elif row["cache_bytes"]:
            detail = f"cache {row['cache_bytes'] / 2**20:,.1f} MiB"
        else:
            detail = "no cache yet"
        lines.append(f"  {row['split']:<9}{row['subset']:<6}{row['status']:<9}{detail}")
    return lines


def _info_text(args, rows) -> str:
    """``data info``'s text: the files found, the split table, how to get data."""
    from .datasets import get_data_home, how_to_get, split_summary

    home = get_data_home(args.data_home)
    summary = split_summary(args.data_home)
    lines = []
    for row in rows:
        check = {True: "sha256 ok", False: "sha256 MISMATCH", None: ""}[
            row["sha256_ok"]
        ]
        lines.append(
            f"{row['size']:>12,}  {row['path']}  {row['kind']}  {check}".rstrip()
        )
    lines += _split_lines(home, summary)
    if not any(row["status"] == "complete" for row in summary):
        hint = how_to_get(data_home=args.data_home)
        lines.append(f"No complete EMNIST split in {home}. {hint}")
    return "\n".join(lines)


# --- demo ---------------------------------------------------------------------
def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", choices=["cnn", "mlp"], default="cnn", help="classifier to train"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training epochs (default: 15 for the CNN, 30 for the MLP)",
    )
    parser.add_argument("--output", default="emnist-demo-output", help="report folder")
    _add_overwrite(parser)
    parser.add_argument(
        "--random-state", type=int, default=0, help="seed of the split and network"
    )
    _add_output(parser)


def _run_demo(args) -> int:
    _tensorflow(args)
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


# --- train --------------------------------------------------------------------
def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_choice(parser, "cnn")
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
    for flag, type_, what in (
        ("--epochs", int, "training epochs"),
        ("--batch-size", int, "images per gradient step"),
        ("--learning-rate", float, "the optimizer's initial learning rate"),
        ("--dropout", float, "dropout rate of the hidden (CNN: dense) layers"),
    ):
        parser.add_argument(
            flag, type=type_, help=f"{what} (default: the model's own default)"
        )
    parser.add_argument(
        "--random-state", type=int, default=0, help="seed of the network and splits"
    )
    _add_params(parser, "any constructor parameter, e.g. --param batch_norm=True")
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        metavar="DIR",
        help="save the training state each epoch here and resume from it after an "
        "interruption (default: none)",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="also write the HTML report of the held-out images into OUTPUT/report",
    )
    _add_output(parser)


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


def _run_train(args) -> int:
    output = check_output_folder(args.output, overwrite=args.overwrite)
    _check_checkpoint_dir(args.checkpoint_dir, output)
    params = _parse_params(args.param)
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
    clf = _estimator(args, params)
    data = _load(args, random_state=args.random_state)
    X, y, X_test, y_test = _held_out(args, data)
    tested = (
        f"{args.test_size:.0%} of {_about(args, data)}, held out"
        if X_test is not None
        else None
    )
    with output_folder(output, overwrite=args.overwrite, command="train") as tmp:
        from .callbacks import EpochProgressBar

        start = time.perf_counter()
        show = not (args.quiet or args.json)
        clf.fit(X, y, callbacks=[EpochProgressBar(clf.epochs, enabled=show)])
        seconds = time.perf_counter() - start
        metrics = {
            "model": type(clf).__name__,
            "dataset": data.description,
            "n_train": int(len(y)),
            "fit_seconds": round(seconds, 2),
            "epochs_run": clf.n_iter_,
            # what evaluate compares, to warn when it scores the training images
            "data_source": _data_source(args),
        }
        if X_test is None and (test := _test_subset(args)) is not None:
            X_test, y_test, tested = test.X, test.y, _about(args, test)
        if X_test is not None:
            metrics["test_accuracy"] = float(clf.score(X_test, y_test))
            metrics["n_test"] = int(len(y_test))
        _save_run(tmp, clf, metrics)
        report = _train_report(args, clf, metrics, X_test, y_test, tested, tmp)
    metrics["output"] = str(output)
    if report is not None:
        metrics["report"] = str(output / report)
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
        text += f"; report written to {metrics['report']}"
    _emit(args, metrics, text)
    return EXIT_OK


def _held_out(args, data):
    """``X, y, X_test, y_test``: ``--test-size`` held out, else no test part."""
    if not args.test_size:
        return data.X, data.y, None, None
    from sklearn.model_selection import train_test_split

    X, X_test, y, y_test = train_test_split(
        data.X,
        data.y,
        test_size=args.test_size,
        stratify=data.y,
        random_state=args.random_state,
    )
    return X, y, X_test, y_test


def _test_subset(args):
    """The dataset's own test subset, or None where it has none."""
    from .sources import has_test_subset

    if args.subset == "train" and has_test_subset(args.dataset):
        with contextlib.suppress(EmnistEstimatorsError, FileNotFoundError):
            return _load(args, subset="test")
    return None


def _about(args, data) -> str:
    """What ``data`` is, for report headers: a file of a folder names it."""
    return _in_folder(data.description, args.dataset)


def _in_folder(description: str, spec: str) -> str:
    # an IDX folder's description is its file name, e.g. t10k-images...gz
    folder = Path(spec).expanduser()
    return f"{description} in {folder}" if folder.is_dir() else description


def _training_facts(record: dict) -> dict:
    """train's metrics.json for a report header, its data named in full."""
    source = record.get("data_source")
    if "dataset" in record and isinstance(source, dict):
        dataset = _in_folder(record["dataset"], str(source.get("dataset")))
        return {**record, "dataset": dataset}
    return record


def _source_key(spec: str) -> str:
    """``--dataset`` as one comparable string: files and folders by full path."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def _data_source(args) -> dict:
    """Which images ``train`` used, as metrics.json records them."""
    return {
        "dataset": _source_key(args.dataset),
        "subset": args.subset,
        "test_size": args.test_size,
        "max_samples": args.max_samples,
    }


def _training_record(model_file) -> dict:
    """The metrics.json ``train`` wrote beside ``model_file``; {} if none."""
    path = Path(model_file).parent / "metrics.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):  # a model saved from Python has none
        return {}
    return record if isinstance(record, dict) else {}


def _save_run(folder: Path, clf, metrics: dict) -> None:
    clf.save(folder / "model.keras")
    params = {k: v for k, v in clf.get_params().items() if k != "callbacks"}
    (folder / "params.json").write_text(json.dumps(params, indent=2, default=str))
    (folder / "history.json").write_text(json.dumps(clf.history_, indent=2))
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))


def _train_report(args, clf, metrics, X_test, y_test, tested, folder: Path):
    """Write ``--report`` into ``folder/report``; its page relative to ``folder``."""
    if not args.report:
        return None
    if X_test is None:
        log.warning(
            "--report needs held-out images: add --test-size (e.g. 0.2) "
            "or use a dataset with a test subset; no report written."
        )
        return None
    import numpy as np

    from .reporting import write_report

    write_report(
        clf,
        X_test,
        np.asarray(y_test),
        folder / "report",
        title=f"{type(clf).__name__} on {args.dataset}",
        data=tested,
        training=_training_facts(metrics),
    )
    return Path("report", "index.html")


# --- evaluate -----------------------------------------------------------------
def _add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_file(parser)
    _add_data_source(parser, subset="test")
    _add_output(parser)


def _run_evaluate(args) -> int:
    from sklearn.metrics import classification_report

    clf = _load_model(args)
    data = _load(args)
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
    _emit(args, result, text)
    return EXIT_OK


def _warn_unknown_labels(clf, data) -> None:
    """Warn when test labels are not classes of the model: always wrong."""
    import numpy as np

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
    from .sources import has_test_subset

    source = _training_record(args.model_file).get("data_source")
    if not isinstance(source, dict):
        return  # no record (a model saved from Python): nothing to compare
    same_subset = source.get("subset") == args.subset
    if source.get("dataset") != _source_key(args.dataset) or not (
        same_subset or not has_test_subset(args.dataset)
    ):
        return
    fix = (
        "use --subset test"
        if has_test_subset(args.dataset)
        else "hold images out at training with train --test-size"
    )
    log.warning(
        "%s was trained on these images (%s, %s subset): the accuracy "
        "overstates what it does on new images; %s.",
        args.model_file,
        args.dataset,
        args.subset,
        fix,
    )


# --- predict ------------------------------------------------------------------
def _add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_file(parser)
    parser.add_argument(
        "inputs",
        nargs="+",
        help="image files (PNG, JPEG...), or .npy / .csv files of 784-pixel rows",
    )
    parser.add_argument(
        "--top", type=int, default=3, help="classes to show per input, best first"
    )
    _add_output(parser)


def _run_predict(args) -> int:
    import numpy as np

    from .images import is_blank, read_prediction_inputs

    clf = _load_model(args)
    names, X = read_prediction_inputs(args.inputs)
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


# --- report -------------------------------------------------------------------
def _add_report_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_file(parser)
    _add_data_source(parser, subset="test")
    parser.add_argument("--output", required=True, help="report folder")
    _add_overwrite(parser)
    _add_output(parser)


def _run_report(args) -> int:
    from .reporting import write_report

    output = check_output_folder(args.output, overwrite=args.overwrite)
    clf = _load_model(args)
    data = _load(args)
    _warn_unknown_labels(clf, data)
    _warn_trained_on(args)
    with output_folder(output, overwrite=args.overwrite, command="report") as tmp:
        write_report(
            clf,
            data.X,
            data.y,
            tmp,
            title=f"{type(clf).__name__} on {args.dataset}",
            data=_about(args, data),
            training=_training_facts(_training_record(args.model_file)),
        )
    metrics = json.loads((output / "metrics.json").read_text())
    _emit(
        args,
        {**metrics, "report": str(output / "index.html")},
        f"accuracy {metrics['accuracy']:.4f}; "
        f"report written to {output / 'index.html'}",
    )
    return EXIT_OK


# --- tune ---------------------------------------------------------------------
def _add_tune_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_choice(parser, "mlp")
    _add_data_source(parser)
    parser.add_argument(
        "--n-trials", type=int, default=20, help="trials for this worker"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="stop starting trials after this many seconds (default: no limit)",
    )
    parser.add_argument(
        "--storage",
        default=None,
        help="optuna storage URL (sqlite:///study.db, postgresql://...) or "
        "journal:FILE; default: sqlite in the output folder",
    )
    parser.add_argument(
        "--study-name", default=None, help="name in the storage (default: emnist-MODEL)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue (or join) an existing study of that name",
    )
    parser.add_argument(
        "--pruner",
        default="halving",
        choices=["median", "percentile", "hyperband", "halving", "none"],
        help="how unpromising trials are stopped early",
    )
    parser.add_argument(
        "--cv",
        type=int,
        default=None,
        help="k-fold cross-validation (default: one stratified hold-out set)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training epochs per trial (default: the model's own default)",
    )
    parser.add_argument(
        "--random-state",
        type=int,
        default=None,
        help="seed of the sampler, split and fits (default: unseeded)",
    )
    parser.add_argument(
        "--dask-scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the trials on the workers of this Dask scheduler, e.g. "
        "tcp://10.0.0.5:8786 (start it with `dask scheduler`, workers with "
        "`dask worker ADDRESS --nthreads 1`); default: in this process",
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        metavar="N",
        help="trials at once: with --dask-scheduler the trials of each wave "
        "(default: one per worker; give it for a reproducible study), else "
        "threads of this process, not reproducible (default: 1)",
    )
    _add_params(parser, "fixed estimator parameter, e.g. --param epochs=5")
    parser.add_argument("--output", default="emnist-tuning", help="folder for figures")
    parser.add_argument(
        "--no-plots", action="store_true", help="write no figures, only the summary"
    )
    _add_output(parser)


def _run_tune(args) -> int:
    from .output_folder import discard_created, prepare_reusable
    from .tuning import _optuna_info_lines, count_trials

    params = _parse_params(args.param)
    if args.epochs:
        params["epochs"] = args.epochs
    clf = _estimator(args, params)
    if args.n_trials <= 0:
        raise UsageError(f"--n-trials must be positive, got {args.n_trials}.")
    if args.n_jobs is not None and (args.n_jobs == 0 or args.n_jobs < -1):
        raise UsageError(f"--n-jobs must be positive or -1, got {args.n_jobs}.")
    check_output_folder(args.output, reuse=True)
    # connect before loading the data: an unreachable scheduler fails fast
    with _dask_client(args) as client:
        data = _load(args, random_state=args.random_state or 0)
        output, created = prepare_reusable(args.output, command="tune")
        try:
            # optuna's per-trial INFO lines only with --verbose
            with _optuna_info_lines(args.verbose):
                result, text, written = _tune(args, clf, data, output, client)
        except BaseException:
            # A failed run leaves nothing it created - unless trials were
            # stored in the default study file, which --resume can continue.
            db = output / "study.db"
            if created and not (args.storage is None and count_trials(db)):
                discard_created(output, created, files=["study.db"])
            raise
    write_manifest(output, command="tune", files=written)
    _emit(args, result, text)
    return EXIT_OK


@contextlib.contextmanager
def _dask_client(args):
    """A client of ``--dask-scheduler``, its workers' threads shared; else None.

    Each worker's TensorFlow gets ``--threads`` threads, or its share of its
    machine's cores, before it runs a trial.
    """
    if args.dask_scheduler is None:
        yield None
        return
    from .cluster import ThreadShare, connected, share_threads

    with connected(args.dask_scheduler) as client:
        threads = share_threads(client, args.threads)
        log.info("Dask workers and their TensorFlow threads: %s", threads)
        try:
            yield client
        finally:
            # the scheduler may be shared: workers joining later for other
            # work must not get this search's thread share and GPU pinning
            client.unregister_worker_plugin(ThreadShare.name)


def _tune(args, clf, data, output: Path, client=None):
    from .tuning import EmnistSearchCV, hide_password, study_summary

    storage = args.storage or f"sqlite:///{output / 'study.db'}"
    n_jobs = args.n_jobs or (-1 if client is not None else 1)
    search = EmnistSearchCV(
        clf,
        n_trials=args.n_trials,
        timeout=args.timeout,
        cv=args.cv,
        pruner=args.pruner,
        storage=storage,
        study_name=args.study_name or f"emnist-{args.model}",
        load_if_exists=args.resume,
        refit=False,
        n_jobs=n_jobs,
        scheduler=client,
        random_state=args.random_state,
        show_progress_bar=not (args.quiet or args.json),
    ).fit(data.X, data.y)
    study = search.study_
    figures = []
    if not args.no_plots:
        import matplotlib

        matplotlib.use("Agg")  # files only: no window, no display needed
        from .reporting import save_tuning_figures

        figures = save_tuning_figures(study, output)
    summary = study_summary(search)
    result = {
        "study_name": summary["study_name"],
        "storage": hide_password(storage),
        **{k: v for k, v in summary.items() if k != "study_name"},
        "figures": [str(f) for f in figures],
        "train_command": _train_command(args, summary["best_params"], output),
    }
    summary_file = output / f"{study.study_name}-summary.json"
    summary_file.write_text(json.dumps(result, indent=2, default=str))
    written = [f.name for f in (*figures, summary_file)]
    if args.storage is None:
        written.append("study.db")
    return result, _tune_text(result, output), written


def _tune_text(result: dict, output: Path) -> str:
    counts = result["states"]
    rows = [
        f"{t['number']:>5}  {t['value']:7.4f}  "
        + ", ".join(f"{k}={_short(v)}" for k, v in t["params"].items())
        for t in result["top"]
    ]
    return (
        f"study {result['study_name']!r}: {result['n_trials']} trials "
        f"({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed); best {result['best_value']:.4f}\n"
        + "\n".join([f"{'trial':>5}  {'score':>7}  params", *rows])
        + (f"\nfigures in {output}" if result["figures"] else "")
        + f"\n{_dashboard_hint(result['storage'])}"
        + f"\ntrain the best parameters: {result['train_command']}"
    )


def _dashboard_hint(storage: str) -> str:
    """How to browse the study: optuna-dashboard, or how to install it."""
    import importlib.util

    # optuna-dashboard opens a journal file by its path, without the prefix
    where = storage.removeprefix("journal:")
    if importlib.util.find_spec("optuna_dashboard") is not None:
        return f"view: optuna-dashboard {where}"
    return (
        f"view in a browser: pip install optuna-dashboard, then "
        f"optuna-dashboard {where}"
    )


def _train_command(args, best_params: dict, output: Path) -> str:
    """The ``train`` command line that fits the best parameters on all data."""
    import shlex

    params = {**_parse_params(args.param), **best_params}
    if args.epochs:
        params["epochs"] = args.epochs
    words = ["emnist-estimators", "train", "--model", args.model]
    words += ["--dataset", args.dataset]
    if args.data_home:
        words += ["--data-home", args.data_home]
    if args.subset != "train":
        words += ["--subset", args.subset]
    for key, value in params.items():
        # repr round-trips through --param's literal_eval; a bare word such
        # as relu is read as the same string
        text = value if isinstance(value, str) and value.isidentifier() else repr(value)
        words += ["--param", f"{key}={text}"]
    if args.random_state is not None:
        words += ["--random-state", str(args.random_state)]
    words += ["--output", str(output / "best-model")]
    return shlex.join(words)


def _short(value):
    return f"{value:.4g}" if isinstance(value, float) else value


# --- serve --------------------------------------------------------------------
def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"port must be a number 0..65535 (0: any free port), got {text!r}"
        )
    return port


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_file(parser)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 lets other machines use the model "
        "(default: %(default)s, this machine only)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=8000,
        help="TCP port; 0 picks any free port and prints it (default: %(default)s)",
    )


def _run_serve(args) -> int:
    from .serve import serve

    clf = _load_model(args)
    serve(clf, host=args.host, port=args.port)  # returns on Ctrl+C
    return EXIT_OK


# --- export -------------------------------------------------------------------
def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    # export.py imports no TensorFlow or converter until an export runs
    from .export import FORMATS

    _add_model_file(parser)
    parser.add_argument(
        "--format",
        default="onnx",
        choices=FORMATS,
        help="onnx: a file for onnxruntime; tf_saved_model: a folder for "
        "tf.saved_model.load / TF Serving; litert: a .tflite file for the LiteRT "
        "interpreter",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="PATH",
        help="the exported file (folder for tf_saved_model); PATH.json is "
        "written beside it",
    )
    parser.add_argument(
        "--input-shape",
        default="flat",
        choices=["flat", "image"],
        help="the exported input's shape: flat (n, 784) or image (n, 28, 28)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace PATH and PATH.json if they exist (a file, or a SavedModel "
        "folder; never another folder); default: refuse",
    )
    _add_output(parser)


def _run_export(args) -> int:
    from .export import export_model, sidecar_path

    clf = _load_model(args)
    # LiteRT's interpreter logs from C ("Created TensorFlow Lite XNNPACK
    # delegate") while the export is checked: shown with -v or on failure
    muted = contextlib.nullcontext() if args.verbose else _native_stderr_muted()
    with muted:
        path = export_model(
            clf,
            args.output,
            format=args.format,
            overwrite=args.overwrite,
            input_shape=args.input_shape,
        )
    sidecar = sidecar_path(path)
    check = json.loads(sidecar.read_text())["check"]
    result = {
        "model": type(clf).__name__,
        "format": args.format,
        "output": str(path),
        "sidecar": str(sidecar),
        "check": check,
    }
    _emit(args, result, _export_text(result))
    return EXIT_OK


def _export_text(result: dict) -> str:
    """export's summary: where it wrote, and what the check measured."""
    check = result["check"]
    seen = check["vs_predict_proba"]
    text = (
        f"{result['model']} exported as {result['format']} to {result['output']}; "
        f"sidecar {result['sidecar']}; checked on {check['images']} "
        f"{check['source']} images: {seen['labels_differ']} label(s) differ from "
        f"predict, probabilities by up to {seen['max_abs_proba_diff']:.2g}"
    )
    if "vs_float32_twin" in check:
        twin = check["vs_float32_twin"]["max_abs_proba_diff"]
        text += (
            f" (trained in {check['trained_precision']}, exported in float32; from "
            f"the float32 network by up to {twin:.2g})"
        )
    return text


# --- the command table and main -----------------------------------------------
# name: (one-line help, example command lines, add arguments, run)
COMMANDS = {
    "data": (
        "download EMNIST and show what is cached",
        ["data download --split balanced", "data info --checksums"],
        _add_data_arguments,
        _run_data,
    ),
    "demo": (
        "offline demo: train on scikit-learn's digits, print the accuracy",
        ["demo", "demo --model mlp --epochs 5 --output demo-mlp"],
        _add_demo_arguments,
        _run_demo,
    ),
    "train": (
        "train a model and save it with its metrics",
        [
            "train --dataset digits --output runs/digits --epochs 5",
            "train --model cnn --dataset emnist:balanced --output runs/cnn --report",
        ],
        _add_train_arguments,
        _run_train,
    ),
    "evaluate": (
        "score a saved model on a dataset",
        ["evaluate runs/cnn/model.keras --dataset emnist:balanced"],
        _add_evaluate_arguments,
        _run_evaluate,
    ),
    "predict": (
        "classify image files or pixel arrays",
        [
            "predict runs/cnn/model.keras my_letter.png scan2.jpg",
            "predict runs/cnn/model.keras pixels.npy --top 5 --json",
        ],
        _add_predict_arguments,
        _run_predict,
    ),
    "report": (
        "write figures and an HTML report",
        ["report runs/cnn/model.keras --dataset emnist:balanced --output rep"],
        _add_report_arguments,
        _run_report,
    ),
    "tune": (
        "search hyper-parameters with optuna",
        [
            "tune --model mlp --dataset emnist:balanced --n-trials 30",
            "tune --dataset digits --storage sqlite:///study.db --resume",
            "tune --dataset emnist:balanced --dask-scheduler tcp://10.0.0.5:8786 "
            "--n-jobs 8 --random-state 0",
        ],
        _add_tune_arguments,
        _run_tune,
    ),
    "export": (
        "export a saved model to ONNX, a TensorFlow SavedModel or LiteRT, checked "
        "against predict",
        [
            "export runs/cnn/model.keras --format onnx --output cnn.onnx",
            "export runs/cnn/model.keras --format litert --output cnn.tflite "
            "--input-shape image",
            "export runs/cnn/model.keras --format tf_saved_model --output cnn_saved",
        ],
        _add_export_arguments,
        _run_export,
    ),
    "serve": (
        "draw characters on a local web page and see the model's top 5; "
        "JSON endpoint POST /predict",
        [
            "serve runs/cnn/model.keras",
            "serve runs/cnn/model.keras --port 0",
        ],
        _add_serve_arguments,
        _run_serve,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``emnist-estimators``, all commands included.

    Returns
    -------
    argparse.ArgumentParser
        The parser :func:`main` uses.
    """
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="emnist-estimators",
        description="Neural-network classifiers for handwritten characters (EMNIST).",
        epilog=_examples("demo", "train --dataset digits --output runs/digits"),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and INFO log lines"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads for TensorFlow (default: the cores this process may use; "
        "also $EMNIST_ESTIMATORS_THREADS)",
    )
    _add_verbose(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_, examples, add_args, _) in COMMANDS.items():
        add_args(_add_command(sub, name, help_, examples))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments after the program name; None: ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code: 0 success, 1 runtime failure, 2 bad usage or input,
        130 interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:
        # Before anything imports TensorFlow, which reads it once. 3 hides
        # ERROR lines too: a CNN's fit logs "E0000 ... remapper failed", a
        # skipped graph optimisation, not a failure; real failures still
        # raise. A value the user exported wins.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING)
    if args.verbose:  # e.g. where a new cache goes, said once at INFO
        logging.getLogger("emnist_estimators").setLevel(logging.INFO)
    try:
        if args.threads is not None:
            set_num_threads(args.threads)
        return COMMANDS[args.command][3](args)
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
