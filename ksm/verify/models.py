"""Which symbolic encoding stands for each policy object.

The encodings themselves live in the model modules (``ksm/security_models/*``),
beside the concrete semantics they mirror; this table only picks one per object.
Stateless models are adapted to the common shape (their state is the empty tuple).

Every model has an exact encoding.  Where one must over-approximate a grant (Mic
labelling a SID it does not track), it notes the condition in ``overgrants``: the
prover then reports a counterexample the decision function rejects as UNKNOWN
rather than as a bug.  What an encoding cannot express exactly raises
:class:`NotEncoded`, and the property is UNKNOWN.
"""
from __future__ import annotations

from typing import Any

import z3

from policy_lang.solution import PolicyObjectDef

from ..security_models import arith, base, boolean, pred, regex, struct
from ..security_models.flow import FlowSymbolic
from ..security_models.hashset import HashSetSymbolic
from ..security_models.mic import MicSymbolic
from ..security_models.staticmap import StaticMapSymbolic
from ..security_models.symbolic import FALSE, TRUE, Fresh, NotEncoded, SBool, Sym

_EXPRESSIONS = {
    "Pred": pred.symbolic_expression, "Bool": boolean.symbolic_expression,
    "Math": arith.symbolic_expression, "Struct": struct.symbolic_expression,
}


class _NoState:
    """Encodings that keep no symbolic state (their state is the empty tuple)."""

    def lift(self, concrete: Any) -> tuple:
        return ()

    def fresh(self, fresh: Fresh) -> tuple[tuple, z3.BoolRef]:
        return (), TRUE


class Stateless(_NoState):
    """A stateless model: rules and expressions over symbolic arguments."""

    stateful = False

    def __init__(self, obj: PolicyObjectDef):
        self.obj = obj
        self.model = obj.model

    def rule(self, state: tuple, method: str, arg: Sym):
        if self.model == "Base":
            granted, err = base.symbolic_rule(method, arg)
            return granted, state, err
        return FALSE, state, TRUE              # the other stateless models have no rules

    def expression(self, state: tuple, method: str, arg: Sym):
        if self.model == "Regex":
            return _regex_expression(method, arg)
        fn = _EXPRESSIONS.get(self.model)
        if fn is None:
            return SBool(FALSE), TRUE
        return fn(method, arg)

    def choose(self, state: tuple, method: str, arg: Sym, cases: list):
        """Per-case selection conditions for ``re.select``; None: compare by value."""
        if self.model != "Regex" or method != "select":
            return None
        text = arg.fields.get("text") if arg.kind == "record" else None
        if text is None or text.kind != "text" or any(c is not None and not isinstance(c, str) for c in cases):
            return [FALSE for _ in cases], TRUE
        return [FALSE if c is None else regex.z3_match(text.z, c) for c in cases], FALSE


def _regex_expression(method: str, arg: Sym):
    if arg.kind != "record":
        return SBool(FALSE), TRUE
    text = arg.fields.get("text")
    if text is None or text.kind != "text":
        return SBool(FALSE), TRUE
    if method == "select":
        return text, FALSE
    if method != "match":
        return SBool(FALSE), TRUE
    pattern = arg.fields.get("pattern")
    if pattern is None or pattern.kind != "text":
        return SBool(FALSE), TRUE
    literal = z3.simplify(pattern.z)
    if not z3.is_string_value(literal):
        raise NotEncoded("re.match with a pattern computed from the message")
    try:
        return SBool(regex.z3_match(text.z, literal.as_string())), FALSE
    except regex.ModelError:
        return SBool(FALSE), TRUE              # a pattern the dialect refuses runs incorrectly


def symbolic_model(obj: PolicyObjectDef, sids: tuple[int, ...], fresh: Fresh, tracked: tuple[int, ...] | None = None):
    """The symbolic encoding standing for ``obj`` (exact where one exists).

    ``tracked`` are the SIDs whose contexts can exist in the modelled runs (the
    others provably have none); ``sids`` every SID that exists.
    """
    if obj.model == "Flow":
        return FlowSymbolic(obj, tracked if tracked is not None else sids, sids)
    if obj.model == "HashSet":
        return HashSetSymbolic(obj, tracked if tracked is not None else sids, sids)
    if obj.model == "StaticMap":
        return StaticMapSymbolic(obj, tracked if tracked is not None else sids, sids)
    if obj.model == "Mic":
        return MicSymbolic(obj, tracked if tracked is not None else sids, sids)
    return Stateless(obj)
