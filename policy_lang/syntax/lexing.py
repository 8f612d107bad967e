"""Shared lark machinery: grammar loading, a fast lexer, and error mapping.

Why a lexer of our own: lark's bundled lexers track line and column for every token,
which costs more than the LALR parse itself on a large policy.  This lexer is built
*from the grammar's own terminal definitions* (so the ``.lark`` file stays the single
source of truth), keeps only the character offset of each token, and leaves line and
column to :class:`policy_lang.source.SourceText`, which computes them on demand.

Rules a grammar must follow to use it (all four grammars do):

* terminals are context-free (the lexer is "basic", not contextual);
* keywords are string terminals; an identifier-like match whose whole text equals a
  keyword is retyped to that keyword, exactly like lark's own basic lexer does;
* ``%ignore`` terminals (white space, comments) are skipped.

:func:`parse_tokens` maps lark's exceptions to ``SYN`` diagnostics with the position
in the user's file and a readable list of what was expected.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import lark
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer, Token

from ..diagnostics import Diagnostics, define_code
from ..source import SourceText

GRAMMAR_DIR = Path(__file__).resolve().parent.parent / "grammars"

SYN_UNEXPECTED_TOKEN = define_code(
    "SYN001", "error", "unexpected token",
    "compare the line with the language reference in docs/language-support.md",
)
SYN_UNEXPECTED_CHAR = define_code(
    "SYN002", "error", "character not allowed here",
    "remove the character or put the text in double quotes",
)
SYN_UNEXPECTED_EOF = define_code(
    "SYN003", "error", "file ends in the middle of a declaration",
    "a closing brace or the end of a declaration is missing",
)
SYN_UNTERMINATED = define_code(
    "SYN004", "error", "unterminated comment or text literal",
    "close the /* comment */ or the \"text\"",
)

_tok_new = str.__new__


class FastToken(Token):
    """A lark Token whose line/column/end slots read as None without being set.

    Class attributes shadow the inherited slots for reading, so the lexer sets only
    type, value and start_pos: positions are computed from the offset on demand.
    """

    __slots__ = ()
    line = column = end_line = end_column = end_pos = None

_ERROR_GROUP = "KSM_LEX_ERROR"


def make_token(type_: str, value: str, pos: int) -> Token:
    """A lark Token carrying type, value and offset; line and column stay None.

    Line and column are computed on demand from the offset (``SourceText``).
    """
    tok = _tok_new(FastToken, value)
    tok.type = type_
    tok.value = value
    tok.start_pos = pos
    return tok


class LexError(Exception):
    def __init__(self, pos: int, kind: str):
        super().__init__(kind)
        self.pos = pos
        self.kind = kind


@dataclass
class FastLexer:
    """Regex-union lexer compiled from a lark grammar's terminals."""

    regex: re.Pattern
    ignore: frozenset[str]
    keywords: dict[str, str]          # keyword text -> terminal name
    keyword_hosts: frozenset[str]     # terminals whose matches may be keywords

    @classmethod
    def from_lark(cls, parser: lark.Lark) -> "FastLexer":
        conf = parser.lexer_conf
        terminals = list(conf.terminals)
        ignore = frozenset(conf.ignore)
        regex_terms = [t for t in terminals if t.pattern.type == "re"]
        keywords: dict[str, str] = {}
        hosts: set[str] = set()
        plain: list = []
        for t in terminals:
            if t.pattern.type != "str":
                continue
            host = next(
                (r for r in regex_terms if re.fullmatch(r.pattern.to_regexp(), t.pattern.value, conf.g_regex_flags)),
                None,
            )
            if host is not None:
                keywords[t.pattern.value] = t.name
                hosts.add(host.name)
            else:
                plain.append(t)
        ordered = sorted(
            regex_terms + plain,
            key=lambda x: (-x.priority, -x.pattern.max_width, -len(x.pattern.value), x.name),
        )
        union = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in ordered)
        union += f"|(?P<{_ERROR_GROUP}>(?s:.))"
        return cls(re.compile(union, conf.g_regex_flags), ignore, keywords, frozenset(hosts))

    def tokens(self, text: str, start: int = 0, end: int | None = None) -> Iterator[Token]:
        """Yield tokens; raises :class:`LexError` at the first character no terminal matches.

        One ``finditer`` pass (the loop over matches runs in C); the last
        alternative of the pattern catches any other character as an error.
        """
        end = len(text) if end is None else end
        ignore = self.ignore
        keywords = self.keywords
        hosts = self.keyword_hosts
        new = _tok_new
        tok_cls = FastToken
        for m in self.regex.finditer(text, start, end):
            kind = m.lastgroup
            if kind in ignore:
                continue
            if kind == _ERROR_GROUP:
                raise LexError(m.start(), _lex_failure_kind(text, m.start()))
            value = m.group()
            if kind in hosts:
                kind = keywords.get(value, kind)
            tok = new(tok_cls, value)
            tok.type = kind
            tok.value = value
            tok.start_pos = m.start()
            yield tok


