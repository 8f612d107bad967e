"""Lint reports: one :class:`~ksm.lint.runner.LintResult`, five audiences.

* ``text``: people at a terminal (excerpts with carets, optional colour);
* ``json``: scripts (every finding, suppressed and baselined ones too, with fingerprints);
* ``sarif``: code-scanning services (SARIF 2.1.0, valid against the OASIS schema);
* ``github``: GitHub Actions workflow commands, which annotate the pull request;
* ``junit``: CI test dashboards (one test case per rule).

Why one module renders them all: the formats must agree on what a finding is (its
rule, severity, location and fingerprint), so each format is a small function over
the same helpers.  Nothing here decides anything; the runner has already applied the
configuration, suppressions and baseline.
"""
from __future__ import annotations

import io
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote

from policy_lang.diagnostics import CodeInfo, Diagnostic, Severity, Span, code_info
from policy_lang.solution import Suppression

from .. import __version__
from ..excerpt import excerpt_parts
from .catalogue import Rule, all_rules
from .fingerprint import fingerprint, relative_file
from .runner import LintResult

FORMATS = ("text", "json", "sarif", "github", "junit")

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_FINGERPRINT = "ksmFindingHash/v1"
SKIPPED_REASON = "the linter rules were skipped because the solution has errors"

_ORDER = (Severity.ERROR, Severity.WARNING, Severity.NOTE)


def render(result: LintResult, fmt: str, *, color: bool = False, excerpts: bool = True) -> str:
    """The report of ``result`` in ``fmt`` (one of :data:`FORMATS`), without a final newline.

    ``color`` and ``excerpts`` only affect ``text``: the other formats are read by
    programs, which want neither escape codes nor quoted source.
    """
    if fmt == "text":
        return render_text(result, color=color, excerpts=excerpts)
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise ValueError(f"unknown lint report format {fmt!r} (expected one of {', '.join(FORMATS)})")
    return renderer(result)


# --- shared helpers ---------------------------------------------------------------------

def _info(code: str, fallback: Severity = Severity.WARNING) -> CodeInfo:
    """The code's registered metadata; a stand-in for a code nobody registered.

    ``Diagnostic`` objects can be built without :func:`define_code` (tests, plugins);
    a report must still render them rather than fail on a KeyError.
    """
    try:
        return code_info(code)
    except KeyError:
        return CodeInfo(code, fallback, code, "")


def _label(code: str, rules: dict[str, Rule]) -> str:
    """A short human name for the code: the rule's slug, else the code's title."""
    rule = rules.get(code)
    if rule is not None:
        return rule.name
    title = _info(code).title
    return "" if title == code else title


def _root(result: LintResult) -> str:
    return str(result.solution.root)


def _baseline_used(result: LintResult) -> bool:
    """Whether findings were compared to a baseline (then each one is new or known)."""
    return result.baseline_used or bool(result.baselined)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _severity_counts(diags: Iterable[Diagnostic]) -> str:
    """``1 error, 2 warnings``: the non-zero severities, most severe first."""
    counts = {s: 0 for s in _ORDER}
    for d in diags:
        counts[d.severity] += 1
    return ", ".join(_plural(n, s.value) for s, n in counts.items() if n)


def _where(d: Diagnostic) -> str:
    """``file:line:col: `` as in the span, or nothing for a finding without one."""
    return f"{d.span}: " if d.span else ""


# --- text ---------------------------------------------------------------------------------

Segment = tuple[str, str | None]     # text and a rich style (None: unstyled)

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.NOTE: "bold cyan"}


def summary(result: LintResult) -> str:
    """The last line of the text report, e.g. ``3 finding(s): 1 error, 2 warnings (2 suppressed)``.

    Suppressed and baselined findings are counted so that a clean-looking run still
    tells the reader what is being hidden from it.
    """
    n = len(result.findings)
    line = f"{n} finding(s): {_severity_counts(result.findings)}" if n else "no findings"
    hidden = []
    if result.suppressed:
        hidden.append(f"{len(result.suppressed)} suppressed")
    if result.baselined:
        hidden.append(f"{len(result.baselined)} in the baseline")
    if hidden:
        line += f" ({', '.join(hidden)})"
    if result.skipped:
        line += f"; {SKIPPED_REASON}"
    return line


