"""Regex: text validation with statically defined regular expressions (``re.match``, ``re.select``).

What the model does (KCE docs, "Regex security model", 0.0 and 1.0-1.4; our own words):

* ``re.match {text : <Text>, pattern : <Text>}`` returns ``true`` when the text
  matches the regular expression, ``false`` otherwise.
* ``re.select {text : <Text>}`` is meant as the selector of a ``choice``: the case
  labels are regular expressions and the text is checked against them to pick the
  arm; ``_`` is the fallback.
* Patterns are static (written in the policy).  1.1+ docs add that a ``match``
  pattern may be a text literal (backslashes doubled) or a multi-line regex block,
  that ``select`` patterns are text literals, and that matching is case-sensitive.
* One pre-created object ``re``; no parameters; auditable (``emit`` key).

Here
----
* :meth:`RegexModel.expression` ``"match"`` returns a Python ``bool``;
  ``"select"`` checks its argument and returns the text (its value only matters
  through ``choose``).
* :meth:`RegexModel.choose` for ``"select"`` returns the index of the **first**
  case, in textual order, whose pattern matches the text, or ``None`` (the engine
  then takes ``_``).  All case patterns are compiled (checked) before matching, so a
  bad pattern runs incorrectly whatever the text.  For any other method, ``choose``
  compares the expression's value with the case literals.
* A non-text ``text`` or ``pattern``, a missing field, a non-text case label, or a
  pattern that does not compile in the dialect below raises
  :class:`~ksm.security_models.ModelError` ("runs incorrectly" → denied).
* Patterns are compiled once and cached (:func:`compile_pattern`, LRU, keyed by the
  pattern and the dialect options).  :func:`pattern_problem` tells a build-time
  checker why a pattern is refused.

Dialect (KSM's is **unconfirmed**)
----------------------------------
The docs list literals, metacharacters, character classes, quantifiers and
anchors, but we could not read the exact table.  We evaluate with Python's ``re``
(``re.ASCII``: ``\\d \\w \\s`` are ASCII classes) after a small translation, and
with :data:`STRICT_DIALECT` (default ``True``) we refuse constructs outside the
part common to POSIX ERE and ECMAScript:

* accepted: literals; ``\\`` + any non-alphanumeric character (``\\ `` and
  ``\\!`` as in the docs' example); ``\\t \\n \\r \\f \\v``, ``\\xHH``;
  ``\\d \\w \\s \\D \\W \\S \\b \\B``; ``.``; ``^``; ``$``; ``|``; ``( )``;
  bracket expressions with ranges, negation and the POSIX classes
  ``[:alpha:]`` etc. (translated to ASCII sets); quantifiers ``* + ? {n} {n,}
  {n,m}``; a lazy ``?`` after a quantifier (it cannot change *whether* a text
  matches).
* refused (strict): every ``(?...)`` group (non-capturing, look-around, named,
  inline flags, comments, conditionals, atomic), back-references ``\\1``..,
  other letter escapes (``\\A \\Z \\z \\u \\N \\g``...), possessive quantifiers
  (``a*+``), POSIX ``[= =]`` / ``[. .]``.  With ``STRICT_DIALECT = False`` those
  are handed to Python ``re`` as written.
* ``$`` matches only at the very end of the text (translated to ``\\Z``): Python's
  ``$`` also matches before a final newline, which neither POSIX nor ECMAScript
  does and which would let ``"abc\\n"`` pass ``^abc$``.
* ``.`` does not match a newline unless :data:`DOT_MATCHES_NEWLINE` is ``True``
  (ECMAScript reading; POSIX ``regcomp`` without ``REG_NEWLINE`` would match it).
* Inside brackets a backslash escapes (ECMAScript/Python), unlike POSIX where it is
  literal.
* Text is matched as Unicode code points, not bytes.

Open points (not stated by the docs; our choices)
-------------------------------------------------
1. Full match or search: :data:`FULL_MATCH` = ``True`` → the *whole* text must
   match.  The 1.0 page validates digits with ``"^[0-9]*$"``; the 1.4 page writes
   the same check as ``"[0-9]*"``, which would accept every text if ``match``
   searched; the 0.0 ``select`` example pads its patterns with ``.*`` as one does
   for a whole-text matcher.  Explicit anchors stay harmless.  Set
   ``FULL_MATCH = False`` for search semantics.
2. Several ``select`` patterns matching: the first in textual order wins.
3. Dialect: above (:data:`STRICT_DIALECT`, :data:`DOT_MATCHES_NEWLINE`).
4. ``pattern`` given at run time (not a literal): accepted and compiled on first
   use; "statically defined" suggests nk requires a literal.
5. Catastrophic backtracking: Python's engine is backtracking; a policy pattern
   such as ``(a+)+b`` on a long text can be slow (a DFA-based KSM would not be).

Symbolic encoding
-----------------
:func:`z3_regex` turns a policy pattern into a Z3 regular expression over
``z3.StringSort()`` accepting exactly the texts :func:`match` accepts under the
current :data:`FULL_MATCH`, :data:`STRICT_DIALECT` and :data:`DOT_MATCHES_NEWLINE`;
:func:`z3_match` is ``z3.InRe(text, z3_regex(pattern))``.  Encoded: literals,
escapes, ``.``, bracket expressions (ranges, negation, POSIX classes) and
``\\d \\w \\s`` with their negations (ASCII, as at run time), ``|``, groups,
every quantifier (a lazy one accepts the same texts), and the anchors ``^`` / ``$``
wherever they stand: what precedes a ``^`` in the match must match the empty text,
and likewise what follows a ``$`` (so ``^a|b$`` and ``a*^b`` are exact).  A
repetition of a part that contains an anchor is unrolled, so its finite bounds
must not exceed 4.  Search semantics (``FULL_MATCH = False``) wraps the unanchored
sides with ``.*``.  Limit: Z3's characters are the code points ``0..0x2FFFF`` (its
default ``encoding=unicode``; ``bmp``/``ascii`` give ``0xFFFF``/``0xFF``), so
complemented sets (``[^...]``, ``.``, ``\\D``...) stop there and texts with
higher characters cannot be expressed at all (:func:`z3_text_value` refuses
them).  Raises :class:`~ksm.security_models.symbolic.NotEncoded`: ``\\b \\B``,
such a repetition with larger bounds, characters above that range written in the
pattern, and - with ``STRICT_DIALECT = False`` only - back-references,
look-around, conditionals, atomic groups, possessive quantifiers and the
``i``/``m`` flags.  A pattern the dialect refuses raises
:class:`~ksm.security_models.ModelError`, as at run time.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, ClassVar
from collections.abc import Callable, Mapping, Sequence

import z3

try:                                    # Python 3.11+
    from re import _constants as _sre_c
    from re import _parser as _sre_parse
except ImportError:                     # Python 3.10
    import sre_constants as _sre_c      # type: ignore[no-redef]
    import sre_parse as _sre_parse      # type: ignore[no-redef]

from . import ModelError
from .base import StatelessModel, describe
from .symbolic import NotEncoded, text_from_z3, z3_max_char, z3_text_value  # noqa: F401 (re-exported)
from policy_lang.regex_dialect import translate
from policy_lang.regex_dialect import pattern_problem as dialect_problem

#: ``True`` (default): the whole text must match the pattern; ``False``: search.
#: Why whole-text: KCE 1.0's Regex page validates digits with ``"^[0-9]*$"``, and
#: the 1.4 page writes the same check as ``"[0-9]*"`` - a pattern that would accept
#: every text under search semantics, so the later example only makes sense if the
#: match must cover the whole text.  The 0.0 ``select`` example pads its patterns with
#: ``.*`` (``"^hello .*"``, ``".*world$"``), which is what a whole-text matcher needs.
#: Explicit anchors remain harmless.
FULL_MATCH = True
#: Refuse constructs outside the POSIX ERE / ECMAScript common part (see the docstring).
STRICT_DIALECT = True
#: Whether ``.`` matches a newline.
DOT_MATCHES_NEWLINE = False
#: How many compiled patterns the cache keeps.
CACHE_SIZE = 4096

__all__ = ["RegexModel", "FULL_MATCH", "STRICT_DIALECT", "DOT_MATCHES_NEWLINE",
           "compile_pattern", "pattern_problem", "translate", "match", "select_index"]

@functools.lru_cache(maxsize=CACHE_SIZE)
def _compiled(pattern: str, strict: bool, dotall: bool) -> re.Pattern | str:
    """A compiled pattern, or the reason it does not compile (cached either way)."""
    problem = dialect_problem(pattern, strict, dotall)
    if problem is not None:
        return problem
    return re.compile(translate(pattern, strict), re.ASCII | (re.DOTALL if dotall else 0))


def compile_pattern(pattern: Any) -> re.Pattern:
    """The compiled form of a policy pattern; a bad or non-text pattern runs incorrectly."""
    if not isinstance(pattern, str):
        raise ModelError(f"a regular expression must be text, got {describe(pattern)}")
    c = _compiled(pattern, bool(STRICT_DIALECT), bool(DOT_MATCHES_NEWLINE))
    if isinstance(c, str):
        raise ModelError(f"bad regular expression {pattern!r}: {c}")
    return c


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is refused under the current dialect options, or None."""
    c = _compiled(pattern, bool(STRICT_DIALECT), bool(DOT_MATCHES_NEWLINE))
    return c if isinstance(c, str) else None


