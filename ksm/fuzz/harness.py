"""The differential-testing harness: every back end against the others, per generated solution.

For each seed, :func:`check_seed` generates a solution (:mod:`ksm.fuzz.generate`),
loads it and its property file, and checks:

a. **crosscheck** — the decision function and the Z3 model decide the same on
   boundary, random and Z3-guided events, after start-up and after random walks
   (:func:`ksm.verify.crosscheck.crosscheck`): no disagreement;
b. **proofs survive probes** — every property the prover answers PROVED is probed
   concretely: random and boundary messages (0, the bounds of every IDL integer,
   powers of two ± 1, the literals of the policy and the properties ± 1, texts that
   match its regular expressions, non-ASCII text) decided by a fresh decision
   function in the start-up state and in states reached by random walks of granted
   events.  For ``never`` no probe may be granted where the ``where`` condition
   holds, for ``always`` none may be denied; ``never state`` and ``invariant`` are
   evaluated in every reached state, and so is a ``reachable state`` the prover
   refutes (proved unreachable);
c. **counterexamples replay** — every REFUTED counterexample (and every witness of a
   ``reachable state``) is replayed on a fresh decision function: the setup events
   must rebuild the start-up state, every step must get the verdict the trace
   states, and the property's condition must hold (or fail) as the trace claims;
d. **nothing raises** — an exception anywhere (loading, crosscheck, the prover,
   the probes) is a finding, and so is a decision whose reason is an internal error.

Walks stay within what the prover models: they start no process after start-up
(execute events are probed, never taken), since processes started later are not
part of the transition relation (docs/proving.md).

A finding carries its seed; ``python -m ksm.fuzz SEED --out DIR`` writes that
solution and runs the checks again.
"""
from __future__ import annotations

import random
import re
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy_lang import load
from policy_lang.props import load_properties
from policy_lang.types import (
    ArrayType,
    BytesType,
    HandleType,
    IntType,
    SequenceType,
    StringType,
    StructType,
    UnionType,
)

from ..engine import INTERNAL_ERROR, SecurityModule
from ..events import Event
from ..expressions import EvalContext, ExprCompiler
from .generate import GeneratedSolution, generate_solution

PROPS_FILE = "einit/src/fuzz.props"


# ============================================================== results
@dataclass
class Finding:
    """One defect: which check found it, on which seed, and how to see it again."""

    seed: int
    check: str            # load | props | crosscheck | proved-contradicted | replay | crash | internal-error
    subject: str          # a property name, an event, or a stage
    detail: str

    def describe(self) -> str:
        return (f"seed {self.seed}: [{self.check}] {self.subject}\n    "
                + self.detail.replace("\n", "\n    ")
                + f"\n    reproduce: python -m ksm.fuzz {self.seed} --out /tmp/fuzz{self.seed}")


@dataclass
class SeedResult:
    seed: int
    seconds: float = 0.0
    loaded: bool = False
    events: int = 0                  # crosscheck: events decided by both back ends
    agreed: int = 0
    not_comparable: int = 0
    over_key_budget: int = 0         # crosscheck: events not checked, their key's Z3 budget used up
    disagreements: int = 0
    properties: int = 0
    statuses: Counter = field(default_factory=Counter)
    proved_probed: int = 0           # PROVED properties (and unreachability proofs) probed
    probes: int = 0                  # concrete decisions / state evaluations made for them
    probe_states: int = 0
    proofs_exercised: int = 0        # PROVED event properties with a probe inside their `where` condition
    probes_granted: int = 0          # probes of event properties the decision function granted ...
    probes_in_region: int = 0        # ... and probes for which the `where` condition held
    replayed: int = 0                # counterexamples and witnesses replayed on a fresh module
    replayed_steps: int = 0
    over_approximated: int = 0       # UNKNOWN: a candidate relied on an over-approximated grant
    crashes: int = 0
    findings: list = field(default_factory=list)
    features: set = field(default_factory=set)
    timings: dict = field(default_factory=dict)
    prove_seconds: dict = field(default_factory=dict)
    over_budget: list = field(default_factory=list)     # properties the prover did not answer in time
    unknown: list = field(default_factory=list)         # "name: why" of every UNKNOWN answer

    def add(self, check: str, subject: str, detail: str) -> None:
        self.findings.append(Finding(self.seed, check, subject, detail))
        if check in ("crash", "internal-error"):
            self.crashes += 1