def _text_finding(d: Diagnostic, cache: dict, excerpts: bool) -> list[list[Segment]]:
    """A finding's lines: the heading, the excerpt with carets, and the hint."""
    style = _STYLE[d.severity]
    lines: list[list[Segment]] = [[(_where(d), "bold"), (f"{d.severity.value}[{d.code}]", style),
                                   (f": {d.message}", None)]]
    parts = excerpt_parts(d, cache) if excerpts else None
    if parts is not None:
        lines.append([(parts.source, None)])
        lines.append([(parts.margin, None), (parts.carets, style)])
    if d.hint:
        lines.append([("  hint: ", "green"), (d.hint, None)])
    return lines


def _text_lines(result: LintResult, excerpts: bool) -> list[list[Segment]]:
    cache: dict = {}
    lines: list[list[Segment]] = []
    for d in result.findings:
        lines.extend(_text_finding(d, cache, excerpts))
    lines.append([(summary(result), "bold")])
    return lines


def _plain(lines: list[list[Segment]]) -> str:
    return "\n".join("".join(text for text, _ in line) for line in lines)


def coloured(lines: list[list[Segment]]) -> str:
    """The same lines through rich with ANSI colours.

    Everything that could vary with the environment is pinned (terminal, colour
    system, ``NO_COLOR``, width, wrapping, markup), so the caller alone decides
    whether there is colour and the text is the same as the plain report.
    """
    from rich.console import Console
    from rich.text import Text

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, color_system="standard", no_color=False,
                      width=10_000, soft_wrap=True, highlight=False, markup=False, emoji=False,
                      legacy_windows=False)
    for line in lines:
        text = Text()
        for part, style in line:
            text.append(part, style=style)
        console.print(text)
    return buf.getvalue().removesuffix("\n")


def render_text(result: LintResult, *, color: bool = False, excerpts: bool = True) -> str:
    """The terminal report: findings with excerpts and hints, then :func:`summary`."""
    lines = _text_lines(result, excerpts)
    return coloured(lines) if color else _plain(lines)


# --- json -----------------------------------------------------------------------------------

def _finding_json(d: Diagnostic, root: str, rules: dict[str, Rule]) -> dict:
    rule = rules.get(d.code)
    return {
        "code": d.code,
        "rule": rule.name if rule else None,
        "severity": d.severity.value,
        "message": d.message,
        "location": d.span.to_json() if d.span else None,
        "hint": d.hint,
        "fingerprint": fingerprint(d, root),
    }


def _suppression_json(s: Suppression) -> dict:
    return {"file": s.file, "line": s.line, "scope": s.scope}


