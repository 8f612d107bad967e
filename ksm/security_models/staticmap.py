"""StaticMap: per-resource fixed-key tables with a base and a working copy.

What the model does (KasperskyOS Community Edition docs, pages "StaticMap security
model", "... object", "... init/fini/set/commit/rollback rule", "... get /
get_uncommited expression", KCE 1.1-1.3; restated in our own words):

* An object owns a pool of ``config.pool_size`` tables.  Every table has the same
  fixed key set, given with each key's default value by ``config.keys``; keys are
  unique and immutable, values are of the integer ``type Value`` (object page).  A
  SID can be bound to at most one table of a given object.
* Each table exists twice: a *base* copy and a *working* copy, both initialised with
  the same data.  Changes go to the working copy; ``commit`` copies working -> base,
  ``rollback`` copies base -> working; reads may target either copy (model page).
* ``init {sid}`` binds a free table (both copies set to the defaults).  Denied when
  no table is free, when the SID already has a table of this object, or when the SID
  is out of range (init page).
* ``fini {sid}`` unbinds it; denied when the SID has no table or is out of range.
* ``set {sid, key, value}`` writes the working copy, always overwriting (even with an
  equal value); denied when the key is not in the table, the SID has no table, or
  the SID is out of range (set page).
* ``commit {sid}`` / ``rollback {sid}``: denied when the SID has no table or is out
  of range (commit and rollback pages).
* ``get {sid, key}`` reads the base copy, ``get_uncommited {sid, key}`` (the docs'
  spelling) the working copy; both *run incorrectly* when the key is absent, the
  SID has no table, or the SID is out of range (get and get_uncommited pages).

Denied versus "runs incorrectly"
--------------------------------
As in the docs: every documented failure of a **rule** returns
``RuleResult(granted=False, <the same state object>, "denied: ...")``; every
documented failure of an **expression** raises :class:`ModelError`
(``"runs incorrectly: ..."``).  A call whose argument lacks a documented field, has
a SID that is not a non-negative integer, a key that is neither text nor a list of
bytes, or a value that is not an integer, raises :class:`ModelError` in rules too.

State
-----
:class:`StaticMapState` is an immutable, hashable value: a read-only mapping
``sid -> StaticMapTable(base, working)`` whose two copies are tuples of values in
the order of ``config.keys``.  Pool usage is the number of bound SIDs.  Values held
by a table before ``fini`` cannot be observed again (``init`` resets both copies to
the defaults), so they are dropped.

Open points (not stated by the docs; our choices)
-------------------------------------------------
1. The permissible SID range: :data:`SID_LIMIT` (default ``None`` = unbounded);
   SIDs ``>= SID_LIMIT`` are out of range.
2. Keys are ``Text | List<UInt8>`` (object page) but a configuration record can
   only name text keys.  A key given as a list of bytes is matched against the text
   keys by its UTF-8 decoding (:func:`normalize_key`); undecodable bytes name no key.
3. ``set`` does not check the value against the width of ``type Value`` (IDL and
   compile-time typing guarantee it); any integer is stored.
4. ``init`` on a bound SID when the pool is also exhausted: both deny; the reason
   names the binding first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from collections.abc import Mapping, Sequence

from policy_lang.solution import PolicyObjectDef

from . import ModelError, RuleResult, TablePool, choose_by_equality, require_sid

#: SIDs ``>= SID_LIMIT`` are outside the permissible range (``None``: no bound).
SID_LIMIT: int | None = None

RULES = ("init", "fini", "set", "commit", "rollback")
EXPRESSIONS = ("get", "get_uncommited")


# ---------------------------------------------------------------------- config
@dataclass(frozen=True)
class StaticMapConfig:
    keys: tuple[str, ...]          # in configuration order
    defaults: tuple[int, ...]      # aligned with keys
    pool_size: int

    def index(self, key: str) -> int | None:
        try:
            return self.keys.index(key)
        except ValueError:
            return None


def parse_config(obj: PolicyObjectDef) -> StaticMapConfig:
    """``{ keys : { k : default, ... }, pool_size : N }``; else ModelError."""
    cfg = obj.config
    if not isinstance(cfg, Mapping):
        raise ModelError(f"StaticMap object {obj.name}: config must be {{ keys : {{ ... }}, pool_size : N }}")
    keys = cfg.get("keys")
    if not isinstance(keys, Mapping) or not keys:
        raise ModelError(f"StaticMap object {obj.name}: `keys` must be a non-empty record of key : default value")
    names, defaults = [], []
    for k, v in keys.items():
        if not isinstance(v, int) or isinstance(v, bool):
            raise ModelError(f"StaticMap object {obj.name}: default of key {k!r} must be a number, not {v!r}")
        names.append(normalize_key(k))
        defaults.append(v)
    pool = cfg.get("pool_size")
    if not isinstance(pool, int) or isinstance(pool, bool) or pool <= 0:
        raise ModelError(f"StaticMap object {obj.name}: `pool_size` must be a positive number, not {pool!r}")
    return StaticMapConfig(tuple(names), tuple(defaults), pool)


def normalize_key(key: Any) -> str | None:
    """Text keys as they are; a list of bytes (``List<UInt8>``) as its UTF-8 text.

    Returns None for bytes that are not UTF-8 (they can name no configured key);
    raises ModelError for anything that is not a key at all.
    """
    if isinstance(key, str):
        return key
    if isinstance(key, (list, tuple)) and all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in key):
        try:
            return bytes(key).decode("utf-8")
        except UnicodeDecodeError:
            return None
    raise ModelError(f"runs incorrectly: {key!r} is not a StaticMap key (Text or List<UInt8>)")


# ----------------------------------------------------------------------- state
@dataclass(frozen=True)
class StaticMapTable:
    """One bound table: the committed (base) and the working copy, in key order."""

    base: tuple[int, ...]
    working: tuple[int, ...]


class StaticMapState(TablePool):
    """Immutable state of one StaticMap object: ``sid -> StaticMapTable``."""

    __slots__ = ()

    def __repr__(self) -> str:
        inner = ", ".join(f"{sid}: base={t.base} working={t.working}" for sid, t in sorted(self.tables.items()))
        return f"StaticMapState({{{inner}}})"


# ----------------------------------------------------------------------- model
class StaticMapModel:
    """Concrete semantics of the StaticMap model (see the module docstring)."""

    name: ClassVar[str] = "StaticMap"

    def __init__(self, *, sid_limit: int | None = SID_LIMIT) -> None:
        self.sid_limit = sid_limit

    def _in_range(self, sid: int) -> bool:
        return self.sid_limit is None or sid < self.sid_limit

    @staticmethod
    def _field(arg: Mapping, key: str) -> Any:
        if key not in arg:
            raise ModelError(f"runs incorrectly: argument needs field `{key}`")
        return arg[key]

    def initial_state(self, obj: PolicyObjectDef) -> StaticMapState:
        parse_config(obj)
        return StaticMapState()

    def rule(self, obj: PolicyObjectDef, state: StaticMapState, method: str, arg: Any) -> RuleResult:
        if method not in RULES:
            raise ModelError(f"runs incorrectly: StaticMap has no rule `{method}`")
        cfg = parse_config(obj)
        sid = require_sid(arg)
        if method == "set":
            key = normalize_key(self._field(arg, "key"))
            value = self._field(arg, "value")
            if not isinstance(value, int) or isinstance(value, bool):
                raise ModelError(f"runs incorrectly: {obj.name}.set: value {value!r} is not a number")

        def deny(why: str) -> RuleResult:
            return RuleResult(False, state, f"denied: {obj.name}.{method}: {why}")

        def grant(new: StaticMapState, what: str) -> RuleResult:
            return RuleResult(True, new, f"granted: {obj.name}.{method}: {what}")

        if not self._in_range(sid):
            return deny(f"sid {sid} is outside the permissible range (< {self.sid_limit})")
        table = state.table(sid)
        if method == "init":
            if table is not None:
                return deny(f"sid {sid} is already bound to a table of this object")
            if state.used >= cfg.pool_size:
                return deny(f"no free table in the pool (pool_size {cfg.pool_size}, all bound)")
            return grant(state.with_table(sid, StaticMapTable(cfg.defaults, cfg.defaults)), f"table bound to sid {sid}")
        if table is None:
            return deny(f"sid {sid} is not bound to a table of this object")
        if method == "fini":
            return grant(state.without(sid), f"table of sid {sid} returned to the pool")
        if method == "set":
            i = cfg.index(key) if key is not None else None
            if i is None:
                return deny(f"key {key!r} is not in the table (keys: {', '.join(cfg.keys)})")
            working = table.working[:i] + (value,) + table.working[i + 1:]
            return grant(state.with_table(sid, StaticMapTable(table.base, working)),
                         f"working copy of sid {sid}: {key} := {value}")
        if method == "commit":
            return grant(state.with_table(sid, StaticMapTable(table.working, table.working)),
                         f"working copy of sid {sid} copied to the base copy")
        # rollback
        return grant(state.with_table(sid, StaticMapTable(table.base, table.base)),
                     f"base copy of sid {sid} copied to the working copy")

    def expression(self, obj: PolicyObjectDef, state: StaticMapState, method: str, arg: Any) -> int:
        if method not in EXPRESSIONS:
            raise ModelError(f"runs incorrectly: StaticMap has no expression `{method}`")
        cfg = parse_config(obj)
        sid = require_sid(arg)
        key = normalize_key(self._field(arg, "key"))
        where = f"{obj.name}.{method}"
        if not self._in_range(sid):
            raise ModelError(f"runs incorrectly: {where}: sid {sid} is outside the permissible range (< {self.sid_limit})")
        table = state.table(sid)
        if table is None:
            raise ModelError(f"runs incorrectly: {where}: sid {sid} is not bound to a table of this object")
        i = cfg.index(key) if key is not None else None
        if i is None:
            raise ModelError(f"runs incorrectly: {where}: key {key!r} is not in the table (keys: {', '.join(cfg.keys)})")
        return table.base[i] if method == "get" else table.working[i]

    def choose(self, obj: PolicyObjectDef, state: StaticMapState, method: str, arg: Any, cases: Sequence[Any]) -> int | None:
        return choose_by_equality(self.expression(obj, state, method, arg), cases)


# ---- symbolic (Z3) encoding -----------------------------------------------------------
# Keys are fixed by the configuration, so a table is a tuple of Z3 integers per copy,
# not an array: per tracked SID the state holds (bound, base_0..base_n-1,
# working_0..working_n-1).  A symbolic key selects a slot by an If-chain over the
# configured key texts.  Keys given as a list of bytes are not encoded (NotEncoded):
# matching their UTF-8 decoding against texts has no exact Z3 counterpart here.
import z3  # noqa: E402

from .symbolic import FALSE, TRUE, Fresh, NotEncoded, SidSlots, SNum, Sym, anyof, symbolic_sid, z3_text_value  # noqa: E402


class StaticMapSymbolic:
    """The StaticMap model over symbolic state (see the comment above)."""

    stateful = True

    def __init__(self, obj: PolicyObjectDef, sids: tuple[int, ...], known: tuple[int, ...] | None = None):
        self.obj, self.cfg, self.sids = obj, parse_config(obj), sids
        self.known = known if known is not None else sids   # SIDs that exist (others: escapes)
        self.width = 1 + 2 * len(self.cfg.keys)              # terms per tracked SID
        self.slots = SidSlots(sids, self.known, self.width)
        self.escapes: list = []       # conditions under which a call reaches an untracked SID
        if SID_LIMIT is not None:
            raise NotEncoded("StaticMap with a SID limit")

    # -- state: (bound, base..., working...) per SID, flattened
    def lift(self, concrete: StaticMapState) -> tuple:
        out: list = []
        for s in self.sids:
            table = concrete.table(s)
            base, working = (table.base, table.working) if table is not None else (self.cfg.defaults,) * 2
            out += [z3.BoolVal(table is not None), *map(z3.IntVal, base), *map(z3.IntVal, working)]
        return tuple(out)

    def fresh(self, fresh: Fresh) -> tuple[tuple, z3.BoolRef]:
        out: list = []
        for s in self.sids:
            out.append(fresh.bool(f"{self.obj.name}[{s}].bound"))
            out += [fresh.int(f"{self.obj.name}[{s}].base.{k}") for k in self.cfg.keys]
            out += [fresh.int(f"{self.obj.name}[{s}].working.{k}") for k in self.cfg.keys]
        return tuple(out), self._used(out) <= self.cfg.pool_size

    # -- helpers
    def _used(self, state) -> z3.ArithRef:
        return z3.Sum([z3.If(state[i * self.width], 1, 0) for i in range(len(self.sids))]) \
            if self.sids else z3.IntVal(0)

    def _slot(self, state: tuple, sid: z3.ArithRef) -> list:
        """The terms of ``sid``'s table (all False/0 for a SID that has none)."""
        self.escapes.append(self.slots.untracked(sid))
        return self.slots.read(state, sid, [FALSE] + [z3.IntVal(0)] * (self.width - 1))

    def _write(self, state: tuple, sid: z3.ArithRef, slot: list) -> tuple:
        return self.slots.write(state, sid, slot)

    def _key(self, arg: Sym) -> tuple[z3.ArithRef, z3.BoolRef]:
        """Index of the argument's key among the configured keys (-1: none) and the
        "runs incorrectly" condition of a key that is no key at all."""
        key = arg.fields.get("key") if arg.kind == "record" else None
        if key is None or key.kind not in ("text", "list"):
            return z3.IntVal(-1), TRUE
        if key.kind == "list":
            raise NotEncoded(f"StaticMap {self.obj.name}: a key given as a list of bytes")
        index: z3.ArithRef = z3.IntVal(-1)
        for i, name in reversed(list(enumerate(self.cfg.keys))):
            index = z3.If(key.z == z3_text_value(name), i, index)
        return index, FALSE

    @staticmethod
    def _pick(terms: list, index: z3.ArithRef) -> z3.ArithRef:
        out: z3.ArithRef = z3.IntVal(0)
        for i, t in enumerate(terms):
            out = z3.If(index == i, t, out)
        return out

    # -- rules and expressions: (granted, new state, runs incorrectly)
    def rule(self, state: tuple, method: str, arg: Sym):
        if method not in RULES:
            return FALSE, state, TRUE
        sid, err = symbolic_sid(arg)
        n = len(self.cfg.keys)
        slot = self._slot(state, sid)
        bound, base, working = slot[0], slot[1:1 + n], slot[1 + n:]
        defaults = [z3.IntVal(v) for v in self.cfg.defaults]
        if method == "init":
            granted = z3.And(z3.Not(bound), self._used(state) < self.cfg.pool_size)
            return granted, self._write(state, sid, [TRUE, *defaults, *defaults]), err
        if method == "fini":      # an unbound table holds the defaults, as the lifted concrete state does
            return bound, self._write(state, sid, [FALSE, *defaults, *defaults]), err
        if method == "commit":
            return bound, self._write(state, sid, [bound, *working, *working]), err
        if method == "rollback":
            return bound, self._write(state, sid, [bound, *base, *base]), err
        index, bad_key = self._key(arg)
        value = arg.fields.get("value") if arg.kind == "record" else None
        if value is None or value.kind != "number":
            return FALSE, state, TRUE
        written = [z3.If(index == i, value.z, w) for i, w in enumerate(working)]
        granted = z3.And(bound, index >= 0)
        return granted, self._write(state, sid, [bound, *base, *written]), anyof([err, bad_key])

    def expression(self, state: tuple, method: str, arg: Sym):
        if method not in EXPRESSIONS:
            return SNum(z3.IntVal(0)), TRUE
        sid, err = symbolic_sid(arg)
        index, bad_key = self._key(arg)
        n = len(self.cfg.keys)
        slot = self._slot(state, sid)
        copy = slot[1:1 + n] if method == "get" else slot[1 + n:]
        return SNum(self._pick(copy, index)), anyof([err, bad_key, z3.Not(slot[0]), index < 0])
