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
* ``%ignore`` terminals (white space, comments) are skipped, inside the match of the
  token that follows them when that cannot change the tokens (see
  :meth:`FastLexer.from_lark`).

:func:`parse_tokens` runs lark's own LALR automaton without lark's per-token
machinery and replays recorded parses of token lists of the same types
(:class:`_Automaton`; same tree as ``Lark.parse``); on a syntax error it asks lark,
and maps lark's exception to a ``SYN`` diagnostic with the position in the user's
file and a readable list of what was expected.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import lark
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer, Token
from lark.parse_tree_builder import ChildFilterLALR_NoPlaceholders, ExpandSingleChild
from lark.parsers.lalr_analysis import Shift

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
_END_GROUP = "KSM_LEX_END"
#: Strings no terminal ordered before an ignored one may match at their start, for
#: :meth:`FastLexer.from_lark` to skip ignored text before each token (see there).
_IGNORED_PROBES = (" ", "\t", "\n", "\r", "\f", "\v", "\u00a0", "\u2028", "//", "/*", "#")


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
    skips_ignored: bool = False       # ignored text is skipped inside each match
    # group -> {matched text: terminal}: the keyword hosts, and the merged punctuation groups
    retype: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_lark(cls, parser: lark.Lark, skip_ignored: bool = True, merge_punctuation: bool = True) -> "FastLexer":
        """The lexer for ``parser``'s terminals.

        At each position the first terminal in lark's order (priority, then longest
        possible match) that matches wins.  With ``skip_ignored`` the ignored
        terminals (white space, comments) are not tokens of their own: an atomic
        group in front of every token consumes them, trying them in the same order,
        which halves the matches.  That gives the same tokens only if no terminal
        ordered before an ignored one can match where an ignored one does; checked
        here on probes (white space, ``//``, ``/*``, ``#``), and otherwise the
        ignored terminals stay ordinary alternatives.

        A run of consecutive punctuation terminals (literals without letters, digits
        or ``_``) is one group whose alternatives keep their order, single characters
        in a character class, and the matched text names the terminal: the same
        tokens from a smaller alternation.
        """
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
        skipped = [t for t in ordered if t.name in ignore]
        if skip_ignored and skipped:
            last = max(ordered.index(t) for t in skipped)
            leaders = [t for t in ordered[:last] if t.name not in ignore]
            if any(re.match(t.pattern.to_regexp(), probe, conf.g_regex_flags)
                   for t in leaders for probe in _IGNORED_PROBES):
                skip_ignored = False
        else:
            skip_ignored = False
        retype: dict[str, dict[str, str]] = {host: keywords for host in hosts}
        if skip_ignored:
            prefix = "(?>(?:" + "|".join(f"(?:{t.pattern.to_regexp()})" for t in skipped) + ")*)"
            tokens = [t for t in ordered if t.name not in ignore]
            union = prefix + "(?:" + _alternatives(tokens, conf.g_regex_flags, retype, merge=merge_punctuation)
            # At the end of the text only ignored text is left: an empty token that is
            # dropped (without it the search would retry at every following offset).
            union += f"|(?P<{_END_GROUP}>\\Z)|(?P<{_ERROR_GROUP}>(?s:.)))"
        else:
            union = _alternatives(ordered, conf.g_regex_flags, retype, keep=ignore, merge=merge_punctuation)
            union += f"|(?P<{_ERROR_GROUP}>(?s:.))"
        return cls(re.compile(union, conf.g_regex_flags), ignore, keywords, frozenset(hosts), skip_ignored, retype)

    def __post_init__(self) -> None:
        groups = self.regex.groupindex
        self._names: list[str | None] = [None] * (self.regex.groups + 1)
        for name, i in groups.items():
            self._names[i] = name
        self._retypes = [self.retype.get(name) if name else None for name in self._names]
        self._special = (groups.get(_END_GROUP, -1), groups[_ERROR_GROUP])

    def _scan_skipping(self, out: list[Token], text: str, start: int, end: int) -> None:
        _scan_batches(self, out, text, start, end)

    def tokens(self, text: str, start: int = 0, end: int | None = None) -> Iterator[Token]:
        """Yield tokens; raises :class:`LexError` at the first character no terminal matches."""
        out: list[Token] = []
        try:
            self.scan_into(out, text, start, end)
        except LexError:
            yield from out
            raise
        yield from out

    def scan_into(self, out: list[Token], text: str, start: int = 0, end: int | None = None) -> None:
        """Append the tokens of ``text[start:end]`` to ``out``; raises :class:`LexError` at the
        first character no terminal matches (the tokens before it are in ``out``).

        One ``finditer`` pass (the loop over matches runs in C); the last
        alternative of the pattern catches any other character as an error.
        """
        end = len(text) if end is None else end
        if self.skips_ignored:
            self._scan_skipping(out, text, start, end)
            return
        special = self.ignore | {_ERROR_GROUP}
        retype = self.retype.get
        new = _tok_new
        tok_cls = FastToken
        append = out.append
        for m in self.regex.finditer(text, start, end):
            kind = m.lastgroup
            if kind in special:
                if kind == _ERROR_GROUP:
                    pos = m.start(kind)
                    raise LexError(pos, _lex_failure_kind(text, pos))
                continue
            value = m.group(kind)
            tok = new(tok_cls, value)
            tok.start_pos = m.start(kind)
            names = retype(kind)
            tok.type = kind if names is None else names.get(value, kind)
            tok.value = value
            append(tok)


