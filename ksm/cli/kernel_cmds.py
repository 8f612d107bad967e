"""``ksm kernel``: which kernel methods each process class may call, and the kernel itself.

Every process calls the kernel (``kl.core.Core``), and the documentation calls some of
its methods potentially dangerous.  This command prints the kernel access table of
:mod:`ksm.kernel_access` (per process class and kernel method: granted always, under
conditions, or never), grouped by kernel endpoint, with the documented danger of
each method; ``--methods`` prints the built-in kernel description itself
(:mod:`policy_lang.kernel`), which is what the KRN001 hint points to.

The exit status gates CI on the documentation's main requirement: 1 when a class not
marked trusted is granted a potentially dangerous method without conditions (the
finding of lint rule LNT021, which ``--format sarif`` reports one method at a time).
"""
from __future__ import annotations

import argparse
import difflib
import json
from collections.abc import Iterable, Sequence

from .common import (
    EXIT_ERRORS,
    EXIT_OK,
    add_solution_args,
    json_text,
    load_ok,
    usage,
    write_report,
)
from .progress import busy

Segment = tuple[str, "str | None"]      # text and a rich style (None: unstyled)
Line = list[Segment]

#: How the documentation classifies a method (the ``classification`` of the JSON document).
DANGEROUS, SAFE, UNCLASSIFIED, UNDESCRIBED = "dangerous", "safe", "unclassified", "undescribed"

_VERDICT_STYLE = {"always": "bold", "conditional": "cyan", "never": "dim"}
_CLASS_STYLE = {DANGEROUS: "bold red", SAFE: "green", UNCLASSIFIED: "yellow", UNDESCRIBED: "yellow"}
_VERDICT_WIDTH = len("conditional")


def add_kernel(sub) -> None:
    p = sub.add_parser(
        "kernel", help="which kernel methods each process class may call (always, under conditions, never) "
                       "and which are potentially dangerous; or the built-in kernel description",
        epilog="exit status:\n  0  ok\n"
               "  1  a class not marked trusted is granted a potentially dangerous kernel method without conditions\n"
               "     (CI can gate on it; a `ksm: disable=LNT021` comment where it is granted accepts it),\n"
               "     or the solution has errors\n  2  usage error\n\n"
               "examples:\n  ksm kernel models/smart_lock\n"
               "  ksm kernel models/smart_lock --class lock.NetAgent --dangerous\n"
               "  ksm kernel models/smart_lock --format sarif --output kernel.sarif\n"
               "  ksm kernel --methods")
    add_solution_args(p)
    p.add_argument("--class", dest="classes", action="append", default=[], metavar="CLASS",
                   help="only this process class (repeatable; an unknown class is a usage error)")
    p.add_argument("--dangerous", action="store_true",
                   help="only the potentially dangerous methods granted (always or under conditions)")
    p.add_argument("--methods", action="store_true",
                   help="print the built-in kernel description instead: every endpoint and method with its "
                        "parameters, documentation versions and danger (needs no solution)")
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text", help="report format (default: text)")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colour in text output")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="list the methods never granted one by one (default: a count per endpoint) and the "
                        "section or binding that grants each granted method")


def cmd_kernel(args: argparse.Namespace) -> int:
    from ..lint.command import use_color

    color = not args.output and use_color(args.color)
    if args.methods:
        if args.classes:
            return usage("--class goes with the access table, not with --methods")
        if args.format == "sarif":
            return usage("--methods has no SARIF form; use --format text or json")
        if args.format == "json":
            text = json_text("kernel", methods_json(args.dangerous))
        else:
            text = render(methods_lines(args.dangerous), color)
        return write_report(text, args)

    from policy_lang.solution import KERNEL_CLASS

    from ..kernel_access import kernel_access

    sol = load_ok(args)
    if sol is None:
        return EXIT_ERRORS
    wrong = unknown_class(args.classes, [c for c in sol.classes if c != KERNEL_CLASS], KERNEL_CLASS)
    if wrong:
        return usage(wrong)
    with busy("deciding which kernel methods each class may call"):
        access = kernel_access(sol, classes=sorted(set(args.classes)) if args.classes else None)
    kernel = sol.classes.get(KERNEL_CLASS)
    core_edl = kernel.span.file if access.source == "sdk" and kernel is not None and kernel.span else None
    if args.format == "json":
        text = json_text("kernel", access_json(access, args.solution, core_edl, args.dangerous, sol))
    elif args.format == "sarif":
        text = access_sarif(access, sol)
    else:
        text = render(access_lines(access, core_edl, dangerous_only=args.dangerous, verbose=args.verbose,
                                   solution=sol), color)
    code = write_report(text, args)
    return code or (EXIT_ERRORS if gate_failures(access, sol) else EXIT_OK)


