"""A self-contained HTML page of the channel graph (no network, no JavaScript library).

Why a hand-made layered layout: networkx's layouts need numpy, which is not a
dependency, and a channel graph reads best left to right anyway, clients before
their servers.  Layers are longest paths in the graph of strongly connected
components; a few barycentre sweeps order each layer to cut crossings.  The page
embeds an SVG drawing; the only script highlights the edges of the flow property
(or channel, or process) a reader clicks, and opens the detail panel of a clicked
process: its class and its **kernel services**, the kernel endpoints it may call
with their verdicts and the dangerous methods highlighted.  Without the script every
panel is shown, one after the other.
"""
from __future__ import annotations

from html import escape

import networkx as nx

from ..verify.prove import PROVED, REFUTED

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 190, 42, 110, 30, 30


def layered_layout(nodes: list[str], edges: list[tuple[str, str]], sweeps: int = 4) -> dict[str, tuple[int, int]]:
    """Top-left corner of each node's box: layers left to right, ordered to cut crossings."""
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from((u, v) for u, v in edges if u != v)
    cond = nx.condensation(g)
    depth: dict[int, int] = {}
    for c in nx.topological_sort(cond):
        depth[c] = max((depth[p] + 1 for p in cond.predecessors(c)), default=0)
    layers: dict[int, list[str]] = {}
    for n in nodes:
        layers.setdefault(depth[cond.graph["mapping"][n]], []).append(n)
    order = {n: i for layer in layers.values() for i, n in enumerate(sorted(layer))}
    for sweep in range(sweeps):
        for d in sorted(layers):
            def centre(n: str) -> float:
                near = list(g.predecessors(n) if sweep % 2 == 0 else g.successors(n)) or list(g.neighbors(n))
                return sum(order[m] for m in near) / len(near) if near else order[n]
            layers[d].sort(key=lambda n: (centre(n), n))
            for i, n in enumerate(layers[d]):
                order[n] = i
    tallest = max((len(layer) for layer in layers.values()), default=1)
    pos = {}
    for d, layer in layers.items():
        top = MARGIN + (tallest - len(layer)) * (BOX_H + GAP_Y) // 2
        for i, n in enumerate(layer):
            pos[n] = (MARGIN + d * (BOX_W + GAP_X), top + i * (BOX_H + GAP_Y))
    return pos


