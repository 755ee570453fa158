"""Mutation check: do the fast tests notice when a guarded feature breaks?

mutmut 3 breaks the code on purpose, one small change (a *mutant*) at a time,
and runs the tests that cover the changed function; a mutant that no test
notices *survives*. The check covers the areas where a silent bug would cost
a user (:data:`AREAS`, the functions of each):

- ``download``: the downloader's Range/resume logic and the size caps of
  member extraction;
- ``cache``: the cache identity check and what decides a rebuild;
- ``weights``: sample weights, validated, capped and multiplied by the class
  weights;
- ``class_weights``: ``class_weight`` ("balanced" or a dict) to per-sample
  weights;
- ``overwrite``: the ``--overwrite`` guard of the output folders;
- ``checkpoints``: the data fingerprint, the checks of a checkpoint read
  back, the resume plan (epoch, history, the run's own seed), the atomic
  write;
- ``export``: what an export may overwrite (``export_files.py``) and the
  check of the exported file against the float32 twin's answers;
- ``serve``: the server's request validation (``serve_api.py``) and its
  Host check;
- ``training``: the training loop (hold-out rows, callbacks, the loss
  check) and the batches (each epoch's order from the seed);
- ``tuning``: a trial's candidate and fits, pruning after each epoch;
- ``dask_waves``: trials on a Dask cluster in waves (ask, run, tell);
- ``warm_start``: ``warm_start`` and ``partial_fit`` keep the fitted network
  and its classes, and a failed fit gives its weights back;
- ``early_stopping``: the callback that restores the best epoch's weights,
  and its counters across a resumed fit.

Everything happens in a scratch copy (``tools/.work/mutation``); the
repository itself is never mutated. Steps:

1. mutmut generates every mutant of the functions in :data:`AREAS`. Not run,
   and counted as such: mutants that only change the wording of an error or
   log message (a string inside ``raise ...`` or a ``logger`` call), and, in
   the functions of :data:`_FEATURE_LINES`, mutants of lines that are not
   the feature's (for ``_fit``: lines that do not name the kept network).
   With ``--sample N``, N of the others per area are drawn (seeded by
   ``--seed``; the same N for the same code and seed) and only those run.
2. mutmut runs them against the areas' tests (:data:`AREA_TESTS`), each
   mutant against the tests that reach its function.
3. Each survivor, and each mutant no test of step 2 reaches, is run against
   all the tests of its area (tests that reach the function in a child
   process, which mutmut cannot see, run here), which names a test that
   kills it.

A mutant that survives both must be equivalent (no behaviour a user could see
changes), with its reason in :data:`EQUIVALENT`; the command exits 1 on any
other.

Run: ``python -m tools.mutation_check --sample 8 --workers 1`` (needs
``pip install -e ".[test,mutation]"``); that command, run whole (no
``--area``), writes the committed result,
``tools/results/mutation_check.{md,json}`` (which says the sample, its seed
and each area's population; on 2 cores, ``--workers 2``, about 45 minutes;
rerun it after changing a function of :data:`AREAS`). ``--area`` checks some
areas only and writes no result file; ``--resume`` keeps the scratch copy and
mutmut's saved results, runs what is not checked yet (after an interruption),
and redoes step 3 (also after editing the tests).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("EMNIST_MUTATION_WORK", REPO / "tools" / ".work"))
RESULTS = REPO / "tools" / "results"

_T = "tests/"
#: Each area's tests, fast ones (no real data, no real training beyond a few
#: hundred generated images): step 2 runs those that reach a mutant's
#: function, step 3 all of them against each survivor.
AREA_TESTS = {
    "download": [
        f"{_T}test_datasets_download.py",
        f"{_T}test_datasets_download_faults.py",
    ],
    "cache": [f"{_T}test_datasets_cache.py"],
    "weights": [f"{_T}test_sample_weight.py", f"{_T}test_labels.py"],
    "class_weights": [
        f"{_T}test_labels.py",
        f"{_T}test_sample_weight.py",
        f"{_T}test_lifecycle.py",
    ],
    "overwrite": [f"{_T}test_output_folder.py"],
    "checkpoints": [f"{_T}test_checkpoints.py", f"{_T}test_lifecycle.py"],
    "export": [f"{_T}test_export_files.py", f"{_T}test_export.py"],
    "serve": [f"{_T}test_serve.py", f"{_T}test_serve_api.py"],
    "training": [f"{_T}test_training.py", f"{_T}test_batches.py"],
    "tuning": [f"{_T}test_tuning_objective.py", f"{_T}test_callbacks.py"],
    "dask_waves": [f"{_T}test_tuning_waves.py"],
    "warm_start": [
        f"{_T}test_base.py",
        f"{_T}test_labels.py",
        f"{_T}test_lifecycle.py",
    ],
    "early_stopping": [
        f"{_T}test_base.py",
        f"{_T}test_estimators.py::test_early_stopping_and_partial_fit",
        f"{_T}test_training.py::"
        "test_early_stopping_without_held_out_rows_watches_the_training_loss",
        f"{_T}test_checkpoints.py::"
        "test_an_interrupted_fit_with_early_stopping_resumes_as_never_interrupted",
        f"{_T}test_checkpoints.py::"
        "test_resumed_early_stopping_ends_on_the_best_weights_from_before",
        f"{_T}test_checkpoints.py::"
        "test_early_stopping_counters_before_any_epoch_resume_as_they_were",
    ],
}
#: Tests of those files that check something else and would slow every
#: mutant down: the cache's SIGKILL tests (crash safety of the cache build,
#: about 1.7 s each, 8 of them).
DESELECT = [
    f"{_T}test_datasets_cache.py::test_sigkill_while_writing_the_cache",
    # the progress bar on a pseudo-terminal: a child process that imports the
    # scratch copy's trampolines while mutmut collects its stats, which fails
    # there ("Could not figure out where the code to mutate is")
    f"{_T}test_callbacks.py::test_terminal_shows_each_epochs_batches",
    f"{_T}test_callbacks.py::test_piped_or_quiet_shows_no_batch_progress",
]
#: What the tests import besides the package: copied with them.
TEST_SUPPORT = [
    f"{_T}conftest.py",
    f"{_T}helpers.py",
    # scripts the tests run in child processes (test_lifecycle's SIGKILL fits)
    f"{_T}checkpoint_child.py",
    f"{_T}distribute_child.py",
]


def mutation_tests(areas) -> list[str]:
    """The tests of ``areas``, each once, in order (step 2's selection)."""
    return list(dict.fromkeys(t for a in areas for t in AREA_TESTS[a]))


def test_files(areas) -> list[str]:
    """The files of :func:`mutation_tests` and what they import."""
    tests = [*TEST_SUPPORT, *mutation_tests(areas)]
    return list(dict.fromkeys(t.split("::")[0] for t in tests))


_SEP = "ǁ"  # mutmut's separator between class and method in mutant names
_PKG = "emnist_estimators."
_DL = f"{_PKG}datasets.download."
_CACHE = f"{_PKG}datasets.cache."
_OUT = f"{_PKG}output_folder."
_BASE = f"{_PKG}base.x{_SEP}BaseEmnistClassifier{_SEP}"


def _fn(module: str, *names: str) -> list[str]:
    """mutmut's names of module-level functions ``names`` of ``module``."""
    return [f"{_PKG}{module}.x_{n}" for n in names]


def _cls(module: str, cls: str, *methods: str) -> list[str]:
    """mutmut's names of ``cls``'s ``methods`` (none: every method, ``*``)."""
    return [f"{_PKG}{module}.x{_SEP}{cls}{_SEP}{m}" for m in methods or ("*",)]


#: Area -> the functions whose mutants are checked (mutmut's mangled names;
#: a trailing ``*``: every method of the class). A function belongs to one
#: area: the first that names it. mutmut leaves decorated functions alone
#: (``export_files.temporaries``, a context manager): they cannot be listed.
AREAS = {
    "download": [
        f"{_DL}x{_SEP}_RangeReader{_SEP}*",
        f"{_DL}x__probe_once",
        f"{_DL}x_download_members",
        f"{_DL}x__local_header",
        f"{_DL}x__size_limit",
        f"{_DL}x__member_limits",
        f"{_DL}x__copy_capped",
    ],
    "cache": [
        f"{_CACHE}x__open_cache",
        f"{_CACHE}x__map_npy",
        f"{_CACHE}x__source_identity",
        f"{_CACHE}x__read_sidecar",
        f"{_CACHE}x_load_cached_images",
    ],
    "weights": [
        *_fn("labels", "validate_sample_weight", "_check_largest", "combine_weights"),
        f"{_BASE}_validate_new",
    ],
    "class_weights": _fn("labels", "class_sample_weights"),
    "overwrite": [
        f"{_OUT}x_check_output_folder",
        f"{_OUT}x__protected",
        f"{_OUT}x_read_manifest",
        f"{_OUT}x__files_under",
        f"{_OUT}x__swap_in",
    ],
    "checkpoints": [
        *_fn("checkpoints", "_fingerprint"),
        *_cls("checkpoints", "CheckpointStore"),
        *_cls("checkpoints", "_EpochCheckpoint"),
        *_fn("training", "plan_run"),
        *_fn("base", "_seed_or_fresh"),
    ],
    "export": [
        *_fn(
            "export_files",
            "_kind",
            "_is_our_sidecar",
            "check_destination",
            "remove_stale_exports",
            "move_into_place",
        ),
        *_fn("export", "_check_images", "_twin_proba", "_compare", "_verify", "_judge"),
    ],
    "serve": [
        *_fn(
            "serve_api",
            "decode_image",
            "_image_pixels",
            "_array_pixels",
            "_request_pixels",
            "declared_length",
            "body_length",
            "parse_request",
        ),
        *_cls("serve_api", "Predictor", "predict"),
        *_fn("serve", "_hostname"),
        *_cls("serve", "_Guard", "_allows"),
    ],
    "training": [
        *_fn("training", "validation_rows", "fit_network"),
        *_cls("training", "FiniteLossCheck"),
        *_fn("batches", "epoch_order"),
        *_cls("batches", "IndexBatches"),
        *_cls("batches", "_OrderEachEpoch"),
    ],
    "tuning": [
        *_fn("tuning.objective", "candidate", "_fit_one"),
        *_cls("tuning.objective", "TrialObjective"),
        *_cls("callbacks", "PruningCallback"),
    ],
    "dask_waves": _fn(
        "tuning.waves",
        "optimize_on_cluster",
        "_ask_wave",
        "_run_wave",
        "_tell_wave",
        "_spread",
        "_remote_task",
        "_run_remote_trial",
        "_tell_outcome",
    ),
    "warm_start": [
        f"{_BASE}_fit",
        f"{_BASE}_fit_and_set",
        f"{_BASE}_fit_one_epoch",
        f"{_BASE}_record",
        f"{_BASE}_validate_more",
        *_fn("labels", "same_classes"),
        *_fn("training", "variables_snapshot", "restore_variables"),
    ],
    "early_stopping": [
        *_fn("training", "early_stopping_for"),
        *_cls("checkpoints", "ResumableEarlyStopping"),
    ],
}
#: Functions that do more than the feature: only mutants of their lines that
#: match the pattern are checked (the lines of the kept network in the fit
#: path, of the weights in the validation of new data; the ranged branch of
#: ``download_members``).
_FEATURE_LINES = {
    f"{_BASE}_validate_new": re.compile(r"\b(?:sample_weight|w)\b"),
    f"{_BASE}_fit": re.compile(r"\b(?:keep|before|warm_weights)\b"),
    f"{_BASE}_fit_and_set": re.compile(r"\b(?:keep|warm_weights)\b"),
    f"{_DL}x_download_members": re.compile(r"\b(?:ranged|reader|budget)\b"),
}
_MESSAGE_CALLERS = {"logger", "logging", "warnings"}

_URLLIB_NAMES = (
    "urllib.request.Request stores header names capitalised (str.capitalize), so "
    "any spelling of the name sends the same header"
)
_HEADER_LOOKUP = "a response's headers are looked up regardless of case (HTTPMessage)"
_AT_LIMIT = (
    "no read starts at or past the limit: zipfile reads exactly a member's compressed "
    "size and _member_limits moves the limit before each header; such a read would "
    "get EOF here instead of bytes past the limit"
)
#: Survivors that change no behaviour a user could see: (function, mutated
#: line as in the report) -> why.
EQUIVALENT: dict[tuple[str, str], str] = {
    ("download._RangeReader.__init__", "self._pos, self._end = 1, size"): (
        "zipfile seeks (to the end record) before its first read: the start "
        "position is never read"
    ),
    ("download._RangeReader.__init__", 'self._block_start, self._block = +1, b""'): (
        "an empty block caches no position wherever it starts: the first read "
        "fetches either way"
    ),
    ("download._RangeReader.__init__", 'self._block_start, self._block = -2, b""'): (
        "an empty block caches no position wherever it starts: the first read "
        "fetches either way"
    ),
    (
        "download._RangeReader.__init__",
        'self._block_start, self._block = -1, b"XXXX"',
    ): (
        "the fake block covers bytes 0-2 until the first fetch; zipfile's first "
        "read is the end record, and where that is byte 0 (an empty archive) "
        "zipfile's signature search fetches byte 0 again"
    ),
    (
        "download._RangeReader.__init__",
        'self.budget: int | None = ""  # bytes still allowed, None: no limit',
    ): "download_members sets the budget before the first read",
    (
        "download._RangeReader._request",
        'headers={"range": f"bytes={lo}-{end - 1}", "User-Agent": _USER_AGENT},',
    ): _URLLIB_NAMES,
    (
        "download._RangeReader._request",
        'headers={"RANGE": f"bytes={lo}-{end - 1}", "User-Agent": _USER_AGENT},',
    ): _URLLIB_NAMES,
    (
        "download._RangeReader._request",
        'headers={"Range": f"bytes={lo}-{end - 1}", "user-agent": _USER_AGENT},',
    ): _URLLIB_NAMES,
    (
        "download._RangeReader._request",
        'headers={"Range": f"bytes={lo}-{end - 1}", "USER-AGENT": _USER_AGENT},',
    ): _URLLIB_NAMES,
    (
        "download._RangeReader._request",
        'content_range = resp.headers.get("content-range", "")',
    ): _HEADER_LOOKUP,
    (
        "download._RangeReader._request",
        'content_range = resp.headers.get("CONTENT-RANGE", "")',
    ): _HEADER_LOOKUP,
    ("download._RangeReader._request", "while len(got) <= end - start:"): (
        "at the block's end the extra pass calls read1(0), which returns b'' and "
        "ends the request"
    ),
    ("download._RangeReader._request", "while len(got) < end + start:"): (
        "past the block's end read1 is asked for 0 bytes, returns b'' and ends "
        "the request"
    ),
    (
        "download._RangeReader._request",
        "chunk = resp.read1(min(65537, end - start - len(got)))",
    ): (
        "only the largest single read changes (64 KiB + 1); read1 returns what "
        "has arrived either way"
    ),
    ("download._RangeReader._fetch", "time.sleep(min(2**failures * 0.1, 6))"): (
        "failures is at most 5 when it sleeps (the 6th raises): the back-off "
        "tops out at 3.2 s, below either cap"
    ),
    ("download._RangeReader.readinto", "if pos > self.size:"): (
        "a read at the very end then asks for the empty range [size, size): "
        "_fetch sends no request for it and readinto returns 0 as before"
    ),
    (
        "download._RangeReader.readinto",
        "stop = self._end if (pos < self._end) or True else self.size",
    ): _AT_LIMIT,
    (
        "download._RangeReader.readinto",
        "stop = self._end if pos <= self._end else self.size",
    ): _AT_LIMIT,
    ("download._member_limits", "reader.limit_to(info.header_offset + 31)"): (
        "the 31st byte is the first byte of the member's name, fetched right "
        "after anyway: the requests stay inside the member"
    ),
    ("download._local_header", '(flags,) = struct.unpack("<h", head[6:8])'): (
        "only bit 3 of the flags is used, and signed and unsigned reads agree on it"
    ),
    (
        "download._local_header",
        'name_len, extra_len = struct.unpack("<HH", head[26:31])',
    ): ("head holds 30 bytes: [26:31] is the same 4 bytes as [26:30]"),
    (
        "download._local_header",
        "declared = None if flags & 9 or size == 0xFFFFFFFF else size",
    ): (
        "bit 0 marks an encrypted member, which zipfile cannot extract without "
        "a password either way"
    ),
    (
        "download._probe_once",
        'url, headers={"range": "bytes=0-63", "User-Agent": _USER_AGENT}',
    ): _URLLIB_NAMES,
    (
        "download._probe_once",
        'url, headers={"RANGE": "bytes=0-63", "User-Agent": _USER_AGENT}',
    ): _URLLIB_NAMES,
    (
        "download._probe_once",
        'url, headers={"Range": "bytes=0-63", "user-agent": _USER_AGENT}',
    ): _URLLIB_NAMES,
    (
        "download._probe_once",
        'url, headers={"Range": "bytes=0-63", "USER-AGENT": _USER_AGENT}',
    ): _URLLIB_NAMES,
    ("download._probe_once", "first = resp.read(65)"): (
        "the zip check looks at the first 16 bytes and shows the first 60; a "
        "65th byte changes neither"
    ),
    (
        "download._probe_once",
        'length = resp.headers.get("content-length")',
    ): _HEADER_LOOKUP,
    (
        "download._probe_once",
        'length = resp.headers.get("CONTENT-LENGTH")',
    ): _HEADER_LOOKUP,
    (
        "download._probe_once",
        "_check_zip_start(first, resp.status, "
        'resp.headers.get("content-type", ""), url)',
    ): _HEADER_LOOKUP,
    (
        "download._probe_once",
        "_check_zip_start(first, resp.status, "
        'resp.headers.get("CONTENT-TYPE", ""), url)',
    ): _HEADER_LOOKUP,
    (
        "download._probe_once",
        'total = resp.headers.get("Content-Range", "").partition("/")[2]',
    ): ("a Content-Range holds one '/': partition and rpartition split it alike"),
    (
        "download._probe_once",
        'total = resp.headers.get("content-range", "").rpartition("/")[2]',
    ): _HEADER_LOOKUP,
    (
        "download._probe_once",
        'total = resp.headers.get("CONTENT-RANGE", "").rpartition("/")[2]',
    ): _HEADER_LOOKUP,
    (
        "download._probe_once",
        'total = resp.headers.get("Content-Range", "XXXX").rpartition("/")[2]',
    ): (
        "without a Content-Range the total is not a number with 'XXXX' as with "
        "'': the same whole download follows"
    ),
    (
        "download.download_members",
        "zf = zipfile.ZipFile(io.BufferedReader(reader, ))",
    ): (
        "the buffer size only sets how much each raw read copies; the bytes "
        "requested are set by _BLOCK and the member limits"
    ),
    (
        "download.download_members",
        "zf = zipfile.ZipFile(io.BufferedReader(reader, buffer_size=2 << 16))",
    ): (
        "the buffer size only sets how much each raw read copies; the bytes "
        "requested are set by _BLOCK and the member limits"
    ),
    (
        "download.download_members",
        "zf = zipfile.ZipFile(io.BufferedReader(reader, buffer_size=1 << 17))",
    ): (
        "the buffer size only sets how much each raw read copies; the bytes "
        "requested are set by _BLOCK and the member limits"
    ),
    ("cache._read_sidecar", "with open(path, encoding=None) as fh:"): (
        "_write_sidecar writes JSON with ensure_ascii (json's default): the file "
        "is ASCII and reads the same in any locale's encoding"
    ),
    ("cache._read_sidecar", "with open(path, ) as fh:"): (
        "_write_sidecar writes JSON with ensure_ascii (json's default): the file "
        "is ASCII and reads the same in any locale's encoding"
    ),
    ("cache._read_sidecar", 'with open(path, encoding="UTF-8") as fh:'): (
        "codec names are case-insensitive: 'UTF-8' is 'utf-8'"
    ),
    (
        "base.BaseEmnistClassifier._validate_more",
        "X, _ = check_pixels(self, X, reset=None)  # refuses another n_features",
    ): (
        "check_pixels and scikit-learn's validate_data (_check_n_features, "
        "_check_feature_names) test reset only for truth: None acts as False"
    ),
    (
        "checkpoints.ResumableEarlyStopping.on_train_begin",
        "self.best = best if (best is not None) or True else self.best",
    ): (
        "only a resumed best of None changes branch, and then self.best is None "
        "too: Keras' on_train_begin, called just above, set it to None"
    ),
    (
        "labels.combine_weights",
        "product = np.asarray(w, np.float64) * np.asarray(class_w, None)",
    ): (
        "class_w is class_sample_weights' float32 array (the only caller); times "
        "a float64 array numpy promotes it to float64, exactly, as the cast did"
    ),
    ("training.FiniteLossCheck.__init__", "self.epoch = None"): (
        "epoch is read only by _check, called only from on_epoch_end, which sets "
        "it first; it is no documented attribute"
    ),
    ("waves._run_wave", "known = study.get_trials(deepcopy=True)"): (
        "known is only read: _remote_task passes on its finished trials, which "
        "no optuna storage changes in place (finished trials are not updatable), "
        "and the worker's study adds deep copies of them; a copy changes nothing"
    ),
}

_STATUS = {  # mutmut's exit codes (mutmut.stats.status_by_exit_code)
    0: "survived",
    1: "killed",
    3: "killed",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    # the tests' process died of a signal: it did not pass, so the mutant is
    # caught. -9 is also how mutmut ends a run past its hard CPU limit.
    -11: "crashed",
    -9: "crashed",
    None: "not checked",
}


# --- scratch copy ---------------------------------------------------------------------
def mutmut_config(areas) -> str:
    """The ``[tool.mutmut]`` table of the scratch copy, for ``areas``."""
    only = sorted(
        {
            p.split(".x")[0].replace(".", "/") + ".py"
            for area in areas
            for p in AREAS[area]
        }
    )
    return "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["emnist_estimators"]',
            f"only_mutate = {json.dumps(only)}",
            "pytest_add_cli_args_test_selection = " + json.dumps(mutation_tests(areas)),
            "pytest_add_cli_args = " + json.dumps(_PYTEST_ARGS),
            # TensorFlow is not fork-safe once it has run: mutants are forked from
            # a server that has only collected the tests, never run them.
            'process_isolation = "forkserver"',
            # the scratch copy sits inside the repository's git tree: leave git be
            "use_git_change_detection = false",
            "",
        ]
    )


