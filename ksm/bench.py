"""Benchmarks: generated workloads timed against a baseline measured in the same run.

Machines here are shared and noisy, so every figure is reported next to a baseline
taken in the same process moments before: for loading, a single ``re.finditer``
pass that only splits the same text into words (the cheapest thing that still looks
at every character).  The ratio is what to compare between runs.
"""
from __future__ import annotations

import random
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from policy_lang import LoadOptions, load


@dataclass
class LoadBench:
    policy_lines: int
    total_lines: int
    seconds: float
    baseline_seconds: float
    errors: int

    @property
    def lines_per_second(self) -> float:
        return self.total_lines / self.seconds

    @property
    def ratio(self) -> float:
        return self.seconds / self.baseline_seconds

    def report(self) -> str:
        return (
            f"load: {self.total_lines} lines ({self.policy_lines} PSL) parsed and resolved in {self.seconds:.2f} s "
            f"= {self.lines_per_second:,.0f} lines/s; baseline word split {self.baseline_seconds:.3f} s; "
            f"ratio {self.ratio:.1f}x; errors {self.errors}"
        )


def generate_solution(root: Path, target_lines: int = 100_000, seed: int = 1) -> int:
    """Write a large, varied, valid solution under ``root``; returns its PSL line count.

    Shapes vary on purpose (different selector sets, nested matches, choices, asserts
    over message fields, Flow calls, PAL tests), so the figure is not the speed of
    parsing one line over and over.
    """
    rng = random.Random(seed)
    n_classes = max(4, target_lines // 600)
    (root / "einit" / "src").mkdir(parents=True, exist_ok=True)
    edl_dir = root / "resources"
    edl_dir.mkdir(exist_ok=True)
    for i in range(n_classes):
        (edl_dir / f"Svc{i}.idl").write_text(
            f"package gen.Svc{i}\n"
            f"const UInt32 Max{i} = 0x40;\n"
            f"struct Req{i} {{ UInt32 count; string<Max{i}> name; sequence<UInt16, 8> items; }}\n"
            "interface {\n"
            f"    Get(in UInt32 key, out UInt32 value, error SInt32 rc);\n"
            f"    Put(in Req{i} req, out UInt8 ok);\n"
            f"    Ping(in UInt8 v);\n"
            "}\n"
        )
        (edl_dir / f"Svc{i}Comp.cdl").write_text(
            f"component gen.Svc{i}Comp\nendpoints {{\n    api : gen.Svc{i}\n}}\n"
        )
        (edl_dir / f"Node{i}.edl").write_text(
            f"task class gen.Node{i}\ncomponents {{\n    core : gen.Svc{i}Comp\n}}\nendpoints {{\n    direct : gen.Svc{i}\n}}\n"
        )
    head = [
        "use nk.base._", "use nk.basic._", "use nk.flow._", "use nk.regex._",
        "use EDL kl.core.Core", "use EDL Einit",
        *[f"use EDL gen.Node{i}" for i in range(n_classes)],
        "execute: kl.core.Execute",
        "policy object st : Flow {",
        '    type State = "idle" | "busy" | "done"',
        '    config = { states : ["idle", "busy", "done"], initial : "idle",',
        '               transitions : { "idle" : ["busy"], "busy" : ["idle", "done"] } }',
        "}",
        "execute { grant () }",
        "response { grant () }",
        "error { grant () }",
    ]
    out = list(head)
    b = 0
    while len(out) < target_lines:
        b += 1
        i = rng.randrange(n_classes)
        j = rng.randrange(n_classes)
        ep = rng.choice(("core.api", "direct"))
        shape = rng.randrange(6)
        if shape == 0:
            out += [
                f"request src=gen.Node{j}, dst=gen.Node{i}, endpoint={ep}, method=Get {{",
                f"    assert (message.key < {rng.randrange(1, 10_000)})",
                "}",
            ]
        elif shape == 1:
            out += [
                f"request dst=gen.Node{i} {{",
                f"    match src=gen.Node{j} {{",
                f"        match endpoint={ep} method=Put {{",
                f"            assert ((message.req.count > {rng.randrange(100)}) && (message.req.items.[0] != 7))",
                f'            assert (re.match {{ text : message.req.name, pattern : "^[a-z]{{1,{rng.randrange(2, 30)}}}$" }})',
                "        }",
                "        match method=Ping { grant () }",
                "    }",
                "}",
            ]
        elif shape == 2:
            out += [
                f"request src=gen.Node{j} dst=gen.Node{i} endpoint={ep} method=Ping {{",
                "    choice (st.query { sid : dst_sid }) {",
                '        "idle" : grant ()',
                '        "busy" : st.enter { sid : dst_sid, state : "idle" }',
                "        _ : deny ()",
                "    }",
                "}",
            ]
        elif shape == 3:
            out += [
                f"response src=gen.Node{i}, endpoint={ep}, method=Get {{",
                f"    deny (message.value > {rng.randrange(1 << 20)})",
                "}",
            ]
        elif shape == 4:
            out += [
                f"// binding {b}: error replies of node {i}",
                f"error src=gen.Node{i} method=Get {{ assert (message.rc != {rng.randrange(-50, 0)}) }}",
            ]
        else:
            out += [
                f'assert "generated {b}" {{',
                "    setup {",
                "        k <- execute dst=kl.core.Core",
                "        e <- execute src=k dst=Einit",
                f"        a <- execute src=e dst=gen.Node{i}",
                f"        c <- execute src=e dst=gen.Node{j}",
                "    }",
                '    sequence "get" {',
                f"        grant request src=c dst=a endpoint={ep} method=Ping {{ v : {rng.randrange(256)} }}",
                "    }",
                "}",
            ]
    (root / "einit" / "src" / "security.psl").write_text("\n".join(out) + "\n")
    entities = ["entities:"]
    for i in range(min(n_classes, 50)):
        entities += [f"  - name: gen.Node{i}", f"    task: node{i}"]
        if i:
            entities += ["    connections:", f"      - target: node{i - 1}", f"        id: link{i}"]
    (root / "einit" / "src" / "init.yaml").write_text("\n".join(entities) + "\n")
    return len(out)


def bench_load(target_lines: int = 100_000, repeat: int = 3) -> LoadBench:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        psl_lines = generate_solution(root, target_lines)
        texts = [p.read_text() for p in root.rglob("*") if p.is_file()]
        total = sum(t.count("\n") for t in texts)
        word = re.compile(r"\S+")
        base = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            for t in texts:
                for _m in word.finditer(t):
                    pass
            base.append(time.perf_counter() - t0)
        runs = []
        errors = 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            sol = load(root, LoadOptions())
            runs.append(time.perf_counter() - t0)
            errors = sum(1 for d in sol.diagnostics if d.severity.value == "error")
        return LoadBench(psl_lines, total, statistics.median(runs), statistics.median(base), errors)


# ---------------------------------------------------------------------------- decide
@dataclass
class DecideBench:
    rows: list[tuple[str, float, str]]

    def report(self) -> str:
        width = max(len(r[0]) for r in self.rows)
        return "\n".join(f"{name:<{width}}  {value:>10.3f}  {unit}" for name, value, unit in self.rows)


def _write_classes(root: Path, n: int) -> None:
    """``n`` classes ``gen.C{i}``, each serving ``api : gen.Api`` (Get with a key, and Ping)."""
    (root / "einit" / "src").mkdir(parents=True, exist_ok=True)
    res = root / "resources"
    res.mkdir(exist_ok=True)
    (res / "Api.idl").write_text("package gen.Api\ninterface {\n    Get(in UInt32 key, out UInt32 value);\n    Ping();\n}\n")
    for i in range(n):
        (res / f"C{i}.edl").write_text(f"task class gen.C{i}\nendpoints {{\n    api : gen.Api\n}}\n")


def _allowlist_solution(root: Path, bindings: int) -> list[tuple[str, str, str, str]]:
    """A solution whose policy is an allowlist of `bindings` (src, dst, endpoint, method) grants.

    Every class serves one endpoint ``api`` with ``Get(in UInt32 key, out UInt32 value)``
    and ``Ping()``; odd entries allow Get with an assert on the key (structure check +
    a condition), even entries allow Ping (match only).
    """
    import math

    n = max(2, math.isqrt(bindings) + 1)
    _write_classes(root, n)
    lines = ["use nk.base._", "use nk.basic._", "use EDL kl.core.Core", "use EDL Einit",
             *[f"use EDL gen.C{i}" for i in range(n)], "execute: kl.core.Execute", "execute { grant () }"]
    allow = []
    k = 0
    for i in range(n):
        for j in range(n):
            if k >= bindings:
                break
            method = "Get" if k % 2 else "Ping"
            body = "assert (message.key < 1000)" if method == "Get" else "grant ()"
            lines.append(f"request src=gen.C{i} dst=gen.C{j} endpoint=api method={method} {{ {body} }}")
            allow.append((f"c{i}", f"c{j}", "api", method))
            k += 1
    (root / "einit" / "src" / "security.psl").write_text("\n".join(lines) + "\n")
    (root / "einit" / "src" / "init.yaml").write_text(
        "entities:\n" + "".join(f"  - name: gen.C{i}\n    task: c{i}\n" for i in range(n)))
    return allow


def _p50_ns(fn, events, rounds: int = 7) -> float:
    """Median over rounds of the mean time per call (ns), after one warm-up pass."""
    for e in events:
        fn(e)
    per = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for e in events:
            fn(e)
        per.append((time.perf_counter_ns() - t0) / len(events))
    return statistics.median(per)


def bench_decide(small: int = 10, large: int = 100_000, sample: int = 2000) -> DecideBench:
    from ksm.engine import SecurityModule
    from ksm.events import Event

    rows: list[tuple[str, float, str]] = []
    results = {}
    for size in (small, large):
        with tempfile.TemporaryDirectory() as tmp:
            allow = _allowlist_solution(Path(tmp), size)
            t0 = time.perf_counter()
            sol = load(Path(tmp))
            module = SecurityModule(sol)
            module.boot()
            load_s = time.perf_counter() - t0
        rng = random.Random(size)
        picks = [allow[rng.randrange(len(allow))] for _ in range(sample)]
        ping = [Event.request(s, d, e, m) for s, d, e, m in picks if m == "Ping"]
        get = [Event.request(s, d, e, m, {"key": 7}) for s, d, e, m in picks if m == "Get"]
        allowset = frozenset(allow)
        keys = [(s, d, e, m) for s, d, e, m in picks if m == "Ping"]
        base = _p50_ns(lambda k: k in allowset, keys)
        t_ping = _p50_ns(module.decide, ping)
        t_get = _p50_ns(module.decide, get)
        t0 = time.perf_counter_ns()
        module.decide_many(get)
        many = (time.perf_counter_ns() - t0) / len(get)
        assert all(module.decide(e).granted for e in ping[:50] + get[:50]), "allowlist events must be granted"
        results[size] = (base, t_ping, t_get, many)
        rows += [
            (f"[{size} bindings] load + boot", load_s, "s"),
            (f"[{size} bindings] baseline: frozenset lookup", base / 1000, "us"),
            (f"[{size} bindings] decide, match-only allowlist (Ping)", t_ping / 1000, "us"),
            (f"[{size} bindings]   ratio to frozenset", t_ping / base, "x"),
            (f"[{size} bindings] decide, with structure check + assert (Get)", t_get / 1000, "us"),
            (f"[{size} bindings] decide_many, per event (Get)", many / 1000, "us"),
            (f"[{size} bindings]   decide_many throughput / loop", t_get / many, "x"),
        ]
    rows.append((f"growth {small} -> {large} bindings (Get)", results[large][2] / results[small][2], "x"))
    rows.append((f"growth {small} -> {large} bindings (Ping)", results[large][1] / results[small][1], "x"))
    return DecideBench(rows)


def _others(allow: list[tuple[str, str, str, str]], picks: list[tuple[str, str, str, str]]) -> list[tuple[str, float, str]]:
    """Per-decision time of cedarpy and pycasbin on the same allowlist, where they install.

    Both only see (principal, action = endpoint.method, resource); neither checks a
    message structure, so they are compared with ksm's match-only figure.
    """
    rows: list[tuple[str, float, str]] = []
    n = len(allow)
    try:
        import cedarpy
    except ImportError:
        rows.append((f"[{n} bindings] cedarpy: not installed (pip install '.[bench]')", 0.0, ""))
    else:
        text = "\n".join(
            f'permit(principal == Process::"{s}", action == Action::"{e}.{m}", resource == Process::"{d}");'
            for s, d, e, m in allow)
        # Parse once, as a serious embedder would (the per-call parse is Cedar's dominant cost).
        policies = cedarpy.PolicySet.from_str(text) if hasattr(cedarpy, "PolicySet") else text
        entities = cedarpy.Entities.from_json_str("[]") if hasattr(cedarpy, "Entities") else "[]"
        reqs = [{"principal": f'Process::"{s}"', "action": f'Action::"{e}.{m}"', "resource": f'Process::"{d}"',
                 "context": {}} for s, d, e, m in picks[:200]]
        assert all(cedarpy.is_authorized(r, policies, entities).allowed for r in reqs[:5])
        rows.append((f"[{n} bindings] cedarpy is_authorized", _p50_ns(lambda r: cedarpy.is_authorized(r, policies, entities),
                                                                       reqs, rounds=3) / 1000, "us"))
    try:
        import casbin
    except ImportError:
        rows.append((f"[{n} bindings] pycasbin: not installed (pip install '.[bench]')", 0.0, ""))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp) / "model.conf"
            model.write_text("[request_definition]\nr = sub, obj, act\n[policy_definition]\np = sub, obj, act\n"
                             "[policy_effect]\ne = some(where (p.eft == allow))\n"
                             "[matchers]\nm = r.sub == p.sub && r.obj == p.obj && r.act == p.act\n")
            policy = Path(tmp) / "policy.csv"
            policy.write_text("".join(f"p, {s}, {d}, {e}.{m}\n" for s, d, e, m in allow))
            enforcer = casbin.Enforcer(str(model), str(policy))
        keys = [(s, d, f"{e}.{m}") for s, d, e, m in picks[:200]]
        assert all(enforcer.enforce(*k) for k in keys[:5])
        rows.append((f"[{n} bindings] pycasbin enforce", _p50_ns(lambda k: enforcer.enforce(*k), keys, rounds=3) / 1000, "us"))
    return rows


