"""Layered (Sugiyama) layout of the channel graph: boxes, routed edges, label spots.

Why igraph: its C core does the whole Sugiyama pipeline (Eades-Lin-Smyth feedback
arc set to break the cycles channel graphs have, longest-path layering, barycentre
crossing reduction, dummy vertices on long edges) in well under a second for a
thousand processes, ships wheels for every platform, and needs no numpy.  grandalf
(pure Python) took 11 s for 300 processes, pyelk 4.6 s for 1,000 with many more
crossings, and fast-sugiyama did not finish some 300- and 1,000-process graphs.

What this module adds around the library:

* **Coordinates.**  igraph draws layers top to bottom with unit spacing; the page
  reads best left to right, so a layer becomes a *column* (as wide as its widest
  box) and the position inside a layer becomes a *row slot*, stacked in order
  down its column: a box's height plus a gap, a dummy's few pixels (see
  ``_Grid.compact``).  Every slot, a box's or a dummy's, is exclusive inside its column.
* **Routing.**  An edge leaves its client on a side port, runs horizontally to the
  column edge, crosses each gap diagonally and each intermediate column
  horizontally on its dummy vertex's slot, and enters the server on a side port.
  Column interiors only ever carry horizontal runs on slots nobody else uses and
  gaps hold no boxes, so no segment can pass through a third box: that is by
  construction, and the tests check it with segment/rectangle intersection.
* **Components.**  igraph 1.0.0 mis-assigns ``edge_routing`` when the graph has
  more than one weakly connected component (even one isolated vertex), so each
  component is laid out on its own and the components are shelf-packed on a grid
  of shared columns: the gaps between columns stay box-free from top to bottom.
* **Aside nodes** (``kl.core.Core``, ``Einit``): every process talks to them, so
  in the layering they would collapse the drawing into two layers with a fan of
  crossings.  They go into a band below the drawing; their edges go down a
  private lane in the gap right of the other end's column, then to the band.
* **Labels** are placed greedily near the middle of their route, never on a box
  or an earlier label; a label that does not fit gets ``None`` (hover-only).

Coordinates are SVG pixels: x grows to the right, y grows downwards, a Box is
its top-left corner plus size.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import igraph

__all__ = ["Box", "Route", "Layout", "layered", "DEFAULT_SIZE"]

Point = tuple[float, float]
Edge = tuple[str, str]

DEFAULT_SIZE: tuple[float, float] = (190.0, 42.0)
GAP_X = 110.0          # minimum gap between two columns (edges, labels and aside lanes live there)
GAP_Y = 30.0           # minimum gap between two boxes of a column (half of it between a box and a dummy)
DUMMY_GAP = 8.0        # gap between two dummies (long edges passing through a column) of a column
LOOP = 14.0            # how far a self-loop sticks out of its box
LANE_STEP = 6.0        # preferred spacing of aside lanes in a gap
BUS_GAP = 40.0         # space between the drawing and the aside band, where aside edges turn
MAX_ITER = 30          # igraph crossing-reduction sweeps: 100 costs +60 % time at 1,000 nodes for no fewer crossings


@dataclass(frozen=True, slots=True)
class Box:
    """A process box: top-left corner and size, in px."""
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True, slots=True)
class Route:
    """An edge as a polyline from the client's border to the server's border.

    ``label`` is the centre of the label box, or None when the label could not be
    placed without covering a box or another label (the page shows it on hover).
    """
    points: tuple[Point, ...]
    label: Point | None


@dataclass(frozen=True)
class Layout:
    """The whole drawing; everything lies inside [0, width] x [0, height]."""
    boxes: dict[str, Box]
    routes: dict[Edge, Route]
    width: float
    height: float


# --------------------------------------------------------------------------- public entry


def layered(nodes: list[str], edges: list[tuple[str, str]], *, sizes: dict[str, tuple[float, float]] | None = None,
            labels: dict[tuple[str, str], tuple[float, float]] | None = None, aside: tuple[str, ...] = (),
            margin: float = 30) -> Layout:
    """Lay out the channel graph left to right, clients before servers.

    ``sizes`` gives a box (w, h) per node (default 190x42), ``labels`` a label
    (w, h) per edge to place, ``aside`` the hub nodes drawn in a band below.
    Same input, same output: nothing here depends on hashing or randomness.
    """
    nodes = list(dict.fromkeys(nodes))
    known = set(nodes)
    edges = list(dict.fromkeys(edges))
    for u, v in edges:
        if u not in known or v not in known:
            raise ValueError(f"edge {u!r} -> {v!r} names a node that is not in nodes")
    size = {n: tuple(map(float, (sizes or {}).get(n, DEFAULT_SIZE))) for n in nodes}
    labels = labels or {}
    side = set(aside) & known
    main = [n for n in nodes if n not in side]
    main_edges = [(u, v) for u, v in edges if u != v and u not in side and v not in side]

    grid = _Grid(size, labels)
    slots, dummies = _place_components(main, main_edges, grid)
    grid.fix_columns(slots, dummies)
    grid.compact(slots, dummies)
    lanes = _aside_lanes(edges, slots, side, grid)           # may widen gaps: before any box is placed
    boxes = {n: grid.box(n, slots[n]) for n in main}
    boxes.update(_aside_band([n for n in nodes if n in side], size, grid))
    boxes = {n: boxes[n] for n in nodes}                     # input order: the page draws them in this order
    points = _route_all(edges, boxes, slots, dummies, side, lanes, grid)
    return _finish(edges, boxes, points, labels, margin)


# --------------------------------------------------------------------------- the grid


class _Grid:
    """Columns (one per layer) and row slots, shared by every component.

    Component layers are mapped onto global columns; a column is as wide as its
    widest box, a gap as wide as its labels or aside lanes need.
    """

    def __init__(self, size: dict[str, tuple[float, float]], labels: dict[Edge, tuple[float, float]]):
        self.size = size
        widest_label = max((w for w, _ in labels.values()), default=0.0)
        self.base_gap = max(GAP_X, min(widest_label + 24.0, 320.0))
        self.col_w: list[float] = []
        self.col_x: list[float] = []
        self.lanes: dict[int, int] = defaultdict(int)       # aside lanes needed right of a column

    def fix_columns(self, slots: dict[str, tuple[int, float]], dummies: dict[Edge, list[tuple[int, float]]]) -> None:
        """Column widths from the boxes in them (a column of dummies only keeps a default width)."""
        ncols = 1 + max([c for c, _ in slots.values()] + [c for d in dummies.values() for c, _ in d], default=0)
        self.col_w = [0.0] * ncols
        for n, (c, _) in slots.items():
            self.col_w[c] = max(self.col_w[c], self.size[n][0])
        self.col_w = [w or DEFAULT_SIZE[0] / 2 for w in self.col_w]
        self._place_columns()

    def need_lanes(self, col: int, count: int) -> None:
        """Reserve aside lanes in the gap right of ``col`` and re-space the columns."""
        self.lanes[col] = max(self.lanes[col], count)
        self._place_columns()

    def gap(self, col: int) -> float:
        """Width of the gap right of ``col``."""
        return max(self.base_gap, LANE_STEP * self.lanes.get(col, 0) + 60.0)

    def _place_columns(self) -> None:
        x, self.col_x = 0.0, []
        for c, w in enumerate(self.col_w):
            self.col_x.append(x)
            x += w + self.gap(c)

    def right(self) -> float:
        """x of the right end of the grid, trailing gap included when it carries lanes."""
        if not self.col_w:
            return 0.0
        last = len(self.col_w) - 1
        return self.col_x[last] + self.col_w[last] + (self.gap(last) if self.lanes.get(last) else 0.0)

    def left(self, col: int) -> float:
        return self.col_x[col]

    def right_of(self, col: int) -> float:
        return self.col_x[col] + self.col_w[col]

    def compact(self, slots: dict[str, tuple[int, float]], dummies: dict[Edge, list[tuple[int, float]]]) -> None:
        """The y of every row slot, column by column, in slot order.

        Why not one height per slot: a dummy (a point a long edge passes through)
        needs a few pixels, not a box's height.  With uniform slots the dummies of a
        30-process graph with cycles made it ten times taller than wide, and a page
        fitting it to the screen drew unreadable boxes.  Order within a column is
        kept, so nothing else about the drawing changes.
        """
        items: dict[int, list[tuple[float, float]]] = defaultdict(list)    # column -> (slot, height)
        for n, (c, s) in slots.items():
            items[c].append((s, self.size[n][1]))
        for d in dummies.values():
            for c, s in d:
                items[c].append((s, 0.0))
        self.ys = {}
        self.bottom = 0.0
        for c, col in items.items():
            col.sort()
            y, last = 0.0, None
            for s, h in col:
                if last is not None:
                    y += GAP_Y if (h and last) else DUMMY_GAP if not (h or last) else GAP_Y / 2
                self.ys[(c, s)] = y + h / 2
                y += h
                last = h
            self.bottom = max(self.bottom, y)

    def y(self, col: int, slot: float) -> float:
        """Centre line of a row slot in a column (see :meth:`compact`)."""
        return self.ys[(col, slot)]

    def box(self, n: str, slot: tuple[int, float]) -> Box:
        """A box centred in its column and on its row slot."""
        c, s = slot
        w, h = self.size[n]
        return Box(self.left(c) + (self.col_w[c] - w) / 2, self.y(c, s) - h / 2, w, h)


# --------------------------------------------------------------------------- Sugiyama per component


def _components(nodes: list[str], edges: list[Edge]) -> list[list[str]]:
    """Weakly connected components, each in input order, ordered by their first node."""
    index = {n: i for i, n in enumerate(nodes)}
    parent = list(range(len(nodes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for u, v in edges:
        a, b = find(index[u]), find(index[v])
        if a != b:
            parent[max(a, b)] = min(a, b)        # the root is the earliest node: input order decides
    groups: dict[int, list[str]] = {}
    for i, n in enumerate(nodes):
        groups.setdefault(find(i), []).append(n)
    return list(groups.values())


@dataclass
class _Piece:
    """One component laid out on its own: local layers and row slots."""
    slots: dict[str, tuple[int, float]]
    dummies: dict[Edge, list[tuple[int, float]]]
    depth: int
    height: float            # in row slots


def _sugiyama(comp: list[str], edges: list[Edge]) -> _Piece:
    """igraph's Sugiyama on one component; layers and in-layer positions, dummies per edge."""
    if not edges:
        return _Piece({comp[0]: (0, 0.0)}, {}, 1, 1.0)
    idx = {n: i for i, n in enumerate(comp)}
    g = igraph.Graph(n=len(comp), edges=[(idx[u], idx[v]) for u, v in edges], directed=True)
    lay = g.layout_sugiyama(hgap=1, vgap=1, maxiter=MAX_ITER)
    coords, routing = lay.coords, lay.edge_routing
    slots = {n: (int(round(coords[i][1])), float(coords[i][0])) for i, n in enumerate(comp)}
    dummies: dict[Edge, list[tuple[int, float]]] = {}
    missing: list[tuple[Edge, int]] = []
    for (u, v), ctrl in zip(edges, routing):
        lo, hi = sorted((slots[u][0], slots[v][0]))
        pts: dict[int, float] = {}
        for x, layer in ctrl:
            c = int(round(layer))
            if lo < c < hi:       # igraph 1.0 sometimes adds a point outside the edge's span (a
                pts.setdefault(c, float(x))   # reversed edge's): routing through it crossed boxes
        missing += [((u, v), c) for c in range(lo + 1, hi) if c not in pts]
        forward = slots[u][0] <= slots[v][0]
        dummies[(u, v)] = sorted(pts.items(), reverse=not forward)   # from the client's side to the server's
    if missing:               # a layer the edge crosses without a point: a free slot below that column
        bottom: dict[int, float] = defaultdict(lambda: -1.0)
        for c, x in list(slots.values()) + [p for d in dummies.values() for p in d]:
            bottom[c] = max(bottom[c], x)
        for e, c in missing:
            bottom[c] += 1.0
            dummies[e].append((c, bottom[c]))
        for (u, v), d in dummies.items():
            d.sort(reverse=slots[u][0] > slots[v][0])
    _spread(slots, dummies)
    low = min([s for _, s in slots.values()] + [s for d in dummies.values() for _, s in d])
    slots = {n: (c, s - low) for n, (c, s) in slots.items()}
    dummies = {e: [(c, s - low) for c, s in d] for e, d in dummies.items()}
    high = max([s for _, s in slots.values()] + [s for d in dummies.values() for _, s in d])
    depth = 1 + max([c for c, _ in slots.values()] + [c for d in dummies.values() for c, _ in d])
    return _Piece(slots, dummies, depth, high + 1.0)


