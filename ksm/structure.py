"""The structure check KSM performs before any rule runs, compiled from IDL types.

KSM is generated from the IDL, so it knows the exact shape of every message and
rejects one that does not fit the called method before the policy is consulted.
Here each (method, direction) gets a validator *compiled once* into nested
closures: checking a message is then a handful of type tests and comparisons, with
no walking of IDL type objects per message.

A message is a mapping from parameter name to value:

* integers: ``int`` within the IDL type's range (``bool`` is not an integer here);
* ``string<N>``: ``str`` of at most N characters (KCE 1.4: UTF-8 text; a Python
  ``str`` always is);
* ``bytes<N>``: ``bytes``/``bytearray`` of at most N bytes (never visible to rules);
* ``sequence<T, N>``: list or tuple of at most N elements; ``array<T, N>``: exactly N;
* struct: a mapping with exactly the struct's fields; union: a mapping with exactly
  one of the union's fields (the tag);
* ``Handle``: the SID the kernel substituted, as an ``int``, or a mapping
  ``{handle: sid, rights: mask}``; normalised to the mapping form rules see.

A validator returns the normalised message, or raises :class:`MalformedMessage`
naming the first problem ("req.items[3]: 70000 out of range for UInt16"); its
``check`` attribute answers the same but returns the problem as a ``str`` instead of
raising (the decision function's hot path words the reason either way).  The path
in a reason is built only when a message is malformed (see :class:`_Bad`).
"""
from __future__ import annotations

from typing import Any
from collections.abc import Callable, Mapping

from policy_lang.types import (
    ArrayType, BytesType, HandleType, IdlType, IntType, MethodDef, SequenceType, StringType,
    StructType, UnionType,
)

from .events import NO_MESSAGE, int_text

Check = Callable[[Any, str], Any]
_Check = Callable[[Any], Any]           # compiled form: the value only (see _Bad)


class MalformedMessage(Exception):
    """The message does not fit the called method; the event is denied before any rule."""


class _Bad(Exception):
    """A value that does not fit, on its way up to the parameter that holds it.

    Why a trail instead of a path argument: a check that is passed its path (``items[3].tag``)
    builds that text for every element and field of every message, and the text is only
    ever read when the message is malformed.  Here each container adds its own segment
    while the failure unwinds through it, so a well-formed message builds no text at all.
    """

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what
        self.trail: list = []       # innermost first: field names (str) and indices (int)


def _path(root: str, trail: list) -> str:
    path = root
    for seg in reversed(trail):
        if type(seg) is int:
            path = f"{path}[{seg}]"
        else:
            path = f"{path}.{seg}" if path else seg
    return path


def _malformed(bad: _Bad, root: str) -> MalformedMessage:
    path = _path(root, bad.trail)
    return MalformedMessage(f"{path}: {bad.what}" if path else bad.what)


def _int_problem(name: str, v: Any) -> str:
    """Why ``v`` is not an integer of IDL type ``name`` (``v`` is known not to be one)."""
    if type(v) is not int:
        return f"expected {name}, got {type(v).__name__}"
    return f"{int_text(v)} out of range for {name}"


def _int_check(t: IntType) -> _Check:
    lo, hi, name = t.min, t.max, t.name

    def check(v: Any) -> Any:
        if type(v) is not int or v < lo or v > hi:
            raise _Bad(_int_problem(name, v))
        return v

    return check


def _string_check(t: StringType) -> _Check:
    bound = t.bound

    def check(v: Any) -> Any:
        if type(v) is not str:
            raise _Bad(f"expected string<{bound}>, got {type(v).__name__}")
        if len(v) > bound:
            raise _Bad(f"string of {len(v)} characters exceeds string<{bound}>")
        if "\x00" in v:
            raise _Bad("string contains a NUL character")
        if not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise _Bad("string is not valid UTF-8 text (a lone surrogate)") from None
        return v

    return check


def _bytes_check(t: BytesType) -> _Check:
    bound = t.bound

    def check(v: Any) -> Any:
        if not isinstance(v, (bytes, bytearray)):
            raise _Bad(f"expected bytes<{bound}>, got {type(v).__name__}")
        if len(v) > bound:
            raise _Bad(f"{len(v)} bytes exceed bytes<{bound}>")
        return bytes(v)

    return check


def _handle_check(t: HandleType) -> _Check:
    def check(v: Any) -> Any:
        if type(v) is int:
            if v < 0 or v > 0xFFFFFFFF:
                raise _Bad(f"SID {int_text(v)} out of range")
            return {"handle": v, "rights": 0}
        if isinstance(v, Mapping) and set(v) <= {"handle", "rights"} and type(v.get("handle")) is int:
            rights = v.get("rights", 0)
            if type(rights) is not int or not 0 <= rights <= 0xFFFFFFFF:
                raise _Bad("handle rights must be a UInt32 mask")
            if not 0 <= v["handle"] <= 0xFFFFFFFF:
                raise _Bad(f"SID {int_text(v['handle'])} out of range")
            return {"handle": v["handle"], "rights": rights}
        raise _Bad("expected a handle (a SID, or {handle, rights})")

    return check


