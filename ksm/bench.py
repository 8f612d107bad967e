"""Benchmarks: generated workloads timed against a baseline measured in the same run.

Machines here are shared and noisy, so every figure is reported next to a baseline
taken in the same process moments before: for loading, a single ``re.finditer``
pass that only splits the same text into words (the cheapest thing that still looks
at every character).  The ratio is what to compare between runs.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from policy_lang import LoadOptions, load

from .decide_bench import (  # noqa: F401
    DecideBench,
    _p50_ns,
    _write_classes,
    bench_decide,
    bench_decide_vs_others,
)
from .load_bench import LoadBench, bench_load, generate_solution  # noqa: F401


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
    from ksm.verify.prove import Prover
    from policy_lang.props import find_property_files, load_properties, parse_properties
    from policy_lang.source import SourceText

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
def bench_flows(sizes: tuple[int, ...] = (250, 1000), channels_per_instance: int = 10,
                distinct: tuple[int, ...] = (100, 1000)) -> ProveBench:
    """Channel-graph labelling and flow checks on generated solutions (ksm.flows.generate).

    Two shapes: ``sizes`` instances of twelve classes (a zone policy), and ``distinct``
    instances of as many classes (one rule per channel: every class key is new, which is
    what made labelling grow with class pairs).  Every hop's label is checked against
    :func:`~ksm.flows.generate.expected_statuses`, worked out from the generator alone.

    Baselines from the same run: a trivial Z3 query (for the cost of one labelling
    proof), one walk over the whole graph (connected components; for the cost of a
    check), and, on the smallest distinct-class solution, the labeller that asks the
    prover about every class key (``Labeller(share=False)``, what labelling did before
    answers were shared).  Peak resident memory is read after each size, smallest
    first, to see it grow with the graph.
    """
    base = _trivial_z3_ms()
    rows: list[tuple[str, float, str]] = [("baseline: one trivial Z3 query", base, "ms")]
    for n in sizes:
        rows += _flow_rows(f"[{n} instances of 12 classes, {n * channels_per_instance} channels]", n,
                           channels_per_instance, base, {})
    labelled: dict[int, tuple[float, int]] = {}
    for i, n in enumerate(sorted(distinct)):
        tag = f"[{n} instances of {n} classes, {n * channels_per_instance} channels]"
        rows += _flow_rows(tag, n, channels_per_instance, base, {"classes_per_zone": max(1, n // 4), "per_channel": True},
                           reference=(i == 0), labelled=labelled)
    sizes_seen = sorted(labelled)
    for small, large in zip(sizes_seen, sizes_seen[1:]):
        (t0, h0), (t1, h1) = labelled[small], labelled[large]
        rows.append((f"growth {small} -> {large} classes: labelling time / hops", (t1 / t0) / (h1 / h0), "x"))
    return ProveBench(rows)


def _flow_rows(tag: str, n: int, channels_per_instance: int, base_ms: float, shape: dict,
               reference: bool = False, labelled: dict | None = None) -> list[tuple[str, float, str]]:
    """Label, derive and check one generated solution; every label checked."""
    import resource
    from collections import Counter

    import networkx as nx

    from ksm.flows import ChannelGraph, FlowChecker, Labeller
    from ksm.flows.generate import expected_statuses, generate_flow_solution
    from ksm.verify.prove import Prover
    from policy_lang.props import parse_properties
    from policy_lang.source import SourceText

    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        text = generate_flow_solution(Path(tmp), n, channels_per_instance, **shape)
        t0 = time.perf_counter()
        sol = load(Path(tmp))
        prover = Prover(sol)
    rows.append((f"{tag} load + boot", time.perf_counter() - t0, "s"))
    graph = ChannelGraph(Labeller(prover))
    stats, lab = graph.stats(), graph.labeller
    got = Counter((h.kind, h.label.status) for h in graph.hops)
    expected = expected_statuses(sol)
    if dict(got) != expected:
        raise AssertionError(f"{tag}: hop labels {dict(got)} differ from the generator's {expected}")
    rows.append((f"{tag} label {stats['hops']} hops: {stats['proofs']} proofs, {lab.grouped} keys by another's proof, "
                 f"{lab.syntactic} from the text", graph.seconds, "s"))
    rows.append((f"{tag}   per hop", graph.seconds * 1e6 / max(1, stats["hops"]), "us"))
    if labelled is not None:
        labelled[n] = (graph.seconds, stats["hops"])
    if reference:
        ref = ChannelGraph(Labeller(Prover(sol), share=False))
        if [h.label.status for h in ref.hops] != [h.label.status for h in graph.hops]:
            raise AssertionError(f"{tag}: shared labels differ from one proof per class key")
        rows.append((f"{tag} baseline: one proof per class key ({ref.labeller.questions} proofs)", ref.seconds, "s"))
        rows.append((f"{tag}   ratio of the baseline to shared labelling", ref.seconds / graph.seconds, "x"))
    props = parse_properties(sol, SourceText("<bench>.props", text)).properties
    t0 = time.perf_counter()
    checker = FlowChecker(graph)
    derive = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = [checker.check(p) for p in props]
    checks = time.perf_counter() - t0
    verdicts = Counter(r.status for r in results)
    if verdicts != Counter({"PROVED": 3, "REFUTED": 3}):
        raise AssertionError(f"{tag}: flow checks {dict(verdicts)}, the generator's properties give 3 and 3")
    t0 = time.perf_counter()
    sum(1 for _ in nx.weakly_connected_components(checker.every))
    walk = time.perf_counter() - t0
    rows.append((f"{tag} derive the data-flow graphs (once)", derive, "s"))
    rows.append((f"{tag} all {len(results)} flow checks (3 proved, 3 refuted)", checks, "s"))
    rows.append((f"{tag}   per check, ratio to one walk of the whole graph", checks / len(results) / walk, "x"))
    rows.append((f"{tag} total: labelling, deriving and checks", graph.seconds + derive + checks, "s"))
    rows.append((f"{tag}   labelling, ratio to {max(1, stats['proofs'])} trivial Z3 queries",
                 graph.seconds * 1000 / max(1, stats["proofs"]) / base_ms, "x"))
    rows.append((f"{tag} peak resident memory so far", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "MB"))
    return rows
