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

_MISSING = object()


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


class KeyBindings(BindingIndex):
    """The engine's binding index, plus which (kind, src, dst) triples decide their keys
    the same way for any class on the non-kernel side (the channel graph's question)."""

    def __init__(self, bindings):
        super().__init__(bindings)
        self._shared: dict[tuple, tuple | None] = {}

    def same_for_every_class(self, triple: tuple) -> tuple | None:
        """A name for the bindings of ``triple`` when they decide its keys the same way for
        any class on the non-kernel side: the candidates themselves, when none has a
        ``match`` section (a section may name a class).  None otherwise."""
        found = self._shared.get(triple, _MISSING)
        if found is _MISSING:
            cands = self.candidates(triple)
            found = self._shared[triple] = (None if any(isinstance(st, MatchDef) for b in cands for st in b.body)
                                            else tuple(id(b) for b in cands))
        return found


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


# ------------------------------------------------------------ program fingerprints
#: Fields of syntax and model nodes that say where a thing is written, not what it does.
_WHERE = frozenset({"pos", "span", "node", "audit", "targets", "selectors", "satisfiable", "opaque"})


class NotPure(Exception):
    """The program reads something besides the message: a SID, a variable, a stateful object."""


def _shape(node, key: tuple, stateful: frozenset, depth: int = 0):
    """What a statement or expression does, without where it is written (raises NotPure)."""
    if depth > 400:
        raise NotPure("nested too deeply")
    if isinstance(node, MatchDef):
        if not (node.satisfiable and _selects(node.selectors, key)):
            return None                                   # a section that does not apply votes nothing
        return ("match", _body_shape(node.body, key, stateful, depth + 1))
    if isinstance(node, ast.Ref):
        if node.path[0] != "message":
            raise NotPure(".".join(node.path))
        return ("ref", node.path)
    if isinstance(node, ast.Call):
        name = node.object.text if node.object is not None else None
        if name in stateful:
            raise NotPure(name)
    if getattr(node, "object", None) in stateful and hasattr(node, "model"):   # a CallDef
        raise NotPure(node.object)
    if isinstance(node, (list, tuple)):
        return tuple(_shape(n, key, stateful, depth + 1) for n in node)
    if isinstance(node, (bool, int, str, float)) or node is None:
        return (type(node).__name__, node)
    fields = getattr(node, "__dataclass_fields__", None)
    if fields is None:
        raise NotPure(type(node).__name__)
    return (type(node).__name__,) + tuple(
        _shape(getattr(node, f), key, stateful, depth + 1) for f in fields if f not in _WHERE)


def _body_shape(body, key: tuple, stateful: frozenset, depth: int = 0) -> tuple:
    return tuple(s for s in (_shape(st, key, stateful, depth) for st in body) if s is not None)


def program_shape(selecting, key: tuple, stateful: frozenset, cache: dict | None = None) -> tuple | None:
    """The statements that decide engine key ``key``, without where they are written, or
    None when they read anything but the message.

    Why: on a policy with one rule per channel, thousands of class pairs carry the same
    ``assert (message.key < 1000)`` at different lines.  When the statements read only
    the message, two keys of equal shape (and equal message type) grant exactly the same
    messages in every state, whoever sends them, so one proof answers for both.  A SID,
    a PAL variable or a stateful model object makes the answer depend on who sends or on
    what happened before: such keys keep their own proofs (None).

    ``cache``: shapes of binding bodies without ``match`` sections (they do not depend
    on the key), by binding, for a caller asking about many keys of the same bindings.
    """
    out = []
    for b in selecting:
        found = cache.get(id(b), _MISSING) if cache is not None else _MISSING
        if found is _MISSING:
            try:
                found = _body_shape(b.body, key, stateful)
            except NotPure:
                found = None
            if cache is not None and not any(isinstance(st, MatchDef) for st in b.body):
                cache[id(b)] = found
        if found is None:
            return None
        out.append(found)
    return tuple(out)

_UNIT_GRANT = ("CallDef", ("str", "base"), ("str", "Base"), ("str", "grant"), ("str", "rule"),
               ("Lit", ("str", "unit"), ("NoneType", None)))


def plain_grant_shape(shape: tuple) -> bool:
    """Whether a program shape only grants, unconditionally (a pure allowlist entry): at
    least one ``grant ()`` applies and nothing else but sections holding more of them."""
    def grants(stmts) -> int | None:          # how many unit grants, None if anything else
        n = 0
        for s in stmts:
            if s == _UNIT_GRANT:
                n += 1
            elif s[0] == "match" and (inner := grants(s[1])) is not None:
                n += inner
            else:
                return None
        return n

    counts = [grants(body) for body in shape]
    return None not in counts and sum(counts) > 0
