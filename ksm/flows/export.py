"""The channel graph for people and other tools: DOT, Mermaid, node-link JSON, HTML.

Every format draws the same picture: one node per process instance, one arrow per
channel from client to server (static, declared, policy or the kernel's), labelled
``CHANNEL: g/n`` when g of the server's n methods can be requested.  A channel is

* solid when some message on it is granted (data can move), dashed and grey when the
  policy denies every message on it, dotted when the prover could not decide;
* red and thick when a hop of a **forbidden path** crosses it: the witness path of a
  refuted ``never flow`` property.

The per-method detail (request, response, error: granted or denied, the condition,
the proof) goes into tooltips (DOT, HTML) and the JSON.

When the kernel is described (it has endpoints), each process's arrow to the kernel
is labelled with its **kernel services** instead, ``kernel: 4 endpoints, 12
dangerous`` (see :meth:`ChannelGraph.kernel_services`), and every process node carries
them: the ``kernel_services`` node attribute of the JSON (``null`` for the kernel
itself and when the kernel is opaque), a tooltip in DOT, a "Kernel services" section
in the HTML page's detail panel.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import networkx as nx

from ..verify.prove import REFUTED
from .graph import ChannelGraph, Hop, KernelServices
from .labels import DENIED, GRANTED, Labeller

FORMATS = ("dot", "mermaid", "json", "html")


@dataclass
class Channel:
    """One arrow of the picture: every hop between a client and a server."""

    client: str
    server: str
    channel: str
    hops: list[Hop] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)     # refuted flow properties crossing it
    services: KernelServices | None = None                 # a process -> kernel channel: what it may call

    @property
    def status(self) -> str:
        statuses = {h.label.status for h in self.hops}
        if GRANTED in statuses:
            return GRANTED
        return DENIED if statuses <= {DENIED} else "unknown"

    @property
    def label(self) -> str:
        if self.services is not None:
            return self.services.label
        requests = [h for h in self.hops if h.kind == "request"]
        granted = sum(h.label.status == GRANTED for h in requests)
        return f"{self.channel}: {granted}/{len(requests)}"

    def tooltip(self, conditions: dict) -> str:
        lines = [f"{self.client} -> {self.server} ({self.label if self.services is not None else self.channel})"]
        for h in self.hops:
            cond = conditions.get(id(h))
            extra = f", {cond.status}" + (f": {cond.reason}" if cond.reason else "") if cond else ""
            lines.append(f"{h.what}: {h.label.status}{extra}")
        for name in self.forbidden:
            lines.append(f"on the witness path of {name}")
        return "\n".join(lines)


class GraphExport:
    """The channels of a labelled graph, with the flow results to highlight."""

    def __init__(self, graph: ChannelGraph, results=(), hide: tuple[str, ...] = (), conditions: bool = True):
        self.cg = graph
        self.results = [r for r in results if getattr(r, "prop", None) is not None]
        self.nodes = [n for n in sorted(graph.procs) if n not in hide]
        shown = set(self.nodes)
        self.channels: dict[tuple[str, str], Channel] = {}
        for hop in graph.hops:
            if hop.client in shown and hop.server in shown:
                key = (hop.client, hop.server)
                self.channels.setdefault(key, Channel(hop.client, hop.server, hop.channel)).hops.append(hop)
        for ch in self.channels.values():
            if ch.channel == "kernel" and ch.server == graph.kernel:
                ch.services = graph.kernel_services(ch.client)
        for r in self.results:
            if r.status == REFUTED:
                for hop in r.path:
                    ch = self.channels.get((hop.client, hop.server))
                    if ch is not None and r.name not in ch.forbidden:
                        ch.forbidden.append(r.name)
        self.conditions = self._conditions(graph.labeller) if conditions else {}

    def _conditions(self, labeller: Labeller) -> dict:
        """When each granted hop is granted (asked of the prover, per class pair)."""
        procs = self.cg.procs
        return {id(h): labeller.condition(h.kind, procs[h.source], procs[h.target], h.endpoint, h.method)
                for ch in self.channels.values() for h in ch.hops if h.label.status == GRANTED}

    def render(self, fmt: str, title: str = "solution") -> str:
        return {"dot": self.dot, "mermaid": self.mermaid, "json": self.json,
                "html": lambda: self.html(title)}[fmt]()

    # ------------------------------------------------------------------ DOT
    def dot(self) -> str:
        out = ["digraph channels {", "  rankdir=LR;", '  node [shape=box, style=rounded, fontname="Helvetica"];',
               '  edge [fontname="Helvetica", fontsize=10];']
        for n in self.nodes:
            cls = self.cg.procs[n].cls
            label = n if cls == n else f"{n}\n{cls}"
            shape = ", shape=hexagon" if n == self.cg.kernel else ""
            services = self.cg.kernel_services(n)
            tip = f", tooltip={_dq(services_text(services))}" if services is not None else ""
            out.append(f"  {_dq(n)} [label={_dq(label)}{shape}{tip}];")
        for ch in self.channels.values():
            attrs = [f"label={_dq(ch.label)}", f"tooltip={_dq(ch.tooltip(self.conditions))}"]
            attrs += {GRANTED: [], DENIED: ["style=dashed", "color=gray", "fontcolor=gray"],
                      "unknown": ["style=dotted"]}[ch.status]
            if ch.forbidden:
                attrs += ["color=red", "fontcolor=red", "penwidth=3"]
            out.append(f"  {_dq(ch.client)} -> {_dq(ch.server)} [{', '.join(attrs)}];")
        out.append("}")
        return "\n".join(out)

    # ------------------------------------------------------------------ Mermaid
    def mermaid(self) -> str:
        ids = {n: f"n{i}" for i, n in enumerate(self.nodes)}
        out = ["flowchart LR"]
        for n in self.nodes:
            cls = self.cg.procs[n].cls
            label = _mq(n if cls == n else f"{n}<br/><i>{cls}</i>")
            out.append(f"  {ids[n]}{{{{{label}}}}}" if n == self.cg.kernel else f"  {ids[n]}[{label}]")
        styles = []
        for i, ch in enumerate(self.channels.values()):
            arrow = "-->" if ch.status == GRANTED else "-.->"
            out.append(f"  {ids[ch.client]} {arrow}|{_mq(ch.label)}| {ids[ch.server]}")
            if ch.forbidden:
                styles.append(f"  linkStyle {i} stroke:#d62728,stroke-width:3px,color:#d62728")
            elif ch.status == DENIED:
                styles.append(f"  linkStyle {i} stroke:#999,color:#999")
        return "\n".join(out + styles)

    # ------------------------------------------------------------------ JSON
    def data(self) -> dict:
        """Node-link data (networkx's format), with the flow results as graph data."""
        g = nx.DiGraph(flows=[r.to_json() for r in self.results], dynamic=self.cg.dynamic,
                       kernel=self.cg.kernel, kernel_relay=self.cg.kernel_relay)
        for n in self.nodes:
            services = self.cg.kernel_services(n)
            g.add_node(n, cls=self.cg.procs[n].cls, kernel=n == self.cg.kernel,
                       kernel_services=services.to_json() if services is not None else None)
        for ch in self.channels.values():
            g.add_edge(ch.client, ch.server, channel=ch.channel, status=ch.status, label=ch.label,
                       forbidden=ch.forbidden, hops=[self._hop_json(h) for h in ch.hops])
        return nx.node_link_data(g, edges="links")

    def _hop_json(self, h: Hop) -> dict:
        d = h.to_json()
        cond = self.conditions.get(id(h))
        if cond is not None:
            d["condition"] = {"status": cond.status, "how": cond.how, "reason": cond.reason}
        return d

    def json(self) -> str:
        return json.dumps(self.data(), indent=2, sort_keys=True)

    # ------------------------------------------------------------------ HTML
    def html(self, title: str) -> str:
        from .page import render_page

        return render_page(self, title)


def services_text(services: KernelServices) -> str:
    """The kernel services of a process as plain lines (DOT tooltips)."""
    lines = [f"{services.label} ({services.methods} methods; {services.cls}, "
             f"{'trusted' if services.trusted else 'untrusted'})"]
    for e in services.endpoints:
        line = f"{e.endpoint}: {e.verdict}, {len(e.calls)}/{e.total} methods"
        if e.dangerous:
            line += "; dangerous: " + ", ".join(c.method for c in e.dangerous)
        lines.append(line)
    return "\n".join(lines)


def _dq(text: str) -> str:
    """A DOT double-quoted string; line breaks become DOT's ``\\n``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _mq(text: str) -> str:
    """A Mermaid quoted label: quotes become entity codes, the rest stays."""
    return '"' + text.replace('"', "#quot;") + '"'
