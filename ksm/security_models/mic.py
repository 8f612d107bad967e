"""Mic: mandatory integrity control by integrity levels.

What the model does (KasperskyOS Community Edition docs, pages "Mic security model",
"... object", "... create/execute/upgrade/call/invoke/read/write rule", "...
query_level expression", KCE 1.1-1.4; restated in our own words):

* Subjects (processes, the kernel) and resources used via IPC carry an *integrity
  level*.  A subject also carries *levelR*: the lowest level of subjects/resources
  it may still receive data from.  By default data must not flow from lower to
  higher integrity, nor between incomparable levels; levelR relaxes this for a
  receiving subject (model page).
* Levels come from ``config``: either a list of names, linearly ordered (we read the
  list as ascending, as in the docs' ``["LOW", "MEDIUM", "HIGH"]``), or
  ``{ degrees : [...], categories : [...] }``, giving the set ``2^categories x
  degrees`` written ``{cats}/degree``, where ``E/F >= A/B`` iff ``E`` includes ``A``
  and degree ``F >= B``; other pairs are incomparable (object page).
* A level in a rule argument is ``Level = LevelFull | LevelNoCategory`` with
  ``LevelFull = { degree : Text | (), categories : List<Text> | () }`` and
  ``LevelNoCategory = Text`` (create page).
* ``create {source, target, container, driver, level}`` labels a new resource
  ``target`` created for process ``source``, managed by ``driver``, inside
  ``container`` (``()``: root resource, no container).  Denied when ``level``
  exceeds or is incomparable to the level of source, driver or container, when one
  of those has no level, or a SID is out of range (create page).
* ``execute {image, target, level, levelR}`` labels a starting subject.  ``level :
  ()`` means the level of the executable ``image``; with ``image : ()`` a level is
  required; ``levelR : ()`` means levelR = the target's level.  Denied when the
  level exceeds or is incomparable to the image's level, when levelR exceeds or is
  incomparable to the level, when the image has no level, or a SID is out of range
  (execute page; 1.1 says "levelR equals level", 1.2+ "equals the target's level",
  which is the same value here).
* ``upgrade {source, target, container, driver, level}`` raises an existing level.
  Denied when the new level does not exceed the target's level, when it exceeds
  the level of source, driver or container, when the target's level exceeds the
  source's, when source/driver/container have no level, or a SID is out of range
  (upgrade page).
* ``call {source, target}`` (data target -> source, e.g. a reply) and ``read``
  (consumer source reads resource target) are granted when ``L(source) <=
  L(target)`` or ``levelR(source) <= L(target)``; ``invoke`` (data source -> target)
  and ``write`` (consumer source writes resource target) are granted when
  ``L(target) <= L(source)``.  All four are denied otherwise, when a level is
  missing, or a SID is out of range (call/invoke/read/write pages).
* ``query_level {source}`` gives the level of ``source`` for a ``choice``; it runs
  incorrectly when the SID has no level or is out of range (query_level page).

Denied versus "runs incorrectly"
--------------------------------
Every documented failure of a **rule** returns ``RuleResult(granted=False, <the
same state object>, "denied: ...")``; every documented failure of ``query_level``
raises :class:`ModelError` (``"runs incorrectly: ..."``).  A malformed argument
raises :class:`ModelError` in rules too: a SID field that is not a non-negative
integer, a level that is not a level of this object (unknown name/degree/category,
categories in a list configuration, extra record fields), ``execute`` with both
``image : ()`` and ``level : ()``, ``upgrade`` with ``level : ()``.

Levels and ``choice``
---------------------
Internally a level is a :class:`MicLevel` ``(degree index, frozenset of
categories)``; a list configuration is a degrees-only configuration without
categories.  ``query_level`` returns, for a **list** configuration, the level's name
(``"HIGH"``); for a **degrees/categories** configuration the record ``{degree :
"high", categories : ["net", ...]}`` (categories in configuration order).  A
``choice`` case label is parsed as a level of the object with the same rules as a
rule argument, so ``"HIGH"``, ``"high"`` (= ``{}/high``) and ``{degree : "high",
categories : ["log", "net"]}`` are all valid labels; by default an arm matches when
its level *equals* the queried level (:data:`QUERY_LEVEL_MATCH`).  A label that is
not a level of the object never matches.

State
-----
:class:`MicState` is an immutable, hashable value: a read-only mapping ``sid ->
MicContext(level, level_r)``; ``level_r`` is None for resources labelled by
``create`` (they never act as receivers; if one does, levelR = its level).

Open points (not stated by the docs; our choices)
-------------------------------------------------
1. ``create``/``execute`` on a SID that already has a level: denied by default
   ("the SID is already labelled"; relabelling would bypass ``upgrade``'s checks).
   :data:`ALLOW_RELABEL` = True overwrites instead.
2. ``create`` with ``level : ()``: the docs do not say.  By default the target gets
   the greatest level that passes the checks, i.e. the meet (lowest degree,
   common categories) of the levels of source, driver and container
   (:data:`CREATE_UNIT_LEVEL` = ``"meet"``); ``"source"`` gives it the source's
   level instead (then denied if that exceeds driver/container).
3. ``upgrade``: the docs list "exceeds" for source/driver/container and the
   target-vs-source check but, unlike ``create``, do not mention incomparable
   levels.  By default incomparable is denied there too
   (:data:`UPGRADE_DENY_INCOMPARABLE`); the new level must strictly exceed the
   target's level (equal or incomparable: "does not exceed" -> denied).  The
   documented "target's level exceeds the source's" denial is implied by the other
   two checks (``L(target) < level <= L(source)``; with the option off, a target
   strictly above the source would put the level strictly above it too), so it
   never decides on its own; it is still checked, last.
4. ``upgrade`` of a target without a level: denied ("nothing to upgrade").
5. ``degree : ()`` in a level record means the lowest degree; ``categories : ()``
   (or a missing field) the empty category set.
6. ``Level | ...`` in the signatures: we accept a level name, a level record, and a
   :class:`MicLevel`; a ``query_level`` result is such a name or record.
7. ``choice`` on ``query_level``: equality of levels (:data:`QUERY_LEVEL_MATCH` =
   ``"equal"``); ``"at_least"`` takes the first arm whose level is ``<=`` the
   queried level instead.
8. The permissible SID range: :data:`SID_LIMIT` (default ``None`` = unbounded).
9. ``execute`` keeps the target's levelR when it is later upgraded (``upgrade``
   only changes the level; the old levelR stays <= the new level).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from collections.abc import Iterable, Mapping, Sequence

import z3

from policy_lang.solution import PolicyObjectDef

from . import ModelError, SidMap, RuleResult, require_sid

#: SIDs ``>= SID_LIMIT`` are outside the permissible range (``None``: no bound).
SID_LIMIT: int | None = None
#: ``create``/``execute`` may overwrite the level of an already labelled SID.
ALLOW_RELABEL: bool = False
#: Level given by ``create`` with ``level : ()``: ``"meet"`` or ``"source"``.
CREATE_UNIT_LEVEL: str = "meet"
#: ``upgrade`` denies incomparable levels where the docs only say "exceeds".
UPGRADE_DENY_INCOMPARABLE: bool = True
#: How ``choice`` case labels match ``query_level``: ``"equal"`` or ``"at_least"``.
QUERY_LEVEL_MATCH: str = "equal"

RULES = ("create", "execute", "upgrade", "call", "invoke", "read", "write")
EXPRESSIONS = ("query_level",)


# ---------------------------------------------------------------------- levels
@dataclass(frozen=True)
class MicLevel:
    """An integrity level: index into the degrees (ascending) and a category set."""

    degree: int
    categories: frozenset = frozenset()


@dataclass(frozen=True)
class MicLattice:
    """The level set of one Mic object, parsed from its ``config``."""

    degrees: tuple[str, ...]
    categories: tuple[str, ...]
    linear: bool                     # config was a plain list of level names

    # -- order
    @staticmethod
    def leq(a: MicLevel, b: MicLevel) -> bool:
        """``a <= b``: b's categories include a's and b's degree is >= a's."""
        return a.degree <= b.degree and a.categories <= b.categories

    def exceeds(self, a: MicLevel, b: MicLevel) -> bool:
        """``a > b`` strictly."""
        return self.leq(b, a) and a != b

    def incomparable(self, a: MicLevel, b: MicLevel) -> bool:
        return not self.leq(a, b) and not self.leq(b, a)

    @staticmethod
    def meet(levels: Iterable[MicLevel]) -> MicLevel:
        levels = list(levels)
        cats = frozenset.intersection(*(lv.categories for lv in levels))
        return MicLevel(min(lv.degree for lv in levels), cats)

    # -- values
    def parse(self, value: Any, what: str = "level") -> MicLevel:
        """A rule argument (or ``choice`` label) as a level; ModelError if it is none."""
        if isinstance(value, MicLevel):
            if not 0 <= value.degree < len(self.degrees) or not value.categories <= frozenset(self.categories):
                raise ModelError(f"runs incorrectly: {what} {value!r} is not a level of this object")
            return value
        if isinstance(value, str):
            if value not in self.degrees:
                raise ModelError(f"runs incorrectly: {what} {value!r} is not a level of this object "
                                 f"(levels: {', '.join(self.degrees)})")
            return MicLevel(self.degrees.index(value))
        if isinstance(value, Mapping):
            extra = set(value) - {"degree", "categories"}
            if extra:
                raise ModelError(f"runs incorrectly: {what} {value!r} has unknown fields {sorted(extra)}")
            deg = value.get("degree")
            if deg is None:
                d = 0
            elif isinstance(deg, str) and deg in self.degrees:
                d = self.degrees.index(deg)
            else:
                raise ModelError(f"runs incorrectly: {what}: {deg!r} is not a degree of this object "
                                 f"(degrees: {', '.join(self.degrees)})")
            cats = value.get("categories")
            if cats is None:
                cs: frozenset = frozenset()
            elif isinstance(cats, (list, tuple, set, frozenset)) and all(isinstance(c, str) for c in cats):
                unknown = sorted(set(cats) - set(self.categories))
                if unknown:
                    raise ModelError(f"runs incorrectly: {what}: {', '.join(map(repr, unknown))} "
                                     f"{'is not a category' if len(unknown) == 1 else 'are not categories'} of this object")
                cs = frozenset(cats)
            else:
                raise ModelError(f"runs incorrectly: {what}: categories {cats!r} is not a list of text")
            return MicLevel(d, cs)
        raise ModelError(f"runs incorrectly: {what} {value!r} is not a level (text or {{degree, categories}})")

    def try_parse(self, value: Any) -> MicLevel | None:
        try:
            return self.parse(value)
        except ModelError:
            return None

    def render(self, level: MicLevel) -> Any:
        """The value ``query_level`` returns: a name (list config) or a level record."""
        if self.linear:
            return self.degrees[level.degree]
        return {"degree": self.degrees[level.degree],
                "categories": [c for c in self.categories if c in level.categories]}

    def text(self, level: MicLevel) -> str:
        """Human form for reasons: ``HIGH`` or ``{net,log}/high``."""
        if self.linear:
            return self.degrees[level.degree]
        cats = ",".join(c for c in self.categories if c in level.categories)
        return f"{{{cats}}}/{self.degrees[level.degree]}"

    def all_levels(self) -> list[MicLevel]:
        """Every level of the set (2^|categories| x |degrees| of them)."""
        out = []
        n = len(self.categories)
        for mask in range(1 << n):
            cs = frozenset(c for i, c in enumerate(self.categories) if mask >> i & 1)
            out.extend(MicLevel(d, cs) for d in range(len(self.degrees)))
        return out


def parse_config(obj: PolicyObjectDef) -> MicLattice:
    """A list of distinct level names, or ``{ degrees : [...], categories : [...] }``."""
    cfg = obj.config
    where = f"Mic object {obj.name}"
    if isinstance(cfg, (list, tuple)):
        if not cfg or not all(isinstance(x, str) for x in cfg) or len(set(cfg)) != len(cfg):
            raise ModelError(f"{where}: a level list must be distinct text literals")
        return MicLattice(tuple(cfg), (), True)
    if isinstance(cfg, Mapping):
        deg, cats = cfg.get("degrees"), cfg.get("categories")
        if not isinstance(deg, (list, tuple)) or not deg or not all(isinstance(x, str) for x in deg) \
                or len(set(deg)) != len(deg):
            raise ModelError(f"{where}: `degrees` must be a non-empty list of distinct text literals")
        if cats is None:
            cats = []
        if not isinstance(cats, (list, tuple)) or not all(isinstance(x, str) for x in cats) \
                or len(set(cats)) != len(cats):
            raise ModelError(f"{where}: `categories` must be a list of distinct text literals")
        return MicLattice(tuple(deg), tuple(cats), False)
    raise ModelError(f"{where}: config must be a list of levels or {{ degrees : [...], categories : [...] }}")


# ----------------------------------------------------------------------- state
@dataclass(frozen=True)
class MicContext:
    """The security context of one SID: its level, and levelR for subjects."""

    level: MicLevel
    level_r: MicLevel | None = None

    @property
    def receive_floor(self) -> MicLevel:
        """levelR, or the level itself for a resource labelled by ``create``."""
        return self.level if self.level_r is None else self.level_r


class MicState(SidMap):
    """Immutable state of one Mic object: ``sid -> MicContext``."""

    __slots__ = ()
    contexts = SidMap.entries_by_sid
    context = SidMap.get
    with_context = SidMap.with_entry


class _Denied(Exception):
    """Internal: a documented denial found while checking a rule."""


# ----------------------------------------------------------------------- model
class MicModel:
    """Concrete semantics of the Mic model (see the module docstring)."""

    name: ClassVar[str] = "Mic"

    def __init__(self, *, sid_limit: int | None = SID_LIMIT, allow_relabel: bool = ALLOW_RELABEL,
                 create_unit_level: str = CREATE_UNIT_LEVEL,
                 upgrade_deny_incomparable: bool = UPGRADE_DENY_INCOMPARABLE,
                 query_level_match: str = QUERY_LEVEL_MATCH) -> None:
        if create_unit_level not in ("meet", "source"):
            raise ValueError("create_unit_level must be 'meet' or 'source'")
        if query_level_match not in ("equal", "at_least"):
            raise ValueError("query_level_match must be 'equal' or 'at_least'")
        self.sid_limit = sid_limit
        self.allow_relabel = allow_relabel
        self.create_unit_level = create_unit_level
        self.upgrade_deny_incomparable = upgrade_deny_incomparable
        self.query_level_match = query_level_match

    # -- helpers
    def _in_range(self, sid: int) -> bool:
        return self.sid_limit is None or sid < self.sid_limit

    def _sids(self, arg: Any, required: Sequence[str], optional: Sequence[str] = ()) -> dict[str, int | None]:
        """The SID fields of ``arg`` (optional ones may be ``()``/absent -> None)."""
        out: dict[str, int | None] = {}
        for key in required:
            out[key] = require_sid(arg, key)
        for key in optional:
            out[key] = None if arg.get(key) is None else require_sid(arg, key)
        return out

    def _check_range(self, sids: Mapping[str, int | None]) -> None:
        for key, sid in sids.items():
            if sid is not None and not self._in_range(sid):
                raise _Denied(f"{key} sid {sid} is outside the permissible range (< {self.sid_limit})")

    @staticmethod
    def _need(state: MicState, sids: Mapping[str, int | None], keys: Sequence[str]) -> dict[str, MicContext]:
        """Contexts of the named SIDs; a documented denial if one has no level."""
        out = {}
        missing = []
        for key in keys:
            sid = sids[key]
            if sid is None:
                continue
            ctx = state.context(sid)
            if ctx is None:
                missing.append(f"{key} (sid {sid})")
            else:
                out[key] = ctx
        if missing:
            raise _Denied(f"no integrity level was assigned to {', '.join(missing)}")
        return out

    def _not_above(self, lat: MicLattice, level: MicLevel, ctxs: Mapping[str, MicContext],
                   what: str, deny_incomparable: bool = True) -> None:
        for key, ctx in ctxs.items():
            if lat.exceeds(level, ctx.level):
                raise _Denied(f"{what} {lat.text(level)} exceeds the level of {key} ({lat.text(ctx.level)})")
            if deny_incomparable and lat.incomparable(level, ctx.level):
                raise _Denied(f"{what} {lat.text(level)} is incomparable to the level of {key} ({lat.text(ctx.level)})")

    def _relabel(self, state: MicState, sid: int, key: str, lat: MicLattice) -> None:
        ctx = state.context(sid)
        if ctx is not None and not self.allow_relabel:
            raise _Denied(f"{key} sid {sid} is already labelled ({lat.text(ctx.level)})")

    # -- protocol
    def initial_state(self, obj: PolicyObjectDef) -> MicState:
        parse_config(obj)
        return MicState()

    def rule(self, obj: PolicyObjectDef, state: MicState, method: str, arg: Any) -> RuleResult:
        if method not in RULES:
            raise ModelError(f"runs incorrectly: Mic has no rule `{method}`")
        lat = parse_config(obj)
        try:
            new_state, what = getattr(self, f"_rule_{method}")(lat, state, arg)
        except _Denied as d:
            return RuleResult(False, state, f"denied: {obj.name}.{method}: {d}")
        return RuleResult(True, new_state, f"granted: {obj.name}.{method}: {what}")

    def _rule_create(self, lat: MicLattice, state: MicState, arg: Any) -> tuple[MicState, str]:
        sids = self._sids(arg, ("source", "target", "driver"), ("container",))
        raw = arg.get("level")
        level = None if raw is None else lat.parse(raw)
        self._check_range(sids)
        ctxs = self._need(state, sids, ("source", "driver", "container"))
        if level is None:
            if self.create_unit_level == "meet":
                level = lat.meet(c.level for c in ctxs.values())
            else:
                level = ctxs["source"].level
        self._not_above(lat, level, ctxs, "level")
        self._relabel(state, sids["target"], "target", lat)
        return (state.with_context(sids["target"], MicContext(level)),
                f"target sid {sids['target']} labelled {lat.text(level)}")

    def _rule_execute(self, lat: MicLattice, state: MicState, arg: Any) -> tuple[MicState, str]:
        sids = self._sids(arg, ("target",), ("image",))
        raw, raw_r = arg.get("level"), arg.get("levelR")
        if sids["image"] is None and raw is None:
            raise ModelError("runs incorrectly: execute with `image : ()` needs a `level`")
        level = None if raw is None else lat.parse(raw, "level")
        level_r = None if raw_r is None else lat.parse(raw_r, "levelR")
        self._check_range(sids)
        ctxs = self._need(state, sids, ("image",))
        if level is None:
            level = ctxs["image"].level
        elif "image" in ctxs:
            self._not_above(lat, level, ctxs, "level")
        if level_r is None:
            level_r = level
        elif lat.exceeds(level_r, level):
            raise _Denied(f"levelR {lat.text(level_r)} exceeds level {lat.text(level)}")
        elif lat.incomparable(level_r, level):
            raise _Denied(f"levelR {lat.text(level_r)} is incomparable to level {lat.text(level)}")
        self._relabel(state, sids["target"], "target", lat)
        return (state.with_context(sids["target"], MicContext(level, level_r)),
                f"target sid {sids['target']} runs at {lat.text(level)}, levelR {lat.text(level_r)}")

    def _rule_upgrade(self, lat: MicLattice, state: MicState, arg: Any) -> tuple[MicState, str]:
        sids = self._sids(arg, ("source", "target", "driver"), ("container",))
        raw = arg.get("level")
        if raw is None:
            raise ModelError("runs incorrectly: upgrade needs a `level`")
        level = lat.parse(raw)
        self._check_range(sids)
        target = state.context(sids["target"])
        if target is None:
            raise _Denied(f"target sid {sids['target']} has no integrity level to upgrade")
        ctxs = self._need(state, sids, ("source", "driver", "container"))
        if not lat.exceeds(level, target.level):
            raise _Denied(f"level {lat.text(level)} does not exceed the target's level {lat.text(target.level)}")
        self._not_above(lat, level, ctxs, "level", self.upgrade_deny_incomparable)
        self._not_above(lat, target.level, {"source": ctxs["source"]}, "the target's level",
                        self.upgrade_deny_incomparable)
        return (state.with_context(sids["target"], MicContext(level, target.level_r)),
                f"target sid {sids['target']} raised {lat.text(target.level)} -> {lat.text(level)}")

    def _flow_pair(self, state: MicState, arg: Any) -> tuple[MicContext, MicContext]:
        sids = self._sids(arg, ("source", "target"))
        self._check_range(sids)
        ctxs = self._need(state, sids, ("source", "target"))
        return ctxs["source"], ctxs["target"]

    def _receive(self, lat: MicLattice, state: MicState, arg: Any, verb: str) -> tuple[MicState, str]:
        """call / read: data flows target -> source."""
        src, tgt = self._flow_pair(state, arg)
        ls, lr, lt = lat.text(src.level), lat.text(src.receive_floor), lat.text(tgt.level)
        if lat.leq(src.level, tgt.level):
            return state, f"source level {ls} does not exceed target level {lt}"
        if lat.leq(src.receive_floor, tgt.level):
            return state, f"source levelR {lr} does not exceed target level {lt}"
        rel = "exceeds" if lat.exceeds(src.level, tgt.level) else "is incomparable to"
        rel_r = "exceeds" if lat.exceeds(src.receive_floor, tgt.level) else "is incomparable to"
        raise _Denied(f"{verb}: source level {ls} {rel} target level {lt} and source levelR {lr} {rel_r} it")

    def _send(self, lat: MicLattice, state: MicState, arg: Any, verb: str) -> tuple[MicState, str]:
        """invoke / write: data flows source -> target."""
        src, tgt = self._flow_pair(state, arg)
        ls, lt = lat.text(src.level), lat.text(tgt.level)
        if lat.leq(tgt.level, src.level):
            return state, f"target level {lt} does not exceed source level {ls}"
        rel = "exceeds" if lat.exceeds(tgt.level, src.level) else "is incomparable to"
        raise _Denied(f"{verb}: target level {lt} {rel} source level {ls}")

    def _rule_call(self, lat, state, arg):
        return self._receive(lat, state, arg, "data from target to source")

    def _rule_read(self, lat, state, arg):
        return self._receive(lat, state, arg, "source reads target")

    def _rule_invoke(self, lat, state, arg):
        return self._send(lat, state, arg, "data from source to target")

    def _rule_write(self, lat, state, arg):
        return self._send(lat, state, arg, "source writes target")

    def _query(self, obj: PolicyObjectDef, lat: MicLattice, state: MicState, method: str, arg: Any) -> MicLevel:
        if method not in EXPRESSIONS:
            raise ModelError(f"runs incorrectly: Mic has no expression `{method}`")
        sid = require_sid(arg, "source")
        if not self._in_range(sid):
            raise ModelError(f"runs incorrectly: {obj.name}.query_level: source sid {sid} is outside the "
                             f"permissible range (< {self.sid_limit})")
        ctx = state.context(sid)
        if ctx is None:
            raise ModelError(f"runs incorrectly: {obj.name}.query_level: no integrity level was assigned to sid {sid}")
        return ctx.level

    def expression(self, obj: PolicyObjectDef, state: MicState, method: str, arg: Any) -> Any:
        lat = parse_config(obj)
        return lat.render(self._query(obj, lat, state, method, arg))

    def choose(self, obj: PolicyObjectDef, state: MicState, method: str, arg: Any, cases: Sequence[Any]) -> int | None:
        """First arm whose label, read as a level, equals (or, with ``"at_least"``,
        is <=) the queried level; labels that are no level never match."""
        lat = parse_config(obj)
        level = self._query(obj, lat, state, method, arg)
        for i, case in enumerate(cases):
            if case is None:
                continue
            label = lat.try_parse(case)
            if label is None:
                continue
            if label == level if self.query_level_match == "equal" else lat.leq(label, level):
                return i
        return None


# ---- symbolic (Z3) encoding -----------------------------------------------------------
# State: per tracked SID, 4 + 2n terms (n = number of configured categories, 0 for a
# list configuration), in this order:
#   has, deg, cat_1..cat_n, r_is_level, rdeg, rcat_1..rcat_n
# ``has``: the SID has a context; ``deg``/``cat_i``: its level (index into the degrees,
# membership of each configured category); ``r_is_level``: ``level_r`` is None (a
# resource labelled by ``create``: its receive floor is its level); ``rdeg``/``rcat_i``:
# ``level_r`` otherwise.  Terms that mean nothing (all of a SID without a context,
# levelR of a resource) are kept at 0/False, so equal states have equal terms (the
# k-induction's simple-path constraint compares states term by term).  Tracked SIDs are
# the ones whose context can exist in the modelled runs; a SID outside them has none.
from .symbolic import FALSE, TRUE, Fresh, NotEncoded, SText, SidSlots, Sym, allof, anyof, symbolic_sid, z3_text_value  # noqa: E402

#: Keyword default of :class:`MicSymbolic`: read the module option when the encoding is built.
_MODULE_SETTING: Any = object()


@dataclass(frozen=True)
class _SymLevel:
    """A level as Z3 terms: degree index and one Boolean per configured category."""

    deg: z3.ArithRef
    cats: tuple


@dataclass(frozen=True)
class _SymContext:
    """One SID's context as Z3 terms (see the layout comment above)."""

    has: z3.BoolRef
    level: _SymLevel
    r_is_level: z3.BoolRef
    level_r: _SymLevel

    @property
    def receive_floor(self) -> _SymLevel:
        return _ite_level(self.r_is_level, self.level, self.level_r)