#: pytest's options in steps 2 and 3: one process (pyproject's addopts asks
#: for two, which mutmut's in-process coverage of the tests cannot see), the
#: default suite's tests only.
_PYTEST_ARGS = [
    "-p",
    "no:cacheprovider",
    "-o",
    "addopts=",
    "-m",
    "not slow",
    *(f"--deselect={t}" for t in DESELECT),
]


def _without_mutmut_table(text: str) -> str:
    """``pyproject.toml`` less any ``[tool.mutmut]`` table (ours replaces it)."""
    return re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)


def make_scratch(scratch: Path, areas: list[str]) -> None:
    """A fresh copy of the package, the tests of ``areas`` and pyproject.toml
    in ``scratch``."""
    if scratch.exists():
        shutil.rmtree(scratch)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.npy", "*.json.tmp")
    shutil.copytree(
        REPO / "emnist_estimators", scratch / "emnist_estimators", ignore=ignore
    )
    record_source(scratch, areas)
    (scratch / "tests").mkdir(parents=True)
    copy_tests(scratch, areas)
    text = _without_mutmut_table((REPO / "pyproject.toml").read_text())
    (scratch / "pyproject.toml").write_text(text + mutmut_config(areas))
    tomllib.loads((scratch / "pyproject.toml").read_text())  # fail early if broken


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.rstrip("\n")  # keep porcelain's leading status column


