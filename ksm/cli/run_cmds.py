"""``ksm simulate``, ``lint``, ``verify``, ``bench``, ``codes`` and ``completion``."""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from .common import (EXIT_ERRORS, EXIT_OK, EXIT_USAGE, add_solution_args, count, json_text, load_ok,
                     positive_int, print_diagnostics, seconds, usage, write_file, write_report)
from .progress import busy, steps


# ----------------------------------------------------------------------------- simulate

def add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="run the processes as Python code against the policy, "
                                        "or replay counterexamples",
                       epilog="examples:\n  ksm simulate models/smart_lock --taint -q\n"
                              "  ksm simulate models/smart_lock --scenario models/smart_lock/sim/untrusted.yaml\n"
                              "  ksm prove models/smart_lock_flawed --format json --output cex.json; "
                              "ksm simulate models/smart_lock_flawed --replay cex.json")
    add_solution_args(p)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--behaviours", metavar="MODULE.py",
                      help="Python behaviour classes (default: sim/behaviours.py in the solution folder)")
    what.add_argument("--scenario", metavar="FILE.yaml", help="a scripted run (docs/simulation.md)")
    what.add_argument("--replay", metavar="CEX.json",
                      help="re-enact the counterexamples in `ksm prove`/`ksm flows --format json` output")
    p.add_argument("--property", metavar="NAME", help="with --replay: only this property's traces")
    p.add_argument("--seed", type=count, default=None, help="scheduler seed (default 0, or the scenario's)")
    p.add_argument("--steps", type=positive_int, default=None, metavar="N", help="step limit (default 100000)")
    p.add_argument("--timeout", type=seconds, default=None, metavar="SECONDS",
                   help="wall-time limit of the run (also stops behaviour code that never yields)")
    p.add_argument("--trace", metavar="FILE", help="write every record as JSON lines")
    p.add_argument("--chrome", metavar="FILE", help="write a trace for Perfetto / chrome://tracing")
    p.add_argument("--taint", action="store_true",
                   help="report observed flows that a `never flow` property of the property files forbids")
    p.add_argument("--props", action="append", default=[], metavar="FILE",
                   help="with --taint: property file (default: every *.props under the solution folder)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="report format (default: text)")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")
    p.add_argument("-q", "--quiet", action="store_true", help="no timeline, only the summary")


def cmd_simulate(args: argparse.Namespace) -> int:
    from ksm.sim.codes import SimInputError
    from ksm.sim.session import run_behaviours, run_replays, run_scenario
    from ksm.sim.trace import chrome_trace, write_jsonl

    from .proof_cmds import property_files

    if args.property and not args.replay:
        return usage("--property goes with --replay")
    sol = load_ok(args)
    if sol is None:
        return EXIT_ERRORS
    props = None
    if args.taint:
        files = property_files(args, sol)
        if files is None:
            return EXIT_ERRORS
        props = [p for f in files for p in f.properties]
    try:
        with busy("simulating"):
            if args.replay:
                reports = run_replays(sol, args.replay, args.property, props)
            elif args.scenario:
                reports = [run_scenario(sol, args.scenario, args.seed, args.steps, args.timeout, props)]
            else:
                reports = [run_behaviours(sol, args.behaviours, args.seed or 0, args.steps or 100_000,
                                          args.timeout, props)]
    except SimInputError as exc:
        print_diagnostics([exc.diagnostic])
        return EXIT_ERRORS
    records = [r for rep in reports for r in rep.kernel.records]
    try:
        if args.trace:
            with open(args.trace, "w", encoding="utf-8") as fh:
                write_jsonl(records, fh)
        if args.chrome:
            Path(args.chrome).write_text(json.dumps(chrome_trace(records)), encoding="utf-8")
    except OSError as exc:
        return usage(f"cannot write {exc.filename}: {exc.strerror}")
    ok = all(r.ok for r in reports)
    if args.format == "json":
        text = json_text("simulate", {"runs": [r.to_json() for r in reports], "ok": ok}, default=str)
    else:
        text = "\n\n".join(r.render(not args.quiet) for r in reports)
    return write_report(text, args) or (EXIT_OK if ok else EXIT_ERRORS)


# ----------------------------------------------------------------------------- lint

def add_lint(sub) -> None:
    from ..lint.command import add_lint_args

    p = sub.add_parser("lint", help="lint a solution: the rule catalogue, for CI (text, JSON, SARIF, "
                                    "GitHub annotations, JUnit)",
                       epilog="examples:\n  ksm lint models/smart_lock\n"
                              "  ksm lint models/smart_lock --format sarif --output lint.sarif\n"
                              "  ksm lint --explain LNT005")
    add_solution_args(p)
    add_lint_args(p)