def unknown_class(asked: Sequence[str], known: Sequence[str], kernel: str) -> str | None:
    """The usage error for the first ``--class`` the solution does not declare, if any."""
    for name in asked:
        if name in known:
            continue
        if name == kernel:
            return f"--class {name}: the kernel itself has no table (`ksm kernel --methods` describes it)"
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else f" (classes: {', '.join(sorted(known))})" if known else ""
        return f"--class {name}: no such process class{hint}"
    return None


def accepted(call, solution) -> bool:
    """A dangerous grant the policy accepts where it is made: a ``ksm: disable=LNT021``
    (or ``LNT022`` for a blanket binding, or ``all``) covering the section or binding
    that grants it.  One notion of accepted risk for ``ksm lint`` and this command."""
    from ..lint.runner import covers

    if solution is None or not solution.suppressions:
        return False
    places = [s for s in (*call.sites, *call.bindings) if s is not None]
    return any(covers(sup, code, span) for sup in solution.suppressions for code in ("LNT021", "LNT022")
               for span in places)


def risky(row, solution) -> list:
    """The dangerous methods ``row`` may call with any message, whose risk the policy does not accept."""
    from ..kernel_access import ALWAYS

    return [c for c in row.dangerous((ALWAYS,)) if not accepted(c, solution)]


def gate_failures(access, solution=None) -> list:
    """The rows that make the exit status 1: untrusted classes granted a dangerous method always
    (and not accepted by a suppression where it is granted)."""
    return [row for row in access.classes if not row.trusted and risky(row, solution)]


# ----------------------------------------------------------------------------- shared wording

def classification(facts) -> str:
    """dangerous, safe, unclassified (documented, danger not given) or undescribed (not in our data)."""
    if facts is None:
        return UNDESCRIBED
    if facts.danger is None:
        return UNCLASSIFIED
    return DANGEROUS if facts.danger else SAFE


def danger_words(facts) -> str:
    if facts is None:
        return "not in the built-in kernel description"
    if facts.dangerous:
        return "DANGEROUS " + facts.danger_text()
    return facts.danger_text()


def versions_text(versions: Sequence[str]) -> str:
    """``1.1-1.4`` for a run of consecutive documentation versions, else ``1.1, 1.2, 1.4``."""
    from policy_lang.kernel import DOC_VERSIONS

    if not versions:
        return "undocumented"
    idx = [DOC_VERSIONS.index(v) for v in versions if v in DOC_VERSIONS]
    if len(idx) == len(versions) and len(idx) > 1 and idx == list(range(idx[0], idx[0] + len(idx))):
        return f"{versions[0]}-{versions[-1]}"
    return ", ".join(versions)


def kernel_words(source: str, core_edl: str | None) -> str:
    from policy_lang.kernel import DOC_VERSIONS

    docs = f"KasperskyOS CE documentation {versions_text(DOC_VERSIONS)}"
    if source == "sdk":
        where = f" ({core_edl})" if core_edl else ""
        return f"the SDK's Core.edl{where}; dangers from the built-in description ({docs})"
    return f"built-in description of kl.core.Core ({docs})"


def render(lines: Iterable[Line], color: bool) -> str:
    """The lines as plain text, or through rich with ANSI colours (pinned as the lint report does)."""
    from ..lint.report import coloured

    lines = list(lines)
    if not color:
        return "\n".join("".join(text for text, _ in line).rstrip() for line in lines)
    return coloured(lines)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}es" if word.endswith("s") else f"{n} {word}s"


# ----------------------------------------------------------------------------- the access table

def _by_endpoint(calls) -> dict[str, list]:
    groups: dict[str, list] = {}
    for c in calls:
        groups.setdefault(c.endpoint, []).append(c)
    return groups


