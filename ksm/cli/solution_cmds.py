"""``ksm check``, ``test``, ``decide``, ``crosscheck`` and ``diff``: one solution (or two)
in, a verdict out."""
from __future__ import annotations

import argparse
import json
import sys

from policy_lang import LoadOptions, Solution, load

from .common import (EXIT_ERRORS, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, add_solution_args, json_text, load_ok,
                     load_solution, options_from, render_text, seconds, usage, write_file, write_report)
from .progress import busy


def _format(p: argparse.ArgumentParser, *choices: str) -> None:
    p.add_argument("--format", choices=choices, default=choices[0], help=f"report format (default: {choices[0]})")


def _output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")


# ----------------------------------------------------------------------------- check

def add_check(sub) -> None:
    p = sub.add_parser("check", help="parse and resolve a solution; report every problem",
                       description="Parse and resolve a solution (PSL, IDL/CDL/EDL, init.yaml, templates) "
                                   "and report every problem as file:line:col: severity[CODE].",
                       epilog="examples:\n  ksm check models/echo\n"
                              "  ksm check models/showcase --format json --dump --output model.json")
    add_solution_args(p)
    _format(p, "text", "json")
    _output(p)
    p.add_argument("--no-excerpt", action="store_true", help="do not quote source lines under diagnostics")
    p.add_argument("--dump", action="store_true", help="with --format json: include the whole resolved model")


def render_json(sol: Solution, dump: bool = False) -> str:
    doc: dict = {"solution": sol.root, "policy": sol.policy, "ok": sol.ok, "summary": sol.summary(),
                 "diagnostics": [d.to_json() for d in sol.diagnostics]}
    if dump:
        from policy_lang.dump import solution_model

        doc["model"] = solution_model(sol)
    return json_text("check", doc)


def cmd_check(args: argparse.Namespace) -> int:
    sol = load_solution(args)
    text = render_json(sol, args.dump) if args.format == "json" else render_text(sol, not args.no_excerpt)
    code = write_report(text, args)
    return code or (EXIT_OK if sol.ok else EXIT_ERRORS)


# ----------------------------------------------------------------------------- test

def add_test(sub) -> None:
    p = sub.add_parser("test", help="run the policy's PAL tests (assert blocks) against the decision function",
                       epilog="examples:\n  ksm test models/smart_lock\n"
                              "  ksm test models/smart_lock --junit pal.xml --coverage")
    add_solution_args(p)
    _format(p, "text", "json")
    _output(p)
    p.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    p.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    p.add_argument("--coverage", action="store_true", help="list rules the tests never ran")


def cmd_test(args: argparse.Namespace) -> int:
    from ksm.pal import coverage, render, render_coverage, run_tests, to_json

    sol = load_ok(args)
    if sol is None:
        return EXIT_ERRORS
    with busy("running the PAL tests"):
        results = run_tests(sol)
    if args.format == "json":
        doc = to_json(results)
        if args.coverage:
            doc["coverage"] = [{"rule": e.what, "file": e.file, "line": e.line, "granted": e.granted,
                                "denied": e.denied} for e in coverage(sol, results)]
        text = json_text("test", doc)
    else:
        text = render(results, args.verbose)
        if args.coverage:
            text += "\n" + render_coverage(coverage(sol, results))
    code = write_report(text, args)
    if args.junit:
        from ksm.pal import junit_xml

        code = code or write_file(args.junit, junit_xml(results))
    return code or (EXIT_OK if all(r.passed for r in results) else EXIT_ERRORS)


# ----------------------------------------------------------------------------- decide

def add_decide(sub) -> None:
    p = sub.add_parser("decide", help="decide one event and explain the decision",
                       epilog="examples:\n"
                              "  ksm decide models/echo --event '{\"kind\": \"request\", \"src\": \"echo.Client\", "
                              "\"dst\": \"echo.Server\", \"endpoint\": \"pingComp.pingImpl\", \"method\": \"Ping\", "
                              "\"message\": {\"value\": 7}}'\n"
                              "  ksm decide models/echo --event @event.json --format json")
    add_solution_args(p)
    p.add_argument("--event", required=True, metavar="JSON",
                   help='the event as JSON, or @FILE: {"kind": "request", "src": "client", "dst": "server", '
                        '"endpoint": "e", "method": "M", "message": {}}')
    p.add_argument("--no-boot", action="store_true",
                   help="do not start the kernel, Einit and the init.yaml processes first")
    _format(p, "text", "json")
    _output(p)