_PUNCTUATION = re.compile(r"[^\w\s]+")


def _alternatives(terminals: list, flags: int, retype: dict[str, dict[str, str]], keep=frozenset(),
                  merge: bool = True) -> str:
    """The union of ``terminals`` in their order, runs of punctuation merged (see
    :meth:`FastLexer.from_lark`); ``retype`` gets each merged group's text -> terminal."""
    def mergeable(t) -> bool:
        return (t.pattern.type == "str" and not t.pattern.flags and t.name not in keep
                and not flags & re.IGNORECASE and _PUNCTUATION.fullmatch(t.pattern.value) is not None)

    parts: list[str] = []
    run: list = []

    def flush() -> None:
        if len(run) == 1:
            parts.append(f"(?P<{run[0].name}>{run[0].pattern.to_regexp()})")
        elif run:
            name = f"KSM_PUNCT{len(retype)}"
            retype[name] = {t.pattern.value: t.name for t in run}
            pieces: list[str] = []
            chars = ""
            for t in run:
                if len(t.pattern.value) == 1:
                    chars += re.escape(t.pattern.value)
                    continue
                if chars:
                    pieces.append(f"[{chars}]")
                    chars = ""
                pieces.append(re.escape(t.pattern.value))
            if chars:
                pieces.append(f"[{chars}]")
            parts.append(f"(?P<{name}>{'|'.join(pieces)})")
        run.clear()

    values = [t.pattern.value for t in terminals if mergeable(t)]
    merging = merge and len(values) == len(set(values))
    for t in terminals:
        if merging and mergeable(t):
            run.append(t)
            continue
        flush()
        parts.append(f"(?P<{t.name}>{t.pattern.to_regexp()})")
    flush()
    return "|".join(parts)


_BATCH = 4096     # matches taken from the regex at a time (match objects are large)