def render_json(result: LintResult) -> str:
    """Everything a script needs, including what was suppressed or baselined (and why)."""
    root, rules = _root(result), all_rules()
    doc = {
        "schema": "ksm-lint/1",          # docs/schemas/lint.schema.json
        "tool": "ksm",
        "version": __version__,
        "solution": root,
        "skipped": result.skipped,
        "counts": {**result.counts(), "suppressed": len(result.suppressed), "baselined": len(result.baselined)},
        "findings": [_finding_json(d, root, rules) for d in result.findings],
        "suppressed": [{**_finding_json(d, root, rules), "suppression": _suppression_json(s)}
                       for d, s in result.suppressed],
        "baselined": [_finding_json(d, root, rules) for d in result.baselined],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


# --- sarif ----------------------------------------------------------------------------------

def _descriptor(code: str, rule: Rule | None, info: CodeInfo) -> dict:
    """A SARIF ``reportingDescriptor``: what code-scanning UIs show next to a result.

    No ``helpUri``: the rule pages are files in the repository (``docs/lint/CODE.md``),
    and SARIF requires an absolute URI there.
    """
    out: dict = {"id": code}
    if rule is not None:
        out["name"] = rule.name
    out["shortDescription"] = {"text": info.title}
    out["fullDescription"] = {"text": (rule.why if rule is not None and rule.why else info.title)}
    if info.hint:
        out["help"] = {"text": info.hint}
    out["defaultConfiguration"] = {"level": info.severity.value}
    if rule is not None:
        out["properties"] = {"category": rule.category}
    return out


def _artifact(file: str, root: str) -> dict:
    """The file relative to SRCROOT when inside the solution, else an absolute file URI."""
    if not _inside(file, root):
        return {"uri": Path(os.path.abspath(file)).as_uri()}
    return {"uri": quote(relative_file(file, root), safe="/"), "uriBaseId": "SRCROOT"}


def _inside(file: str, root: str) -> bool:
    """Whether ``file`` lies under ``root`` (relative paths are taken from the working directory)."""
    try:
        rel = os.path.relpath(os.path.abspath(file), os.path.abspath(root))
    except ValueError:          # another drive on Windows
        return False
    return not rel.startswith("..") and not os.path.isabs(rel)   # the test relative_file makes


def _region(span: Span) -> dict | None:
    """The SARIF region; None when the span has no usable line (the schema needs ≥ 1)."""
    if span.line < 1:
        return None
    region = {"startLine": span.line}
    if span.column >= 1:
        region["startColumn"] = span.column
    if span.end_line >= span.line:
        region["endLine"] = span.end_line
        if span.end_column >= 1:
            region["endColumn"] = span.end_column
    return region


def _sarif_location(span: Span, root: str) -> dict:
    physical: dict = {"artifactLocation": _artifact(span.file, root)}
    region = _region(span)
    if region is not None:
        physical["region"] = region
    return {"physicalLocation": physical}


def _justification(s: Suppression) -> str:
    codes = ",".join(s.codes)
    directive = "disable-file" if s.scope == "file" else "disable"
    return f"`ksm: {directive}={codes}` at {s.file}:{s.line} ({s.scope} scope)"


def _sarif_result(d: Diagnostic, root: str, index: dict[str, int]) -> dict:
    out: dict = {
        "ruleId": d.code,
        "ruleIndex": index[d.code],
        "level": d.severity.value,
        "message": {"text": d.message},
    }
    if d.span is not None:
        out["locations"] = [_sarif_location(d.span, root)]
    out["partialFingerprints"] = {SARIF_FINGERPRINT: fingerprint(d, root)}
    return out


def _sarif_results(result: LintResult, root: str, index: dict[str, int]) -> list[dict]:
    """Reported, suppressed and baselined findings, each marked as such.

    Suppressed findings carry no ``baselineState``: the runner removes them before
    the baseline is consulted, so whether the baseline knows them was never asked.
    """
    baseline = _baseline_used(result)
    out = []
    for d in result.findings:
        r = _sarif_result(d, root, index)
        if baseline:
            r["baselineState"] = "new"
        out.append(r)
    for d, s in result.suppressed:
        r = _sarif_result(d, root, index)
        r["suppressions"] = [{"kind": "inSource", "justification": _justification(s)}]
        out.append(r)
    for d in result.baselined:
        r = _sarif_result(d, root, index)
        r["baselineState"] = "unchanged"
        out.append(r)
    return out


def _all_diagnostics(result: LintResult) -> list[Diagnostic]:
    return [*result.findings, *(d for d, _ in result.suppressed), *result.baselined]


def _invocation(result: LintResult) -> dict:
    """The run happened; a skipped linter is said as a notification, not as a failure."""
    inv: dict = {"executionSuccessful": True}
    if result.skipped:
        inv["toolExecutionNotifications"] = [{"level": "warning", "message": {"text": SKIPPED_REASON}}]
    return inv


def sarif_log(result: LintResult) -> dict:
    """The SARIF 2.1.0 log as a dict (one run; every catalogue rule is described)."""
    root, rules = _root(result), all_rules()
    seen = {d.code: d.severity for d in _all_diagnostics(result)}
    codes = sorted(set(rules) | set(seen))
    index = {code: i for i, code in enumerate(codes)}
    descriptors = [_descriptor(c, rules.get(c), _info(c, seen.get(c, Severity.WARNING))) for c in codes]
    run = {
        "tool": {"driver": {"name": "ksm", "version": __version__, "rules": descriptors}},
        "invocations": [_invocation(result)],
        "originalUriBaseIds": {"SRCROOT": {"uri": Path(os.path.abspath(root)).as_uri().rstrip("/") + "/"}},
        "columnKind": "unicodeCodePoints",
        "results": _sarif_results(result, root, index),
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def render_sarif(result: LintResult) -> str:
    return json.dumps(sarif_log(result), indent=2, ensure_ascii=False)


# --- github ---------------------------------------------------------------------------------

_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def escape_data(text: str) -> str:
    """Escape a workflow command's message, as the Actions runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value (``:`` and ``,`` delimit properties)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _github_file(file: str) -> str:
    """Relative to the working directory (the checkout, in Actions) when inside it."""
    return relative_file(file, os.getcwd())


def _github_position(span: Span) -> list[tuple[str, str]]:
    """file, line, col and the end, as in the span.

    The end column goes out only for a one-line span: GitHub annotations take
    columns on a single line only.
    """
    props = [("file", _github_file(span.file))]
    if span.line < 1:
        return props
    props.append(("line", str(span.line)))
    if span.column >= 1:
        props.append(("col", str(span.column)))
    if span.end_line >= span.line:
        props.append(("endLine", str(span.end_line)))
        if span.end_line == span.line and span.end_column >= 1:
            props.append(("endColumn", str(span.end_column)))
    return props


def _github_command(d: Diagnostic, rules: dict[str, Rule]) -> str:
    props = _github_position(d.span) if d.span else []
    label = _label(d.code, rules)
    props.append(("title", f"{d.code} ({label})" if label else d.code))
    joined = ",".join(f"{k}={escape_property(v)}" for k, v in props)
    return f"::{_GITHUB_COMMAND[d.severity]} {joined}::{escape_data(d.message)}"


def render_github(result: LintResult) -> str:
    """One annotation per reported finding (suppressed and baselined ones stay quiet)."""
    rules = all_rules()
    return "\n".join(_github_command(d, rules) for d in result.findings)


# --- junit ----------------------------------------------------------------------------------

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """XML 1.0 cannot hold most control characters, even escaped; a message might."""
    return _XML_INVALID.sub("\ufffd", text)


def _junit_codes(result: LintResult) -> list[str]:
    """The rules that ran, then the other codes found (front-end diagnostics, crashes)."""
    ran = list(dict.fromkeys(result.rules_run))
    found = sorted({d.code for d in result.findings} - set(ran))
    return ran + found


def _junit_listing(diags: list[Diagnostic]) -> str:
    return _xml_text("\n".join(f"{_where(d)}{d.message}" for d in diags))


def _junit_case(parent: ET.Element, code: str, diags: list[Diagnostic], result: LintResult,
                rules: dict[str, Rule]) -> bool:
    """One test case; True when it fails (a finding at or above ``fail_on``)."""
    label = _label(code, rules)
    case = ET.SubElement(parent, "testcase", classname="ksm.lint",
                         name=_xml_text(f"{code} {label}" if label else code))
    if code in result.seconds:
        case.set("time", f"{result.seconds[code]:.3f}")
    failing = [d for d in diags if result.config.fails(d.severity)]
    below = [d for d in diags if d not in failing]
    if failing:
        failure = ET.SubElement(case, "failure", type=code, message=_severity_counts(failing))
        failure.text = _junit_listing(failing)
    if below:
        ET.SubElement(case, "system-out").text = _junit_listing(below)
    return bool(failing)


def _junit_skipped(parent: ET.Element, result: LintResult, rules: dict[str, Rule]) -> int:
    """Linter rules that did not run because the solution has errors, as skipped cases."""
    if not result.skipped:
        return 0
    n = 0
    for code, rule in rules.items():
        if rule.check is None or code in result.rules_run or not result.config.enabled(code):
            continue
        case = ET.SubElement(parent, "testcase", classname="ksm.lint", name=f"{code} {rule.name}")
        ET.SubElement(case, "skipped", message=SKIPPED_REASON)
        n += 1
    return n


def _set_counts(elem: ET.Element, tests: int, failures: int, skipped: int) -> None:
    elem.set("tests", str(tests))
    elem.set("failures", str(failures))
    elem.set("errors", "0")
    elem.set("skipped", str(skipped))


def render_junit(result: LintResult) -> str:
    """JUnit XML: one test case per rule run and per other code found."""
    rules = all_rules()
    by_code: dict[str, list[Diagnostic]] = {}
    for d in result.findings:
        by_code.setdefault(d.code, []).append(d)
    top = ET.Element("testsuites", name="ksm")
    suite = ET.SubElement(top, "testsuite", name="ksm lint")
    codes = _junit_codes(result)
    failures = sum(_junit_case(suite, c, by_code.get(c, []), result, rules) for c in codes)
    skipped = _junit_skipped(suite, result, rules)
    suite.set("time", f"{sum(result.seconds.values()):.3f}")
    for elem in (top, suite):
        _set_counts(elem, len(codes) + skipped, failures, skipped)
    ET.indent(top)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="unicode")


_RENDERERS: dict[str, Callable[[LintResult], str]] = {
    "json": render_json,
    "sarif": render_sarif,
    "github": render_github,
    "junit": render_junit,
}
