"""The ``emnist-cli-reference`` directive: the CLI reference, read from the parser.

Each build walks :func:`emnist_estimators.cli.build_parser` and writes every
command (``data`` and its own commands included) as a section: what it does,
its usage, each option with its choices and default, and the examples its
``--help`` prints. Nothing is written to disk, so the page cannot go stale.
"""

from __future__ import annotations

import argparse
import re

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

# rst's inline markup characters, escaped in help text (outside `literals`)
_SPECIAL = re.compile(r"([\\*|_<>])")


def _inline(text: str) -> str:
    """Help text as rst: `x` becomes a literal, the rest is escaped."""
    parts = text.split("`")
    out = []
    for i, part in enumerate(parts):
        if i % 2 and i < len(parts) - 1:
            out.append(f"``{part}``")
        else:
            out.append(_SPECIAL.sub(r"\\\1", part))
    return "".join(out)


def _subcommands(parser: argparse.ArgumentParser):
    """``(parser, help)`` of each command, in the order ``--help`` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield sub, helps.get(name)


def _signature(action: argparse.Action) -> str:
    """The option directive's text: ``--top K``, ``model_file``, ``-v, --verbose``."""
    if not action.option_strings:
        return action.metavar or action.dest
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    if isinstance(action.metavar, str):
        metavar = action.metavar
    else:
        metavar = action.dest.upper().replace("_", "-")
    return ", ".join(f"{o} {metavar}" for o in action.option_strings)


def _default(action: argparse.Action) -> str | None:
    """The default worth showing, or None (said in the help, or nothing to say)."""
    text = action.help or ""
    if (
        action.required
        or "default" in text
        or action.default in (None, argparse.SUPPRESS)
        or action.nargs == 0
    ):
        return None
    return str(action.default)  # as typed on the command line


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage line, wrapped at 72 columns (no sideways scrolling)."""
    formatter = argparse.HelpFormatter(parser.prog, width=72)
    formatter.add_usage(
        parser.usage, parser._actions, parser._mutually_exclusive_groups
    )
    return formatter.format_help().strip()


def _examples(parser: argparse.ArgumentParser) -> list[str]:
    """The example command lines of the epilog (``Examples:`` then one a line)."""
    lines = (parser.epilog or "").splitlines()
    return [line.strip() for line in lines[1:] if line.strip()]


# section underlines by depth: the page's title is "=", the main parser's
# section and each command's "-", a command of a command ("data download") "~"
_UNDERLINES = "=-~^"


def command_lines(parser, level: int, help_: str | None, recurse=True) -> list[str]:
    """One command's section, then its own commands' (one level down) as rst."""
    title = parser.prog
    lines = [title, _UNDERLINES[level] * len(title), ""]
    description = parser.description or help_
    if description:
        lines += [_inline(description), ""]
    lines += [".. code-block:: text", ""]
    lines += ["   " + u for u in _usage(parser).splitlines()] + [""]
    lines += [f".. program:: {parser.prog}", ""]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        lines += [f".. option:: {_signature(action)}", ""]
        body = _inline(action.help or "").rstrip()
        if body and not body.endswith("."):
            body += "."  # help text is a phrase; here sentences follow it
        if action.choices is not None:
            choices = ", ".join(f"``{c}``" for c in action.choices)
            body += f" Choices: {choices}."
        default = _default(action)
        if default is not None:
            body += f" Default: ``{default}``."
        if action.required:
            body += " Required."
        lines += ["   " + body.strip(), ""]
    examples = _examples(parser)
    if examples:
        lines += ["Examples:", "", ".. code-block:: bash", ""]
        lines += ["   " + e for e in examples] + [""]
    if recurse:
        for sub, sub_help in _subcommands(parser):
            lines += command_lines(sub, level + 1, sub_help)
    return lines


def reference_lines() -> list[str]:
    """The whole reference: the main parser's options, then every command."""
    from emnist_estimators.cli import build_parser

    parser = build_parser()
    lines = command_lines(parser, 1, None, recurse=False)
    for sub, sub_help in _subcommands(parser):
        lines += command_lines(sub, 1, sub_help)
    return lines


class CliReference(SphinxDirective):
    """``.. emnist-cli-reference::``: the reference, parsed as rst in place."""

    def run(self) -> list[nodes.Node]:
        container = nodes.section()
        container.document = self.state.document
        source = self.get_source_info()[0]
        content = StringList(reference_lines(), source=source)
        self.state.nested_parse(
            content, self.content_offset, container, match_titles=True
        )
        return container.children


def setup(app):
    app.add_directive("emnist-cli-reference", CliReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
