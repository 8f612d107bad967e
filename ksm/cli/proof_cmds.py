"""``ksm prove``, ``flows`` and ``graph``: the solution, its property files and the Z3
model (and the channel graph built on it)."""
from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from policy_lang import Solution

from .common import (EXIT_ERRORS, EXIT_INTERNAL, EXIT_OK, add_solution_args, count, json_text, load_ok,
                     options_from, print_diagnostics, seconds, usage, write_report)
from .progress import busy, steps


def _prover_args(p: argparse.ArgumentParser) -> None:
    """The solution, its property files and the Z3 limits (prove, flows, graph)."""
    add_solution_args(p)
    p.add_argument("--props", action="append", default=[], metavar="FILE",
                   help="property file (repeatable; default: every *.props under the solution folder)")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")
    p.add_argument("--timeout", type=seconds, default=10.0, metavar="SECONDS",
                   help="Z3 time limit per query (default 10)")
    p.add_argument("--depth", type=count, default=8, metavar="K", help="k-induction / BMC bound (default 8)")
    p.add_argument("--no-chc", action="store_true", help="skip Z3's Horn-clause engine (Spacer)")
    p.add_argument("--dynamic", choices=("none", "declared", "policy"), default="declared",
                   help="run-time channels in the flow analysis: none, the `channel` lines of the property "
                        "files (default), or every pair whose requests the policy could grant")
    p.add_argument("--kernel-relay", action="store_true",
                   help="let flows pass through the kernel (default: the kernel may send and receive data "
                        "but does not pass one process's data to another)")


def _prove_args(p: argparse.ArgumentParser) -> None:
    _prover_args(p)
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text", help="report format (default: text)")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="only these properties (repeatable; an unknown name is a usage error)")
    p.add_argument("-v", "--verbose", action="store_true", help="show every property's text")


def add_prove(sub) -> None:
    p = sub.add_parser("prove", help="prove the properties in *.props files, or show counterexamples",
                       epilog="examples:\n  ksm prove models/smart_lock\n"
                              "  ksm prove models/smart_lock_flawed --format json --output cex.json\n"
                              "  ksm prove models/smart_lock --only door_needs_auth --timeout 30")
    _prove_args(p)


def add_flows(sub) -> None:
    p = sub.add_parser("flows", help="check the `never flow` properties on the channel graph, or query it",
                       epilog="examples:\n  ksm flows models/smart_lock_flawed\n"
                              "  ksm flows models/smart_lock --from lock.NetAgent\n"
                              "  ksm flows models/smart_lock --matrix --format json")
    _prove_args(p)
    q = p.add_argument_group("queries (instead of the properties; names are tasks or classes)")
    q.add_argument("--from", dest="out_of", metavar="P", help="every process data from P can reach")
    q.add_argument("--into", metavar="P", help="every process whose data can reach P")
    q.add_argument("--paths", nargs=2, metavar=("A", "B"), help="all shortest flow paths from A to B")
    q.add_argument("--matrix", action="store_true", help="which process's data can reach which")
    q.add_argument("--by-class", action="store_true", help="with --matrix: rows and columns are classes")
    q.add_argument("--avoid", action="append", default=[], metavar="C",
                   help="take C out of the graph first, as `unless via C` does (repeatable)")
    p.set_defaults(flows_only=True)


def add_graph(sub) -> None:
    p = sub.add_parser("graph", help="draw the channel graph: DOT, Mermaid, node-link JSON, SVG or an HTML page",
                       epilog="examples:\n  ksm graph models/smart_lock | dot -Tsvg > lock.svg\n"
                              "  ksm graph models/smart_lock --format svg --output lock.svg\n"
                              "  ksm graph models/smart_lock_flawed --format html --output lock.html")
    _prover_args(p)
    p.add_argument("--format", choices=("dot", "mermaid", "json", "svg", "html"), default="dot",
                   help="picture format (default: dot); svg and html are laid out by ksm itself")
    p.add_argument("--hide", action="append", default=[], metavar="TASK",
                   help="leave this process out of the picture (repeatable), e.g. --hide kl.core.Core")
    p.add_argument("--no-conditions", action="store_true",
                   help="do not ask when each granted hop is granted (faster on large solutions)")
    p.add_argument("--no-group", action="store_true",
                   help="dot, mermaid: do not box the instances of a class and the classes of a package")


def property_files(args: argparse.Namespace, sol: Solution):
    """Load the property files; None (after printing diagnostics) when one has errors."""
    from policy_lang.props import find_property_files, load_properties

    paths = [Path(p) for p in args.props] or find_property_files(sol)
    files = [load_properties(sol, p, dict(options_from(args).defines)) for p in paths]
    print_diagnostics(d for f in files for d in f.diagnostics)
    return None if any(not f.ok for f in files) else files


def _prover(args: argparse.Namespace):
    """(solution, property files, prover), or an exit code after printing why not."""
    from ksm.verify.prove import Prover, ProveOptions

    sol = load_ok(args)
    if sol is None:
        return EXIT_ERRORS
    files = property_files(args, sol)
    if files is None:
        return EXIT_ERRORS
    options = ProveOptions(timeout_ms=max(1, round(args.timeout * 1000)), depth=args.depth, use_chc=not args.no_chc)
    return sol, files, Prover(sol, options)


