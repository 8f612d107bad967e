"""The ``ksm`` command: argument parsing and output only; no logic lives here.

Exit codes (stable, documented in docs/getting-started.md):
0 no errors · 1 errors in the user's files · 2 usage error · 3 internal error (a bug).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from policy_lang import LoadOptions, Severity, Solution, load

from .excerpt import excerpt as _excerpt

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: exit 2 with a one-line reason
        self.print_usage(sys.stderr)
        print(f"ksm: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _define(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not name or not name.replace("_", "a").replace("+", "a").isalnum():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value if sep else "1"


def add_solution_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("solution", nargs="?", default=".", help="solution folder or top-level .psl (default: .)")
    p.add_argument("--init", metavar="FILE", help="init.yaml(.in) to use instead of the one found")
    p.add_argument("-I", dest="include", action="append", default=[], metavar="DIR", help="add an include folder (repeatable)")
    p.add_argument("-D", dest="define", action="append", default=[], type=_define, metavar="NAME=VALUE",
                   help="template value for @NAME@ and {{ NAME }} (repeatable)")
    p.add_argument("--defines", action="append", default=[], type=_defines_file, metavar="FILE",
                   help="template values from a file of NAME=VALUE lines (# comments); -D wins")
    p.add_argument("--sdk", action="append", default=[], metavar="DIR", help="a KasperskyOS SDK include folder")


def _defines_file(path: str) -> dict[str, str]:
    """NAME=VALUE lines of a defines file; a malformed line is a usage error with its line number."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}")
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            name, value = _define(line)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"{path}:{n}: expected NAME=VALUE, got {line!r}") from None
        out[name] = value
    return out