def _ite_level(c: z3.BoolRef, a: _SymLevel, b: _SymLevel) -> _SymLevel:
    return _SymLevel(z3.If(c, a.deg, b.deg), tuple(z3.If(c, x, y) for x, y in zip(a.cats, b.cats)))


def _leq(a: _SymLevel, b: _SymLevel) -> z3.BoolRef:
    """``a <= b`` (:meth:`MicLattice.leq`)."""
    return allof([a.deg <= b.deg] + [z3.Implies(x, y) for x, y in zip(a.cats, b.cats)])


def _equal(a: _SymLevel, b: _SymLevel) -> z3.BoolRef:
    return allof([a.deg == b.deg] + [x == y for x, y in zip(a.cats, b.cats)])


def _exceeds(a: _SymLevel, b: _SymLevel) -> z3.BoolRef:
    """``a > b`` strictly (:meth:`MicLattice.exceeds`)."""
    return z3.And(_leq(b, a), z3.Not(_equal(a, b)))


def _not_above(a: _SymLevel, b: _SymLevel, deny_incomparable: bool) -> z3.BoolRef:
    """What :meth:`MicModel._not_above` lets through for one context.

    With incomparable levels denied, "neither exceeds nor incomparable" is ``a <= b``.
    """
    return _leq(a, b) if deny_incomparable else z3.Not(_exceeds(a, b))


