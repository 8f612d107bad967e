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
import stat
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

# The largest user file read (SRC002 above it).  Policies, descriptions, property and
# scenario files are kilobytes; the cap is what keeps a file named by mistake (a disk
# image, a log) from filling memory.  SRC002's hint quotes it: change both together.
MAX_FILE_BYTES = 16 * 1024 * 1024


_new_span = tuple.__new__


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
        line, col = SourceText.expanded_position(self, offset)
        return self.original_line(line), col

    def span(self, start: int, end: int | None = None) -> Span:
        # Hot path (one call per resolved element): position() inlined.
        starts = self._line_starts if self._line_starts is not None else self.line_starts()
        idx = bisect.bisect_right(starts, start)
        origin = self.line_origin
        line = origin[idx - 1] if origin and idx <= len(origin) else (self.original_line(idx) if origin else idx)
        col = start - starts[idx - 1] + 1
        if end is None or end <= start:
            return _new_span(Span, (self.path, line, col, 0, 0))   # Span(path, line, col), minus the call overhead
        eline, ecol = SourceText.position(self, end)   # not self.position: see RelocatedSource
        return _new_span(Span, (self.path, line, col, eline, ecol))

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


class UserFileError(Exception):
    """Why a user's file cannot be used, as the diagnostic a caller reports.

    An exception rather than a diagnostic so that readers with their own error
    currency (the simulator's :class:`SimInputError`, the lint configuration's
    usage errors) can wrap it; :func:`read_text` turns it into a diagnostic for the
    front end.  ``code`` is one of SRC001-SRC004, ``reason`` says what is wrong
    without naming the file, and ``line``/``column`` point into the file (1, 1
    unless the problem has a position, as a bad UTF-8 byte has).
    """

    def __init__(self, code: str, reason: str, line: int = 1, column: int = 1):
        super().__init__(reason)
        self.code, self.reason, self.line, self.column = code, reason, line, column

    def message(self, shown: str) -> str:
        """The diagnostic message for the file as ``shown`` to the user."""
        return _MESSAGES[self.code].format(shown=shown, reason=self.reason)


_MESSAGES = {
    SRC_NOT_FOUND: "file not found: {shown}",
    SRC_TOO_LARGE: "{shown} is {reason}",
    SRC_DECODE: "{shown} is not valid UTF-8 ({reason})",
    SRC_UNREADABLE: "cannot read {shown}: {reason}",
}

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> UserFileError:
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    return UserFileError(SRC_UNREADABLE, f"it is {kind}, not a regular file")


def _too_large(size: int | None, limit: int) -> UserFileError:
    what = f"{size} bytes, over" if size is not None else "over"
    return UserFileError(SRC_TOO_LARGE, f"{what} the {limit} byte limit")


def read_user_bytes(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The bytes of a user's file, or :class:`UserFileError`; never blocks, never reads without end.

    Why not ``Path.read_bytes``: a user can name ``/dev/zero`` (endless), a FIFO
    (``open`` blocks until a writer appears) or a 10 GB log by mistake, and every one
    of those must become a diagnostic.  So the file is ``stat``-ed before it is
    opened and refused unless it is a regular file of at most ``limit`` bytes
    (default :data:`MAX_FILE_BYTES`, read at call time so tests can lower it); it is
    then opened non-blocking and checked again on the open descriptor, in case it was
    swapped between the two looks, and never more than ``limit + 1`` bytes are read,
    in case it grows (or, like files under ``/proc``, reports a size of 0).
    """
    limit = MAX_FILE_BYTES if limit is None else limit
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UserFileError(SRC_NOT_FOUND, "no such file") from None
    except OSError as exc:
        raise UserFileError(SRC_UNREADABLE, exc.strerror or str(exc)) from None
    except ValueError as exc:   # an embedded NUL character in the name
        raise UserFileError(SRC_UNREADABLE, str(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(st.st_mode)
    if st.st_size > limit:
        raise _too_large(st.st_size, limit)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise UserFileError(SRC_UNREADABLE, exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(st.st_mode)
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(limit + 1 - total, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise _too_large(None, limit)
        return b"".join(chunks)
    except OSError as exc:
        raise UserFileError(SRC_UNREADABLE, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def decode_user_text(data: bytes) -> str:
    """UTF-8 (a BOM allowed) with newlines made ``\n``, or :class:`UserFileError` at the bad byte.

    The position is the bad byte's line and *character* column, as an editor shows it.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raw = exc.object  # without the BOM, which utf-8-sig strips before decoding
        prefix = raw[: exc.start]
        line = prefix.count(b"\n") + 1
        col = len(prefix[prefix.rfind(b"\n") + 1:].decode("utf-8", errors="replace")) + 1
        raise UserFileError(SRC_DECODE, f"byte 0x{raw[exc.start]:02x}", line, col) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_user_text(path: str | os.PathLike[str], limit: int | None = None) -> str:
    """The text of a user's file, or :class:`UserFileError` (SRC001-SRC004) saying why not.

    The one way the toolkit reads a file a user names or a solution holds: see
    :func:`read_user_bytes` for what is refused and :func:`decode_user_text` for the
    decoding.
    """
    return decode_user_text(read_user_bytes(path, limit))


def read_text(path: Path, diags: Diagnostics, shown: str | None = None, at: Span | None = None) -> str | None:
    """Read a user's file with :func:`read_user_text`, reporting (not raising) every way that can fail.

    ``at`` is where the file was asked for (a ``use`` line), so a missing or unusable
    file is reported at the line that named it; problems inside the file (a bad
    byte, its size) are reported in the file itself.
    """
    shown = shown or str(path)
    try:
        return read_user_text(path)
    except UserFileError as exc:
        inside = exc.code in (SRC_DECODE, SRC_TOO_LARGE)
        where = Span(shown, exc.line, exc.column) if inside or at is None else at
        diags.add(exc.code, exc.message(shown), where)
        return None
