"""The package's layering and its documented layout, checked from the source.

Every module has a rank of its own, and imports only modules of lower rank -
counting imports inside functions and under ``TYPE_CHECKING`` - so there is
no import cycle, resolving a dataset never pulls in the estimators (and
TensorFlow), and the estimator sits above what saves, checkpoints and
exports it. No module imports another module's private name, none is over
800 lines and no class over 400.
"""

from __future__ import annotations

import ast
import graphlib
import re
from pathlib import Path

import pytest
from helpers import REPO

PACKAGE = REPO / "emnist_estimators"

#: The modules from the bottom up: each imports only modules listed before it.
LAYERS = [
    "exceptions",
    "_version",
    "threads",
    "_splits",
    "architectures",
    "losses",
    "keras_io",
    "_utils",
    "datasets._official",
    "datasets._tempfiles",
    "datasets.digits",
    "datasets.readers",
    "datasets.cache",
    "datasets.download",
    "datasets.loader",
    "datasets.summary",
    "datasets",
    "images",
    "output_folder",
    "preprocessing",
    "sources",
    "batches",
    "callbacks",
    "cluster",
    "distribute",
    "checkpoints",
    "persistence",
    "twin",
    "inference",
    "exported",
    "export_files",
    "export",
    "labels",
    "training",
    "scikeras_boundary",
    "saved_state",
    "base",
    "estimators",
    "export_skl2onnx",
    "pretrained",
    "runs",
    "reporting",
    "tuning.space",
    "tuning.objectives",
    "tuning.storage",
    "tuning.objective",
    "tuning.waves",
    "tuning.search",
    "tuning",
    "demo",
    "serve_api",
    "serve",
    "tracking",
    "cli.console",
    "cli.parser",
    "cli.loading",
    "cli.data",
    "cli.train",
    "cli.score",
    "cli.predict",
    "cli.tune",
    "cli.deploy",
    "cli",
    "__main__",
]
RANKS = {name: rank for rank, name in enumerate(LAYERS)}
MAX_MODULE_LINES = 800
MAX_CLASS_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, source: str | None = None) -> set[str]:
    """Our modules that ``path`` imports, as names relative to the package."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p]
    found = set()
    tree = ast.parse(path.read_text() if source is None else source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = [*base, *(node.module.split(".") if node.module else [])]
            if node.module is None:  # from . import x, y
                found.update(".".join([*target, a.name]) for a in node.names)
            else:
                found.add(".".join(target))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "emnist_estimators"
        ):
            found.add(node.module.removeprefix("emnist_estimators").lstrip("."))
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("emnist_estimators.")
                for a in node.names
                if a.name.startswith("emnist_estimators.")
            )
    # ``from . import x`` names a module or, for the root, an attribute
    return {m for m in found if m != "__version__"}


def rank(name: str) -> int:
    return RANKS[name]


def private_imports(path: Path) -> list[str]:
    """``from .module import _name`` lines of ``path`` naming another module's
    private name (a dunder such as ``__version__`` is not private)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (
            node.level or (node.module or "").startswith("emnist_estimators")
        ):
            found += [
                f"{node.module}.{a.name}"
                for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__")
            ]
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if module_name(p))


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_module_imports_one_above_it_or_its_own_rank(path):
    mine = rank(module_name(path))
    above = sorted(m for m in imports_of(path) if m not in RANKS or rank(m) >= mine)
    assert not above, f"{module_name(path)} (rank {mine}) imports {above}"


def test_the_import_graph_has_no_cycle():
    """Independent of the ranks: a cycle anywhere, functions included, fails."""
    graph = {module_name(p): imports_of(p) for p in MODULES}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_module_imports_another_modules_private_name(path):
    assert private_imports(path) == []


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_modules_and_classes_stay_small(path):
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    big = [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ClassDef)
        and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES
    ]
    assert big == []


#: A module docstring says what the module is for in a few lines; how it
#: works and why go to the docs (docs/design.rst). Its examples do not count.
MAX_DOCSTRING_LINES = 15


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_module_docstrings_stay_short(path):
    lines = (ast.get_docstring(ast.parse(path.read_text())) or "").splitlines()
    prose = next(
        (i for i, s in enumerate(lines) if s.strip() == "Examples"), len(lines)
    )
    assert prose <= MAX_DOCSTRING_LINES, (
        f"{module_name(path)}'s docstring has {prose} lines before its examples; "
        "move how it works and why to docs/design.rst"
    )


def _layout_block(doc: str) -> str:
    text = (REPO / doc).read_text()
    start = text.index("```\nemnist_estimators/\n")
    return text[start : text.index("```\n", start + 4)]


def test_every_module_has_a_rank_and_a_line_in_contributing():
    names = {module_name(p) for p in MODULES}
    assert names - {"__main__"} <= set(RANKS), sorted(names - set(RANKS))
    layout = _layout_block("CONTRIBUTING.md")
    missing = [p.name for p in MODULES if f" {p.name} " not in layout]
    assert not missing, f"CONTRIBUTING.md's layout lacks {missing}"
    listed = set(re.findall(r"^ +(\w+\.py) ", layout, flags=re.MULTILINE))
    gone = listed - {p.name for p in MODULES}
    assert not gone, f"CONTRIBUTING.md's layout lists modules that do not exist: {gone}"


def test_readme_shows_the_same_layout_as_contributing():
    assert _layout_block("README.md") == _layout_block("CONTRIBUTING.md")


def test_the_checker_sees_an_upward_import():
    readers = PACKAGE / "datasets" / "readers.py"
    source = readers.read_text() + "\nfrom ..estimators import EmnistMLP\n"
    found = imports_of(readers, source)
    assert "estimators" in found and rank("estimators") > rank("datasets.readers")


def test_the_checker_sees_imports_inside_functions_and_private_names(tmp_path):
    source = (
        "def f():\n    from .base import _EmnistClassifier\n"
        "if TYPE_CHECKING:\n    import emnist_estimators.cli\n"
    )
    path = PACKAGE / "persistence.py"
    assert {"base", "cli"} <= imports_of(path, source)
    fake = tmp_path / "m.py"
    fake.write_text(source)
    assert private_imports(fake) == ["base._EmnistClassifier"]


def expected_test_file(module: str) -> str:
    """The test file of a module by CONTRIBUTING's rule: ``datasets.cache`` ->
    ``test_datasets_cache.py``."""
    return f"test_{module.replace('.', '_')}.py"


def test_every_public_module_has_its_own_test_file():
    public = [
        module_name(p)
        for p in MODULES
        if not p.name.startswith("_")
        and not any(part.startswith("_") for part in module_name(p).split("."))
    ]
    missing = [
        f"{m} -> tests/{expected_test_file(m)}"
        for m in public
        if not (REPO / "tests" / expected_test_file(m)).is_file()
    ]
    assert not missing, "public modules without their test file: " + ", ".join(missing)
