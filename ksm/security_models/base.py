"""Base: the unconditional and Boolean-gated rules (``grant``, ``deny``, ``assert``, ``set_level``).

What the model does (KasperskyOS Community Edition docs, "Base security model",
KCE 1.0-1.2, and the KCE 0.0 "Base class" page; restated in our own words):

* ``grant ()`` takes the unit value and always grants.
* ``assert (<Boolean>)`` grants for ``true`` and denies for ``false``
  (1.0/1.1 write it without parentheses; same rule).
* ``deny (<Boolean | ()>)`` denies for ``()`` and for ``true``; for ``false`` it
  *grants* (1.0+; 0.0 only had the parameterless form).
* The object has no parameters; it can be covered by audit, with no model-specific
  audit conditions.  Its methods may be called without the ``base.`` prefix.
* The audit runtime-level starts at the value given by ``audit default = <profile>
  <level>`` (0 when absent) and is switched at run time by a Base rule; the 1.2
  page lists a fourth rule whose name we read as ``set_level``.

Failures
--------
A call whose argument is not of the documented type *runs incorrectly* and raises
:class:`~ksm.security_models.ModelError` (the engine denies the event): ``grant``
with anything but ``()``, ``assert`` with anything but a Boolean (an integer such as
``1`` is **not** a Boolean, nor is ``()``), ``deny`` with anything but a Boolean or
``()``, ``set_level`` with anything but an integer in ``0 .. LEVEL_MAX``.  Base has
no expressions, so :meth:`BaseModel.expression` and :meth:`BaseModel.choose` always
raise ``ModelError``.

State
-----
Base keeps no per-resource context.  Its state is the **audit runtime-level**, an
``int``: :meth:`BaseModel.initial_state` returns

1. ``obj.config`` when it is an integer, or ``obj.config["audit_level"]`` when the
   configuration is a mapping holding that key (the engine may put the solution's
   ``audit default`` level there), else
2. the ``default_level`` given to :class:`BaseModel` (see :func:`initial_level`,
   which reads it from a resolved solution), else
3. :data:`DEFAULT_AUDIT_LEVEL` (0, the documented default).

``set_level (n)`` grants and returns ``n`` as the new state; ``grant``/``deny``/
``assert`` return the state unchanged.  Like any rule's state change, the new level
takes effect only when the engine commits the event's changes.  Audit never changes
a decision, so the level only matters to the audit trail.

Shared plumbing
---------------
This file also holds :class:`StatelessModel`, the rule/expression dispatch and the
generic ``choose`` used by the parameterless models (Base, Pred, Bool, Math, Struct,
Regex), plus the small value classifiers they share (:func:`is_number`,
:func:`kind_of`, :func:`same_value`).  In Python ``True == 1``; every comparison
here keeps Booleans and numbers apart.

Open points (not stated by the docs; our choices)
-------------------------------------------------
1. ``set_level``'s spelling and parameter: the 1.2 page is truncated after
   ``set_l``; we take ``set_level (<UInt8>)`` and reject levels outside
   ``0 .. LEVEL_MAX`` (:data:`LEVEL_MAX`, default 255) as running incorrectly.  A
   level that no audit profile defines is accepted (audit then simply covers
   nothing).
2. KSM's audit level is *global*; we keep it as the state of each Base object.  With
   the single pre-created ``base`` object (the usual case) the two are the same; a
   solution with extra Base objects should read the level of the object on which
   ``set_level`` was called.
3. Whether ``set_level`` also produces "granted" in every case (e.g. when the level
   does not change): we grant whenever the argument is a valid level.
"""
from __future__ import annotations

from typing import Any, ClassVar
from collections.abc import Callable, Mapping, Sequence

import z3

from . import ModelError, RuleResult

#: The audit runtime-level when the solution says nothing (``audit default`` absent).
DEFAULT_AUDIT_LEVEL = 0
#: Highest level ``set_level`` accepts (the parameter is read as ``UInt8``).
LEVEL_MAX = 255

__all__ = [
    "BaseModel", "StatelessModel", "DEFAULT_AUDIT_LEVEL", "LEVEL_MAX",
    "initial_level", "is_number", "is_bool", "is_text", "is_unit", "kind_of", "same_value",
    "choose_by_value", "describe",
]


# ----------------------------------------------------------------- value helpers

