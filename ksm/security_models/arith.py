"""Math: integer arithmetic, bitwise operators, ``neg``/``abs``/``sum``/``product`` and casts.

(The module is ``arith`` because ``math`` would shadow the standard library.)

What the model does (KCE docs, "Math security model", 1.0-1.4; our own words):

* Operators on ``Number`` returning ``Number``: ``+``, ``-``, ``*`` (all versions);
  ``|`` (bitwise OR), ``&`` (bitwise AND), ``~`` (bitwise complement) from 1.3.
* ``math.neg (<Signed>)`` changes the sign, ``math.abs (<Signed>)`` is the absolute
  value; both return ``Signed``.
* ``math.sum (<List<Number>>)`` adds the list (``0`` for ``[]``);
  ``math.product (<List<Number>>)`` multiplies it (``1`` for ``[]``).
* 1.3+: integer casts ``math.uint64 (<Unsigned>)``, ``math.uint32 (<UInt8 | UInt16
  | UInt32>)``, ``math.uint16 (<UInt8 | UInt16>)``, ``math.sint64 (<Signed | ...>)``
  and (names unconfirmed) ``uint8``, ``sint8``, ``sint16``, ``sint32``.
* No division or remainder.  One pre-created object ``math``; no parameters, no
  audit, no rules.

Values are Python ``int`` (never ``bool``: ``true + 1`` runs incorrectly).  Every
function raises :class:`~ksm.security_models.ModelError` ("runs incorrectly") on a
non-integer operand.

Overflow (:data:`OVERFLOW`)
---------------------------
The docs are silent on overflow and on the width of a result.  Values carry no
width at run time here, so the checks are against the 64-bit envelope
``-2**63 .. 2**64-1`` (every value of every PSL integer type lies in it):

* ``"error"`` (default): an operand or result outside the envelope runs
  incorrectly — the event is denied.  ``neg``/``abs`` return ``Signed``, so their
  argument and result must lie in ``-2**63 .. 2**63-1`` (``math.abs (-2**63)`` runs
  incorrectly).
* ``"wrap64"``: an out-of-envelope result is reduced modulo ``2**64`` into
  ``0 .. 2**64-1`` (``neg``/``abs`` wrap into the signed range).  In-envelope
  results are untouched, so e.g. a SInt64 sum that reaches ``2**63`` is *not*
  wrapped — widths are unknown.
* ``"unbounded"``: mathematical integers, no checks.

``sum``/``product`` are left folds of ``+``/``*``; every partial result is checked
(``[2**64-1, 1, -1]`` overflows at the second step).

Bitwise operators
-----------------
Defined on 64-bit two's complement: ``a & b`` and ``a | b`` are Python's results,
which equal the 64-bit two's-complement results read back as signed whenever an
operand is negative (a negative operand can only be a signed value) and as unsigned
otherwise; for operands in the envelope they never leave it.  ``~x`` is the 64-bit
complement: ``2**64-1-x`` for ``x >= 0`` (read as ``UInt64``) and ``-x-1`` for
``x < 0`` (read as ``SInt64``).

Casts
-----
A cast returns its argument unchanged when it lies in the target type's range and
runs incorrectly otherwise (:data:`CAST_OUT_OF_RANGE` = ``"error"``).  The
documented casts are widening (``uint16`` takes ``UInt8 | UInt16``), so a value
outside the target range means nk would have rejected the call at build time; we
never truncate silently unless :data:`CAST_OUT_OF_RANGE` is ``"truncate"``
(two's-complement truncation to the target width).

Open points (not stated by the docs; our choices)
-------------------------------------------------
1. Overflow behaviour: :data:`OVERFLOW` (above), default ``"error"``.
2. Result width of mixed-width operations: unknown; we use the 64-bit envelope, so
   a ``UInt8`` sum of ``200 + 100`` gives ``300`` (no 8-bit wrap, no error).
3. ``~`` width: 64 bits (``~1`` is ``2**64-2`` even for a ``UInt8`` operand); under
   ``&`` with a narrower value the low bits agree with any width.
4. Bitwise operators on negative numbers: 64-bit two's complement (above).
5. Unary ``-`` (the parser accepts ``-x`` on any expression; the docs list only
   ``neg``): the general arithmetic negation ``0 - x`` with the envelope check, so
   ``-(2**63)`` is fine and ``-(2**64-1)`` overflows.
6. ``neg``/``abs`` of a value above ``2**63-1`` (not a ``Signed`` value) runs
   incorrectly.
7. Cast names ``uint8``, ``sint8``, ``sint16``, ``sint32``: unconfirmed; out-of-range
   casts: :data:`CAST_OUT_OF_RANGE` (above).
8. ``sum``/``product`` of a non-list or of a list with a non-integer runs
   incorrectly; partial results are checked (fold semantics).
"""
from __future__ import annotations