def parse_event(text: str):
    """The Event a ``--event`` JSON text describes; ValueError with the reason otherwise.

    Message values are as JSON gives them (``bytes<N>`` still hex text): they are
    decoded by the method's IDL types once the solution is loaded
    (:func:`ksm.values.decode_event`, in :func:`cmd_decide`).
    """
    from ksm.events import Event
    from ksm.values import json_int

    if text.startswith("@"):
        from .common import read_argument_file

        text = read_argument_file(text[1:], ValueError)
    if len(text) > 16 * 1024 * 1024:
        raise ValueError("the event is larger than 16 MB")
    try:
        spec = json.loads(text, parse_int=json_int)
    except RecursionError:
        raise ValueError("the event nests too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(spec, dict):
        raise ValueError("the event must be a JSON object")
    # "expect": a counterexample step's expected decision; accepted (and ignored) so
    # that a step of `ksm prove --format json` can be pasted as it is.
    unknown = sorted(set(spec) - {"kind", "src", "dst", "endpoint", "method", "message", "expect"})
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(map(repr, unknown))} (fields: kind, src, dst, endpoint, "
                         "method, message)")
    kind = spec.get("kind")
    if not isinstance(kind, str):
        raise ValueError('"kind" must be one of "execute", "request", "response", "error", "security"')
    message = spec.get("message") or {}
    if not isinstance(message, dict):
        raise ValueError('"message" must be a JSON object of parameter values')
    return Event(kind, spec.get("src"), spec.get("dst"), spec.get("endpoint"),
                 spec.get("method", "main" if kind == "execute" else None), message)


def cmd_decide(args: argparse.Namespace) -> int:
    from ksm.engine import SecurityModule
    from ksm.values import decode_event, event_to_json

    try:
        event = parse_event(args.event)
    except (ValueError, TypeError) as exc:
        return usage(f"--event: {exc}")
    sol = load_ok(args)
    if sol is None:
        return EXIT_ERRORS
    module = SecurityModule(sol)
    if not args.no_boot:
        module.boot()
    # Typed by the method the event names (hex text -> bytes for bytes<N>); an event
    # naming no known method keeps its message, and decide() denies it with the reason.
    event = decode_event(sol, event, module)
    decision = module.decide(event)
    if args.format == "json":
        text = json_text("decide", {
            "event": event_to_json(event),
            "granted": decision.granted, "reason": decision.reason, "sid": decision.sid,
            "steps": [{"what": s.what, "verdict": s.verdict, "detail": s.detail,
                       "location": None if s.span is None else
                       {"file": s.span.file, "line": s.span.line, "column": s.span.column}}
                      for s in decision.steps]}, default=str)
    else:
        text = decision.explain()
    return write_report(text, args) or (EXIT_OK if decision.granted else EXIT_ERRORS)


# ----------------------------------------------------------------------------- crosscheck

def add_crosscheck(sub) -> None:
    from .common import count, positive_int

    p = sub.add_parser("crosscheck", help="differential test: the decision function against the Z3 model",
                       epilog="examples:\n  ksm crosscheck models/smart_lock\n"
                              "  ksm crosscheck models/smart_lock --events 2000 --seed 7 --format json")
    add_solution_args(p)
    p.add_argument("--events", type=positive_int, default=200, metavar="N", help="events per state (default 200)")
    p.add_argument("--seed", type=count, default=0, help="random seed (default 0)")
    p.add_argument("--walk", type=count, default=2, metavar="K",
                   help="also check in K states reached by random granted events (default 2)")
    _format(p, "text", "json")
    _output(p)