def _lex_failure_kind(text: str, pos: int) -> str:
    if text.startswith("/*", pos):
        return "comment"
    if text[pos] == '"':
        return "text"
    return "char"


class _PassThroughLexer(Lexer):
    """Lets lark's LALR parser consume a ready list of tokens."""

    def __init__(self, conf):  # noqa: D401 - lark calls it with the lexer configuration
        pass

    def lex(self, data):  # type: ignore[override]
        return iter(data)


@dataclass
class Grammar:
    """A loaded grammar: the LALR parser plus the lexer built from its terminals."""

    name: str
    parser: lark.Lark
    lexer: FastLexer
    literal_of: dict[str, str]   # terminal name -> its literal text, for messages

    def describe(self, terminal: str) -> str:
        lit = self.literal_of.get(terminal)
        if lit is not None:
            return f"'{lit}'"
        return _FRIENDLY.get(terminal, terminal.lower().replace("_", " "))


_FRIENDLY = {
    "NAME": "a name",
    "QNAME": "a name",
    "DOTTED": "a dotted name",
    "NUMBER": "a number",
    "INT": "a number",
    "TEXT": "a text literal",
    "STRING": "a text literal",
    "$END": "end of file",
}


def _cache_file(name: str, source: str, starts: tuple[str, ...]) -> Path | None:
    """Where lark may keep the analysed LALR tables between runs (saves ~0.1-1 s a start).

    ``KSM_CACHE_DIR`` overrides the location; ``KSM_CACHE_DIR=`` (empty) disables it.
    lark itself re-checks a hash of the grammar and options when it loads the file.
    """
    base = os.environ.get("KSM_CACHE_DIR")
    if base == "":
        return None
    root = Path(base) if base else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ksm"
    digest = hashlib.sha256(f"{lark.__version__}|{starts}|{source}".encode()).hexdigest()[:16]
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return root / f"{name}-{digest}.lark-cache"


@functools.lru_cache(maxsize=None)
def load_grammar(name: str, starts: tuple[str, ...] = ("start",)) -> Grammar:
    """Build (once per process) the LALR parser for ``grammars/<name>.lark``."""
    source = (GRAMMAR_DIR / f"{name}.lark").read_text(encoding="utf-8")
    options = dict(parser="lalr", lexer=_PassThroughLexer, start=list(starts), maybe_placeholders=False)
    cache = _cache_file(name, source, starts)
    parser = None
    if cache is not None:
        try:
            parser = lark.Lark(source, cache=str(cache), **options)
        except Exception:  # a corrupt or unwritable cache must never stop a check
            parser = None
    if parser is None:
        parser = lark.Lark(source, **options)
    # The terminal table lark built for its own lexer is all our lexer needs.
    literal_of = {t.name: t.pattern.value for t in parser.lexer_conf.terminals if t.pattern.type == "str"}
    return Grammar(name, parser, FastLexer.from_lark(parser), literal_of)


