"""The channel graph of a solution and the data-flow graph derived from it.

Channel graph (a networkx ``MultiDiGraph``): nodes are the process instances running
after start-up, by task name; one edge per (channel, endpoint, method) from client to
server, carrying the :class:`~ksm.flows.labels.HopLabel` of its request, response and
error.  Channels are the static ones of init.yaml, plus run-time ones per
``dynamic``:

* ``none``      static channels only;
* ``declared``  also the ``channel A -> B`` lines of the property files (default);
* ``policy``    also every client/server pair some request of which the policy could
                grant (the broadest: any channel the programs might open).

The kernel is a node too: every process may call it without a channel (hops on
channel ``kernel``).  By default it is not a relay: a flow may start or end at the
kernel but not pass through it, since the toolkit assumes the kernel's services do
not hand one process's data to another (its IPC transport is what the graph already
models).  ``kernel_relay=True`` drops that assumption.

Kernel services: what each process may ask of a described kernel (``kl.core.Core``
with endpoints, built in or from the SDK) is summarised per node by
:meth:`ChannelGraph.kernel_services`: the endpoints some method of which its class may
call, with the verdicts of :func:`ksm.kernel_access.kernel_access` (``ksm kernel``:
per class, over every state) and the documented dangerous methods among them.

Data-flow graph (``DiGraph``): an edge u -> v when some granted message moves data
from u to v: a granted request moves its in-parameters client -> server; a granted
response (out-parameters) or error (error-parameters) moves data server -> client,
and only where the request itself can be granted.  Each edge keeps the hops that make
it and a weight from 1 to 10 (:func:`weight`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import networkx as nx

from policy_lang.perf import gc_paused
from policy_lang.solution import KERNEL_CLASS, message_params
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

from ..verify.universe import Proc, Universe
from .labels import DENIED, GRANTED, UNKNOWN, HopLabel, Labeller

DYNAMIC = ("none", "declared", "policy")
OPAQUE_WEIGHT = 10      # a method of a class without an EDL (the kernel's): it may carry anything


@dataclass(frozen=True)
class Hop:
    """One kind of message on one channel, with what the policy does with it."""

    kind: str                  # request | response | error
    client: str
    server: str
    endpoint: str | None
    method: str | None
    label: HopLabel
    weight: int
    channel: str               # init.yaml channel id, "declared", "policy" or "kernel"
    interface: str | None = None   # the endpoint's interface (None for the kernel's)

    @property
    def source(self) -> str:
        """Where the data comes from."""
        return self.client if self.kind == "request" else self.server

    @property
    def target(self) -> str:
        return self.server if self.kind == "request" else self.client

    @property
    def what(self) -> str:
        """The message's kind and address, e.g. ``request vault.secrets.GetKey``."""
        return f"{self.kind} " + (".".join(x for x in (self.endpoint, self.method) if x) or "(any method)")

    def describe(self) -> str:
        return f"{self.source} -> {self.target}: {self.what}"

    def to_json(self, with_witness: bool = False) -> dict:
        d = {"from": self.source, "to": self.target, "kind": self.kind, "client": self.client,
             "server": self.server, "endpoint": self.endpoint, "interface": self.interface,
             "method": self.method, "channel": self.channel,
             "weight": self.weight, "status": self.label.status, "how": self.label.how}
        if with_witness and self.label.witness is not None:
            d["witness"] = self.label.witness.to_json()
        return d


def channel_graph(prover, files, dynamic: str = "declared", kernel_relay: bool = False) -> "ChannelGraph":
    """The channel graph of a prover's solution with the run-time channels the property files declare."""
    declared = [c for f in files for c in f.channels]
    return ChannelGraph(Labeller(prover), dynamic, declared, kernel_relay=kernel_relay)


def heaviest(hops: list[Hop]) -> Hop:
    """The hop of an edge that carries the most data, requests first (to show one)."""
    return max(hops, key=lambda h: (h.weight, h.kind == "request"))


# ---------------------------------------------------------------------- weights
def _bits(t, depth: int = 0) -> int:
    """Capacity of one value of an IDL type, in bits (bounded by its IDL bounds)."""
    if depth > 20:
        return 64
    if isinstance(t, IntType):
        return t.bits
    if isinstance(t, HandleType):
        return 64
    if isinstance(t, (StringType, BytesType)):
        return 8 * t.bound
    if isinstance(t, SequenceType):
        return t.bound * _bits(t.element, depth + 1)
    if isinstance(t, ArrayType):
        return t.length * _bits(t.element, depth + 1)
    if isinstance(t, StructType):
        return sum(_bits(f.type, depth + 1) for f in t.fields)
    if isinstance(t, UnionType):
        return max((_bits(f.type, depth + 1) for f in t.fields), default=0) + 8
    return 64


