"""Symbolic (Z3) values shared by the security models' encodings.

Each model module keeps its Z3 encoding beside its concrete semantics; this module
holds only what they share: the symbolic value kinds, lifting Python values into
them, ``if-then-else`` on values, PSL equality, and reading a concrete value back
out of a Z3 model (for counterexamples).

Why static kinds: every PSL value in a binding has a kind fixed by the IDL types
and the literals (a message field is a number, a text, a list...).  The concrete
semantics branches on kinds at run time ("``<`` on a text runs incorrectly"); here
that branch is taken once, while encoding, so the formulas only hold the data part.

Errors travel beside values: an encoder returns ``(value, err)`` where ``err`` is
a Z3 Boolean that is true exactly when the concrete call "runs incorrectly".
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any, Iterable, Union

import z3


class NotEncoded(Exception):
    """A construct the Z3 encoding does not cover; a proof that needs it is UNKNOWN."""


_Z3_MAX_CHAR = {"unicode": 0x2FFFF, "bmp": 0xFFFF, "ascii": 0xFF}


def z3_max_char() -> int:
    """The highest code point a Z3 string character can hold (its ``encoding`` parameter)."""
    return _Z3_MAX_CHAR.get(str(z3.get_param("encoding")), 0x2FFFF)


def z3_text_value(text: str) -> z3.SeqRef:
    """``text`` as a Z3 string literal, character for character.

    Why not ``z3.StringVal``: it passes ``\\`` through and Z3 then reads ``\\u{41}``
    in the text as the escape for ``A``, so a policy text containing a backslash
    would become another text.  Raises ``ValueError`` for a character above
    :func:`z3_max_char`, which Z3 cannot represent.
    """
    codes = [ord(c) for c in text]
    top = z3_max_char()
    bad = next((c for c in codes if c > top), None)
    if bad is not None:
        raise ValueError(f"U+{bad:04X} is beyond Z3's characters (0..U+{top:04X})")
    ctx = z3.main_ctx()
    array = (ctypes.c_uint * len(codes))(*codes)
    return z3.SeqRef(z3.Z3_mk_u32string(ctx.ref(), len(codes), array), ctx)


def text_from_z3(value: z3.ExprRef) -> str:
    """The Python text of a Z3 string literal (e.g. a model's value for a string variable).

    Why not ``SeqRef.as_string``: it returns characters above U+00FF (and U+0000) as
    ``\\u{...}`` escapes, indistinguishable from a text spelling them out.
    """
    if not (isinstance(value, z3.SeqRef) and value.is_string_value()):
        raise ValueError(f"not a Z3 string literal: {value}")
    ctx = value.ctx_ref()
    n = z3.Z3_get_string_length(ctx, value.as_ast())
    array = (ctypes.c_uint * n)()
    z3.Z3_get_string_contents(ctx, value.as_ast(), n, array)
    return "".join(map(chr, array))


TRUE = z3.BoolVal(True)
FALSE = z3.BoolVal(False)


@dataclass(frozen=True)
class SNum:
    z: z3.ArithRef
    kind = "number"


@dataclass(frozen=True)
class SBool:
    z: z3.BoolRef
    kind = "bool"


@dataclass(frozen=True)
class SText:
    z: z3.SeqRef
    kind = "text"


@dataclass(frozen=True)
class SUnit:
    kind = "unit"


@dataclass(frozen=True)
class SList:
    """A bounded list: ``items`` up to the bound, the first ``length`` of them exist."""

    items: tuple
    length: z3.ArithRef
    kind = "list"


@dataclass(frozen=True)
class SRecord:
    """A record; ``present`` (unions only) says which member the message carries."""

    fields: dict
    present: dict | None = None
    kind = "record"


Sym = Union[SNum, SBool, SText, SUnit, SList, SRecord]
Encoded = tuple[Sym, z3.BoolRef]      # (value, runs incorrectly)


def anyof(conds: Iterable[z3.BoolRef]) -> z3.BoolRef:
    """Disjunction that stays ``False`` (not ``Or()``) when nothing can go wrong."""
    real = [c for c in conds if not z3.is_false(c)]
    if not real:
        return FALSE
    return real[0] if len(real) == 1 else z3.Or(real)


def allof(conds: Iterable[z3.BoolRef]) -> z3.BoolRef:
    real = [c for c in conds if not z3.is_true(c)]
    if not real:
        return TRUE
    return real[0] if len(real) == 1 else z3.And(real)


def lift(v: Any) -> Sym:
    """A Python value (literal, configuration entry) as a constant symbolic value."""
    if v is None:
        return SUnit()
    if isinstance(v, bool):
        return SBool(z3.BoolVal(v))
    if isinstance(v, int):
        return SNum(z3.IntVal(v))
    if isinstance(v, str):
        try:
            return SText(z3_text_value(v))
        except ValueError as exc:
            raise NotEncoded(str(exc)) from None
    if isinstance(v, (list, tuple)):
        return SList(tuple(lift(x) for x in v), z3.IntVal(len(v)))
    if isinstance(v, dict):
        return SRecord({k: lift(x) for k, x in v.items()})
    raise NotEncoded(f"value {v!r} has no symbolic form")


def scalar(s: Sym) -> z3.ExprRef | None:
    """The Z3 term of a scalar value (None for unit and compound values)."""
    return getattr(s, "z", None)


def ite(c: z3.BoolRef, a: Sym, b: Sym) -> Sym:
    """``c ? a : b`` on symbolic values of the same kind (compounds member-wise)."""
    if z3.is_true(c):
        return a
    if z3.is_false(c):
        return b
    if a.kind != b.kind:
        raise NotEncoded(f"a value that is {a.kind} or {b.kind} depending on the message")
    if isinstance(a, SUnit):
        return a
    if isinstance(a, SList):
        n = max(len(a.items), len(b.items))
        if len(a.items) != len(b.items):
            raise NotEncoded("lists of different bounds under one condition")
        return SList(tuple(ite(c, x, y) for x, y in zip(a.items, b.items)), z3.If(c, a.length, b.length)) if n else \
            SList((), z3.If(c, a.length, b.length))
    if isinstance(a, SRecord):
        if a.fields.keys() != b.fields.keys():
            raise NotEncoded("records of different shapes under one condition")
        present = None
        if a.present is not None or b.present is not None:
            pa = a.present or {k: TRUE for k in a.fields}
            pb = b.present or {k: TRUE for k in b.fields}
            present = {k: z3.If(c, pa[k], pb[k]) for k in a.fields}
        return SRecord({k: ite(c, a.fields[k], b.fields[k]) for k in a.fields}, present)
    return type(a)(z3.If(c, a.z, b.z))


def same(a: Sym, b: Sym) -> z3.BoolRef:
    """PSL equality of two values (``base.same_value``): kinds must agree."""
    if a.kind != b.kind:
        return FALSE
    if isinstance(a, SUnit):
        return TRUE
    if isinstance(a, SList):
        conds = [a.length == b.length]
        for i, (x, y) in enumerate(zip(a.items, b.items)):
            conds.append(z3.Implies(i < a.length, same(x, y)))
        if len(a.items) != len(b.items):
            shorter = min(len(a.items), len(b.items))
            conds.append(a.length <= shorter)
        return allof(conds)
    if isinstance(a, SRecord):
        if a.fields.keys() != b.fields.keys():
            return FALSE
        if a.present is not None or b.present is not None:
            raise NotEncoded("equality of union values")
        return allof(same(a.fields[k], b.fields[k]) for k in a.fields)
    return a.z == b.z


def concrete(s: Sym, model: z3.ModelRef) -> Any:
    """The Python value a Z3 model gives a symbolic value (for counterexamples)."""
    if isinstance(s, SUnit):
        return None
    if isinstance(s, SNum):
        return model.eval(s.z, model_completion=True).as_long()
    if isinstance(s, SBool):
        return z3.is_true(model.eval(s.z, model_completion=True))
    if isinstance(s, SText):
        return text_from_z3(model.eval(s.z, model_completion=True))
    if isinstance(s, SList):
        n = model.eval(s.length, model_completion=True).as_long()
        return [concrete(x, model) for x in s.items[:n]]
    if isinstance(s, SRecord):
        if s.present is not None:
            for k, p in s.present.items():
                if z3.is_true(model.eval(p, model_completion=True)):
                    return {k: concrete(s.fields[k], model)}
            return {}
        return {k: concrete(v, model) for k, v in s.fields.items()}
    raise NotEncoded(f"cannot read back {s!r}")


@dataclass
class Fresh:
    """Names fresh Z3 constants under a prefix (one per message, state copy, step)."""

    prefix: str
    count: int = 0
    made: list = field(default_factory=list)

    def int(self, hint: str) -> z3.ArithRef:
        return self._make(hint, z3.Int)

    def bool(self, hint: str) -> z3.BoolRef:
        return self._make(hint, z3.Bool)

    def text(self, hint: str) -> z3.SeqRef:
        return self._make(hint, z3.String)

    def _make(self, hint: str, ctor):
        self.count += 1
        c = ctor(f"{self.prefix}{hint}!{self.count}")
        self.made.append(c)
        return c


def symbolic_sid(arg: Sym, key: str = "sid") -> tuple[z3.ArithRef, z3.BoolRef]:
    """The SID field of a record argument (``require_sid``): a number or a handle record."""
    if arg.kind != "record" or key not in arg.fields:
        return z3.IntVal(-1), TRUE
    sid = arg.fields[key]
    if sid.kind == "record" and "handle" in sid.fields:
        sid = sid.fields["handle"]
    if sid.kind != "number":
        return z3.IntVal(-1), TRUE
    return sid.z, sid.z < 0


class SidSlots:
    """A flat state tuple holding ``width`` Z3 terms per tracked SID.

    The stateful encodings (Flow, HashSet, StaticMap, Mic) all keep one context per
    SID and address it by a symbolic SID; this is that addressing, once.  A SID
    that is a Z3 literal (the common case: ``src_sid`` of a fixed pair) is looked
    up directly instead of through an If-chain.
    """

    def __init__(self, sids: tuple[int, ...], known: tuple[int, ...], width: int):
        self.sids, self.known, self.width = sids, known, width

    def untracked(self, sid: z3.ArithRef) -> z3.BoolRef:
        """``sid`` exists as a SID but its context is not encoded (an escape)."""
        return z3.And(sid >= 0, *[sid != s for s in self.known])

    def _terms(self, state: tuple, i: int) -> list:
        return list(state[i * self.width:(i + 1) * self.width])

    def read(self, state: tuple, sid: z3.ArithRef, default: list) -> list:
        """The terms of ``sid``'s context; ``default`` for a SID that is not tracked."""
        if z3.is_int_value(sid):
            v = sid.as_long()
            return self._terms(state, self.sids.index(v)) if v in self.sids else list(default)
        out = list(default)
        for i, s in enumerate(self.sids):
            out = [z3.If(sid == s, t, o) for t, o in zip(self._terms(state, i), out)]
        return out

    def write(self, state: tuple, sid: z3.ArithRef, terms: list) -> tuple:
        """``state`` with ``sid``'s context replaced (unchanged for an untracked SID)."""
        out = list(state)
        w = self.width
        if z3.is_int_value(sid):
            v = sid.as_long()
            if v in self.sids:
                i = self.sids.index(v)
                out[i * w:(i + 1) * w] = terms
            return tuple(out)
        for i, s in enumerate(self.sids):
            hit = sid == s
            for j, t in enumerate(terms):
                out[i * w + j] = z3.If(hit, t, state[i * w + j])
        return tuple(out)