def _edge_path(a: tuple[int, int], b: tuple[int, int]) -> tuple[str, tuple[int, int]]:
    """An SVG cubic curve from box a to box b, and where its label goes."""
    (ax, ay), (bx, by) = a, b
    if bx > ax:                                   # forward: right side to left side
        x1, y1, x2, y2 = ax + BOX_W, ay + BOX_H // 2, bx, by + BOX_H // 2
        mid = (x1 + x2) // 2
        return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}", (mid, (y1 + y2) // 2 - 4)
    # backward or within a layer: bottom to bottom, bulging below
    x1, y1, x2, y2 = ax + BOX_W // 2 + 10, ay + BOX_H, bx + BOX_W // 2 - 10, by + BOX_H
    low = max(y1, y2) + 45 + abs(ax - bx) // 8
    return f"M{x1},{y1} C{x1},{low} {x2},{low} {x2},{y2}", ((x1 + x2) // 2, low - 8)


def render_page(export, title: str) -> str:
    """The page: the drawing, the flow properties, the channels and their hops."""
    channels = list(export.channels.values())
    edge_ids = {(c.client, c.server): f"e{i}" for i, c in enumerate(channels)}
    pos = layered_layout(export.nodes, list(edge_ids))
    width = max((x for x, _ in pos.values()), default=0) + BOX_W + 2 * MARGIN
    height = max((y for _, y in pos.values()), default=0) + BOX_H + 2 * MARGIN + 80
    svg = [f'<svg id="graph" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
           '<defs>' + "".join(
               f'<marker id="arrow-{k}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
               f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
               for k, c in (("granted", "#333"), ("denied", "#aaa"), ("unknown", "#888"), ("forbidden", "#d62728")))
           + '</defs>']
    for ch in channels:
        eid = edge_ids[(ch.client, ch.server)]
        d, (lx, ly) = _edge_path(pos[ch.client], pos[ch.server])
        kernel = ch.channel == "kernel"        # every process has one: thin, grey, unlabelled
        classes = f"edge {ch.status}" + (" forbidden" if ch.forbidden else "") + (" kernel" if kernel else "")
        marker = "forbidden" if ch.forbidden else "denied" if kernel else ch.status
        label = "" if kernel and not ch.forbidden else f'<text x="{lx}" y="{ly}">{escape(ch.label)}</text>'
        svg.append(f'<g class="{classes}" id="{eid}"><title>{escape(ch.tooltip(export.conditions))}</title>'
                   f'<path d="{d}" marker-end="url(#arrow-{marker})"/>{label}</g>')
    node_ids = {n: f"n{i}" for i, n in enumerate(export.nodes)}
    touching: dict[str, list[str]] = {n: [] for n in export.nodes}       # a node's edges, highlighted on a click
    for (client, server), eid in edge_ids.items():
        touching[client].append(eid)
        if server != client:
            touching[server].append(eid)
    for n in export.nodes:
        x, y = pos[n]
        cls = export.cg.procs[n].cls
        kind = "node kernel" if n == export.cg.kernel else "node"
        sub = f'<text class="cls" x="{x + BOX_W // 2}" y="{y + 33}">{escape(cls)}</text>' if cls != n else ""
        services = export.cg.kernel_services(n)
        badge, tip = "", f"{n} ({cls})"
        if services is not None:
            tip += f"\n{services.label}"
            if services.dangerous:
                badge = (f'<text class="kbadge" x="{x + BOX_W - 6}" y="{y + 12}">'
                         f'&#9888; {services.dangerous}</text>')
        edges = " ".join(touching[n])
        svg.append(f'<g class="{kind}" id="{node_ids[n]}" data-edges="{edges}" data-detail="detail-{node_ids[n]}" '
                   f'tabindex="0"><title>{escape(tip)}</title>'
                   f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8"/>'
                   f'<text x="{x + BOX_W // 2}" y="{y + (18 if sub else 26)}">{escape(n)}</text>{sub}{badge}</g>')
    svg.append("</svg>")
    return _PAGE.format(title=escape(title), svg="\n".join(svg), flows=_flow_rows(export, edge_ids),
                        channels=_channel_rows(export, channels, edge_ids),
                        details=_node_details(export, node_ids),
                        summary=escape(_summary(export)))


def _summary(export) -> str:
    s = export.cg.stats()
    return (f"{len(export.nodes)} processes, {len(export.channels)} channels, {s['hops']} hops "
            f"({s['granted']} granted, {s['denied']} denied, {s['unknown']} undecided); "
            f"run-time channels: {s['dynamic']}; kernel relays data: {'yes' if s['kernel_relay'] else 'no'}")


def _flow_rows(export, edge_ids: dict) -> str:
    if not export.results:
        return '<tr><td colspan="3">no <code>never flow</code> properties (see docs/flows.md)</td></tr>'
    rows = []
    for r in export.results:
        hops = r.path if r.status == REFUTED else r.cut if r.status == PROVED else []
        ids = sorted({edge_ids[(h.client, h.server)] for h in hops if (h.client, h.server) in edge_ids})
        detail = "; ".join(h.describe() for h in hops)
        rows.append(f'<tr class="flow {r.status.lower()}" data-edges="{" ".join(ids)}" tabindex="0">'
                    f'<td>{escape(r.status)}</td><td>{escape(r.name)}</td>'
                    f'<td>{escape(r.how)}<br/><small>{escape(detail)}</small></td></tr>')
    return "\n".join(rows)


def _node_details(export, node_ids: dict) -> str:
    """One detail panel per process: its class and its kernel services."""
    cg = export.cg
    out = []
    for n in export.nodes:
        cls = cg.procs[n].cls
        head = f'<h3>{escape(n)}' + (f' <small>{escape(cls)}</small>' if cls != n else "") + "</h3>"
        if n == cg.kernel:
            body = ("<p>The kernel. Every process may call it without a channel; what each one may call is "
                    "in that process's <em>Kernel services</em>.</p>")
        else:
            body = _kernel_section(cg.kernel_services(n), cg.kernel_described)
        out.append(f'<section class="node-detail" id="detail-{node_ids[n]}">{head}{body}</section>')
    return "\n".join(out)


def _kernel_section(services, described: bool) -> str:
    """The "Kernel services" section of a process's panel."""
    out = ['<h4>Kernel services</h4>']
    if services is None:
        why = "its class is not in the kernel access table" if described else \
            "the kernel is not described (an opaque <code>kl.core.Core</code>)"
        out.append(f"<p>Not known: {why}.</p>")
        return "".join(out)
    trust = "trusted" if services.trusted else "untrusted"
    if not services.endpoints:
        out.append(f"<p>{escape(services.cls)} ({trust}) may call no kernel method.</p>")
        return "".join(out)
    n = len(services.endpoints)
    out.append(f'<p>{escape(services.cls)} ({trust}) may call {services.methods} method(s) of {n} endpoint(s)'
               f'{f", {services.conditional} only under conditions" if services.conditional else ""}; '
               f'<span class="danger">{services.dangerous} potentially dangerous</span>.</p>')
    out.append('<table class="kernel"><tr><th>endpoint</th><th>verdict</th><th>methods</th>'
               '<th>granted methods</th></tr>')
    for e in services.endpoints:
        names = " ".join(_method(c) for c in e.calls)
        out.append(f'<tr class="{e.verdict}"><td><code>{escape(e.endpoint)}</code></td><td>{e.verdict}</td>'
                   f'<td>{len(e.calls)}/{e.total}</td><td>{names}</td></tr>')
    out.append("</table>")
    return "".join(out)


def _method(call) -> str:
    """A granted kernel method: red when dangerous, italic when granted only under conditions."""
    classes = ["m"] + (["danger"] if call.dangerous else []) + (["cond"] if call.verdict != "always" else [])
    tip = [call.facts.danger_text() if call.facts is not None else "not in the kernel description"]
    if call.verdict != "always":
        tip.append(f"granted under conditions: {call.why}" if call.why else "granted under conditions")
    return f'<span class="{" ".join(classes)}" title="{escape("; ".join(tip))}">{escape(call.method)}</span>'


def _channel_rows(export, channels, edge_ids: dict) -> str:
    rows = []
    for ch in channels:
        lines = ch.tooltip(export.conditions).splitlines()[1:]
        hops = "<br/>".join(escape(line) for line in lines)
        if ch.services is not None:          # a kernel channel: hundreds of messages, folded
            hops = f"<details><summary>{len(lines)} messages</summary>{hops}</details>"
        rows.append(f'<tr class="chan" data-edges="{edge_ids[(ch.client, ch.server)]}" tabindex="0">'
                    f'<td>{escape(ch.client)} &rarr; {escape(ch.server)}</td><td>{escape(ch.channel)}</td>'
                    f'<td>{escape(ch.status)}</td><td><small>{hops}</small></td></tr>')
    return "\n".join(rows)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<title>{title}: channel graph</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
#wrap {{ overflow: auto; border: 1px solid #ddd; }}
.node rect {{ fill: #eef3fb; stroke: #4a6fa5; stroke-width: 1.5; }}
.node.kernel rect {{ fill: #f3f3f3; stroke: #777; stroke-dasharray: 4 2; }}
.node text {{ text-anchor: middle; font-size: 13px; }}
.node text.cls {{ font-size: 10px; fill: #555; font-style: italic; }}
.edge path {{ fill: none; stroke: #333; stroke-width: 1.4; }}
.edge text {{ font-size: 10px; text-anchor: middle; fill: #333; }}
.edge.denied path {{ stroke: #aaa; stroke-dasharray: 6 4; }}
.edge.denied text {{ fill: #aaa; }}
.edge.unknown path {{ stroke: #888; stroke-dasharray: 2 3; }}
.edge.kernel path {{ stroke: #c8c8c8; stroke-width: 1; }}
.edge.forbidden path {{ stroke: #d62728; stroke-width: 3.5; }}
.edge.forbidden text {{ fill: #d62728; font-weight: bold; }}
svg.focusing .edge {{ opacity: 0.15; }}
svg.focusing .edge.focus {{ opacity: 1; }}
.edge.focus path {{ stroke-width: 4; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
td, th {{ border: 1px solid #ddd; padding: 4px 8px; vertical-align: top; text-align: left; }}
tr.flow, tr.chan {{ cursor: pointer; }}
tr.refuted td:first-child {{ color: #d62728; font-weight: bold; }}
tr.proved td:first-child {{ color: #2a7d2a; font-weight: bold; }}
tr.selected {{ background: #fff6d5; }}
.node {{ cursor: pointer; }}
.node.selected rect {{ stroke-width: 3; stroke: #e0a800; }}
.node text.kbadge {{ text-anchor: end; font-size: 10px; fill: #d62728; font-weight: bold; }}
.node-detail {{ border: 1px solid #ddd; padding: 0.2em 1em 0.8em; margin: 0.6em 0; }}
.js .node-detail {{ display: none; }}
.js .node-detail.open {{ display: block; }}
.nojs-hidden {{ display: none; }}
.js .nojs-hidden {{ display: block; }}
.m {{ display: inline-block; padding: 0 3px; margin: 1px; border-radius: 3px; background: #eef3fb; }}
.m.danger, span.danger {{ color: #d62728; font-weight: bold; }}
.m.danger {{ background: #fde8e8; }}
.m.cond {{ font-style: italic; border: 1px dashed #888; }}
table.kernel tr.conditional td:nth-child(2) {{ font-style: italic; }}
</style>
</head>
<body>
<h1>{title}: channel graph</h1>
<p>{summary}</p>
<p>Arrows go from client to server. Solid: some message is granted; dashed grey: the policy denies
every message; red: on the witness path of a refuted flow property. Label <code>CHANNEL: g/n</code>:
g of the server's n methods can be requested. Hover an arrow for its methods; click a row to highlight.</p>
<p><strong>Kernel services:</strong> an arrow to the kernel is labelled <code>kernel: E endpoints, D dangerous</code>
(in its tooltip). Click a process for its detail panel: the kernel endpoints it may call, <em>always</em> or
<span class="m cond">only under conditions</span>, as <code>ksm kernel</code> decides them per class, with the
potentially <span class="m danger">dangerous</span> methods in red; <span class="danger">&#9888; D</span> on a box
counts them.</p>
<div id="wrap">
{svg}
</div>
<h2>Process details</h2>
<p class="nojs-hidden">Click a process in the drawing to see its details here.</p>
<div id="details">
{details}
</div>
<h2>Flow properties</h2>
<table><tr><th>status</th><th>property</th><th>certificate or witness path</th></tr>
{flows}
</table>
<h2>Channels</h2>
<table><tr><th>client &rarr; server</th><th>channel</th><th>status</th><th>messages</th></tr>
{channels}
</table>
<script>
(function () {{
  document.documentElement.classList.add("js");
  var svg = document.getElementById("graph");
  var rows = document.querySelectorAll("[data-edges]");
  var panels = document.querySelectorAll(".node-detail");
  function select(row) {{
    var on = !row.classList.contains("selected");
    rows.forEach(function (r) {{ r.classList.remove("selected"); }});
    panels.forEach(function (p) {{ p.classList.remove("open"); }});
    svg.querySelectorAll(".edge").forEach(function (e) {{ e.classList.remove("focus"); }});
    svg.classList.toggle("focusing", on);
    if (!on) return;
    row.classList.add("selected");
    var detail = row.getAttribute("data-detail");
    if (detail) {{
      var panel = document.getElementById(detail);
      if (panel) {{ panel.classList.add("open"); panel.scrollIntoView({{block: "nearest"}}); }}
    }}
    row.getAttribute("data-edges").split(" ").forEach(function (id) {{
      var e = document.getElementById(id);
      if (e) e.classList.add("focus");
    }});
  }}
  rows.forEach(function (r) {{
    r.addEventListener("click", function () {{ select(r); }});
    r.addEventListener("keydown", function (ev) {{ if (ev.key === "Enter") select(r); }});
  }});
}})();
</script>
</body>
</html>
"""
