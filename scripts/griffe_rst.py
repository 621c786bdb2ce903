"""A griffe extension for the API reference: the reST bits of our docstrings, as Markdown.

The package's docstrings are Google style with a few reStructuredText habits (Sphinx roles,
``::`` literal blocks, simple tables, ``versionadded``), which read well in ``help()`` and in an
editor. mkdocstrings renders Markdown, so this extension rewrites those habits when griffe loads
each object; the source stays as it is. Loaded by ``mkdocs.yml``
(``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|mod|data|exc|obj):`(~?)([^`]+)`")
_SECTION_TITLES = frozenset({"example", "examples", "note", "notes", "usage"})
_VERSION = re.compile(r"^(\s*)\.\. version(added|changed):: *(\S+)\s*$")
_TABLE_RULE = re.compile(r"^\s*=+(\s+=+)+\s*$")


def _role(match: re.Match[str]) -> str:
    short, target = match.groups()
    target = target.removesuffix("()")
    if short:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _literal_blocks(lines: list[str]) -> list[str]:
    """``text::`` followed by an indented block → ``text:`` and a fenced code block."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip()
        if not stripped.endswith("::") or stripped.strip() == "::":
            out.append(line)
            i += 1
            continue
        base = _indent(line)
        j = i + 1
        block: list[str] = []
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
            block.append(lines[j])
            j += 1
        while block and not block[-1].strip():
            block.pop()
            j -= 1
        if not block:
            out.append(line)
            i += 1
            continue
        title = stripped.strip()[:-2].strip().lower()
        is_section = title in _SECTION_TITLES
        out.append(stripped[:-1])  # "text::" → "text:"
        code = textwrap.dedent("\n".join(block)).strip("\n").splitlines()
        pad = " " * (base + 4 if is_section else base)
        if not is_section:
            out.append("")
        out.append(pad + "```python")
        out.extend((pad + code_line) if code_line else "" for code_line in code)
        out.append(pad + "```")
        i = j
    return out


def _tables(lines: list[str]) -> list[str]:
    """reST simple tables (``====  ====`` rules) → Markdown tables."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not _TABLE_RULE.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        rule = lines[i]
        starts = [m.start() for m in re.finditer(r"=+", rule)]
        rows: list[list[str]] = []
        j = i + 1
        rules_seen = 1
        while j < len(lines) and rules_seen < 3:
            if _TABLE_RULE.match(lines[j]):
                rules_seen += 1
            elif lines[j].strip():
                text = lines[j]
                bounds = [*starts[1:], len(text)]
                cells = [text[start:end].strip() for start, end in zip(starts, bounds, strict=True)]
                if rows and not cells[0] and len(rows) > 1:  # continuation line
                    rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
                else:
                    rows.append(cells)
            j += 1
        pad = " " * _indent(rule)
        if rows:
            out.append(pad + "| " + " | ".join(rows[0]) + " |")
            out.append(pad + "|" + "---|" * len(rows[0]))
            out.extend(pad + "| " + " | ".join(row) + " |" for row in rows[1:])
        i = j
    return out


def rst_to_markdown(text: str) -> str:
    """Rewrite the reST habits of one docstring as Markdown."""
    text = _ROLE.sub(_role, text)
    lines = []
    for line in text.splitlines():
        match = _VERSION.match(line)
        if match is None:
            lines.append(line)
            continue
        pad, kind, version = match.groups()
        lines.append(f"{pad}*{'Added' if kind == 'added' else 'Changed'} in version {version}.*")
    return "\n".join(_tables(_literal_blocks(lines)))


class RstToMarkdown(griffe.Extension):
    """Applies :func:`rst_to_markdown` to every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