from typing import Any, ClassVar

import z3
from collections.abc import Callable, Mapping

from . import ModelError
from .base import StatelessModel, describe, is_number

#: ``"error"`` | ``"wrap64"`` | ``"unbounded"`` (see the module docstring).
OVERFLOW = "error"
#: ``"error"`` | ``"truncate"``: what a cast does with a value outside the target range.
CAST_OUT_OF_RANGE = "error"

MIN_VALUE = -(2 ** 63)          #: lowest value of any PSL integer type (SInt64)
MAX_VALUE = 2 ** 64 - 1         #: highest value of any PSL integer type (UInt64)
SIGNED_MIN = -(2 ** 63)
SIGNED_MAX = 2 ** 63 - 1
_MASK64 = 2 ** 64 - 1

#: cast name -> (lowest, highest, width, signed)
CASTS: dict[str, tuple[int, int, int, bool]] = {
    **{f"uint{w}": (0, 2 ** w - 1, w, False) for w in (8, 16, 32, 64)},
    **{f"sint{w}": (-(2 ** (w - 1)), 2 ** (w - 1) - 1, w, True) for w in (8, 16, 32, 64)},
}

__all__ = [
    "MathModel", "OPERATORS", "BINARY_OPERATORS", "UNARY_OPERATORS", "OVERFLOW", "CAST_OUT_OF_RANGE",
    "MIN_VALUE", "MAX_VALUE", "SIGNED_MIN", "SIGNED_MAX", "CASTS",
    "add", "sub", "mul", "bit_or", "bit_and", "bit_not", "negate", "neg", "abs_", "sum_", "product", "cast",
]


def _mode() -> str:
    mode = OVERFLOW
    if mode not in ("error", "wrap64", "unbounded"):
        raise ValueError(f"arith.OVERFLOW must be 'error', 'wrap64' or 'unbounded', not {mode!r}")
    return mode


def _operand(op: str, v: Any) -> int:
    if not is_number(v):
        raise ModelError(f"`{op}` takes integers, got {describe(v)}")
    if _mode() == "error" and not MIN_VALUE <= v <= MAX_VALUE:
        raise ModelError(f"`{op}`: operand {v} is outside the 64-bit range")
    return v


def _result(op: str, r: int) -> int:
    mode = _mode()
    if mode == "unbounded" or MIN_VALUE <= r <= MAX_VALUE:
        return r
    if mode == "wrap64":
        return r & _MASK64
    raise ModelError(f"`{op}` overflows the 64-bit range: {r}")


def _signed_result(op: str, r: int) -> int:
    mode = _mode()
    if mode == "unbounded" or SIGNED_MIN <= r <= SIGNED_MAX:
        return r
    if mode == "wrap64":
        return ((r - SIGNED_MIN) & _MASK64) + SIGNED_MIN
    raise ModelError(f"`{op}` overflows SInt64: {r}")


def add(a: Any, b: Any) -> int:
    return _result("+", _operand("+", a) + _operand("+", b))


def sub(a: Any, b: Any) -> int:
    return _result("-", _operand("-", a) - _operand("-", b))


def mul(a: Any, b: Any) -> int:
    return _result("*", _operand("*", a) * _operand("*", b))


def bit_or(a: Any, b: Any) -> int:
    return _result("|", _operand("|", a) | _operand("|", b))


def bit_and(a: Any, b: Any) -> int:
    return _result("&", _operand("&", a) & _operand("&", b))


def bit_not(a: Any) -> int:
    """``~x``: 64-bit complement (``2**64-1-x`` for ``x >= 0``, ``-x-1`` for ``x < 0``)."""
    x = _operand("~", a)
    return ~x if x < 0 else (~x) & _MASK64