@dataclass(frozen=True)
class FuzzOptions:
    """Sizes of one seed's checks (the defaults are the CI size)."""

    events_per_key: int = 4          # crosscheck: random events per event key and state
    walk: int = 1                    # crosscheck: states after start-up reached by random walks
    probes_per_key: int = 10         # messages per event key and probe state
    probe_walks: int = 3             # random walks for the probes ...
    walk_steps: int = 6              # ... of this many granted events each
    probe_states: int = 4            # states (besides start-up) in which events are probed
    timeout_ms: int = 2000           # per Z3 query
    depth: int = 4                   # prover: k-induction / BMC bound
    property_seconds: float = 4.0    # wall-clock budget of one property (with isolate)
    crosscheck: bool = True          # check (a); off: only the prover's checks (b) and (c)
    isolate: bool = True             # prove in a forked child, so a budget can be enforced


@dataclass
class FuzzReport:
    """Figures of a run over many seeds (``ksm bench fuzz``)."""

    results: list = field(default_factory=list)
    seconds: float = 0.0

    def _sum(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.results)

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def statuses(self) -> Counter:
        out: Counter = Counter()
        for r in self.results:
            out.update(r.statuses)
        return out

    def figures(self) -> dict:
        st = self.statuses
        return {
            "solutions": len(self.results),
            "loaded": sum(r.loaded for r in self.results),
            "events compared": self._sum("events"),
            "agreed": self._sum("agreed"),
            "not comparable": self._sum("not_comparable"),
            "not checked (key budget)": self._sum("over_key_budget"),
            "disagreements": self._sum("disagreements"),
            "properties": self._sum("properties"),
            "proved": st["PROVED"], "refuted": st["REFUTED"], "unknown": st["UNKNOWN"],
            "over budget": st["OVER-BUDGET"],
            "proofs probed": self._sum("proved_probed"),
            "probes": self._sum("probes"),
            "probe states": self._sum("probe_states"),
            "proofs exercised": self._sum("proofs_exercised"),
            "probes granted": self._sum("probes_granted"),
            "probes in the where region": self._sum("probes_in_region"),
            "counterexamples replayed": self._sum("replayed"),
            "replayed steps": self._sum("replayed_steps"),
            "over-approximated candidates": self._sum("over_approximated"),
            "crashes": self._sum("crashes"),
            "findings": len(self.findings),
            "seconds": round(self.seconds, 1),
        }

    def report(self) -> str:
        f = self.figures()
        seeds = [r.seed for r in self.results]
        span = f"{min(seeds)}..{max(seeds)}" if seeds else "none"
        features: Counter = Counter()
        for r in self.results:
            features.update(r.features)
        slow = sorted(self.results, key=lambda r: -r.seconds)[:3]
        lines = [
            f"fuzz: {f['solutions']} generated solutions (seeds {span}), {f['loaded']} loaded with no error, "
            f"{f['seconds']} s",
            f"crosscheck: {f['events compared']} events compared, {f['agreed']} agreed, "
            f"{f['not comparable']} not comparable, {f['disagreements']} disagreements "
            f"({f['not checked (key budget)']} more not checked: their key's Z3 budget was used up)",
            f"properties: {f['properties']} ({f['proved']} proved, {f['refuted']} refuted, {f['unknown']} unknown, "
            f"{f['over budget']} over the time budget; {f['over-approximated candidates']} of the unknown on an "
            f"over-approximated candidate)",
            f"proofs: {f['proofs probed']} PROVED confirmed by {f['probes']} probes "
            f"in {f['probe states']} states ({f['probes granted']} probe events granted, "
            f"{f['probes in the where region']} inside the `where` condition; {f['proofs exercised']} event "
            f"properties had probes inside it)",
            f"counterexamples: {f['counterexamples replayed']} replayed on a fresh decision function "
            f"({f['replayed steps']} steps)",
            f"crashes: {f['crashes']}",
            f"findings: {f['findings']}",
        ]
        if slow:
            lines.append("slowest seeds: " + ", ".join(f"{r.seed} ({r.seconds:.1f} s)" for r in slow))
        rare = sorted(features.items(), key=lambda kv: (kv[1], kv[0]))[:6]
        lines.append(f"constructs: {len(features)} kinds used; rarest: "
                     + ", ".join(f"{k} ({v} solutions)" for k, v in rare))
        over = [(r.seed, p) for r in self.results for p in r.over_budget]
        if over:
            lines.append(f"over the time budget ({len(over)}): "
                         + "; ".join(f"seed {seed} {p}" for seed, p in over[:10])
                         + (" ..." if len(over) > 10 else ""))
        unknown = [(r.seed, u) for r in self.results for u in r.unknown]
        for seed, u in unknown[:10]:
            lines.append(f"unknown: seed {seed} {u[:300]}")
        for finding in self.findings:
            lines.append(finding.describe())
        return "\n".join(lines)


