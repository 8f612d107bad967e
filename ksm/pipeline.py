"""``ksm verify``: the whole CI job on one solution, one summary table, one exit code.

Stages run in order: check (parse and resolve), lint, the PAL tests, the proofs of
the ``*.props`` files, and their ``never flow`` properties on the channel graph.
When the check finds errors the later stages are skipped (they need a solution
without errors).  Each stage is the same code its own command runs (``ksm check``,
``ksm lint``, ``ksm test``, ``ksm prove``, ``ksm flows``), so verify never says
something those commands would not.

Exit code: 3 when a stage hit a bug in ksm, else 1 when a stage failed, else 0.  The
lint stage fails on errors only, unless the configuration chose ``fail-on`` itself:
a real solution checked without its SDK carries notes and warnings about what the
SDK supplies, and those must not fail a CI gate by default.
"""
from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Callable

from rich import box
from rich.console import Console
from rich.table import Table

from policy_lang import LoadOptions, Severity, Solution, load

PASSED, FAILED, SKIPPED, CRASHED = "passed", "FAILED", "skipped", "BUG"
STAGES = ("check", "lint", "test", "prove", "flows")


@dataclass
class Stage:
    name: str
    status: str
    detail: str
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)   # what failed, at most ``VerifyOptions.show``
    more: int = 0                                       # problems left out of ``problems``
    rerun: str = ""                                     # the command that shows them all


@dataclass
class VerifyReport:
    solution: str
    stages: list[Stage] = field(default_factory=list)
    lint_result: object = None          # ksm.lint.LintResult, for --sarif
    proofs: list = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if any(s.status == CRASHED for s in self.stages):
            return 3
        return 1 if any(s.status == FAILED for s in self.stages) else 0

    def to_json(self) -> dict:
        return {"solution": self.solution, "exit_code": self.exit_code,
                "stages": [{"name": s.name, "status": s.status.lower(), "detail": s.detail,
                            "seconds": round(s.seconds, 3), "problems": s.problems, "more": s.more,
                            "rerun": s.rerun} for s in self.stages]}


@dataclass(frozen=True)
class VerifyOptions:
    load: LoadOptions = field(default_factory=LoadOptions)
    lint_config: object = None          # ksm.lint.LintConfig
    baseline: object = None             # ksm.lint.baseline.Baseline
    prove_timeout_ms: int = 10_000
    prove_depth: int = 8
    skip: frozenset[str] = frozenset()
    show: int = 10                      # problems listed per failed stage
    command_line: str = ""              # loading options, repeated in the "run ... for the rest" hint


#: What each stage's own command is, for the "run ... for all of them" hint.
_RERUN = {"check": "ksm check", "lint": "ksm lint", "test": "ksm test", "prove": "ksm prove", "flows": "ksm flows"}