def lex(grammar: Grammar, source: SourceText, diags: Diagnostics, start: int = 0, end: int | None = None) -> list[Token]:
    """Tokenize ``source.text[start:end]``; on a bad character, report it and skip it."""
    text = source.text
    end = len(text) if end is None else end
    out: list[Token] = []
    pos = start
    while True:
        try:
            out.extend(grammar.lexer.tokens(text, pos, end))
            return out
        except LexError as err:
            if err.kind == "comment":
                diags.add(SYN_UNTERMINATED, "comment '/*' is never closed", source.span(err.pos))
                return out
            if err.kind == "text":
                nl = text.find("\n", err.pos)
                diags.add(SYN_UNTERMINATED, "text literal is never closed on its line", source.span(err.pos))
                pos = end if nl < 0 or nl >= end else nl + 1
                continue
            diags.add(
                SYN_UNEXPECTED_CHAR,
                f"unexpected character {text[err.pos]!r}",
                source.span(err.pos),
            )
            pos = err.pos + 1


def parse_tokens(
    grammar: Grammar,
    tokens: Sequence[Token],
    source: SourceText,
    diags: Diagnostics,
    start: str = "start",
    what: str = "",
    transformer: Callable | None = None,
):
    """Parse ``tokens``; return the tree, or None after reporting one ``SYN`` diagnostic."""
    try:
        return grammar.parser.parse(tokens, start=start)
    except UnexpectedToken as exc:
        tok = exc.token
        expected = sorted({grammar.describe(t) for t in exc.expected if not t.startswith("__")})
        listed = ", ".join(expected[:8]) + (", ..." if len(expected) > 8 else "")
        if tok.type == "$END":
            pos = _end_position(tokens, source)
            diags.add(
                SYN_UNEXPECTED_EOF,
                f"{what or 'declaration'} ends too early; expected {listed}",
                source.span(pos),
            )
        else:
            diags.add(
                SYN_UNEXPECTED_TOKEN,
                f"unexpected {tok.value!r}" + (f" in {what}" if what else "") + f"; expected {listed}",
                source.span(tok.start_pos, tok.start_pos + len(tok.value)),
            )
    except UnexpectedEOF:
        pos = _end_position(tokens, source)
        diags.add(SYN_UNEXPECTED_EOF, f"{what or 'declaration'} ends too early", source.span(pos))
    except UnexpectedInput as exc:  # pragma: no cover - other lark input errors
        diags.add(SYN_UNEXPECTED_TOKEN, f"syntax error: {exc}", source.span(getattr(exc, "pos_in_stream", 0) or 0))
    return None


def _end_position(tokens: Sequence[Token], source: SourceText) -> int:
    if tokens:
        last = tokens[-1]
        return last.start_pos + len(last.value)
    return max(0, len(source.text) - 1)


def split_declarations(
    tokens: Sequence[Token],
    starters: frozenset[str],
    open_type: str = "LBRACE",
    close_type: str = "RBRACE",
) -> list[list[Token]]:
    """Cut a token list into top-level declarations.

    A declaration starts at a starter keyword seen outside any braces.  Parsing each
    one on its own gives error recovery for free (one bad binding does not hide the
    errors in the next) and keeps every LALR parse small.
    """
    chunks: list[list[Token]] = []
    current: list[Token] = []
    depth = 0
    for tok in tokens:
        t = tok.type
        if depth == 0 and t in starters and current:
            chunks.append(current)
            current = []
        current.append(tok)
        if t == open_type:
            depth += 1
        elif t == close_type and depth > 0:
            depth -= 1
    if current:
        chunks.append(current)
    return chunks


def parse_chunks(
    grammar: Grammar,
    chunks: Iterable[list[Token]],
    source: SourceText,
    diags: Diagnostics,
    start: str,
    what: str,
):
    """Parse each chunk; yield (chunk, tree) for the ones that parse."""
    for chunk in chunks:
        tree = parse_tokens(grammar, chunk, source, diags, start=start, what=what)
        if tree is not None:
            yield chunk, tree