# ============================================================== probe values
_UINT32 = IntType("UInt32", 32, False)
_UNICODE = "é漢Ω\U0001F600\U0002F800\n\t"     # up to U+2FFFF (the Z3 character range); `.` skips a newline


class _Values:
    """Concrete message values: boundaries, the solution's literals, random."""

    def __init__(self, rng: random.Random, ints: list[int], texts: list[str]):
        self.rng = rng
        near = set()
        for v in ints:
            near.update((v - 1, v, v + 1))
        self.literals = sorted(near)
        powers = set()
        for k in range(65):
            powers.update((2 ** k - 1, 2 ** k, 2 ** k + 1, -(2 ** k) - 1, -(2 ** k), -(2 ** k) + 1))
        self.powers = sorted(powers)
        self.texts = sorted({t for t in texts if "\x00" not in t})

    def int_value(self, t: IntType, mode: str, uniform: int | None = None) -> int:
        lo, hi = t.min, t.max
        if uniform is not None:
            return min(max(uniform, lo), hi)
        r = self.rng.random()
        if mode == "random" and r < 0.3:
            return self.rng.randint(lo, hi)
        if r < 0.75:
            pool = [v for v in self.literals if lo <= v <= hi]      # the policy's literals and neighbours
        elif r < 0.9:
            pool = [v for v in self.powers if lo <= v <= hi]        # powers of two, +-1
        else:
            pool = [lo, hi, 0, 1]
        return self.rng.choice(pool or [lo, hi, 0])

    def text_value(self, bound: int) -> str:
        r = self.rng.random()
        fits = [t for t in self.texts if len(t) <= bound]
        if r < 0.55 and fits:
            return self.rng.choice(fits)
        if r < 0.65:
            return ""
        if r < 0.75:
            return "a" * bound
        n = self.rng.randint(0, bound)
        return "".join(self.rng.choice("abcxyz019 -" + _UNICODE) for _ in range(n))

    def value(self, t, mode: str, uniform: int | None = None) -> Any:
        if isinstance(t, IntType):
            return self.int_value(t, mode, uniform)
        if isinstance(t, StringType):
            return self.text_value(t.bound)
        if isinstance(t, BytesType):
            return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(0, t.bound)))
        if isinstance(t, HandleType):
            return {"handle": self.rng.choice([0, 1, 2, 3, 4, 5, 7, 0xFFFFFFFF]),
                    "rights": self.int_value(_UINT32, mode, uniform)}
        if isinstance(t, SequenceType):
            n = self.rng.choice([0, 1, t.bound, self.rng.randint(0, t.bound)])
            return [self.value(t.element, mode, uniform) for _ in range(n)]
        if isinstance(t, ArrayType):
            return [self.value(t.element, mode, uniform) for _ in range(t.length)]
        if isinstance(t, StructType):
            return {f.name: self.value(f.type, mode, uniform) for f in t.fields}
        if isinstance(t, UnionType):
            f = self.rng.choice(t.fields)
            return {f.name: self.value(f.type, mode, uniform)}
        raise TypeError(f"no probe value for {t!r}")

    def neighbours(self, params, msg: dict, targets: _Targets | None, count: int) -> list[dict]:
        """Up to ``count`` copies of ``msg``, each with one integer or text leaf changed."""
        leaves: list = []
        for p in params:
            _leaves(p.type, msg[p.name], (p.name,), leaves)
        if not leaves:
            return []
        extra = targets.ints if targets is not None else []
        out = []
        for _ in range(count):
            path, t, v = self.rng.choice(leaves)
            if isinstance(t, IntType):
                options = [v - 1, v + 1, t.min, t.max, 0] + extra + self.rng.sample(self.literals,
                                                                                    min(3, len(self.literals)))
                new = self.rng.choice([x for x in options if t.min <= x <= t.max] or [v])
            else:
                new = self.text_value(t.bound)
            out.append(_replace(msg, path, new))
        return out

    def one(self, params, targets: _Targets | None = None) -> dict:
        """One random message, aimed at ``targets`` half of the time."""
        msg = {p.name: self.value(p.type, self.rng.choice(("boundary", "random"))) for p in params}
        if targets is not None and targets.paths and self.rng.random() < 0.5:
            targets.apply(self, params, msg)
        return msg

    def messages(self, params, count: int, targets: _Targets | None = None) -> list[dict]:
        """``count`` messages: all-zero/-1/1 ones, then random ones; with ``targets``, half
        of them have the fields a condition reads set to its literals (+-1) and texts."""
        out = []
        if any(_has_int(p.type) for p in params):
            for v in (0, -1, 1):
                out.append({p.name: self.value(p.type, "boundary", v) for p in params})
        while len(out) < count:
            mode = "boundary" if len(out) % 2 else "random"
            msg = {p.name: self.value(p.type, mode) for p in params}
            if targets is not None and targets.paths and len(out) % 2 == 0:
                targets.apply(self, params, msg)
            out.append(msg)
        return out[:max(count, 1)]


