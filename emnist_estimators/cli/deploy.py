"""``emnist-estimators export`` and ``serve``: a saved model put to use elsewhere.

``export`` writes ONNX, a TensorFlow SavedModel or LiteRT, checked against
``predict``; ``serve`` opens the local draw-and-predict page.
"""

from __future__ import annotations

import contextlib
import json

from ..export import export_model, sidecar_path
from . import loading
from .console import EXIT_OK, emit, native_stderr_muted

__all__ = ["run_export", "run_serve"]


def run_serve(args) -> int:
    """Run ``serve`` until Ctrl+C.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit code, 0.
    """
    from ..serve import require_http_stack, serve

    # the HTTP stack is the optional extra `serve`: before the model is loaded,
    # an ImportError saying how to install it
    require_http_stack()
    clf = loading.load_model_file(args)
    # returns on Ctrl+C
    serve(clf, host=args.host, port=args.port, allowed_hosts=args.allow_host)
    return EXIT_OK


def run_export(args) -> int:
    """Run ``export``: write the file, then print what its check measured.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit code, 0.
    """
    clf = loading.load_model_file(args)
    # LiteRT's interpreter logs from C ("Created TensorFlow Lite XNNPACK
    # delegate") while the export is checked: shown with -v or on failure
    muted = contextlib.nullcontext() if args.verbose else native_stderr_muted()
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
    emit(args, result, _export_text(result))
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
