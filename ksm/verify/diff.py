"""The semantic difference between two versions of a solution's policy.

For every event key both versions share (kind, sender, receiver, endpoint, method,
matched by process task names), Z3 looks for a well-formed message one version
grants and the other denies, each version evaluated in its own state right after
start-up.  A difference is reported with its witness event, which both decision
functions confirm before it is shown.  Keys only one version has (a new process,
endpoint or method) are listed as added or removed; a method whose parameter types
changed is listed as such (messages of the two versions are not comparable).

Why the start-up state: two versions may have different stateful objects, so there
is no common state space to quantify over; differences that appear only after some
history are the job of properties (``ksm prove``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import z3

from policy_lang.solution import KERNEL_CLASS, Solution
from policy_lang.types import type_str

from ..engine import SecurityModule
from ..events import Event, jsonable
from ..security_models.symbolic import Fresh, anyof
from ..values import event_to_json
from .message import SymbolicMessage, plainest_model
from .program import Encoder
from .prove import ReplayMismatch, _Instance
from .equivalence import Equivalence
from .universe import EventKey, Universe


@dataclass
class Difference:
    change: str                  # new-grant | lost-grant | added | removed | signature
    group: str                   # "request src=... dst=... endpoint=... method=..."
    witness: Event | None = None
    note: str = ""

    def to_json(self) -> dict:
        out = {"change": self.change, "group": self.group, "note": self.note}
        if self.witness is not None:
            out["witness"] = event_to_json(self.witness)      # the form event_from_json reads (ksm.values)
        return out


@dataclass
class DiffReport:
    differences: list[Difference] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def count(self, change: str) -> int:
        return sum(1 for d in self.differences if d.change == change)


def _group_key(k: EventKey, src, dst) -> tuple:
    return (k.kind, src.task or src.sid, (dst.task or dst.sid) if dst is not None else None, k.endpoint, k.method)


def _describe(g: tuple) -> str:
    kind, src, dst, ep, m = g
    parts = [kind, f"src={src}"]
    if dst is not None and kind != "security":
        parts.append(f"dst={dst}")
    if ep:
        parts.append(f"endpoint={ep}")
    if m and kind != "execute":
        parts.append(f"method={m}")
    return " ".join(parts)


def _index(u: Universe) -> dict:
    out = {}
    for k in u.keys(collapse=False):
        if k.kind == "execute":
            continue          # starting extra processes: compared through the boot, not here
        for src, dst in k.pairs:
            out[_group_key(k, src, dst)] = (k, src, dst)
    return out


def _signature(k: EventKey) -> tuple:
    return tuple((p.name, type_str(p.type)) for p in k.params)


def diff(old: Solution, new: Solution, timeout_ms: int = 10_000) -> DiffReport:
    uo, un = Universe.build(old), Universe.build(new)
    io, inew = _index(uo), _index(un)
    fresh = Fresh("d.")
    eo, en = Encoder(uo, fresh), Encoder(un, fresh)
    so, sn = eo.initial_state(), en.initial_state()
    report = DiffReport()
    # Kernel keys the two policies treat alike (same program in each, same message shape)
    # between the same processes have the same answer: it is computed once per group.
    eqo, eqn = Equivalence(old), Equivalence(new)
    answers: dict[tuple, list] = {}
    for g in sorted(set(inew) - set(io), key=str):
        report.differences.append(Difference("added", _describe(g)))
    for g in sorted(set(io) - set(inew), key=str):
        report.differences.append(Difference("removed", _describe(g)))
    for n, g in enumerate(sorted(set(io) & set(inew), key=str)):
        ko, srco, dsto = io[g]
        kn, srcn, dstn = inew[g]
        if _signature(ko) != _signature(kn):
            report.differences.append(Difference("signature", _describe(g), note="parameter types changed"))
            continue
        joint = None
        if KERNEL_CLASS in (kn.src_cls, kn.dst_cls) and kn.kind != "execute":
            joint = (kn.kind, srco.sid, dsto.sid if dsto else None, srcn.sid, dstn.sid if dstn else None,
                     eqo.signature(ko.engine_key, ko.method_def), eqn.signature(kn.engine_key, kn.method_def))
            if joint in answers:
                for change, message in answers[joint]:
                    if change == "unknown":
                        report.unknown.append(f"{_describe(g)}: {message}")
                        continue
                    event = kn.event(srcn, dstn, message)
                    _confirm(old, new, event, change)
                    report.differences.append(Difference(change, _describe(g), event))
                continue
            answers[joint] = []
        msg = SymbolicMessage(kn.params, f"d{n}")
        src = z3.IntVal(srcn.sid)
        dst = z3.IntVal(dstn.sid) if dstn is not None and kn.kind != "security" else None
        src_o = z3.IntVal(srco.sid)
        dst_o = z3.IntVal(dsto.sid) if dsto is not None and ko.kind != "security" else None
        try:
            gn = en.encode(kn, msg.value, src, dst, sn).granted
            go = eo.encode(ko, msg.value, src_o, dst_o, so).granted
        except Exception as exc:  # NotEncoded and friends: say so, keep going
            report.unknown.append(f"{_describe(g)}: {exc}")
            if joint is not None:
                answers[joint].append(("unknown", str(exc)))
            continue
        for change, formula in (("new-grant", z3.And(gn, z3.Not(go))), ("lost-grant", z3.And(go, z3.Not(gn)))):
            s = z3.Solver()
            s.set("timeout", timeout_ms)
            s.add(msg.wellformed(), formula)
            r = s.check()
            if r == z3.sat:
                inst = _Instance(kn, msg, src, dst, anyof([]))
                event = inst.concrete_event(plainest_model(s, [msg]))
                _confirm(old, new, event, change)
                report.differences.append(Difference(change, _describe(g), event))
                if joint is not None:
                    answers[joint].append((change, event.message))
            elif r == z3.unknown:
                report.unknown.append(f"{_describe(g)}: {s.reason_unknown()}")
                if joint is not None:
                    answers[joint].append(("unknown", s.reason_unknown()))
    return report


def _confirm(old: Solution, new: Solution, event: Event, change: str) -> None:
    """Both decision functions must agree with the witness."""
    mo, mn = SecurityModule(old), SecurityModule(new)
    mo.boot()
    mn.boot()
    do, dn = mo.decide(event), mn.decide(event)
    want = (False, True) if change == "new-grant" else (True, False)
    if (do.granted, dn.granted) != want:
        raise ReplayMismatch(f"diff witness {event.describe()}: old {do.granted}, new {dn.granted}, "
                             f"Z3 said {change}\nold: {do.explain()}\nnew: {dn.explain()}")


def render_text(report: DiffReport) -> str:
    lines = []
    labels = {"new-grant": "NEW GRANT", "lost-grant": "LOST GRANT", "added": "ADDED", "removed": "REMOVED",
              "signature": "CHANGED"}
    for d in report.differences:
        line = f"{labels[d.change]:<10} {d.group}"
        if d.witness is not None:
            import json
            line += f"\n           witness: {json.dumps(jsonable(d.witness.message), sort_keys=True, default=str)}"
        if d.note:
            line += f" ({d.note})"
        lines.append(line)
    for u in report.unknown:
        lines.append(f"UNKNOWN    {u}")
    lines.append(f"{report.count('new-grant')} new grant(s), {report.count('lost-grant')} lost grant(s), "
                 f"{report.count('added')} added, {report.count('removed')} removed, "
                 f"{report.count('signature')} changed signature(s), {len(report.unknown)} undecided")
    return "\n".join(lines)
