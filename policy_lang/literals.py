"""Integer literals too long to convert: found by their digits, before ``int()``.

Why a check of its own: Python refuses to convert a decimal string of more than
4,300 digits (``ValueError``, a guard against quadratic-time conversion), and even
below that a long literal costs time and prints as a wall of digits.  No PSL, IDL,
property or scenario integer is wider than 64 bits, so a literal that cannot fit in
:data:`MAX_INT_BITS` bits is out of range whatever its digits are, and every reader
of a user's integer asks :func:`oversized_int_digits` first and reports the literal
("integer literal out of range: N digits") instead of converting it.
"""
from __future__ import annotations

import math

MAX_INT_BITS = 128

_PREFIX_BASE = {"0x": 16, "0o": 8, "0b": 2}


def _max_digits(base: int) -> int:
    """Digits of the largest literal in ``base`` that can still fit in MAX_INT_BITS bits."""
    return math.ceil(MAX_INT_BITS / math.log2(base))


_SHORT = min(_max_digits(base) for base in (2, 8, 10, 16))


def oversized_int_digits(text: str) -> int | None:
    """The number of digits of ``text`` when it is an integer literal too long to fit
    in :data:`MAX_INT_BITS` bits, else None (convert it as usual).

    ``text`` is the literal as written: a sign, a ``0x``/``0o``/``0b`` prefix,
    ``_`` separators and leading zeros are allowed (YAML accepts them all) and do not
    count, so ``0000…1`` is a small number however many zeros it has.  ``text``
    must already be known to be an integer literal (a lexer or YAML's resolver said
    so): this counts characters, it does not validate them.
    """
    if len(text) <= _SHORT:
        return None         # fewer characters than the shortest oversized literal has digits
    body = text.strip().lstrip("+-").replace("_", "")
    base = _PREFIX_BASE.get(body[:2].lower(), 10)
    if base != 10:
        body = body[2:]
    body = body.replace(":", "")   # YAML 1.1 base-60 integers (1:30:00): every digit counts
    significant = body.lstrip("0")
    if len(significant) <= _max_digits(base):
        return None
    return len(significant)


def out_of_range_message(digits: int) -> str:
    """The one wording every reader uses for a literal :func:`oversized_int_digits` refused."""
    return f"integer literal out of range: {digits} digits"


def int_value(text: str) -> int:
    """The value of a decimal, ``0x``, ``0o`` or ``0b`` literal that :func:`oversized_int_digits`
    let through (no sign: the grammars keep the minus apart).

    Leading zeros are dropped before ``int()``, which counts them against its
    4,300-digit limit although they add nothing.
    """
    body = text.replace("_", "")
    base = _PREFIX_BASE.get(body[:2].lower(), 10)
    if base != 10:
        body = body[2:]
    return int(body.lstrip("0") or "0", base)