def _spread(slots: dict[str, tuple[int, float]], dummies: dict[Edge, list[tuple[int, float]]]) -> None:
    """Make in-layer positions at least one slot apart (a guard: igraph already keeps hgap)."""
    by_layer: dict[int, list[tuple[float, int, object, int]]] = defaultdict(list)
    for k, (n, (c, s)) in enumerate(slots.items()):
        by_layer[c].append((s, k, n, -1))
    for k, (e, d) in enumerate(dummies.items()):
        for i, (c, s) in enumerate(d):
            by_layer[c].append((s, len(slots) + k, e, i))
    for c, items in by_layer.items():
        items.sort(key=lambda t: (t[0], t[1]))
        last = -math.inf
        for s, _, key, i in items:
            s = max(s, last + 1.0)
            last = s
            if i < 0:
                slots[key] = (c, s)             # type: ignore[index]
            else:
                dummies[key][i] = (c, s)        # type: ignore[index]


def _place_components(main: list[str], edges: list[Edge], grid: _Grid
                      ) -> tuple[dict[str, tuple[int, float]], dict[Edge, list[tuple[int, float]]]]:
    """Lay out each component, then shelf-pack them on the shared columns.

    Biggest components first (top left); single nodes last, filling rows.  A shelf
    is as wide as the deepest component, or sqrt(n) columns for a graph of loners.
    """
    comps = _components(main, edges)
    home = {n: i for i, comp in enumerate(comps) for n in comp}
    by_comp: dict[int, list[Edge]] = defaultdict(list)
    for e in edges:
        by_comp[home[e[0]]].append(e)
    pieces = [_sugiyama(comp, by_comp[i]) for i, comp in enumerate(comps)]
    order = sorted(range(len(pieces)), key=lambda i: (-pieces[i].height * pieces[i].depth, i))
    ncols = max([p.depth for p in pieces] + [math.ceil(math.sqrt(len(pieces)))], default=1)
    slots: dict[str, tuple[int, float]] = {}
    dummies: dict[Edge, list[tuple[int, float]]] = {}
    col, top, shelf_h = 0, 0.0, 0.0
    for i in order:
        p = pieces[i]
        if col + p.depth > ncols:
            col, top, shelf_h = 0, top + shelf_h, 0.0
        slots.update({n: (c + col, s + top) for n, (c, s) in p.slots.items()})
        dummies.update({e: [(c + col, s + top) for c, s in d] for e, d in p.dummies.items()})
        col += p.depth
        shelf_h = max(shelf_h, p.height)
    return slots, dummies


