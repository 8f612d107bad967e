"""Bool: the logical operators and ``bool.all`` / ``bool.any`` / ``bool.cond``.

What the model does (KCE docs, "Bool security model", 1.0-1.4; our own words):

* ``! a`` (NOT), ``a && b`` (AND), ``a || b`` (OR) and ``a ==> b`` (implication,
  the same as ``!a || b``) on Booleans.
* ``bool.all (<List<Boolean>>)``: AND over the list, ``true`` for ``[]``.
* ``bool.any (<List<Boolean>>)``: OR over the list, ``false`` for ``[]``.
* ``bool.cond``: a ternary (if-then-else) expression; its syntax line could not be
  read (see open point 1).
* One pre-created object ``bool``; no parameters, no audit, no rules.

Every operand must be a Boolean (Python ``bool``): an integer (``1``), ``()`` or
text runs incorrectly (:class:`~ksm.security_models.ModelError`).  The same holds
for every element of the lists given to ``all``/``any``, which must be lists.

Evaluation order (:data:`SHORT_CIRCUIT`)
----------------------------------------
The docs say KSM calls every method bound to an event and denies the event if any
of them runs incorrectly; nothing says ``false && x`` skips ``x``.  So operators do
**not** short-circuit: the engine evaluates both operands first (it already does)
and an operand that runs incorrectly denies the event even when the other operand
alone would decide the result.  :data:`SHORT_CIRCUIT` is ``False`` to tell the
engine so; the functions here take already-evaluated values and check both types
either way.  The same goes for ``bool.cond``: both branches are arguments, so both
are evaluated; an error in the branch not taken still denies.

Open points (not stated by the docs; our choices)
-------------------------------------------------
1. ``bool.cond`` shape: **unconfirmed**.  We take a record ``{if : <Boolean>, then
   : <value>, else : <value>}`` and return ``then`` when ``if`` is ``true``,
   ``else`` otherwise; a non-Boolean ``if`` or a missing field runs incorrectly.
   The docs' return type ``ScalarLiteral`` is not enforced: any value is returned.
2. Short-circuit evaluation: none (see above).
3. ``all``/``any`` check every element even after the result is known (a
   non-Boolean anywhere in the list runs incorrectly).
"""
from __future__ import annotations

from typing import Any, ClassVar

import z3
from collections.abc import Callable, Mapping

from . import ModelError
from .base import StatelessModel, describe

#: Whether the engine may skip the right operand of ``&&``/``||``/``==>`` once the
#: left one decides the result.  ``False``: both are evaluated, errors in either deny.
SHORT_CIRCUIT = False

__all__ = ["BoolModel", "OPERATORS", "UNARY_OPERATORS", "BINARY_OPERATORS", "SHORT_CIRCUIT",
           "not_", "and_", "or_", "implies", "all_", "any_", "cond"]


def _need_bool(op: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ModelError(f"`{op}` takes Booleans, got {describe(v)}")
    return v


def not_(a: Any) -> bool:
    return not _need_bool("!", a)


def and_(a: Any, b: Any) -> bool:
    x, y = _need_bool("&&", a), _need_bool("&&", b)
    return x and y


def or_(a: Any, b: Any) -> bool:
    x, y = _need_bool("||", a), _need_bool("||", b)
    return x or y


def implies(a: Any, b: Any) -> bool:
    x, y = _need_bool("==>", a), _need_bool("==>", b)
    return (not x) or y


def _bool_list(method: str, xs: Any) -> list[bool]:
    if not isinstance(xs, (list, tuple)):
        raise ModelError(f"bool.{method} takes a list of Booleans, got {describe(xs)}")
    for x in xs:
        if not isinstance(x, bool):
            raise ModelError(f"bool.{method}: list element {describe(x)} is not a Boolean")
    return list(xs)


def all_(xs: Any) -> bool:
    return all(_bool_list("all", xs))


def any_(xs: Any) -> bool:
    return any(_bool_list("any", xs))


def cond(arg: Any) -> Any:
    """``bool.cond {if, then, else}`` (shape unconfirmed, see the module docstring)."""
    if not isinstance(arg, Mapping):
        raise ModelError(f"bool.cond takes {{if, then, else}}, got {describe(arg)}")
    missing = [k for k in ("if", "then", "else") if k not in arg]
    if missing:
        raise ModelError(f"bool.cond: missing field(s) {', '.join(missing)}")
    c = arg["if"]
    if not isinstance(c, bool):
        raise ModelError(f"bool.cond: `if` must be a Boolean, got {describe(c)}")
    return arg["then"] if c else arg["else"]


#: Binary operators.
BINARY_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {"&&": and_, "||": or_, "==>": implies}
#: Unary operators.
UNARY_OPERATORS: dict[str, Callable[[Any], bool]] = {"!": not_}
#: Every operator Bool provides; ``!`` is the only unary one.
OPERATORS: dict[str, Callable[..., bool]] = {"!": not_, **BINARY_OPERATORS}


class BoolModel(StatelessModel):
    name: ClassVar[str] = "Bool"
    _expressions: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"all": all_, "any": any_, "cond": cond}


# ---- symbolic (Z3) encoding -----------------------------------------------------------
from .symbolic import FALSE, TRUE, Encoded, NotEncoded, SBool, Sym, anyof, ite  # noqa: E402


def _sym_bools(*xs: Sym) -> z3.BoolRef:
    """Runs incorrectly unless every operand is a Boolean (kinds are static)."""
    return FALSE if all(x.kind == "bool" for x in xs) else TRUE


def _sym_binary(op: str):
    fn = {"&&": z3.And, "||": z3.Or, "==>": z3.Implies}[op]

    def encode(a: Sym, b: Sym) -> Encoded:
        err = _sym_bools(a, b)
        if z3.is_true(err):
            return SBool(FALSE), TRUE
        return SBool(fn(a.z, b.z)), FALSE
    return encode


#: Symbolic twins of :data:`BINARY_OPERATORS` / :data:`UNARY_OPERATORS`.
SYMBOLIC_BINARY = {op: _sym_binary(op) for op in ("&&", "||", "==>")}
SYMBOLIC_UNARY = {"!": lambda a: (SBool(z3.Not(a.z)), FALSE) if a.kind == "bool" else (SBool(FALSE), TRUE)}


def symbolic_expression(method: str, arg: Sym) -> Encoded:
    """``bool.all``, ``bool.any``, ``bool.cond`` over symbolic values."""
    if method in ("all", "any"):
        if arg.kind != "list":
            return SBool(FALSE), TRUE
        if any(x.kind != "bool" for x in arg.items):
            # an element that is not a Boolean fails only if it exists
            bad = [i < arg.length for i, x in enumerate(arg.items) if x.kind != "bool"]
            return SBool(FALSE), anyof(bad)
        live = [z3.Implies(i < arg.length, x.z) for i, x in enumerate(arg.items)] if method == "all" else \
               [z3.And(i < arg.length, x.z) for i, x in enumerate(arg.items)]
        if method == "all":
            return SBool(z3.And(live) if live else TRUE), FALSE
        return SBool(z3.Or(live) if live else FALSE), FALSE
    if method == "cond":
        if arg.kind != "record" or not {"if", "then", "else"} <= arg.fields.keys():
            return SBool(FALSE), TRUE
        c = arg.fields["if"]
        if c.kind != "bool":
            return SBool(FALSE), TRUE
        return ite(c.z, arg.fields["then"], arg.fields["else"]), FALSE
    raise NotEncoded(f"bool.{method}")
