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
naming the first problem ("req.items[3]: 70000 out of range for UInt16").
"""
from __future__ import annotations

from typing import Any
from collections.abc import Callable, Mapping

from policy_lang.types import (
    ArrayType, BytesType, HandleType, IdlType, IntType, MethodDef, SequenceType, StringType,
    StructType, UnionType,
)

from .events import int_text

Check = Callable[[Any, str], Any]


class MalformedMessage(Exception):
    """The message does not fit the called method; the event is denied before any rule."""


def _fail(path: str, what: str) -> None:
    raise MalformedMessage(f"{path}: {what}" if path else what)


def _int_check(t: IntType) -> Check:
    lo, hi, name = t.min, t.max, t.name

    def check(v: Any, path: str) -> Any:
        if type(v) is not int:
            _fail(path, f"expected {name}, got {type(v).__name__}")
        if v < lo or v > hi:
            _fail(path, f"{int_text(v)} out of range for {name}")
        return v

    return check


def _string_check(t: StringType) -> Check:
    bound = t.bound

    def check(v: Any, path: str) -> Any:
        if type(v) is not str:
            _fail(path, f"expected string<{bound}>, got {type(v).__name__}")
        if len(v) > bound:
            _fail(path, f"string of {len(v)} characters exceeds string<{bound}>")
        if "\x00" in v:
            _fail(path, "string contains a NUL character")
        if not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                _fail(path, "string is not valid UTF-8 text (a lone surrogate)")
        return v

    return check


def _bytes_check(t: BytesType) -> Check:
    bound = t.bound

    def check(v: Any, path: str) -> Any:
        if not isinstance(v, (bytes, bytearray)):
            _fail(path, f"expected bytes<{bound}>, got {type(v).__name__}")
        if len(v) > bound:
            _fail(path, f"{len(v)} bytes exceed bytes<{bound}>")
        return bytes(v)

    return check


def _handle_check(t: HandleType) -> Check:
    def check(v: Any, path: str) -> Any:
        if type(v) is int:
            if v < 0 or v > 0xFFFFFFFF:
                _fail(path, f"SID {int_text(v)} out of range")
            return {"handle": v, "rights": 0}
        if isinstance(v, Mapping) and set(v) <= {"handle", "rights"} and type(v.get("handle")) is int:
            rights = v.get("rights", 0)
            if type(rights) is not int or not 0 <= rights <= 0xFFFFFFFF:
                _fail(path, "handle rights must be a UInt32 mask")
            if not 0 <= v["handle"] <= 0xFFFFFFFF:
                _fail(path, f"SID {int_text(v['handle'])} out of range")
            return {"handle": v["handle"], "rights": rights}
        _fail(path, "expected a handle (a SID, or {handle, rights})")

    return check


def _sequence_check(t: SequenceType | ArrayType) -> Check:
    elem = compile_type(t.element)
    exact = isinstance(t, ArrayType)
    n = t.length if exact else t.bound
    kind = "array" if exact else "sequence"

    def check(v: Any, path: str) -> Any:
        if not isinstance(v, (list, tuple)):
            _fail(path, f"expected {kind} of at most {n}, got {type(v).__name__}")
        if exact and len(v) != n:
            _fail(path, f"array needs exactly {n} elements, got {len(v)}")
        if len(v) > n:
            _fail(path, f"{len(v)} elements exceed sequence bound {n}")
        return [elem(x, f"{path}[{i}]") for i, x in enumerate(v)]

    return check


def _struct_check(t: StructType) -> Check:
    fields = [(f.name, compile_type(f.type)) for f in t.fields]
    names = frozenset(n for n, _ in fields)

    def check(v: Any, path: str) -> Any:
        if not isinstance(v, Mapping):
            _fail(path, f"expected struct {t.name}, got {type(v).__name__}")
        extra = set(v) - names
        if extra:
            _fail(path, f"struct {t.name} has no field {sorted(map(str, extra))[0]}")
        out = {}
        for name, sub in fields:
            if name not in v:
                _fail(path, f"struct {t.name} misses field {name}")
            out[name] = sub(v[name], f"{path}.{name}" if path else name)
        return out

    return check


def _union_check(t: UnionType) -> Check:
    fields = {f.name: compile_type(f.type) for f in t.fields}

    def check(v: Any, path: str) -> Any:
        if not isinstance(v, Mapping) or len(v) != 1:
            _fail(path, f"union {t.name} needs exactly one of {', '.join(fields)}")
        (name, value), = v.items()
        sub = fields.get(name)
        if sub is None:
            _fail(path, f"union {t.name} has no member {name}")
        return {name: sub(value, f"{path}.{name}" if path else name)}

    return check


_COMPILERS = {
    IntType: _int_check, StringType: _string_check, BytesType: _bytes_check, HandleType: _handle_check,
    SequenceType: _sequence_check, ArrayType: _sequence_check, StructType: _struct_check, UnionType: _union_check,
}


def compile_type(t: IdlType) -> Check:
    return _COMPILERS[type(t)](t)


def compile_message(params) -> Callable[[Mapping], dict]:
    """Validator for a whole message: exactly these parameters, each well formed.

    Three shapes get their own closure because they are most of the traffic and
    every decision pays for the check: no parameters, only integer parameters
    (bounds compared inline), and the general case.
    """
    checks = [(p.name, compile_type(p.type)) for p in params]
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
            if type(message) is not dict or message:
                shape_problem(message)
            return {}
        return validate_empty

    if all(isinstance(p.type, IntType) for p in params):
        bounds = tuple((p.name, p.type.min, p.type.max) for p in params)
        slow = {name: check for name, check in checks}

        def validate_ints(message: Mapping) -> dict:
            if type(message) is not dict or len(message) != count or not names.issuperset(message):
                shape_problem(message)
            out = {}
            for name, lo, hi in bounds:
                v = message[name]
                if type(v) is not int or v < lo or v > hi:
                    slow[name](v, name)        # raises with the precise reason
                out[name] = v
            return out
        return validate_ints

    def validate(message: Mapping) -> dict:
        if type(message) is not dict or len(message) != count or not names.issuperset(message):
            shape_problem(message)
        return {name: check(message[name], name) for name, check in checks}

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