def _matches(compiled: re.Pattern, text: str) -> bool:
    return (compiled.fullmatch(text) if FULL_MATCH else compiled.search(text)) is not None


def _text_of(method: str, arg: Any, fields: tuple[str, ...]) -> str:
    if not isinstance(arg, Mapping):
        raise ModelError(f"re.{method} takes {{{', '.join(fields)}}}, got {describe(arg)}")
    missing = [f for f in fields if f not in arg]
    if missing:
        raise ModelError(f"re.{method}: missing field(s) {', '.join(missing)}")
    text = arg["text"]
    if not isinstance(text, str):
        raise ModelError(f"re.{method}: `text` must be text, got {describe(text)}")
    return text


def match(arg: Any) -> bool:
    """``re.match {text, pattern}``."""
    text = _text_of("match", arg, ("text", "pattern"))
    return _matches(compile_pattern(arg["pattern"]), text)


def _select(arg: Any) -> str:
    return _text_of("select", arg, ("text",))


def select_index(text: Any, cases: Sequence[Any]) -> int | None:
    """First case (textual order; ``None`` = ``_`` skipped) whose pattern matches ``text``."""
    if not isinstance(text, str):
        raise ModelError(f"re.select: `text` must be text, got {describe(text)}")
    compiled = [None if case is None else compile_pattern(case) for case in cases]
    for i, c in enumerate(compiled):
        if c is not None and _matches(c, text):
            return i
    return None