def _timed(report: VerifyReport, name: str, run: Callable[[], tuple[str, str]], options: VerifyOptions,
           problems: Callable[[], list[str]]) -> str:
    """Run one stage; a failed stage also records what failed (bounded), so the CI log
    says why without a second run, and names the command that shows everything."""
    start = time.perf_counter()
    try:
        status, detail = run()
    except Exception as exc:  # a bug in ksm: the table says so, the other stages still run
        status, detail = CRASHED, f"internal error: {type(exc).__name__}: {exc}"
    stage = Stage(name, status, detail, time.perf_counter() - start)
    if status == FAILED:
        try:
            found = problems()
        except Exception as exc:  # listing must never cost the verdict
            found = [f"(could not list the problems: {type(exc).__name__}: {exc})"]
        stage.problems, stage.more = found[:options.show], max(0, len(found) - options.show)
        extra = f" {options.command_line}" if options.command_line else ""
        stage.rerun = f"{_RERUN[name]} {report.solution}{extra}"
    report.stages.append(stage)
    return status


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def verify(target: str | Path, options: VerifyOptions | None = None,
           on_stage: Callable[[str], None] | None = None) -> VerifyReport:
    """Run every stage on the solution at ``target``; never raises for problems in the user's files.

    ``on_stage`` is told each stage's name when it is over (the CLI's progress bar)."""
    options = options or VerifyOptions()
    on_stage = on_stage or (lambda _name: None)
    report = VerifyReport(str(target))
    holder: dict[str, Solution] = {}

    def check() -> tuple[str, str]:
        sol = holder["sol"] = load(target, options.load)
        errors = sum(d.severity.value == "error" for d in sol.diagnostics)
        warnings = sum(d.severity.value == "warning" for d in sol.diagnostics)
        s = sol.summary()
        detail = (f"{_plural(s['classes'], 'class', 'classes')}, "
                  f"{_plural(s['instances'], 'instance')}, {_plural(s['bindings'], 'binding')}; "
                  f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}")
        return (PASSED if sol.ok else FAILED), detail

    _timed(report, "check", check, options, lambda: _diagnostic_lines(
        d for d in holder["sol"].diagnostics if d.severity is Severity.ERROR))
    on_stage("check")
    sol = holder.get("sol")
    ok = sol is not None and sol.ok
    inputs = _ProofInputs(sol, options)
    tests: list = []
    stages: dict[str, tuple[Callable[[], tuple[str, str]], Callable[[], list[str]]]] = {
        "lint": (lambda: _lint(sol, options, report), lambda: _diagnostic_lines(report.lint_result.failing())),
        "test": (lambda: _tests(sol, tests), lambda: _failed_cases(tests)),
        "prove": (lambda: _proofs(inputs, report, flows=False), lambda: _failed_proofs(inputs, report, False)),
        "flows": (lambda: _proofs(inputs, report, flows=True), lambda: _failed_proofs(inputs, report, True)),
    }
    for name, (run, problems) in stages.items():
        if name in options.skip:
            report.stages.append(Stage(name, SKIPPED, "--skip"))
        elif not ok:
            report.stages.append(Stage(name, SKIPPED, "the solution has errors"))
        else:
            _timed(report, name, run, options, problems)
        on_stage(name)
    return report


def _diagnostic_lines(diags) -> list[str]:
    return [d.render() for d in diags]


def _failed_cases(tests: list) -> list[str]:
    out = []
    for t in tests:
        for c in t.cases:
            if not c.passed:
                why = c.problem or (c.decision.reason if c.decision is not None else "")
                out.append(f"{c.case.span.file}:{c.case.span.line}: {t.name}: {c.describe()}"
                           + (f" -- {why}" if why else ""))
    return out


def _failed_proofs(inputs: "_ProofInputs", report: VerifyReport, flows: bool) -> list[str]:
    from .verify.prove import PROVED
    from .verify.report import render_text as render_proofs

    bad = [d for f in inputs.files for d in f.diagnostics if d.severity is Severity.ERROR]
    if bad:
        return _diagnostic_lines(bad)
    out = []
    for r in report.proofs:
        kind = getattr(r, "kind", None) or getattr(r.prop, "kind", None)
        if r.status != PROVED and (kind == "never_flow") == flows:
            block = render_proofs([r]).splitlines()[:-1]          # its block, without the count line
            if len(block) > 15:
                block = block[:14] + [f"         ... {len(block) - 14} more lines"]
            out.append("\n".join(block))
    return out


def _lint(sol: Solution, options: VerifyOptions, report: VerifyReport) -> tuple[str, str]:
    from .lint import LintConfig, lint
    from .lint.report import summary

    config = options.lint_config or LintConfig()
    if not config.fail_on_given:  # warnings are shown; they fail verify only when asked to
        config = replace(config, fail_on=Severity.ERROR)
    result = lint(sol, config, options.baseline)
    report.lint_result = result
    if result.crashed:
        return CRASHED, summary(result)
    return (FAILED if result.failing() else PASSED), summary(result)


def _tests(sol: Solution, keep: list) -> tuple[str, str]:
    from .pal import run_tests

    results = run_tests(sol)
    keep += results
    if not results:
        return SKIPPED, "the policy has no PAL tests"
    cases = sum(len(r.cases) for r in results)
    failed = [r.name for r in results if not r.passed]
    detail = f"{_plural(len(results), 'test sequence')} ({_plural(cases, 'case')})"
    if failed:
        return FAILED, f"{detail}; failed: {', '.join(failed)}"
    return PASSED, f"{detail}, all passed"


