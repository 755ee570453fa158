"""The package's layering and its documented layout, checked from the source.

Data flows one way - datasets <- preprocessing <- estimators <- tuning /
reporting <- cli - and a module may import only from its own rank or below,
so resolving a dataset never pulls in the estimators (and TensorFlow).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from helpers import REPO

PACKAGE = REPO / "emnist_estimators"

# Lower ranks never import higher ones; equal ranks may import each other.
RANKS = {
    "exceptions": 0,
    "threads": 0,
    "architectures": 0,
    "losses": 0,
    "datasets._official": 1,
    "datasets._tempfiles": 1,
    "datasets.digits": 1,
    "datasets.readers": 2,
    "datasets.cache": 3,
    "datasets.download": 3,
    "datasets.loader": 4,
    "datasets": 5,
    "images": 5,
    "output_folder": 5,
    "_utils": 6,
    "preprocessing": 7,
    "sources": 7,
    "base": 8,
    "persistence": 8,
    "estimators": 8,
    "callbacks": 8,
    "batches": 8,
    "checkpoints": 8,
    "export": 8,
    "cluster": 8,
    "distribute": 7,
    "tuning": 9,
    "reporting": 9,
    "demo": 10,
    "serve": 10,
    "cli": 11,
    "__main__": 12,
}


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
            "emnist_estimators."
        ):
            found.add(node.module.removeprefix("emnist_estimators."))
    # The package root (``from . import __version__``) is not a layer.
    return {m for m in found if m and m != "__version__"}


def rank(name: str) -> int:
    while name not in RANKS and "." in name:
        name = name.rsplit(".", 1)[0]
    return RANKS[name]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if module_name(p))


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_module_imports_one_above_it(path):
    mine = rank(module_name(path))
    above = sorted(m for m in imports_of(path) if rank(m) > mine)
    assert not above, f"{module_name(path)} (rank {mine}) imports {above}"


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
