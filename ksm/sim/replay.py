"""Re-enacting counterexamples and witnesses of ``ksm prove`` / ``ksm flows`` in the
simulator.

Accepted input (JSON): the output of ``ksm prove --format json`` (each result with
a ``counterexample``), of ``ksm flows --format json`` (each hop of a refuted flow's
``path`` with its ``witness``), or one counterexample object ``{"setup": [...],
"steps": [...]}``.

Each trace is re-enacted in a fresh kernel: the kernel starts the solution as in
any run (those decisions are compared with the trace's start-up events), then each
message of the trace is marshalled, structure-checked and decided in the trace's
order (:meth:`Kernel.inject`).  A replay *agrees* when every message gets the
decision the trace expects; a disagreement means the prover and the decision
function differ, which is a bug worth reporting.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from policy_lang.diagnostics import Span
from policy_lang.solution import Solution

from ..events import Event
from ..values import decode_event
from .codes import SIM_REPLAY, SimInputError
from .kernel import Kernel

EVENT_KEYS = ("kind", "src", "dst", "endpoint", "method", "message")


@dataclass
class Trace:
    """One counterexample or witness to re-enact."""

    title: str
    setup: list[Event]
    steps: list[tuple[Event, str]]          # (event, expected decision: granted | denied)


@dataclass
class Replayed:
    """The outcome of re-enacting one trace in the simulator."""

    trace: Trace
    kernel: Kernel
    mismatches: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not self.mismatches


def _event(solution: Solution, raw: Any, where: str) -> Event:
    """The event of one trace entry, its message decoded by the method's IDL types
    (:mod:`ksm.values`: ``bytes<N>`` travel as hex text)."""
    if not isinstance(raw, dict) or raw.get("kind") not in ("execute", "request", "response", "error", "security"):
        raise SimInputError(SIM_REPLAY, f"{where}: not an event (needs kind, src, dst, endpoint, method, message)",
                            None)
    message = raw.get("message") or {}
    if not isinstance(message, dict):
        raise SimInputError(SIM_REPLAY, f"{where}: message must be an object", None)
    return decode_event(solution, Event(raw["kind"], raw.get("src"), raw.get("dst"), raw.get("endpoint"),
                                        raw.get("method"), message))


def traces_in(doc: Any) -> Iterable[tuple[str, dict]]:
    """(title, counterexample object) for every trace the JSON document holds."""
    if isinstance(doc, dict) and "steps" in doc:
        yield "counterexample", doc
        return
    results = doc.get("results") if isinstance(doc, dict) else doc
    for r in results if isinstance(results, list) else ():
        if not isinstance(r, dict):
            continue
        name = r.get("name", "?")
        if isinstance(r.get("counterexample"), dict):
            yield f"{name} ({r.get('status', '?')})", r["counterexample"]
        for i, hop in enumerate(r.get("path") or ()):
            if isinstance(hop, dict) and isinstance(hop.get("witness"), dict):
                yield (f"{name} ({r.get('status', '?')}) hop {i + 1}: {hop.get('kind')} "
                       f"{hop.get('client')} -> {hop.get('server')} {hop.get('endpoint')}.{hop.get('method')}"), hop["witness"]


def load_traces(path: str | Path, solution: Solution, only: str | None = None) -> list[Trace]:
    """Every trace in the file (those of property ``only``, if given)."""
    from policy_lang.source import UserFileError, read_user_text

    from ..values import json_int

    path = Path(path)
    try:
        doc = json.loads(read_user_text(path), parse_int=json_int)
    except UserFileError as exc:    # a FIFO or /dev/zero is refused before it is read
        raise SimInputError(SIM_REPLAY, exc.message(str(path)), Span(str(path), exc.line, exc.column)) from None
    except RecursionError:
        raise SimInputError(SIM_REPLAY, "the file nests too deeply", Span(str(path), 1, 1)) from None
    except json.JSONDecodeError as exc:
        raise SimInputError(SIM_REPLAY, f"not JSON: {exc.msg}", Span(str(path), exc.lineno, exc.colno)) from None
    traces = []
    for title, cex in traces_in(doc):
        if only is not None and not title.startswith(f"{only} "):
            continue
        setup = [_event(solution, e, f"{title}: setup[{i}]") for i, e in enumerate(cex.get("setup") or ())]
        steps = []
        for i, raw in enumerate(cex.get("steps") or ()):
            expect = raw.get("expect", "granted") if isinstance(raw, dict) else "granted"
            steps.append((_event(solution, raw, f"{title}: steps[{i}]"), expect))
        traces.append(Trace(title, setup, steps))
    if not traces:
        what = f"for property {only!r}" if only else "in the file"
        raise SimInputError(SIM_REPLAY, f"no counterexample or witness {what}", Span(str(path), 1, 1))
    return traces


def replay(solution: Solution, trace: Trace, monitors: Iterable = ()) -> Replayed:
    """Re-enact one trace in a fresh kernel and compare every decision."""
    kernel = Kernel(solution)
    kernel.monitors.extend(monitors)
    out = Replayed(trace, kernel)
    booted = {(r.get("src"), r.get("dst")): r["decision"] for r in kernel.records if r["op"] == "execute"}
    for e in trace.setup:
        if e.kind != "execute":
            continue
        got = booted.get((e.src, e.dst))
        if got is None:
            got = "granted" if kernel.inject(e).granted else "denied"
        if got != "granted":
            out.mismatches.append(f"start-up: {e.describe()} was {got}, the trace has it granted")
    for n, (e, expect) in enumerate(trace.steps, 1):
        d = kernel.inject(e)
        got = "granted" if d.granted else "denied"
        if expect in ("granted", "denied") and got != expect:
            out.mismatches.append(f"step {n}: {e.describe()} was {got} ({d.reason}), the trace expects {expect}")
    return out