class _Targets:
    """The message paths and literals of a property's condition, to aim probes at it."""

    _PATH = re.compile(r"\bmessage((?:\.[A-Za-z_][A-Za-z0-9_]*|\.\[\d+\])+)")
    _INT = re.compile(r"(?<![\w.])(-?)(0x[0-9a-fA-F]+|\d+)\b")

    def __init__(self, text: str):
        where = text.split(" where ", 1)[1] if " where " in text else ""
        self.paths = sorted({m.group(1) for m in self._PATH.finditer(where)})
        ints = set()
        for m in self._INT.finditer(where):
            v = int(m.group(2), 0) * (-1 if m.group(1) else 1)
            ints.update((v - 1, v, v + 1))
        self.ints = sorted(ints)

    def apply(self, values: _Values, params, msg: dict) -> None:
        for path in self.paths:
            if values.rng.random() < 0.75:
                segs = re.findall(r"\.\[(\d+)\]|\.([A-Za-z_][A-Za-z0-9_]*)", path)
                segs = [int(i) if i else n for i, n in segs]
                types = {p.name: p.type for p in params}
                if segs and segs[0] in types:
                    msg[segs[0]] = self._set(values, types[segs[0]], msg[segs[0]], segs[1:])

    def _set(self, values: _Values, t, v, segs):
        """``v`` (of type ``t``) with the part at ``segs`` set to a target value."""
        if not segs:
            if isinstance(t, IntType):
                fits = [x for x in self.ints if t.min <= x <= t.max]
                return values.rng.choice(fits) if fits else v
            if isinstance(t, StringType):
                return values.text_value(t.bound)
            return v
        head, rest = segs[0], segs[1:]
        if isinstance(t, HandleType) and head in ("handle", "rights") and not rest:
            return dict(v, **{head: self._set(values, _UINT32, v[head], [])})
        if isinstance(t, StructType) and isinstance(head, str):
            f = next((f for f in t.fields if f.name == head), None)
            if f is not None:
                return dict(v, **{head: self._set(values, f.type, v[head], rest)})
        if isinstance(t, UnionType) and isinstance(head, str):
            f = next((f for f in t.fields if f.name == head), None)
            if f is not None:          # make the member the condition reads the present one
                inner = v[head] if head in v else values.value(f.type, "boundary")
                return {head: self._set(values, f.type, inner, rest)}
        if isinstance(t, (SequenceType, ArrayType)) and isinstance(head, int):
            items = list(v)
            if isinstance(t, SequenceType) and head >= len(items) and head < t.bound:
                items += [values.value(t.element, "boundary") for _ in range(head + 1 - len(items))]
            if head < len(items):
                items[head] = self._set(values, t.element, items[head], rest)
            return items
        return v


def _leaves(t, v, path: tuple, out: list) -> None:
    """(path, type, value) of every integer and text leaf of a concrete value."""
    if isinstance(t, (IntType, StringType)):
        out.append((path, t, v))
    elif isinstance(t, HandleType):
        out.append((path + ("rights",), _UINT32, v["rights"]))
    elif isinstance(t, (SequenceType, ArrayType)):
        for i, x in enumerate(v):
            _leaves(t.element, x, path + (i,), out)
    elif isinstance(t, StructType):
        for f in t.fields:
            _leaves(f.type, v[f.name], path + (f.name,), out)
    elif isinstance(t, UnionType):
        for f in t.fields:
            if f.name in v:
                _leaves(f.type, v[f.name], path + (f.name,), out)