def record_source(scratch: Path, areas: list[str]) -> None:
    """Note which commit the scratch copy was taken from, which of the copied
    files differed from it, and the areas it is for, in ``source.json``."""
    paths = ["emnist_estimators", *TEST_SUPPORT, "pyproject.toml"]
    paths += test_files(areas)
    dirty = _git("status", "--porcelain", "--", *paths).splitlines()
    source = {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": [d[3:] for d in dirty],
        "areas": areas,
    }
    (scratch / "source.json").write_text(json.dumps(source, indent=2) + "\n")


def scratch_source(scratch: Path) -> dict:
    """What :func:`record_source` wrote; exits if the scratch copy has none."""
    path = scratch / "source.json"
    if not path.is_file():
        sys.exit(f"{path} is missing: run without --resume to make a fresh copy")
    return json.loads(path.read_text())


def check_tests_exist(areas: list[str]) -> None:
    """Exit, naming them, if test files of ``areas`` are missing (renamed)."""
    wanted = [*test_files(areas), *(t.split("::")[0] for t in DESELECT)]
    missing = sorted({t for t in wanted if not (REPO / t).is_file()})
    if missing:
        sys.exit(
            f"test files missing: {', '.join(missing)}. Update AREA_TESTS, "
            f"DESELECT or TEST_SUPPORT in {Path(__file__).relative_to(REPO)} to "
            "the tests' current names."
        )


