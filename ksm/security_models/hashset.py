"""HashSet: per-resource bounded tables of unique values.

What the model does (KasperskyOS Community Edition docs, pages "HashSet security
model", "... object", "... init/fini/add/remove rule", "... contains expression",
KCE 1.1 and 1.2; restated here in our own words):

* An object owns a *pool* of ``config.pool_size`` tables, each holding at most
  ``config.set_size`` distinct values of ``type Entry``.  A resource (SID) can be
  bound to at most one table of a given object (object page).
* ``init {sid}`` binds a free table to the SID; values left in that table from an
  earlier use are wiped first (init page).  Denied when the pool has no free table,
  when the SID already has a table of this object, or when the SID is outside the
  permissible range.
* ``fini {sid}`` unbinds the SID's table, which returns to the pool.  Denied when the
  SID has no table, or is out of range (fini page).
* ``add {sid, entry}`` is granted both when it inserts the value and when the value
  is already there; denied when the table is completely full, when the SID has no
  table, or when it is out of range (add page).
* ``remove {sid, entry}`` is granted both when it deletes the value and when the
  value was absent; denied when the SID has no table or is out of range (remove
  page).
* ``contains {sid, entry}`` returns a Boolean; it *runs incorrectly* (and the whole
  event is denied) when the SID has no table or is out of range (contains page).

Denied versus "runs incorrectly"
--------------------------------
The docs word the failures of the four **rules** as a "denied" result and the
failures of the **expression** as "runs incorrectly".  Both end in a denial of the
event, and this module keeps the two apart:

* every documented failure of a rule returns ``RuleResult(granted=False, state,
  reason)`` with the *unchanged* state object and a reason starting ``denied:``;
* every documented failure of ``contains`` raises :class:`ModelError` with a reason
  starting ``runs incorrectly:``;
* a call whose argument does not have the documented shape (missing field, a SID
  that is not a non-negative integer, an entry that is no PSL value, an unknown
  method name) raises :class:`ModelError` in rules and expressions alike: such a
  call cannot be performed at all.

State
-----
:class:`HashSetState` is an immutable, hashable value: a read-only mapping
``sid -> frozenset of entries`` (entries are stored in a frozen form, see
:func:`freeze_entry`; records and lists become tuples, Booleans stay distinct from
the integers 0/1).  Pool usage is the number of bound SIDs.  Because ``init`` always
starts from an empty table, the values a table held before ``fini`` cannot be
observed again, so they are simply dropped.

Open points (not stated by the docs; our choices)
-------------------------------------------------
1. ``add`` of a value that is already present in a *full* table: the docs list
   "already contains" as a granted case and "completely full" as a denied case
   without saying which check comes first.  We grant (the table need not grow).
   Module constant :data:`ADD_PRESENT_WHEN_FULL_GRANTED` (default ``True``).
2. The permissible SID range is not documented.  :data:`SID_LIMIT` (default
   ``None`` = no upper bound) makes SIDs ``>= SID_LIMIT`` "outside the permissible
   range"; a negative or non-integer SID is malformed (``ModelError``).
3. ``init`` on a SID that is already bound *and* an exhausted pool: both deny; the
   reason names the binding first.
4. Entry values are not checked against ``type Entry`` (the policy compiler and the
   IDL types guarantee it); any PSL value (number, Boolean, text, unit, record,
   list) is accepted and compared structurally.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from collections.abc import Hashable, Mapping, Sequence

import z3

from policy_lang.solution import PolicyObjectDef

from . import ModelError, RuleResult, TablePool, choose_by_equality, require_sid

#: SIDs ``>= SID_LIMIT`` are outside the permissible range (``None``: no bound).
SID_LIMIT: int | None = None
#: ``add`` of a value already in a full table is granted (see "Open points" 1).
ADD_PRESENT_WHEN_FULL_GRANTED: bool = True

RULES = ("init", "fini", "add", "remove")
EXPRESSIONS = ("contains",)


# --------------------------------------------------------------------- entries
def freeze_entry(value: Any) -> Hashable:
    """A hashable, structurally comparable form of a PSL value used as an entry.

    Numbers and text stay as they are; Booleans are tagged so that ``true`` and
    ``1`` are different entries; records become sorted ``("{}", ((field, v), ...))``
    tuples and lists ``("[]", (v, ...))`` tuples; ``()`` is ``None``.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return value
    if isinstance(value, Mapping):
        return ("{}", tuple(sorted((str(k), freeze_entry(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("[]", tuple(freeze_entry(v) for v in value))
    raise ModelError(f"runs incorrectly: {value!r} is not a PSL value usable as a HashSet entry")


def thaw_entry(frozen: Hashable) -> Any:
    """Inverse of :func:`freeze_entry` (records come back as dicts, lists as lists)."""
    if isinstance(frozen, tuple):
        tag, body = frozen
        if tag == "bool":
            return body
        if tag == "{}":
            return {k: thaw_entry(v) for k, v in body}
        return [thaw_entry(v) for v in body]
    return frozen


# ---------------------------------------------------------------------- config
@dataclass(frozen=True)
class HashSetConfig:
    set_size: int
    pool_size: int


def parse_config(obj: PolicyObjectDef) -> HashSetConfig:
    """``{ set_size : N, pool_size : N }`` with positive numbers; else ModelError."""
    cfg = obj.config
    if not isinstance(cfg, Mapping):
        raise ModelError(f"HashSet object {obj.name}: config must be {{ set_size : N, pool_size : N }}")
    out = {}
    for key in ("set_size", "pool_size"):
        v = cfg.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ModelError(f"HashSet object {obj.name}: `{key}` must be a positive number, not {v!r}")
        out[key] = v
    return HashSetConfig(**out)


# ----------------------------------------------------------------------- state
class HashSetState(TablePool):
    """Immutable state of one HashSet object: ``sid -> frozenset`` of frozen entries."""

    __slots__ = ()

    def entries(self, sid: int) -> list:
        """The values in ``sid``'s table, thawed (for display); [] when unbound."""
        return [thaw_entry(e) for e in self.get(sid) or frozenset()]

    def __repr__(self) -> str:
        inner = ", ".join(f"{sid}: {sorted(map(repr, self.entries(sid)))}" for sid in sorted(self.tables))
        return f"HashSetState({{{inner}}})"


# ----------------------------------------------------------------------- model
class HashSetModel:
    """Concrete semantics of the HashSet model (see the module docstring)."""

    name: ClassVar[str] = "HashSet"

    def __init__(self, *, sid_limit: int | None = SID_LIMIT,
                 add_present_when_full_granted: bool = ADD_PRESENT_WHEN_FULL_GRANTED) -> None:
        self.sid_limit = sid_limit
        self.add_present_when_full_granted = add_present_when_full_granted

    # -- helpers
    def _in_range(self, sid: int) -> bool:
        return self.sid_limit is None or sid < self.sid_limit

    @staticmethod
    def _entry(arg: Mapping) -> Hashable:
        if "entry" not in arg:
            raise ModelError("runs incorrectly: argument needs field `entry`")
        return freeze_entry(arg["entry"])

    # -- protocol
    def initial_state(self, obj: PolicyObjectDef) -> HashSetState:
        parse_config(obj)
        return HashSetState()

    def rule(self, obj: PolicyObjectDef, state: HashSetState, method: str, arg: Any) -> RuleResult:
        if method not in RULES:
            raise ModelError(f"runs incorrectly: HashSet has no rule `{method}`")
        cfg = parse_config(obj)
        sid = require_sid(arg)
        entry = self._entry(arg) if method in ("add", "remove") else None

        def deny(why: str) -> RuleResult:
            return RuleResult(False, state, f"denied: {obj.name}.{method}: {why}")

        if not self._in_range(sid):
            return deny(f"sid {sid} is outside the permissible range (< {self.sid_limit})")
        table = state.table(sid)
        if method == "init":
            if table is not None:
                return deny(f"sid {sid} is already bound to a table of this object")
            if state.used >= cfg.pool_size:
                return deny(f"no free table in the pool (pool_size {cfg.pool_size}, all bound)")
            return RuleResult(True, state.with_table(sid, frozenset()), f"granted: {obj.name}.init: table bound to sid {sid}")
        if table is None:
            return deny(f"sid {sid} is not bound to a table of this object")
        if method == "fini":
            return RuleResult(True, state.without(sid), f"granted: {obj.name}.fini: table of sid {sid} returned to the pool")
        if method == "add":
            if entry in table:
                if len(table) >= cfg.set_size and not self.add_present_when_full_granted:
                    return deny(f"the table of sid {sid} is full (set_size {cfg.set_size})")
                return RuleResult(True, state, f"granted: {obj.name}.add: sid {sid} already holds {thaw_entry(entry)!r}")
            if len(table) >= cfg.set_size:
                return deny(f"the table of sid {sid} is full (set_size {cfg.set_size})")
            return RuleResult(True, state.with_table(sid, table | {entry}),
                              f"granted: {obj.name}.add: {thaw_entry(entry)!r} added for sid {sid}")
        # remove
        if entry not in table:
            return RuleResult(True, state, f"granted: {obj.name}.remove: sid {sid} did not hold {thaw_entry(entry)!r}")
        return RuleResult(True, state.with_table(sid, table - {entry}),
                          f"granted: {obj.name}.remove: {thaw_entry(entry)!r} removed for sid {sid}")

    def expression(self, obj: PolicyObjectDef, state: HashSetState, method: str, arg: Any) -> bool:
        if method not in EXPRESSIONS:
            raise ModelError(f"runs incorrectly: HashSet has no expression `{method}`")
        sid = require_sid(arg)
        entry = self._entry(arg)
        if not self._in_range(sid):
            raise ModelError(f"runs incorrectly: {obj.name}.contains: sid {sid} is outside the permissible range (< {self.sid_limit})")
        table = state.table(sid)
        if table is None:
            raise ModelError(f"runs incorrectly: {obj.name}.contains: sid {sid} is not bound to a table of this object")
        return entry in table

    def choose(self, obj: PolicyObjectDef, state: HashSetState, method: str, arg: Any, cases: Sequence[Any]) -> int | None:
        return choose_by_equality(self.expression(obj, state, method, arg), cases)


# ---- symbolic (Z3) encoding -----------------------------------------------------------
# Per tracked SID: (bound, count, members) - whether a table of the pool is bound to
# the SID, how many entries it holds, and the entries as a Z3 array from the entry
# value to Bool.  Entries must be numbers or texts (the kinds the IDL can carry as a
# scalar); other entry kinds raise NotEncoded.
from .symbolic import FALSE, TRUE, Fresh, NotEncoded, SidSlots, Sym, SBool, anyof, symbolic_sid, z3_text_value  # noqa: E402


class HashSetSymbolic:
    """The HashSet model over symbolic state (see the comment above)."""

    stateful = True

    def __init__(self, obj: PolicyObjectDef, sids: tuple[int, ...], known: tuple[int, ...] | None = None):
        self.obj, self.cfg, self.sids = obj, parse_config(obj), sids
        self.known = known if known is not None else sids   # SIDs that exist (others: escapes)
        self.slots = SidSlots(sids, self.known, 3)
        if SID_LIMIT is not None:
            raise NotEncoded("HashSet with a SID limit")
        self.sort = None              # entry sort, fixed by the first entry seen
        self.escapes: list = []       # conditions under which a call reaches an untracked SID

    def _entry_sort(self, kind: str):
        sort = {"number": z3.IntSort(), "text": z3.StringSort()}.get(kind)
        if sort is None:
            raise NotEncoded(f"HashSet {self.obj.name}: {kind} entries")
        if self.sort is None:
            self.sort = sort
        elif self.sort != sort:
            raise NotEncoded(f"HashSet {self.obj.name}: entries of two kinds")
        return sort

    def _sort_from_types(self):
        t = self.obj.types.get("Entry") if self.obj.types else None
        name = getattr(getattr(t, "name", None), "text", "")
        if name == "Text" or (name == "" and t is not None and type(t).__name__ == "LitType"
                              and isinstance(t.lit.value, str)):
            return self._entry_sort("text")
        return self._entry_sort("number")

    # -- state: (bound, count, members) per SID, flattened
    def lift(self, concrete: HashSetState) -> tuple:
        sort = (self.sort if self.sort is not None else self._sort_from_types())
        out: list = []
        for s in self.sids:
            table = concrete.table(s)
            members = z3.K(sort, FALSE)
            for e in sorted(table or (), key=repr):
                if not isinstance(e, (int, str)) or isinstance(e, bool):
                    raise NotEncoded(f"HashSet {self.obj.name}: entry {e!r}")
                members = z3.Store(members, z3.IntVal(e) if isinstance(e, int) else z3_text_value(e), TRUE)
            out += [z3.BoolVal(table is not None), z3.IntVal(len(table or ())), members]
        return tuple(out)

    def fresh(self, fresh: Fresh) -> tuple[tuple, z3.BoolRef]:
        sort = (self.sort if self.sort is not None else self._sort_from_types())
        out: list = []
        wf: list = []
        for s in self.sids:
            b, n = fresh.bool(f"{self.obj.name}[{s}].bound"), fresh.int(f"{self.obj.name}[{s}].count")
            m = z3.Const(f"{fresh.prefix}{self.obj.name}[{s}].members!{len(fresh.made)}", z3.ArraySort(sort, z3.BoolSort()))
            fresh.made.append(m)
            out += [b, n, m]
            wf.append(z3.And(n >= 0, n <= self.cfg.set_size))
        used = z3.Sum([z3.If(out[3 * i], 1, 0) for i in range(len(self.sids))]) if self.sids else z3.IntVal(0)
        wf.append(used <= self.cfg.pool_size)
        return tuple(out), z3.And(wf)

    # -- helpers
    def _slot(self, state: tuple, sid: z3.ArithRef):
        self.escapes.append(self.slots.untracked(sid))
        empty = z3.K(self.sort if self.sort is not None else self._sort_from_types(), FALSE)
        return self.slots.read(state, sid, [FALSE, z3.IntVal(0), empty])

    def _write(self, state: tuple, sid: z3.ArithRef, bound, count, members) -> tuple:
        return self.slots.write(state, sid, [bound, count, members])

    def _entry(self, arg: Sym):
        e = arg.fields.get("entry") if arg.kind == "record" else None
        if e is None or e.kind not in ("number", "text"):
            return None
        self._entry_sort(e.kind)
        return e.z

    # -- rules and expressions
    def rule(self, state: tuple, method: str, arg: Sym):
        if method not in RULES or not self.sids:
            return FALSE, state, TRUE if method not in RULES else FALSE
        sid, err = symbolic_sid(arg)
        bound, count, members = self._slot(state, sid)
        if method == "init":
            used = z3.Sum([z3.If(state[3 * i], 1, 0) for i in range(len(self.sids))])
            empty = z3.K((self.sort if self.sort is not None else self._sort_from_types()), FALSE)
            return (z3.And(z3.Not(bound), used < self.cfg.pool_size),
                    self._write(state, sid, TRUE, z3.IntVal(0), empty), err)
        if method == "fini":
            return bound, self._write(state, sid, FALSE, z3.IntVal(0), members), err
        entry = self._entry(arg)
        if entry is None:
            return FALSE, state, TRUE
        held = z3.Select(members, entry)
        full = count >= self.cfg.set_size
        if method == "add":
            present_ok = TRUE if ADD_PRESENT_WHEN_FULL_GRANTED else z3.Not(full)
            granted = z3.And(bound, z3.If(held, present_ok, z3.Not(full)))
            new = self._write(state, sid, bound, z3.If(held, count, count + 1), z3.Store(members, entry, TRUE))
            return granted, new, err
        new = self._write(state, sid, bound, z3.If(held, count - 1, count), z3.Store(members, entry, FALSE))
        return bound, new, err

    def expression(self, state: tuple, method: str, arg: Sym):
        if method not in EXPRESSIONS or not self.sids:
            return SBool(FALSE), TRUE
        sid, err = symbolic_sid(arg)
        bound, _count, members = self._slot(state, sid)
        entry = self._entry(arg)
        if entry is None:
            return SBool(FALSE), TRUE
        return SBool(z3.Select(members, entry)), anyof([err, z3.Not(bound)])