def cmd_crosscheck(args: argparse.Namespace) -> int:
    from ksm.events import jsonable
    from ksm.verify.crosscheck import crosscheck

    sol = load_ok(args)
    if sol is None:
        return EXIT_ERRORS
    with busy(f"cross-checking {args.events} events per state"):
        r = crosscheck(sol, args.events, args.seed, args.walk)
    if args.format == "json":
        text = json_text("crosscheck", {
            "events": r.events, "keys": r.keys, "states": args.walk + 1, "agreed": r.agreed,
            "not_comparable": r.skipped, "undecided": r.undecided, "budget_events": r.budget_events,
            "budget_keys": {str(k): n for k, n in r.budget_keys.items()}, "seed": args.seed,
            "disagreements": [{"event": {"kind": d.event.kind, "src": d.event.src, "dst": d.event.dst,
                                         "endpoint": d.event.endpoint, "method": d.event.method,
                                         "message": jsonable(d.event.message)},
                               "decision_function": d.engine, "z3_model": d.z3, "explanation": d.explanation}
                              for d in r.disagreements]}, default=str)
    else:
        lines = ["DISAGREE " + d.describe() for d in r.disagreements]
        undecided = f", {r.undecided} of them undecided by Z3 in time" if r.undecided else ""
        lines.append(f"{r.events} events over {r.keys} event keys and {args.walk + 1} state(s): {r.agreed} agreed, "
                     f"{len(r.disagreements)} disagreed, {r.skipped} not comparable (the encoding "
                     f"over-approximates them{undecided})")
        lines += r.skipped_lines()
        text = "\n".join(lines)
    return write_report(text, args) or (EXIT_OK if not r.disagreements else EXIT_INTERNAL)


# ----------------------------------------------------------------------------- diff

def add_diff(sub) -> None:
    p = sub.add_parser("diff", help="events one version of a policy grants and the other does not",
                       description="Compare two versions of a solution: every event the new version grants "
                                   "that the old did not (new-grant), and the reverse (revoked), with witnesses. "
                                   "Exit 0 unless --fail-on says otherwise (default: never).",
                       epilog="examples:\n  ksm diff old/ new/\n  ksm diff old/ new/ --fail-on new-grants "
                              "--format json --output diff.json")
    p.add_argument("old", help="the old solution folder or top-level .psl")
    p.add_argument("new", help="the new solution folder or top-level .psl")
    add_solution_args(p, positional=False)
    _format(p, "text", "json")
    _output(p)
    p.add_argument("--fail-on", choices=("new-grants", "any", "never"), default="never",
                   help="exit 1 when the new version grants something the old did not (new-grants), "
                        "when anything differs (any); default: never (a report, exit 0)")
    p.add_argument("--timeout", type=seconds, default=10.0, metavar="SECONDS",
                   help="Z3 time limit per question (default 10)")


def cmd_diff(args: argparse.Namespace) -> int:
    from ksm.verify.diff import diff, render_text as render_diff
    from ksm.verify.prove import ReplayMismatch

    opts: LoadOptions = options_from(args)
    with busy("loading both versions"):
        old, new = load(args.old, opts), load(args.new, opts)
    for label, sol in (("old", old), ("new", new)):
        if not sol.ok:
            print(f"ksm: the {label} version has errors:", file=sys.stderr)
            print(render_text(sol), file=sys.stderr)
            return EXIT_ERRORS
    try:
        with busy("comparing the two policies"):
            report = diff(old, new, max(1, round(args.timeout * 1000)))
    except ReplayMismatch as exc:
        print(f"ksm: BUG: the Z3 model and the decision function disagree:\n{exc}", file=sys.stderr)
        return EXIT_INTERNAL
    if args.format == "json":
        text = json_text("diff", {"old": str(args.old), "new": str(args.new),
                                  "differences": [d.to_json() for d in report.differences],
                                  "unknown": report.unknown}, default=str)
    else:
        text = render_diff(report)
    code = write_report(text, args)
    if code:
        return code
    if args.fail_on == "new-grants" and (report.count("new-grant") or report.count("added")):
        return EXIT_ERRORS
    if args.fail_on == "any" and (report.differences or report.unknown):
        return EXIT_ERRORS
    return EXIT_OK


__all__ = ["add_check", "add_crosscheck", "add_decide", "add_diff", "add_test", "cmd_check", "cmd_crosscheck",
           "cmd_decide", "cmd_diff", "cmd_test", "EXIT_USAGE"]