def cmd_lint(args: argparse.Namespace) -> int:
    from ..lint.command import cmd_lint as run

    return run(args)


# ----------------------------------------------------------------------------- verify

def add_verify(sub) -> None:
    p = sub.add_parser("verify", help="the CI job: check, lint, PAL tests, proofs and flow checks, "
                                      "one summary table and one exit code",
                       epilog="examples:\n  ksm verify models/smart_lock\n"
                              "  ksm verify models/smart_lock --sarif ksm.sarif --skip prove")
    add_solution_args(p)
    p.add_argument("--baseline", metavar="FILE", help="lint findings recorded in FILE do not fail")
    p.add_argument("--fail-on", choices=("error", "warning", "note"), default=None,
                   help="the lowest severity of a lint finding or warning that fails the lint stage "
                        "(default: error, or fail-on from ksm.toml)")
    p.add_argument("--skip", action="append", default=[], choices=("lint", "test", "prove", "flows"),
                   help="leave out a stage (repeatable)")
    p.add_argument("--timeout", type=seconds, default=10.0, metavar="SECONDS",
                   help="Z3 time limit per proof query (default 10)")
    p.add_argument("--depth", type=count, default=8, metavar="K", help="k for k-induction and the BMC bound (default 8)")
    p.add_argument("--sarif", metavar="FILE", help="also write the lint findings and proof results as SARIF")
    p.add_argument("--format", choices=("text", "json"), default="text", help="report format (default: text)")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colour in text output")
    p.add_argument("--show", type=count, default=10, metavar="N",
                   help="problems shown per failed stage (default 10; 0: only the table)")


def cmd_verify(args: argparse.Namespace) -> int:
    from ..lint.command import lint_setup, use_color
    from ..pipeline import STAGES, VerifyOptions, render_json as verify_json, render_table, verify, write_sarif
    from .common import options_from

    setup = lint_setup(args.solution, args.config, baseline=args.baseline, fail_on=args.fail_on,
                       no_config=args.no_config)
    if isinstance(setup, int):
        return setup
    config, baseline = setup
    options = VerifyOptions(options_from(args), config, baseline, max(1, round(args.timeout * 1000)), args.depth,
                            frozenset(args.skip), show=args.show, command_line=_rerun_options(args))
    with steps("verifying", len(STAGES)) as advance:
        report = verify(args.solution, options, on_stage=advance)
    if args.format == "json":
        text = json_text("verify", verify_json(report))
    else:
        text = render_table(report, color=not args.output and use_color(args.color))
    code = write_report(text, args)
    if args.sarif:
        try:
            write_sarif(report, Path(args.sarif))
        except OSError as exc:
            return usage(f"cannot write {args.sarif}: {exc.strerror}")
    return code or report.exit_code


def _rerun_options(args: argparse.Namespace) -> str:
    """The loading options as typed, so "run `ksm lint ...` for the rest" loads the same solution."""
    import shlex

    parts = []
    if args.init:
        parts += ["--init", args.init]
    for d in args.include:
        parts += ["-I", d]
    for s in args.sdk:
        parts += ["--sdk", s]
    for name, value in args.define:
        parts += ["-D", f"{name}={value}"]
    if args.config:
        parts += ["--config", args.config]
    return " ".join(shlex.quote(p) for p in parts)


# ----------------------------------------------------------------------------- bench

BENCHES = {
    "load": "parse + resolve a generated policy",
    "decide": "the decision function on allowlists",
    "compare": "decide next to cedarpy and pycasbin (pip install '.[bench]')",
    "prove": "per-property proof times on the examples and generated solutions",
    "flows": "channel-graph labelling and flow checks on generated solutions (12 classes; 100 and 1,000 distinct)",
    "simulate": "IPC round trips per second in the simulator",
    "lint": "the linter on a generated 10,000-line policy",
    "kernel": "the kernel access table, its lint rules and kernel decisions on generated solutions",
    "fuzz": "differential testing on --seeds random solutions: decision function vs Z3 model, "
            "PROVED confirmed by probes, counterexamples replayed (a failure exits 1)",
}


def add_bench(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark and print figures with their same-run baseline",
                       epilog="benchmarks:\n" + "\n".join(f"  {k:<9} {v}" for k, v in BENCHES.items())
                              + "\n\nexamples:\n  ksm bench decide\n  ksm bench lint --lines 20000 --format json")
    p.add_argument("what", choices=tuple(BENCHES), help="which benchmark (listed below)")
    p.add_argument("--lines", type=positive_int, help="size of the generated policy (load: 100,000; lint: 10,000)")
    p.add_argument("--repeat", type=positive_int, default=3, help="repetitions; the median is reported (default 3)")
    p.add_argument("--bindings", type=positive_int, default=100_000, help="decide: size of the large allowlist")
    p.add_argument("--classes", type=positive_int, metavar="N",
                   help="flows: also label a solution of N distinct classes (besides 100 and 1,000)")
    p.add_argument("--seeds", type=positive_int, default=50, metavar="N",
                   help="fuzz: how many generated solutions (seeds 0..N-1; default 50)")
    p.add_argument("--first-seed", type=count, default=0, metavar="S", help="fuzz: the first seed (default 0)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="report format (default: text)")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")