# --------------------------------------------------------------------------- aside band


def _aside_band(aside: list[str], size: dict[str, tuple[float, float]], grid: _Grid) -> dict[str, Box]:
    """The hub nodes in one row below the drawing (dummy lanes included), centred under it."""
    if not aside:
        return {}
    top = grid.bottom + BUS_GAP
    total = sum(size[n][0] for n in aside) + GAP_X * (len(aside) - 1)
    x = max(0.0, (grid.right() - total) / 2)
    band = {}
    for n in aside:
        w, h = size[n]
        band[n] = Box(x, top, w, h)
        x += w + GAP_X
    return band


# --------------------------------------------------------------------------- routing


@dataclass
class _Port:
    """An edge's attachment on one side of a box.

    ``moves`` are the route indexes that take the port's coordinate (y on the left
    and right sides, x on the top and bottom), so the run from the port stays
    straight; ``toward`` orders the ports along the side to avoid crossings there.
    """
    edge: Edge
    moves: tuple[int, ...]
    toward: float


Ports = dict[tuple[str, str], list[_Port]]      # (node, side L/R/T/B) -> its ports


def _route_all(edges: list[Edge], boxes: dict[str, Box], slots: dict[str, tuple[int, float]],
               dummies: dict[Edge, list[tuple[int, float]]], side: set[str], lanes: dict[Edge, int],
               grid: _Grid) -> dict[Edge, list[Point]]:
    """Every edge's polyline; ports spread along box sides so parallel edges stay apart."""
    skeleton: dict[Edge, list[Point]] = {}
    ports: Ports = defaultdict(list)
    for e in edges:
        u, v = e
        if u == v:
            continue
        if u in side and v in side:
            skeleton[e] = _under_band(e, boxes, ports)
        elif u in side or v in side:
            skeleton[e] = _aside_skeleton(e, boxes, slots, side, lanes, grid, ports)
        else:
            skeleton[e] = _main_skeleton(e, boxes, slots, dummies[e], grid, ports)
    _assign_ports(ports, boxes, skeleton)
    return {e: _self_loop(boxes[e[0]]) if e[0] == e[1] else _dedupe(skeleton[e]) for e in edges}


