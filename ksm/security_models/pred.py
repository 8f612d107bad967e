"""Pred: the comparison operators and ``pred.empty``.

What the model does (KCE docs, "Pred security model", 1.0-1.4; our own words):

* ``a == b`` and ``a != b`` compare two ``ScalarLiteral`` values; ``<``, ``<=``,
  ``>``, ``>=`` compare two ``Number`` values; all return a Boolean.
* ``pred.empty (x)`` takes ``Text | Set | List | Map | ()`` and returns ``true``
  when the value has no structural elements.
* One pre-created object ``pred``; no parameters, no audit, no rules.

The operators are what the engine calls for the PSL operator syntax; they are
exported in :data:`OPERATORS` (all binary).  Each one raises
:class:`~ksm.security_models.ModelError` ("runs incorrectly") on operands of the
wrong type:

* ``<  <=  >  >=`` need two numbers (``int`` that is not ``bool``); anything else —
  a Boolean, text, ``()`` — runs incorrectly.  Numbers of any width and signedness
  compare as mathematical integers.
* ``==``/``!=`` need two *scalars*: ``()``, Booleans, numbers or text.  A list,
  set or record operand runs incorrectly.  Scalars of different kinds are simply
  unequal (``1 == true`` is ``false``, ``() == 0`` is ``false``), see open point 2.
* ``empty``: text, list/tuple, set, map/record → ``len == 0``; ``()`` → ``true``;
  a number or Boolean runs incorrectly.

Open points (not stated by the docs; our choices)
-------------------------------------------------
1. Text under ``==``: the docs type ``==`` on ``ScalarLiteral`` (``() | Boolean |
   Number``), yet comparing text (``message.mode == "ro"``) is the common idiom, so
   text counts as a scalar here.
2. Mixed kinds under ``==``/``!=``: nk's type checker presumably rejects
   ``message.port == "80"`` at build time, so at run time mixed kinds can only meet
   through union types (``Text | ()``), where "not equal" is the natural reading.
   :data:`EQ_MIXED_KINDS` = ``"unequal"`` (default) or ``"error"`` (runs
   incorrectly).
3. Comparison across integer widths/signedness: no run-time error; values compare
   mathematically (the docs do not say; nk probably rejects it at build time).
4. ``empty`` of a record (dictionary): treated as a ``Map`` — empty iff it has no
   fields.
"""
from __future__ import annotations

from typing import Any, ClassVar

import z3
from collections.abc import Callable, Mapping

from . import ModelError
from .base import StatelessModel, describe, is_number, kind_of

#: ``"unequal"``: scalars of different kinds are unequal; ``"error"``: they run incorrectly.
EQ_MIXED_KINDS = "unequal"

__all__ = ["PredModel", "OPERATORS", "UNARY_OPERATORS", "EQ_MIXED_KINDS",
           "eq", "ne", "lt", "le", "gt", "ge", "empty"]

_SCALARS = frozenset({"unit", "bool", "number", "text"})


