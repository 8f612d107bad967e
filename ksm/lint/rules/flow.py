"""Flow objects: states nothing reaches, transitions nothing triggers, exits that do not exist.

Read from the object's configuration (``parse_config``, the model's own reading) and
from the bindings' ``enter`` calls.  A state written as a literal is known; an
``enter`` whose state comes from the message could enter anything, and then the
transition rule stays silent for that object.
"""
from __future__ import annotations

from collections import deque
from typing import Iterator

from policy_lang.diagnostics import Diagnostic
from policy_lang.solution import CallDef, ChoiceDef, MatchDef, PolicyObjectDef
from policy_lang.syntax import ast

from ...security_models import ModelError
from ...security_models.flow import FlowConfig, parse_config
from ..catalogue import Example, rule
from ..context import LintContext
from .bindings import shape

_DOOR = (
    'policy object door : Flow {{\n'
    '    type State = "closed" | "open" | "broken"\n'
    '    config = {{ states : ["closed", "open", "broken"], initial : "closed",\n'
    '               transitions : {{ {transitions} }} }}\n'
    '}}\n\n'
    'execute dst=demo.Server {{ door.init {{ sid : dst_sid }} }}\n'
)
_USE = "request src=demo.Client dst=demo.Server endpoint=core.store method=Put"
_ENTER_OPEN_CLOSED = (f'{_USE} {{ door.enter {{ sid : dst_sid, state : "open" }} }}\n'
                      'request src=demo.Client dst=demo.Server endpoint=core.store method=Get {\n'
                      '    door.enter { sid : dst_sid, state : "closed" }\n}\n')
_ENTER_BROKEN = ('request src=demo.Server dst=demo.Logger endpoint=log method=Write {\n'
                 '    door.enter { sid : src_sid, state : "broken" }\n}\n')


def _door(transitions: str, body: str) -> Example:
    return Example("use demo.prelude._\n\n" + _DOOR.format(transitions=transitions) + body)


def flow_objects(ctx: LintContext) -> Iterator[tuple[PolicyObjectDef, FlowConfig]]:
    for obj in ctx.solution.objects.values():
        if obj.model == "Flow":
            try:
                yield obj, parse_config(obj)
            except ModelError:
                continue          # a broken configuration is the front end's report


def _field(arg: ast.Expr, name: str) -> ast.Expr | None:
    if isinstance(arg, ast.RecordExpr):
        for f in arg.fields:
            if isinstance(f.key, ast.Name) and f.key.text == name:
                return f.value
    return None


def _text(e: ast.Expr | None) -> str | None:
    return e.value if isinstance(e, ast.Lit) and e.kind == "text" else None


def enters(ctx: LintContext) -> Iterator[tuple[CallDef, dict]]:
    """Every Flow ``enter`` call with the states known to hold where it runs.

    The second item maps (object, shape of the sid argument) to the state a
    surrounding ``choice (obj.query {sid})`` arm selected.
    """
    def walk(body, known: dict):
        for st in body:
            if isinstance(st, CallDef):
                if st.method == "enter":
                    yield st, known
            elif isinstance(st, MatchDef):
                yield from walk(st.body, known)
            elif isinstance(st, ChoiceDef):
                q = st.expr
                key = None
                if isinstance(q, ast.Call) and q.object is not None and q.method.text == "query":
                    key = (q.object.text, shape(_field(q.arg, "sid")))
                for arm in st.arms:
                    case = _text(arm.case) if arm.case is not None else None
                    yield from walk(arm.body, {**known, key: case} if key and case else known)

    for b in ctx.solution.bindings:
        yield from walk(b.body, {})


@rule(
    "LNT017", "flow-state-unreachable", "warning", "Flow state unreachable from the initial state",
    "add a transition that leads to it, or remove the state",
    category="flow",
    why="Every FSM of a Flow object starts in `initial` and moves only along `transitions`. A state no "
        "chain of transitions leads to can never be current: rules that allow it never grant, and "
        "`choice` arms for it never run. Usually a transition is missing from the table.",
    bad=_door('"closed" : ["open"], "open" : ["closed"]',
              _ENTER_OPEN_CLOSED),
    good=_door('"closed" : ["open"], "open" : ["closed", "broken"]',
               _ENTER_OPEN_CLOSED + _ENTER_BROKEN),
)
def flow_state_unreachable(ctx: LintContext) -> Iterator[Diagnostic]:
    for obj, cfg in flow_objects(ctx):
        seen, todo = {cfg.initial}, deque([cfg.initial])
        while todo:
            for nxt in sorted(cfg.transitions.get(todo.popleft(), ())):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        for s in cfg.states:
            if s not in seen:
                yield ctx.finding("LNT017", f'state "{s}" of Flow object {obj.name} cannot be reached: no chain '
                                            f'of transitions leads to it from "{cfg.initial}"', obj.span)