def access_lines(access, core_edl: str | None, *, dangerous_only: bool = False, verbose: bool = False,
                 solution=None) -> list[Line]:
    from ..kernel_access import ALWAYS, CONDITIONAL, NEVER

    trusted = [r.cls for r in access.classes if r.trusted]
    untrusted = [r.cls for r in access.classes if not r.trusted]
    lines: list[Line] = [
        [("kernel: ", "bold"), (kernel_words(access.source, core_edl), None)],
        [("trust: ", "bold"), ((f"trusted: {', '.join(trusted) or 'none'}; "
                                f"untrusted: {', '.join(untrusted) or 'none'}"), None)],
    ]
    if not access.classes:
        lines.append([("the solution has no process class besides the kernel", None)])
    for row in access.classes:
        counts = {v: len(row.with_verdict(v)) for v in (ALWAYS, CONDITIONAL, NEVER)}
        always = row.dangerous((ALWAYS,))
        unaccepted = risky(row, solution)
        granted_danger = row.dangerous()
        heading = f"{row.cls} ({'trusted' if row.trusted else 'untrusted'})"
        detail = (f": {counts[ALWAYS]} always, {counts[CONDITIONAL]} conditional, {counts[NEVER]} never; "
                  f"{len(always)} potentially dangerous granted always"
                  + (f" ({len(always) - len(unaccepted)} accepted where granted)" if len(unaccepted) < len(always)
                     else "")
                  + f", {len(granted_danger) - len(always)} under conditions")
        gate = not row.trusted and unaccepted
        lines += [[], [(heading, "bold red" if gate else "bold"), (detail, None)]]
        calls = granted_danger if dangerous_only else row.calls
        if not calls:
            lines.append([("  no potentially dangerous kernel method granted" if dangerous_only
                           else "  the kernel has no methods to call", None)])
            continue
        shown = [c for c in calls if c.granted or verbose]
        width = max((len(c.method) for c in shown), default=0)
        closed: list[str] = []          # endpoints none of whose methods it may call: one line for all
        for endpoint, group in _by_endpoint(calls).items():
            never = [c for c in group if not c.granted]
            if len(never) == len(group) and not verbose:
                closed.append(f"{endpoint} ({len(group)})")
                continue
            lines.append([(f"  {endpoint}", "bold")])
            for c in group:
                if c.granted or verbose:
                    lines.append(_call_line(c, width, verbose, c.dangerous and accepted(c, solution)))
            if never and not verbose:
                lines.append([("    " + "never".ljust(_VERDICT_WIDTH), "dim"),
                              (f"  {_plural(len(never), 'other method')} (-v lists them)", "dim")])
        if closed:
            lines.append([("  never", "bold"), (f": {', '.join(closed)} (methods per endpoint)", "dim")])
    lines.append([])
    failures = gate_failures(access, solution)
    if failures:
        names = ", ".join(r.cls for r in failures)
        lines.append([((f"{_plural(len(failures), 'class')} not marked trusted "
                        f"{'is' if len(failures) == 1 else 'are'} granted potentially dangerous kernel methods "
                        f"without conditions: {names}"), "bold red")])
        lines.append([("  hint: ", "green"),
                      (("grant each class only the kernel methods it needs, add conditions, or mark a class trusted "
                        "with `// ksm: trusted` on its `use EDL` line (or --trusted CLASS)"), None)])
    else:
        lines.append([("no untrusted class is granted a potentially dangerous kernel method without conditions",
                       "bold")])
    return lines


def _call_line(c, width: int, verbose: bool, accepted_here: bool = False) -> Line:
    kind = classification(c.facts)
    line: Line = [("    ", None), (c.verdict.ljust(_VERDICT_WIDTH), _VERDICT_STYLE.get(c.verdict)), ("  ", None),
                  (c.method.ljust(width), "bold red" if c.dangerous and c.granted else None), ("  ", None),
                  (danger_words(c.facts), _CLASS_STYLE[kind])]
    if c.why:
        line.append((f"  ({c.why})", "cyan"))
    if accepted_here:
        line.append(("  (accepted by a suppression where granted)", "dim"))
    span = c.where
    if verbose and c.granted and span is not None:
        line.append((f"  [{'granted' if c.verdict == 'always' else 'decided'} at {span}]", "dim"))
    return line


def _call_json(c) -> dict:
    facts = c.facts
    return {
        "endpoint": c.endpoint,
        "interface": c.interface,
        "method": c.method,
        "verdict": c.verdict,
        "classification": classification(facts),
        "danger": list(facts.danger or ()) if facts is not None else [],
        "reason": facts.reason if facts is not None else "",
        "why": c.why,
        "bindings": [s.to_json() for s in c.bindings if s is not None],
        "sites": [s.to_json() for s in c.sites if s is not None],
    }


def _kernel_json(source: str, core_edl: str | None) -> dict:
    from policy_lang.kernel import DOC_VERSIONS

    return {"source": source, "file": core_edl, "documentation": list(DOC_VERSIONS)}


def access_json(access, solution: str, core_edl: str | None, dangerous_only: bool, sol=None) -> dict:
    from ..kernel_access import ALWAYS, VERDICTS

    classes = []
    for row in access.classes:
        calls = row.dangerous() if dangerous_only else row.calls
        classes.append({
            "class": row.cls,
            "trusted": row.trusted,
            "counts": {v: len(row.with_verdict(v)) for v in VERDICTS},
            "dangerous": {"always": len(row.dangerous((ALWAYS,))),
                          "conditional": len(row.dangerous()) - len(row.dangerous((ALWAYS,)))},
            "calls": [{**_call_json(c), "accepted": bool(c.dangerous and accepted(c, sol))} for c in calls],
        })
    failures = [r.cls for r in gate_failures(access, sol)]
    return {"solution": solution, "kernel": _kernel_json(access.source, core_edl), "dangerous_only": dangerous_only,
            "classes": classes, "untrusted_dangerous": failures, "ok": not failures}