def _scalar_pair(op: str, a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are of the same kind (both must be scalars)."""
    ka, kb = kind_of(a), kind_of(b)
    if ka not in _SCALARS or kb not in _SCALARS:
        raise ModelError(f"`{op}` compares scalars ((), Boolean, number, text), got {describe(a)} {op} {describe(b)}")
    if ka == kb:
        return True
    if EQ_MIXED_KINDS == "error":
        raise ModelError(f"`{op}` on values of different types: {describe(a)} ({ka}) {op} {describe(b)} ({kb})")
    return False


# Fast paths: two plain ints (or two texts) are by far the commonest operands, and
# ``type(x) is int`` already excludes Booleans; everything else takes the checked path.

def eq(a: Any, b: Any) -> bool:
    ta = type(a)
    if ta is type(b) and (ta is int or ta is str):
        return a == b
    return _scalar_pair("==", a, b) and a == b


def ne(a: Any, b: Any) -> bool:
    ta = type(a)
    if ta is type(b) and (ta is int or ta is str):
        return a != b
    return not (_scalar_pair("!=", a, b) and a == b)


def _numbers(op: str, a: Any, b: Any) -> None:
    if not (is_number(a) and is_number(b)):
        raise ModelError(f"`{op}` compares numbers, got {describe(a)} {op} {describe(b)}")


def lt(a: Any, b: Any) -> bool:
    if type(a) is not int or type(b) is not int:
        _numbers("<", a, b)
    return a < b


def le(a: Any, b: Any) -> bool:
    if type(a) is not int or type(b) is not int:
        _numbers("<=", a, b)
    return a <= b


def gt(a: Any, b: Any) -> bool:
    if type(a) is not int or type(b) is not int:
        _numbers(">", a, b)
    return a > b


def ge(a: Any, b: Any) -> bool:
    if type(a) is not int or type(b) is not int:
        _numbers(">=", a, b)
    return a >= b


def empty(x: Any) -> bool:
    """``pred.empty``: no structural elements; ``()`` is empty; numbers/Booleans run incorrectly."""
    if x is None:
        return True
    if kind_of(x) in ("text", "list", "set", "record"):
        return len(x) == 0
    raise ModelError(f"empty takes Text, a list, a set, a map or (), got {describe(x)}")


#: PSL operator -> function; all binary.
OPERATORS: dict[str, Callable[..., bool]] = {"==": eq, "!=": ne, "<": lt, "<=": le, ">": gt, ">=": ge}
UNARY_OPERATORS: dict[str, Callable[[Any], Any]] = {}


class PredModel(StatelessModel):
    name: ClassVar[str] = "Pred"
    _expressions: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"empty": empty}


# ---- symbolic (Z3) encoding: the same rules over symbolic values ------------------------
from .symbolic import FALSE, TRUE, Encoded, NotEncoded, SBool, Sym  # noqa: E402

_SYM_SCALARS = frozenset({"unit", "bool", "number", "text"})


def _sym_equal(op: str, a: Sym, b: Sym) -> Encoded:
    if a.kind not in _SYM_SCALARS or b.kind not in _SYM_SCALARS:
        return SBool(FALSE), TRUE                      # compares scalars only: runs incorrectly
    if a.kind != b.kind:
        if EQ_MIXED_KINDS == "error":
            return SBool(FALSE), TRUE
        return SBool(z3.BoolVal(op == "!=")), FALSE
    eq = TRUE if a.kind == "unit" else (a.z == b.z)
    return SBool(eq if op == "==" else z3.Not(eq)), FALSE


def _sym_order(op: str, a: Sym, b: Sym) -> Encoded:
    if a.kind != "number" or b.kind != "number":
        return SBool(FALSE), TRUE
    fn = {"<": lambda x, y: x < y, "<=": lambda x, y: x <= y,
          ">": lambda x, y: x > y, ">=": lambda x, y: x >= y}[op]
    return SBool(fn(a.z, b.z)), FALSE


#: Symbolic twins of :data:`OPERATORS`: ``(a, b) -> (value, runs incorrectly)``.
SYMBOLIC_OPERATORS = {
    "==": lambda a, b: _sym_equal("==", a, b), "!=": lambda a, b: _sym_equal("!=", a, b),
    **{op: (lambda o: lambda a, b: _sym_order(o, a, b))(op) for op in ("<", "<=", ">", ">=")},
}


def symbolic_expression(method: str, arg: Sym) -> Encoded:
    """``pred.empty`` over a symbolic value."""
    if method != "empty":
        raise NotEncoded(f"pred.{method}")
    if arg.kind == "unit":
        return SBool(TRUE), FALSE
    if arg.kind == "text":
        return SBool(z3.Length(arg.z) == 0), FALSE
    if arg.kind == "list":
        return SBool(arg.length == 0), FALSE
    if arg.kind == "record":
        return SBool(z3.BoolVal(not arg.fields)), FALSE
    return SBool(FALSE), TRUE