class RegexModel(StatelessModel):
    name: ClassVar[str] = "Regex"
    _expressions: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"match": match, "select": _select}

    def choose(self, obj, state: Any, method: str, arg: Any, cases: Sequence[Any]) -> int | None:
        if method == "select":
            return select_index(_select(arg), cases)
        return super().choose(obj, state, method, arg, cases)


# ---- symbolic (Z3) encoding ------------------------------------------------------
#
# Why a backtracking engine's acceptance is a regular language here: without
# back-references, look-around, atomic groups and possessive quantifiers (the strict
# dialect refuses them all), Python's ``re`` tries every way to match before it gives
# up, so ``fullmatch`` accepts exactly the language of the pattern and ``search``
# accepts exactly the texts with a substring in it.  Greedy or lazy only changes
# *which* match is found, never *whether* one is.
#
# Anchors are zero-width, so they are not characters of the language.  Every
# sub-pattern is therefore encoded as up to four regular expressions, one per
# "anchoring": does a ``^`` occur in the words it matches (then the match starts at
# the text start *and* whatever precedes that ``^`` in the match is empty), does a
# ``$`` occur (then the match ends at the text end and whatever follows it is empty).
# Concatenation, alternation and repetition combine those cases exactly (see
# :func:`_concat` and :func:`_star`); the top level then knows which cases must
# start/end at the text ends and wraps the others with ``.*`` for search semantics.