def _scan_batches(lexer: "FastLexer", out: list[Token], text: str, start: int, end: int) -> None:
    """:meth:`FastLexer.scan_into` for a lexer that skips ignored text inside each match.

    Every match is then a token, except an empty one at the end of the text
    (:data:`_END_GROUP`) and an error: so the matches are taken in batches and turned
    into tokens without a test each (the loop is the hot spot of every parse).
    """
    regex = lexer.regex
    names = lexer._names
    retypes = lexer._retypes
    end_group, error_group = lexer._special
    new = _tok_new
    tok_cls = FastToken
    append = out.append
    matches = regex.finditer(text, start, end)
    while True:
        batch = list(islice(matches, _BATCH))
        if not batch:
            return
        groups = [m.lastindex for m in batch]
        while groups and groups[-1] == end_group:
            groups.pop()
        failed = error_group in groups
        if failed:
            del groups[groups.index(error_group):]
        for m, i in zip(batch, groups):
            value = m.group(i)
            tok = new(tok_cls, value)
            tok.start_pos = m.start(i)
            names_of = retypes[i]
            tok.type = names[i] if names_of is None else names_of.get(value, names[i])
            tok.value = value
            append(tok)
        if failed:
            pos = batch[len(groups)].start(error_group)
            raise LexError(pos, _lex_failure_kind(text, pos))


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
    automata: dict[str, "_Automaton"] = field(default_factory=dict, repr=False)   # start rule -> driver

    def automaton(self, start: str) -> "_Automaton":
        auto = self.automata.get(start)
        if auto is None:
            auto = self.automata[start] = _Automaton(self.parser, start)
        return auto

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


def lex(grammar: Grammar, source: SourceText, diags: Diagnostics, start: int = 0, end: int | None = None,
        errors: list[tuple[int, str]] | None = None) -> list[Token]:
    """Tokenize ``source.text[start:end]``; on a bad character, report it and skip it.

    ``errors``, when given, receives ``(offset, kind)`` of each problem reported, so
    that an incremental parser can tell which declaration a lexical error belongs to.
    """
    text = source.text
    end = len(text) if end is None else end
    out: list[Token] = []
    pos = start
    while True:
        try:
            grammar.lexer.scan_into(out, text, pos, end)
            return out
        except LexError as err:
            if errors is not None:
                errors.append((err.pos, err.kind))
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


#: Most tokens (keys plus programs) an automaton's cache of recorded parses holds.
CACHE_MAX_TOKENS = 2_000_000
#: Longer token lists are parsed, never recorded.
CACHE_MAX_CHUNK = 5_000


class _Automaton:
    """lark's LALR automaton for one start rule, run without lark's per-token machinery.

    :meth:`parse` builds the tree with lark's own tree-builder callbacks, called in
    the same order on the same children as ``Lark.parse`` calls them, so the tree is
    the one lark gives.  An LALR parse depends only on the token *types*: the
    reductions of each parse are recorded, keyed by the types, and a later token list
    of the same types replays them (no table lookups).  A token list the automaton
    rejects gives None; the caller then asks lark, for its error.
    """

    def __init__(self, parser: lark.Lark, start: str):
        inner = parser.parser.parser.parser       # Lark -> frontend -> LALR_Parser -> _Parser
        table = inner.parse_table
        rules = list(inner.callbacks)
        index = {rule: k for k, rule in enumerate(rules)}
        self.callbacks = [_inline_callback(inner.callbacks[rule]) for rule in rules]
        self.sizes = [len(rule.expansion) for rule in rules]
        self.origins = [str(rule.origin.name) for rule in rules]
        # row[symbol]: >= 0 shift (or go) to that state, < 0 reduce by rule ~value
        self.rows = {
            state: {str(sym): (arg if action is Shift else ~index[arg]) for sym, (action, arg) in row.items()}
            for state, row in table.states.items()
        }
        self.start = table.start_states[start]
        self.end = table.end_states[start]
        self.cache: dict[tuple[str, ...], list[int]] = {}
        self.cached_tokens = 0

    def parse(self, tokens: Sequence[Token]):
        """The tree lark would build for ``tokens``, or None when they do not parse."""
        key = tuple([t.type for t in tokens])
        program = self.cache.get(key)
        if program is not None:
            return self._replay(program, tokens)
        program = []
        value = self._drive(tokens, program)
        if value is not None and len(key) <= CACHE_MAX_CHUNK \
                and self.cached_tokens + len(key) + len(program) <= CACHE_MAX_TOKENS:
            self.cache[key] = program
            self.cached_tokens += len(key) + len(program)
        return value

    def _replay(self, program: list[int], tokens: Sequence[Token]):
        callbacks = self.callbacks
        sizes = self.sizes
        stack: list = []
        push = stack.append
        pos = 0
        for op in program:
            if op < 0:
                push(tokens[pos])
                pos += 1
                continue
            size = sizes[op]
            if size:
                args = stack[-size:]
                del stack[-size:]
            else:
                args = []
            push(callbacks[op](args))
        return stack[-1]

    def _drive(self, tokens: Sequence[Token], program: list[int]):
        rows = self.rows
        callbacks = self.callbacks
        sizes = self.sizes
        origins = self.origins
        end = self.end
        states = [self.start]
        stack: list = []
        record = program.append
        n = len(tokens)
        i = 0
        while True:
            kind = tokens[i].type if i < n else "$END"
            act = rows[states[-1]].get(kind)
            if act is None:
                return None
            if act >= 0:
                if i >= n:            # pragma: no cover - lark never shifts $END
                    return None
                states.append(act)
                stack.append(tokens[i])
                record(-1)
                i += 1
                continue
            k = ~act
            size = sizes[k]
            if size:
                args = stack[-size:]
                del stack[-size:]
                del states[-size:]
            else:
                args = []
            record(k)
            stack.append(callbacks[k](args))
            states.append(rows[states[-1]][origins[k]])
            if i >= n and states[-1] == end:
                return stack[-1]


