"""Bindings and sections: ones that never apply, never matter, repeat, or grant everything.

These rules read the resolved bindings only (selectors, targets, bodies); they
compare bodies by their structure, ignoring where in the text they stand.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

from policy_lang.diagnostics import Diagnostic, Span
from policy_lang.solution import (
    EINIT_CLASS, KERNEL_CLASS, BindingDef, CallDef, ChoiceDef, MatchDef, SelectorSet,
)
from policy_lang.syntax import ast

from ..catalogue import Example, rule
from ..context import LintContext
from ..fingerprint import relative_file
from .processes import channel_hops, top_policy_span

_PUT = "request src=demo.Client dst=demo.Server endpoint=core.store method=Put"


# ------------------------------------------------------------------ body shapes
def shape(x: object) -> object:
    """A hashable picture of a statement or expression without positions or spans."""
    if isinstance(x, CallDef):
        return ("call", x.object, x.method, shape(x.arg))
    if isinstance(x, MatchDef):
        return ("match", x.selectors, x.audit, tuple(shape(s) for s in x.body))
    if isinstance(x, ChoiceDef):
        return ("choice", shape(x.expr), x.audit,
                tuple((shape(a.case), tuple(shape(s) for s in a.body)) for a in x.arms))
    if isinstance(x, tuple):
        return tuple(shape(i) for i in x)
    if dataclasses.is_dataclass(x):
        return (type(x).__name__,) + tuple(shape(getattr(x, f.name)) for f in dataclasses.fields(x)
                                           if f.name != "pos")
    return x


def _is_unit(e: ast.Expr) -> bool:
    return isinstance(e, ast.Lit) and e.kind == "unit"


def _is_bool(e: ast.Expr, value: bool) -> bool:
    return isinstance(e, ast.Lit) and e.kind == "bool" and e.value is value


def denies_always(c: CallDef) -> bool:
    """``deny ()``, ``deny (true)`` or ``assert (false)``: a rule that denies whatever the event."""
    if c.model != "Base":
        return False
    return (c.method == "deny" and (_is_unit(c.arg) or _is_bool(c.arg, True))) or (
        c.method == "assert" and _is_bool(c.arg, False))


def grants_always(c: CallDef) -> bool:
    """``grant ()``, ``deny (false)`` or ``assert (true)``."""
    if c.model != "Base":
        return False
    return (c.method == "grant" and _is_unit(c.arg)) or (c.method == "deny" and _is_bool(c.arg, False)) or (
        c.method == "assert" and _is_bool(c.arg, True))


def body_denies(body) -> CallDef | None:
    """The unconditional deny among a body's own statements (not inside a choice), if any."""
    return next((s for s in body if isinstance(s, CallDef) and denies_always(s)), None)


# ------------------------------------------------------------------ scopes
def scopes(ctx: LintContext) -> Iterator[tuple[BindingDef, object, SelectorSet, tuple]]:
    """Every binding and nested section: (binding, the binding or section, selectors, body)."""
    for s in ctx.sites():
        if isinstance(s.stmt, MatchDef) and s.stmt.satisfiable:
            yield s.binding, s.stmt, s.stmt.selectors, s.stmt.body
    for b in ctx.solution.bindings:
        yield b, b, b.selectors, b.body


def _target_keys(scope) -> frozenset:
    return frozenset((t.cls, t.endpoint, t.interface, t.method.name) for t in scope.targets)


def covers(outer: SelectorSet, outer_scope, inner: SelectorSet, inner_scope) -> bool:
    """Every event the inner scope selects is selected by the outer one."""
    if any(getattr(outer, f) is not None and getattr(outer, f) != getattr(inner, f) for f in ("src", "dst")):
        return False
    fields = ("component", "endpoint", "interface", "method")
    if all(getattr(outer, f) is None or getattr(outer, f) == getattr(inner, f) for f in fields):
        return True
    inner_t, outer_t = _target_keys(inner_scope), _target_keys(outer_scope)
    return bool(inner_t) and inner_t <= outer_t


def where(span: Span | None, here: Span | None, root: str = "") -> str:
    """``line N`` in the same file as ``here``, else ``file:line`` with the file relative to ``root``."""
    if span is None:
        return "an unknown place"
    if here is not None and here.file == span.file:
        return f"line {span.line}"
    return f"{relative_file(span.file, root) if root else span.file}:{span.line}"