#: Highest code point of each Z3 string ``encoding`` parameter value.
#: Largest repetition bound unrolled when the repeated part contains an anchor
#: (each copy multiplies the anchoring cases; plain repetitions use ``z3.Loop``).
_ANCHORED_REPEAT_LIMIT = 4

#: ``\d \w \s`` as the runtime reads them (``re.ASCII``): inclusive code point ranges.
_ASCII_CATEGORIES: dict[Any, tuple[tuple[int, int], ...]] = {
    _sre_c.CATEGORY_DIGIT: ((0x30, 0x39),),
    _sre_c.CATEGORY_WORD: ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
    _sre_c.CATEGORY_SPACE: ((0x09, 0x0D), (0x20, 0x20)),
}
_NEGATED_CATEGORIES = {
    _sre_c.CATEGORY_NOT_DIGIT: _sre_c.CATEGORY_DIGIT,
    _sre_c.CATEGORY_NOT_WORD: _sre_c.CATEGORY_WORD,
    _sre_c.CATEGORY_NOT_SPACE: _sre_c.CATEGORY_SPACE,
}
#: Parser flags the encoding honours; any other (``i``, ``m``, ``L``, ``u``) is refused.
_HANDLED_FLAGS = _sre_c.SRE_FLAG_ASCII | _sre_c.SRE_FLAG_DOTALL | _sre_c.SRE_FLAG_VERBOSE
#: Constructs only the non-strict dialect lets through, and why they are not encoded.
_UNENCODED_OPS: dict[Any, str] = {
    _sre_c.GROUPREF: "back-references are not regular",
    _sre_c.GROUPREF_EXISTS: "conditional groups depend on back-references",
    _sre_c.ASSERT: "look-around assertions are not encoded",
    _sre_c.ASSERT_NOT: "look-around assertions are not encoded",
}
for _name, _why in (("ATOMIC_GROUP", "atomic groups change acceptance (no backtracking into them)"),
                    ("POSSESSIVE_REPEAT", "possessive quantifiers change acceptance")):
    if hasattr(_sre_c, _name):          # Python 3.11+
        _UNENCODED_OPS[getattr(_sre_c, _name)] = _why
del _name, _why

_Anchoring = tuple[bool, bool]          # (contains ``^``, contains ``$``)
_FREE: _Anchoring = (False, False)


@dataclass(frozen=True, eq=False)
class _Part:
    """The words of one anchoring case: a Z3 regex, and whether it accepts ``""``.

    Nullability is tracked on the Python side because concatenating with an anchor
    needs it statically ("what precedes this ``^`` must be empty").
    """

    re: z3.ReRef
    nullable: bool


_Lang = dict[_Anchoring, _Part]         # a missing case has no words


def _re_sort() -> z3.ReSortRef:
    return z3.ReSort(z3.StringSort())


def _empty_word() -> _Part:
    return _Part(z3.Re(z3_text_value("")), True)


def _epsilon() -> _Lang:
    """The language holding only the empty word, with no anchor."""
    return {_FREE: _empty_word()}


def _word(text: str) -> _Lang:
    """The language holding only ``text`` (non-empty), with no anchor."""
    return {_FREE: _Part(z3.Re(z3_text_value(text)), False)}