def options_from(args: argparse.Namespace) -> LoadOptions:
    defines: dict[str, str] = {}
    for values in getattr(args, "defines", []):
        defines.update(values)
    defines.update(dict(args.define))
    return LoadOptions(
        init=Path(args.init) if args.init else None,
        include_dirs=tuple(Path(p) for p in args.include),
        defines=defines,
        sdk_dirs=tuple(Path(p) for p in args.sdk),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ksm", description="Verification toolkit for KasperskyOS security policies.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    check = sub.add_parser("check", help="parse and resolve a solution; report every problem")
    add_solution_args(check)
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument("--no-excerpt", action="store_true", help="do not quote source lines under diagnostics")
    check.add_argument("--dump", action="store_true", help="with --format json: include the whole resolved model")
    test = sub.add_parser("test", help="run the policy's PAL tests (assert blocks) against the decision function")
    add_solution_args(test)
    test.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    test.add_argument("--format", choices=("text", "json"), default="text")
    test.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    test.add_argument("--coverage", action="store_true", help="list rules the tests never ran")
    decide = sub.add_parser("decide", help="decide one event and explain the decision")
    add_solution_args(decide)
    decide.add_argument("--event", required=True, metavar="JSON",
                        help='e.g. {"kind": "request", "src": "client", "dst": "server", "endpoint": "e", "method": "M", "message": {}}')
    decide.add_argument("--no-boot", action="store_true", help="do not start the kernel, Einit and the init.yaml processes first")
    bench = sub.add_parser("bench", help="run a benchmark and print figures with their same-run baseline")
    bench.add_argument("what", choices=("load", "decide", "compare", "prove", "flows", "simulate", "lint"),
                       help="load: parse + resolve a generated policy; decide: the decision function on allowlists; "
                            "compare: decide next to cedarpy and pycasbin (pip install '.[bench]'); "
                            "prove: per-property proof times on the examples and generated solutions; "
                            "flows: channel-graph labelling and flow checks on generated solutions; "
                            "simulate: IPC round trips per second in the simulator; "
                            "lint: the linter on a generated 10,000-line policy")
    bench.add_argument("--lines", type=int, help="size of the generated policy (load: 100,000; lint: 10,000)")
    bench.add_argument("--repeat", type=int, default=3)
    bench.add_argument("--bindings", type=int, default=100_000, help="decide: size of the large allowlist")
    prove = sub.add_parser("prove", help="prove the properties in *.props files, or show counterexamples")
    _prove_args(prove)
    flows = sub.add_parser("flows", help="check the `never flow` properties on the channel graph, or query it")
    _prove_args(flows)
    _flow_query_args(flows)
    flows.set_defaults(flows_only=True)
    graph = sub.add_parser("graph", help="draw the channel graph: DOT, Mermaid, node-link JSON or an HTML page")
    _graph_args(graph)
    diff = sub.add_parser("diff", help="events one version of a policy grants and the other does not")
    diff.add_argument("old", help="the old solution folder or top-level .psl")
    diff.add_argument("new", help="the new solution folder or top-level .psl")
    diff.add_argument("-D", dest="define", action="append", default=[], type=_define, metavar="NAME=VALUE",
                      help="template value for both versions (repeatable)")
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.add_argument("--fail-on", choices=("new-grants", "any", "never"), default="never",
                      help="exit 1 when the new version grants something the old did not (new-grants), "
                           "when anything differs (any); default: never")
    diff.add_argument("--timeout", type=int, default=10_000, metavar="MS")
    cross = sub.add_parser("crosscheck", help="differential test: the decision function against the Z3 model")
    add_solution_args(cross)
    cross.add_argument("--events", type=int, default=200, metavar="N", help="events per state (default 200)")
    cross.add_argument("--seed", type=int, default=0)
    cross.add_argument("--walk", type=int, default=2, metavar="K",
                       help="also check in K states reached by random granted events (default 2)")
    simulate = sub.add_parser("simulate", help="run the processes as Python code against the policy, "
                                               "or replay counterexamples")
    _simulate_args(simulate)
    from .lint.command import add_lint_args

    lint = sub.add_parser("lint", help="lint a solution: the rule catalogue, for CI (text, JSON, SARIF, "
                                       "GitHub annotations, JUnit)")
    add_solution_args(lint)
    add_lint_args(lint)
    verify = sub.add_parser("verify", help="the CI job: check, lint, PAL tests, proofs and flow checks, "
                                           "one summary table and one exit code")
    add_solution_args(verify)
    verify.add_argument("--config", metavar="FILE", help="lint configuration (default: found upward from the solution)")
    verify.add_argument("--baseline", metavar="FILE", help="lint findings recorded in FILE do not fail")
    verify.add_argument("--fail-on", choices=("error", "warning", "note"), default=None,
                        help="the lowest severity of a lint finding or warning that fails the lint stage "
                             "(default: error, or fail-on from ksm.toml)")
    verify.add_argument("--skip", action="append", default=[], choices=("lint", "test", "prove", "flows"),
                        help="leave out a stage (repeatable)")
    verify.add_argument("--timeout", type=int, default=10_000, metavar="MS", help="Z3 time limit per proof query")
    verify.add_argument("--depth", type=int, default=8, help="k for k-induction and the BMC bound")
    verify.add_argument("--sarif", metavar="FILE", help="also write the lint findings and proof results as SARIF")
    verify.add_argument("--format", choices=("text", "json"), default="text")
    verify.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    codes = sub.add_parser("codes", help="list every diagnostic code")
    codes.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    return parser


def render_text(sol: Solution, excerpts: bool = True) -> str:
    s = sol.summary()
    out = [
        f"{sol.root}: {s['classes']} classes ({s['opaque_classes']} opaque), {s['instances']} instances, "
        f"{s['channels']} channels, {s['interfaces']} interfaces, {s['methods']} methods, "
        f"{s['bindings']} bindings, {s['objects']} objects, {s['tests']} tests "
        f"({s['files']} files, {s['lines']} lines)"
    ]
    cache: dict = {}
    for d in sol.diagnostics:
        out.append(d.render())
        if excerpts:
            ex = _excerpt(d, cache)
            if ex:
                out.append(ex)
    errors = sum(1 for d in sol.diagnostics if d.severity is Severity.ERROR)
    warnings = sum(1 for d in sol.diagnostics if d.severity is Severity.WARNING)
    out.append(f"{'FAILED' if errors else 'OK'}: {errors} error(s), {warnings} warning(s)")
    return "\n".join(out)


def render_json(sol: Solution, dump: bool = False) -> str:
    doc: dict = {
        "solution": sol.root,
        "policy": sol.policy,
        "ok": sol.ok,
        "summary": sol.summary(),
        "diagnostics": [d.to_json() for d in sol.diagnostics],
    }
    if dump:
        from policy_lang.dump import solution_model

        doc["model"] = solution_model(sol)
    return json.dumps(doc, indent=2)


def cmd_check(args: argparse.Namespace) -> int:
    sol = load(args.solution, options_from(args))
    print(render_json(sol, args.dump) if args.format == "json" else render_text(sol, not args.no_excerpt))
    return EXIT_OK if sol.ok else EXIT_ERRORS


def _load_ok(args: argparse.Namespace) -> Solution | None:
    sol = load(args.solution, options_from(args))
    if not sol.ok:
        print(render_text(sol), file=sys.stderr)
        return None
    return sol


def cmd_test(args: argparse.Namespace) -> int:
    from ksm.pal import render, run_tests

    sol = _load_ok(args)
    if sol is None:
        return EXIT_ERRORS
    results = run_tests(sol)
    if args.format == "json":
        from ksm.pal import to_json

        print(json.dumps(to_json(results), indent=2))
    else:
        print(render(results, args.verbose))
    if args.coverage and args.format == "text":
        from ksm.pal import coverage, render_coverage

        print(render_coverage(coverage(sol, results)))
    if args.junit:
        from ksm.pal import junit_xml

        try:
            Path(args.junit).write_text(junit_xml(results), encoding="utf-8")
        except OSError as exc:
            print(f"ksm: error: cannot write {args.junit}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    return EXIT_OK if all(r.passed for r in results) else EXIT_ERRORS


def cmd_decide(args: argparse.Namespace) -> int:
    from ksm.engine import SecurityModule
    from ksm.events import Event

    try:
        spec = json.loads(args.event)
        if not isinstance(spec, dict):
            raise ValueError("the event must be a JSON object")
        event = Event(spec.get("kind", ""), spec.get("src"), spec.get("dst"), spec.get("endpoint"),
                      spec.get("method", "main" if spec.get("kind") == "execute" else None),
                      spec.get("message") or {})
    except (ValueError, TypeError) as exc:
        print(f"ksm: error: --event: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sol = _load_ok(args)
    if sol is None:
        return EXIT_ERRORS
    module = SecurityModule(sol)
    if not args.no_boot:
        module.boot()
    decision = module.decide(event)
    print(decision.explain())
    return EXIT_OK if decision.granted else EXIT_ERRORS


def cmd_bench(args: argparse.Namespace) -> int:
    from ksm.bench import bench_decide, bench_load

    if args.lines is None:
        args.lines = 10_000 if args.what == "lint" else 100_000
    if args.lines < 100 or args.repeat < 1 or args.bindings < 20:
        print("ksm: error: --lines must be >= 100, --repeat >= 1, --bindings >= 20", file=sys.stderr)
        return EXIT_USAGE
    if args.what == "decide":
        print(bench_decide(large=args.bindings).report())
    elif args.what == "prove":
        from ksm.bench import bench_prove

        print(bench_prove().report())
    elif args.what == "flows":
        from ksm.bench import bench_flows

        print(bench_flows().report())
    elif args.what == "simulate":
        from ksm.sim.bench import bench_simulate

        print(bench_simulate(repeat=args.repeat).report())
    elif args.what == "lint":
        from ksm.lint.bench import bench_lint

        print(bench_lint(args.lines, args.repeat).report())
    elif args.what == "compare":
        from ksm.bench import bench_decide_vs_others

        print(bench_decide_vs_others().report())
    else:
        print(bench_load(args.lines, args.repeat).report())
    return EXIT_OK


def _prover_args(p: argparse.ArgumentParser) -> None:
    """The solution, its property files and the Z3 limits (prove, flows, graph)."""
    add_solution_args(p)
    p.add_argument("--props", action="append", default=[], metavar="FILE",
                   help="property file (repeatable; default: every *.props under the solution folder)")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")
    p.add_argument("--timeout", type=int, default=10_000, metavar="MS", help="per Z3 query (default 10000)")
    p.add_argument("--depth", type=int, default=8, metavar="K", help="k-induction / BMC bound (default 8)")
    p.add_argument("--no-chc", action="store_true", help="skip Z3's Horn-clause engine (Spacer)")
    p.add_argument("--dynamic", choices=("none", "declared", "policy"), default="declared",
                   help="run-time channels in the flow analysis: none, the `channel` lines of the property "
                        "files (default), or every pair whose requests the policy could grant")
    p.add_argument("--kernel-relay", action="store_true",
                   help="let flows pass through the kernel (default: the kernel may send and receive data "
                        "but does not pass one process's data to another)")


def _prove_args(p: argparse.ArgumentParser) -> None:
    """Arguments shared by ``ksm prove`` and ``ksm flows``."""
    _prover_args(p)
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    p.add_argument("--only", action="append", default=[], metavar="NAME", help="only these properties")
    p.add_argument("-v", "--verbose", action="store_true", help="show every property's text")


def _flow_query_args(p: argparse.ArgumentParser) -> None:
    q = p.add_argument_group("queries (instead of the properties; names are tasks or classes)")
    q.add_argument("--from", dest="out_of", metavar="P", help="every process data from P can reach")
    q.add_argument("--into", metavar="P", help="every process whose data can reach P")
    q.add_argument("--paths", nargs=2, metavar=("A", "B"), help="all shortest flow paths from A to B")
    q.add_argument("--matrix", action="store_true", help="which process's data can reach which")
    q.add_argument("--by-class", action="store_true", help="with --matrix: rows and columns are classes")
    q.add_argument("--avoid", action="append", default=[], metavar="C",
                   help="take C out of the graph first, as `unless via C` does (repeatable)")


def _graph_args(p: argparse.ArgumentParser) -> None:
    _prover_args(p)
    p.add_argument("--format", choices=("dot", "mermaid", "json", "html"), default="dot")
    p.add_argument("--hide", action="append", default=[], metavar="TASK",
                   help="leave this process out of the picture (repeatable), e.g. --hide kl.core.Core")
    p.add_argument("--no-conditions", action="store_true",
                   help="do not ask when each granted hop is granted (faster on large solutions)")


def _simulate_args(p: argparse.ArgumentParser) -> None:
    add_solution_args(p)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--behaviours", metavar="MODULE.py",
                      help="Python behaviour classes (default: sim/behaviours.py in the solution folder)")
    what.add_argument("--scenario", metavar="FILE.yaml", help="a scripted run (docs/simulation.md)")
    what.add_argument("--replay", metavar="CEX.json",
                      help="re-enact the counterexamples in `ksm prove`/`ksm flows --format json` output")
    p.add_argument("--property", metavar="NAME", help="with --replay: only this property's traces")
    p.add_argument("--seed", type=int, default=None, help="scheduler seed (default 0, or the scenario's)")
    p.add_argument("--steps", type=int, default=None, metavar="N", help="step limit (default 100000)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="wall-time limit of the run")
    p.add_argument("--trace", metavar="FILE", help="write every record as JSON lines")
    p.add_argument("--chrome", metavar="FILE", help="write a trace for Perfetto / chrome://tracing")
    p.add_argument("--taint", action="store_true",
                   help="report observed flows that a `never flow` property of the property files forbids")
    p.add_argument("--props", action="append", default=[], metavar="FILE",
                   help="with --taint: property file (default: every *.props under the solution folder)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-q", "--quiet", action="store_true", help="no timeline, only the summary")


def cmd_simulate(args: argparse.Namespace) -> int:
    from ksm.sim.codes import SimInputError
    from ksm.sim.session import run_behaviours, run_replays, run_scenario
    from ksm.sim.trace import chrome_trace, write_jsonl

    if (args.steps is not None and args.steps < 1) or (args.timeout is not None and args.timeout <= 0):
        print("ksm: error: --steps and --timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    if args.property and not args.replay:
        print("ksm: error: --property goes with --replay", file=sys.stderr)
        return EXIT_USAGE
    sol = _load_ok(args)
    if sol is None:
        return EXIT_ERRORS
    props = None
    if args.taint:
        files = _property_files(args, sol)
        if files is None:
            return EXIT_ERRORS
        props = [p for f in files for p in f.properties]
    try:
        if args.replay:
            reports = run_replays(sol, args.replay, args.property, props)
        elif args.scenario:
            reports = [run_scenario(sol, args.scenario, args.seed, args.steps, args.timeout, props)]
        else:
            reports = [run_behaviours(sol, args.behaviours, args.seed or 0, args.steps or 100_000,
                                      args.timeout, props)]
    except SimInputError as exc:
        print(exc.diagnostic.render(), file=sys.stderr)
        ex = _excerpt(exc.diagnostic, {})
        if ex:
            print(ex, file=sys.stderr)
        return EXIT_ERRORS
    records = [r for rep in reports for r in rep.kernel.records]
    try:
        if args.trace:
            with open(args.trace, "w", encoding="utf-8") as fh:
                write_jsonl(records, fh)
        if args.chrome:
            Path(args.chrome).write_text(json.dumps(chrome_trace(records)), encoding="utf-8")
    except OSError as exc:
        print(f"ksm: error: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        print(json.dumps({"runs": [r.to_json() for r in reports], "ok": all(r.ok for r in reports)}, indent=2))
    else:
        print("\n\n".join(r.render(not args.quiet) for r in reports))
    return EXIT_OK if all(r.ok for r in reports) else EXIT_ERRORS


def write_report(text: str, args: argparse.Namespace) -> int:
    """Print ``text`` or write it to ``--output``; EXIT_USAGE when the file cannot be written."""
    if not args.output:
        print(text)
        return EXIT_OK
    try:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"ksm: error: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _property_files(args: argparse.Namespace, sol: Solution):
    """Load the property files; None (after printing diagnostics) when one has errors."""
    from policy_lang.props import find_property_files, load_properties

    paths = [Path(p) for p in args.props] or find_property_files(sol)
    files = [load_properties(sol, p, dict(options_from(args).defines)) for p in paths]
    cache: dict = {}
    bad = False
    for f in files:
        for d in f.diagnostics:
            print(d.render(), file=sys.stderr)
            ex = _excerpt(d, cache)
            if ex:
                print(ex, file=sys.stderr)
        bad |= not f.ok
    return None if bad else files


def _prover(args: argparse.Namespace):
    """(solution, property files, prover), or an exit code after printing why not."""
    from ksm.verify.prove import Prover, ProveOptions

    if args.timeout < 1 or args.depth < 0:
        print("ksm: error: --timeout must be >= 1 and --depth >= 0", file=sys.stderr)
        return EXIT_USAGE
    sol = _load_ok(args)
    if sol is None:
        return EXIT_ERRORS
    files = _property_files(args, sol)
    if files is None:
        return EXIT_ERRORS
    return sol, files, Prover(sol, ProveOptions(timeout_ms=args.timeout, depth=args.depth, use_chc=not args.no_chc))


def _channel_graph(prover, files, args: argparse.Namespace):
    from ksm.flows.graph import channel_graph

    return channel_graph(prover, files, args.dynamic, args.kernel_relay)


def _replay_bug(exc) -> int:
    print(f"ksm: BUG: the Z3 model and the decision function disagree on a counterexample:\n{exc}\n"
          "Please report it with the solution and property file.", file=sys.stderr)
    return EXIT_INTERNAL


def cmd_prove(args: argparse.Namespace) -> int:
    from ksm.verify.prove import PROVED, ReplayMismatch
    from ksm.verify.report import render_json, render_sarif, render_text as render_proofs

    got = _prover(args)
    if isinstance(got, int):
        return got
    sol, files, prover = got
    if getattr(args, "flows_only", False) and (args.out_of or args.into or args.paths or args.matrix):
        return _flow_queries(args, prover, files)
    props = [p for f in files for p in f.properties if not args.only or p.name in args.only]
    if getattr(args, "flows_only", False):
        props = [p for p in props if p.kind == "never_flow"]
    flows = [p for p in props if p.kind == "never_flow"]
    props = [p for p in props if p.kind != "never_flow"]
    if not props and not flows:
        if args.only:
            known = sorted(p.name for f in files for p in f.properties)
            print(f"ksm: error: --only {', '.join(args.only)}: no such property"
                  + (f" (properties: {', '.join(known)})" if known else " (the solution has no properties)"),
                  file=sys.stderr)
            return EXIT_USAGE
        print("ksm: no properties to prove (write a .props file, see docs/properties.md)", file=sys.stderr)
        return EXIT_OK
    progress = sys.stderr.isatty() and args.format == "text" and not args.output

    def show(r) -> None:
        if progress:
            print(f"  {r.status:<8} {r.name}", file=sys.stderr)
    graph = None
    try:
        results = prover.prove_all(props, show)
        if flows:
            from ksm.flows import FlowChecker

            graph = _channel_graph(prover, files, args)
            checker = FlowChecker(graph)
            for p in flows:
                results.append(checker.check(p))
                show(results[-1])
    except ReplayMismatch as exc:
        return _replay_bug(exc)
    from ksm import __version__

    text = {"json": lambda: render_json(results, graph), "sarif": lambda: render_sarif(results, __version__),
            "text": lambda: render_proofs(results, args.verbose, graph)}[args.format]()
    code = write_report(text, args)
    return code if code else EXIT_OK if all(r.status == PROVED for r in results) else EXIT_ERRORS


def _flow_queries(args: argparse.Namespace, prover, files) -> int:
    from ksm.flows import FlowQuery, UnknownProcess
    from ksm.flows.report import render_queries

    if args.format == "sarif":
        print("ksm: error: queries have no SARIF form; use --format text or json", file=sys.stderr)
        return EXIT_USAGE
    graph = _channel_graph(prover, files, args)
    try:
        query = FlowQuery(graph, tuple(args.avoid))
        text = render_queries(query, args.format, out_of=args.out_of, into=args.into, paths=args.paths,
                              matrix=args.matrix, by_class=args.by_class)
    except UnknownProcess as exc:
        print(f"ksm: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
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
        print(f"ksm: error: --hide {unknown[0]}: no such task (tasks: {', '.join(sorted(graph.procs))})",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        checker = FlowChecker(graph)
        results = [checker.check(p) for f in files for p in f.properties if p.kind == "never_flow"]
    except ReplayMismatch as exc:
        return _replay_bug(exc)
    export = GraphExport(graph, results, tuple(args.hide), conditions=not args.no_conditions)
    title = Path(args.solution).resolve().name or "solution"
    return write_report(export.render(args.format, title), args)


def cmd_diff(args: argparse.Namespace) -> int:
    from ksm.verify.diff import diff, render_text as render_diff
    from ksm.verify.prove import ReplayMismatch

    opts = LoadOptions(defines=dict(args.define))
    old, new = load(args.old, opts), load(args.new, opts)
    for label, sol in (("old", old), ("new", new)):
        if not sol.ok:
            print(f"ksm: the {label} version has errors:", file=sys.stderr)
            print(render_text(sol), file=sys.stderr)
            return EXIT_ERRORS
    try:
        report = diff(old, new, args.timeout)
    except ReplayMismatch as exc:
        print(f"ksm: BUG: the Z3 model and the decision function disagree:\n{exc}", file=sys.stderr)
        return EXIT_INTERNAL
    if args.format == "json":
        print(json.dumps({"differences": [d.to_json() for d in report.differences], "unknown": report.unknown},
                         indent=2, default=str))
    else:
        print(render_diff(report))
    if args.fail_on == "new-grants" and (report.count("new-grant") or report.count("added")):
        return EXIT_ERRORS
    if args.fail_on == "any" and (report.differences or report.unknown):
        return EXIT_ERRORS
    return EXIT_OK


def cmd_crosscheck(args: argparse.Namespace) -> int:
    from ksm.verify.crosscheck import crosscheck

    if args.events < 1 or args.walk < 0:
        print("ksm: error: --events must be >= 1 and --walk >= 0", file=sys.stderr)
        return EXIT_USAGE
    sol = _load_ok(args)
    if sol is None:
        return EXIT_ERRORS
    r = crosscheck(sol, args.events, args.seed, args.walk)
    for d in r.disagreements:
        print("DISAGREE " + d.describe())
    print(f"{r.events} events over {r.keys} event keys and {args.walk + 1} state(s): {r.agreed} agreed, "
          f"{len(r.disagreements)} disagreed, {r.skipped} not comparable (the encoding over-approximates them)")
    return EXIT_OK if not r.disagreements else EXIT_INTERNAL


def _catalogue() -> dict:
    """Every diagnostic code: the front end's, the simulator's input codes and the linter's."""
    import importlib

    from policy_lang.diagnostics import catalogue

    importlib.import_module("ksm.sim.codes")      # defines the SIM codes
    importlib.import_module("ksm.lint.config")    # CFG codes
    importlib.import_module("ksm.lint.baseline")  # BAS codes
    from ksm.lint import all_rules

    all_rules()                                   # LNT codes
    return catalogue()


def codes_markdown() -> str:
    """The table in docs/diagnostics.md (a test keeps the two equal)."""
    rows = ["| code | severity | meaning | hint |", "|---|---|---|---|"]
    for info in _catalogue().values():
        hint = info.hint.replace("|", "\\|")
        rows.append(f"| `{info.code}` | {info.severity.value} | {info.title} | {hint} |")
    return "\n".join(rows)


def cmd_codes(args: argparse.Namespace) -> int:
    catalogue = _catalogue
    if args.format == "markdown":
        print(codes_markdown())
    elif args.format == "json":
        print(json.dumps([{"code": i.code, "severity": i.severity.value, "title": i.title, "hint": i.hint}
                          for i in catalogue().values()], indent=2))
    else:
        for i in catalogue().values():
            print(f"{i.code}  {i.severity.value:<7}  {i.title}")
    return EXIT_OK


def cmd_lint(args: argparse.Namespace) -> int:
    from .lint.command import cmd_lint as run

    return run(args)


def cmd_verify(args: argparse.Namespace) -> int:
    from .lint.command import lint_setup, use_color
    from .pipeline import VerifyOptions, render_json as verify_json, render_table, verify, write_sarif

    if args.timeout < 1 or args.depth < 0:
        print("ksm: error: --timeout must be >= 1 and --depth >= 0", file=sys.stderr)
        return EXIT_USAGE
    setup = lint_setup(args.solution, args.config, baseline=args.baseline, fail_on=args.fail_on)
    if isinstance(setup, int):
        return setup
    config, baseline = setup
    report = verify(args.solution, VerifyOptions(options_from(args), config, baseline, args.timeout, args.depth,
                                                 frozenset(args.skip)))
    if args.format == "json":
        print(verify_json(report))
    else:
        print(render_table(report, color=use_color(args.color)))
    if args.sarif:
        try:
            write_sarif(report, Path(args.sarif))
        except OSError as exc:
            print(f"ksm: error: cannot write {args.sarif}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    return report.exit_code


COMMANDS = {"check": cmd_check, "test": cmd_test, "decide": cmd_decide, "bench": cmd_bench, "codes": cmd_codes,
            "prove": cmd_prove, "flows": cmd_prove, "graph": cmd_graph, "diff": cmd_diff, "crosscheck": cmd_crosscheck,
            "simulate": cmd_simulate, "lint": cmd_lint, "verify": cmd_verify}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug in the toolkit, never a problem in the user's files
        if os.environ.get("KSM_DEBUG"):
            raise
        print(f"ksm: internal error: {type(exc).__name__}: {exc}\n"
              "This is a bug in ksm, not in your files; rerun with KSM_DEBUG=1 for details and report it.",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