def access_sarif(access, solution) -> str:
    """One LNT021 result per (untrusted class, dangerous method granted always), as the linter writes SARIF."""
    from policy_lang.diagnostics import Diagnostic, code_info

    from ..lint import LintResult, all_rules
    from ..lint.report import sarif_log

    all_rules()                     # registers the LNT codes
    info = code_info("LNT021")
    found = []
    for row in gate_failures(access, solution):
        for c in risky(row, solution):
            message = (f"{row.cls} is not marked trusted, yet the policy grants it the potentially dangerous kernel "
                       f"method {c.label} without conditions ({c.facts.danger_text()})")
            found.append(Diagnostic("LNT021", info.severity, message, c.where, info.hint))
    log = sarif_log(LintResult(solution, found, rules_run=["LNT021"]))
    return json.dumps(log, indent=2, ensure_ascii=False)


# ----------------------------------------------------------------------------- the description

def _signature(m) -> str:
    if not m.params_known:
        return f"{m.name}(?)"
    out = f" -> ({', '.join(m.out_params)})" if m.out_params else ""
    return f"{m.name}({', '.join(m.in_params)}){out}"


def methods_lines(dangerous_only: bool = False) -> list[Line]:
    from policy_lang.kernel import DANGER_CLASSES, kernel_description

    desc = kernel_description()
    methods = list(desc.methods.values())
    kinds = [classification(m) for m in methods]
    lines: list[Line] = [
        [("kernel: ", "bold"), (kernel_words("built-in", None), None),
         ((f": {_plural(len(desc.endpoints), 'endpoint')}, {_plural(len(methods), 'method')} "
           f"({kinds.count(DANGEROUS)} potentially dangerous, {kinds.count(SAFE)} safe, "
           f"{kinds.count(UNCLASSIFIED)} not classified)"), None)],
        [(("parameters are known by name only (the documentation gives no types); --sdk DIR reads the SDK's "
           "Core.edl instead, with the same dangers"), "dim")],
        [],
        [("danger classes", "bold")],
    ]
    width = max(len(k) for k in DANGER_CLASSES)
    lines += [[("  " + name.ljust(width), "red"), ("  " + text, None)] for name, text in DANGER_CLASSES.items()]
    for ep in desc.endpoints:
        shown = [m for m in ep.methods if m.dangerous or not dangerous_only]
        if dangerous_only and not shown:
            continue
        name = ep.name or "(no endpoint name documented)"
        lines += [[], [(name, "bold"), (f"  interface {ep.interface}, documented in {versions_text(ep.versions)}", None)
                       ] + ([(f": {ep.summary}", None)] if ep.summary else [])]
        if not ep.name:
            lines.append([("  a policy can select it by interface only (`match interface=" + ep.interface + "`)",
                           "dim")])
        if ep.notes:
            lines.append([("  note: ", "dim"), (ep.notes, None)])
        if not ep.methods:
            lines.append([("  no methods documented", "yellow")])
        for m in shown:
            kind = classification(m)
            lines.append([("  ", None), (_signature(m), "bold red" if m.dangerous else "bold"),
                          (f"  [{versions_text(m.versions)}]  ", "dim"),
                          ("DANGEROUS " + m.danger_text() if m.dangerous else m.danger_text(), _CLASS_STYLE[kind])])
            if m.summary:
                lines.append([("      " + m.summary, None)])
            if m.notes:
                lines.append([("      note: ", "dim"), (m.notes, None)])
            if m.incomplete:
                lines.append([("      incomplete: ", "yellow"), (m.incomplete, None)])
    return lines


def methods_json(dangerous_only: bool = False) -> dict:
    from policy_lang.kernel import DANGER_CLASSES, kernel_description

    endpoints = []
    for ep in kernel_description().endpoints:
        shown = [m for m in ep.methods if m.dangerous or not dangerous_only]
        if dangerous_only and not shown:
            continue
        endpoints.append({
            "endpoint": ep.name,
            "interface": ep.interface,
            "summary": ep.summary,
            "page": ep.page,
            "versions": list(ep.versions),
            "notes": ep.notes,
            "methods": [{
                "name": m.name,
                "versions": list(m.versions),
                "in": list(m.in_params),
                "out": list(m.out_params),
                "summary": m.summary,
                "classification": classification(m),
                "danger": list(m.danger or ()),
                "reason": m.reason,
                "notes": m.notes,
                "incomplete": m.incomplete,
            } for m in shown],
        })
    return {"kernel": _kernel_json("built-in", None), "dangerous_only": dangerous_only,
            "danger_classes": [{"name": k, "meaning": v} for k, v in DANGER_CLASSES.items()],
            "endpoints": endpoints}


__all__ = ["add_kernel", "cmd_kernel"]
