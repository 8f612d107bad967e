"""Source excerpts under diagnostics: the quoted line and carets under the span.

Why a module of its own: ``ksm check`` and the other commands print excerpts as
plain text, while the lint report also colours the carets, so both need the parts
(the quoted line and the caret line) as well as the joined text.  Files are read at
most once per report through a ``cache`` the caller keeps.
"""
from __future__ import annotations

from typing import NamedTuple

from policy_lang.diagnostics import Diagnostic
from policy_lang.source import UserFileError, read_user_bytes


class Excerpt(NamedTuple):
    """The two lines of an excerpt: ``source`` quotes the line, ``carets`` marks the span."""

    source: str
    margin: str     # what precedes the carets on the second line
    carets: str

    def __str__(self) -> str:
        return f"{self.source}\n{self.margin}{self.carets}"


def _lines(file: str, cache: dict) -> list[str]:
    """The file's lines, read once; unusable files have none (the excerpt is left out).

    Through :func:`read_user_bytes`, because the file a diagnostic names is often the
    very file that could not be read: a FIFO (opening it would block), ``/dev/zero``
    (reading it never ends) or a file over the size limit must yield no excerpt, not
    a hang.  Decoding replaces bad bytes: a file with one (SRC003) still gets its
    excerpt.
    """
    lines = cache.get(file)
    if lines is None:
        try:
            lines = read_user_bytes(file).decode("utf-8", errors="replace").splitlines()
        except UserFileError:
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
        # At most to the end of the quoted line: a span measured in template-expanded
        # text (a -D value put in for @NAME@) can be far wider than the line as written.
        width = max(1, min(span.end_column - span.column, len(text) - span.column + 1))
    return Excerpt(f"  {span.line:>5} | {text}", f"        | {' ' * (span.column - 1)}", "^" * width)


def excerpt(diag: Diagnostic, cache: dict) -> str:
    """The excerpt as two lines of text, or "" when there is nothing to quote."""
    parts = excerpt_parts(diag, cache)
    return "" if parts is None else str(parts)
