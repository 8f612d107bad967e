"""The channel graph as an SVG drawing: boxes, routed arrows and their labels.

One drawing is made for the process graph and one for the class graph (the
instances of each class collapsed into one box); the HTML page shows both and
``ksm graph --format svg`` writes the first on its own.  The coordinates come from
:func:`ksm.flows.layout.layered`; this module only decides sizes, classes and text.

Every element carries what the page's script needs and nothing it must recompute:
an arrow ``<g class="edge STATUS [cond] [kernel] [forbidden]" data-from data-to>``,
a box ``<g class="node" data-name data-edges>``, and an arrow's label is a
``<text class="lbl">`` where the layout found room for it, else a
``<text class="lbl hover">`` the page shows only while the arrow is hovered.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from .labels import ALWAYS, DENIED, GRANTED
from .layout import Layout, layered

# Text metrics of the page's fonts (system-ui 13 px names, 10 px classes and labels),
# generous so that a box is never narrower than its text.
NAME_PX, SMALL_PX = 7.6, 6.0
BOX_H, MIN_W, MAX_W = 42, 120, 340
LABEL_H = 13


def status_of(ch, conditions: dict) -> str:
    """granted (some message always passes), conditional (only under conditions), denied, unknown."""
    status = ch.status
    if status != GRANTED:
        return status
    granted = [h for h in ch.hops if h.label.status == GRANTED]
    if not conditions or any(conditions.get(id(h)) is None or conditions[id(h)].status == ALWAYS for h in granted):
        return GRANTED
    return "conditional"


def channel_tip(ch, conditions: dict) -> str:
    """What hovering an arrow says: every message of a channel between two processes;
    for a process's kernel channel (hundreds of messages) only the count, since its
    kernel services are in the process's panel."""
    if ch.channel != "kernel" or ch.forbidden:
        return ch.tooltip(conditions)
    granted = sum(h.label.status == GRANTED for h in ch.hops)
    head = ch.services.label if ch.services is not None else "kernel"
    return f"{ch.client} -> {ch.server} ({head}): {len(ch.hops)} messages, {granted} granted"


@dataclass
class Node:
    key: str                 # process name (or class name in the class drawing)
    title: str               # first line of the box
    sub: str = ""            # second line (the class of a process, the instance count of a class)
    kernel: bool = False
    badge: str = ""          # the count of dangerous kernel methods it may call ("" for none)
    tip: str = ""
    more: str = ""           # ids of further detail panels to open with the node's own (space-separated)


@dataclass
class Edge:
    client: str
    server: str
    status: str              # granted | conditional | denied | unknown
    label: str
    tip: str
    kernel: bool = False
    forbidden: bool = False


@dataclass
class Drawing:
    """Nodes and edges of one picture with their layout and element ids."""

    nodes: list[Node]
    edges: list[Edge]
    layout: Layout
    prefix: str = ""                             # element-id prefix ("" processes, "c" classes)
    node_ids: dict[str, str] = field(default_factory=dict)
    edge_ids: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.node_ids = {n.key: f"{self.prefix}n{i}" for i, n in enumerate(self.nodes)}
        self.edge_ids = {(e.client, e.server): f"{self.prefix}e{i}" for i, e in enumerate(self.edges)}


def box_size(node: Node) -> tuple[float, float]:
    width = max(len(node.title) * NAME_PX, len(node.sub) * SMALL_PX + (40 if node.badge else 0)) + 18
    return min(MAX_W, max(MIN_W, width)), BOX_H


def label_size(text: str) -> tuple[float, float]:
    return len(text) * SMALL_PX + 6, LABEL_H


def draw(nodes: list[Node], edges: list[Edge], aside: tuple[str, ...] = (), prefix: str = "") -> Drawing:
    """Lay the picture out; labels are placed for every edge but the kernel's."""
    layout = layered([n.key for n in nodes], [(e.client, e.server) for e in edges],
                     sizes={n.key: box_size(n) for n in nodes},
                     labels={(e.client, e.server): label_size(e.label) for e in edges if not e.kernel and e.label},
                     aside=aside)
    return Drawing(nodes, edges, layout, prefix)


def process_drawing(export) -> Drawing:
    """Processes and channels of a :class:`~ksm.flows.export.GraphExport`."""
    cg = export.cg
    nodes = []
    per_class: dict[str, tuple[str, str, str]] = {}     # kernel services are a class's: counted once
    for n in export.nodes:
        cls = cg.procs[n].cls
        got = per_class.get(cls)
        if got is None:
            services = cg.kernel_services(n)
            got = per_class[cls] = ("", "", "") if services is None else (
                f"\n{services.label}", str(services.dangerous) if services.dangerous else "",
                f"kernel-{export.class_order[cls]}")
        label, badge, more = got
        tip = f"{n} ({cls}){label}"
        nodes.append(Node(n, n, cls if cls != n else "", n == cg.kernel, badge, tip, more))
    edges = [Edge(ch.client, ch.server, status_of(ch, export.conditions),
                  "" if ch.channel == "kernel" and not ch.forbidden else ch.label,
                  channel_tip(ch, export.conditions), ch.channel == "kernel", bool(ch.forbidden))
             for ch in export.channels.values()]
    aside = tuple(n for n in export.nodes if n == cg.kernel or n == "Einit")
    return draw(nodes, edges, aside)


