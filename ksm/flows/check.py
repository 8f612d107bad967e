"""``never flow A -> B [unless via C, ...]``: a certificate or a witness path.

PROVED comes with a **cut**: hops of the channel graph, each denied by the policy
(with the proof that says so), that separate every A from every B once the C are
taken out.  It is read off a **region**: either everything the A's data can reach
(the cut: the hops leaving it towards a B) or everything that can reach a B (the
hops entering it from an A's side), whichever cut is smaller.  Why not a minimum
cut: a region is what a reviewer can check by eye ("A's data stays among these
processes, and every way out is denied"), and it costs a few traversals, where a
max-flow on ten thousand channels costs a second.  An empty cut means no channel
connects them at all.

REFUTED comes with the **shortest path** of granted hops from an A to a B avoiding
the C; each hop carries a message the decision function grants, replayed here again
from start-up (hops are separate traces: data may wait in a process between them).

UNKNOWN when a path exists only through hops the prover could not decide.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

import networkx as nx

from policy_lang.perf import gc_paused

from ..events import jsonable
from ..verify.prove import PROVED, REFUTED, UNKNOWN, ReplayMismatch
from .graph import ChannelGraph, Hop, heaviest
from .labels import DENIED, GRANTED
from .labels import UNKNOWN as UNDECIDED


@dataclass
class FlowResult:
    name: str
    status: str
    how: str
    path: list[Hop] = field(default_factory=list)     # REFUTED: the witness path
    cut: list[Hop] = field(default_factory=list)      # PROVED: the certificate
    region: list[str] = field(default_factory=list)   # PROVED: the side of the cut it bounds
    region_is: str = ""                               # "reached from the sources" | "reaching the targets"
    prop: object = None
    seconds: float = 0.0
    counterexample: None = None                       # (the shape of a proof result, for the reports)
    related: list = field(default_factory=list)
    classes: dict = field(default_factory=dict, repr=False)   # task -> class, to summarise big cuts

    def detail_lines(self) -> list[str]:
        """The witness path or the cut certificate, for the text report."""
        lines = []
        if self.path:
            lines.append("         flow path (each hop granted by the decision function after start-up):")
            for i, hop in enumerate(self.path, 1):
                last = hop.label.witness.steps[-1].event
                before = len(hop.label.witness.steps) - 1
                after = f" (after {before} more message(s))" if before else ""
                msg = json.dumps(jsonable(last.message), sort_keys=True)
                lines.append(f"           {i}. {hop.describe()} {msg}{after}")
        if self.region:
            names = (", ".join(self.region) if len(self.region) <= CUT_LINES else
                     ", ".join(f"{n} x{c}" for n, c in sorted(Counter(map(self._cls, self.region)).items())))
            lines.append(f"         region ({self.region_is}, {len(self.region)} process(es)): {names}")
        if self.cut:
            lines.append("         cut (every flow crosses one of these hops, and the policy denies each):")
            if len(self.cut) <= CUT_LINES:
                lines += [f"           - {hop.describe()}  [{hop.label.how}]" for hop in self.cut]
            else:                       # thousands of instance hops: one line per class pair and message
                groups = Counter((self._cls(h.source), self._cls(h.target), h.what, h.label.how) for h in self.cut)
                lines.append(f"           ({len(self.cut)} hops by class; every hop is in the JSON report)")
                lines += [f"           - {a} -> {b}: {what} x{n}  [{how}]"
                          for (a, b, what, how), n in sorted(groups.items())]
        return lines

    def _cls(self, task: str) -> str:
        return self.classes.get(task, task)

    def to_json(self) -> dict:
        out = {"name": self.name, "kind": "never_flow", "status": self.status, "how": self.how}
        if self.path:
            out["path"] = [h.to_json(with_witness=True) for h in self.path]
        if self.status == PROVED:
            out["cut"] = [h.to_json() for h in self.cut]
            out["region"] = {"processes": self.region, "is": self.region_is}
        return out


CUT_LINES = 20          # a longer cut is listed by class pair in the text report


class FlowChecker:
    """Answers ``never flow`` properties on one labelled channel graph."""

    def __init__(self, graph: ChannelGraph):
        self.cg = graph
        with gc_paused():       # acyclic, and a collection here would walk every hop of the graph
            self._derive(graph)

    def _derive(self, graph: ChannelGraph) -> None:
        # One pass over the hops: every edge, its granted and its not-denied part.
        self.every = graph.flow_graph((GRANTED, UNDECIDED, DENIED))
        self.granted, self.possible = nx.DiGraph(), nx.DiGraph()
        for g in (self.granted, self.possible):
            g.add_nodes_from(self.every.nodes)
        possible, granted = [], []
        for u, v, data in self.every.edges(data=True):
            live = [h for h in data["hops"] if h.label.status != DENIED]
            if live:
                possible.append((u, v, {"hops": live}))
                mine = [h for h in live if h.label.status == GRANTED]
                if mine:
                    granted.append((u, v, {"hops": mine}))
        self.possible.add_edges_from(possible)
        self.granted.add_edges_from(granted)

    def check(self, prop) -> FlowResult:
        t0 = time.perf_counter()
        result = self._check(prop)
        result.seconds = time.perf_counter() - t0
        return result

    def _check(self, prop) -> FlowResult:
        tasks = set(self.cg.procs)
        srcs = {t for r in prop.flow_src for t in r.tasks} & tasks
        dsts = {t for r in prop.flow_dst for t in r.tasks} & tasks
        via = ({t for r in prop.flow_via for t in r.tasks} | self.cg.non_relays) - srcs - dsts
        if not srcs or not dsts:
            return FlowResult(prop.name, PROVED, "vacuous: no running process on one side", prop=prop)
        path = _shortest(self.granted, srcs, dsts, via)
        if path is not None:
            hops = [heaviest(self.granted[u][v]["hops"]) for u, v in zip(path, path[1:])]
            self._confirm(hops)
            return FlowResult(prop.name, REFUTED, f"flow path of {len(hops)} hop(s), each a message the decision "
                              "function grants", path=hops, prop=prop)
        if _shortest(self.possible, srcs, dsts, via) is not None:
            return FlowResult(prop.name, UNKNOWN, "a path exists only through hops the prover could not decide",
                              prop=prop)
        cut, region, region_is = self._cut(srcs, dsts, via)
        how = (f"cut of {len(cut)} hop(s), each denied by the policy" if cut
               else "no channel connects them")
        return FlowResult(prop.name, PROVED, how, cut=cut, region=sorted(region), region_is=region_is, prop=prop,
                          classes={t: p.cls for t, p in self.cg.procs.items()})

    def _cut(self, srcs: set, dsts: set, via: set) -> tuple[list[Hop], set[str], str]:
        """Denied hops separating the sources from the targets, and the region they bound.

        Forward region: what the sources' data can reach over hops not denied.  Every
        edge leaving it is all-denied (else its end would be inside); those whose end
        can still lead to a target (over any hop) form the cut.  Backward region: the
        same from the targets' side.  The smaller cut is returned.
        """
        def keep(n: str) -> bool:
            return n not in via
        possible = nx.subgraph_view(self.possible, filter_node=keep)
        every = nx.subgraph_view(self.every, filter_node=keep)
        best: tuple[list[Hop], set[str], str] | None = None
        for starts, goals, backward in ((srcs, dsts, False), (dsts, srcs, True)):
            p, e = (possible.reverse(copy=False), every.reverse(copy=False)) if backward else (possible, every)
            region = _closure(p, starts)
            onward = _closure(e.reverse(copy=False), goals)        # what can still lead to a goal
            cut = [h for u in region for v in e.successors(u) if v not in region and v in onward
                   for h in e[u][v]["hops"]]
            if best is None or len(cut) < len(best[0]):
                best = (cut, region, "reaching the targets" if backward else "reached from the sources")
        return best

    def _confirm(self, hops: list[Hop]) -> None:
        """Replay every hop's witness through a fresh decision function."""
        for hop in hops:
            module = self.cg.labeller.prover.booted()
            for step in hop.label.witness.steps:
                d = module.decide(step.event)
                if d.granted != (step.expect == "granted"):
                    raise ReplayMismatch(f"flow hop {hop.describe()}: {d.explain()}")


def _closure(g: nx.DiGraph, starts: set) -> set:
    """The starts and everything reachable from them, in one traversal."""
    present = [s for s in starts if s in g]
    return set(nx.multi_source_dijkstra_path_length(g, present, weight=_ONE)) if present else set()


def _ONE(u, v, d) -> int:
    return 1


def _shortest(g: nx.DiGraph, srcs: set, dsts: set, via: set) -> list | None:
    """A path with fewest hops from any source to any target, avoiding ``via``."""
    view = nx.subgraph_view(g, filter_node=lambda n: n not in via)
    starts = [s for s in sorted(srcs) if s in view]
    if not starts:
        return None
    dist, paths = nx.multi_source_dijkstra(view, starts, weight=_ONE)
    ends = sorted((dist[d], d) for d in dsts if d in dist and d not in srcs)
    return paths[ends[0][1]] if ends else None