def _meet(levels: list[_SymLevel]) -> _SymLevel:
    deg = levels[0].deg
    for lv in levels[1:]:
        deg = z3.If(lv.deg < deg, lv.deg, deg)
    cats = tuple(allof(list(cs)) for cs in zip(*(lv.cats for lv in levels)))
    return _SymLevel(deg, cats)


class MicSymbolic:
    """The Mic model over symbolic state (see the comment above).

    The keyword options are those of :class:`MicModel`; one left out takes the module
    option as it is when the encoding is built.  A SID limit is not encoded.
    """

    stateful = True
    read_only_rules = ("call", "invoke", "read", "write")     # never change the state (the prover's cone of influence)

    def __init__(self, obj: PolicyObjectDef, sids: tuple[int, ...], known: tuple[int, ...] | None = None, *,
                 sid_limit: int | None = _MODULE_SETTING, allow_relabel: bool = _MODULE_SETTING,
                 create_unit_level: str = _MODULE_SETTING, upgrade_deny_incomparable: bool = _MODULE_SETTING,
                 query_level_match: str = _MODULE_SETTING) -> None:
        def setting(given: Any, default: Any) -> Any:
            return default if given is _MODULE_SETTING else given

        self.obj = obj
        self.lat = parse_config(obj)
        self.sids = sids              # SIDs whose context is encoded
        self.known = known if known is not None else sids   # SIDs that exist (others: escapes)
        self.escapes: list = []       # conditions under which a call reaches an untracked SID
        self.overgrants: list = []    # conditions under which a grant may be spurious (see _context)
        self.allow_relabel = setting(allow_relabel, ALLOW_RELABEL)
        self.create_unit_level = setting(create_unit_level, CREATE_UNIT_LEVEL)
        self.upgrade_deny_incomparable = setting(upgrade_deny_incomparable, UPGRADE_DENY_INCOMPARABLE)
        self.query_level_match = setting(query_level_match, QUERY_LEVEL_MATCH)
        if self.create_unit_level not in ("meet", "source"):
            raise ValueError("create_unit_level must be 'meet' or 'source'")
        if self.query_level_match not in ("equal", "at_least"):
            raise ValueError("query_level_match must be 'equal' or 'at_least'")
        if setting(sid_limit, SID_LIMIT) is not None:
            raise NotEncoded("Mic with a SID limit")
        self.width = 4 + 2 * len(self.lat.categories)       # terms per tracked SID
        self.slots = SidSlots(sids, self.known, self.width)

    # -- constants
    def _text(self, name: str) -> z3.SeqRef:
        try:
            return z3_text_value(name)
        except ValueError as exc:
            raise NotEncoded(f"Mic {self.obj.name}: {exc}") from None

    def _zero(self) -> _SymLevel:
        return _SymLevel(z3.IntVal(0), (FALSE,) * len(self.lat.categories))

    def _const_level(self, level: MicLevel | None) -> _SymLevel:
        if level is None:
            return self._zero()
        return _SymLevel(z3.IntVal(level.degree), tuple(z3.BoolVal(c in level.categories) for c in self.lat.categories))

    # -- state: flat tuple, ``width`` terms per tracked SID
    def _pack(self, ctx: _SymContext) -> list:
        return [ctx.has, ctx.level.deg, *ctx.level.cats, ctx.r_is_level, ctx.level_r.deg, *ctx.level_r.cats]

    def _unpack(self, terms: list) -> _SymContext:
        n = len(self.lat.categories)
        return _SymContext(terms[0], _SymLevel(terms[1], tuple(terms[2:2 + n])),
                           terms[2 + n], _SymLevel(terms[3 + n], tuple(terms[4 + n:4 + 2 * n])))

    def _none(self) -> _SymContext:
        return _SymContext(FALSE, self._zero(), FALSE, self._zero())

    def lift(self, concrete: MicState) -> tuple:
        out: list = []
        for s in self.sids:
            ctx = concrete.context(s) if concrete is not None else None
            if ctx is None:
                out += self._pack(self._none())
            else:
                out += self._pack(_SymContext(TRUE, self._const_level(ctx.level), z3.BoolVal(ctx.level_r is None),
                                              self._const_level(ctx.level_r)))
        return tuple(out)

    def fresh(self, fresh: Fresh) -> tuple[tuple, z3.BoolRef]:
        """Any state, constrained by what holds in every reachable one.

        Degrees are in range; meaningless terms are 0/False; a subject's levelR is
        ``<=`` its level (``execute`` checks it and ``upgrade`` only raises the level).
        """
        name, cats, top = self.obj.name, self.lat.categories, len(self.lat.degrees)
        out: list = []
        wf: list = []
        for s in self.sids:
            has = fresh.bool(f"{name}[{s}].has")
            level = _SymLevel(fresh.int(f"{name}[{s}].deg"), tuple(fresh.bool(f"{name}[{s}].{c}") for c in cats))
            r_is_level = fresh.bool(f"{name}[{s}].r_is_level")
            level_r = _SymLevel(fresh.int(f"{name}[{s}].rdeg"), tuple(fresh.bool(f"{name}[{s}].r.{c}") for c in cats))
            ctx = _SymContext(has, level, r_is_level, level_r)
            out += self._pack(ctx)
            zero = self._zero()
            wf.append(z3.If(has,
                            z3.And(level.deg >= 0, level.deg < top,
                                   z3.If(r_is_level, _equal(level_r, zero),
                                         z3.And(level_r.deg >= 0, _leq(level_r, level)))),
                            z3.And(_equal(level, zero), z3.Not(r_is_level), _equal(level_r, zero))))
        return tuple(out), allof(wf)

    # -- helpers
    def _context(self, state: tuple, sid: z3.ArithRef, labelling: bool = False) -> _SymContext:
        """The context of a symbolic SID (none for a SID that is not tracked).

        ``labelling``: the lookup of the *target* of ``create``/``execute``.  There, an
        untracked SID seen as unlabelled can only make the encoding grant a relabel
        the decision function denies, and the write lands outside the tracked state;
        contexts of distinct SIDs are independent (no pool), so that over-approximates
        the transitions and stays sound for proofs of states and of "never granted".
        It is not an escape but an *over-grant*, noted in ``overgrants``: the prover
        treats it as an escape where a spurious grant would hide a violation (the
        event an ``always`` property is about), and a counterexample that relies on
        it and that the decision function rejects becomes UNKNOWN, not a bug.
        """
        outside = self.slots.untracked(sid)
        if not labelling:
            self.escapes.append(outside)
        elif not self.allow_relabel and not z3.is_false(z3.simplify(outside)):
            self.overgrants.append(outside)
        return self._unpack(self.slots.read(state, sid, self._pack(self._none())))

    def _set(self, state: tuple, sid: z3.ArithRef, ctx: _SymContext) -> tuple:
        return self.slots.write(state, sid, self._pack(ctx))

    @staticmethod
    def _record(arg: Sym) -> dict | None:
        """The fields of a record argument (None: not a record, which runs incorrectly)."""
        if arg.kind != "record":
            return None
        if arg.present is not None:
            raise NotEncoded("Mic argument given as a union value")
        return arg.fields

    @staticmethod
    def _given(fields: dict, key: str) -> Sym | None:
        """A field that ``arg.get(key)`` would not read as None (absent or ``()``)."""
        v = fields.get(key)
        return None if v is None or v.kind == "unit" else v

    def _sids(self, arg: Sym, required: tuple[str, ...], optional: tuple[str, ...] = ()):
        """SID fields like :meth:`MicModel._sids`: ``({key: sid term or None}, malformed)``."""
        out: dict = {}
        errs: list = []
        for key in required:
            out[key], e = symbolic_sid(arg, key)
            errs.append(e)
        for key in optional:
            if self._given(arg.fields, key) is None:
                out[key] = None
            else:
                out[key], e = symbolic_sid(arg, key)
                errs.append(e)
        return out, anyof(errs)

    def _degree(self, text: z3.SeqRef) -> tuple[z3.ArithRef, z3.BoolRef]:
        """Index of a degree name (0 when it is none), and "it is none"."""
        names = [self._text(d) for d in self.lat.degrees]
        deg: z3.ArithRef = z3.IntVal(0)
        for i in reversed(range(len(names))):
            deg = z3.If(text == names[i], i, deg)
        return deg, z3.Not(anyof([text == n for n in names]))

    def _categories(self, value: Sym) -> tuple[tuple, z3.BoolRef]:
        """Category membership from a ``categories`` field, and "not a list of known categories"."""
        if value.kind != "list":
            return (FALSE,) * len(self.lat.categories), TRUE
        names = [self._text(c) for c in self.lat.categories]
        cats = tuple(anyof([z3.And(j < value.length, x.z == n) for j, x in enumerate(value.items) if x.kind == "text"])
                     for n in names)
        bad = anyof([z3.And(j < value.length, z3.Not(anyof([x.z == n for n in names])) if x.kind == "text" else TRUE)
                     for j, x in enumerate(value.items)])
        return cats, bad

    def _level(self, value: Sym) -> tuple[_SymLevel, z3.BoolRef]:
        """A level argument like :meth:`MicLattice.parse`: (level, "parse raises ModelError")."""
        zero = self._zero()
        if value.kind == "text":
            deg, bad = self._degree(value.z)
            return _SymLevel(deg, zero.cats), bad
        if value.kind != "record":
            return zero, TRUE
        if value.present is not None:
            raise NotEncoded("Mic level given as a union value")
        if set(value.fields) - {"degree", "categories"}:
            return zero, TRUE
        d = self._given(value.fields, "degree")
        if d is None:
            deg, bad_d = z3.IntVal(0), FALSE
        elif d.kind == "text":
            deg, bad_d = self._degree(d.z)
        else:
            return zero, TRUE
        c = self._given(value.fields, "categories")
        cats, bad_c = (zero.cats, FALSE) if c is None else self._categories(c)
        return _SymLevel(deg, cats), anyof([bad_d, bad_c])

    # -- rules: (granted, state written if granted, runs incorrectly)
    def rule(self, state: tuple, method: str, arg: Sym):
        """Like :meth:`MicModel.rule`.  Malformed arguments are ModelErrors raised before
        any check of the state there, so the error condition never reads the state."""
        if method not in RULES or self._record(arg) is None:
            return FALSE, state, TRUE
        return getattr(self, f"_rule_{method}")(state, arg)

    def _rule_create(self, state: tuple, arg: Sym):
        sids, err = self._sids(arg, ("source", "target", "driver"), ("container",))
        raw = self._given(arg.fields, "level")
        level, bad = (None, FALSE) if raw is None else self._level(raw)
        ctxs = {k: self._context(state, sids[k]) for k in ("source", "driver", "container") if sids[k] is not None}
        target = self._context(state, sids["target"], labelling=True)
        if level is None:
            level = (_meet([c.level for c in ctxs.values()]) if self.create_unit_level == "meet"
                     else ctxs["source"].level)
        conds = [c.has for c in ctxs.values()] + [_leq(level, c.level) for c in ctxs.values()]
        if not self.allow_relabel:
            conds.append(z3.Not(target.has))
        new = self._set(state, sids["target"], _SymContext(TRUE, level, TRUE, self._zero()))
        return allof(conds), new, anyof([err, bad])

    def _rule_execute(self, state: tuple, arg: Sym):
        sids, err = self._sids(arg, ("target",), ("image",))
        raw, raw_r = self._given(arg.fields, "level"), self._given(arg.fields, "levelR")
        if sids["image"] is None and raw is None:
            return FALSE, state, TRUE
        level, bad = (None, FALSE) if raw is None else self._level(raw)
        level_r, bad_r = (None, FALSE) if raw_r is None else self._level(raw_r)
        conds: list = []
        if sids["image"] is not None:
            image = self._context(state, sids["image"])
            conds.append(image.has)
            if level is None:
                level = image.level
            else:
                conds.append(_leq(level, image.level))
        assert level is not None
        if level_r is None:
            level_r = level
        else:
            conds.append(_leq(level_r, level))
        target = self._context(state, sids["target"], labelling=True)
        if not self.allow_relabel:
            conds.append(z3.Not(target.has))
        new = self._set(state, sids["target"], _SymContext(TRUE, level, FALSE, level_r))
        return allof(conds), new, anyof([err, bad, bad_r])

    def _rule_upgrade(self, state: tuple, arg: Sym):
        sids, err = self._sids(arg, ("source", "target", "driver"), ("container",))
        raw = self._given(arg.fields, "level")
        if raw is None:
            return FALSE, state, TRUE
        level, bad = self._level(raw)
        target = self._context(state, sids["target"])
        ctxs = {k: self._context(state, sids[k]) for k in ("source", "driver", "container") if sids[k] is not None}
        deny_inc = self.upgrade_deny_incomparable
        conds = [target.has] + [c.has for c in ctxs.values()] + [_exceeds(level, target.level)]
        conds += [_not_above(level, c.level, deny_inc) for c in ctxs.values()]
        conds.append(_not_above(target.level, ctxs["source"].level, deny_inc))
        new = self._set(state, sids["target"], _SymContext(TRUE, level, target.r_is_level, target.level_r))
        return allof(conds), new, anyof([err, bad])

    def _flow_pair(self, state: tuple, arg: Sym):
        sids, err = self._sids(arg, ("source", "target"))
        return self._context(state, sids["source"]), self._context(state, sids["target"]), err

    def _receive(self, state: tuple, arg: Sym):
        """call / read: data flows target -> source."""
        src, tgt, err = self._flow_pair(state, arg)
        ok = z3.Or(_leq(src.level, tgt.level), _leq(src.receive_floor, tgt.level))
        return z3.And(src.has, tgt.has, ok), state, err

    def _send(self, state: tuple, arg: Sym):
        """invoke / write: data flows source -> target."""
        src, tgt, err = self._flow_pair(state, arg)
        return z3.And(src.has, tgt.has, _leq(tgt.level, src.level)), state, err

    _rule_call = _rule_read = _receive
    _rule_invoke = _rule_write = _send

    # -- query_level
    def _query(self, state: tuple, arg: Sym) -> tuple[_SymLevel, z3.BoolRef]:
        self._record(arg)
        sid, err = symbolic_sid(arg, "source")
        ctx = self._context(state, sid)
        return ctx.level, anyof([err, z3.Not(ctx.has)])

    def expression(self, state: tuple, method: str, arg: Sym):
        """``query_level`` of a list configuration: the level's name.

        For a degrees/categories configuration the value is a record whose list of
        categories has a length that depends on the state; it is not encoded (``choice``
        on it is, by :meth:`choose`)."""
        if method not in EXPRESSIONS:
            return SText(z3.StringVal("")), TRUE
        if not self.lat.linear:
            raise NotEncoded("Mic query_level value of a degrees/categories object")
        level, err = self._query(state, arg)
        name: z3.SeqRef = z3.StringVal("")
        for i, d in enumerate(self.lat.degrees):
            name = z3.If(level.deg == i, self._text(d), name)
        return SText(name), err

    def choose(self, state: tuple, method: str, arg: Sym, cases: list) -> tuple[list, z3.BoolRef]:
        """Per arm: its label, read as a level, matches the queried level.

        The engine takes the first arm whose condition holds, as :meth:`MicModel.choose`
        does; a label that is no level of the object (and ``_``) never matches."""
        if method not in EXPRESSIONS:
            return [FALSE for _ in cases], TRUE
        level, err = self._query(state, arg)
        conds: list = []
        for case in cases:
            label = None if case is None else self.lat.try_parse(case)
            if label is None:
                conds.append(FALSE)
                continue
            lv = self._const_level(label)
            conds.append(_equal(lv, level) if self.query_level_match == "equal" else _leq(lv, level))
        return conds, err
