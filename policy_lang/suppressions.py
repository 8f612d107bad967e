"""Suppression comments: ``ksm: disable=CODE,...`` in any of a solution's files.

Why the front end finds them: it is the only stage that holds every file's text
(after template expansion, with the map back to the user's lines), so the linter
and every other back end read :class:`~policy_lang.solution.Suppression` values
instead of re-reading and re-expanding files.

Syntax, inside a comment (``//`` or ``/* */`` in PSL, EDL, CDL and IDL; ``#`` in YAML)::

    ksm: disable=CODE[,CODE...]            this line (after code) or the next code line
    ksm: disable-next-line=CODE[,CODE...]  the next line holding code
    ksm: disable-file=CODE[,CODE...]       the whole file

A CODE is three capital letters and three digits (``LNT016``) or ``all``; spaces are
allowed around ``=`` and ``,``, and free text after the codes is a reason.  Lines are
the user's original lines: a template that drops or adds lines above a comment does
not move what it covers.

Speed matters (every load runs this on every file), so a file without ``ksm:`` costs
one substring search; only files that mention it are tokenized.
"""
from __future__ import annotations

import bisect
import difflib
import re

from .comments import C_TOKEN as _C_TOKEN, Comment as _Comment, yaml_comments as _yaml_comments
from .diagnostics import Diagnostics, define_code
from .solution import Suppression, TrustMark
from .source import SourceText

SYNTAX = ("write `ksm: disable=CODE[,CODE...]` (after code: that line; alone: the next code line), "
          "`ksm: disable-next-line=CODES` or `ksm: disable-file=CODES`; a CODE looks like LNT016, or is `all`")

SUP_MALFORMED = define_code(
    "SUP001", "warning", "malformed suppression comment",
    SYNTAX,
)

DIRECTIVES = {"disable": "line", "disable-next-line": "next", "disable-file": "file"}
#: ``ksm: trusted`` / ``ksm: untrusted`` on (or alone just above) a ``use EDL`` line mark
#: that process class for the kernel least-privilege rules (docs/kernel.md); free text
#: after the word is the reason.
TRUST_DIRECTIVES = ("trusted", "untrusted")

_CODE = re.compile(r"[A-Z]{3}\d{3}|all")
_LOOKS_LIKE_CODE = re.compile(r"[ \t]+([A-Za-z]{3}\d{3}|all)\b")
_MENTION = re.compile(r"(?<![\w-])ksm:")
_DIRECTIVE = re.compile(
    r"ksm:[ \t]*(?P<kind>[A-Za-z][\w-]*)?[ \t]*(?P<eq>=)?"
    r"(?P<codes>[ \t]*[^\s,]*(?:[ \t]*,[ \t]*[^\s,]*)*)"
)
_NON_SPACE = re.compile(r"\S")
_TRUST = re.compile(r"ksm:[ \t]*(trusted|untrusted)\b(?![-=])")


def scan(source: SourceText, language: str, diags: Diagnostics) -> list[Suppression | TrustMark]:
    """Every suppression and trust mark in ``source`` (``language`` is psl, edl, cdl, idl or yaml).

    Malformed directives are reported as SUP001 warnings on ``diags`` and suppress nothing.
    """
    text = source.text
    if "ksm:" not in text:
        return []
    index = _YamlIndex(text) if language == "yaml" else _CIndex(text)
    scanner = _Scanner(source, index, diags)
    out: list[Suppression | TrustMark] = []
    for comment in index.mentioning():
        out.extend(scanner.directives(comment))
    return out


# ----------------------------------------------------------------------------- C-style comments

