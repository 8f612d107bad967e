"""Security models: the concrete semantics of every rule and expression, one module each.

Each model module (``base.py``, ``flow.py``, ...) holds everything about its model:
its configuration checks, its per-object state, its rules and expressions, and —
as later issues land — its symbolic (Z3) encoding beside them, so the two can be
tested against each other.

The decision engine talks to a model only through :class:`SecurityModel`:

* **state is an immutable value** per policy object (typically a frozen mapping
  ``sid -> context``).  A rule returns the *new* state instead of mutating, so the
  engine can apply state changes only when the final decision is granted
  (transactional, the documented default) or apply them regardless (an option);
* a method that "runs incorrectly" (unknown SID, missing key, index out of range,
  full table...) raises :class:`ModelError`; the engine turns it into a denial with
  that reason.  Any other exception is a bug and is also turned into a denial
  (``internal-error``) by the engine — models never need to catch it;
* argument values are plain Python: ``None`` is the unit ``()``, records are
  ``dict``, lists are ``list``/``tuple``, text is ``str``, numbers ``int``,
  booleans ``bool``; a SID is an ``int``; an IDL ``Handle`` is a ``dict`` with
  ``handle`` (the SID) and ``rights``.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple, Any, ClassVar, Protocol
from collections.abc import Mapping, Sequence

from policy_lang.solution import PolicyObjectDef


class ModelError(Exception):
    """A model method ran incorrectly: the event is denied with this reason."""


class RuleResult(NamedTuple):
    """What a rule says: the verdict, the state after it, and why.

    (A named tuple: every rule call makes one, and a frozen dataclass costs 4x.)
    """

    granted: bool
    state: Any
    reason: str = ""


class SecurityModel(Protocol):
    """The interface every model module implements (see the module docstring)."""

    name: ClassVar[str]

    def initial_state(self, obj: PolicyObjectDef) -> Any:
        """State of a freshly created object (before any event)."""

    def rule(self, obj: PolicyObjectDef, state: Any, method: str, arg: Any) -> RuleResult:
        """Run rule ``method``; raise :class:`ModelError` if it runs incorrectly."""

    def expression(self, obj: PolicyObjectDef, state: Any, method: str, arg: Any) -> Any:
        """Evaluate expression ``method``; raise :class:`ModelError` if it runs incorrectly."""

    def choose(self, obj: PolicyObjectDef, state: Any, method: str, arg: Any, cases: Sequence[Any]) -> int | None:
        """For ``choice``: index of the arm whose case the expression selects, or None.

        ``cases`` are the arm literals in textual order, ``None`` standing for ``_``
        (the engine falls back to ``_`` when this returns None).
        """


def choose_by_equality(value: Any, cases: Sequence[Any]) -> int | None:
    """Default ``choose``: the first arm whose literal equals the expression's value.

    Equality is PSL's, not Python's: ``true`` never equals ``1`` (see
    :func:`ksm.security_models.base.same_value`).
    """
    from .base import same_value

    for i, case in enumerate(cases):
        if case is not None and same_value(case, value):
            return i
    return None


def require_sid(arg: Mapping, key: str = "sid") -> int:
    """The SID field of a record argument; a non-integer SID runs incorrectly."""
    if not isinstance(arg, Mapping) or key not in arg:
        raise ModelError(f"argument needs field `{key}`")
    sid = arg[key]
    if isinstance(sid, Mapping) and "handle" in sid:  # a HandleDesc given where a Sid is expected
        sid = sid["handle"]
    if not isinstance(sid, int) or isinstance(sid, bool) or sid < 0:
        raise ModelError(f"`{key}` is not a SID: {sid!r}")
    return sid


class SidMap:
    """An immutable ``sid -> context`` mapping: the state of one stateful model object.

    HashSet, StaticMap, Flow and Mic all keep one context per SID and change state
    by building a new mapping (copy-on-write), so rules can return the new state and
    the engine can discard it when the event is denied.  Each model subclasses this
    and names the accessors in its own terms (``table``/``with_table``,
    ``current``/``with_fsm``, ...).  States are equal when their mappings are equal,
    and hashable.
    """

    __slots__ = ("_entries", "_hash")

    def __init__(self, entries: Mapping[int, Any] | None = None) -> None:
        object.__setattr__(self, "_entries", MappingProxyType(dict(entries or {})))
        object.__setattr__(self, "_hash", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    @property
    def entries_by_sid(self) -> Mapping[int, Any]:
        """Read-only view of the whole mapping."""
        return self._entries

    def get(self, sid: int) -> Any:
        """The context of ``sid``, or None when the SID has none."""
        return self._entries.get(sid)

    def with_entry(self, sid: int, value: Any) -> "SidMap":
        d = dict(self._entries)
        d[sid] = value
        return type(self)(d)

    def without(self, sid: int) -> "SidMap":
        d = dict(self._entries)
        del d[sid]
        return type(self)(d)

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and dict(self._entries) == dict(other._entries)

    def __hash__(self) -> int:
        if self._hash is None:
            object.__setattr__(self, "_hash", hash(frozenset(self._entries.items())))
        return self._hash

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(sorted(self._entries.items()))!r})"


class TablePool(SidMap):
    """A SidMap whose contexts are tables drawn from a pool (HashSet, StaticMap)."""

    __slots__ = ()
    tables = SidMap.entries_by_sid
    table = SidMap.get
    with_table = SidMap.with_entry

    @property
    def used(self) -> int:
        """Number of tables of the pool currently bound to a SID."""
        return len(self)
