"""A self-contained HTML page of the channel graph: no network, no JavaScript library.

The page holds three views of one solution: the processes and their channels, the
same graph with the instances of each class collapsed into one box, and an adjacency
matrix of classes (rows clients, columns servers).  A solution of more than
:data:`SCALE_THRESHOLD` processes opens on the class graph, which stays readable where
hundreds of boxes would not; the process graph is one click away.  The drawings come
from :mod:`ksm.flows.drawing` (laid out by :mod:`ksm.flows.layout`); the page's own
script (``assets/graph.js``) adds zoom and pan, search, focus on a process, filters by
verdict and kernel traffic, and highlights the witness path of a refuted flow
property or the cut of a proved one.  Without the script, everything is shown one
after the other.
"""
from __future__ import annotations

from html import escape
from importlib import resources

from ..verify.prove import PROVED, REFUTED
from .drawing import Drawing, class_drawing, process_drawing, status_of, svg
from .labels import GRANTED

#: Above this many processes the page opens on the class graph.
SCALE_THRESHOLD = 60
#: ... and on the matrix when its class graph has more than this many arrows per class
#: (a layered drawing of a graph that dense is a thicket; the matrix stays readable).
DENSE_CLASSES = 4
#: Above this many channels the channel table is folded.
FOLD_CHANNELS = 200


def _asset(name: str) -> str:
    return resources.files("ksm.flows").joinpath("assets", name).read_text(encoding="utf-8")


def render_page(export, title: str) -> str:
    """The page: toolbar, the three views, process details, flow properties, channels."""
    procs = process_drawing(export)
    classes = class_drawing(export)
    start = "procs" if len(export.nodes) <= SCALE_THRESHOLD else \
        "classes" if len(classes.edges) <= DENSE_CLASSES * len(classes.nodes) else "matrix"
    names = "".join(f'<option value="{escape(n)}"></option>' for n in export.nodes)
    channels = list(export.channels.values())
    table = _channel_rows(export, procs)
    if len(channels) > FOLD_CHANNELS:
        table = f"<details><summary>{len(channels)} channels</summary><table>{_CHANNEL_HEAD}{table}</table></details>"
    else:
        table = f"<table>{_CHANNEL_HEAD}{table}</table>"
    return _PAGE.format(
        title=escape(title), start=start, style=_asset("drawing.css") + _asset("graph.css"), script=_asset("graph.js"),
        summary=escape(_summary(export)), names=names,
        kernel_checked="" if len(export.nodes) > SCALE_THRESHOLD else " checked",
        procs=svg(procs, "graph"), classes=svg(classes, "graph-classes"),
        matrix=_matrix(export), flows=_flow_rows(export, procs),
        details=_node_details(export, procs) + _class_details(export, classes), channels=table)


def _summary(export) -> str:
    s = export.cg.stats()
    return (f"{len(export.nodes)} processes, {len(export.channels)} channels, {s['hops']} hops "
            f"({s['granted']} granted, {s['denied']} denied, {s['unknown']} undecided); "
            f"run-time channels: {s['dynamic']}; kernel relays data: {'yes' if s['kernel_relay'] else 'no'}")


def _flow_rows(export, procs: Drawing) -> str:
    if not export.results:
        return '<tr><td colspan="3">no <code>never flow</code> properties (see docs/flows.md)</td></tr>'
    rows = []
    for r in export.results:
        hops = r.path if r.status == REFUTED else r.cut if r.status == PROVED else []
        ids = sorted({procs.edge_ids[(h.client, h.server)] for h in hops if (h.client, h.server) in procs.edge_ids})
        detail = "; ".join(h.describe() for h in hops)
        rows.append(f'<tr class="flow {r.status.lower()}" data-edges="{" ".join(ids)}" tabindex="0">'
                    f'<td>{escape(r.status)}</td><td>{escape(r.name)}</td>'
                    f'<td>{escape(r.how)}<br/><small>{escape(detail)}</small></td></tr>')
    return "\n".join(rows)