def copy_tests(scratch: Path, areas: list[str]) -> None:
    """Put the tests of ``areas``, as they are now, in the scratch copy and its
    mutants folder (where there is one)."""
    for folder in (scratch, scratch / "mutants"):
        if (folder / "tests").is_dir():
            for name in test_files(areas):
                shutil.copy2(REPO / name, folder / name)


def _env() -> dict:
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("MUTANT_UNDER_TEST", None)
    return env


def _mutmut() -> str:
    exe = Path(sys.executable).with_name("mutmut")
    return str(exe) if exe.exists() else "mutmut"


# --- step 1: generate and sort the mutants --------------------------------------------
_CATALOGUE = r"""
import json, os, sys
import libcst as cst
from mutmut.__main__ import copy_also_copy_files, copy_src_dir, create_mutants
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant, read_functions_from_index
from mutmut.mutation.trampoline import set_mutant_under_test
from mutmut.utils.file_utils import walk_mutatable_files

set_mutant_under_test("mutant_generation")
os.makedirs("mutants", exist_ok=True)
copy_src_dir()
copy_also_copy_files()
create_mutants(int(sys.argv[1]))
out = {}
for path in walk_mutatable_files():
    data = SourceFileMutationData(path=path)
    data.load()
    for name in data.exit_code_by_key:
        orig, mutant = read_functions_from_index(name, path)
        out[name] = {
            "path": str(path),
            "orig": cst.Module([orig]).code,
            "mutant": cst.Module([mutant]).code,
            "diff": get_diff_for_mutant(name, path=path),
        }
with open("mutants/catalogue.json", "w") as fh:
    json.dump(out, fh)
"""