def weight(params) -> int:
    """How much a message can carry, 1..10.

    1: no parameter - only the fact and timing of the exchange leak; 2: up to 8 bits;
    4: up to 64 bits; 7: up to 4 KiB; 10: more.  (Coarse on purpose, like SETools'
    permission-map weights: for ranking paths, not for measuring channels.)
    """
    bits = sum(_bits(p.type) for p in params)
    if bits == 0:
        return 1
    if bits <= 8:
        return 2
    if bits <= 64:
        return 4
    if bits <= 8 * 4096:
        return 7
    return 10


# ---------------------------------------------------------------------- kernel services
@dataclass(frozen=True)
class KernelService:
    """One kernel endpoint a process class may call: its granted methods."""

    endpoint: str
    interface: str
    total: int                          # methods of the endpoint
    calls: tuple = ()                   # the granted ones (:class:`ksm.kernel_access.KernelCall`)

    @property
    def verdict(self) -> str:
        """``always`` when every granted method is granted always, else ``conditional``."""
        return "always" if all(c.verdict == "always" for c in self.calls) else "conditional"

    @property
    def dangerous(self) -> tuple:
        return tuple(c for c in self.calls if c.dangerous)

    @property
    def conditional(self) -> tuple:
        return tuple(c for c in self.calls if c.verdict != "always")

    def to_json(self) -> dict:
        return {"endpoint": self.endpoint, "interface": self.interface, "verdict": self.verdict,
                "methods": len(self.calls), "of": self.total,
                "conditional": [{"method": c.method, "why": c.why} for c in self.conditional],
                "dangerous": [{"method": c.method, "verdict": c.verdict, "danger": list(c.facts.danger),
                               "reason": c.facts.reason} for c in self.dangerous]}


@dataclass(frozen=True)
class KernelServices:
    """The kernel endpoints one process class may call (empty: none at all)."""

    cls: str
    trusted: bool
    source: str                         # "built-in" or "sdk": where the kernel description came from
    endpoints: tuple[KernelService, ...] = field(default_factory=tuple)

    @property
    def methods(self) -> int:
        return sum(len(e.calls) for e in self.endpoints)

    @property
    def dangerous(self) -> int:
        return sum(len(e.dangerous) for e in self.endpoints)

    @property
    def conditional(self) -> int:
        return sum(len(e.conditional) for e in self.endpoints)

    @property
    def label(self) -> str:
        """The compact label of the process -> kernel arrow, e.g. ``kernel: 4 endpoints, 12 dangerous``."""
        n = len(self.endpoints)
        text = f"kernel: {n} endpoint{'' if n == 1 else 's'}"
        if self.conditional:
            text += f" ({self.conditional} conditional)"
        return f"{text}, {self.dangerous} dangerous"

    def to_json(self) -> dict:
        return {"class": self.cls, "trusted": self.trusted, "source": self.source,
                "methods": self.methods, "dangerous": self.dangerous, "conditional": self.conditional,
                "endpoints": [e.to_json() for e in self.endpoints]}


def _services(row, source: str) -> KernelServices:
    """Group one class's row of the kernel access table by endpoint, in the description's order."""
    by_ep: dict[str, list] = {}
    for c in row.calls:
        by_ep.setdefault(c.endpoint, []).append(c)
    eps = tuple(KernelService(ep, calls[0].interface, len(calls), tuple(c for c in calls if c.granted))
                for ep, calls in by_ep.items())
    return KernelServices(row.cls, row.trusted, source, tuple(e for e in eps if e.calls))