class _CIndex:
    """Comments of PSL, EDL, CDL and IDL text, found only where they matter.

    Why not tokenize the whole file: a 10,000-line policy holds thousands of text
    literals and comments but a handful of ``ksm:``.  Literals and line comments
    never span lines, so a line can be tokenized on its own once it is known whether
    it starts inside a block comment; only the (rare) ``/*`` are followed from the
    start of the file.
    """

    def __init__(self, text: str):
        self.text = text
        self.blocks = self._block_comments()
        self.block_starts = [b.start for b in self.blocks]

    def _block_comments(self) -> list[_Comment]:
        text, out, pos = self.text, [], 0
        while (i := text.find("/*", pos)) >= 0:
            # No real block comment lies between ``pos`` and ``i``, so the line (or the
            # rest of it after ``pos``) can be tokenized on its own.
            start = max(pos, text.rfind("\n", 0, i) + 1)
            for m in _C_TOKEN.finditer(text, start):
                if m.end() > i:
                    break
            if m.start() == i:
                out.append(_block(text, i, m.end()))
            pos = m.end()
        return out

    def _block_at(self, offset: int) -> int:
        """Index of the last block comment starting at or before ``offset`` (-1: none)."""
        return bisect.bisect_right(self.block_starts, offset) - 1

    def _outside(self, offset: int) -> int:
        """``offset``, or the end of the block comment holding it."""
        j = self._block_at(offset)
        if j >= 0 and self.blocks[j].end > offset:
            return self.blocks[j].end
        return offset

    def comment_at(self, offset: int) -> _Comment | None:
        j = self._block_at(offset)
        if j >= 0 and self.blocks[j].end > offset:
            return self.blocks[j]
        line_start = self.text.rfind("\n", 0, offset) + 1
        start = max(line_start, self.blocks[j].end) if j >= 0 else line_start
        for m in _C_TOKEN.finditer(self.text, start):
            if m.end() > offset:
                if m.start() <= offset and self.text.startswith("//", m.start()):
                    return _Comment(m.start(), m.end(), m.start() + 2, m.end())
                return None
        return None

    def mentioning(self) -> list[_Comment]:
        """Comments that mention ``ksm:``, in file order, each once."""
        out: list[_Comment] = []
        text, pos = self.text, 0
        while (i := text.find("ksm:", pos)) >= 0:
            c = self.comment_at(i)
            if c is None:
                pos = i + 4
                continue
            out.append(c)
            pos = c.end
        return out

    def first_code(self, start: int, stop: int) -> int:
        """Offset of the first character of code in [start, stop), or -1.

        ``start`` must not lie inside a text literal or line comment (a line start or
        a comment's end); a block comment holding it is skipped.
        """
        text = self.text
        prev = self._outside(start)
        for m in _C_TOKEN.finditer(text, prev):
            if m.start() >= stop:
                break
            found = _NON_SPACE.search(text, prev, m.start())
            if found:
                return found.start()
            if text[m.start()] == '"':
                return m.start()
            prev = m.end()
            if prev >= stop:
                return -1
        found = _NON_SPACE.search(text, prev, stop)
        return found.start() if found else -1


def _block(text: str, start: int, end: int) -> _Comment:
    closed = end - start >= 4 and text.startswith("*/", end - 2)
    return _Comment(start, end, start + 2, end - 2 if closed else end)


# ----------------------------------------------------------------------------- YAML comments

class _YamlIndex:
    """Comments of a YAML file (init.yaml files are small: tokenized whole)."""

    def __init__(self, text: str):
        self.text = text
        self.comments = _yaml_comments(text)
        self.starts = [c.start for c in self.comments]

    def mentioning(self) -> list[_Comment]:
        return [c for c in self.comments if self.text.find("ksm:", c.body_start, c.body_end) >= 0]

    def first_code(self, start: int, stop: int) -> int:
        """Offset of the first character outside comments in [start, stop), or -1."""
        text, comments = self.text, self.comments
        j = bisect.bisect_right(self.starts, start) - 1
        if j >= 0 and comments[j].end > start:
            start = comments[j].end
        j += 1
        while start < stop:
            gap_end = min(stop, comments[j].start) if j < len(comments) else stop
            found = _NON_SPACE.search(text, start, gap_end)
            if found:
                return found.start()
            if j >= len(comments) or comments[j].start >= stop:
                return -1
            start = comments[j].end
            j += 1
        return -1


# ----------------------------------------------------------------------------- directives