def _union_re(res: Sequence[z3.ReRef]) -> z3.ReRef:
    if not res:
        return z3.Empty(_re_sort())
    return res[0] if len(res) == 1 else z3.Union(*res)


def _concat_re(a: _Part, b: _Part) -> _Part:
    return _Part(z3.Concat(a.re, b.re), a.nullable and b.nullable)


def _add(lang: _Lang, key: _Anchoring, part: _Part) -> None:
    """``lang[key] |= part``."""
    old = lang.get(key)
    lang[key] = part if old is None else _Part(z3.Union(old.re, part.re), old.nullable or part.nullable)


def _union(*langs: _Lang) -> _Lang:
    out: _Lang = {}
    for lang in langs:
        for key, part in lang.items():
            _add(out, key, part)
    return out


def _concat(x: _Lang, y: _Lang) -> _Lang:
    """Words of ``x`` followed by words of ``y``, keeping the anchors' constraints exact.

    A ``$`` in the left word forces the right word to be empty; a ``^`` in the right
    word forces the left word to be empty.  The anchorings add up.
    """
    out: _Lang = {}
    for (xb, xe), xp in x.items():
        for (yb, ye), yp in y.items():
            key = (xb or yb, xe or ye)
            if xe and yb:               # `$` then `^`: both words empty
                if xp.nullable and yp.nullable:
                    _add(out, key, _empty_word())
            elif xe:                    # nothing after a `$`
                if yp.nullable:
                    _add(out, key, xp)
            elif yb:                    # nothing before a `^`
                if xp.nullable:
                    _add(out, key, yp)
            else:
                _add(out, key, _concat_re(xp, yp))
    return out


def _star(x: _Lang) -> _Lang:
    """Zero or more words of ``x`` in a row.

    Write ``A`` for the words of ``x`` without anchor, ``S`` / ``E`` / ``SE`` for those
    holding a ``^`` / a ``$`` / both.  Everything before the iteration holding the
    last ``^`` is empty, everything after the one holding the first ``$`` is empty,
    and a ``$`` iteration before a ``^`` one empties the whole word.  So an anchored
    iteration contributes at most once, at an end: the four cases are ``A*``,
    ``S·A*``, ``A*·E`` and ``SE | S·A*·E``.
    """
    free = x.get(_FREE)
    a_star: _Lang = {_FREE: _Part(z3.Star(free.re), True)} if free else _epsilon()
    only = {key: {key: part} for key, part in x.items()}
    starts, ends = only.get((True, False), {}), only.get((False, True), {})
    return _union(a_star, _concat(starts, a_star), _concat(a_star, ends),
                  only.get((True, True), {}), _concat(_concat(starts, a_star), ends))


def _power(x: _Lang, n: int) -> _Lang:
    out = _epsilon()
    for _ in range(n):
        out = _concat(out, x)
    return out


def _repeat(x: _Lang, lo: int, hi: int | None) -> _Lang:
    """``x{lo,hi}`` (``hi`` None: unbounded); exact, or NotEncoded for large anchored bounds."""
    if not x:                           # no words at all
        return _epsilon() if lo == 0 else {}
    if hi == 0:
        return _epsilon()
    if set(x) == {_FREE}:               # no anchor inside: plain Z3 repetition
        r, nullable = x[_FREE].re, x[_FREE].nullable
        if hi is None:
            if lo == 0:
                return {_FREE: _Part(z3.Star(r), True)}
            if lo == 1:
                return {_FREE: _Part(z3.Plus(r), nullable)}
            return {_FREE: _Part(z3.Concat(z3.Loop(r, lo, lo), z3.Star(r)), nullable)}
        if lo == hi == 1:
            return x
        if lo == 0 and hi == 1:
            return {_FREE: _Part(z3.Option(r), True)}
        return {_FREE: _Part(z3.Loop(r, lo, hi), lo == 0 or nullable)}
    if lo > _ANCHORED_REPEAT_LIMIT or (hi is not None and hi > _ANCHORED_REPEAT_LIMIT):
        raise NotEncoded(f"a repetition bound above {_ANCHORED_REPEAT_LIMIT} on a part "
                         f"containing an anchor is not encoded")
    head = _power(x, lo)
    if hi is None:
        return _concat(head, _star(x))
    return _concat(head, _power(_union(_epsilon(), x), hi - lo))