class _ProofInputs:
    """The property files and the prover, made once and shared by the prove and flows stages
    (building a prover boots the solution; loading the files parses them)."""

    def __init__(self, sol: Solution, options: VerifyOptions):
        self.sol, self.options = sol, options

    @cached_property
    def files(self) -> list:
        from policy_lang.props import find_property_files, load_properties

        return [load_properties(self.sol, p, dict(self.options.load.defines)) for p in find_property_files(self.sol)]

    @cached_property
    def prover(self):
        from .verify.prove import ProveOptions, Prover

        return Prover(self.sol, ProveOptions(timeout_ms=self.options.prove_timeout_ms, depth=self.options.prove_depth))


def _proofs(inputs: _ProofInputs, report: VerifyReport, flows: bool) -> tuple[str, str]:
    from .verify.prove import PROVED

    files = inputs.files
    bad = [d for f in files for d in f.diagnostics if d.severity.value == "error"]
    if bad:
        first = bad[0]
        return FAILED, f"{_plural(len(bad), 'error')} in property files (first: {first.span}: {first.message})"
    props = [p for f in files for p in f.properties if (p.kind == "never_flow") == flows]
    if not props:
        return SKIPPED, "no `never flow` properties" if flows else "no properties (no *.props file)"
    if flows:
        from .flows import FlowChecker
        from .flows.graph import channel_graph

        checker = FlowChecker(channel_graph(inputs.prover, files))
        results = [checker.check(p) for p in props]
    else:
        results = inputs.prover.prove_all(props)
    report.proofs += results
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    detail = ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))
    not_proved = [r.name for r in results if r.status != PROVED]
    if not_proved:
        return FAILED, f"{detail}: {', '.join(not_proved[:3])}{', ...' if len(not_proved) > 3 else ''}"
    return PASSED, detail


_STYLE = {PASSED: "green", FAILED: "bold red", SKIPPED: "dim", CRASHED: "bold magenta"}


def render_table(report: VerifyReport, color: bool = False, width: int = 110) -> str:
    """The summary table (plain when ``color`` is False, so tests and logs can compare it)."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("stage")
    table.add_column("result")
    table.add_column("time", justify="right")
    table.add_column("details", overflow="fold")
    for s in report.stages:
        result = f"[{_STYLE[s.status]}]{s.status}[/]" if color else s.status
        table.add_row(s.name, result, f"{s.seconds:.1f} s" if s.status != SKIPPED else "", s.detail)
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=color, no_color=not color, highlight=False,
                      emoji=False, markup=True)
    console.print(table)
    verdict = {0: "OK", 1: "FAILED", 3: "BUG IN KSM"}[report.exit_code]
    lines = [line.rstrip() for line in buf.getvalue().splitlines()]
    for s in report.stages:
        if s.status != FAILED or not (s.problems or s.more):
            continue
        lines += ["", f"{s.name}: what failed"]
        lines += ["  " + line for p in s.problems for line in p.splitlines()]
        if s.more:
            lines.append(f"  ... and {s.more} more: run `{s.rerun}`")
        elif s.rerun:
            lines.append(f"  (details: `{s.rerun}`)")
    return "\n".join(lines + [f"verify {report.solution}: {verdict}"])


def render_json(report: VerifyReport) -> str:
    return json.dumps(report.to_json(), indent=2)


def write_sarif(report: VerifyReport, path: Path) -> None:
    """One SARIF log with a run per tool part: the linter's findings, then the proofs."""
    from . import __version__
    from .lint.report import sarif_log
    from .verify.report import render_sarif

    runs = []
    if report.lint_result is not None:
        log = sarif_log(report.lint_result)
        runs += log["runs"]
    if report.proofs:
        runs += json.loads(render_sarif(report.proofs, __version__))["runs"]
    log = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": runs}
    path.write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