def negate(a: Any) -> int:
    """Unary ``-x`` (``0 - x`` with the range check)."""
    return _result("-", -_operand("-", a))


def _signed_operand(method: str, v: Any) -> int:
    if not is_number(v):
        raise ModelError(f"math.{method} takes a Signed integer, got {describe(v)}")
    if _mode() == "error" and not SIGNED_MIN <= v <= SIGNED_MAX:
        raise ModelError(f"math.{method}: {v} is not a Signed (SInt64) value")
    return v


def neg(a: Any) -> int:
    return _signed_result("math.neg", -_signed_operand("neg", a))


def abs_(a: Any) -> int:
    return _signed_result("math.abs", abs(_signed_operand("abs", a)))


def _number_list(method: str, xs: Any) -> list[int]:
    if not isinstance(xs, (list, tuple)):
        raise ModelError(f"math.{method} takes a list of numbers, got {describe(xs)}")
    for x in xs:
        if not is_number(x):
            raise ModelError(f"math.{method}: list element {describe(x)} is not a number")
    return list(xs)


def sum_(xs: Any) -> int:
    acc = 0
    for x in _number_list("sum", xs):
        acc = add(acc, x)
    return acc


def product(xs: Any) -> int:
    acc = 1
    for x in _number_list("product", xs):
        acc = mul(acc, x)
    return acc


def cast(name: str, v: Any) -> int:
    """``math.<name> (v)`` for ``name`` in :data:`CASTS`."""
    lo, hi, width, signed = CASTS[name]
    if not is_number(v):
        raise ModelError(f"math.{name} takes an integer, got {describe(v)}")
    if lo <= v <= hi:
        return v
    if CAST_OUT_OF_RANGE == "truncate":
        r = v & (2 ** width - 1)
        return r - 2 ** width if signed and r > hi else r
    raise ModelError(f"math.{name}: {v} is outside {lo}..{hi}")


def _cast_fn(name: str) -> Callable[[Any], int]:
    def fn(v: Any) -> int:
        return cast(name, v)
    fn.__name__ = name
    return fn


#: Binary operators.
BINARY_OPERATORS: dict[str, Callable[[Any, Any], int]] = {
    "+": add, "-": sub, "*": mul, "|": bit_or, "&": bit_and,
}
#: Unary operators (``-`` here is negation).
UNARY_OPERATORS: dict[str, Callable[[Any], int]] = {"-": negate, "~": bit_not}
#: Every operator Math provides: the binary ones, ``~`` (unary), and unary minus
#: under the key ``"unary-"`` (``"-"`` is subtraction).
OPERATORS: dict[str, Callable[..., int]] = {**BINARY_OPERATORS, "~": bit_not, "unary-": negate}


class MathModel(StatelessModel):
    name: ClassVar[str] = "Math"
    _expressions: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "neg": neg, "abs": abs_, "sum": sum_, "product": product,
        **{c: _cast_fn(c) for c in CASTS},
    }


# ---- symbolic (Z3) encoding -----------------------------------------------------------
# The same checks as above over Z3 integers: an operand or result outside the 64-bit
# envelope "runs incorrectly" (OVERFLOW="error"), wraps (OVERFLOW="wrap64") or is
# left alone ("unbounded").  Bitwise operators go through 65-bit vectors, which hold
# every value of the envelope in two's complement, so ``&``/``|`` agree with Python's.
from .symbolic import FALSE, TRUE, Encoded, NotEncoded, SNum, Sym, anyof  # noqa: E402

_ENV_BITS = 65


def _in(lo: int, hi: int, x: z3.ArithRef) -> z3.BoolRef:
    return z3.And(x >= lo, x <= hi)


def _sym_operands(*xs: Sym) -> tuple[bool, z3.BoolRef]:
    """(all numbers?, some operand outside the envelope)."""
    if any(x.kind != "number" for x in xs):
        return False, TRUE
    if _mode() != "error":
        return True, FALSE
    return True, anyof(z3.Not(_in(MIN_VALUE, MAX_VALUE, x.z)) for x in xs)