def _replace(v, path: tuple, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(v, dict):
        out = dict(v)
    else:
        out = list(v)
    out[head] = _replace(v[head], rest, new)
    return out


def _has_int(t) -> bool:
    if isinstance(t, (IntType, HandleType)):
        return True
    if isinstance(t, (SequenceType, ArrayType)):
        return _has_int(t.element)
    if isinstance(t, (StructType, UnionType)):
        return any(_has_int(f.type) for f in t.fields)
    return False


# ============================================================== conditions
class _Conditions(ExprCompiler):
    """The engine's expression compiler plus ``sid(TASK)`` of property files."""

    def __init__(self, module: SecurityModule, sids: dict[str, int]):
        super().__init__(module.solution, module._impls)
        self.sids = sids
        self._cache: dict = {}

    def _SidOf(self, e):
        sid = self.sids.get(e.task)
        return lambda ctx: sid

    def evaluate(self, expr, message, src_sid, dst_sid, states) -> Any:
        """The value of a condition, or the string ``"error: ..."`` if it runs incorrectly."""
        fn = self._cache.get(id(expr))
        if fn is None:
            fn = self._cache[id(expr)] = self.compile(expr)
        try:
            return fn(EvalContext(message, src_sid, dst_sid, states, {}))
        except Exception as exc:           # runs incorrectly: neither true nor false
            return f"error: {exc}"


# ============================================================== the checks of one seed
class _SeedCheck:
    def __init__(self, seed: int, options: FuzzOptions, result: SeedResult):
        self.seed, self.opt, self.res = seed, options, result
        self.rng = random.Random(seed * 7919 + 1)

    def guard(self, stage: str, fn: Callable, *args, **kw):
        """Run one stage; an exception is a crash finding (and the stage gives None)."""
        t0 = time.perf_counter()
        try:
            return fn(*args, **kw)
        except Exception as exc:
            self.res.add("crash", stage, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}")
            return None
        finally:
            self.res.timings[stage] = self.res.timings.get(stage, 0.0) + time.perf_counter() - t0

    def run(self, root: Path) -> None:
        gen = self.guard("generate", generate_solution, root, self.seed)
        if gen is None:
            return
        self.gen: GeneratedSolution = gen
        self.res.features = set(gen.features)
        sol = self.guard("load", load, root)
        if sol is None:
            return
        errors = [d for d in sol.diagnostics if d.severity.value == "error"]
        if errors:
            self.res.add("load", "solution", "\n".join(d.render() for d in errors[:10]))
            return
        self.res.loaded = True
        self.sol = sol
        props = self.guard("props", load_properties, sol, root / PROPS_FILE)
        if props is not None and not props.ok:
            self.res.add("props", PROPS_FILE, "\n".join(d.render() for d in props.diagnostics
                                                         if d.severity.value == "error")[:4000])
        if self.opt.crosscheck:
            self.guard("crosscheck", self.crosscheck)
        if props is None:
            return
        self.props = props.properties
        self.res.properties = len(self.props)
        self.guard("walks", self.prepare_walks)
        self.guard("prove", self.prove_all)

    # ------------------------------------------------------------ (a)
    def crosscheck(self) -> None:
        from ..verify.crosscheck import crosscheck
        from ..verify.universe import Universe

        keys = [k for k in Universe.build(self.sol).keys() if k.kind != "execute"]
        rep = crosscheck(self.sol, events=self.opt.events_per_key * max(1, len(keys)), seed=self.seed,
                         walk=self.opt.walk)
        self.res.events += rep.events
        self.res.agreed += rep.agreed
        self.res.not_comparable += rep.skipped
        self.res.over_key_budget += getattr(rep, "budget_events", 0)
        self.res.disagreements += len(rep.disagreements)
        for d in rep.disagreements:
            self.res.add("crosscheck", d.event.describe(), d.describe())

    # ------------------------------------------------------------ walks for the probes
    def prepare_walks(self) -> None:
        from ..verify.universe import Universe

        self.universe = Universe.build(self.sol)
        self.values = _Values(self.rng, self.gen.ints, self.gen.texts)
        self.module = SecurityModule(self.sol)
        self.module.boot()
        self.sids = {p.task: p.sid for p in self.universe.procs if p.task}
        self.conds = _Conditions(self.module, self.sids)
        boot = self.module.checkpoint()
        # every reached state: (checkpoint, the granted events that led there)
        self.states: list[tuple[tuple, list[Event]]] = [(boot, [])]
        keys = [k for k in self.universe.keys() if k.kind != "execute" and k.pairs]
        for _ in range(self.opt.probe_walks if keys else 0):
            self.module.restore(boot)
            trace: list[Event] = []
            for _ in range(self.opt.walk_steps):
                for _attempt in range(25):
                    key = self.rng.choice(keys)
                    src, dst = self.rng.choice(key.pairs)
                    msg = self.values.one(key.params)
                    ev = key.event(src, dst, msg)
                    d = self.module.decide(ev)
                    self.check_decision(ev, d, "walk")
                    if d.granted:
                        trace.append(ev)
                        self.states.append((self.module.checkpoint(), list(trace)))
                        break
        self.module.restore(boot)

    def check_decision(self, ev: Event, d, where: str) -> None:
        if d.reason.startswith(INTERNAL_ERROR):
            self.res.add("internal-error", ev.describe(), f"{where}: {d.reason}\nmessage: {ev.message!r}")

    def probe_states(self) -> list[tuple[tuple, list[Event]]]:
        """Start-up plus a sample of the walk states (the same sample for every property)."""
        if not hasattr(self, "_probe_states"):
            rest = self.states[1:]
            pick = self.rng.sample(rest, min(len(rest), self.opt.probe_states))
            self._probe_states = [self.states[0]] + sorted(pick, key=lambda s: len(s[1]))
        return self._probe_states

    # ------------------------------------------------------------ (b), (c), (d)
    def prove_all(self) -> None:
        from ..verify.prove import PROVED, REFUTED

        props = [p for p in self.props if p.kind != "never_flow"]
        for prop, answer in zip(props, self.answers(props)):
            kind, payload = answer
            if kind == "timeout":
                self.res.statuses["OVER-BUDGET"] += 1
                self.res.over_budget.append(f"{prop.name} ({prop.text})")
                continue
            if kind == "mismatch":
                self.res.statuses["REPLAY-MISMATCH"] += 1
                self.res.add("replay", prop.name, f"{prop.text}\nthe prover's own replay failed: {payload}")
                continue
            if kind == "crash":
                self.res.add("crash", f"prove {prop.name}", f"{prop.text}\n{payload}")
                continue
            r = payload
            self.res.prove_seconds[prop.name] = r.seconds
            self.res.statuses[r.status] += 1
            if r.status == "UNKNOWN":
                self.res.unknown.append(f"{prop.name} ({prop.text}): {r.how}")
            if r.status == "UNKNOWN" and "over-approximated" in r.how:
                self.res.over_approximated += 1
            if r.status == "UNKNOWN" and ("internal error" in r.how or "Z3 failed" in r.how):
                self.res.add("crash", f"prove {prop.name}", f"{prop.text}\nUNKNOWN: {r.how}")
            if r.counterexample is not None:
                self.guard("replay", self.replay, prop, r)
            if r.status == PROVED and prop.kind in ("never_event", "always_event"):
                self.guard("probe", self.probe_event, prop, r)
            elif (r.status == PROVED and prop.kind in ("never_state", "invariant")) or \
                    (r.status == REFUTED and prop.kind == "reachable_state"):
                self.guard("probe", self.probe_state, prop, r)

    def answers(self, props: list) -> list[tuple[str, Any]]:
        """The prover's answer to each property: ("ok", result) | ("timeout" | "mismatch" | "crash", text).

        With ``isolate`` each property gets a wall-clock budget: the prover runs in a
        forked child that sends its answers one by one; a property over budget is
        answered "timeout" and the child is replaced for the rest (the prover's own
        timeout bounds one Z3 query, not the dozens a hard property may take).
        """
        if not self.opt.isolate:
            return [_prove_one(self.prover(), p) for p in props]
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        out: list = [None] * len(props)
        todo = list(range(len(props)))
        while todo:
            here, there = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_prove_child, args=(there, self.prover, props, list(todo)), daemon=True)
            child.start()
            there.close()
            try:
                while todo:
                    if not here.poll(self.opt.property_seconds):
                        out[todo.pop(0)] = ("timeout", f"over {self.opt.property_seconds} s")
                        break
                    try:
                        i, answer = here.recv()
                    except EOFError:          # the child died: a crash of the prover itself
                        out[todo.pop(0)] = ("crash", f"the prover's process ended (exit code {child.exitcode})")
                        break
                    out[i] = answer
                    todo.remove(i)
            finally:
                if child.is_alive():
                    child.kill()
                child.join()
                here.close()
        return out

    def prover(self):
        from ..verify.prove import ProveOptions, Prover

        return Prover(self.sol, ProveOptions(timeout_ms=self.opt.timeout_ms, depth=self.opt.depth))

    # -- (c) replay on a fresh decision function
    def replay(self, prop, r) -> None:
        cex = r.counterexample
        fresh = SecurityModule(self.sol)
        subject = f"{prop.name} ({r.status})"
        for e in cex.setup:
            d = fresh.decide(e)
            self.check_decision(e, d, "replay setup")
            if not d.granted:
                self.res.add("replay", subject, f"{prop.text}\nsetup event {e.describe()} is denied on a fresh "
                                                f"decision function: {d.reason}")
                return
        booted = SecurityModule(self.sol)
        booted.boot()
        if fresh.snapshot() != booted.snapshot() or \
                {t: s for t, s in fresh._by_task.items()} != {t: s for t, s in booted._by_task.items()}:
            self.res.add("replay", subject, f"{prop.text}\nthe setup events do not rebuild the start-up state")
            return
        sids = {t: s for t, s in fresh._by_task.items()}
        conds = _Conditions(fresh, sids)
        before = fresh.snapshot()
        for i, step in enumerate(cex.steps, 1):
            before = fresh.snapshot()
            d = fresh.decide(step.event)
            self.check_decision(step.event, d, "replay")
            got = "granted" if d.granted else "denied"
            self.res.replayed_steps += 1
            if got != step.expect:
                self.res.add("replay", subject, f"{prop.text}\nstep {i}: {step.event.describe()} "
                                                f"{step.event.message!r}: the trace says {step.expect}, a fresh "
                                                f"decision function says {got}\n{d.explain()}")
                return
        self.res.replayed += 1
        kind = prop.kind
        if kind in ("never_event", "always_event"):
            if not cex.steps:
                self.res.add("replay", subject, f"{prop.text}\nan event counterexample with no step")
                return
            last = cex.steps[-1]
            want = "granted" if kind == "never_event" else "denied"
            if last.expect != want:
                self.res.add("replay", subject, f"{prop.text}\nthe last step is {last.expect}, expected {want}")
            if prop.condition is not None:
                src, dst = _sid(sids, last.event.src), _sid(sids, last.event.dst)
                value = conds.evaluate(prop.condition, dict(last.event.message), src, dst, before)
                if value is not True:
                    self.res.add("replay", subject, f"{prop.text}\nthe `where` condition is {value!r} for the last "
                                                    f"event {last.event.describe()} {last.event.message!r}")
        else:
            value = conds.evaluate(prop.condition, {}, None, None, fresh.snapshot())
            want = kind != "invariant"          # never/reachable: the condition holds; invariant: it fails
            if value is not want:
                self.res.add("replay", subject, f"{prop.text}\nafter the trace the state condition is {value!r}, "
                                                f"expected {want}")

    # -- (b) probes of an event property the prover proved
    def probe_event(self, prop, r) -> None:
        """Probe each selected event key in the probe states: first the generated messages,
        then neighbours (one leaf moved to +-1, a literal of the condition, a bound or another
        text) of those that come closest to a violation (granted ones for ``never``, ones
        inside the ``where`` condition for ``always``): the boundary of the grant region."""
        pat = prop.pattern
        keys = self.universe.matching(
            (pat.kind,), set(pat.src.tasks) if pat.src is not None else None,
            set(pat.dst.tasks) if pat.dst is not None else None,
            pat.endpoint, pat.interface, pat.method if pat.kind != "execute" else None)
        keys = [k for k in keys if k.senders and k.receivers]
        if not keys:
            return
        never = prop.kind == "never_event"
        targets = _Targets(prop.text)
        self.res.proved_probed += 1
        in_region = self.res.probes_in_region
        try:
            self._probe_event(prop, r, keys, never, targets)
        finally:
            self.res.proofs_exercised += self.res.probes_in_region > in_region

    def _probe_event(self, prop, r, keys, never: bool, targets: _Targets) -> None:
        m = self.module
        for cp, trace in self.probe_states():
            self.res.probe_states += 1
            m.restore(cp)
            states = m.snapshot()
            for key in keys:
                pairs = self.rng.sample(key.pairs, min(len(key.pairs), 2))
                for src, dst in pairs:
                    dst_sid = dst.sid if dst is not None and key.kind != "security" else None
                    if key.kind == "execute":
                        todo = [{}]
                    else:
                        todo = self.values.messages(key.params, self.opt.probes_per_key, targets)
                    seeds: list[dict] = []
                    budget = self.opt.probes_per_key * 3       # neighbours, per pair and state
                    search = self.opt.probes_per_key * 8 if key.params else 0   # more random ones, ...
                    while todo or (search > 0 and not seeds):                    # ... until one is near
                        if todo:
                            msg = todo.pop()
                        else:
                            search -= 1
                            msg = self.values.one(key.params, targets)
                        ev = key.event(src, dst, msg)
                        d = m.decide(ev)
                        m.restore(cp)
                        self.res.probes += 1
                        self.check_decision(ev, d, "probe")
                        if d.reason.startswith("malformed"):
                            continue          # not a well-formed message: properties do not cover it
                        holds = True if prop.condition is None else \
                            self.conds.evaluate(prop.condition, msg, src.sid, dst_sid, states)
                        self.res.probes_granted += d.granted
                        self.res.probes_in_region += holds is True
                        if holds is True and d.granted == never:
                            walk = "\n".join(f"  {e.describe()} {e.message!r}" for e in trace) or "  (none)"
                            self.res.add("proved-contradicted", prop.name,
                                         f"{prop.text}\nPROVED ({r.how}), yet after start-up and the granted "
                                         f"events\n{walk}\nthe event {ev.describe()} {msg!r} is "
                                         f"{'granted' if d.granted else 'denied'}\n{d.explain()}")
                            return
                        near = d.granted if never else holds is True
                        if near and budget > 0 and key.params and len(seeds) < 4:
                            seeds.append(msg)
                            more = self.values.neighbours(key.params, msg, targets, min(budget, 12))
                            budget -= len(more)
                            todo += more

    # -- (b) probes of a state property the prover proved (or proved unreachable)
    def probe_state(self, prop, r) -> None:
        self.res.proved_probed += 1
        bad = prop.kind != "invariant"      # the value that contradicts the answer
        for cp, trace in self.states:
            self.res.probes += 1
            self.res.probe_states += 1
            self.module.restore(cp)
            value = self.conds.evaluate(prop.condition, {}, None, None, self.module.snapshot())
            if value is bad:
                walk = "\n".join(f"  {e.describe()} {e.message!r}" for e in trace) or "  (none)"
                self.res.add("proved-contradicted", prop.name,
                             f"{prop.text}\n{r.status} ({r.how}), yet after start-up and the granted events\n"
                             f"{walk}\nthe state condition is {value!r}")
                return