# ------------------------------------------------------------------ rules
@rule(
    "LNT004", "error-binding-missing", "warning", "no `error` binding: every error reply is denied",
    "add `error { grant () }` (or error bindings for the servers that report errors)",
    category="bindings",
    why="Error replies are their own kind of event. A policy with no `error` binding at all denies every "
        "one of them, so a server that reports a failure leaves its client with a security error "
        "instead of the server's error code: failures become indistinguishable from policy denials.",
    bad=Example("use nk.base._\n\nuse EDL kl.core.Core\nuse EDL Einit\nuse EDL demo.Client\n"
                "use EDL demo.Server\nuse EDL demo.Logger\n\nexecute: kl.core.Execute\n\n"
                "execute { grant () }\nrequest dst=kl.core.Core interface=kl.core.Sync { grant () }\n"
                "response src=kl.core.Core { grant () }\n\n"
                "request src=demo.Client dst=demo.Server endpoint=core.store { grant () }\n"
                "request dst=demo.Logger { grant () }\nresponse { grant () }\n"),
    good=Example("use demo.prelude._\n"),
)
def error_binding_missing(ctx: LintContext) -> Iterator[Diagnostic]:
    sol = ctx.solution
    if any(b.event == "error" for b in sol.bindings):
        return
    if any(hops for _, hops in channel_hops(ctx)):
        yield ctx.finding("LNT004", "the policy has no `error` binding: every error reply is denied",
                          top_policy_span(ctx))


@rule(
    "LNT007", "binding-never-matches", "warning", "binding or section for a class that never runs",
    "start the class (init.yaml, or an `execute dst=CLASS` binding), or delete the binding",
    category="bindings",
    why="A binding (or a `match` section) whose `src` or `dst` names a class that init.yaml never starts "
        "and no `execute` binding lets start can never apply to an event. Such bindings are left over "
        "from renamed or removed programs, and they hide the fact that the program they were written "
        "for is not there.",
    bad=Example("use demo.prelude._\nuse EDL demo.Spare\n\n"
                "request src=demo.Spare dst=demo.Logger { grant () }\n"),
    good=Example("use demo.prelude._\n\nrequest src=demo.Server dst=demo.Logger { grant () }\n"),
)
def binding_never_matches(ctx: LintContext) -> Iterator[Diagnostic]:
    if not ctx.has_init:
        return
    running = ctx.started_classes | ctx.execute_targets
    reported: set[int] = set()
    for b, scope, sel, _ in scopes(ctx):
        if id(b) in reported:
            continue
        names = [sel.src] + ([sel.dst] if b.event != "execute" else [])
        idle = [n for n in names if n and n not in running and n not in (KERNEL_CLASS, EINIT_CLASS)]
        if idle:
            reported.add(id(b))
            what = "binding" if scope is b else "section"
            yield ctx.finding("LNT007", f"this {b.event} {what} can never apply: {idle[0]} is never started",
                              scope.span)


@rule(
    "LNT008", "binding-shadowed", "warning", "binding, section or choice arm that never has an effect",
    "delete it, or narrow the unconditional deny (or the earlier choice arm) that overrides it",
    category="bindings",
    why="Every binding that applies to an event votes, and one denial denies. A binding whose every "
        "event is also selected by an unconditional `deny ()` elsewhere can never grant anything: "
        "whatever it checks is overridden. Likewise a `choice` arm whose case repeats an earlier "
        "arm's is never taken. Either the rule is dead text, or the deny is broader than meant.",
    bad=Example(f"use demo.prelude._\n\n{_PUT} {{ assert (message.key < 10) }}\n"
                "request src=demo.Client dst=demo.Server method=Put { deny () }\n"),
    good=Example(f"use demo.prelude._\n\n{_PUT} {{ assert (message.key < 10) }}\n"
                 "request src=demo.Client dst=demo.Server method=Put { deny (message.key == 7) }\n"),
)
def binding_shadowed(ctx: LintContext) -> Iterator[Diagnostic]:
    all_scopes = list(scopes(ctx))
    denying = [(b, sc, sel, d) for b, sc, sel, body in all_scopes if (d := body_denies(body)) is not None]
    for b, scope, sel, body in all_scopes:
        if body_denies(body) is not None or not any(isinstance(s, CallDef) for s in body):
            continue
        for db, dscope, dsel, deny in denying:
            if dscope is scope or db.event != b.event or not covers(dsel, dscope, sel, scope):
                continue
            what = "binding" if scope is b else "section"
            yield ctx.finding("LNT008", f"this {what} can never grant: every event it applies to is also "
                                        f"denied unconditionally at {where(deny.span, scope.span, ctx.solution.root)}", scope.span)
            break
    for s in ctx.sites():
        if isinstance(s.stmt, ChoiceDef):
            seen: dict = {}
            for arm in s.stmt.arms:
                if arm.case is None:
                    continue
                key = shape(arm.case)
                if key in seen:
                    yield ctx.finding("LNT008", f"choice arm {_case_text(arm.case)} is never taken: the arm at "
                                                f"{where(seen[key], arm.span, ctx.solution.root)} has the same case", arm.span)
                else:
                    seen[key] = arm.span