def generate(scratch: Path, max_children: int) -> dict[str, dict]:
    """Generate the mutants (mutmut's own code); name -> sources and diff."""
    proc = subprocess.run(
        [sys.executable, "-c", _CATALOGUE, str(max_children)],
        cwd=scratch,
        env=_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(
            "generating the mutants failed:\n"
            f"{proc.stdout[-2000:]}{proc.stderr[-4000:]}"
        )
    return json.loads((scratch / "mutants" / "catalogue.json").read_text())


def area_of(name: str) -> str | None:
    function = name.partition("__mutmut_")[0]
    for area, patterns in AREAS.items():
        for pattern in patterns:
            if pattern.endswith("*"):
                if function.startswith(pattern[:-1]):
                    return area
            elif function == pattern:
                return area
    return None


def function_of(name: str) -> str:
    """``module.Class.method`` or ``module.function`` of a mutant, the module
    without its package (``download._RangeReader._fetch``)."""
    module, _, func = name.partition("__mutmut_")[0].rpartition(".")
    module = module.rpartition(".")[2]
    if func.startswith("x" + _SEP):
        _, cls, meth = func.split(_SEP)
        return f"{module}.{cls}.{meth}"
    return f"{module}.{func[2:]}"


def changed_lines(diff: str) -> tuple[list[str], list[str]]:
    """``(removed, added)`` lines of a unified diff, stripped."""
    lines = diff.splitlines()
    removed = [
        ln[1:].strip()
        for ln in lines
        if ln.startswith("-") and not ln.startswith("---")
    ]
    added = [
        ln[1:].strip()
        for ln in lines
        if ln.startswith("+") and not ln.startswith("+++")
    ]
    return removed, added


def _in_message(node: ast.AST, parents: dict) -> bool:
    """True if ``node`` is part of a raised exception or a log/warning call."""
    while node in parents and not isinstance(node, ast.FunctionDef):
        node = parents[node]
        if isinstance(node, ast.Raise):
            return True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in _MESSAGE_CALLERS
        ):
            return True
    return False