def is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def is_number(v: Any) -> bool:
    """An integer that is not a Boolean (``isinstance(True, int)`` is true in Python)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_text(v: Any) -> bool:
    return isinstance(v, str)


def is_unit(v: Any) -> bool:
    return v is None


def kind_of(v: Any) -> str:
    """``unit``, ``bool``, ``number``, ``text``, ``list``, ``set``, ``record`` or ``other``."""
    if v is None:
        return "unit"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "number"
    if isinstance(v, str):
        return "text"
    if isinstance(v, (list, tuple)):
        return "list"
    if isinstance(v, (set, frozenset)):
        return "set"
    if isinstance(v, Mapping):
        return "record"
    return "other"


_SCALAR_KINDS = frozenset({"unit", "bool", "number", "text"})


def same_value(a: Any, b: Any) -> bool:
    """Equality that never confuses ``true`` with ``1`` (structural for lists/records)."""
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        return False
    if ka == "list":
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if ka == "record":
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if ka == "set":
        return len(a) == len(b) and all(any(same_value(x, y) for y in b) for x in a)
    return a == b


def choose_by_value(value: Any, cases: Sequence[Any]) -> int | None:
    """The first arm (textual order) whose literal equals ``value``; ``None`` (``_``) skipped."""
    from . import choose_by_equality

    return choose_by_equality(value, cases)


def describe(v: Any) -> str:
    """A short PSL-ish rendering of a value for reasons and error messages."""
    if v is None:
        return "()"
    if v is True:
        return "true"
    if v is False:
        return "false"
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


# ----------------------------------------------------------------- shared plumbing

class StatelessModel:
    """Dispatch for the parameterless models: no per-resource state, a fixed method table.

    Subclasses fill :attr:`_rules` (``method -> fn(state, arg) -> RuleResult``) and
    :attr:`_expressions` (``method -> fn(arg) -> value``).  ``choose`` evaluates the
    expression and takes the first arm whose literal equals the value (Booleans and
    numbers kept apart); Regex overrides it for ``select``.
    """

    name: ClassVar[str] = ""
    _rules: ClassVar[Mapping[str, Callable[[Any, Any], RuleResult]]] = {}
    _expressions: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    @property
    def rules(self) -> frozenset[str]:
        return frozenset(self._rules)

    @property
    def expressions(self) -> frozenset[str]:
        return frozenset(self._expressions)

    def initial_state(self, obj) -> Any:
        return None

    def rule(self, obj, state: Any, method: str, arg: Any) -> RuleResult:
        fn = self._rules.get(method)
        if fn is None:
            kind = "an expression" if method in self._expressions else "not a method"
            raise ModelError(f"{self.name} has no rule `{method}` ({kind})")
        return fn(state, arg)

    def expression(self, obj, state: Any, method: str, arg: Any) -> Any:
        fn = self._expressions.get(method)
        if fn is None:
            kind = "a rule" if method in self._rules else "not a method"
            raise ModelError(f"{self.name} has no expression `{method}` ({kind})")
        return fn(arg)

    def choose(self, obj, state: Any, method: str, arg: Any, cases: Sequence[Any]) -> int | None:
        return choose_by_value(self.expression(obj, state, method, arg), cases)


# ----------------------------------------------------------------- Base rules

def _grant(state: Any, arg: Any) -> RuleResult:
    if arg is not None:
        raise ModelError(f"grant takes (), got {describe(arg)}")
    return RuleResult(True, state, "grant ()")


def _deny(state: Any, arg: Any) -> RuleResult:
    if arg is None or arg is True:
        return RuleResult(False, state, f"deny ({'' if arg is None else 'true'})")
    if arg is False:
        return RuleResult(True, state, "deny (false)")
    raise ModelError(f"deny takes () or a Boolean, got {describe(arg)}")


def _assert(state: Any, arg: Any) -> RuleResult:
    if arg is True:
        return RuleResult(True, state, "assert (true)")
    if arg is False:
        return RuleResult(False, state, "assert (false)")
    raise ModelError(f"assert takes a Boolean, got {describe(arg)}")


def _set_level(state: Any, arg: Any) -> RuleResult:
    if not is_number(arg) or not 0 <= arg <= LEVEL_MAX:
        raise ModelError(f"set_level takes an audit level 0..{LEVEL_MAX}, got {describe(arg)}")
    return RuleResult(True, arg, f"audit runtime-level {describe(state)} -> {arg}")


class BaseModel(StatelessModel):
    """The Base model; its state is the audit runtime-level (see the module docstring)."""

    name: ClassVar[str] = "Base"
    _rules = {"grant": _grant, "deny": _deny, "assert": _assert, "set_level": _set_level}
    _expressions: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    def __init__(self, default_level: int | None = None):
        if default_level is not None and (not is_number(default_level) or default_level < 0):
            raise ValueError(f"audit level must be a non-negative integer, got {default_level!r}")
        self.default_level = default_level

    def initial_state(self, obj) -> int:
        config = getattr(obj, "config", None)
        if is_number(config) and config >= 0:
            return config
        if isinstance(config, Mapping) and is_number(config.get("audit_level")) and config["audit_level"] >= 0:
            return config["audit_level"]
        return DEFAULT_AUDIT_LEVEL if self.default_level is None else self.default_level

    def choose(self, obj, state: Any, method: str, arg: Any, cases: Sequence[Any]) -> int | None:
        raise ModelError(f"Base has no expressions; `{method}` cannot select a choice arm")


def initial_level(solution) -> int:
    """The audit runtime-level a solution starts with: its ``audit default`` level, else 0."""
    default = getattr(solution, "audit_default", None)
    if default and is_number(default[1]):
        return default[1]
    return DEFAULT_AUDIT_LEVEL


# ---- symbolic (Z3) encoding -----------------------------------------------------------
# Rules over symbolic arguments: ``(granted, runs incorrectly)``.  The audit level
# (Base's state) never changes a decision, so it is not part of the symbolic state.
from .symbolic import FALSE, TRUE, NotEncoded, Sym  # noqa: E402


def symbolic_rule(method: str, arg: Sym):
    if method == "grant":
        return (TRUE, FALSE) if arg.kind == "unit" else (FALSE, TRUE)
    if method == "deny":
        if arg.kind == "unit":
            return FALSE, FALSE
        return (z3.Not(arg.z), FALSE) if arg.kind == "bool" else (FALSE, TRUE)
    if method == "assert":
        return (arg.z, FALSE) if arg.kind == "bool" else (FALSE, TRUE)
    if method == "set_level":
        if arg.kind != "number":
            return FALSE, TRUE
        return TRUE, z3.Not(z3.And(arg.z >= 0, arg.z <= LEVEL_MAX))
    raise NotEncoded(f"base.{method}")