def _intervals_re(intervals: Sequence[tuple[int, int]]) -> z3.ReRef:
    """A one-character regex for a set of inclusive code point ranges (sorted, disjoint)."""
    return _union_re([z3.Range(z3_text_value(chr(lo)), z3_text_value(chr(hi))) for lo, hi in intervals])


def _normalise(intervals: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _complement(intervals: Sequence[tuple[int, int]], top: int) -> list[tuple[int, int]]:
    """``0..top`` minus the (normalised) ranges: Z3's whole alphabet stops at ``top``."""
    out, nxt = [], 0
    for lo, hi in intervals:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = max(nxt, hi + 1)
    if nxt <= top:
        out.append((nxt, top))
    return out


class _Encoder:
    """Walks the tree of ``re``'s parser (the runtime's own reading of the pattern)."""

    def __init__(self, top: int) -> None:
        self.top = top

    def code(self, c: int) -> int:
        """A character written in the pattern; refused if Z3 cannot hold it."""
        if c > self.top:
            raise NotEncoded(f"the pattern mentions U+{c:04X}, beyond Z3's characters "
                             f"(0..U+{self.top:04X})")
        return c

    def chars(self, intervals: Sequence[tuple[int, int]]) -> _Lang:
        return {_FREE: _Part(_intervals_re(_normalise(intervals)), False)}

    def sequence(self, items: Any, dotall: bool) -> _Lang:
        """A concatenation (the parser's list of items); ``dotall``: does ``.`` take "\\n"."""
        out = _epsilon()
        literal: list[str] = []         # a run of literals becomes one Z3 string
        for op, av in items:
            if op == _sre_c.LITERAL:
                literal.append(chr(self.code(av)))
                continue
            if literal:
                out = _concat(out, _word("".join(literal)))
                literal = []
            out = _concat(out, self.item(op, av, dotall))
        return _concat(out, _word("".join(literal))) if literal else out

    def item(self, op: Any, av: Any, dotall: bool) -> _Lang:
        c = _sre_c
        if op == c.NOT_LITERAL:
            return self.chars(_complement([(self.code(av), av)], self.top))
        if op == c.ANY:                 # `.`: every character, but "\n" unless dotall
            return self.chars([(0, self.top)] if dotall else _complement([(10, 10)], self.top))
        if op == c.IN:
            return self.chars(self.char_class(av))
        if op == c.BRANCH:
            return _union(*(self.sequence(alt, dotall) for alt in av[1]))
        if op == c.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if (add_flags | del_flags) & ~_HANDLED_FLAGS:
                raise NotEncoded("inline flags other than `s`, `a`, `x` are not encoded")
            if add_flags & c.SRE_FLAG_DOTALL:
                dotall = True
            if del_flags & c.SRE_FLAG_DOTALL:
                dotall = False
            return self.sequence(sub, dotall)
        if op == c.MAX_REPEAT or op == c.MIN_REPEAT:   # lazy accepts the same texts
            lo, hi, sub = av
            return _repeat(self.sequence(sub, dotall), lo, None if hi == c.MAXREPEAT else hi)
        if op == c.AT:
            if av == c.AT_BEGINNING or av == c.AT_BEGINNING_STRING:
                return {(True, False): _empty_word()}
            if av == c.AT_END_STRING:   # the dialect's `$`
                return {(False, True): _empty_word()}
            if av == c.AT_BOUNDARY or av == c.AT_NON_BOUNDARY:
                raise NotEncoded("word boundaries `\\b` `\\B` are not encoded")
            raise NotEncoded(f"the anchor {av} is not encoded (the dialect writes `$` as `\\Z`)")
        if op in _UNENCODED_OPS:
            raise NotEncoded(_UNENCODED_OPS[op])
        raise NotEncoded(f"the regex construct {op} is not encoded")

    def char_class(self, items: Any) -> list[tuple[int, int]]:
        """The code point ranges of a bracket expression (or ``\\d``-style escape)."""
        c = _sre_c
        negate = False
        ranges: list[tuple[int, int]] = []
        for op, av in items:
            if op == c.NEGATE:
                negate = True
            elif op == c.LITERAL:
                ranges.append((self.code(av), av))
            elif op == c.RANGE:
                ranges.append((self.code(av[0]), self.code(av[1])))
            elif op == c.CATEGORY and av in _ASCII_CATEGORIES:
                ranges.extend(_ASCII_CATEGORIES[av])
            elif op == c.CATEGORY and av in _NEGATED_CATEGORIES:
                ranges.extend(_complement(_ASCII_CATEGORIES[_NEGATED_CATEGORIES[av]], self.top))
            else:
                raise NotEncoded(f"the class item {op} {av} is not encoded")
        ranges = _normalise(ranges)
        return _complement(ranges, self.top) if negate else ranges


@functools.lru_cache(maxsize=CACHE_SIZE)
def _z3_regex_cached(pattern: str, full: bool, strict: bool, dotall: bool,
                     top: int) -> z3.ReRef | NotEncoded:
    """The encoding, or the NotEncoded to raise (cached either way, like :func:`_compiled`)."""
    flags = re.ASCII | (re.DOTALL if dotall else 0)
    tree = _sre_parse.parse(translate(pattern, strict), flags)
    if tree.state.flags & ~_HANDLED_FLAGS:
        return NotEncoded("inline flags other than `s`, `a`, `x` are not encoded")
    try:
        lang = _Encoder(top).sequence(tree, bool(tree.state.flags & re.DOTALL))
    except NotEncoded as exc:
        return exc
    anything = z3.Full(_re_sort())
    cases = []
    for (at_start, at_end), part in lang.items():
        r = part.re
        if not full:                    # search: the match may sit anywhere unanchored
            if not at_start:
                r = z3.Concat(anything, r)
            if not at_end:
                r = z3.Concat(r, anything)
        cases.append(r)
    return _union_re(cases)


def z3_regex(pattern: str) -> z3.ReRef:
    """Z3 regex (over ``z3.StringSort()``) accepting exactly the texts :func:`match` accepts.

    Reads :data:`FULL_MATCH`, :data:`STRICT_DIALECT` and :data:`DOT_MATCHES_NEWLINE`
    at call time, like the runtime, and caches per pattern and options.  Raises
    :class:`~ksm.security_models.ModelError` for a pattern the dialect refuses (the
    runtime would run incorrectly, so no Boolean describes it) and
    :class:`NotEncoded` for a construct the encoding cannot express exactly (module
    docstring, "Symbolic encoding").  Expressions live in Z3's main context.
    """
    compile_pattern(pattern)            # same refusals, same message as at run time
    out = _z3_regex_cached(pattern, bool(FULL_MATCH), bool(STRICT_DIALECT),
                           bool(DOT_MATCHES_NEWLINE), z3_max_char())
    if isinstance(out, NotEncoded):
        raise NotEncoded(*out.args)
    return out


def z3_match(text: z3.SeqRef | str, pattern: str) -> z3.BoolRef:
    """``re.match {text, pattern}`` as a Z3 formula: ``z3.InRe(text, z3_regex(pattern))``.

    A Python ``text`` is converted with :func:`z3_text_value` (not ``z3.StringVal``,
    which misreads backslashes).
    """
    if isinstance(text, str):
        text = z3_text_value(text)
    return z3.InRe(text, z3_regex(pattern))


__all__ += ["z3_regex", "z3_match", "z3_text_value", "text_from_z3", "z3_max_char"]