# ---------------------------------------------------------------------- graphs
class ChannelGraph:
    """Channels between process instances, each hop labelled by the prover."""

    def __init__(self, labeller: Labeller, dynamic: str = "declared", declared=(), kernel_relay: bool = False):
        if dynamic not in DYNAMIC:
            raise ValueError(f"dynamic must be one of {', '.join(DYNAMIC)}")
        t0 = time.perf_counter()
        self.labeller = labeller
        self.universe: Universe = labeller.universe
        self.dynamic = dynamic
        self.kernel_relay = kernel_relay
        self.graph = nx.MultiDiGraph()
        self.hops: list[Hop] = []
        self._services: dict[str, KernelServices | None] | None = None
        self._weights: dict[tuple, int] = {}     # (method def, kind) -> weight; the defs live in the solution
        self._by_server: dict[str, list[tuple]] | None = None
        procs = {p.task: p for p in self.universe.procs if p.task}
        self.procs = procs
        self.kernel = next((t for t, p in procs.items() if p.cls == KERNEL_CLASS), None)
        for task, p in procs.items():
            self.graph.add_node(task, cls=p.cls)
        pairs: dict[tuple[str, str], str] = {}
        if self.kernel is not None:
            for task in procs:
                if task != self.kernel:
                    pairs[(task, self.kernel)] = "kernel"
        for ch in self.universe.solution.channels:
            if ch.client in procs and ch.server in procs:
                pairs.setdefault((ch.client, ch.server), ch.id)
        if dynamic != "none":
            for decl in declared:
                for c in decl.client.tasks:
                    for s in decl.server.tasks:
                        if c in procs and s in procs:
                            pairs.setdefault((c, s), "declared")
        if dynamic == "policy":
            for c in procs:
                for s in procs:
                    if c != s and self.kernel not in (c, s) and (c, s) not in pairs and self._some_request(procs[c], procs[s]):
                        pairs[(c, s)] = "policy"
        self.channels = pairs
        # Paused collector: half a million hops, labels and witnesses are allocated here and
        # none forms a cycle, while every full collection would walk them all again.
        with gc_paused():
            for (c, s), channel in sorted(pairs.items()):
                self._add_channel(procs[c], procs[s], channel)
        self.seconds = time.perf_counter() - t0      # building and labelling

    @property
    def non_relays(self) -> set[str]:
        """Nodes a flow may start or end at but not pass through."""
        return {self.kernel} if self.kernel is not None and not self.kernel_relay else set()

    @property
    def kernel_described(self) -> bool:
        """Whether the kernel has endpoints (built in or the SDK's), so that its services can be listed."""
        kernel = self.universe.solution.classes.get(KERNEL_CLASS)
        return self.kernel is not None and kernel is not None and bool(kernel.endpoints)

    def kernel_services(self, task: str) -> KernelServices | None:
        """The kernel endpoints ``task`` may call (None for the kernel itself, or an undescribed kernel).

        Per class, from :func:`ksm.kernel_access.kernel_access` (computed once, memoised
        on the solution; the hop labels of kernel requests use the same table).
        """
        if self._services is None:
            self._services = {}
            if self.kernel_described:
                from ..kernel_access import kernel_access

                table = kernel_access(self.universe.solution, self.universe.options)
                self._services = {row.cls: _services(row, table.source) for row in table.classes}
        p = self.procs.get(task)
        if p is None or task == self.kernel:
            return None
        return self._services.get(p.cls)

    def _addresses(self, server: Proc) -> list[tuple]:
        """(endpoint, interface, method, method def) of every method ``server`` serves."""
        if self._by_server is None:
            self._by_server = {}
            for cls, ep, iface, m, mdef in self.universe._addresses():
                self._by_server.setdefault(cls, []).append((ep, iface, m, mdef))
        return self._by_server.get(server.cls, [])

    def _some_request(self, client: Proc, server: Proc) -> bool:
        return any(self.labeller.label("request", client, server, ep, m).status != DENIED
                   for ep, _, m, _ in self._addresses(server))

    def _add_channel(self, client: Proc, server: Proc, channel: str) -> None:
        for ep, iface, m, mdef in self._addresses(server):
            request = self.labeller.label("request", client, server, ep, m)
            self._hop("request", client, server, (ep, iface, m, mdef), request, channel)
            for kind in ("response", "error"):
                if request.status == DENIED:
                    label = HopLabel(DENIED, f"its request is never granted ({request.how})")
                else:
                    label = self.labeller.label(kind, server, client, ep, m)
                self._hop(kind, client, server, (ep, iface, m, mdef), label, channel)

    def _hop(self, kind, client: Proc, server: Proc, address: tuple, label: HopLabel, channel: str) -> None:
        ep, iface, m, mdef = address
        wkey = (id(mdef), kind)
        w = self._weights.get(wkey)
        if w is None:
            w = self._weights[wkey] = weight(message_params(mdef, kind)) if mdef is not None else OPAQUE_WEIGHT
        hop = Hop(kind, client.task, server.task, ep, m, label, w, channel, iface)
        self.hops.append(hop)
        self.graph.add_edge(client.task, server.task, key=(kind, ep, m), hop=hop)

    def stats(self) -> dict:
        """Size of the graph and what labelling it cost (for reports and the benchmark)."""
        out = {"processes": len(self.procs), "channels": len(self.channels), "hops": len(self.hops)}
        for status in (GRANTED, DENIED, UNKNOWN):
            out[status] = sum(h.label.status == status for h in self.hops)
        out.update(proofs=self.labeller.questions, labelling_seconds=round(self.seconds, 3),
                   dynamic=self.dynamic, kernel_relay=self.kernel_relay)
        return out

    def summary(self) -> str:
        s = self.stats()
        return (f"channel graph: {s['processes']} processes, {s['channels']} channels, {s['hops']} hops "
                f"({s['granted']} granted, {s['denied']} denied, {s['unknown']} undecided), "
                f"labelled with {s['proofs']} proofs in {s['labelling_seconds']:.2f} s")

    # ------------------------------------------------------------------ derived
    def flow_graph(self, statuses=(GRANTED,)) -> nx.DiGraph:
        """Data flows made by hops whose label is in ``statuses``."""
        edges: dict[tuple[str, str], list[Hop]] = {}     # grouped first: one networkx edge per pair
        for hop in self.hops:
            if hop.label.status in statuses:
                pair = (hop.client, hop.server) if hop.kind == "request" else (hop.server, hop.client)
                found = edges.get(pair)
                if found is None:
                    edges[pair] = [hop]
                else:
                    found.append(hop)
        g = nx.DiGraph()
        g.add_nodes_from(self.graph.nodes(data=True))
        g.add_edges_from((u, v, {"hops": hops, "weight": max(h.weight for h in hops)}) for (u, v), hops in edges.items())
        return g