def _node_details(export, procs: Drawing) -> str:
    """A panel per process (its channels and the requests they grant) and, once per
    class, the panel of its kernel services (what ``ksm kernel`` decides per class)."""
    cg = export.cg
    ins: dict[str, list] = {n: [] for n in export.nodes}
    outs: dict[str, list] = {n: [] for n in export.nodes}
    for ch in export.channels.values():
        outs[ch.client].append(ch)
        ins[ch.server].append(ch)
    out = []
    kernel_panels: dict[str, str] = {}
    for n in export.nodes:
        nid = procs.node_ids[n]
        cls = cg.procs[n].cls
        head = f'<h3>{escape(n)}' + (f' <small>{escape(cls)}</small>' if cls != n else "") + "</h3>"
        if n == cg.kernel:
            body = ("<p>The kernel. Every process may call it without a channel; what each one may call is "
                    "in that process's <em>Kernel services</em>.</p>")
        else:
            body = _channels_section(export, outs[n], ins[n])
            services = cg.kernel_services(n)
            if services is None:
                body += _kernel_section(None, cg.kernel_described)
            elif cls not in kernel_panels:
                kernel_panels[cls] = (f'<section class="node-detail" id="kernel-{export.class_order[cls]}">'
                                      f'<h3>{escape(cls)} <small>class</small></h3>'
                                      f'{_kernel_section(services, cg.kernel_described)}</section>')
        out.append(f'<section class="node-detail" id="detail-{nid}">{head}{body}</section>')
    return "\n".join(out + list(kernel_panels.values()))


def _class_details(export, classes: Drawing) -> str:
    """A panel per box of the class graph: the instances it stands for, the classes it calls."""
    cg = export.cg
    members: dict[str, list[str]] = {}
    for n in export.nodes:
        members.setdefault(cg.procs[n].cls, []).append(n)
    calls: dict[str, set[str]] = {}
    for e in classes.edges:
        if not e.kernel:
            calls.setdefault(e.client, set()).add(e.server)
    out = []
    for node in classes.nodes:
        names = members.get(node.key, [])
        called = sorted(calls.get(node.key, ()))
        out.append(f'<section class="node-detail" id="detail-{classes.node_ids[node.key]}">'
                   f'<h3>{escape(node.key)} <small>class</small></h3>'
                   f'<p>{len(names)} instance(s): {escape(", ".join(names))}</p>'
                   f'<p>Calls: {escape(", ".join(called)) if called else "no other class"}.</p></section>')
    return "\n".join(out)


def _channels_section(export, outgoing: list, incoming: list) -> str:
    """A process's channels (the kernel's aside) and the requests each grants."""
    def granted(ch) -> str:
        names = sorted({f"{h.endpoint}.{h.method}" for h in ch.hops
                        if h.kind == "request" and h.label.status == GRANTED and h.method})
        return ", ".join(names) if names else "none"
    rows = []
    for what, chans in (("calls", outgoing), ("is called by", incoming)):
        for ch in chans:
            if ch.channel == "kernel":
                continue
            other = ch.server if what == "calls" else ch.client
            rows.append(f'<tr class="{status_of(ch, export.conditions)}"><td>{what}</td><td>{escape(other)}</td>'
                        f'<td>{escape(ch.channel)}</td><td>{escape(granted(ch))}</td></tr>')
    if not rows:
        return "<h4>Channels</h4><p>None (the kernel's aside).</p>"
    return ('<h4>Channels</h4><table class="chans"><tr><th></th><th>process</th><th>channel</th>'
            '<th>granted requests</th></tr>' + "".join(rows) + "</table>")


def _matrix(export) -> str:
    """Classes against classes: a cell per (client class, server class) with channels."""
    cg = export.cg
    kernel_cls = cg.procs[cg.kernel].cls if cg.kernel in cg.procs else None
    cells: dict[tuple[str, str], list] = {}
    for ch in export.channels.values():
        if ch.channel == "kernel":
            continue
        cells.setdefault((cg.procs[ch.client].cls, cg.procs[ch.server].cls), []).append(ch)
    clients = sorted({c for c, _ in cells})
    servers = sorted({s for _, s in cells} - {kernel_cls})
    if not cells:
        return "<p>No channels between processes.</p>"
    order = ("granted", "conditional", "unknown", "denied")
    head = "<tr><th></th>" + "".join(f'<th class="col">{escape(s)}</th>' for s in servers) + "</tr>"
    rows = []
    for c in clients:
        tds = []
        for s in servers:
            chans = cells.get((c, s))
            if not chans:
                tds.append("<td></td>")
                continue
            status = min((status_of(ch, export.conditions) for ch in chans), key=order.index)
            methods = sorted({f"{h.endpoint}.{h.method}" for ch in chans for h in ch.hops
                              if h.kind == "request" and h.label.status == GRANTED and h.method})
            forbidden = " forbidden" if any(ch.forbidden for ch in chans) else ""
            tip = f"{c} -> {s}: {len(chans)} channel(s), {status}"
            tds.append(f'<td class="{status}{forbidden}" title="{escape(tip)}" '
                       f'data-methods="{escape("granted requests: " + (", ".join(methods) or "none"))}"></td>')
        rows.append(f"<tr><th>{escape(c)}</th>{''.join(tds)}</tr>")
    return f'<table id="matrix">{head}{"".join(rows)}</table>'


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


