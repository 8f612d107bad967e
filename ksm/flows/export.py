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

import itertools
import json
from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx

from ..verify.prove import REFUTED
from .graph import ChannelGraph, Hop, KernelServices
from .labels import DENIED, GRANTED, Labeller

FORMATS = ("dot", "mermaid", "json", "svg", "html")


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


@dataclass
class _Group:
    """A box of the drawing: a class's instances, or a package's classes (DOT cluster, Mermaid subgraph)."""

    label: str
    items: list = field(default_factory=list)      # node names and nested groups, in node order


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
        self.conditions = _Conditions(graph, self.channels.values()) if conditions else {}

    @cached_property
    def class_order(self) -> dict[str, int]:
        """Each shown class's index, in the order of the shown processes: the ids of the
        page's per-class elements (a class's kernel-services panel)."""
        order: dict[str, int] = {}
        for n in self.nodes:
            order.setdefault(self.cg.procs[n].cls, len(order))
        return order

    def render(self, fmt: str, title: str = "solution", group: bool = True) -> str:
        return {"dot": lambda: self.dot(group), "mermaid": lambda: self.mermaid(group), "json": self.json,
                "svg": self.svg, "html": lambda: self.html(title)}[fmt]()

    # ------------------------------------------------------------------ groups
    def _tree(self, group: bool = True) -> list:
        """The nodes to draw, in node order, nested in :class:`_Group` boxes when ``group``.

        The instances of a class with two or more of them form a box labelled with the
        class; the classes sharing a package prefix (the class name up to its last dot)
        form an enclosing box when two or more share it, a class with one instance
        sitting directly in it.  The kernel and Einit stay outside.  A group stands
        where its first node would (so the order of the nodes is kept).
        """
        if not group:
            return list(self.nodes)
        procs = self.cg.procs
        loose = {n for n in self.nodes if n == self.cg.kernel or n == "Einit" or procs[n].cls == "Einit"}
        by_class: dict[str, list[str]] = {}
        for n in self.nodes:
            if n not in loose:
                by_class.setdefault(procs[n].cls, []).append(n)
        by_package: dict[str, list[str]] = {}
        for cls in by_class:
            prefix = cls.rpartition(".")[0]
            if prefix:
                by_package.setdefault(prefix, []).append(cls)
        top: list = []
        boxes: dict[tuple[str, str], _Group] = {}

        def box(kind: str, label: str, parent: list) -> list:
            g = boxes.get((kind, label))
            if g is None:
                g = boxes[(kind, label)] = _Group(label)
                parent.append(g)
            return g.items

        for n in self.nodes:
            if n in loose:
                top.append(n)
                continue
            cls = procs[n].cls
            prefix = cls.rpartition(".")[0]
            parent = box("package", prefix, top) if len(by_package.get(prefix, ())) >= 2 else top
            (box("class", cls, parent) if len(by_class[cls]) >= 2 else parent).append(n)
        return top

    # ------------------------------------------------------------------ DOT
    def dot(self, group: bool = True) -> str:
        """Graphviz DOT; ``group``: classes and packages as dashed clusters (see :meth:`_tree`)."""
        out = ["digraph channels {", "  rankdir=LR;", '  node [shape=box, style=rounded, fontname="Helvetica"];',
               '  edge [fontname="Helvetica", fontsize=10];']
        clusters = itertools.count()

        def draw(items: list, pad: str) -> None:
            for it in items:
                if isinstance(it, _Group):
                    out.append(f"{pad}subgraph cluster_{next(clusters)} {{")
                    out.append(f'{pad}  label={_dq(it.label)}; style="rounded,dashed"; color=gray60; '
                               f'fontcolor=gray40; fontname="Helvetica";')
                    draw(it.items, pad + "  ")
                    out.append(f"{pad}}}")
                else:
                    out.append(pad + self._dot_node(it))

        draw(self._tree(group), "  ")
        for ch in self.channels.values():
            attrs = [f"label={_dq(ch.label)}", f"tooltip={_dq(ch.tooltip(self.conditions))}"]
            attrs += {GRANTED: [], DENIED: ["style=dashed", "color=gray", "fontcolor=gray"],
                      "unknown": ["style=dotted"]}[ch.status]
            if ch.forbidden:
                attrs += ["color=red", "fontcolor=red", "penwidth=3"]
            out.append(f"  {_dq(ch.client)} -> {_dq(ch.server)} [{', '.join(attrs)}];")
        out.append("}")
        return "\n".join(out)

    def _dot_node(self, n: str) -> str:
        cls = self.cg.procs[n].cls
        label = n if cls == n else f"{n}\n{cls}"
        shape = ", shape=hexagon" if n == self.cg.kernel else ""
        services = self.cg.kernel_services(n)
        tip = f", tooltip={_dq(services_text(services))}" if services is not None else ""
        return f"{_dq(n)} [label={_dq(label)}{shape}{tip}];"

    # ------------------------------------------------------------------ Mermaid
    def mermaid(self, group: bool = True) -> str:
        """A Mermaid flowchart; ``group``: classes and packages as subgraphs (see :meth:`_tree`).

        The links come after every subgraph, in channel order, so ``linkStyle N`` still
        counts them as without groups.
        """
        ids = {n: f"n{i}" for i, n in enumerate(self.nodes)}
        out = ["flowchart LR"]
        groups = itertools.count()

        def draw(items: list, pad: str) -> None:
            for it in items:
                if isinstance(it, _Group):
                    out.append(f"{pad}subgraph g{next(groups)}[{_mq(it.label)}]")
                    draw(it.items, pad + "  ")
                    out.append(f"{pad}end")
                else:
                    cls = self.cg.procs[it].cls
                    label = _mq(it if cls == it else f"{it}<br/><i>{cls}</i>")
                    out.append(f"{pad}{ids[it]}{{{{{label}}}}}" if it == self.cg.kernel else f"{pad}{ids[it]}[{label}]")

        draw(self._tree(group), "  ")
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

    # ------------------------------------------------------------------ SVG
    def svg(self) -> str:
        """The process drawing of the HTML page as a file of its own (no script)."""
        from .drawing import process_drawing, svg

        return svg(process_drawing(self), standalone=True)

    # ------------------------------------------------------------------ HTML
    def html(self, title: str) -> str:
        from .page import render_page

        return render_page(self, title)


class _Conditions:
    """When each granted hop is granted, by ``id(hop)``: asked of the prover when first
    wanted.  Why not all at once: a large solution has hundreds of thousands of granted
    kernel hops that no picture shows one by one (a page gives a process's kernel
    channel as a count), and asking for each cost seconds at 1,000 processes."""

    def __init__(self, graph: ChannelGraph, channels) -> None:
        self._labeller: Labeller = graph.labeller
        self._procs = graph.procs
        self._hops = {id(h): h for ch in channels for h in ch.hops if h.label.status == GRANTED}
        self._known: dict = {}

    def __bool__(self) -> bool:
        return True

    def get(self, key: int, default=None):
        found = self._known.get(key)
        if found is None:
            h = self._hops.get(key)
            if h is None:
                return default
            procs = self._procs
            found = self._known[key] = self._labeller.condition(h.kind, procs[h.source], procs[h.target],
                                                                h.endpoint, h.method)
        return found

    def __getitem__(self, key: int):
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found


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
