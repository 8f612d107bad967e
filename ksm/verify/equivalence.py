"""Event keys the policy cannot tell apart: one program, one message shape.

The kernel has well over a hundred methods, and every process class may call each
of them: without care, every back end that walks event keys (the prover's
transition relation, crosscheck, the channel graph) pays for all of them, while a
policy usually treats them in a handful of groups (a blanket
``request dst=kl.core.Core``, one ``match interface=kl.core.Sync``...).  Two keys
are *equivalent* when the same bindings select them, the same nested sections
apply to them, and their messages have the same typed parameters (and, when a rule
reads the message, the same untyped ones): the decision function then runs the same
program on the same messages, and the Z3 model encodes the same formula.  One key
of each group answers for all of them.
"""
from __future__ import annotations

from policy_lang.solution import ChoiceDef, MatchDef
from policy_lang.syntax import ast

from ..engine import BindingIndex, _selects


def sections(body, key: tuple) -> tuple:
    """The nested sections of a binding body that apply to engine key ``key``."""
    out = []
    for st in body:
        if isinstance(st, MatchDef):
            if st.satisfiable and _selects(st.selectors, key):
                out.append((id(st), sections(st.body, key)))
        elif isinstance(st, ChoiceDef):
            out.append((id(st), tuple(sections(a.body, key) for a in st.arms)))
    return tuple(out)


def mentions_message(node, depth: int = 0) -> bool:
    """Whether a syntax (sub)tree refers to ``message`` anywhere (a walk over its fields)."""
    if isinstance(node, ast.Ref):
        return node.path[0] == "message"
    if isinstance(node, (list, tuple)):
        return any(mentions_message(n, depth + 1) for n in node)
    if depth > 200 or not hasattr(node, "__dataclass_fields__"):
        return False
    return any(mentions_message(getattr(node, f), depth + 1) for f in node.__dataclass_fields__)


def reads_message_in(body, key: tuple) -> bool:
    """Whether the parts of a binding body that apply to ``key`` read the message."""
    for st in body:
        if isinstance(st, MatchDef):
            if st.satisfiable and _selects(st.selectors, key) and reads_message_in(st.body, key):
                return True
        elif isinstance(st, ChoiceDef):
            if mentions_message(st.expr) or any(reads_message_in(a.body, key) for a in st.arms):
                return True
        elif mentions_message(st):
            return True
    return False


class Equivalence:
    """Signatures of engine keys of one solution (memoised per binding)."""

    def __init__(self, solution):
        self.bindings = BindingIndex(solution.bindings)
        self._reads: dict[int, bool] = {}

    def reads_message(self, b) -> bool:
        found = self._reads.get(id(b))
        if found is None:
            found = self._reads[id(b)] = mentions_message(b.body)
        return found

    def signature(self, engine_key: tuple, method_def, with_untyped: bool = False,
                  selecting: list | None = None) -> tuple:
        """What decides a key: its selecting bindings and sections, and its message shape.

        ``selecting``: the bindings that select the key, when the caller has them already.
        """
        if selecting is None:
            selecting = self.bindings.selecting(engine_key)
        programs = tuple((id(b), sections(b.body, engine_key)) for b in selecting)
        params = method_def.params if method_def is not None else None
        untyped = None
        if method_def is not None and (with_untyped or any(
                self.reads_message(b) and reads_message_in(b.body, engine_key) for b in selecting)):
            untyped = method_def.untyped
        return programs, params, untyped