def _channel_graph(prover, files, args: argparse.Namespace):
    from ksm.flows.graph import channel_graph

    # The command ends after using the graph: everything built so far (solution, hops,
    # labels) moves out of the collector's sight, instead of being walked again by each
    # full collection while the graph is built, derived and checked (2-4 s at half a
    # million hops).  Safe in a process about to exit; the library does not do this, and
    # small graphs (tests call the CLI in-process) are left alone.
    enabled = gc.isenabled()
    gc.disable()
    try:
        with busy("building the channel graph"):
            graph = channel_graph(prover, files, args.dynamic, args.kernel_relay)
        if len(graph.hops) >= FREEZE_HOPS:
            gc.freeze()
    finally:
        if enabled:
            gc.enable()
    return graph


#: From this many hops on, the command freezes the collector's view of the graph (above).
FREEZE_HOPS = 100_000


def replay_bug(exc) -> int:
    print(f"ksm: BUG: the Z3 model and the decision function disagree on a counterexample:\n{exc}\n"
          "Please report it with the solution and property file.", file=sys.stderr)
    return EXIT_INTERNAL


def cmd_prove(args: argparse.Namespace) -> int:
    from ksm import __version__
    from ksm.verify.prove import PROVED, ReplayMismatch
    from ksm.verify.report import render_json, render_sarif, render_text as render_proofs

    got = _prover(args)
    if isinstance(got, int):
        return got
    sol, files, prover = got
    flows_only = getattr(args, "flows_only", False)
    if flows_only and (args.out_of or args.into or args.paths or args.matrix):
        return _flow_queries(args, prover, files)
    everything = [p for f in files for p in f.properties]
    unknown = [n for n in args.only if n not in {p.name for p in everything}]
    if unknown:
        known = sorted(p.name for p in everything)
        return usage(f"--only {', '.join(unknown)}: no such property"
                     + (f" (properties: {', '.join(known)})" if known else " (the solution has no properties)"))
    props = [p for p in everything if not args.only or p.name in args.only]
    if flows_only:
        props = [p for p in props if p.kind == "never_flow"]
    flows = [p for p in props if p.kind == "never_flow"]
    props = [p for p in props if p.kind != "never_flow"]
    if not props and not flows:
        what = "`never flow` properties" if flows_only else "properties"
        print(f"ksm: no {what} to prove (write a .props file, see docs/properties.md)", file=sys.stderr)
        return EXIT_OK
    graph = None
    try:
        with steps("proving", len(props) + len(flows)) as advance:
            results = prover.prove_all(props, lambda r: advance(r.name))
            if flows:
                from ksm.flows import FlowChecker

                graph = _channel_graph(prover, files, args)
                checker = FlowChecker(graph)
                for p in flows:
                    results.append(checker.check(p))
                    advance(p.name)
    except ReplayMismatch as exc:
        return replay_bug(exc)
    if args.format == "json":
        text = json_text("flows" if flows_only else "prove", render_json(results, graph))
    elif args.format == "sarif":
        text = render_sarif(results, __version__)
    else:
        text = render_proofs(results, args.verbose, graph)
    code = write_report(text, args)
    return code or (EXIT_OK if all(r.status == PROVED for r in results) else EXIT_ERRORS)


def _flow_queries(args: argparse.Namespace, prover, files) -> int:
    from ksm.flows import FlowQuery, UnknownProcess
    from ksm.flows.report import render_queries

    if args.format == "sarif":
        return usage("queries have no SARIF form; use --format text or json")
    graph = _channel_graph(prover, files, args)
    try:
        query = FlowQuery(graph, tuple(args.avoid))
        text = render_queries(query, args.format, out_of=args.out_of, into=args.into, paths=args.paths,
                              matrix=args.matrix, by_class=args.by_class)
    except UnknownProcess as exc:
        return usage(str(exc))
    if args.format == "json":
        text = json_text("flow-query", text)
    return write_report(text, args)


def cmd_graph(args: argparse.Namespace) -> int:
    from ksm.flows import FlowChecker, GraphExport
    from ksm.verify.prove import ReplayMismatch

    got = _prover(args)
    if isinstance(got, int):
        return got
    sol, files, prover = got
    graph = _channel_graph(prover, files, args)
    unknown = [h for h in args.hide if h not in graph.procs]
    if unknown:
        return usage(f"--hide {unknown[0]}: no such task (tasks: {', '.join(sorted(graph.procs))})")
    try:
        checker = FlowChecker(graph)
        results = [checker.check(p) for f in files for p in f.properties if p.kind == "never_flow"]
    except ReplayMismatch as exc:
        return replay_bug(exc)
    export = GraphExport(graph, results, tuple(args.hide), conditions=not args.no_conditions)
    title = Path(args.solution).resolve().name or "solution"
    with busy("drawing the channel graph"):
        text = export.render(args.format, title, group=not args.no_group)
    if args.format == "json":
        text = json_text("graph", text)
    return write_report(text, args)