def _sequence_check(t: SequenceType | ArrayType) -> _Check:
    elem = _compile(t.element)
    exact = isinstance(t, ArrayType)
    n = t.length if exact else t.bound
    kind = "array" if exact else "sequence"

    def check(v: Any) -> Any:
        if not isinstance(v, (list, tuple)):
            raise _Bad(f"expected {kind} of at most {n}, got {type(v).__name__}")
        if exact and len(v) != n:
            raise _Bad(f"array needs exactly {n} elements, got {len(v)}")
        if len(v) > n:
            raise _Bad(f"{len(v)} elements exceed sequence bound {n}")
        try:
            return [elem(x) for x in v]
        except _Bad:
            pass
        for i, x in enumerate(v):       # only now: which element (the checks are pure)
            try:
                elem(x)
            except _Bad as bad:
                bad.trail.append(i)
                raise
        raise AssertionError("an element check failed once and passed again")   # pragma: no cover

    return check


def _struct_check(t: StructType) -> _Check:
    fields = [(f.name, _compile(f.type)) for f in t.fields]
    names = frozenset(n for n, _ in fields)

    def check(v: Any) -> Any:
        if not isinstance(v, Mapping):
            raise _Bad(f"expected struct {t.name}, got {type(v).__name__}")
        extra = set(v) - names
        if extra:
            raise _Bad(f"struct {t.name} has no field {sorted(map(str, extra))[0]}")
        out = {}
        for name, sub in fields:
            if name not in v:
                raise _Bad(f"struct {t.name} misses field {name}")
            try:
                out[name] = sub(v[name])
            except _Bad as bad:
                bad.trail.append(name)
                raise
        return out

    return check


def _union_check(t: UnionType) -> _Check:
    fields = {f.name: _compile(f.type) for f in t.fields}

    def check(v: Any) -> Any:
        if not isinstance(v, Mapping) or len(v) != 1:
            raise _Bad(f"union {t.name} needs exactly one of {', '.join(fields)}")
        (name, value), = v.items()
        sub = fields.get(name)
        if sub is None:
            raise _Bad(f"union {t.name} has no member {name}")
        try:
            return {name: sub(value)}
        except _Bad as bad:
            bad.trail.append(name)
            raise

    return check


_COMPILERS = {
    IntType: _int_check, StringType: _string_check, BytesType: _bytes_check, HandleType: _handle_check,
    SequenceType: _sequence_check, ArrayType: _sequence_check, StructType: _struct_check, UnionType: _union_check,
}


def _compile(t: IdlType) -> _Check:
    return _COMPILERS[type(t)](t)


def compile_type(t: IdlType) -> Check:
    """The check of one value of type ``t``: ``check(value, path)`` returns the normalised
    value or raises :class:`MalformedMessage` naming the problem at ``path``."""
    inner = _compile(t)

    def check(v: Any, path: str) -> Any:
        try:
            return inner(v)
        except _Bad as bad:
            raise _malformed(bad, path) from None

    return check


def reasoned(validate: Callable[[Any], dict]) -> Callable[[Any], dict | str]:
    """``validate`` answering its reason (a ``str``) instead of raising MalformedMessage.

    Every validator made here has one as its ``check`` attribute; a decision that has
    to word the reason anyway is spared the exception (the integer shapes answer
    without raising at all).  Any other exception still propagates.
    """
    def check(message: Any) -> dict | str:
        try:
            return validate(message)
        except MalformedMessage as exc:
            return str(exc)
    return check