_CHANNEL_HEAD = "<tr><th>client &rarr; server</th><th>channel</th><th>status</th><th>messages</th></tr>"


def _channel_rows(export, procs: Drawing) -> str:
    rows = []
    for e in procs.edges:
        lines = e.tip.splitlines()
        hops = "<br/>".join(escape(line) for line in lines[1:]) if len(lines) > 1 else escape(lines[0])
        if len(lines) > 12:
            hops = f"<details><summary>{len(lines) - 1} messages</summary>{hops}</details>"
        ch = export.channels[(e.client, e.server)]
        rows.append(f'<tr class="chan" data-edges="{procs.edge_ids[(e.client, e.server)]}" tabindex="0">'
                    f'<td>{escape(e.client)} &rarr; {escape(e.server)}</td><td>{escape(ch.channel)}</td>'
                    f'<td>{escape(e.status)}</td><td><small>{hops}</small></td></tr>')
    return "\n".join(rows)


_PAGE = """<!DOCTYPE html>
<html lang="en" data-start="{start}">
<head>
<meta charset="utf-8"/>
<title>{title}: channel graph</title>
<style>
{style}
</style>
</head>
<body>
<h1>{title}: channel graph</h1>
<p>{summary}</p>
<div id="toolbar">
  <div class="group" id="tabs"><button data-view="procs">Processes</button><button data-view="classes">Classes</button><button data-view="matrix">Matrix</button></div>
  <div class="group"><input id="search" list="names" placeholder="find a process (Enter)" aria-label="find a process"/><datalist id="names">{names}</datalist></div>
  <div class="group" id="filters">
    <label><input type="checkbox" data-hide="granted" checked/> granted</label>
    <label><input type="checkbox" data-hide="conditional" checked/> conditional</label>
    <label><input type="checkbox" data-hide="denied" checked/> denied</label>
    <label><input type="checkbox" data-hide="unknown" checked/> undecided</label>
    <label><input type="checkbox" data-hide="kernel"{kernel_checked}/> kernel</label>
  </div>
  <div class="group"><button id="fit">Fit</button><button id="zoom-in">+</button><button id="zoom-out">&minus;</button></div>
</div>
<p class="legend">Arrows go from client to server.
<span class="k"></span>some message granted <span class="k conditional"></span>granted only under conditions
<span class="k denied"></span>every message denied <span class="k unknown"></span>undecided
<span class="k forbidden"></span>on the witness path of a refuted flow property.
Label <code>CHANNEL: g/n</code>: g of the server's n methods can be requested. Scroll to zoom, drag to pan,
click a process for its channels and kernel services, click a property or a channel row to highlight it.</p>
<p class="legend"><strong>Kernel services:</strong> an arrow to the kernel says <code>kernel: E endpoints, D dangerous</code>
(in its tooltip); a process's panel lists, for its class, the kernel endpoints it may call, <em>always</em> or
<span class="m cond">only under conditions</span>, as <code>ksm kernel</code> decides them, with the potentially
<span class="m danger">dangerous</span> methods in red; <span class="danger">&#9888; D</span> on a box counts them.</p>
<div class="view" id="view-procs"><h2>Processes</h2><div class="frame" data-view="procs">
{procs}
</div></div>
<div class="view" id="view-classes"><h2>Classes</h2>
<p class="legend">The instances of each class in one box; an arrow where some message between two classes can pass
(class pairs whose every message is denied are in the matrix).</p><div class="frame" data-view="classes">
{classes}
</div></div>
<div class="view" id="view-matrix"><h2>Matrix</h2>
<p>Rows: client classes; columns: server classes. Green: some request granted; blue: granted only under
conditions; grey: denied. Click a cell for the granted requests.</p>
{matrix}
<div id="cell-detail"></div>
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
{channels}
<script>
{script}
</script>
</body>
</html>
"""