def _case_text(case: ast.Lit) -> str:
    return f'"{case.value}"' if case.kind == "text" else str(case.value).lower()


@rule(
    "LNT009", "duplicate-binding", "warning", "binding or section repeated with the same selectors and body",
    "delete the repetition (a change made to one copy only would not take effect)",
    category="bindings",
    why="Two bindings (or sibling sections) with the same event, the same selectors and the same body "
        "decide exactly as one does. The copy is harmless today, but the next edit will touch one copy "
        "and not the other, and the one left behind keeps voting.",
    bad=Example(f"use demo.prelude._\n\n{_PUT} {{ assert (message.key < 10) }}\n"
                f"{_PUT} {{ assert (message.key < 10) }}\n"),
    good=Example(f"use demo.prelude._\n\n{_PUT} {{ assert (message.key < 10) }}\n"
                 f"{_PUT} {{ assert (message.text != \"\") }}\n"),
)
def duplicate_binding(ctx: LintContext) -> Iterator[Diagnostic]:
    first: dict = {}
    for b in ctx.solution.bindings:
        key = (b.event, b.selectors, b.audit, shape(b.body))
        if key in first:
            yield ctx.finding("LNT009", f"this {b.event} binding repeats the one at {where(first[key], b.span, ctx.solution.root)}", b.span)
        else:
            first[key] = b.span
    bodies = [b.body for b in ctx.solution.bindings] + [s.stmt.body for s in ctx.sites()
                                                        if isinstance(s.stmt, MatchDef)]
    for body in bodies:
        seen: dict = {}
        for st in body:
            if isinstance(st, MatchDef):
                key = shape(st)
                if key in seen:
                    yield ctx.finding("LNT009", f"this section repeats the one at {where(seen[key], st.span, ctx.solution.root)}", st.span)
                else:
                    seen[key] = st.span


@rule(
    "LNT012", "grant-everything", "warning", "grant-everything stub",
    "name the server, endpoint and method the client needs, and check the message where it matters",
    category="bindings",
    why="`request { grant () }` (and `security { grant () }`, or the same with only `src=`) lets a process "
        "call every method of every server it can reach, with any message: the policy stops enforcing "
        "anything on that path. It is how examples start and how policies fail review; replies "
        "(`response`, `error`) and start-up (`execute`) stubs are not reported, since they only follow "
        "what requests were granted.",
    bad=Example("use demo.prelude._\n\nrequest src=demo.Client { grant () }\n"),
    good=Example(f"use demo.prelude._\n\n{_PUT} {{ grant () }}\n"),
)
def grant_everything(ctx: LintContext) -> Iterator[Diagnostic]:
    for b, scope, sel, body in scopes(ctx):
        if b.event not in ("request", "security"):
            continue
        if sel.dst or sel.component or sel.endpoint or sel.interface or sel.method:
            continue
        rules = [s for s in body if isinstance(s, CallDef)]
        if rules and all(grants_always(c) for c in rules):
            who = f"from {sel.src}" if sel.src else "from every process"
            to = "to every server" if b.event == "request" else "of the security interface"
            yield ctx.finding("LNT012", f"grants every {b.event} {who} {to}, whatever its message", scope.span)


