"""Source excerpts under diagnostics: the quoted line and carets under the span.

Why a module of its own: ``ksm check`` and the other commands print excerpts as
plain text, while the lint report also colours the carets, so both need the parts
(the quoted line and the caret line) as well as the joined text.  Files are read at
most once per report through a ``cache`` the caller keeps.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from policy_lang.diagnostics import Diagnostic


class Excerpt(NamedTuple):
    """The two lines of an excerpt: ``source`` quotes the line, ``carets`` marks the span."""

    source: str
    margin: str     # what precedes the carets on the second line
    carets: str

    def __str__(self) -> str:
        return f"{self.source}\n{self.margin}{self.carets}"


def _lines(file: str, cache: dict) -> list[str]:
    """The file's lines, read once; unreadable files have none (the excerpt is left out)."""
    lines = cache.get(file)
    if lines is None:
        try:
            lines = Path(file).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        cache[file] = lines
    return lines


def excerpt_parts(diag: Diagnostic, cache: dict) -> Excerpt | None:
    """The excerpt of ``diag``'s span, or None when it has no span or the line is gone."""
    span = diag.span
    if span is None:
        return None
    lines = _lines(span.file, cache)
    if not (0 < span.line <= len(lines)):
        return None
    text = lines[span.line - 1].replace("\t", " ")   # one column per character, as spans count
    width = 1
    if span.end_line == span.line and span.end_column > span.column:
        width = span.end_column - span.column
    return Excerpt(f"  {span.line:>5} | {text}", f"        | {' ' * (span.column - 1)}", "^" * width)


def excerpt(diag: Diagnostic, cache: dict) -> str:
    """The excerpt as two lines of text, or "" when there is nothing to quote."""
    parts = excerpt_parts(diag, cache)
    return "" if parts is None else str(parts)