def _inline_callback(callback):
    """lark's tree-builder callback for one rule as one generated function, when it is
    made of the wrappers lark uses for an LALR parser without placeholders (a child
    filter, single-child expansion, the tree class); the callback itself otherwise.

    The generated function does what the wrappers do, in the same order (the filter
    even extends the first inlined child's list in place, as lark's does), so the
    tree is the same; it only saves their calls.
    """
    chain = []
    f = callback
    while isinstance(f, (ChildFilterLALR_NoPlaceholders, ExpandSingleChild)):
        chain.append(f)
        f = f.node_builder
    if not (isinstance(f, functools.partial) and len(f.args) == 1 and not f.keywords and isinstance(f.func, type)
            and issubclass(f.func, lark.Tree) and isinstance(f.args[0], str)):
        return callback
    lines = ["def cb(a):"]
    for w in chain:
        if isinstance(w, ChildFilterLALR_NoPlaceholders):
            lines.append("    c = []")
            for i, expand in w.to_include:
                if expand:
                    lines.append(f"    if c:\n        c += a[{int(i)}].children\n    else:\n        c = a[{int(i)}].children")
                else:
                    lines.append(f"    c.append(a[{int(i)}])")
            lines.append("    a = c")
        else:
            lines.append("    if len(a) == 1:\n        return a[0]")
    lines.append("    return tree(name, a)")
    scope = {"tree": f.func, "name": f.args[0]}
    exec("\n".join(lines), scope)  # noqa: S102 - generated from lark's own wrapper objects
    return scope["cb"]


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
    if tokens:
        tree = grammar.automaton(start).parse(tokens)
        if tree is not None:
            return tree
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
    # Only starters and braces matter: find them in one pass, then cut by slicing.
    marks = starters | {open_type, close_type}
    types = [tok.type for tok in tokens]
    cuts: list[int] = []
    depth = 0
    for i, t in [(i, t) for i, t in enumerate(types) if t in marks]:
        if depth == 0 and i > 0 and t in starters:
            cuts.append(i)
        if t == open_type:
            depth += 1
        elif t == close_type and depth > 0:
            depth -= 1
    toks = tokens if isinstance(tokens, list) else list(tokens)
    bounds = [0, *cuts, len(toks)]
    return [toks[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


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
