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
