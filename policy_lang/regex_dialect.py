"""The regular-expression dialect policies are written in, translated to Python ``re``.

Why here and not in the Regex model: the resolver must refuse a pattern at build
time with the same rules the runtime applies (SOL003), and the front end never
imports the back ends.  The dialect itself (what is accepted, how ``$`` and
brackets are read) is described in :mod:`ksm.security_models.regex`.
"""
from __future__ import annotations

import re

__all__ = ["PatternError", "translate", "pattern_problem"]

_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v", "blank": " \\t", "xdigit": "0-9A-Fa-f",
    "cntrl": "\\x00-\\x1f\\x7f", "print": "\\x20-\\x7e", "graph": "\\x21-\\x7e",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "word": "a-zA-Z0-9_",
}
_CLASS_ESCAPES = frozenset("dwsDWS")
_CTRL_ESCAPES = frozenset("tnrfv")
_QUANT_RE = re.compile(r"\{(\d+)(,(\d*))?\}")
# Python's re refuses counts past 2**32 - 1 (10 digits); checked before int(), which
# fails outright past 4,300 digits.
_MAX_REPEAT_DIGITS = 10
_HEX = frozenset("0123456789abcdefABCDEF")


class PatternError(ValueError):
    """A pattern the dialect refuses (raised by :func:`translate`)."""


def _escape(p: str, i: int, strict: bool, in_class: bool) -> tuple[str, int]:
    """Translate the escape starting at ``p[i] == '\\\\'``; returns (text, next index)."""
    if i + 1 >= len(p):
        raise PatternError("pattern ends with a lone backslash")
    d = p[i + 1]
    if not (d.isalnum() or d == "_"):
        return re.escape(d) if d != "\\" else "\\\\", i + 2
    if d in _CLASS_ESCAPES or d in _CTRL_ESCAPES:
        return "\\" + d, i + 2
    if d in "bB" and not in_class:
        return "\\" + d, i + 2
    if d == "x":
        hh = p[i + 2:i + 4]
        if len(hh) == 2 and all(c in _HEX for c in hh):
            return "\\x" + hh, i + 4
        raise PatternError(f"`\\x` needs two hex digits at offset {i}")
    if strict:
        what = "back-references are" if d.isdigit() else f"the escape `\\{d}` is"
        raise PatternError(f"{what} not supported (offset {i})")
    return "\\" + d, i + 2


def _bracket(p: str, i: int, strict: bool) -> tuple[str, int]:
    """Translate the bracket expression starting at ``p[i] == '['``."""
    n = len(p)
    out = ["["]
    j = i + 1
    if j < n and p[j] == "^":
        out.append("^")
        j += 1
    if j < n and p[j] == "]":          # a leading ']' is literal
        out.append("\\]")
        j += 1
    while j < n:
        c = p[j]
        if c == "]":
            out.append("]")
            return "".join(out), j + 1
        if c == "\\":
            text, j = _escape(p, j, strict, in_class=True)
            out.append(text)
            continue
        if c == "[" and j + 1 < n and p[j + 1] in ":=.":
            kind = p[j + 1]
            end = p.find(kind + "]", j + 2)
            if end < 0:
                raise PatternError(f"unterminated `[{kind}` in a bracket expression at offset {j}")
            name = p[j + 2:end]
            if kind == ":" and name in _POSIX_CLASSES:
                out.append(_POSIX_CLASSES[name])
                j = end + 2
                continue
            if kind == ":":
                raise PatternError(f"unknown character class `[:{name}:]`")
            if strict:
                raise PatternError(f"`[{kind}{name}{kind}]` is not supported")
            out.append(re.escape(p[j:end + 2]))
            j = end + 2
            continue
        if c in "[&~|":                 # literal here; escaped so Python warns about nothing
            out.append("\\" + c)
        else:
            out.append(c)
        j += 1
    raise PatternError(f"unterminated bracket expression at offset {i}")


def translate(pattern: str, strict: bool = True) -> str:
    """The Python ``re`` source for a policy pattern; raises :class:`PatternError`.

    ``strict`` refuses constructs outside the POSIX ERE / ECMAScript common part.
    """
    p = pattern
    out: list[str] = []
    i, n = 0, len(p)
    after_quant = False
    while i < n:
        c = p[i]
        if c in "*+?" or (c == "{" and _QUANT_RE.match(p, i)):
            if c == "{":
                m = _QUANT_RE.match(p, i)
                assert m is not None
                lo, hi = m.group(1), m.group(3)
                if max(len(lo.lstrip("0")), len((hi or "").lstrip("0"))) > _MAX_REPEAT_DIGITS:
                    raise PatternError(f"repetition count too large at offset {i}")
                if hi and int(hi) < int(lo):
                    raise PatternError(f"bad repetition `{m.group(0)}` at offset {i}")
                token, nxt = m.group(0), m.end()
            else:
                token, nxt = c, i + 1
            if after_quant:
                if token == "?":       # lazy: cannot change whether a text matches
                    out.append("?")
                    after_quant = False
                    i = nxt
                    continue
                if strict:
                    raise PatternError(f"quantifier `{token}` after a quantifier at offset {i}")
            out.append(token)
            after_quant = True
            i = nxt
            continue
        after_quant = False
        if c == "\\":
            text, i = _escape(p, i, strict, in_class=False)
            out.append(text)
            continue
        if c == "[":
            text, i = _bracket(p, i, strict)
            out.append(text)
            continue
        if c == "(":
            if p.startswith("(?", i) and strict:
                raise PatternError(f"`(?...)` groups are not supported (offset {i})")
            out.append("(")
        elif c == "$":
            out.append(r"\Z")
        elif c in "^.|)":
            out.append(c)
        elif c == "{":
            out.append("\\{")
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def pattern_problem(pattern: str, strict: bool = True, dotall: bool = False) -> str | None:
    """Why ``pattern`` is refused by the dialect (or by Python ``re``), or None."""
    try:
        re.compile(translate(pattern, strict), re.ASCII | (re.DOTALL if dotall else 0))
    except (PatternError, re.error) as exc:
        return str(exc)
    except (OverflowError, RecursionError, ValueError) as exc:
        return f"pattern too large or too deeply nested ({type(exc).__name__})"
    return None
