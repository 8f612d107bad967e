"""``never flow A -> B [unless via C, ...]``: a certificate or a witness path.

PROVED comes with a **cut**: hops of the channel graph, each denied by the policy
(with the proof that says so), that separate every A from every B once the C are
taken out; it is a minimum cut of the graph of possible flows in which granted (and
undecided) hops cannot be cut.  An empty cut means no channel connects them at all.

REFUTED comes with the **shortest path** of granted hops from an A to a B avoiding
the C; each hop carries a message the decision function grants, replayed here again
from start-up (hops are separate traces: data may wait in a process between them).

UNKNOWN when a path exists only through hops the prover could not decide.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import networkx as nx

from ..engine import SecurityModule
from ..verify.prove import PROVED, REFUTED, UNKNOWN, ReplayMismatch
from .graph import ChannelGraph, Hop
from .labels import DENIED, GRANTED
from .labels import UNKNOWN as UNDECIDED


@dataclass
class FlowResult:
    name: str
    status: str
    how: str
    path: list[Hop] = field(default_factory=list)     # REFUTED: the witness path
    cut: list[Hop] = field(default_factory=list)      # PROVED: the certificate
    prop: object = None
    seconds: float = 0.0
    counterexample: None = None                       # (the shape of a proof result, for the reports)
    related: list = field(default_factory=list)

    def to_json(self) -> dict:
        out = {"name": self.name, "kind": "never_flow", "status": self.status, "how": self.how}
        if self.path:
            out["path"] = [_hop_json(h, with_witness=True) for h in self.path]
        if self.status == PROVED:
            out["cut"] = [_hop_json(h) for h in self.cut]
        return out


def _hop_json(h: Hop, with_witness: bool = False) -> dict:
    d = {"from": h.source, "to": h.target, "kind": h.kind, "client": h.client, "server": h.server,
         "endpoint": h.endpoint, "method": h.method, "channel": h.channel, "weight": h.weight,
         "status": h.label.status, "how": h.label.how}
    if with_witness and h.label.witness is not None:
        d["witness"] = h.label.witness.to_json()
    return d


class FlowChecker:
    """Answers ``never flow`` properties on one labelled channel graph."""

    def __init__(self, graph: ChannelGraph):
        self.cg = graph
        self.granted = graph.flow_graph((GRANTED,))
        self.possible = graph.flow_graph((GRANTED, UNDECIDED))

    def check(self, prop) -> FlowResult:
        t0 = time.perf_counter()
        result = self._check(prop)
        result.seconds = time.perf_counter() - t0
        return result

    def _check(self, prop) -> FlowResult:
        tasks = set(self.cg.procs)
        srcs = {t for r in prop.flow_src for t in r.tasks} & tasks
        dsts = {t for r in prop.flow_dst for t in r.tasks} & tasks
        via = {t for r in prop.flow_via for t in r.tasks} - srcs - dsts
        if not srcs or not dsts:
            return FlowResult(prop.name, PROVED, "vacuous: no running process on one side", prop=prop)
        path = _shortest(self.granted, srcs, dsts, via)
        if path is not None:
            hops = [_best_hop(self.granted[u][v]["hops"]) for u, v in zip(path, path[1:])]
            self._confirm(hops)
            return FlowResult(prop.name, REFUTED, f"flow path of {len(hops)} hop(s), each a message the decision "
                              "function grants", path=hops, prop=prop)
        if _shortest(self.possible, srcs, dsts, via) is not None:
            return FlowResult(prop.name, UNKNOWN, "a path exists only through hops the prover could not decide",
                              prop=prop)
        cut = self._cut(srcs, dsts, via)
        how = (f"cut of {len(cut)} hop(s), each denied by the policy" if cut
               else "no channel connects them")
        return FlowResult(prop.name, PROVED, how, cut=cut, prop=prop)

    def _cut(self, srcs: set, dsts: set, via: set) -> list[Hop]:
        """A minimum set of denied hops separating the sources from the targets."""
        g = nx.DiGraph()
        for hop in self.cg.hops:
            u, v = hop.source, hop.target
            if u in via or v in via:
                continue
            data = g.get_edge_data(u, v)
            if data is None:
                g.add_edge(u, v, hops=[])
                data = g[u][v]
            data["hops"].append(hop)
        for u, v, data in g.edges(data=True):
            if all(h.label.status == DENIED for h in data["hops"]):
                data["capacity"] = len(data["hops"])
            # else no capacity attribute: networkx treats it as infinite
        g.add_node("\0source")
        g.add_node("\0sink")
        for s in srcs:
            g.add_edge("\0source", s)
        for d in dsts:
            g.add_edge(d, "\0sink")
        _, (side, _) = nx.minimum_cut(g, "\0source", "\0sink")
        return [h for u in side for v in g.successors(u) if v not in side
                for h in g[u][v].get("hops", ())]

    def _confirm(self, hops: list[Hop]) -> None:
        """Replay every hop's witness through a fresh decision function."""
        sol, opts = self.cg.universe.solution, self.cg.universe.options
        for hop in hops:
            module = SecurityModule(sol, opts)
            module.boot()
            for step in hop.label.witness.steps:
                d = module.decide(step.event)
                if d.granted != (step.expect == "granted"):
                    raise ReplayMismatch(f"flow hop {hop.describe()}: {d.explain()}")


def _shortest(g: nx.DiGraph, srcs: set, dsts: set, via: set) -> list | None:
    h = g.subgraph([n for n in g.nodes if n not in via])
    best = None
    for s in sorted(srcs):
        if s not in h:
            continue
        paths = nx.single_source_shortest_path(h, s)
        for d in sorted(dsts):
            if d in paths and d != s and (best is None or len(paths[d]) < len(best)):
                best = paths[d]
    return best


def _best_hop(hops: list[Hop]) -> Hop:
    """The heaviest granted hop of an edge (the most data), requests first."""
    return max(hops, key=lambda h: (h.weight, h.kind == "request"))
