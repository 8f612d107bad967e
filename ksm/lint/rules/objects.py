"""Policy objects and audit profiles that do nothing."""
from __future__ import annotations

from typing import Iterator

from policy_lang.diagnostics import Diagnostic
from policy_lang.syntax import ast

from ..catalogue import Example, rule
from ..context import LintContext


def _objects_named(e) -> Iterator[str]:
    """Objects an expression calls (``obj.method ...``), at any depth."""
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, ast.Call):
            if x.object is not None:
                yield x.object.text
            stack.append(x.arg)
        elif isinstance(x, ast.BinOp):
            stack += (x.left, x.right)
        elif isinstance(x, ast.UnOp):
            stack.append(x.operand)
        elif isinstance(x, ast.ListExpr):
            stack += x.items
        elif isinstance(x, ast.RecordExpr):
            stack += [f.value for f in x.fields]
        elif isinstance(x, (ast.FieldAccess, ast.IndexExpr)):
            stack.append(x.base)
            if isinstance(x, ast.IndexExpr):
                stack.append(x.index)


def used_objects(ctx: LintContext) -> set[str]:
    """Objects any binding calls, as a rule or inside an expression (choice selectors too)."""
    from policy_lang.solution import CallDef, ChoiceDef

    used: set[str] = set()
    for s in ctx.sites():
        if isinstance(s.stmt, CallDef):
            used.add(s.stmt.object)
            used.update(_objects_named(s.stmt.arg))
        elif isinstance(s.stmt, ChoiceDef):
            used.update(_objects_named(s.stmt.expr))
    return used


def _in_audit(ctx: LintContext) -> set[str]:
    out: set[str] = set()
    for p in ctx.solution.audit_profiles.values():
        if isinstance(p.levels, dict):
            for objs in p.levels.values():
                if isinstance(objs, dict):
                    out.update(objs)
    return out


@rule(
    "LNT014", "object-unused", "warning", "policy object never used by a binding",
    "call it from a binding, or delete the declaration",
    category="objects",
    why="A policy object that no binding calls decides nothing: its configuration is dead text, and "
        "often the sign of a rule that was meant to use it and uses another object instead. An object "
        "named only in audit profiles is reported too: auditing it records nothing, because it is never "
        "called.",
    bad=Example(
        'use demo.prelude._\nuse nk.hashmap._\n\n'
        'policy object keys : HashSet {\n'
        '    type Entry = UInt8\n'
        '    config = { set_size : 16, pool_size : 1 }\n'
        '}\n'),
    good=Example(
        'use demo.prelude._\nuse nk.hashmap._\n\n'
        'policy object keys : HashSet {\n'
        '    type Entry = UInt8\n'
        '    config = { set_size : 16, pool_size : 1 }\n'
        '}\n\n'
        'execute dst=demo.Server { keys.init { sid : dst_sid } }\n'
        'request src=demo.Client dst=demo.Server endpoint=core.store method=Put {\n'
        '    keys.add { sid : dst_sid, entry : message.key }\n'
        '}\n'),
)
def object_unused(ctx: LintContext) -> Iterator[Diagnostic]:
    used = used_objects(ctx)
    audited = _in_audit(ctx)
    for name, obj in ctx.solution.objects.items():
        if obj.builtin or name in used:
            continue
        how = "is named only in audit profiles" if name in audited else "is never called"
        yield ctx.finding("LNT014", f"policy object {name} ({obj.model}) {how}", obj.span)


@rule(
    "LNT016", "audit-default-missing", "warning", "audit profiles declared but no `audit default`",
    "add `audit default = PROFILE LEVEL` to say which profile is in force where a binding names none",
    category="objects",
    why="Audit profiles only take effect where a binding names one, or through `audit default`. A "
        "solution that declares profiles but no default audits nothing in every binding that does not "
        "name a profile, which is rarely what the author of the profiles intended.",
    bad=Example(
        'use demo.prelude._\n\n'
        'audit profile trace = { 0 : { base : { kss : ["granted", "denied"] } } }\n'),
    good=Example(
        'use demo.prelude._\n\n'
        'audit profile trace = { 0 : { base : { kss : ["granted", "denied"] } } }\n'
        'audit default = trace 0\n'),
)
def audit_default_missing(ctx: LintContext) -> Iterator[Diagnostic]:
    sol = ctx.solution
    if sol.audit_profiles and sol.audit_default is None:
        first = min(sol.audit_profiles.values(), key=lambda p: (p.span or ("", 0, 0))[:3])
        names = ", ".join(sorted(sol.audit_profiles))
        yield ctx.finding("LNT016", f"audit profiles ({names}) are declared but there is no `audit default`",
                          first.span)