def compile_message(params) -> Callable[[Mapping], dict]:
    """Validator for a whole message: exactly these parameters, each well formed.

    Shapes that are most of the traffic get their own closure, because every decision
    pays for the check: no parameters, one integer parameter, only integer parameters
    (bounds compared inline), and the general case.  A message of integers only is
    returned as it is when it is a plain ``dict`` (integers are immutable, so there is
    nothing to normalise or copy); the others are normalised copies.  Reasons and paths
    are built only when a message is malformed.  ``validate.check(message)`` answers
    the same, but returns the reason (a ``str``) where ``validate`` raises it.
    """
    checks = [(p.name, _compile(p.type)) for p in params]
    names = frozenset(n for n, _ in checks)
    count = len(checks)

    def shape_problem(message: Any) -> None:
        """Raise for a message that is not a mapping of exactly these parameters."""
        if not isinstance(message, Mapping):
            raise MalformedMessage("message must be a mapping of parameter values")
        if len(message) != count or not names.issuperset(message):
            extra = set(message) - names
            if extra:
                raise MalformedMessage(f"unknown parameter {sorted(map(str, extra))[0]}")
            missing = [n for n, _ in checks if n not in message]
            raise MalformedMessage(f"missing parameter {missing[0]}")

    if not checks:
        def validate_empty(message: Mapping) -> dict:
            if message is not NO_MESSAGE and (type(message) is not dict or message):
                shape_problem(message)
            return {}
        validate_empty.takes_nothing = True     # NO_MESSAGE needs no check
        validate_empty.check = reasoned(validate_empty)
        return validate_empty

    if all(isinstance(p.type, IntType) for p in params):
        bounds = tuple((p.name, p.type.min, p.type.max, p.type.name) for p in params)
        if count == 1:
            (only, lo, hi, type_name), = bounds

            def validate_int(message: Mapping) -> dict:
                if type(message) is dict and len(message) == 1:
                    v = message.get(only, message)          # the message itself: absent
                    if type(v) is int and lo <= v <= hi:
                        return message
                    if v is not message:
                        raise MalformedMessage(f"{only}: {_int_problem(type_name, v)}")
                shape_problem(message)
                v = message[only]
                if type(v) is not int or v < lo or v > hi:
                    raise MalformedMessage(f"{only}: {_int_problem(type_name, v)}")
                return {only: v}

            def check_int(message: Mapping) -> dict | str:
                if type(message) is dict and len(message) == 1:
                    v = message.get(only, message)
                    if type(v) is int and lo <= v <= hi:
                        return message
                    if v is not message:
                        return f"{only}: {_int_problem(type_name, v)}"
                try:
                    return validate_int(message)
                except MalformedMessage as exc:
                    return str(exc)
            validate_int.check = check_int
            return validate_int

        def validate_ints(message: Mapping) -> dict:
            if type(message) is not dict or len(message) != count or not names.issuperset(message):
                shape_problem(message)
                message = {name: message[name] for name, _, _, _ in bounds}
            for name, lo, hi, type_name in bounds:
                v = message[name]
                if type(v) is not int or v < lo or v > hi:
                    raise MalformedMessage(f"{name}: {_int_problem(type_name, v)}")
            return message
        validate_ints.check = reasoned(validate_ints)
        return validate_ints

    def validate(message: Mapping) -> dict:
        if type(message) is not dict or len(message) != count or not names.issuperset(message):
            shape_problem(message)
        try:
            return {name: check(message[name]) for name, check in checks}
        except _Bad:
            pass
        for name, check in checks:      # only now: which parameter
            try:
                check(message[name])
            except _Bad as bad:
                raise _malformed(bad, name) from None
        raise AssertionError("a parameter check failed once and passed again")   # pragma: no cover

    validate.check = reasoned(validate)
    return validate


def default_value(t: IdlType) -> Any:
    """The value PAL gives a parameter a test case leaves out (zero, empty, first member)."""
    if isinstance(t, IntType):
        return 0
    if isinstance(t, StringType):
        return ""
    if isinstance(t, BytesType):
        return b""
    if isinstance(t, HandleType):
        return {"handle": 0, "rights": 0}
    if isinstance(t, SequenceType):
        return []
    if isinstance(t, ArrayType):
        return [default_value(t.element) for _ in range(t.length)]
    if isinstance(t, StructType):
        return {f.name: default_value(f.type) for f in t.fields}
    if isinstance(t, UnionType):
        first = t.fields[0]
        return {first.name: default_value(first.type)}
    raise TypeError(t)


def with_defaults(params, given: Mapping | None) -> dict:
    """PAL message: given values, and defaults for the parameters (and struct fields) left out."""
    given = dict(given or {})
    out = {}
    for p in params:
        if p.name in given:
            out[p.name] = _fill(p.type, given.pop(p.name))
        else:
            out[p.name] = default_value(p.type)
    out.update(given)  # unknown names stay, so the structure check reports them
    return out


def _fill(t: IdlType, v: Any) -> Any:
    if isinstance(t, StructType) and isinstance(v, Mapping):
        out = {f.name: _fill(f.type, v[f.name]) if f.name in v else default_value(f.type) for f in t.fields}
        out.update({k: x for k, x in v.items() if k not in out})
        return out
    if isinstance(t, (SequenceType, ArrayType)) and isinstance(v, (list, tuple)):
        return [_fill(t.element, x) for x in v]
    return v


def message_checker(method: MethodDef, event: str) -> Callable[[Mapping], dict]:
    from policy_lang.solution import message_params

    return compile_message(message_params(method, event))
