"""The ``emnist-estimators`` argument parser: every command's options and help.

Each command's options, their defaults and examples in ``--help``, and the
checks a value gets before any work starts (a port number, a sample size, a
held-out share). Nothing here imports TensorFlow, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import difflib
import math

from .._version import __version__
from ..datasets import EMNIST_SPLITS
from ..export import FORMATS
from ..pretrained import DEFAULT_PRETRAINED, PRETRAINED, PRETRAINED_PREFIX
from ..tracking import DEFAULT_EXPERIMENT

__all__ = [
    "COMMANDS",
    "HELD_OUT",
    "build_parser",
    "check_arguments",
    "port",
    "sample_size",
    "share",
    "split_name",
]

#: The ``--subset`` of evaluate and report that names what a train run held out.
HELD_OUT = "held-out"


# --- values checked as they are parsed ----------------------------------------
def port(text: str) -> int:
    """Read a TCP port number, 0..65535 (0: any free port).

    Parameters
    ----------
    text : str
        The option's value.

    Returns
    -------
    int
        The port.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a number in range.
    """
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"port must be a number 0..65535 (0: any free port), got {text!r}"
        )
    return value


def split_name(text: str) -> str:
    """Read ``--split``: an EMNIST split name in any case, returned in lower case.

    Parameters
    ----------
    text : str
        The option's value, e.g. ``"Balanced"``.

    Returns
    -------
    str
        The split name, e.g. ``"balanced"``.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` names no split; it suggests the closest one.
    """
    name = text.lower()
    if name not in EMNIST_SPLITS:
        close = difflib.get_close_matches(name, sorted(EMNIST_SPLITS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise argparse.ArgumentTypeError(
            f"unknown EMNIST split {text!r}; {hint}choose from "
            f"{', '.join(sorted(EMNIST_SPLITS))} (any case)"
        )
    return name


def sample_size(text: str) -> int:
    """Read ``--max-samples``: a whole number of images, 1 or more.

    Parameters
    ----------
    text : str
        The option's value.

    Returns
    -------
    int
        The number of images.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a whole number of 1 or more.
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of images, 1 or more; got {text!r}"
        )
    return value


def share(text: str) -> float:
    """Read ``--test-size``: a share of the images, between 0 and 1.

    Parameters
    ----------
    text : str
        The option's value.

    Returns
    -------
    float
        The share, greater than 0 and less than 1.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a number greater than 0 and less than 1.
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a share of the images greater than 0 and less than 1, "
            f"e.g. 0.2; got {text!r}"
        )
    return value


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


def _add_data_source(parser, *, subset="train", held_out=False):
    """``--dataset``, ``--subset``, ``--data-home`` and ``--max-samples``.

    With ``held_out``, ``--subset held-out`` scores the images the ``train``
    run of the model file held out, and ``--dataset`` defaults to its data.
    """
    dataset_help = "digits | emnist:<split> | folder of IDX files | file.csv | file.mat"
    if held_out:
        dataset_help += (
            " (default with --subset held-out: the dataset the model was "
            "trained on; required otherwise)"
        )
    parser.add_argument("--dataset", required=not held_out, help=dataset_help)
    parser.add_argument(
        "--subset",
        type=str.lower,
        default=subset,
        choices=["train", "test", HELD_OUT] if held_out else ["train", "test"],
        help="which part of the dataset"
        + (
            f"; {HELD_OUT}: the images `train --test-size` held out, as recorded "
            "beside the model file"
            if held_out
            else ""
        ),
    )
    parser.add_argument(
        "--data-home",
        default=None,
        help="EMNIST folder for emnist:<split> (default: $EMNIST_DATA, else the "
        "user cache ~/.cache/emnist-estimators)",
    )
    parser.add_argument(
        "--max-samples",
        type=sample_size,
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
    parser.add_argument(
        "model_file",
        help=f"model.keras written by train, or {PRETRAINED_PREFIX}NAME for a model "
        f"shipped with the package ({', '.join(PRETRAINED)})",
    )


def _add_model_option(parser):
    # predict and serve work without a model file: the bundled default
    parser.add_argument(
        "--model",
        dest="model_file",
        default=None,
        metavar="MODEL",
        help=f"model.keras written by train, or {PRETRAINED_PREFIX}NAME "
        f"(default: {PRETRAINED_PREFIX}{DEFAULT_PRETRAINED}, shipped with the "
        "package; see its model card)",
    )


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


def _add_mlflow(parser):
    parser.add_argument(
        "--mlflow",
        metavar="TRACKING_URI",
        default=None,
        help="log this run to MLflow: a tracking server (http://HOST:5000) or "
        "store (sqlite:///mlflow.db); needs the tracking extra (default: "
        "$MLFLOW_TRACKING_URI when set, else none)",
    )
    parser.add_argument(
        "--mlflow-experiment",
        metavar="NAME",
        default=DEFAULT_EXPERIMENT,
        help="the MLflow experiment the run goes to (created if new)",
    )


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


# --- data ---------------------------------------------------------------------
def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", required=True)
    dl = _add_command(
        sub,
        "download",
        "download EMNIST files from NIST",
        ["data download --split balanced", "data download --split mnist --subset test"],
    )
    dl.add_argument(
        "--split",
        type=split_name,
        default="balanced",
        help=f"EMNIST split, any case: {', '.join(sorted(EMNIST_SPLITS))}",
    )
    dl.add_argument(
        "--subset",
        type=str.lower,
        default="all",
        choices=["train", "test", "all"],
        help="which part",
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


# --- train --------------------------------------------------------------------
def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_choice(parser, "cnn")
    _add_data_source(parser)
    parser.add_argument(
        "--test-size",
        type=share,
        default=None,
        help="hold out this stratified share of the data and report its accuracy; "
        f"evaluate --subset {HELD_OUT} scores the same images again "
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
    _add_mlflow(parser)
    _add_output(parser)


# --- evaluate, predict, report ------------------------------------------------
def _add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_file(parser)
    _add_data_source(parser, subset="test", held_out=True)
    _add_output(parser)


def _add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_option(parser)
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="[MODEL.keras] INPUT",
        help="image files (PNG, JPEG...), or .npy / .csv files of 784-pixel rows; "
        "a first argument ending in .keras (or pretrained:NAME) is the model, "
        "as --model",
    )
    parser.add_argument(
        "--top", type=int, default=3, help="classes to show per input, best first"
    )
    _add_output(parser)


def _add_report_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_file(parser)
    _add_data_source(parser, subset="test", held_out=True)
    parser.add_argument("--output", required=True, help="report folder")
    _add_overwrite(parser)
    _add_mlflow(parser)
    _add_output(parser)


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
        default="auto",
        choices=["auto", "median", "percentile", "hyperband", "halving", "none"],
        help="how unpromising trials are stopped early (auto: halving with one "
        "objective, none with several: optuna cannot prune those)",
    )
    parser.add_argument(
        "--objectives",
        default="score",
        metavar="NAMES",
        help="what the search optimises, comma-separated: score (maximised), "
        "fit_time (training seconds), predict_time (seconds per image), "
        "n_params (the network's size), all three minimised; several draw the "
        "Pareto front (default: score)",
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
    _add_mlflow(parser)
    _add_output(parser)


# --- export and serve ---------------------------------------------------------
def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
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


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model_path",
        nargs="?",
        default=None,
        metavar="MODEL",
        help="model.keras written by train, or pretrained:NAME; as --model",
    )
    _add_model_option(parser)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 lets other machines use the model "
        "(default: %(default)s, this machine only)",
    )
    parser.add_argument(
        "--port",
        type=port,
        default=8000,
        help="TCP port; 0 picks any free port and prints it (default: %(default)s)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name (or address) browsers may reach the server by, besides "
        "localhost and the --host address; repeat for more, '*' for any "
        "(refused otherwise: a guard against DNS rebinding)",
    )


# --- the command table --------------------------------------------------------
#: name: (one-line help, example command lines, function adding its options)
COMMANDS = {
    "data": (
        "download EMNIST and show what is cached",
        ["data download --split balanced", "data info --checksums"],
        _add_data_arguments,
    ),
    "demo": (
        "offline demo: train on scikit-learn's digits, print the accuracy",
        ["demo", "demo --model mlp --epochs 5 --output demo-mlp"],
        _add_demo_arguments,
    ),
    "train": (
        "train a model and save it with its metrics",
        [
            "train --dataset digits --output runs/digits --epochs 5",
            "train --model cnn --dataset emnist:balanced --output runs/cnn --report",
        ],
        _add_train_arguments,
    ),
    "evaluate": (
        "score a saved model on a dataset",
        [
            "evaluate runs/cnn/model.keras --dataset emnist:balanced",
            f"evaluate runs/csv/model.keras --subset {HELD_OUT}",
        ],
        _add_evaluate_arguments,
    ),
    "predict": (
        "classify image files or pixel arrays",
        [
            "predict my_letter.png scan2.jpg",
            "predict runs/cnn/model.keras my_letter.png scan2.jpg",
            "predict runs/cnn/model.keras pixels.npy --top 5 --json",
        ],
        _add_predict_arguments,
    ),
    "report": (
        "write figures and an HTML report",
        ["report runs/cnn/model.keras --dataset emnist:balanced --output rep"],
        _add_report_arguments,
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
    ),
    "serve": (
        "draw characters on a local web page and see the model's top 5; "
        "JSON endpoint POST /predict",
        [
            "serve",
            "serve runs/cnn/model.keras",
            "serve runs/cnn/model.keras --port 0",
        ],
        _add_serve_arguments,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``emnist-estimators``, all commands included.

    Returns
    -------
    argparse.ArgumentParser
        The parser :func:`~emnist_estimators.cli.main` uses.
    """
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
    for name, (help_, examples, add_args) in COMMANDS.items():
        add_args(_add_command(sub, name, help_, examples))
    return parser


def check_arguments(parser: argparse.ArgumentParser, args) -> None:
    """Check what one option alone cannot: ``--dataset`` unless ``held-out``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser that read ``args``; its ``error`` exits with code 2.
    args : argparse.Namespace
        The parsed command line.
    """
    if getattr(args, "dataset", "") is None and args.subset != HELD_OUT:
        parser.error(
            f"{args.command}: the following arguments are required: --dataset "
            f"(unless --subset {HELD_OUT})"
        )
    if args.command in ("predict", "serve"):
        _pick_model(parser, args)


def _pick_model(parser: argparse.ArgumentParser, args) -> None:
    """Set ``args.model_file`` for ``predict`` and ``serve``, which default to one.

    The model is ``--model``, else a first positional ``*.keras`` or
    ``pretrained:NAME`` (the form these commands had before ``--model``),
    else the bundled default.
    """
    given = getattr(args, "model_path", None)
    if args.command == "predict" and args.inputs:
        first = args.inputs[0]
        if first.endswith(".keras") or first.startswith(PRETRAINED_PREFIX):
            given = first
            args.inputs = args.inputs[1:]
            if not args.inputs:
                parser.error(f"predict: no input to classify after the model {first}")
    if given is not None and args.model_file is not None:
        parser.error(
            f"{args.command}: two models given ({given} and --model "
            f"{args.model_file}); name one"
        )
    args.model_file = args.model_file or given or PRETRAINED_PREFIX + DEFAULT_PRETRAINED