def message_only(orig: str, mutant: str) -> bool:
    """True if the mutant changes only message text: string constants of a
    ``raise`` or of a ``logger``/``warnings`` call, nothing else."""
    try:
        a, b = ast.parse(textwrap.dedent(orig)), ast.parse(textwrap.dedent(mutant))
    except SyntaxError:
        return False
    nodes_a, nodes_b = list(ast.walk(a)), list(ast.walk(b))
    if len(nodes_a) != len(nodes_b):
        return False
    parents = {c: n for n in nodes_a for c in ast.iter_child_nodes(n)}
    changed = []
    for x, y in zip(nodes_a, nodes_b, strict=True):
        if type(x) is not type(y):
            return False
        if isinstance(x, ast.Constant):
            if x.value != y.value:
                if not (isinstance(x.value, str) and isinstance(y.value, str)):
                    return False
                changed.append(x)
            continue
        for field in x._fields:
            vx, vy = getattr(x, field, None), getattr(y, field, None)
            if not isinstance(vx, (ast.AST, list)) and vx != vy:
                return False
    return bool(changed) and all(_in_message(c, parents) for c in changed)


def skip_reason(name: str, entry: dict) -> str | None:
    """Why a mutant is not run, or None."""
    if message_only(entry["orig"], entry["mutant"]):
        return "message wording"
    pattern = _FEATURE_LINES.get(name.partition("__mutmut_")[0])
    removed, added = changed_lines(entry["diff"])
    if pattern is not None and not pattern.search(" ".join(removed + added)):
        return "other line"
    return None


# --- step 2: the suite's tests --------------------------------------------------------
def run_mutmut(scratch: Path, names: list[str], max_children: int, log: Path) -> None:
    """``mutmut run`` on the mutants ``names``; its output goes to ``log``."""
    cmd = [_mutmut(), "run", "--max-children", str(max_children), *names]
    print(
        f"$ mutmut run --max-children {max_children} <{len(names)} mutants> "
        f"(in {scratch}, log {log})",
        flush=True,
    )
    with open(log, "w") as fh:
        proc = subprocess.run(
            cmd, cwd=scratch, env=_env(), stdout=fh, stderr=subprocess.STDOUT
        )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        sys.exit(f"mutmut run failed ({proc.returncode}); end of {log}:\n{tail}")


def read_results(scratch: Path) -> dict[str, str]:
    """Mutant name -> status, from mutmut's ``.meta`` files."""
    out = {}
    for meta in (scratch / "mutants").rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        for name, code in data["exit_code_by_key"].items():
            out[name] = _STATUS.get(code, "suspicious")
    return out


# --- step 3: each survivor against all its area's tests -------------------------------
def killing_tests(scratch: Path, name: str, area: str) -> list[str]:
    """The first test of ``area`` that fails with mutant ``name`` active (``-x``:
    one is enough, and it keeps step 3 short)."""
    target = " ".join(AREA_TESTS[area])
    pytest_args = ["-x", "-q", "-rfE", "--tb=no", "-p", "no:randomly"]
    pytest_args += ["-o", "timeout=300", *_PYTEST_ARGS]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *AREA_TESTS[area], *pytest_args],
        cwd=scratch / "mutants",
        env={**_env(), "MUTANT_UNDER_TEST": name},
        capture_output=True,
        text=True,
    )
    if proc.returncode in (4, 5):  # usage error, no tests: the check is broken
        sys.exit(f"step 3 could not run {target}:\n{proc.stdout[-2000:]}")
    failed = re.findall(r"^(?:FAILED|ERROR) \S+::(\w+)", proc.stdout, re.M)
    if proc.returncode and not failed:  # 2, 3: interrupted, internal error
        failed = [f"(pytest exit {proc.returncode})"]
    return sorted(set(failed))


def resolve(scratch: Path, catalogue: dict, status: dict, workers: int):
    """Report rows for the survivors of step 2 (and the mutants it did not
    reach), after step 3."""
    has_tests = (scratch / "mutants" / "tests").is_dir()
    survivors = [n for n, s in status.items() if s in ("survived", "no tests")]

    def one(name):
        area = area_of(name)
        killers = killing_tests(scratch, name, area) if has_tests else []
        removed, added = changed_lines(catalogue[name]["diff"])
        function = function_of(name)
        why = EQUIVALENT.get((function, " / ".join(added)))
        if killers:
            resolution = "killed by " + ", ".join(killers)
        elif why:
            resolution = "equivalent: " + why
        else:
            resolution = "UNRESOLVED"
        return {
            "area": area,
            "mutant": name,
            "file": catalogue[name]["path"],
            "function": function,
            "suite": status[name],
            "removed": " / ".join(removed),
            "added": " / ".join(added),
            "resolution": resolution,
        }

    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(one, sorted(survivors)))
    for row in rows:
        print(f"  {row['mutant']}: {row['resolution']}", flush=True)
    return rows


