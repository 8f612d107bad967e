"""A stable, JSON-ready picture of a resolved solution.

Golden tests compare it against checked-in files, and ``ksm check --dump`` prints it,
so that a user can see exactly what the toolkit understood: every class with its
endpoints and RIIDs, every method with its typed parameters and MID, instances,
channels, objects, and each binding's selectors and targets.
"""
from __future__ import annotations

from .solution import BindingDef, CallDef, ChoiceDef, MatchDef, Solution, StmtDef
from .types import type_str


def _stmt(st: StmtDef) -> dict:
    if isinstance(st, CallDef):
        return {"call": f"{st.object}.{st.method}", "model": st.model, "kind": st.kind, "line": st.span.line}
    if isinstance(st, MatchDef):
        out = {"match": st.selectors.describe(), "targets": len(st.targets), "body": [_stmt(s) for s in st.body]}
        if not st.satisfiable:
            out["never"] = True
        return out
    if isinstance(st, ChoiceDef):
        return {
            "choice": [
                {"case": "_" if a.case is None else a.case.value, "body": [_stmt(s) for s in a.body]}
                for a in st.arms
            ]
        }
    raise TypeError(st)


def _binding(b: BindingDef) -> dict:
    return {
        "event": b.event,
        "selectors": b.selectors.describe(),
        "at": f"{b.span.file}:{b.span.line}",
        "audit": b.audit,
        "targets": sorted(f"{t.cls}:{t.endpoint or '-'}:{t.method.name}" for t in b.targets),
        "body": [_stmt(s) for s in b.body],
    }


def solution_model(sol: Solution) -> dict:
    """Everything resolved, in a deterministic order (no absolute paths)."""
    return {
        "classes": {
            name: {
                "form": c.form,
                "opaque": c.opaque,
                "security": c.security.name if c.security else None,
                "endpoints": [
                    {"name": ep.name, "riid": ep.riid, "interface": ep.interface.name} for ep in c.endpoints
                ],
            }
            for name, c in sorted(sol.classes.items())
        },
        "interfaces": {
            name: [
                {
                    "method": m.name,
                    "mid": m.index,
                    "params": [f"{p.direction} {type_str(p.type)} {p.name}" for p in m.params],
                }
                for m in iface.methods
            ]
            for name, iface in sorted(sol.interfaces.items())
        },
        "instances": [
            {"task": i.task, "class": i.cls, "path": i.path, "args": list(i.args), "env": dict(i.env)}
            for i in sol.instances
        ],
        "channels": [
            {"id": ch.id, "client": ch.client, "server": ch.server} for ch in sol.channels
        ],
        "objects": {
            name: {"model": o.model, "config": o.config}
            for name, o in sorted(sol.objects.items())
            if not o.builtin
        },
        "audit_profiles": sorted(sol.audit_profiles),
        "audit_default": list(sol.audit_default) if sol.audit_default else None,
        "execute_interface": sol.execute_interface,
        "bindings": [_binding(b) for b in sol.bindings],
        "tests": [
            {
                "name": t.name,
                "sequences": {s.name: len(s.cases) for s in t.sequences},
                "setup": len(t.setup),
                "finally": len(t.finally_),
            }
            for t in sol.tests
        ],
        "diagnostics": [f"{d.severity.value}[{d.code}] {d.span.file if d.span else ''}:{d.span.line if d.span else 0}" for d in sol.diagnostics],
    }
