"""Proof results as text, JSON and SARIF 2.1.0.

SARIF: one result per property, located at the property's name in its ``.props``
file; refuted properties are errors, unknown ones warnings, proved ones ``pass``
results (``kind: pass``) so a code-scanning view can show what was checked.  The
bindings and calls that took part are ``relatedLocations``.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..events import jsonable
from .prove import PROVED, REFUTED, UNKNOWN, Result

_RULES = {
    REFUTED: ("KSM-PROOF-REFUTED", "error", "A property of the security policy does not hold"),
    UNKNOWN: ("KSM-PROOF-UNKNOWN", "warning", "A property of the security policy could not be decided"),
    PROVED: ("KSM-PROOF-PROVED", "none", "A property of the security policy holds"),
}


def _where(r: Result) -> str:
    sp = getattr(r.prop, "span", None)
    return f"{sp.file}:{sp.line}" if sp is not None else "-"


def render_text(results: list[Result], verbose: bool = False, graph=None) -> str:
    """One block per property; ``graph``: the channel graph the flow results were read from."""
    lines = []
    for r in results:
        lines.append(f"{r.status:<8} {r.name}  ({r.how}; {r.seconds * 1000:.0f} ms)  {_where(r)}")
        text = getattr(r.prop, "text", "")
        if text and (verbose or r.status != PROVED):
            lines.append(f"         property: {text}")
        cex = r.counterexample
        if cex is not None:
            label = "witness" if r.status == PROVED else "counterexample"
            lines.append(f"         {label} (after the {len(cex.setup)} start-up events):")
            for i, step in enumerate(cex.steps, 1):
                msg = json.dumps(jsonable(step.event.message), sort_keys=True)
                lines.append(f"           {i}. {step.event.describe()} {msg} -> {step.expect}")
            if not cex.steps:
                lines.append("           (no message needed: " + (cex.note or "the start-up state") + ")")
        if hasattr(r, "detail_lines"):         # a flow result: its path or cut
            lines += r.detail_lines()
    if graph is not None:
        lines.append(graph.summary())
    counts = {s: sum(1 for r in results if r.status == s) for s in (PROVED, REFUTED, UNKNOWN)}
    lines.append(f"{len(results)} properties: {counts[PROVED]} proved, {counts[REFUTED]} refuted, "
                 f"{counts[UNKNOWN]} unknown")
    return "\n".join(lines)


def render_json(results: list[Result], graph=None) -> str:
    out = {"results": [r.to_json() for r in results],
           "summary": {s: sum(1 for r in results if r.status == s) for s in (PROVED, REFUTED, UNKNOWN)}}
    if graph is not None:
        out["channel_graph"] = graph.stats()
    return json.dumps(out, indent=2)


def _location(span, message: str | None = None) -> dict:
    loc = {"physicalLocation": {
        "artifactLocation": {"uri": Path(span.file).as_posix()},
        "region": {"startLine": max(1, span.line), "startColumn": max(1, span.column)},
    }}
    if message:
        loc["message"] = {"text": message}
    return loc


def render_sarif(results: list[Result], version: str = "0") -> str:
    rules = [{"id": rid, "shortDescription": {"text": text}, "defaultConfiguration": {"level": level}}
             for rid, level, text in _RULES.values()]
    out = []
    for r in results:
        rid, level, _ = _RULES[r.status]
        text = f"{r.name}: {r.status.lower()} ({r.how})"
        if r.counterexample is not None and r.counterexample.steps:
            text += "; " + "; ".join(f"{s.event.describe()} -> {s.expect}" for s in r.counterexample.steps)
        res: dict = {"ruleId": rid, "level": level, "message": {"text": text}}
        if r.status == PROVED:
            res["kind"] = "pass"
        sp = getattr(r.prop, "span", None)
        if sp is not None:
            res["locations"] = [_location(sp)]
        related = [_location(s, "involved in this proof") for s in r.related[:20] if s is not None]
        if related:
            for i, loc in enumerate(related):
                loc["id"] = i
            res["relatedLocations"] = related
        out.append(res)
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "ksm", "version": version, "rules": rules}}, "results": out}],
    }
    return json.dumps(doc, indent=2)
