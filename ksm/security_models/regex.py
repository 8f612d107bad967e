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
"""
from __future__ import annotations

import functools
import re
from typing import Any, ClassVar
from collections.abc import Callable, Mapping, Sequence

from . import ModelError
from .base import StatelessModel, describe
from policy_lang.regex_dialect import PatternError, translate
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