def class_drawing(export) -> Drawing:
    """The same graph with the instances of each class collapsed into one box, and
    only the class pairs some message can pass between (denied pairs are in the matrix)."""
    cg = export.cg
    members: dict[str, list[str]] = {}
    for n in export.nodes:
        members.setdefault(cg.procs[n].cls, []).append(n)
    kernel_cls = cg.procs[cg.kernel].cls if cg.kernel in cg.procs else None
    nodes = []
    for cls, ps in members.items():
        services = cg.kernel_services(ps[0])
        nodes.append(Node(cls, cls, f"{len(ps)} instances" if len(ps) > 1 else ps[0] if ps[0] != cls else "",
                          cls == kernel_cls, str(services.dangerous) if services and services.dangerous else "",
                          f"{cls}: " + ", ".join(ps[:12]) + (" ..." if len(ps) > 12 else ""),
                          f"kernel-{export.class_order[cls]}" if services is not None else ""))
    grouped: dict[tuple[str, str], list] = {}
    for ch in export.channels.values():
        key = (cg.procs[ch.client].cls, cg.procs[ch.server].cls)
        grouped.setdefault(key, []).append(ch)
    order = ("granted", "conditional", "unknown", "denied")
    edges = []
    for (client, server), chans in grouped.items():
        statuses = [status_of(ch, export.conditions) for ch in chans]
        status = min(statuses, key=order.index)
        if status == DENIED and not any(ch.forbidden for ch in chans):
            continue            # nothing moves there: the matrix shows it, the drawing stays light
        kernel = all(ch.channel == "kernel" for ch in chans)
        label = "" if kernel else f"{len(chans)} channel{'s' if len(chans) > 1 else ''}"
        tip = f"{client} -> {server}: " + ", ".join(f"{ch.client} -> {ch.server} ({s})"
                                                      for ch, s in list(zip(chans, statuses))[:20])
        edges.append(Edge(client, server, status, label, tip, kernel, any(ch.forbidden for ch in chans)))
    aside = tuple(n.key for n in nodes if n.kernel or n.key == "Einit")
    return draw(nodes, edges, aside, prefix="c")


_MARKERS = (("granted", "#333"), ("conditional", "#2b6cb0"), ("denied", "#aaa"), ("unknown", "#888"),
            ("forbidden", "#d62728"), ("kernel", "#bbb"))


def svg(d: Drawing, element_id: str = "graph", standalone: bool = False) -> str:
    """The drawing as an ``<svg>`` element (``standalone``: with its own style, for a file)."""
    lay = d.layout
    w, h = round(lay.width), round(lay.height)
    xmlns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""      # a page's inline SVG needs none
    out = [f'<svg id="{element_id}"{xmlns} width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}" role="img" data-width="{w}" data-height="{h}">']
    if standalone:
        out.append(f"<style>svg {{ background: #fff; }}\n{svg_style()}</style>")
    out.append("<defs>" + "".join(
        f'<marker id="{d.prefix}arrow-{k}" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" '
        f'markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/>'
        '</marker>'
        for k, c in _MARKERS) + "</defs>")
    out.append('<g class="scene">')
    touching: dict[str, list[str]] = {n.key: [] for n in d.nodes}
    for e in d.edges:
        eid = d.edge_ids[(e.client, e.server)]
        touching[e.client].append(eid)
        if e.server != e.client:
            touching[e.server].append(eid)
        route = lay.routes[(e.client, e.server)]
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in route.points)
        classes = f"edge {e.status}" + (" kernel" if e.kernel else "") + (" forbidden" if e.forbidden else "")
        marker = "forbidden" if e.forbidden else "kernel" if e.kernel else e.status
        label = ""
        if e.label:
            if route.label is not None:
                lx, ly = route.label
                label = f'<text class="lbl" x="{lx:.1f}" y="{ly + 4:.1f}">{escape(e.label)}</text>'
            else:                                       # no room: shown while the arrow is hovered
                mx, my = _middle(route.points)
                label = f'<text class="lbl hover" x="{mx:.1f}" y="{my - 3:.1f}">{escape(e.label)}</text>'
        out.append(f'<g class="{classes}" id="{eid}" data-from="{d.node_ids[e.client]}" '
                   f'data-to="{d.node_ids[e.server]}"><title>{escape(e.tip)}</title>'
                   f'<polyline points="{pts}" marker-end="url(#{d.prefix}arrow-{marker})"/>{label}</g>')
    for n in d.nodes:
        b = lay.boxes[n.key]
        nid = d.node_ids[n.key]
        cx = b.x + b.w / 2
        sub = f'<text class="cls" x="{cx:.1f}" y="{b.y + 33:.1f}">{escape(n.sub)}</text>' if n.sub else ""
        badge = (f'<text class="kbadge" x="{b.x + b.w - 6:.1f}" y="{b.y + 12:.1f}">&#9888; {escape(n.badge)}</text>'
                 if n.badge else "")
        out.append(f'<g class="node{" kernel" if n.kernel else ""}" id="{nid}" data-name="{escape(n.key)}" '
                   f'data-edges="{" ".join(touching[n.key])}" data-detail="detail-{nid}{" " + n.more if n.more else ""}" '
                   'tabindex="0">'
                   f'<title>{escape(n.tip or n.key)}</title>'
                   f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" rx="8"/>'
                   f'<text class="name" x="{cx:.1f}" y="{b.y + (18 if n.sub else 26):.1f}">{escape(n.title)}</text>'
                   f'{sub}{badge}</g>')
    out.append("</g></svg>")
    return "\n".join(out)


def _middle(points) -> tuple[float, float]:
    """The point halfway along a polyline."""
    lengths = [((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5 for (x1, y1), (x2, y2) in zip(points, points[1:])]
    half = sum(lengths) / 2
    for (p, q), length in zip(zip(points, points[1:]), lengths):
        if half <= length and length:
            t = half / length
            return p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t
        half -= length
    return points[-1]


def svg_style() -> str:
    """The drawing's style sheet (``assets/drawing.css``), shared with the page."""
    from importlib import resources

    return resources.files("ksm.flows").joinpath("assets", "drawing.css").read_text(encoding="utf-8")
