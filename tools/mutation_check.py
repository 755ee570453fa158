"""Mutation check: do the fast tests notice when the guarded features break?

mutmut 3 breaks the code on purpose, one small change (a *mutant*) at a time,
and runs the tests that cover the changed function; a mutant that no test
notices *survives*. The check is limited to the four features of issue 16:

- ``download``: the downloader's Range/resume logic (``_RangeReader``; the
  probe that decides between ranged and whole downloads; the ranged branch of
  ``download_members``) and the size caps of member extraction;
- ``cache``: the cache identity check and what decides a rebuild;
- ``weights``: sample weighting in the estimators (validated, split with the
  validation rows, passed to Keras by ``fit`` and ``partial_fit``; ``score``);
- ``overwrite``: the ``--overwrite`` guard of the output folders.

Everything happens in a scratch copy (``benchmarks/.work/mutation``); the
repository itself is never mutated. Steps:

1. mutmut generates every mutant of the functions in :data:`AREAS`. Not run,
   and counted as such: mutants that only change the wording of an error or
   log message (a string inside ``raise ...`` or a ``logger`` call), and, in
   the functions of :data:`_FEATURE_LINES`, mutants of lines that are not
   the feature's (for ``fit``: lines that do not name the sample weights).
2. mutmut runs the others against the suite's own fast tests
   (:data:`MUTATION_TESTS`).
3. Each survivor, and each mutant no test of step 2 reaches, is run against
   all the tests of its area in :data:`AREA_TESTS` (mutmut picks by coverage
   in step 2), which names the tests that kill it.

A mutant that survives both must be equivalent (no behaviour a user could see
changes), with its reason in :data:`EQUIVALENT`; the command exits 1 on any
other. Results: ``benchmarks/results/mutation_check.{md,json}``.

Run: ``python -m benchmarks.mutation_check`` (needs ``pip install -e
".[test,mutation]"``; on 2 shared cores, steps 1-2 took 20 minutes and step 3
27 to 41 minutes with ``--workers 1``). ``--area``
checks some areas only and writes no result file; ``--resume`` keeps the
scratch copy and mutmut's saved results, runs what is not checked yet (after
an interruption), and redoes step 3 (also after editing the tests).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
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

from benchmarks._harness import REPO, WORK, machine, write_results

#: The suite's fast tests that cover the four areas (step 2).
MUTATION_TESTS = [
    "tests/test_download.py",
    "tests/test_download_faults.py",
    "tests/test_cache.py",
    "tests/test_sample_weight.py",
    "tests/test_estimators_faults.py::test_negative_sample_weight_is_refused",
    "tests/test_output_folder.py",
]
#: Tests of those files that check something else and would slow every
#: mutant down: the cache's SIGKILL tests (crash safety of the cache build,
#: about 1.7 s each, 8 of them).
DESELECT = ["tests/test_cache.py::test_sigkill_while_writing_the_cache"]
#: The tests of each area, run whole against each survivor of step 2 (step 3).
#: The tests written to kill step 2's survivors (issue 16) live among them.
AREA_TESTS = {
    "download": ["tests/test_download.py", "tests/test_download_faults.py"],
    "cache": ["tests/test_cache.py"],
    "weights": [
        "tests/test_sample_weight.py",
        "tests/test_estimators_faults.py::test_negative_sample_weight_is_refused",
    ],
    "overwrite": ["tests/test_output_folder.py"],
}
#: What the tests import besides the package: copied with them.
TEST_SUPPORT = ["tests/conftest.py", "tests/helpers.py"]

_SEP = "ǁ"  # mutmut's separator between class and method in mutant names
_DL = "emnist_estimators.datasets.download."
_CACHE = "emnist_estimators.datasets.cache."
# The estimators' base class: in estimators.py up to commit f49f56b, in base.py
# since the split of 13f4e72 (which moved the set-up that checks the weights
# into _prepare and _initialize). Both layouts are listed, so the check runs
# on either.
_EST = f"emnist_estimators.estimators.x{_SEP}_EmnistClassifier{_SEP}"
_BASE = f"emnist_estimators.base.x{_SEP}_EmnistClassifier{_SEP}"
_WEIGHT_METHODS = [
    "_check_weights",
    "_split_validation",
    "fit",
    "partial_fit",
    "score",
    "_prepare",
    "_initialize",
]
_OUT = "emnist_estimators.output_folder."

#: Area -> the functions whose mutants are checked (mutmut's mangled names;
#: a trailing ``*``: every method of the class).
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
        *(f"{_EST}{m}" for m in _WEIGHT_METHODS[:5]),
        *(f"{_BASE}{m}" for m in _WEIGHT_METHODS),
    ],
    "overwrite": [
        f"{_OUT}x_check_output_folder",
        f"{_OUT}x__protected",
        f"{_OUT}x_read_manifest",
        f"{_OUT}x__files_under",
        f"{_OUT}x_output_folder",
        f"{_OUT}x__swap_in",
    ],
}
#: Functions that do more than the feature: only mutants of their lines that
#: match the pattern are checked (the lines that name the weights; the ranged
#: branch of ``download_members``).
_WEIGHT_LINES = re.compile(r"\b(?:sample_weight|w|w_tr|w_val)\b")
_FEATURE_LINES = {
    **{
        f"{prefix}{m}": _WEIGHT_LINES
        for prefix in (_EST, _BASE)
        for m in _WEIGHT_METHODS
        if m not in ("_check_weights", "score")
    },
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
        "estimators._EmnistClassifier._check_weights",
        "sample_weight, X, dtype=None, ensure_non_negative=True",
    ): (
        "Keras casts the weights to float32 before use: the same values reach "
        "the loss, from a float64 array"
    ),
    (
        "estimators._EmnistClassifier._check_weights",
        "sample_weight, X, ensure_non_negative=True",
    ): (
        "Keras casts the weights to float32 before use: the same values reach "
        "the loss, from a float64 array"
    ),
    (
        "estimators._EmnistClassifier._split_validation",
        "val_data = (X[val], y[val]) if (w is None) and False "
        "else (X[val], y[val], w_val)",
    ): (
        "without weights w_val is None, and Keras unpacks validation_data "
        "(X, y, None) as (X, y): the same unweighted validation loss "
        "(bit-identical histories, MLP and CNN)"
    ),
    (
        "estimators._EmnistClassifier.fit",
        "X_tr, y_tr, w_tr, val = self._split_validation(X, y_enc, w, None)",
    ): (
        "fit splits inside seeded(seed), which seeds NumPy's global generator "
        "with the same seed, and nothing draws from it before the split: "
        "train_test_split(random_state=None) picks the same rows as with "
        "random_state=seed (bit-identical histories, MLP and CNN, with and "
        "without weights); without a seed both are random"
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
def mutmut_config() -> str:
    """The ``[tool.mutmut]`` table of the scratch copy."""
    only = sorted(
        {
            p.split(".x")[0].replace(".", "/") + ".py"
            for patterns in AREAS.values()
            for p in patterns
        }
    )
    return "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["emnist_estimators"]',
            f"only_mutate = {json.dumps(only)}",
            f"pytest_add_cli_args_test_selection = {json.dumps(MUTATION_TESTS)}",
            "pytest_add_cli_args = "
            + json.dumps(
                ["-p", "no:cacheprovider"] + [f"--deselect={t}" for t in DESELECT]
            ),
            # TensorFlow is not fork-safe once it has run: mutants are forked from
            # a server that has only collected the tests, never run them.
            'process_isolation = "forkserver"',
            # the scratch copy sits inside the repository's git tree: leave git be
            "use_git_change_detection = false",
            "",
        ]
    )


def _without_mutmut_table(text: str) -> str:
    """``pyproject.toml`` less any ``[tool.mutmut]`` table (ours replaces it)."""
    return re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)


def make_scratch(scratch: Path) -> None:
    """A fresh copy of the package, the tests and pyproject.toml in ``scratch``."""
    if scratch.exists():
        shutil.rmtree(scratch)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.npy", "*.json.tmp")
    shutil.copytree(
        REPO / "emnist_estimators", scratch / "emnist_estimators", ignore=ignore
    )
    record_source(scratch)
    (scratch / "tests").mkdir(parents=True)
    copy_tests(scratch)
    text = _without_mutmut_table((REPO / "pyproject.toml").read_text())
    (scratch / "pyproject.toml").write_text(text + mutmut_config())
    tomllib.loads((scratch / "pyproject.toml").read_text())  # fail early if broken


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def record_source(scratch: Path) -> None:
    """Note which commit the scratch copy was taken from, and which of the copied
    files differed from it, in ``source.json``."""
    paths = ["emnist_estimators", *TEST_SUPPORT, "pyproject.toml"]
    paths += sorted({t.split("::")[0] for t in MUTATION_TESTS})
    dirty = _git("status", "--porcelain", "--", *paths).splitlines()
    source = {"commit": _git("rev-parse", "HEAD"), "dirty": [d[3:] for d in dirty]}
    (scratch / "source.json").write_text(json.dumps(source, indent=2) + "\n")


def scratch_source(scratch: Path) -> dict:
    """What :func:`record_source` wrote; exits if the scratch copy has none."""
    path = scratch / "source.json"
    if not path.is_file():
        sys.exit(f"{path} is missing: run without --resume to make a fresh copy")
    return json.loads(path.read_text())


def copy_tests(scratch: Path) -> None:
    """Put the areas' tests, as they are now, in the scratch copy and its mutants
    folder (where there is one)."""
    names = {t.split("::")[0] for t in MUTATION_TESTS}
    names |= {t.split("::")[0] for targets in AREA_TESTS.values() for t in targets}
    for folder in (scratch, scratch / "mutants"):
        if (folder / "tests").is_dir():
            for name in [*TEST_SUPPORT, *sorted(names)]:
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
    pytest_args = ["-x", "-q", "-rfE", "--tb=no", "-p", "no:cacheprovider"]
    pytest_args += ["-p", "no:randomly", "-o", "addopts=", "-o", "timeout=120"]
    pytest_args += [f"--deselect={t}" for t in DESELECT]
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
        # the base class's methods are keyed by their first home, estimators.py
        key = function
        if key.startswith("base._EmnistClassifier."):
            key = "estimators." + key.removeprefix("base.")
        why = EQUIVALENT.get((key, " / ".join(added)))
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
        "--resume",
        action="store_true",
        help="keep the scratch copy and the results mutmut saved; run the mutants "
        "it has not checked yet (after an interruption), then step 3 afresh",
    )
    parser.add_argument("--work", type=Path, default=WORK / "mutation")
    args = parser.parse_args(argv)
    areas = args.area or list(AREAS)
    scratch = args.work.resolve()
    timing = scratch / "minutes.json"  # time spent, over resumed sessions too
    started = time.time()

    if args.resume:
        catalogue = json.loads((scratch / "mutants" / "catalogue.json").read_text())
        spent = json.loads(timing.read_text()) if timing.exists() else {"steps 1-2": 0}
        copy_tests(scratch)
    else:
        make_scratch(scratch)
        catalogue = generate(scratch, args.max_children)
        spent = {"steps 1-2": 0}
    source = scratch_source(scratch)
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m benchmarks.mutation_check", *given])
    spent.setdefault("commands", []).append(command)  # every session, in order
    catalogue = {n: e for n, e in catalogue.items() if area_of(n) in areas}
    skipped = {n: r for n, e in catalogue.items() if (r := skip_reason(n, e))}
    to_run = sorted(set(catalogue) - set(skipped))
    results = read_results(scratch)
    pending = [n for n in to_run if results.get(n, "not checked") == "not checked"]
    print(
        f"{len(catalogue)} mutants in scope, {len(skipped)} not run "
        f"({dict(Counter(skipped.values()))}), {len(to_run)} to run, "
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
    if args.area is None:
        write_report(rows, survivors, skipped, catalogue, spent, source, command)
    return 1 if rows[-1]["unresolved"] or rows[-1]["other"] else 0


def _row(area, catalogue, skipped, status, survivors) -> dict:
    """Totals of one area (or of all: ``area="all"``) for the result table."""

    def mine(name):
        return area == "all" or area_of(name) == area

    counts = Counter(s for n, s in status.items() if mine(n))
    skip = Counter(r for n, r in skipped.items() if mine(n))
    resolved = Counter(
        s["resolution"].split(" ")[0] for s in survivors if mine(s["mutant"])
    )
    return {
        "area": area,
        "mutants": sum(1 for n in catalogue if mine(n)),
        "not run: message wording": skip["message wording"],
        "not run: other line": skip["other line"],
        "run": sum(counts.values()),
        "killed": counts["killed"],
        "timeout": counts["timeout"],
        "survived": counts["survived"],
        "no tests": counts["no tests"],
        "crashed": counts["crashed"],
        "then killed by new tests": resolved["killed"],
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


def write_report(rows, survivors, skipped, catalogue, spent, source, command) -> None:
    import mutmut

    workers = spent.get("step 2 workers", "(not recorded)")  # older scratch copies
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
        f"Step 2: mutmut {mutmut.__version__} (forkserver isolation, workers: "
        f"{workers}) ran each "
        f"mutant against the tests of {', '.join(MUTATION_TESTS)} that reach its "
        f"function, less {', '.join(DESELECT)}. Step 3: each survivor, and "
        "each mutant no test reached, ran against all the tests of its area "
        "(`AREA_TESTS`). Steps 1-2 took {spent['steps 1-2']:.0f} min, step 3 "
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
        "not the feature's in `fit`, `partial_fit`, `_split_validation` (lines "
        "that do not name the weights) and `download_members` (lines outside its "
        "ranged branch); both "
        "lists are in the JSON file.",
        "",
        "Functions mutated, per area:",
        "",
    ]
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
    write_results(
        "mutation_check",
        rows,
        command=command,
        notes="\n".join(notes),
        meta={**machine(), "commit": source["commit"]},
    )
    path = REPO / "benchmarks" / "results" / "mutation_check.json"
    payload = json.loads(path.read_text())
    payload["source"] = source
    payload["minutes"] = spent
    payload["survivors"] = survivors
    payload["not_run"] = [
        {
            "mutant": n,
            "reason": r,
            "function": function_of(n),
            "added": " / ".join(changed_lines(catalogue[n]["diff"])[1]),
        }
        for n, r in sorted(skipped.items())
    ]
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