def _main_skeleton(e: Edge, boxes: dict[str, Box], slots: dict[str, tuple[int, float]],
                   dummy: list[tuple[int, float]], grid: _Grid, ports: Ports) -> list[Point]:
    """Port, column edge, then per dummy a horizontal run across its column, column edge, port.

    A back edge (server in an earlier column) is the same drawing mirrored: it
    leaves its client on the left and enters its server on the right.
    """
    u, v = e
    (cu, _), (cv, _) = slots[u], slots[v]
    forward = cu <= cv
    bu, bv = boxes[u], boxes[v]
    out_x = bu.x + bu.w if forward else bu.x
    in_x = bv.x if forward else bv.x + bv.w
    edge_out = grid.right_of(cu) if forward else grid.left(cu)
    edge_in = grid.left(cv) if forward else grid.right_of(cv)
    mid: list[Point] = []
    for c, s in dummy:
        y = grid.y(c, s)
        a, b = (grid.left(c), grid.right_of(c)) if forward else (grid.right_of(c), grid.left(c))
        mid += [(a, y), (b, y)]
    cy_u, cy_v = bu.y + bu.h / 2, bv.y + bv.h / 2
    pts = [(out_x, cy_u), (edge_out, cy_u), *mid, (edge_in, cy_v), (in_x, cy_v)]
    ports[(u, "R" if forward else "L")].append(_Port(e, (0, 1), pts[2][1]))
    ports[(v, "L" if forward else "R")].append(_Port(e, (len(pts) - 2, len(pts) - 1), pts[-3][1]))
    return pts


