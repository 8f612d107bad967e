"""The PAL runner (`ksm test`) and `ksm decide`, on the examples and on purpose-written failures."""
import json
from pathlib import Path

from conftest import read_defines
from ksm.cli import main
from ksm.pal import render, run_tests
from policy_lang import LoadOptions, load

ROOT = Path(__file__).resolve().parent.parent


def test_every_example_pal_test_passes(model_dir):
    sol = load(model_dir, LoadOptions(defines=read_defines(model_dir)))
    results = run_tests(sol)
    assert results and all(r.passed for r in results), render(results)


def test_malformed_cases_are_denied_by_the_structure_check():
    results = run_tests(load(ROOT / "models" / "echo"))
    malformed = [c for r in results for c in r.cases if c.case.name and c.case.name.startswith("malformed")]
    assert len(malformed) == 2
    assert all(c.passed and "malformed message" in c.decision.reason for c in malformed)


def _solution(tmp_path, tests: str):
    src = ROOT / "models" / "echo"
    text = (src / "einit" / "src" / "security.psl").read_text()
    text = text[: text.index('assert "echo policy"')] + tests
    for f in src.rglob("*"):
        if f.is_file():
            dst = tmp_path / f.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(f.read_bytes())
    (tmp_path / "einit" / "src" / "security.psl").write_text(text)
    return load(tmp_path)


SETUP = """setup {
        core   <- execute dst=kl.core.Core
        einit  <- execute src=core dst=Einit
        client <- execute src=einit dst=echo.Client
        server <- execute src=einit dst=echo.Server
    }"""


def test_failing_case_is_reported_with_line_and_explanation(tmp_path):
    sol = _solution(tmp_path, f'assert "t" {{\n    {SETUP}\n    sequence "s" {{\n'
                              '        grant request src=client dst=server endpoint=pingComp.pingImpl method=Ping { value : 5000 }\n'
                              '    }\n}\n')
    results = run_tests(sol)
    assert len(results) == 1 and not results[0].passed
    failed = [c for c in results[0].cases if not c.passed]
    assert len(failed) == 1 and failed[0].problem == "expected grant, got deny"
    out = render(results)
    assert "FAIL t / s" in out and "security.psl:" in out and "base.assert" in out and "0 passed, 1 failed" in out


def test_sequences_start_from_fresh_state_and_unbound_variables_fail(tmp_path):
    sol = _solution(tmp_path, f'assert "t" {{\n    {SETUP}\n'
                              '    sequence "a" { ghost <- any execute src=client dst=echo.Server\n'
                              '                   any request src=ghost dst=server endpoint=pingComp.pingImpl method=Ping {} }\n'
                              '    sequence "b" { grant request src=client dst=server endpoint=pingComp.pingImpl method=Ping {} }\n'
                              '}\n')
    a, b = run_tests(sol)
    assert not a.passed and "no process variable ghost" in a.cases[-1].problem   # `any` still needs a runnable case
    assert b.passed                                                               # defaults fill `value : 0`


def test_ksm_test_exit_codes(tmp_path, capsys):
    assert main(["test", str(ROOT / "models" / "echo")]) == 0
    assert "2 passed, 0 failed" in capsys.readouterr().out
    _solution(tmp_path, f'assert "t" {{\n    {SETUP}\n    sequence "s" {{ deny execute src=einit dst=echo.Client }}\n}}\n')
    assert main(["test", str(tmp_path)]) == 1


def test_ksm_decide_explains(capsys):
    event = {"kind": "request", "src": "echo.Client", "dst": "echo.Server", "endpoint": "pingComp.pingImpl",
             "method": "Ping", "message": {"value": 7}}
    assert main(["decide", str(ROOT / "models" / "echo"), "--event", json.dumps(event)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("GRANTED") and "base.assert" in out
    event["message"] = {"value": 7000}
    assert main(["decide", str(ROOT / "models" / "echo"), "--event", json.dumps(event)]) == 1
    assert capsys.readouterr().out.startswith("DENIED")
    assert main(["decide", str(ROOT / "models" / "echo"), "--event", "[1"]) == 2


def test_coverage_counts_granting_and_denying_runs_and_lists_unrun_rules(tmp_path):
    from ksm.pal import coverage, render_coverage

    sol = _solution(tmp_path, f'assert "t" {{\n    {SETUP}\n    sequence "s" {{\n'
                              '        grant request src=client dst=server endpoint=pingComp.pingImpl method=Ping { value : 5 }\n'
                              '        deny  request src=client dst=server endpoint=pingComp.pingImpl method=Ping { value : 5000 }\n'
                              '    }\n}\n')
    entries = coverage(sol, run_tests(sol))
    by_line = {(e.what, e.line): e for e in entries}
    asserted = [e for (what, _), e in by_line.items() if what == "base.assert"]
    assert len(asserted) == 1 and asserted[0].granted == 1 and asserted[0].denied == 1
    unrun = [e for e in entries if not e.granted and not e.denied]
    assert unrun   # e.g. the response binding: no case sends a response
    text = render_coverage(entries)
    assert text.startswith(f"rule coverage: {len(entries) - len(unrun)}/{len(entries)}") and "never run" in text


def test_junit_report(tmp_path, capsys):
    import xml.etree.ElementTree as ET

    _solution(tmp_path / "sol", f'assert "t" {{\n    {SETUP}\n    sequence "ok" {{ grant execute src=einit dst=echo.Client }}\n'
                                '    sequence "bad" { deny execute src=einit dst=echo.Client }\n}\n')
    report = tmp_path / "junit.xml"
    assert main(["test", str(tmp_path / "sol"), "--junit", str(report)]) == 1
    suite = ET.parse(report).getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["ok"].find("failure") is None
    failure = cases["bad"].find("failure")
    assert failure is not None and "expected deny, got grant" in failure.get("message")