def _choice_domain(ctx: LintContext, e: ast.Expr) -> set | None:
    """The values a choice selector can take, when the policy says (Flow query, Booleans)."""
    if isinstance(e, ast.Call) and e.object is not None and e.method.text == "query":
        obj = ctx.solution.objects.get(e.object.text)
        if obj is not None and obj.model == "Flow" and isinstance(obj.config, dict):
            return {("text", s) for s in obj.config.get("states", ())}
    if isinstance(e, ast.BinOp) and e.op in ("==", "!=", "<", "<=", ">", ">=", "&&", "||", "==>"):
        return {("bool", True), ("bool", False)}
    if isinstance(e, ast.UnOp) and e.op == "!":
        return {("bool", True), ("bool", False)}
    return None


@rule(
    "LNT013", "choice-without-default", "warning", "`choice` without `_` that does not cover every value",
    "add a `_ : deny ()` arm (or `_ : grant ()`) to say what happens for the other values",
    category="bindings",
    why="A `choice` runs the arm whose case matches, or `_`. Without `_`, a value no arm names falls "
        "through: the event is denied (or the choice contributes nothing, depending on the KSM "
        "version), silently. Say which one you mean with an explicit `_` arm. A choice whose arms name "
        "every state of a Flow object, or both Booleans, is complete and not reported.",
    bad=Example('use demo.prelude._\nuse nk.regex._\n\n'
                f'{_PUT} {{\n    choice (re.select {{ text : message.text }}) {{\n'
                '        "^[a-z]+$" : grant ()\n    }\n}\n'),
    good=Example('use demo.prelude._\nuse nk.regex._\n\n'
                 f'{_PUT} {{\n    choice (re.select {{ text : message.text }}) {{\n'
                 '        "^[a-z]+$" : grant ()\n        _ : deny ()\n    }\n}\n'),
)
def choice_without_default(ctx: LintContext) -> Iterator[Diagnostic]:
    for s in ctx.sites():
        ch = s.stmt
        if not isinstance(ch, ChoiceDef) or any(a.case is None for a in ch.arms):
            continue
        domain = _choice_domain(ctx, ch.expr)
        cases = {(a.case.kind, a.case.value) for a in ch.arms}
        if domain is not None and domain <= cases:
            continue
        missing = ""
        if domain is not None:
            left = sorted(v for _, v in domain - cases)
            missing = " (not covered: " + ", ".join(f'"{v}"' if isinstance(v, str) else str(v).lower()
                                                    for v in left) + ")"
        yield ctx.finding("LNT013", f"choice has no `_` arm{missing}", ch.span)


@rule(
    "LNT020", "binding-addresses-nothing", "warning", "binding or section whose selectors address no message",
    "check the selectors: the server they name has no endpoint (and method) that fits them all",
    category="bindings",
    why="Each selector of the binding names something that exists, but together they select no message: "
        "the server class has no endpoints (`request dst=Einit`, a client-only program), or the endpoint, "
        "interface and method given belong to different servers. The SDK's compiler accepts such a "
        "binding and KSM never applies it, so whatever it checks is dead text and the message its author "
        "meant is decided by other bindings. Bindings on opaque servers (SDK programs without --sdk, the "
        "kernel) are not reported: their endpoints are unknown here.",
    bad=Example("use demo.prelude._\n\nrequest src=demo.Server dst=demo.Client { grant () }\n"),
    good=Example("use demo.prelude._\n\nrequest src=demo.Client dst=demo.Server { grant () }\n"),
)
def binding_addresses_nothing(ctx: LintContext) -> Iterator[Diagnostic]:
    def empty(scope) -> bool:
        return not scope.targets and not scope.opaque

    dead = {id(b) for b in ctx.solution.bindings if b.event != "execute" and empty(b)}
    for b, scope, sel, _ in scopes(ctx):
        if b.event == "execute" or not empty(scope) or (scope is not b and id(b) in dead):
            continue  # a section inside a binding that addresses nothing: the binding is reported
        if not any(getattr(sel, k) for k in ("src", "dst", "component", "endpoint", "interface", "method")):
            continue
        what = "binding" if scope is b else "section"
        server = sel.dst if b.event == "request" else sel.src
        cls = ctx.solution.classes.get(server) if server else None
        why = f": {server} has no endpoints" if cls is not None and not cls.endpoints and b.event != "security" \
            else (f": {server} has no security interface" if cls is not None and b.event == "security" else "")
        yield ctx.finding("LNT020", f"this {b.event} {what} ({sel.describe()}) addresses no message{why}",
                          scope.span)