class _Scanner:
    """Turns the ``ksm:`` directives of one file's comments into suppressions."""

    def __init__(self, source: SourceText, index: _CIndex | _YamlIndex, diags: Diagnostics):
        self.source = source
        self.text = source.text
        self.index = index
        self.diags = diags

    def directives(self, c: _Comment) -> list[Suppression | TrustMark]:
        out: list[Suppression | TrustMark] = []
        for m in _MENTION.finditer(self.text, c.body_start, c.body_end):
            trust = _TRUST.match(self.text, m.start(), c.body_end)
            if trust:
                scope, line = self._coverage(c, "line")
                out.append(TrustMark(self.source.path, line, trust.group(1) == "trusted",
                                     self.source.span(m.start(), trust.end())))
                continue
            codes, kind, end = self._parse(m.start(), c.body_end)
            if codes is None:
                continue
            span = self.source.span(m.start(), end)
            scope, line = self._coverage(c, DIRECTIVES[kind])
            out.append(Suppression(self.source.path, line, codes, scope, span))
        return out

    def _parse(self, at: int, body_end: int) -> tuple[tuple[str, ...] | None, str, int]:
        """(codes, directive, end offset) of the directive at ``at``; codes None when malformed."""
        line_end = self.text.find("\n", at, body_end)
        limit = body_end if line_end < 0 else line_end
        m = _DIRECTIVE.match(self.text, at, limit)
        kind = m.group("kind") or ""
        end = m.end()
        if kind not in DIRECTIVES:
            return self._malformed(at, m.end("kind") if kind else at + 4, _unknown_directive(kind)), kind, end
        if not m.group("eq"):
            return self._malformed(at, m.end("kind"), f"expected `=` and codes after `ksm: {kind}`"), kind, end
        raw = [part.strip() for part in m.group("codes").split(",")]
        if raw == [""]:
            return self._malformed(at, end, f"`ksm: {kind}=` lists no codes"), kind, end
        for code in raw:
            if not _CODE.fullmatch(code):
                what = "an empty code (a stray comma)" if not code else f"`{code}` is not a rule code"
                return self._malformed(at, end, f"{what} in `ksm: {kind}=`"), kind, end
        after = _LOOKS_LIKE_CODE.match(self.text, end, limit)
        if after:
            return self._malformed(at, after.end(), f"separate codes with commas: `{after.group(1)}` "
                                                    f"follows the list of `ksm: {kind}=`"), kind, end
        return tuple(dict.fromkeys(raw)), kind, end

    def _malformed(self, start: int, end: int, message: str) -> None:
        self.diags.add(SUP_MALFORMED, message, self.source.span(start, end))
        return None

    def _coverage(self, c: _Comment, scope: str) -> tuple[str, int]:
        """(scope, original line covered) for a directive in comment ``c``."""
        if scope == "file":
            return "file", self.source.position(c.start)[0]
        if scope == "line":
            line_start = self.text.rfind("\n", 0, c.start) + 1
            if self.index.first_code(line_start, c.start) >= 0:
                return "line", self.source.position(c.start)[0]
            if self.index.first_code(c.end, self._line_end(c.end)) >= 0:
                return "line", self.source.position(c.end)[0]
        return "next", self._next_code_line(self._line_end(c.end))

    def _line_end(self, offset: int) -> int:
        end = self.text.find("\n", offset)
        return len(self.text) if end < 0 else end

    def _next_code_line(self, offset: int) -> int:
        """Original line of the first code after ``offset`` (the line after the text when there is none)."""
        found = self.index.first_code(offset, len(self.text))
        if found >= 0:
            return self.source.position(found)[0]
        return self.source.position(offset)[0] + 1


def _unknown_directive(kind: str) -> str:
    if not kind:
        return "`ksm:` is not followed by a directive"
    close = difflib.get_close_matches(kind, [*DIRECTIVES, *TRUST_DIRECTIVES], n=1)
    guess = f" (did you mean `{close[0]}`?)" if close else ""
    return f"unknown suppression directive `ksm: {kind}`{guess}"
