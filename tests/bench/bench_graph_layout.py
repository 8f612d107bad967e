"""Benchmark (not a test): ksm.flows.layout.layered against the old hand-made layout.

Run: python tests/bench/bench_graph_layout.py [N ...]   (default 30 300 1000 nodes)
Graphs: random layered channel-like graphs, ~3.5 edges per node, 12 % back edges
(cycles), plus the kernel hub in ``aside`` with an edge from every process, and a
label on every other edge.  Goal: the whole layout of 1,000 processes <= 2 s.
The baseline is the old ``layered_layout`` (page.py before the Sugiyama engine,
kept in tests/test_graph_layout.py): it only positions boxes, no routing or labels.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from test_graph_layout import crossings, layered_graph, layered_layout  # noqa: E402

from ksm.flows.layout import layered  # noqa: E402


def timed(fn, repeat: int) -> float:
    """Median wall time of ``repeat`` runs, in seconds."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main(sizes: list[int]) -> None:
    print(f"{'nodes':>6} {'edges':>6} {'layered s':>10} {'old s':>8} {'ratio':>7} {'labels':>9} {'no hub s':>9}")
    for n in sizes:
        nodes, edges = layered_graph(n, seed=n)
        hub = [(v, "kl.core.Core") for v in nodes]
        labels = {e: (70.0, 14.0) for e in edges[::2]}
        repeat = 5 if n <= 300 else 3
        args = (nodes + ["kl.core.Core"], edges + hub)
        new = timed(lambda: layered(*args, labels=labels, aside=("kl.core.Core",)), repeat)
        bare = timed(lambda: layered(nodes, edges), repeat)
        old = timed(lambda: layered_layout(*args), repeat)
        out = layered(*args, labels=labels, aside=("kl.core.Core",))
        placed = sum(out.routes[e].label is not None for e in labels)
        print(f"{n:>6} {len(edges) + len(hub):>6} {new:>10.3f} {old:>8.3f} {new / old:>6.1f}x "
              f"{placed:>4}/{len(labels):<4} {bare:>9.3f}")
    if 30 in sizes:
        nodes, edges = layered_graph(30, seed=30)
        routes = [list(r.points) for (u, v), r in layered(nodes, edges).routes.items() if u != v]
        from test_graph_layout import _old_polylines
        print(f"crossings at 30 nodes (no hub): layered {crossings(routes)}, old {crossings(_old_polylines(nodes, edges))}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [30, 300, 1000])