def _aside_lanes(edges: list[Edge], slots: dict[str, tuple[int, float]], side: set[str], grid: _Grid) -> dict[Edge, int]:
    """A private vertical lane, in the gap right of the other end's column, per aside edge.

    Lane 0 is the outermost (rightmost) and goes to the highest box, so a lower box's
    horizontal run into its lane never crosses a higher box's lane.
    """
    per_col: dict[int, list[tuple[float, int, Edge]]] = defaultdict(list)
    for k, (u, v) in enumerate(edges):
        if u == v or (u in side) == (v in side):
            continue
        c, s = slots[v if u in side else u]
        per_col[c].append((s, k, (u, v)))
    lanes: dict[Edge, int] = {}
    for c, items in sorted(per_col.items()):
        items.sort()
        for i, (_, _, e) in enumerate(items):
            lanes[e] = i
        grid.need_lanes(c, len(items))
    return lanes


def _lane_x(grid: _Grid, col: int, lane: int) -> float:
    """x of an aside lane: lanes fill the gap from its right part leftwards, evenly spaced."""
    count = max(grid.lanes.get(col, 1), 1)
    gap = grid.gap(col)
    step = min(LANE_STEP, (gap - 40.0) / count)
    return grid.right_of(col) + gap - 20.0 - lane * step