def bench_decide_vs_others(sizes=(10, 1000)) -> DecideBench:
    """ksm's match-only decision next to cedarpy and pycasbin, same allowlists, same run."""
    from ksm.engine import SecurityModule
    from ksm.events import Event

    rows: list[tuple[str, float, str]] = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            allow = _allowlist_solution(Path(tmp), size)
            module = SecurityModule(load(Path(tmp)))
            module.boot()
        rng = random.Random(size)
        picks = [allow[rng.randrange(len(allow))] for _ in range(2000)]
        allowset = frozenset(allow)
        base = _p50_ns(lambda k: k in allowset, picks)
        ksm_t = _p50_ns(module.decide, [Event.request(s, d, e, m, {"key": 7} if m == "Get" else {}) for s, d, e, m in picks])
        rows += [(f"[{size} bindings] baseline: frozenset lookup", base / 1000, "us"),
                 (f"[{size} bindings] ksm decide (mixed Get/Ping)", ksm_t / 1000, "us")]
        for name, value, unit in _others(allow, picks):
            rows.append((name, value, unit))
            if unit == "us" and value:
                rows.append((f"[{size} bindings]   ratio to ksm decide", value * 1000 / ksm_t, "x"))
    return DecideBench(rows)


# ---------------------------------------------------------------------- prove
def _prove_solution(root: Path, instances: int) -> str:
    """A solution of ``instances`` processes over ``instances // 10`` classes, and its properties.

    Class ``C{i}`` may call ``C{i+1}`` (Get with a bounded key, Ping granted); the
    first class has a Flow ``mode`` machine moved by Ping.  The properties: two
    stateless ``never``, one ``always``, one state invariant.
    """
    k = max(3, instances // 10)
    _write_classes(root, k)
    lines = ["use nk.base._", "use nk.basic._", "use nk.flow._", "use EDL kl.core.Core", "use EDL Einit",
             *[f"use EDL gen.C{i}" for i in range(k)], "execute: kl.core.Execute",
             'policy object mode : Flow {\n type State = "idle" | "busy" | "halted"\n'
             ' config = { states : ["idle", "busy", "halted"], initial : "idle",\n'
             '   transitions : { "idle" : ["busy"], "busy" : ["idle"], "halted" : ["idle"] } }\n}',
             "execute src=Einit, dst=gen.C0 { mode.init { sid : dst_sid } }",
             "execute { grant () }"]
    for i in range(k):
        j = (i + 1) % k
        lines.append(f"request src=gen.C{i} dst=gen.C{j} endpoint=api method=Get {{ assert (message.key < 1000) }}")
        if j == 0:
            lines.append(f'request src=gen.C{i} dst=gen.C0 endpoint=api method=Ping {{\n'
                         f' choice (mode.query {{ sid : dst_sid }}) {{\n'
                         f'  "idle" : mode.enter {{ sid : dst_sid, state : "busy" }}\n'
                         f'  _ : mode.enter {{ sid : dst_sid, state : "idle" }}\n }}\n}}')
        else:
            lines.append(f"request src=gen.C{i} dst=gen.C{j} endpoint=api method=Ping {{ grant () }}")
    (root / "einit" / "src" / "security.psl").write_text("\n".join(lines) + "\n")
    (root / "einit" / "src" / "init.yaml").write_text(
        "entities:\n" + "".join(f"  - name: gen.C{i % k}\n    task: t{i}\n" for i in range(instances)))
    return ("property isolated: never request src=t0 dst=t2\n"
            "property bounded: never request src=t0 dst=t1 method=Get where message.key >= 1000\n"
            "property served: always request src=t0 dst=t1 method=Ping\n"
            'property never_halted: never state mode[t0] == "halted"\n')


@dataclass
class ProveBench:
    rows: list[tuple[str, float, str]]

    def report(self) -> str:
        return DecideBench(self.rows).report()


def _trivial_z3_ms() -> float:
    """Baseline: one tiny Z3 query, measured in the same run (median of 21)."""
    import z3

    times = []
    for _ in range(21):
        t0 = time.perf_counter()
        s = z3.Solver()
        x = z3.Int("x")
        s.add(x > 0, x < 10)
        s.check()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def _models_dir() -> Path | None:
    """The bundled examples: ./models when run from a checkout, else beside the sources."""
    for candidate in (Path.cwd() / "models", Path(__file__).resolve().parent.parent / "models"):
        if candidate.is_dir():
            return candidate
    return None


def bench_prove(sizes: tuple[int, ...] = (100, 1000), models: Path | None = None) -> ProveBench:
    """Per-property proof times on the bundled examples and on generated solutions."""
    from policy_lang.props import find_property_files, load_properties, parse_properties
    from policy_lang.source import SourceText
    from ksm.verify.prove import Prover

    base = _trivial_z3_ms()
    rows: list[tuple[str, float, str]] = [("baseline: one trivial Z3 query", base, "ms")]
    models = models or _models_dir()
    stateless: list[float] = []
    for model in sorted(p for p in models.iterdir() if p.is_dir()) if models is not None else []:
        defines = {}
        dfile = model / "defines.txt"
        if dfile.exists():
            defines = dict(line.split("=", 1) for line in dfile.read_text().split() if "=" in line)
        sol = load(model, LoadOptions(defines=defines))
        files = find_property_files(sol)
        if not sol.ok or not files:
            continue
        prover = Prover(sol)
        for f in files:
            for p in load_properties(sol, f, defines).properties:
                if p.kind == "never_flow":
                    continue
                r = prover.prove(p)
                ms = r.seconds * 1000
                if r.how.startswith("single-step") or r.how.startswith("vacuous"):
                    stateless.append(ms)
                rows.append((f"[{model.name}] {p.name} ({r.status}, {r.how.split(' (')[0]})", ms, "ms"))
    if stateless:
        med = statistics.median(stateless)
        rows.append(("examples: median per stateless property", med, "ms"))
        rows.append(("  ratio to the trivial query", med / base, "x"))
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            text = _prove_solution(Path(tmp), n)
            t0 = time.perf_counter()
            sol = load(Path(tmp))
            prover = Prover(sol)
            rows.append((f"[{n} instances] load + boot", time.perf_counter() - t0, "s"))
            for p in parse_properties(sol, SourceText("<bench>.props", text)).properties:
                r = prover.prove(p)
                rows.append((f"[{n} instances] {p.name} ({r.status}, {r.how.split(' (')[0]})", r.seconds * 1000, "ms"))
    return ProveBench(rows)


# ---------------------------------------------------------------------- flows
def bench_flows(sizes: tuple[int, ...] = (250, 1000), channels_per_instance: int = 10) -> ProveBench:
    """Channel-graph labelling and flow checks on generated solutions (ksm.flows.generate).

    Baselines from the same run: a trivial Z3 query (for the cost of one labelling
    proof) and one walk over the whole graph (connected components; for the cost of
    a check).  Peak resident memory is read after each size, smallest first, to see
    it grow with the graph.
    """
    import resource

    import networkx as nx

    from policy_lang.props import parse_properties
    from policy_lang.source import SourceText
    from ksm.flows import ChannelGraph, FlowChecker, Labeller
    from ksm.flows.generate import generate_flow_solution
    from ksm.verify.prove import Prover

    base = _trivial_z3_ms()
    rows: list[tuple[str, float, str]] = [("baseline: one trivial Z3 query", base, "ms")]
    for n in sizes:
        tag = f"[{n} instances, {n * channels_per_instance} channels]"
        with tempfile.TemporaryDirectory() as tmp:
            text = generate_flow_solution(Path(tmp), n, channels_per_instance)
            t0 = time.perf_counter()
            sol = load(Path(tmp))
            prover = Prover(sol)
            rows.append((f"{tag} load + boot", time.perf_counter() - t0, "s"))
            graph = ChannelGraph(Labeller(prover))
            stats = graph.stats()
            rows.append((f"{tag} label {stats['hops']} hops with {stats['proofs']} proofs", graph.seconds, "s"))
            rows.append((f"{tag}   per proof, ratio to the trivial query",
                         graph.seconds * 1000 / max(1, stats["proofs"]) / base, "x"))
            props = parse_properties(sol, SourceText("<bench>.props", text)).properties
            t0 = time.perf_counter()
            checker = FlowChecker(graph)
            derive = time.perf_counter() - t0
            t0 = time.perf_counter()
            results = [checker.check(p) for p in props]
            checks = time.perf_counter() - t0
            t0 = time.perf_counter()
            sum(1 for _ in nx.weakly_connected_components(checker.every))
            walk = time.perf_counter() - t0
            verdicts = ", ".join(f"{sum(r.status == s for r in results)} {s.lower()}" for s in ("PROVED", "REFUTED"))
            rows.append((f"{tag} derive the data-flow graphs (once)", derive, "s"))
            rows.append((f"{tag} all {len(results)} flow checks ({verdicts})", checks, "s"))
            rows.append((f"{tag}   per check, ratio to one walk of the whole graph", checks / len(results) / walk, "x"))
            rows.append((f"{tag} total: labelling, deriving and checks", graph.seconds + derive + checks, "s"))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rows.append((f"{tag} peak resident memory so far", peak, "MB"))
    return ProveBench(rows)
