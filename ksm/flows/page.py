"""A self-contained HTML page of the channel graph (no network, no JavaScript library).

Why a hand-made layered layout: networkx's layouts need numpy, which is not a
dependency, and a channel graph reads best left to right anyway, clients before
their servers.  Layers are longest paths in the graph of strongly connected
components; a few barycentre sweeps order each layer to cut crossings.  The page
embeds an SVG drawing; the only script highlights the edges of the flow property
(or channel) a reader clicks.
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
    for n in export.nodes:
        x, y = pos[n]
        cls = export.cg.procs[n].cls
        kind = "node kernel" if n == export.cg.kernel else "node"
        sub = f'<text class="cls" x="{x + BOX_W // 2}" y="{y + 33}">{escape(cls)}</text>' if cls != n else ""
        svg.append(f'<g class="{kind}"><title>{escape(n)} ({escape(cls)})</title>'
                   f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8"/>'
                   f'<text x="{x + BOX_W // 2}" y="{y + (18 if sub else 26)}">{escape(n)}</text>{sub}</g>')
    svg.append("</svg>")
    return _PAGE.format(title=escape(title), svg="\n".join(svg), flows=_flow_rows(export, edge_ids),
                        channels=_channel_rows(export, channels, edge_ids),
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


def _channel_rows(export, channels, edge_ids: dict) -> str:
    rows = []
    for ch in channels:
        hops = "<br/>".join(escape(line) for line in ch.tooltip(export.conditions).splitlines()[1:])
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
</style>
</head>
<body>
<h1>{title}: channel graph</h1>
<p>{summary}</p>
<p>Arrows go from client to server. Solid: some message is granted; dashed grey: the policy denies
every message; red: on the witness path of a refuted flow property. Label <code>CHANNEL: g/n</code>:
g of the server's n methods can be requested. Hover an arrow for its methods; click a row to highlight.</p>
<div id="wrap">
{svg}
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
  var svg = document.getElementById("graph");
  var rows = document.querySelectorAll("tr[data-edges]");
  function select(row) {{
    var on = !row.classList.contains("selected");
    rows.forEach(function (r) {{ r.classList.remove("selected"); }});
    svg.querySelectorAll(".edge").forEach(function (e) {{ e.classList.remove("focus"); }});
    svg.classList.toggle("focusing", on);
    if (!on) return;
    row.classList.add("selected");
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
