"""Questions about flows that are not properties: where can data go, and how.

Every answer is read off the data-flow graph of granted hops (each one a message the
decision function grants), with the same rule as the properties: the kernel is not
a relay unless the graph says so, and ``avoid`` processes are taken out, as ``unless
via`` does.  Names may be tasks or classes (a class stands for all its instances).
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from .graph import ChannelGraph, Hop, heaviest
from .labels import GRANTED

MAX_PATHS = 50     # all shortest paths can be exponentially many; list at most this many


class UnknownProcess(ValueError):
    """A name that is neither a running task nor a class with running instances."""


@dataclass
class Reach:
    """One process data can reach (or come from), and one shortest way."""

    node: str
    hops: list[Hop]


class FlowQuery:
    """Reachability questions over one labelled channel graph."""

    def __init__(self, graph: ChannelGraph, avoid: tuple[str, ...] = ()):
        self.cg = graph
        self.flows = graph.flow_graph((GRANTED,))
        self.avoid = set().union(*(self.tasks(a) for a in avoid)) if avoid else set()

    def tasks(self, name: str) -> set[str]:
        """The tasks a name stands for."""
        if name in self.cg.procs:
            return {name}
        found = {t for t, p in self.cg.procs.items() if p.cls == name}
        if not found:
            known = ", ".join(sorted(self.cg.procs))
            raise UnknownProcess(f"{name!r} is neither a running task nor a class with running instances "
                                 f"(tasks: {known})")
        return found

    def _view(self, ends: set[str]) -> nx.DiGraph:
        """The flow graph without the avoided processes and the non-relays (unless at an end)."""
        out = (self.avoid | self.cg.non_relays) - ends
        return self.flows.subgraph([n for n in self.flows.nodes if n not in out])

    def out_of(self, name: str) -> list[Reach]:
        """Every process data from ``name`` can reach, nearest first."""
        return self._reach(self.tasks(name), reverse=False)

    def into(self, name: str) -> list[Reach]:
        """Every process whose data can reach ``name``, nearest first."""
        return self._reach(self.tasks(name), reverse=True)

    def _reach(self, starts: set[str], reverse: bool) -> list[Reach]:
        found: dict[str, list[str]] = {}
        for s in sorted(starts):
            g = self._view({s})
            paths = nx.single_source_shortest_path(g.reverse(copy=False) if reverse else g, s)
            for k in self.cg.non_relays - self.avoid - {s}:      # reached last, never passed through
                near = self.flows.predecessors(k) if not reverse else self.flows.successors(k)
                ways = [paths[n] + [k] for n in near if n in paths]
                if ways:
                    paths[k] = min(ways, key=len)
            for node, path in paths.items():
                if node in starts:
                    continue
                path = path[::-1] if reverse else path
                if node not in found or len(path) < len(found[node]):
                    found[node] = path
        return [Reach(n, self._hops(p)) for n, p in sorted(found.items(), key=lambda x: (len(x[1]), x[0]))]

    def shortest_paths(self, src: str, dst: str, limit: int = MAX_PATHS) -> list[list[Hop]]:
        """All shortest flow paths from ``src`` to ``dst`` (at most ``limit``)."""
        srcs, dsts = self.tasks(src), self.tasks(dst)
        g = self._view(srcs | dsts)
        g = nx.DiGraph(g)          # a copy, to join the ends to two extra nodes
        g.add_edges_from(("\0from", s) for s in srcs if s in g)
        g.add_edges_from((d, "\0to") for d in dsts if d in g)
        if "\0from" not in g or "\0to" not in g or not nx.has_path(g, "\0from", "\0to"):
            return []
        out = []
        for path in nx.all_shortest_paths(g, "\0from", "\0to"):
            out.append(self._hops(path[1:-1]))
            if len(out) >= limit:
                break
        return out

    def matrix(self, by_class: bool = False) -> tuple[list[str], dict[tuple[str, str], bool]]:
        """Whether data can flow from each row to each column (classes or tasks).

        Why per strongly connected component: in the component graph reachability is a
        DAG question, so the matrix costs one traversal per component, not per pair.
        Non-relays get their own row and column but pass nothing on.
        """
        g = self._view(set()).copy()
        for n in self.cg.non_relays:          # may send and receive, may not relay
            g.add_node(n)
            g.add_edges_from((n, v) for v in self.flows.successors(n) if v in g)
            g.add_edges_from((u, n) for u in self.flows.predecessors(n) if u in g)
        reach = _reachable_sets(g, self.cg.non_relays)
        tasks = sorted(self.cg.procs)
        names = sorted({self.cg.procs[t].cls for t in tasks}) if by_class else tasks
        group = {t: (self.cg.procs[t].cls if by_class else t) for t in tasks}
        cells = {(a, b): False for a in names for b in names}
        for t in tasks:
            for r in reach.get(t, ()):
                if r != t:
                    cells[(group[t], group[r])] = True
        return names, cells

    def _hops(self, path: list[str]) -> list[Hop]:
        return [heaviest(self.flows[u][v]["hops"]) for u, v in zip(path, path[1:])]


def _reachable_sets(g: nx.DiGraph, sinks: set[str]) -> dict[str, set[str]]:
    """Nodes reachable from each node, where ``sinks`` receive but do not forward."""
    relay = g.subgraph([n for n in g if n not in sinks])
    cond = nx.condensation(relay)
    members = cond.graph["mapping"]
    comp_reach: dict[int, set[str]] = {}
    for c in reversed(list(nx.topological_sort(cond))):
        mine = set(cond.nodes[c]["members"])
        for m in list(mine):
            mine.update(s for s in g.successors(m) if s in sinks)
        for d in cond.successors(c):
            mine |= comp_reach[d]
        comp_reach[c] = mine
    out = {n: comp_reach[members[n]] for n in relay}
    for s in sinks:
        if s in g:
            seen = set(g.successors(s))
            for v in list(seen):
                if v in members:
                    seen |= comp_reach[members[v]]
            out[s] = seen
    return out