# --- main -----------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-children",
        "--workers",
        type=int,
        default=2,
        help="mutants tested at once, in steps 2 and 3 (default: 2)",
    )
    parser.add_argument(
        "--area",
        action="append",
        choices=list(AREAS),
        help="only these areas (default: all); writes no result file",
    )
    parser.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="run N mutants per area, drawn with --seed (default: every mutant)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="the draw's seed (default: 0)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the scratch copy and the results mutmut saved; run the mutants "
        "it has not checked yet (after an interruption), then step 3 afresh",
    )
    parser.add_argument("--work", type=Path, default=WORK / "mutation")
    args = parser.parse_args(argv)
    if args.sample is not None and args.sample < 1:
        parser.error(f"--sample must be at least 1, not {args.sample}")
    areas = args.area or list(AREAS)
    scratch = args.work.resolve()
    timing = scratch / "minutes.json"  # time spent, over resumed sessions too
    started = time.time()

    if args.resume:
        source = scratch_source(scratch)
        made_for = source.get("areas", list(AREAS))
        if not set(areas) <= set(made_for):
            sys.exit(
                f"the scratch copy {scratch} was made for the areas "
                f"{', '.join(made_for)}: run without --resume for others"
            )
        check_tests_exist(made_for)
        catalogue = json.loads((scratch / "mutants" / "catalogue.json").read_text())
        spent = json.loads(timing.read_text()) if timing.exists() else {"steps 1-2": 0}
        copy_tests(scratch, made_for)
    else:
        check_tests_exist(areas)
        make_scratch(scratch, areas)
        catalogue = generate(scratch, args.max_children)
        spent = {"steps 1-2": 0}
        source = scratch_source(scratch)
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m tools.mutation_check", *given])
    spent.setdefault("commands", []).append(command)  # every session, in order
    catalogue = {n: e for n, e in catalogue.items() if area_of(n) in areas}
    check_areas_found(catalogue, areas)
    skipped = {n: r for n, e in catalogue.items() if (r := skip_reason(n, e))}
    runnable = sorted(set(catalogue) - set(skipped))
    sample = draw(runnable, args.sample, args.seed)
    to_run = sorted(sample["chosen"])
    results = read_results(scratch)
    pending = [n for n in to_run if results.get(n, "not checked") == "not checked"]
    print(
        f"{len(catalogue)} mutants in scope, {len(skipped)} not run "
        f"({dict(Counter(skipped.values()))}), {len(runnable)} runnable, "
        f"{len(to_run)} to run (sample: {args.sample or 'all'}, seed {args.seed}), "
        f"{len(pending)} of them not checked yet",
        flush=True,
    )
    if pending:
        log = scratch / f"mutmut-run-{time.strftime('%H%M%S')}.log"
        run_mutmut(scratch, pending, args.max_children, log)
        spent["step 2 workers"] = args.max_children
    status = {n: s for n, s in read_results(scratch).items() if n in to_run}
    spent["steps 1-2"] += (time.time() - started) / 60
    timing.write_text(json.dumps(spent))
    step3_started = time.time()

    survivors = resolve(scratch, catalogue, status, args.max_children)
    rows = [_row(area, catalogue, skipped, status, survivors) for area in areas]
    rows.append(_row("all", catalogue, skipped, status, survivors))
    for row in rows:
        print(row, flush=True)
    spent["step 3"] = (time.time() - step3_started) / 60
    spent["step 3 workers"] = args.max_children
    timing.write_text(json.dumps(spent))
    print(
        f"steps 1-2: {spent['steps 1-2']:.1f} min, step 3: {spent['step 3']:.1f} min",
        flush=True,
    )
    sample_info = {
        "size": args.sample,
        "seed": args.seed,
        "population": sample["population"],
    }
    if args.area is None:
        write_report(
            rows, survivors, skipped, catalogue, spent, source, command, sample_info
        )
    return 1 if rows[-1]["unresolved"] or rows[-1]["other"] else 0


def check_areas_found(catalogue: dict, areas: list[str]) -> None:
    """Exit, naming them, if a function of :data:`AREAS` has no mutant (it was
    renamed or moved, or a typo): the check would pass without checking it."""
    found = {n.partition("__mutmut_")[0] for n in catalogue}
    missing = [
        pattern
        for area in areas
        for pattern in AREAS[area]
        if not any(
            f.startswith(pattern[:-1]) if pattern.endswith("*") else f == pattern
            for f in found
        )
    ]
    if missing:
        sys.exit(
            "no mutants of: " + ", ".join(missing) + ". Update AREAS to the "
            "functions' current names."
        )


def draw(runnable: list[str], size: int | None, seed: int) -> dict:
    """``size`` mutants of each area of ``runnable`` (all where it has fewer),
    drawn with ``seed``: the same mutants for the same code, size and seed.

    Returns ``chosen`` (the names) and ``population`` (area -> how many
    there were to draw from)."""
    by_area: dict[str, list[str]] = {}
    for name in sorted(runnable):
        by_area.setdefault(area_of(name) or "", []).append(name)
    chosen = []
    for area, names in by_area.items():
        if size is None or size >= len(names):
            chosen += names
        else:  # a str seed is hashed with sha512: the same draw in any process
            chosen += random.Random(f"{seed}:{area}").sample(names, size)
    return {"chosen": chosen, "population": {a: len(n) for a, n in by_area.items()}}