def _run_bench(args: argparse.Namespace):
    """The benchmark's result object (it has ``report()``; most are dataclasses)."""
    from ksm import bench

    if args.what == "decide":
        return bench.bench_decide(large=args.bindings)
    if args.what == "prove":
        return bench.bench_prove()
    if args.what == "flows":
        return bench.bench_flows(distinct=tuple(sorted({100, 1000} | ({args.classes} if args.classes else set()))))
    if args.what == "compare":
        return bench.bench_decide_vs_others()
    if args.what == "simulate":
        from ksm.sim.bench import bench_simulate

        return bench_simulate(repeat=args.repeat)
    if args.what == "lint":
        from ksm.lint.bench import bench_lint

        return bench_lint(args.lines, args.repeat)
    if args.what == "kernel":
        from ksm.kernel_bench import bench_kernel

        return bench_kernel()
    if args.what == "fuzz":
        from ksm.fuzz import run_fuzz

        with steps("fuzzing", args.seeds) as advance:
            return run_fuzz(range(args.first_seed, args.first_seed + args.seeds),
                            progress=lambda r: advance(f"seed {r.seed}"))
    return bench.bench_load(args.lines, args.repeat)


def _plain(value):
    """A benchmark result as JSON values (``dataclasses.asdict`` would rebuild a Counter
    from its (key, count) pairs, making tuples of its keys)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.lines is None:
        args.lines = 10_000 if args.what == "lint" else 100_000
    if args.lines < 100 or args.bindings < 20:
        return usage("--lines must be >= 100 and --bindings >= 20")
    if args.what == "fuzz":
        result = _run_bench(args)
    else:
        with busy(f"benchmark: {args.what}"):
            result = _run_bench(args)
    if args.format == "json":
        figures = _plain(result) if dataclasses.is_dataclass(result) else {}
        text = json_text("bench", {"benchmark": args.what, "figures": figures, "report": result.report()},
                         default=str)
    else:
        text = result.report()
    failed = args.what == "fuzz" and not getattr(result, "ok", True)
    return write_report(text, args) or (EXIT_ERRORS if failed else EXIT_OK)


# ----------------------------------------------------------------------------- codes, completion

def add_codes(sub) -> None:
    p = sub.add_parser("codes", help="list every diagnostic code",
                       epilog="examples:\n  ksm codes\n  ksm codes --format json")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text", help="list format (default: text)")
    p.add_argument("--output", metavar="FILE", help="write the list to FILE instead of standard output")


def catalogue() -> dict:
    """Every diagnostic code: the front end's, the simulator's input codes and the linter's."""
    import importlib

    from policy_lang.diagnostics import catalogue as front_end

    importlib.import_module("ksm.sim.codes")      # defines the SIM codes
    importlib.import_module("ksm.lint.config")    # CFG codes
    importlib.import_module("ksm.lint.baseline")  # BAS codes
    from ksm.lint import all_rules

    all_rules()                                   # LNT codes
    return front_end()


def codes_markdown() -> str:
    """The table in docs/diagnostics.md (a test keeps the two equal)."""
    rows = ["| code | severity | meaning | hint |", "|---|---|---|---|"]
    for info in catalogue().values():
        hint = info.hint.replace("|", "\\|")
        rows.append(f"| `{info.code}` | {info.severity.value} | {info.title} | {hint} |")
    return "\n".join(rows)


def cmd_codes(args: argparse.Namespace) -> int:
    if args.format == "markdown":
        text = codes_markdown()
    elif args.format == "json":
        text = json_text("codes", {"codes": [{"code": i.code, "severity": i.severity.value, "title": i.title,
                                              "hint": i.hint} for i in catalogue().values()]})
    else:
        text = "\n".join(f"{i.code}  {i.severity.value:<7}  {i.title}" for i in catalogue().values())
    return write_report(text, args)


def add_completion(sub) -> None:
    p = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)",
                       epilog='examples:\n  eval "$(ksm completion bash)"\n'
                              "  ksm completion fish > ~/.config/fish/completions/ksm.fish")
    p.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell to complete for")


def cmd_completion(args: argparse.Namespace) -> int:
    from ..completion import completion_script
    from . import build_parser

    print(completion_script(build_parser(), args.shell))
    return EXIT_OK


__all__ = ["EXIT_USAGE", "write_file"]