def _aside_skeleton(e: Edge, boxes: dict[str, Box], slots: dict[str, tuple[int, float]], side: set[str],
                    lanes: dict[Edge, int], grid: _Grid, ports: Ports) -> list[Point]:
    """An edge between a band node and another: right port, lane down the gap, the bus, the band node's top.

    Built from the other node's end, then reversed when the band node is the client.
    """
    u, v = e
    other, hub = (u, v) if v in side else (v, u)
    c, _ = slots[other]
    bo, bh = boxes[other], boxes[hub]
    lane = _lane_x(grid, c, lanes[e])
    y = bo.y + bo.h / 2
    pts = [(bo.x + bo.w, y), (grid.right_of(c), y), (lane, y), (lane, bh.y - BUS_GAP / 2), (bh.x + bh.w / 2, bh.y)]
    if other != u:
        pts.reverse()
    n = len(pts)
    near = (0, 1, 2) if other == u else (n - 1, n - 2, n - 3)
    ports[(other, "R")].append(_Port(e, near, math.inf))          # aside edges leave low: below the others
    ports[(hub, "T")].append(_Port(e, (n - 1,) if other == u else (0,), lane))
    return pts


def _under_band(e: Edge, boxes: dict[str, Box], ports: Ports) -> list[Point]:
    """Band node to band node: down from the client, along under the band, up into the server."""
    u, v = e
    bu, bv = boxes[u], boxes[v]
    low = max(bu.y + bu.h, bv.y + bv.h) + 16.0
    ports[(u, "B")].append(_Port(e, (0, 1), bv.x))
    ports[(v, "B")].append(_Port(e, (2, 3), bu.x))
    cu, cv = bu.x + bu.w / 2, bv.x + bv.w / 2
    return [(cu, bu.y + bu.h), (cu, low), (cv, low), (cv, bv.y + bv.h)]


def _assign_ports(ports: Ports, boxes: dict[str, Box], skeleton: dict[Edge, list[Point]]) -> None:
    """Spread the ports of each box side evenly, ordered by where their edges head."""
    for (n, where), items in ports.items():
        b = boxes[n]
        items.sort(key=lambda p: (p.toward, p.edge))
        k = len(items)
        for i, p in enumerate(items):
            pts = skeleton[p.edge]
            if where in "LR":
                y = b.y + b.h * (i + 1) / (k + 1)
                for j in p.moves:
                    pts[j] = (pts[j][0], y)
            else:
                x = b.x + b.w * (i + 1) / (k + 1)
                for j in p.moves:
                    pts[j] = (x, pts[j][1])


def _self_loop(b: Box) -> list[Point]:
    """A small loop round the top-right corner: out of the top border, into the right border."""
    x0 = b.x + b.w - min(24.0, b.w / 3)
    y1 = b.y + min(10.0, b.h / 3)
    return [(x0, b.y), (x0, b.y - LOOP), (b.x + b.w + LOOP, b.y - LOOP), (b.x + b.w + LOOP, y1), (b.x + b.w, y1)]


def _dedupe(pts: Sequence[Point]) -> list[Point]:
    """Drop repeated consecutive points (a box as wide as its column has no run to the edge)."""
    out = [pts[0]]
    for p in pts[1:]:
        if abs(p[0] - out[-1][0]) > 1e-9 or abs(p[1] - out[-1][1]) > 1e-9:
            out.append(p)
    if len(out) == 1:
        out.append(pts[-1])
    return out


# --------------------------------------------------------------------------- labels and bounds


