"""Source texts and the mapping from parser offsets back to the user's file.

Parsers work on the text *after* template expansion, but every diagnostic must point
at the line the user wrote in ``security.psl.in``.  A :class:`SourceText` therefore
carries, next to the expanded text, the original line number of every expanded line.
Positions are kept as character offsets everywhere in the pipeline (cheap to store in
every token and AST node) and converted to line/column only when a span is built.
"""
from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import (
    SRC_DECODE,
    SRC_NOT_FOUND,
    SRC_TOO_LARGE,
    SRC_UNREADABLE,
    Diagnostics,
    Span,
)

MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass(eq=False)
class SourceText:
    """One file as the parsers see it.

    ``path`` is what diagnostics print (the original file, e.g. ``security.psl.in``).
    ``line_origin[i]`` is the 1-based original line of expanded line ``i + 1``; an
    empty tuple means the text was not transformed (identity mapping).
    ``stand_ins`` are the names that template placeholders without a value left in the
    text (``helloworld.@MAIN_TASK@`` reads ``helloworld.MAIN_TASK``), so later stages
    can tell a name the build would have filled in from a name the user wrote;
    ``unset`` names every placeholder left without a value, inside a line or alone.
    """

    path: str
    text: str
    line_origin: tuple[int, ...] = ()
    stand_ins: frozenset[str] = frozenset()
    unset: frozenset[str] = frozenset()          # every placeholder left without a value
    _line_starts: list[int] | None = field(default=None, repr=False)

    def line_starts(self) -> list[int]:
        if self._line_starts is None:
            starts = [0]
            find = self.text.find
            i = find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self._line_starts = starts
        return self._line_starts

    def expanded_position(self, offset: int) -> tuple[int, int]:
        """(line, column), both 1-based, in the expanded text."""
        starts = self.line_starts()
        idx = bisect.bisect_right(starts, offset) - 1
        return idx + 1, offset - starts[idx] + 1

    def original_line(self, expanded_line: int) -> int:
        if not self.line_origin:
            return expanded_line
        if 1 <= expanded_line <= len(self.line_origin):
            return self.line_origin[expanded_line - 1]
        return self.line_origin[-1] if self.line_origin else expanded_line

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) in the user's original file."""
        line, col = self.expanded_position(offset)
        return self.original_line(line), col

    def span(self, start: int, end: int | None = None) -> Span:
        # Hot path (one call per resolved element): position() inlined.
        starts = self._line_starts if self._line_starts is not None else self.line_starts()
        idx = bisect.bisect_right(starts, start)
        origin = self.line_origin
        line = origin[idx - 1] if origin and idx <= len(origin) else (self.original_line(idx) if origin else idx)
        col = start - starts[idx - 1] + 1
        if end is None or end <= start:
            return Span(self.path, line, col)
        eline, ecol = self.position(end)
        return Span(self.path, line, col, eline, ecol)

    def span_at(self, line: int, column: int) -> Span:
        """Span from an expanded (line, column) pair such as lark or YAML report."""
        return Span(self.path, self.original_line(line), column)

    def line_text(self, original_line: int) -> str:
        """Expanded text of the first expanded line that came from ``original_line``."""
        lines = self.text.split("\n")
        if not self.line_origin:
            return lines[original_line - 1] if 0 < original_line <= len(lines) else ""
        for i, o in enumerate(self.line_origin):
            if o == original_line and i < len(lines):
                return lines[i]
        return ""


def display_path(path: Path, root: Path | None = None) -> str:
    """Path as shown in diagnostics: relative to ``root`` (or cwd) when inside it."""
    for base in (root, Path.cwd()):
        if base is None:
            continue
        try:
            return os.path.relpath(path, base) if path.resolve().is_relative_to(base.resolve()) else str(path)
        except (OSError, ValueError):
            continue
    return str(path)


def read_text(path: Path, diags: Diagnostics, shown: str | None = None, at: Span | None = None) -> str | None:
    """Read a user's file, reporting (not raising) every way that can fail.

    ``at`` is where the file was asked for (a ``use`` line), so a missing file is
    reported at the line that named it.
    """
    shown = shown or str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        diags.add(SRC_NOT_FOUND, f"file not found: {shown}", at or Span(shown, 1, 1))
        return None
    except OSError as exc:
        diags.add(SRC_UNREADABLE, f"cannot read {shown}: {exc.strerror}", at or Span(shown, 1, 1))
        return None
    if not path.is_file():
        diags.add(SRC_UNREADABLE, f"not a regular file: {shown}", at or Span(shown, 1, 1))
        return None
    if st.st_size > MAX_FILE_BYTES:
        diags.add(
            SRC_TOO_LARGE,
            f"{shown} is {st.st_size} bytes, over the {MAX_FILE_BYTES} byte limit",
            Span(shown, 1, 1),
        )
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        diags.add(SRC_UNREADABLE, f"cannot read {shown}: {exc.strerror}", at or Span(shown, 1, 1))
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raw = exc.object  # without the BOM, which utf-8-sig strips before decoding
        prefix = raw[: exc.start]
        line = prefix.count(b"\n") + 1
        col = len(prefix[prefix.rfind(b"\n") + 1:].decode("utf-8", errors="replace")) + 1
        diags.add(SRC_DECODE, f"{shown} is not valid UTF-8 (byte 0x{raw[exc.start]:02x})", Span(shown, line, col))
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")