@rule(
    "LNT018", "flow-state-no-way-out", "warning",
    "Flow `enter` from a state the configuration gives no way to that target",
    "add the transition to the configuration, or move the `enter` to the arm of a state that allows it",
    category="flow",
    why="Inside `choice (obj.query {sid})`, the arm for state S knows the FSM is in S. An `enter` there "
        "to a state T that `transitions` does not list for S always denies. When S lists no "
        "transitions at all it is a state with no way out: once there, the FSM stays for good, though "
        "the policy plainly expected to leave it.",
    bad=_door('"closed" : ["open", "broken"], "open" : ["closed"]',
              f'{_USE} {{\n    choice (door.query {{ sid : dst_sid }}) {{\n'
              '        "closed" : door.enter { sid : dst_sid, state : "open" }\n'
              '        "open"   : door.enter { sid : dst_sid, state : "closed" }\n'
              '        "broken" : door.enter { sid : dst_sid, state : "closed" }\n'
              '    }\n}\n' + _ENTER_BROKEN),
    good=_door('"closed" : ["open", "broken"], "open" : ["closed"], "broken" : ["closed"]',
               f'{_USE} {{\n    choice (door.query {{ sid : dst_sid }}) {{\n'
               '        "closed" : door.enter { sid : dst_sid, state : "open" }\n'
               '        "open"   : door.enter { sid : dst_sid, state : "closed" }\n'
               '        "broken" : door.enter { sid : dst_sid, state : "closed" }\n'
               '    }\n}\n' + _ENTER_BROKEN),
)
def flow_state_no_way_out(ctx: LintContext) -> Iterator[Diagnostic]:
    configs = {obj.name: cfg for obj, cfg in flow_objects(ctx)}
    for call, known in enters(ctx):
        cfg = configs.get(call.object)
        target = _text(_field(call.arg, "state"))
        current = known.get((call.object, shape(_field(call.arg, "sid"))))
        if cfg is None or target is None or current is None or cfg.permits(current, target):
            continue
        exits = sorted(cfg.transitions.get(current, ()))
        why = (f'"{current}" has no way out' if not exits else
               f'the configuration has no transition "{current}" -> "{target}" (only to '
               + ", ".join(f'"{s}"' for s in exits) + ")")
        yield ctx.finding("LNT018", f'{call.object}.enter to "{target}" in the arm for "{current}" always '
                                    f"denies: {why}", call.span)


@rule(
    "LNT019", "flow-transition-unused", "warning", "Flow transitions no binding ever triggers",
    "add the binding that enters the state, or remove the transitions from the configuration",
    category="flow",
    why="A transition is taken only by an `enter` to its target state. If no binding enters a state, "
        "every transition into it is dead configuration, and the state machine the policy enforces is "
        "smaller than the one the configuration describes: often a binding was forgotten or enters a "
        "misspelt state.",
    bad=_door('"closed" : ["open"], "open" : ["closed", "broken"]',
              _ENTER_OPEN_CLOSED),
    good=_door('"closed" : ["open"], "open" : ["closed", "broken"]',
               _ENTER_OPEN_CLOSED + _ENTER_BROKEN),
)
def flow_transition_unused(ctx: LintContext) -> Iterator[Diagnostic]:
    entered: dict[str, set[str | None]] = {}
    for call, _ in enters(ctx):
        entered.setdefault(call.object, set()).add(_text(_field(call.arg, "state")))
    for obj, cfg in flow_objects(ctx):
        mine = entered.get(obj.name, set())
        if None in mine:
            continue               # an enter whose state is computed could trigger any transition
        for target in cfg.states:
            into = sorted(s for s, dsts in cfg.transitions.items() if target in dsts)
            if into and target not in mine:
                listed = ", ".join(f'"{s}" -> "{target}"' for s in into)
                what = "transition" if len(into) == 1 else "transitions"
                verb = "never happens" if len(into) == 1 else "never happen"
                yield ctx.finding("LNT019", f'no binding enters "{target}" of Flow object {obj.name}, so '
                                            f"{what} {listed} {verb}", obj.span)