def _sym_result(r: z3.ArithRef, lo: int = MIN_VALUE, hi: int = MAX_VALUE) -> Encoded:
    mode = _mode()
    if mode == "unbounded":
        return SNum(r), FALSE
    if mode == "wrap64":
        wrapped = (r - lo) % (2 ** 64) + lo if lo < 0 and hi < 2 ** 63 else r % (2 ** 64)
        return SNum(z3.If(_in(lo, hi, r), r, wrapped)), FALSE
    return SNum(r), z3.Not(_in(lo, hi, r))


def _bv(x: z3.ArithRef) -> z3.BitVecRef:
    return z3.Int2BV(x, _ENV_BITS)


def _sym_binary(op: str):
    def encode(a: Sym, b: Sym) -> Encoded:
        ok, err = _sym_operands(a, b)
        if not ok:
            return SNum(z3.IntVal(0)), TRUE
        if op in ("|", "&"):
            if _mode() == "unbounded":
                raise NotEncoded(f"`{op}` on unbounded integers")
            v = _bv(a.z) | _bv(b.z) if op == "|" else _bv(a.z) & _bv(b.z)
            r = z3.BV2Int(v, is_signed=True)
        else:
            r = {"+": a.z + b.z, "-": a.z - b.z, "*": a.z * b.z}[op]
        value, rerr = _sym_result(r)
        return value, anyof([err, rerr])
    return encode


def _sym_not(a: Sym) -> Encoded:
    ok, err = _sym_operands(a)
    if not ok:
        return SNum(z3.IntVal(0)), TRUE
    return SNum(z3.If(a.z < 0, -a.z - 1, (2 ** 64 - 1) - a.z)), err


def _sym_negate(a: Sym) -> Encoded:
    ok, err = _sym_operands(a)
    if not ok:
        return SNum(z3.IntVal(0)), TRUE
    value, rerr = _sym_result(-a.z)
    return value, anyof([err, rerr])


#: Symbolic twins of :data:`BINARY_OPERATORS` / :data:`UNARY_OPERATORS`.
SYMBOLIC_BINARY = {op: _sym_binary(op) for op in BINARY_OPERATORS}
SYMBOLIC_UNARY = {"-": _sym_negate, "~": _sym_not}


def _sym_signed(method: str, a: Sym, f) -> Encoded:
    if a.kind != "number":
        return SNum(z3.IntVal(0)), TRUE
    err = z3.Not(_in(SIGNED_MIN, SIGNED_MAX, a.z)) if _mode() == "error" else FALSE
    value, rerr = _sym_result(f(a.z), SIGNED_MIN, SIGNED_MAX)
    return value, anyof([err, rerr])


def _sym_fold(method: str, xs: Sym, start: int, step) -> Encoded:
    if xs.kind != "list":
        return SNum(z3.IntVal(0)), TRUE
    acc: Sym = SNum(z3.IntVal(start))
    errs = []
    for i, x in enumerate(xs.items):
        live = i < xs.length
        if x.kind != "number":
            errs.append(live)
            continue
        nxt, err = step(acc, x)
        errs.append(z3.And(live, err))
        acc = SNum(z3.If(live, nxt.z, acc.z))
    return acc, anyof(errs)


def symbolic_expression(method: str, arg: Sym) -> Encoded:
    """``math.neg``/``abs``/``sum``/``product`` and the casts over symbolic values."""
    if method == "neg":
        return _sym_signed(method, arg, lambda x: -x)
    if method == "abs":
        return _sym_signed(method, arg, lambda x: z3.If(x < 0, -x, x))
    if method == "sum":
        return _sym_fold(method, arg, 0, SYMBOLIC_BINARY["+"])
    if method == "product":
        return _sym_fold(method, arg, 1, SYMBOLIC_BINARY["*"])
    if method in CASTS:
        lo, hi, width, signed = CASTS[method]
        if arg.kind != "number":
            return SNum(z3.IntVal(0)), TRUE
        inside = _in(lo, hi, arg.z)
        if CAST_OUT_OF_RANGE == "truncate":
            low = arg.z % (2 ** width)
            trunc = z3.If(low > hi, low - 2 ** width, low) if signed else low
            return SNum(z3.If(inside, arg.z, trunc)), FALSE
        return SNum(arg.z), z3.Not(inside)
    raise NotEncoded(f"math.{method}")