class _Occupied:
    """Rectangles already taken (boxes, placed labels), bucketed on a coarse grid."""

    def __init__(self, cell: float = 128.0):
        self.cell = cell
        self.buckets: dict[tuple[int, int], list[tuple[float, float, float, float]]] = defaultdict(list)

    def _keys(self, r: tuple[float, float, float, float]) -> Iterable[tuple[int, int]]:
        x0, y0, x1, y1 = r
        for i in range(int(x0 // self.cell), int(x1 // self.cell) + 1):
            for j in range(int(y0 // self.cell), int(y1 // self.cell) + 1):
                yield i, j

    def add(self, r: tuple[float, float, float, float]) -> None:
        for k in self._keys(r):
            self.buckets[k].append(r)

    def hits(self, r: tuple[float, float, float, float], pad: float = 2.0) -> bool:
        x0, y0, x1, y1 = r
        for k in self._keys(r):
            for a0, b0, a1, b1 in self.buckets.get(k, ()):
                if x0 < a1 + pad and a0 < x1 + pad and y0 < b1 + pad and b0 < y1 + pad:
                    return True
        return False


def _along(pts: list[Point], t: float) -> Point:
    """The point at fraction t of the polyline's length."""
    seg = [math.dist(a, b) for a, b in zip(pts, pts[1:])]
    goal = t * sum(seg)
    for (a, b), d in zip(zip(pts, pts[1:]), seg):
        if goal <= d and d > 0:
            f = goal / d
            return a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])
        goal -= d
    return pts[-1]


_FRACTIONS = (0.5, 0.42, 0.58, 0.34, 0.66, 0.26, 0.74, 0.18, 0.82)


def _place_label(pts: list[Point], size: tuple[float, float], taken: _Occupied,
                 bounds: tuple[float, float, float, float]) -> Point | None:
    """First free spot near the middle of the route: on it, then just above, then just below."""
    w, h = size
    for t in _FRACTIONS:
        x, y = _along(pts, t)
        for dy in (0.0, -(h / 2 + 3), h / 2 + 3):
            r = (x - w / 2, y + dy - h / 2, x + w / 2, y + dy + h / 2)
            if r[0] < bounds[0] or r[1] < bounds[1] or r[2] > bounds[2] or r[3] > bounds[3]:
                continue
            if not taken.hits(r):
                taken.add(r)
                return x, y + dy
    return None


def _finish(edges: list[Edge], boxes: dict[str, Box], points: dict[Edge, list[Point]],
            labels: dict[Edge, tuple[float, float]], margin: float) -> Layout:
    """Place labels, then shift everything so the drawing starts at ``margin``."""
    xs = [b.x for b in boxes.values()] + [p[0] for pts in points.values() for p in pts]
    ys = [b.y for b in boxes.values()] + [p[1] for pts in points.values() for p in pts]
    x1s = [b.x + b.w for b in boxes.values()] + xs
    y1s = [b.y + b.h for b in boxes.values()] + ys
    lo_x, lo_y = min(xs, default=0.0), min(ys, default=0.0)
    hi_x, hi_y = max(x1s, default=0.0), max(y1s, default=0.0)
    # Labels may use the margin band but not beyond: the bounds are the final canvas.
    bounds = (lo_x - margin, lo_y - margin, hi_x + margin, hi_y + margin)
    taken = _Occupied()
    for b in boxes.values():
        taken.add((b.x, b.y, b.x + b.w, b.y + b.h))
    spots: dict[Edge, Point | None] = {}
    for e in edges:
        spots[e] = _place_label(points[e], labels[e], taken, bounds) if e in labels else None
    dx, dy = margin - lo_x, margin - lo_y

    def move(p: Point) -> Point:
        return p[0] + dx, p[1] + dy

    return Layout(
        boxes={n: Box(b.x + dx, b.y + dy, b.w, b.h) for n, b in boxes.items()},
        routes={e: Route(tuple(move(p) for p in points[e]), None if spots[e] is None else move(spots[e]))
                for e in edges},
        width=hi_x - lo_x + 2 * margin,
        height=hi_y - lo_y + 2 * margin,
    )
