"""The PAL test runner: the policy's own ``assert`` blocks, run against the decision function.

Each test is one ``sequence`` of a block, run against a fresh security module:
the block's ``setup`` cases, then the sequence's cases, then the block's ``finally``
cases, in textual order (the documentation says every KSM change is rolled back
after each test, so sequences never see each other's state).

A case passes when the actual decision equals the expectation (``grant`` when none
is written); ``any`` accepts either decision but still fails when the case cannot
be run at all (an unbound process variable).  ``v <- execute dst=Class`` binds
``v`` to the SID of the started process.  Parameters a case leaves out take
default values (zero, empty text, empty sequence), as the documentation's examples
show.  All cases of a sequence run even after a failure, so one run reports all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policy_lang.solution import KERNEL_CLASS, Solution, TestCaseDef, message_params

from .engine import Options, SecurityModule
from .events import Decision, Event
from .structure import with_defaults


@dataclass
class CaseResult:
    case: TestCaseDef
    passed: bool
    decision: Decision | None
    problem: str = ""

    def describe(self) -> str:
        c = self.case
        name = f' "{c.name}"' if c.name else ""
        sels = " ".join(f"{k}={v}" for k, v in c.selectors.items())
        return f"{c.expect}{name} {c.event} {sels}".strip()


@dataclass
class TestResult:
    block: str
    sequence: str
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases)

    @property
    def name(self) -> str:
        return f"{self.block} / {self.sequence}"


def run_tests(solution: Solution, options: Options | None = None) -> list[TestResult]:
    """Run every PAL test of the solution (see the module docstring)."""
    results = []
    module = SecurityModule(solution, options)
    for block in solution.tests:
        for seq in block.sequences:
            module.reset()
            result = TestResult(block.name, seq.name)
            env: dict[str, int] = {}
            for case in (*block.setup, *seq.cases, *block.finally_):
                result.cases.append(_run_case(module, solution, case, env))
            results.append(result)
    return results


def _run_case(module: SecurityModule, solution: Solution, case: TestCaseDef, env: dict[str, int]) -> CaseResult:
    try:
        event = _event(module, solution, case, env)
    except _CannotRun as exc:
        return CaseResult(case, False, None, str(exc))
    decision = module.decide(event)
    if case.var is not None and decision.granted and decision.sid is not None:
        env[case.var] = decision.sid
    if case.expect == "any":
        return CaseResult(case, True, decision)
    expected = case.expect == "grant"
    if decision.granted == expected:
        return CaseResult(case, True, decision)
    return CaseResult(case, False, decision, f"expected {case.expect}, got {'grant' if decision.granted else 'deny'}")


class _CannotRun(Exception):
    pass


def _sid(env: dict[str, int], name: str, role: str) -> int:
    if name not in env:
        raise _CannotRun(f"{role}={name}: no process variable {name} is bound")
    return env[name]


def _event(module: SecurityModule, solution: Solution, case: TestCaseDef, env: dict[str, int]) -> Event:
    sels = case.selectors
    if case.event == "execute":
        dst = sels.get("dst")
        if dst is None:
            raise _CannotRun("execute case without dst=Class")
        src = sels.get("src")
        src_ref: Any = None if src is None else (env[src] if src in env else src)
        if src_ref is None and dst != KERNEL_CLASS:
            if not module.is_running(KERNEL_CLASS):
                # The SDK's runner executes tests in a security module that already knows
                # the kernel: `execute dst=X` with no initiator is a start by the kernel
                # even when the test never wrote `core <- execute dst=kl.core.Core`.
                module.decide(Event.execute(KERNEL_CLASS))
            if module.is_running(KERNEL_CLASS):
                src_ref = KERNEL_CLASS
        return Event.execute(dst, src=src_ref)
    src = _sid(env, sels.get("src", ""), "src") if "src" in sels else None
    if src is None:
        raise _CannotRun(f"{case.event} case without src=")
    method = sels.get("method")
    if case.event == "security":
        params = _security_params(module, src, method)
        return Event.security(src, method, _message(case, params))
    dst = _sid(env, sels.get("dst", ""), "dst") if "dst" in sels else None
    if dst is None:
        raise _CannotRun(f"{case.event} case without dst=")
    endpoint = sels.get("endpoint")
    server = dst if case.event == "request" else src
    params = _ipc_params(module, server, endpoint, method, case.event)
    return Event(case.event, src, dst, endpoint, method, _message(case, params))


def _message(case: TestCaseDef, params) -> dict:
    given = case.message if isinstance(case.message, dict) else {}
    return with_defaults(params, given) if params is not None else dict(given)


def _ipc_params(module: SecurityModule, server_sid: int, endpoint, method, event: str):
    proc = module.processes.get(server_sid)
    cls = module.solution.classes.get(proc.cls) if proc else None
    ep = cls.endpoint(endpoint) if cls and isinstance(endpoint, str) else None
    if ep is None:
        return None
    for m in ep.interface.methods:
        if m.name == method:
            return message_params(m, event)
    return None


def _security_params(module: SecurityModule, src_sid: int, method):
    proc = module.processes.get(src_sid)
    cls = module.solution.classes.get(proc.cls) if proc else None
    iface = cls.security if cls else None
    if iface is None:
        return None
    for m in iface.methods:
        if m.name == method:
            return m.in_params
    return None


def render(results: list[TestResult], verbose: bool = False) -> str:
    lines = []
    for r in results:
        status = "PASS" if r.passed else "FAIL"
        lines.append(f"{status} {r.name} ({sum(c.passed for c in r.cases)}/{len(r.cases)} cases)")
        for c in r.cases:
            if c.passed and not verbose:
                continue
            span = c.case.span
            mark = "ok  " if c.passed else "FAIL"
            lines.append(f"  {mark} {span.file}:{span.line}: {c.describe()}" + (f" — {c.problem}" if c.problem else ""))
            if not c.passed and c.decision is not None:
                lines.extend("      " + ln for ln in c.decision.explain().splitlines())
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)


def to_json(results: list[TestResult]) -> dict:
    """Every test with every case and its outcome (``ksm test --format json``)."""
    tests = []
    for r in results:
        cases = []
        for c in r.cases:
            span = c.case.span
            cases.append({"case": c.describe(), "passed": c.passed, "problem": c.problem,
                          "decision": None if c.decision is None else ("grant" if c.decision.granted else "deny"),
                          "reason": None if c.decision is None else c.decision.reason,
                          "location": span.to_json()})
        tests.append({"block": r.block, "sequence": r.sequence, "passed": r.passed, "cases": cases})
    all_cases = [c for r in results for c in r.cases]
    return {"tests": tests, "summary": {"tests": len(results), "failed": sum(not r.passed for r in results),
                                        "cases": len(all_cases), "cases_passed": sum(c.passed for c in all_cases)}}


# ------------------------------------------------------------------ coverage and JUnit
@dataclass
class RuleCoverage:
    """How the tests exercised one rule call of the policy."""

    what: str
    file: str
    line: int
    granted: int = 0
    denied: int = 0


def coverage(solution: Solution, results: list[TestResult]) -> list[RuleCoverage]:
    """Every rule call in the policy with how often the tests saw it grant and deny."""
    from policy_lang.solution import CallDef, ChoiceDef, MatchDef

    table: dict[tuple, RuleCoverage] = {}

    def walk(body):
        for st in body:
            if isinstance(st, CallDef) and st.kind == "rule":
                key = (st.span.file, st.span.line, st.span.column)
                table.setdefault(key, RuleCoverage(f"{st.object}.{st.method}", st.span.file, st.span.line))
            elif isinstance(st, MatchDef):
                walk(st.body)
            elif isinstance(st, ChoiceDef):
                for arm in st.arms:
                    walk(arm.body)

    for b in solution.bindings:
        walk(b.body)
    for r in results:
        for c in r.cases:
            for step in (c.decision.steps if c.decision is not None else ()):
                if step.span is None or step.verdict not in ("granted", "denied", "error"):
                    continue
                entry = table.get((step.span.file, step.span.line, step.span.column))
                if entry is not None:
                    if step.verdict == "granted":
                        entry.granted += 1
                    else:
                        entry.denied += 1
    return sorted(table.values(), key=lambda e: (e.file, e.line))


def render_coverage(entries: list[RuleCoverage]) -> str:
    both = sum(1 for e in entries if e.granted and e.denied)
    some = sum(1 for e in entries if e.granted or e.denied)
    lines = [f"rule coverage: {some}/{len(entries)} rules exercised, {both} both granting and denying"]
    for e in entries:
        if not e.granted and not e.denied:
            lines.append(f"  never run      {e.file}:{e.line}: {e.what}")
    return "\n".join(lines)


def junit_xml(results: list[TestResult]) -> str:
    """JUnit XML (one testcase per sequence) for CI test reports."""
    import xml.etree.ElementTree as ET

    failures = sum(not r.passed for r in results)
    suite = ET.Element("testsuite", name="ksm test", tests=str(len(results)), failures=str(failures), errors="0")
    for r in results:
        tc = ET.SubElement(suite, "testcase", classname=r.block, name=r.sequence)
        bad = [c for c in r.cases if not c.passed]
        if bad:
            first = bad[0]
            fail = ET.SubElement(tc, "failure", message=f"{first.describe()}: {first.problem}")
            fail.text = "\n\n".join(
                f"{c.case.span.file}:{c.case.span.line}: {c.describe()} — {c.problem}"
                + (f"\n{c.decision.explain()}" if c.decision is not None else "")
                for c in bad
            )
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
