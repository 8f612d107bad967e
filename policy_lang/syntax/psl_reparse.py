"""Parse a PSL file again after an edit, re-reading only the declarations the edit touched.

Why: an editor sends the whole buffer on every keystroke, and lexing and parsing a
10,000-line policy takes about 100 ms, half of what a keystroke may cost in ``ksm
lsp``.  The parser already works declaration by declaration (it cuts the tokens at
top-level keywords), so a declaration whose text did not change parses to the same
nodes; only the stretch of text around the edit needs the lexer and the parser.

The catch is positions.  Nodes hold character offsets, and every declaration after an
edit has moved.  Rebuilding their nodes would cost as much as parsing them, so they are
kept as they are, and the new file's :class:`RelocatedSource` maps the positions they
hold ("virtual" offsets) to offsets in the new text, piece by piece.  A stretch that is
parsed again gets fresh virtual offsets beyond every offset in use, so no two nodes
ever share a position that means two places.  Everything downstream turns positions
into spans through ``PslFile.source``, so it never sees the difference.

A declaration is reused only where doing so is certainly what a full parse would give:
the text around it is unchanged up to a line break, it starts a line, and the stretch
parsed again ends outside any braces and any comment.  Anything else (a comment opened
by the edit, a brace left open, an edit that joins the declaration next to it) parses
the whole file, which is never wrong, only slower.  :attr:`PslReparser.stats` counts
both, and the tests compare every incremental parse with a full one.
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import Diagnostic, Diagnostics, Span
from ..perf import gc_paused
from ..source import SourceText
from . import ast
from .lexing import lex, make_token, split_declarations
from .psl import _NAME_AFTER, STARTERS, _merge_split_names, _tables, parse_chunks

_BLANK = frozenset(" \t\r\n\f\v")


class RelocatedSource(SourceText):
    """A file's text whose node positions are virtual offsets, mapped piece by piece.

    ``_vstarts[i]`` is where piece ``i`` begins in the virtual space and ``_shifts[i]``
    how far its virtual offsets lie from the real ones (real = virtual - shift).  The
    pieces come from :class:`PslReparser`; text, line map and template names are the
    new file's own, so only ``span``/``position`` read offsets differently.
    """

    _vstarts: list[int]
    _shifts: list[int]

    def real(self, offset: int) -> int:
        i = bisect.bisect_right(self._vstarts, offset) - 1
        return offset - self._shifts[i] if i >= 0 else offset

    def span(self, start: int, end: int | None = None) -> Span:
        return SourceText.span(self, self.real(start), None if end is None else self.real(end))

    def position(self, offset: int) -> tuple[int, int]:
        return SourceText.position(self, self.real(offset))

    def expanded_position(self, offset: int) -> tuple[int, int]:
        return SourceText.expanded_position(self, self.real(offset))


def _relocated(src: SourceText, pieces: list[tuple[int, int]]) -> RelocatedSource:
    out = RelocatedSource(src.path, src.text, src.line_origin, src.stand_ins, src.unset, src.line_starts())
    pieces.sort()
    vstarts: list[int] = []
    shifts: list[int] = []
    for vstart, shift in pieces:            # neighbours with the same shift are one piece
        if shifts and shifts[-1] == shift:
            continue
        vstarts.append(vstart)
        shifts.append(shift)
    out._vstarts, out._shifts = vstarts, shifts
    return out


@dataclass(slots=True)
class _Chunk:
    """One top-level declaration (or the tokens a syntax error left), with what it gave."""

    begin: int        # where its stretch of text starts (0 for the first chunk)
    start: int        # its first token
    tok_end: int      # the end of its last token
    end: int          # the next chunk's first token (the text's length for the last)
    shift: int        # virtual = real + shift for every position in its nodes
    first: str        # type of its first token
    last: str         # type of its last token
    decls: tuple
    lex_diags: tuple[Diagnostic, ...]
    diags: tuple[Diagnostic, ...]

    def moved(self, by: int) -> "_Chunk":
        return _Chunk(self.begin + by, self.start + by, self.tok_end + by, self.end + by, self.shift - by,
                      self.first, self.last, self.decls, self.lex_diags, self.diags)


@dataclass(slots=True)
class _Parse:
    """The last parse of one file: what the next edit is compared with."""

    text: str
    line_origin: tuple[int, ...]
    chunks: list[_Chunk]
    vnext: int                      # the first virtual offset not in use
    loose: bool = False             # lexical errors no chunk owns: parse it whole next time
    begins: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.begins = [c.begin for c in self.chunks]
        self.ends = [c.end for c in self.chunks]


class _Fallback(Exception):
    """This edit cannot be parsed in part; the message says why (kept in the stats)."""


class PslReparser:
    """Parses PSL files, reusing the declarations an edit did not touch.

    Keep one per editor session and pass it as ``LoadOptions.reparse``: it remembers
    the last parse of every PSL file by path.  Safe to share between threads (one
    parse at a time).  ``stats`` counts ``full`` and ``partial`` parses and the
    reasons for falling back to a full one.
    """

    def __init__(self) -> None:
        self._last: dict[str, _Parse] = {}
        self._lock = threading.Lock()
        self.stats: dict[str, int] = {}
        #: Characters lexed by the last parse (the whole text for a full one).
        self.last_lexed = 0

    def forget(self, path: str | None = None) -> None:
        with self._lock:
            if path is None:
                self._last.clear()
            else:
                self._last.pop(path, None)

    def parse(self, source: SourceText, diags: Diagnostics) -> ast.PslFile:
        with self._lock, gc_paused():
            old = self._last.get(source.path)
            done = None
            if old is not None:
                try:
                    done = self._partial(old, source, diags)
                    self._count("partial")
                except _Fallback as why:
                    self._count(f"full: {why}")
            if done is None:
                done = self._full(source, diags)
                self._count("full")
            self._last[source.path] = done[1]
            return done[0]

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    # ------------------------------------------------------------------ whole file
    def _full(self, source: SourceText, diags: Diagnostics) -> tuple[ast.PslFile, _Parse]:
        text = source.text
        self.last_lexed = len(text)
        scratch = Diagnostics()
        errors: list[tuple[int, str]] = []
        tokens = lex(_tables().grammar, source, scratch, errors=errors)
        lex_items = list(scratch.items)
        decls: list[Any] = []
        record: list = []
        if tokens:
            tops = _merge_split_names(split_declarations(tokens, STARTERS), text)
            parse_chunks(tops, source, scratch, decls, record=record)
        chunks = _chunks(record, decls, scratch.items, errors, lex_items, 0, 0, len(text))
        loose = chunks is None
        _emit(diags, scratch.items)
        parse = _Parse(text, source.line_origin, chunks or [], len(text) + 1, loose)
        return ast.PslFile(source, tuple(decls)), parse

    # ------------------------------------------------------------------ in part
    def _partial(self, old: _Parse, new: SourceText, diags: Diagnostics) -> tuple[ast.PslFile, _Parse]:
        if old.loose:
            raise _Fallback("lexical error outside any declaration")
        # A template's line map moves when a line is added outside a Jinja tag.  Nodes
        # hold offsets, so they do not care; diagnostics hold lines, so declarations
        # with diagnostics are parsed again then.
        same_lines = old.line_origin == new.line_origin
        a, b = old.text, new.text
        chunks = old.chunks
        n = len(chunks)
        p = _common_prefix(a, b)
        s = _common_suffix(a, b, min(len(a), len(b)) - p)
        old_edit_end, new_edit_end = len(a) - s, len(b) - s
        moved = len(b) - len(a)
        lines_moved = b.count("\n", p, new_edit_end) - a.count("\n", p, old_edit_end)

        # Declarations before the edit: their text and a line break after it are unchanged.
        k = bisect.bisect_left(old.ends, p) if a != b else n
        while k and not _ends_cleanly(a, chunks[k - 1]):
            k -= 1
        # Declarations after it: each starts a line that lies wholly after the edit.
        j = max(k, bisect.bisect_left(old.begins, old_edit_end)) if a != b else n
        while j < n and not _starts_line(a, chunks[j], old_edit_end):
            j += 1

        plan: list[tuple[int, int, int] | _Chunk] = []     # chunks kept, and (lo, hi, virtual base) to parse
        pieces: list[tuple[int, int]] = []
        vnext = old.vnext

        def keep(c: _Chunk, spans_moved: bool) -> None:
            if spans_moved and (c.lex_diags or c.diags):       # their spans name old lines: parse again
                parse(c.begin, c.end)
            else:
                plan.append(c)
                pieces.append((c.start + c.shift, c.shift))

        def parse(lo: int, hi: int) -> None:
            nonlocal vnext
            plan.append((lo, hi, vnext))
            pieces.append((vnext, vnext - lo))
            vnext += hi - lo + 1

        for c in chunks[:k]:
            keep(c, not same_lines)
        lo = chunks[k - 1].end if k else 0
        hi = chunks[j].begin + moved if j < n else len(b)
        if lo < hi or k < j:
            parse(lo, hi)
        for c in chunks[j:]:
            keep(c.moved(moved), bool(lines_moved) or not same_lines)
        source = _relocated(new, pieces)

        out: list[_Chunk] = []
        lexed = 0
        for step in plan:
            if isinstance(step, _Chunk):
                out.append(step)
                continue
            lo, hi, base = step
            lexed += hi - lo
            got = _parse_stretch(new, source, lo, hi, base)
            if got:
                before = out[-1] if out else None
                if before is not None and (got[0].first not in STARTERS or (
                        before.last in _NAME_AFTER and "\n" not in b[before.tok_end:got[0].start])):
                    raise _Fallback("edit joins the declaration before it")
                if hi < len(b) and got[-1].last in _NAME_AFTER:
                    raise _Fallback("edit joins the declaration after it")
            out.extend(got)
        self.last_lexed = lexed
        decls: list[Any] = []
        for c in out:
            decls.extend(c.decls)
        _emit(diags, [d for c in out for d in c.lex_diags] + [d for c in out for d in c.diags])
        return ast.PslFile(source, tuple(decls)), _Parse(b, new.line_origin, out, vnext)


def _parse_stretch(real: SourceText, source: RelocatedSource, lo: int, hi: int, base: int) -> list[_Chunk]:
    """Lex and parse ``real.text[lo:hi]`` with positions moved to virtual ``base``."""
    scratch = Diagnostics()
    errors: list[tuple[int, str]] = []
    tokens = lex(_tables().grammar, real, scratch, lo, hi, errors=errors)
    if any(kind == "comment" for _, kind in errors):
        raise _Fallback("comment left open")
    lex_items = list(scratch.items)
    shift = base - lo
    if not tokens:
        if lex_items:
            raise _Fallback("lexical error outside any declaration")
        return []
    tokens = [make_token(t.type, t.value, t.start_pos + shift) for t in tokens]
    if hi < len(real.text) and _depth_after(tokens):
        raise _Fallback("braces left open")
    tops = _merge_split_names(split_declarations(tokens, STARTERS), real.text, shift)
    decls: list[Any] = []
    record: list = []
    parse_chunks(tops, source, scratch, decls, shift=shift, record=record)
    chunks = _chunks(record, decls, scratch.items, errors, lex_items, shift, lo, hi)
    if chunks is None:
        raise _Fallback("lexical error outside any declaration")
    return chunks


def _chunks(record: list, decls: list, items: list[Diagnostic], errors: list[tuple[int, str]],
            lex_items: list[Diagnostic], shift: int, lo: int, hi: int) -> list[_Chunk] | None:
    """Chunk records from :func:`parse_chunks`' ``record``; None when a lexical error
    lies before the first token (no chunk owns it)."""
    starts = [top[0].start_pos - shift for top, *_ in record]
    if errors and not starts:
        return None
    owned: list[list[Diagnostic]] = [[] for _ in starts]
    for (at, _), d in zip(errors, lex_items):
        owned[max(0, bisect.bisect_right(starts, at) - 1)].append(d)
    out = []
    for i, (top, d0, d1, i0, i1) in enumerate(record):
        last = top[-1]
        out.append(_Chunk(
            lo if i == 0 else starts[i], starts[i], last.start_pos - shift + len(last.value),
            starts[i + 1] if i + 1 < len(starts) else hi, shift, top[0].type, last.type,
            tuple(decls[d0:d1]), tuple(owned[i]), tuple(items[i0:i1])))
    return out


def _emit(diags: Diagnostics, found: list[Diagnostic]) -> None:
    diags.items.extend(found)


def _ends_cleanly(text: str, c: _Chunk) -> bool:
    """Whether a line break follows ``c``'s last token before the next declaration, so
    no edit after it can change how its tokens lex."""
    return c.tok_end < c.end and "\n" in text[c.tok_end:c.end] and text[c.tok_end] in _BLANK


def _starts_line(text: str, c: _Chunk, edit_end: int) -> bool:
    """Whether ``c`` is a top-level keyword at the start of a line that begins after the edit."""
    if c.first not in STARTERS:
        return False
    nl = text.rfind("\n", edit_end, c.begin)
    return nl >= 0 and not text[nl + 1:c.begin].strip()


def _depth_after(tokens: list) -> int:
    depth = 0
    for t in tokens:
        kind = t.type
        if kind == "LBRACE":
            depth += 1
        elif kind == "RBRACE" and depth:
            depth -= 1
    return depth


_BLOCK = 4096


def _common_prefix(a: str, b: str) -> int:
    """Length of the common start of ``a`` and ``b`` (compared a block at a time: the
    texts are the size of a policy and differ in one place)."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i:i + _BLOCK] == b[i:i + _BLOCK]:
        i += _BLOCK
    if i >= n:
        return n
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _common_suffix(a: str, b: str, limit: int) -> int:
    """Length of the common end of ``a`` and ``b``, at most ``limit``."""
    la, lb = len(a), len(b)
    i = 0
    while i + _BLOCK <= limit and a[la - i - _BLOCK:la - i] == b[lb - i - _BLOCK:lb - i]:
        i += _BLOCK
    while i < limit and a[la - i - 1] == b[lb - i - 1]:
        i += 1
    return i
