"""Benchmark (not a test): the channel-graph page at 30, 300 and 1,000 processes.

Run: python tests/bench/bench_graph_page.py [PROCESSES ...]

For each size, a generated solution (``ksm.flows.generate``, four channels per
process, one class per 25 processes and zone) is loaded, labelled into its channel
graph with its ``never flow`` properties checked (what ``ksm graph`` does first), and
drawn: the page (both drawings laid out, matrix, panels, tables) and the SVG.  The
baseline is loading the solution (``policy_lang.load``) in the same run; figures are
ratios to it.  Every page is checked: one box per process, one arrow per channel.
Goal (issue): the page for 1,000 processes in 5 s or less.
"""
from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def best(fn, runs: int = 3):
    out, times = None, []
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, min(times)


def main(sizes: list[int]) -> None:
    from policy_lang import load
    from policy_lang.props import find_property_files, load_properties

    from ksm.flows import FlowChecker, GraphExport
    from ksm.flows.graph import channel_graph
    from ksm.flows.generate import generate_flow_solution
    from ksm.verify.prove import Prover

    print(f"{'processes':>9} {'channels':>8} {'load':>7} {'label+check':>12} {'page':>7} {'svg':>7} "
          f"{'page/load':>9} {'page KiB':>8}")
    for n in sizes:
        root = Path(tempfile.mkdtemp(prefix=f"ksm-bench-graph{n}-"))
        props = generate_flow_solution(root, instances=n, channels_per_instance=4, classes_per_zone=max(3, n // 25))
        (root / "einit" / "src" / "flows.props").write_text(props)
        sol, t_load = best(lambda: load(root))

        def labelled():
            files = [load_properties(sol, p) for p in find_property_files(sol)]
            graph = channel_graph(Prover(sol), files)
            checker = FlowChecker(graph)
            results = [checker.check(p) for f in files for p in f.properties if p.kind == "never_flow"]
            return GraphExport(graph, results)
        export, t_label = best(labelled, 1)
        page, t_page = best(lambda: export.html(f"gen{n}"))
        drawing, t_svg = best(export.svg)
        boxes = len(re.findall(r'<g class="node[^"]*" id="n\d+"', page))
        arrows = len(re.findall(r'<g class="edge[^"]*" id="e\d+"', page))
        assert boxes == len(export.nodes), (boxes, len(export.nodes))
        assert arrows == len(export.channels), (arrows, len(export.channels))
        assert drawing.count('class="node') == len(export.nodes)
        print(f"{n:>9} {len(export.channels):>8} {t_load:>6.2f}s {t_label:>11.2f}s {t_page:>6.2f}s {t_svg:>6.2f}s "
              f"{t_page / t_load:>9.2f} {len(page) // 1024:>8}")
    print("(page: both drawings laid out, matrix, panels and tables, from the labelled graph; "
          "label+check: the channel graph and the flow properties, once)")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [30, 300, 1000])