def _prove_one(prover, prop) -> tuple[str, Any]:
    from ..verify.prove import ReplayMismatch

    try:
        return ("ok", prover.prove(prop))
    except ReplayMismatch as exc:
        return ("mismatch", str(exc))
    except Exception as exc:
        return ("crash", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}")


@dataclass
class _Answer:
    """What the forked prover sends back (a Result without Z3 or source objects)."""

    status: str
    how: str
    seconds: float
    counterexample: Any


def _prove_child(conn, make_prover, props, todo) -> None:
    prover = make_prover()
    for i in todo:
        kind, r = _prove_one(prover, props[i])
        if kind == "ok":
            r = _Answer(r.status, r.how, r.seconds, r.counterexample)
        try:
            conn.send((i, (kind, r)))
        except Exception as exc:              # an answer that does not pickle
            conn.send((i, ("crash", f"answer not transferable: {type(exc).__name__}: {exc}")))
    conn.close()


def _sid(sids: dict, ref) -> int | None:
    if ref is None or isinstance(ref, int):
        return ref
    return sids.get(ref)


# ============================================================== entry points
def check_seed(seed: int, options: FuzzOptions | None = None, root: Path | str | None = None) -> SeedResult:
    """Generate the solution of ``seed`` (under ``root``, else a temporary folder) and check it."""
    options = options or FuzzOptions()
    result = SeedResult(seed)
    t0 = time.perf_counter()
    check = _SeedCheck(seed, options, result)
    if root is not None:
        check.run(Path(root))
    else:
        with tempfile.TemporaryDirectory(prefix=f"ksm-fuzz-{seed}-") as tmp:
            check.run(Path(tmp))
    result.seconds = time.perf_counter() - t0
    return result


#: The size of ``run_fuzz`` on demand (``ksm bench fuzz``, ``KSM_FUZZ=1``).
LARGE = FuzzOptions(events_per_key=6, walk=2, probes_per_key=16, probe_walks=5, walk_steps=10, probe_states=6,
                    timeout_ms=2000, depth=5, property_seconds=6.0)


def run_fuzz(seeds: range, events_per_key: int = LARGE.events_per_key, walk: int = LARGE.walk,
             options: FuzzOptions | None = None,
             progress: Callable[[SeedResult], None] | None = None) -> FuzzReport:
    """Check every seed; ``events_per_key`` and ``walk`` size the crosscheck.

    ``options`` sets the other sizes (default :data:`LARGE`); ``progress`` is called
    after each seed.
    """
    base = options or LARGE
    opts = FuzzOptions(**{**base.__dict__, "events_per_key": events_per_key, "walk": walk})
    report = FuzzReport()
    t0 = time.perf_counter()
    for seed in seeds:
        r = check_seed(seed, opts)
        report.results.append(r)
        if progress is not None:
            progress(r)
    report.seconds = time.perf_counter() - t0
    return report
