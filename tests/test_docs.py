"""The documentation: CLI reference, public API, extras, gallery, 1366 px screens.

The pages are built once (module fixture) from a copy of docs/ and examples/
in a temporary folder, so the build writes nothing into the checkout; the
examples are listed but not run (``-D plot_gallery=0``) and the API pages are
left out (autodoc imports TensorFlow): about half a minute. CI's docs stage
builds everything, examples run, under ``-W``.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import subprocess
import sys

import pytest
from helpers import REPO, chromium_driver

import emnist_estimators
from emnist_estimators.cli import build_parser

pytest.importorskip("sphinx_gallery", reason="the docs extra: pip install -e '.[docs]'")
pytest.importorskip("pydata_sphinx_theme", reason="the docs extra")

# what the build writes into docs/, never copied into the test's source folder
NOT_SOURCES = shutil.ignore_patterns(
    "_build", "generated", "auto_examples", "sg_execution_times.rst", "api.rst"
)
EXAMPLES = sorted(
    p.stem for p in (REPO / "examples").glob("*.py") if not p.name.startswith("_")
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The HTML folder of a build of docs/ (API pages and example runs left out)."""
    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(REPO / "docs", root / "docs", ignore=NOT_SOURCES)
    shutil.copytree(REPO / "examples", root / "examples")
    out = root / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-b", "html", "-D", "plot_gallery=0"]
        + [str(root / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


# --- the CLI reference -----------------------------------------------------------
def _commands(parser: argparse.ArgumentParser):
    """Every parser of the command line: the main one, commands, their commands."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _commands(sub)


def _documented_options(page: str) -> dict[str, set[str]]:
    """Each section id of the page -> the words of its option signatures."""
    sections = [
        (m.start(), m.group(1)) for m in re.finditer(r'<section id="([^"]+)"', page)
    ]
    found: dict[str, set[str]] = {}
    for m in re.finditer(r'<dt class="sig[^"]*std"[^>]*>(.*?)</dt>', page, re.S):
        section = [sid for start, sid in sections if start < m.start()][-1]
        signature = re.sub(r'<a class="headerlink".*?</a>', "", m.group(1), flags=re.S)
        text = html.unescape(re.sub(r"<[^>]+>", "", signature))
        found.setdefault(section, set()).update(re.split(r"[\s,]+", text))
    return found


def test_cli_reference_names_every_option_of_every_command(built):
    """Issue 31.2: --max-samples, --test-size, --pruner, --top were in no page."""
    page = (built / "cli_reference.html").read_text(encoding="utf-8")
    documented = _documented_options(page)
    checked = set()
    for parser in _commands(build_parser()):
        section = parser.prog.replace(" ", "-")
        assert f'<section id="{section}"' in page, f"no section for {parser.prog}"
        options = documented.get(section, set())
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            names = action.option_strings or [action.metavar or action.dest]
            for name in names:
                # a positional's metavar may be several words: "[MODEL.keras] INPUT"
                assert set(name.split()) <= options, f"{parser.prog} {name}"
                checked.add(f"{parser.prog.split()[-1]} {name}")
    for must in ("train --max-samples", "train --test-size", "tune --pruner"):
        assert must in checked
    assert "predict --top" in checked


def test_cli_reference_shows_defaults_and_every_command_s_examples(built):
    text = html.unescape(
        re.sub(r"<[^>]+>", "", (built / "cli_reference.html").read_text("utf-8"))
    )
    for parser in _commands(build_parser()):
        for line in (parser.epilog or "").splitlines()[1:]:
            assert line.strip() in text, f"{parser.prog}: example {line.strip()!r}"
    tune = [p for p in _commands(build_parser()) if p.prog.endswith(" tune")][0]
    (pruner,) = [a for a in tune._actions if "--pruner" in a.option_strings]
    assert f"Default: {pruner.default}" in text


# --- sources: public API, extras, gallery ----------------------------------------
def test_api_reference_lists_the_public_api_only():
    """Every exported name, and none of the internals the issue found there."""
    api = (REPO / "docs" / "api.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\s+emnist_estimators\.([\w.]+)$", api, re.M))
    for name in set(emnist_estimators.__all__) - {"__version__"}:
        assert name in listed, f"emnist_estimators.{name} is not on the API page"
    for internal in (
        "cluster.pin_one_gpu",
        "batches.epoch_order",
        "export.synthetic_images",
        "runs",
        "output_folder",
    ):
        assert internal not in listed and f"emnist_estimators.{internal}\n" not in api


def test_install_page_names_every_extra():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    extras = project["project"]["optional-dependencies"]
    page = (REPO / "docs" / "install.rst").read_text(encoding="utf-8")
    for extra in extras:
        assert f"``{extra}``" in page, f"the {extra} extra is not on the install page"


def test_gallery_lists_every_example_with_its_title(built):
    index = (built / "auto_examples" / "index.html").read_text(encoding="utf-8")
    for name in EXAMPLES:
        assert f'href="{name}.html' in index, name
        source = (REPO / "examples" / f"{name}.py").read_text(encoding="utf-8")
        title, underline = source.split("\n")[:2]
        assert set(underline) == {"="} and len(underline) == len(title) - 3, name
        page = (built / "auto_examples" / f"{name}.html").read_text("utf-8")
        assert f"{name}.py" in page  # the download link of the script
    assert not (built / "auto_examples" / "_data.html").exists()
    # every example imports _data.py: the gallery offers it for download too
    assert re.search(r'href="[^"]*_downloads/[^"]*/_data\.py"', index)


# --- no sideways scrolling at 1366 px ----------------------------------------------
@pytest.fixture
def browser(tmp_path, monkeypatch):
    driver = chromium_driver(tmp_path / "profile", "1366,768", monkeypatch)
    yield driver
    driver.quit()


@pytest.mark.parametrize(
    "page", ["index", "quickstart", "cli_reference", "user_guide/tuning", "laptop"]
)
def test_page_does_not_scroll_sideways_at_1366_px(built, browser, page):
    """Issue 31.2: code blocks scrolled sideways on these pages at 1366 px."""
    browser.get((built / f"{page}.html").as_uri())
    width, inner = browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert inner == 1366
    assert width <= inner, f"{page} scrolls sideways: {width} > {inner} px"
    wide = browser.execute_script(
        "return [...document.querySelectorAll('pre')]"
        ".filter(p => p.scrollWidth > p.clientWidth)"
        ".map(p => p.textContent.slice(0, 80))"
    )
    n_pre = browser.execute_script("return document.querySelectorAll('pre').length")
    assert n_pre > 0
    assert wide == [], f"{page}: code blocks scroll sideways: {wide}"
