"""Flow: per-resource finite-state machines.

What the model does (KasperskyOS Community Edition docs, pages "Flow security
model", "... object", "... init/fini/enter/allow rule", "... query expression",
KCE 1.1 and 1.2; restated in our own words):

* An object describes one FSM configuration: ``type State`` (a variant of text
  literals), ``config.states`` (the state set), ``config.initial`` and
  ``config.transitions`` (state -> list of states it may switch to).  Every FSM of
  the object has this configuration; a SID has at most one FSM per object.
* ``init {sid}`` creates an FSM in the initial state and binds it to the SID;
  denied when the SID already has an FSM of this object or is out of range.
* ``fini {sid}`` destroys the SID's FSM; denied when it has none or is out of range.
* ``enter {sid, state}`` switches the FSM to ``state``; denied when the
  configuration does not allow the transition from the current state, when the SID
  has no FSM, or when it is out of range.
* ``allow {sid, states}`` is granted iff the current state is in ``states``; denied
  otherwise, when the SID has no FSM, or when it is out of range.  No state change.
* ``query {sid}`` gives the current state, meant as a ``choice`` selector; it runs
  incorrectly when the SID has no FSM or is out of range.

Denied versus "runs incorrectly"
--------------------------------
Every documented failure of a **rule** returns ``RuleResult(granted=False, <the
same state object>, "denied: ...")``; every documented failure of ``query`` raises
:class:`ModelError` (``"runs incorrectly: ..."``).  A malformed argument (missing
field, SID not a non-negative integer, ``state`` not text, ``states`` not a list)
raises :class:`ModelError` in rules too.

``choose``: the ``choice`` arm whose case literal equals the current state; None
(the engine then takes ``_``) when no literal equals it.

State
-----
:class:`FlowState` is an immutable, hashable value: a read-only mapping
``sid -> current state`` for the SIDs that have an FSM.

Open points (not stated by the docs; our choices)
-------------------------------------------------
1. A self-loop ``enter`` into the current state is granted only when the state
   lists itself in ``transitions`` (the docs' rule is "the transition must be
   permitted"; no exception for staying put is mentioned).  The smart_lock example
   relies on this ("already unlocked" is denied).
2. A state missing from ``transitions`` has no outgoing transitions (the docs'
   example leaves terminal states out).
3. ``enter`` to a value that is not one of ``config.states`` is denied as a
   transition the configuration does not permit (the policy compiler rejects such
   literals; a message field could still carry one).
4. The permissible SID range: :data:`SID_LIMIT` (default ``None`` = unbounded).
5. ``allow`` with an empty set is simply denied (the state is in no empty set).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar
from collections.abc import Mapping, Sequence

import z3

from policy_lang.solution import PolicyObjectDef

from . import ModelError, SidMap, RuleResult, require_sid

#: SIDs ``>= SID_LIMIT`` are outside the permissible range (``None``: no bound).
SID_LIMIT: int | None = None

RULES = ("init", "fini", "enter", "allow")
EXPRESSIONS = ("query",)


# ---------------------------------------------------------------------- config
@dataclass(frozen=True)
class FlowConfig:
    states: tuple[str, ...]
    initial: str
    transitions: Mapping[str, frozenset]     # state -> states it may enter

    def permits(self, current: str, target: str) -> bool:
        return target in self.transitions.get(current, frozenset())


def parse_config(obj: PolicyObjectDef) -> FlowConfig:
    """``{ states : [...], initial : s, transitions : { s : [...] } }``; else ModelError."""
    cfg = obj.config
    where = f"Flow object {obj.name}"
    if not isinstance(cfg, Mapping):
        raise ModelError(f"{where}: config must be a record with states, initial and transitions")
    states = cfg.get("states")
    if not isinstance(states, (list, tuple)) or not states or not all(isinstance(s, str) for s in states):
        raise ModelError(f"{where}: `states` must be a non-empty list of text literals")
    initial = cfg.get("initial")
    if initial not in states:
        raise ModelError(f"{where}: initial state {initial!r} is not in `states`")
    trans = cfg.get("transitions")
    if not isinstance(trans, Mapping):
        raise ModelError(f"{where}: `transitions` must map a state to a list of states")
    out: dict[str, frozenset] = {}
    for src, dsts in trans.items():
        if src not in states:
            raise ModelError(f"{where}: transition from unknown state {src!r}")
        if not isinstance(dsts, (list, tuple)) or any(d not in states for d in dsts):
            raise ModelError(f"{where}: transitions from {src!r} must list known states")
        out[src] = frozenset(dsts)
    return FlowConfig(tuple(states), initial, MappingProxyType(out))


# ----------------------------------------------------------------------- state
class FlowState(SidMap):
    """Immutable state of one Flow object: ``sid -> current FSM state``."""

    __slots__ = ()
    fsms = SidMap.entries_by_sid
    current = SidMap.get
    with_fsm = SidMap.with_entry


# ----------------------------------------------------------------------- model
class FlowModel:
    """Concrete semantics of the Flow model (see the module docstring)."""

    name: ClassVar[str] = "Flow"

    def __init__(self, *, sid_limit: int | None = SID_LIMIT) -> None:
        self.sid_limit = sid_limit

    def _in_range(self, sid: int) -> bool:
        return self.sid_limit is None or sid < self.sid_limit

    def initial_state(self, obj: PolicyObjectDef) -> FlowState:
        parse_config(obj)
        return FlowState()

    def rule(self, obj: PolicyObjectDef, state: FlowState, method: str, arg: Any) -> RuleResult:
        if method not in RULES:
            raise ModelError(f"runs incorrectly: Flow has no rule `{method}`")
        cfg = parse_config(obj)
        sid = require_sid(arg)
        if method == "enter":
            if "state" not in arg:
                raise ModelError("runs incorrectly: argument needs field `state`")
            target = arg["state"]
            if not isinstance(target, str):
                raise ModelError(f"runs incorrectly: {obj.name}.enter: state {target!r} is not text")
        if method == "allow":
            if "states" not in arg:
                raise ModelError("runs incorrectly: argument needs field `states`")
            wanted = arg["states"]
            if not isinstance(wanted, (list, tuple, set, frozenset)) or not all(isinstance(s, str) for s in wanted):
                raise ModelError(f"runs incorrectly: {obj.name}.allow: states {wanted!r} is not a set of states")

        def deny(why: str) -> RuleResult:
            return RuleResult(False, state, f"denied: {obj.name}.{method}: {why}")

        if not self._in_range(sid):
            return deny(f"sid {sid} is outside the permissible range (< {self.sid_limit})")
        current = state.current(sid)
        if method == "init":
            if current is not None:
                return deny(f"sid {sid} already has a state machine of this object (in {current!r})")
            return RuleResult(True, state.with_fsm(sid, cfg.initial),
                              f"granted: {obj.name}.init: state machine of sid {sid} created in {cfg.initial!r}")
        if current is None:
            return deny(f"sid {sid} has no state machine of this object")
        if method == "fini":
            return RuleResult(True, state.without(sid), f"granted: {obj.name}.fini: state machine of sid {sid} destroyed")
        if method == "enter":
            if target not in cfg.states:
                return deny(f"{target!r} is not a state of this machine (states: {', '.join(cfg.states)})")
            if not cfg.permits(current, target):
                allowed = sorted(cfg.transitions.get(current, ()))
                return deny(f"transition {current!r} -> {target!r} is not permitted "
                            f"(from {current!r}: {', '.join(map(repr, allowed)) or 'none'})")
            return RuleResult(True, state.with_fsm(sid, target),
                              f"granted: {obj.name}.enter: sid {sid} {current!r} -> {target!r}")
        # allow
        if current in wanted:
            return RuleResult(True, state, f"granted: {obj.name}.allow: sid {sid} is in {current!r}")
        return deny(f"sid {sid} is in {current!r}, not in {sorted(set(wanted))!r}")

    def expression(self, obj: PolicyObjectDef, state: FlowState, method: str, arg: Any) -> str:
        if method not in EXPRESSIONS:
            raise ModelError(f"runs incorrectly: Flow has no expression `{method}`")
        parse_config(obj)
        sid = require_sid(arg)
        if not self._in_range(sid):
            raise ModelError(f"runs incorrectly: {obj.name}.query: sid {sid} is outside the permissible range (< {self.sid_limit})")
        current = state.current(sid)
        if current is None:
            raise ModelError(f"runs incorrectly: {obj.name}.query: sid {sid} has no state machine of this object")
        return current

    def choose(self, obj: PolicyObjectDef, state: FlowState, method: str, arg: Any, cases: Sequence[Any]) -> int | None:
        """The arm whose literal equals the current state (None: fall back to ``_``)."""
        current = self.expression(obj, state, method, arg)
        for i, case in enumerate(cases):
            if isinstance(case, str) and case == current:
                return i
        return None


# ---- symbolic (Z3) encoding -----------------------------------------------------------
# State: one Z3 integer per tracked SID, the index of its FSM's state in
# ``config.states`` or -1 when the SID has no FSM of this object.  Tracked SIDs are
# the processes started at boot plus the next SID to be handed out; a SID outside
# them has no FSM (nothing could have created one in the modelled runs).
from .symbolic import FALSE, TRUE, Fresh, NotEncoded, SText, SidSlots, Sym, anyof, symbolic_sid, z3_text_value  # noqa: E402


class FlowSymbolic:
    """The Flow model over symbolic state (see the comment above)."""

    stateful = True
    read_only_rules = ("allow",)     # never change the state (the prover's cone of influence)

    def __init__(self, obj: PolicyObjectDef, sids: tuple[int, ...], known: tuple[int, ...] | None = None):
        self.obj = obj
        self.cfg = parse_config(obj)
        self.sids = sids              # SIDs whose context is encoded
        self.known = known if known is not None else sids   # SIDs that exist (others: escapes)
        self.escapes: list = []       # conditions under which a call reaches an untracked SID
        self.slots = SidSlots(sids, self.known, 1)
        if SID_LIMIT is not None:
            raise NotEncoded("Flow with a SID limit")

    # -- state as a flat tuple of terms, one per tracked SID
    def lift(self, concrete: FlowState) -> tuple:
        return tuple(z3.IntVal(self.cfg.states.index(concrete.current(s)) if concrete.current(s) is not None else -1)
                     for s in self.sids)

    def fresh(self, fresh: Fresh) -> tuple[tuple, z3.BoolRef]:
        terms = tuple(fresh.int(f"{self.obj.name}[{s}]") for s in self.sids)
        n = len(self.cfg.states)
        return terms, z3.And([z3.And(t >= -1, t < n) for t in terms]) if terms else TRUE

    # -- helpers
    def _current(self, state: tuple, sid: z3.ArithRef) -> z3.ArithRef:
        self.escapes.append(self.slots.untracked(sid))
        return self.slots.read(state, sid, [z3.IntVal(-1)])[0]

    def _set(self, state: tuple, sid: z3.ArithRef, value: z3.ArithRef) -> tuple:
        return self.slots.write(state, sid, [value])

    def _index_of(self, text: z3.SeqRef) -> z3.ArithRef:
        out: z3.ArithRef = z3.IntVal(-2)                # -2: not a state of this machine
        for i, name in reversed(list(enumerate(self.cfg.states))):
            out = z3.If(text == z3_text_value(name), i, out)
        return out

    def name_of(self, idx: z3.ArithRef) -> z3.SeqRef:
        out: z3.SeqRef = z3.StringVal("")
        for i, name in enumerate(self.cfg.states):
            out = z3.If(idx == i, z3_text_value(name), out)
        return out

    # -- rules and expressions: (granted, new state, runs incorrectly)
    def rule(self, state: tuple, method: str, arg: Sym):
        if method not in RULES:
            return FALSE, state, TRUE
        sid, err = symbolic_sid(arg)
        cur = self._current(state, sid)
        if method == "init":
            return cur == -1, self._set(state, sid, z3.IntVal(self.cfg.states.index(self.cfg.initial))), err
        if method == "fini":
            return cur != -1, self._set(state, sid, z3.IntVal(-1)), err
        if method == "enter":
            target = arg.fields.get("state") if arg.kind == "record" else None
            if target is None or target.kind != "text":
                return FALSE, state, TRUE
            tgt = self._index_of(target.z)
            permitted = anyof(z3.And(cur == self.cfg.states.index(a), tgt == self.cfg.states.index(b))
                              for a, bs in self.cfg.transitions.items() for b in sorted(bs))
            return z3.And(cur != -1, permitted), self._set(state, sid, tgt), err
        # allow
        wanted = arg.fields.get("states") if arg.kind == "record" else None
        if wanted is None or wanted.kind != "list" or any(x.kind != "text" for x in wanted.items):
            return FALSE, state, TRUE
        name = self.name_of(cur)
        inside = anyof(z3.And(i < wanted.length, x.z == name) for i, x in enumerate(wanted.items))
        return z3.And(cur != -1, inside), state, err

    def expression(self, state: tuple, method: str, arg: Sym):
        if method != "query":
            return SText(z3.StringVal("")), TRUE
        sid, err = symbolic_sid(arg)
        cur = self._current(state, sid)
        return SText(self.name_of(cur)), anyof([err, cur == -1])