def _row(area, catalogue, skipped, status, survivors) -> dict:
    """Totals of one area (or of all: ``area="all"``) for the result table."""

    def mine(name):
        return area == "all" or area_of(name) == area

    counts = Counter(s for n, s in status.items() if mine(n))
    skip = Counter(r for n, r in skipped.items() if mine(n))
    resolved = Counter(
        s["resolution"].split(" ")[0] for s in survivors if mine(s["mutant"])
    )
    mutants = sum(1 for n in catalogue if mine(n))
    run = sum(counts.values())
    return {
        "area": area,
        "mutants": mutants,
        "not run: message wording": skip["message wording"],
        "not run: other line": skip["other line"],
        "not sampled": mutants - sum(skip.values()) - run,
        "run": run,
        "killed": counts["killed"],
        "timeout": counts["timeout"],
        "survived": counts["survived"],
        "no tests": counts["no tests"],
        "crashed": counts["crashed"],
        "then killed (step 3)": resolved["killed"],
        "equivalent": resolved["equivalent:"],
        "unresolved": resolved["UNRESOLVED"],
        "other": sum(
            v
            for k, v in counts.items()
            if k not in ("killed", "timeout", "crashed", "survived", "no tests")
        ),
    }


def _code(text: str) -> str:
    return (
        "`" + text.replace("|", "\\|").replace("`", "'") + "`" if text else "(nothing)"
    )


def write_report(
    rows, survivors, skipped, catalogue, spent, source, command, sample
) -> None:
    import mutmut

    workers = spent.get("step 2 workers", "(not recorded)")  # older scratch copies
    if sample["size"] is None:
        drawn = "Every mutant that is not skipped (below) ran."
    else:
        drawn = (
            f"Sample: {sample['size']} mutants per area (all where an area has "
            f"fewer), drawn with seed {sample['seed']} from each area's runnable "
            "mutants (population: "
            + ", ".join(f"{a} {n}" for a, n in sample["population"].items())
            + "); the others are counted as not sampled."
        )
    notes = [
        f"Source: commit {source['commit']}"
        + (
            f", with uncommitted changes to {', '.join(source['dirty'])}"
            if source["dirty"]
            else " (the mutated modules and the tests as committed)"
        )
        + ". "
        + source.get("note", ""),
        "",
        drawn,
        "",
        f"Step 2: mutmut {mutmut.__version__} (forkserver isolation, workers: "
        f"{workers}) ran each mutant against the tests of its area (`AREA_TESTS`) "
        f"that reach its function, less {', '.join(DESELECT)}. Step 3: each "
        "survivor, and each mutant no test reached, ran against all the tests "
        f"of its area. Steps 1-2 took {spent['steps 1-2']:.0f} min, step 3 "
        f"{spent['step 3']:.0f} min ({spent['step 3 workers']} worker(s)). "
        "Sessions of this scratch copy, in order: "
        + "; ".join(f"`{c}`" for c in spent["commands"])
        + ".",
        "",
        "*Killed*: a test failed; *timeout*: the tests hung (e.g. a retry loop that "
        "never ends), and *crashed*: their process died of a signal (SIGKILL once "
        "past mutmut's hard CPU limit); both count as killed. *Not run*: mutants "
        "that change only the wording of an error or log message (a string "
        "inside `raise ...` or a `logger` call), and mutants of lines that are "
        "not the feature's in "
        + ", ".join(f"`{function_of(f)}`" for f in _FEATURE_LINES)
        + "; both lists are in the JSON file.",
        "",
        "Tests per area:",
        "",
    ]
    for area in AREAS:
        notes.append(f"- {area}: " + ", ".join(f"`{t}`" for t in AREA_TESTS[area]))
    notes += ["", "Functions mutated, per area:", ""]
    for area in AREAS:  # those that had mutants, as module.function
        names = sorted({function_of(n) for n in catalogue if area_of(n) == area})
        notes.append(f"- {area}: " + ", ".join(f"`{n}`" for n in names))
    notes += [
        "",
        "## Every survivor of step 2, and how it was resolved",
        "",
        "Each line: the file and function, the change (`before` -> `after`), what "
        "step 2 said (survived, or no tests reached the function), and the test of "
        "its area that kills it - or why it is equivalent.",
        "",
    ]
    if not survivors:
        notes.append("None.")
    for s in survivors:
        notes.append(
            f"- {s['file']} `{s['function'].split('.', 1)[1]}` ({s['suite']}): "
            f"{_code(s['removed'])} -> {_code(s['added'])} - {s['resolution']}"
        )
    payload = {
        "benchmark": "mutation_check",
        "command": command,
        "machine": {**machine(), "commit": source["commit"]},
        "rows": rows,
        "notes": "\n".join(notes),
        "source": source,
        "sample": sample,
        "minutes": spent,
        "survivors": survivors,
        "not_run": [
            {
                "mutant": n,
                "reason": r,
                "function": function_of(n),
                "added": " / ".join(changed_lines(catalogue[n]["diff"])[1]),
            }
            for n, r in sorted(skipped.items())
        ],
    }
    columns = list(rows[0])
    lines = [
        "# mutation_check",
        "",
        f"Command: `{command}`  ",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in payload["machine"].items()),
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows),
        "",
        payload["notes"],
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    for path, text in (
        (RESULTS / "mutation_check.json", json.dumps(payload, indent=2) + "\n"),
        (RESULTS / "mutation_check.md", "\n".join(lines) + "\n"),
    ):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    print("\n".join(lines))


def machine() -> dict:
    """Where and with what the check ran: date, Python, CPU, library versions."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
    }
    for mod in ("numpy", "tensorflow", "keras", "sklearn", "optuna", "mutmut"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - say what is there
            pass
    return info


if __name__ == "__main__":
    sys.exit(main())
