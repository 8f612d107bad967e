"""One JSON encoding of every IDL message value, and its decoding by IDL type.

Every JSON document ksm writes or reads holds message values in this one form:
counterexamples and witnesses of ``ksm prove``/``ksm flows``, ``ksm diff``
witnesses, ``ksm decide --event`` (and its JSON report), ``ksm simulate --replay``
and the Python API (:func:`event_from_json`, :func:`event_to_json`).

==========================  ===========================================================
IDL type                    JSON
==========================  ===========================================================
``UInt8`` ... ``SInt64``    number (``7``, ``-1``)
``string<N>``               string (``"door"``)
``bytes<N>``                string of hex digits, two per byte (``"00ff"``; ``""`` is
                            empty); lowercase when written, either case when read
``array<T, N>``             array of N values of T
``sequence<T, N>``          array of at most N values of T
struct                      object with one member per field
union                       object with exactly one member: the field that is set
``Handle``, ``handle<I>``   ``{"handle": SID, "rights": MASK}`` (a bare SID number is
                            read too)
==========================  ===========================================================

Why hex text for ``bytes`` and no tag: the form is the one counterexamples always
had (documentation and golden files quote it), and decoding is *typed* — a JSON
string becomes ``bytes`` only where the method's IDL type says ``bytes<N>``, so a
``string<N>`` field that happens to hold hex digits stays text.  For every
well-formed value ``from_json(json.loads(json.dumps(to_json(v, t))), t) == v``.

Decoding never raises and never repairs: a value that does not decode (an odd
number of hex digits, a non-hex character, a list where bytes are expected, an
unknown field) is left as it is, so the decision function's structure check denies
the event with its usual reason (``malformed message: data: expected bytes<8>, got
str``).  Integers wider than 256 bits are written as ``"<N-bit integer>"`` text
(:func:`ksm.events.int_text`): no IDL integer is that wide, and Python cannot print
them as digits; the text reads back as a string, which every integer type denies.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from policy_lang.solution import Solution, message_params
from policy_lang.types import (
    ArrayType, BytesType, IdlType, ParamDef, SequenceType, StructType, UnionType,
)

from .events import _SHOWN_INT_BITS as _JSON_INT_BITS   # wider integers are written as their size
from .events import Event, int_text

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
EVENT_FIELDS = ("kind", "src", "dst", "endpoint", "method", "message")


# ----------------------------------------------------------------------------- values

def to_json(value: Any, idl_type: IdlType | None = None) -> Any:
    """``value`` as JSON holds it (see the table above); ``json.dumps`` writes the result.

    ``idl_type`` (optional) is the value's IDL type; the form does not depend on it —
    ``bytes`` are hex text wherever they are — so an untyped message (an opaque
    endpoint's, an audit record) is written exactly as a typed one.
    """
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        fields = _field_types(idl_type)
        return {_key(k): to_json(x, fields[k] if _known(fields, k) else None) for k, x in value.items()}
    if isinstance(value, (list, tuple)):
        element = idl_type.element if isinstance(idl_type, (SequenceType, ArrayType)) else None
        return [to_json(x, element) for x in value]
    if type(value) is int and value.bit_length() > _JSON_INT_BITS:
        return int_text(value)      # json.dumps cannot write an int past Python's digit limit
    return value


def from_json(value: Any, idl_type: IdlType | None) -> Any:
    """The message value JSON ``value`` stands for, where the IDL type is ``idl_type``.

    Hex text becomes ``bytes`` where the type is ``bytes<N>`` (also inside arrays,
    sequences, structs and unions); JSON arrays become lists, objects dicts.  Anything
    that does not decode is returned as it is, for the structure check to deny.
    Values that are already decoded (``bytes``, tuples) pass through, so decoding
    twice is harmless.
    """
    if idl_type is None:
        return value
    if isinstance(idl_type, BytesType):
        if type(value) is str and _HEX.fullmatch(value):
            return bytes.fromhex(value)
        return value
    if isinstance(idl_type, (SequenceType, ArrayType)):
        if isinstance(value, (list, tuple)):
            element = idl_type.element
            return [from_json(x, element) for x in value]
        return value
    if isinstance(idl_type, (StructType, UnionType)):
        if isinstance(value, Mapping):
            fields = _field_types(idl_type)
            return {k: from_json(x, fields[k]) if _known(fields, k) else x for k, x in value.items()}
        return value
    return value           # integers, strings, handles: JSON already holds them as they are


def message_to_json(message: Any, params: tuple[ParamDef, ...] | None = None) -> Any:
    """A whole message (parameter name -> value) as JSON; ``params`` types it (optional)."""
    if not isinstance(message, Mapping):
        return to_json(message)
    types = {p.name: p.type for p in params or ()}
    return {_key(k): to_json(v, types[k] if _known(types, k) else None) for k, v in message.items()}


def message_from_json(message: Any, params: tuple[ParamDef, ...] | None) -> Any:
    """A whole message decoded against the method's parameters ``params``.

    Parameters the method does not have are kept as they are (the structure check
    names them); a ``message`` that is not a mapping, or ``params`` None (the method
    is unknown or opaque), returns ``message`` unchanged.
    """
    if params is None or not isinstance(message, Mapping):
        return message
    types = {p.name: p.type for p in params}
    return {k: from_json(v, types[k]) if _known(types, k) else v for k, v in message.items()}


def _field_types(t: IdlType | None) -> dict[str, IdlType]:
    if isinstance(t, (StructType, UnionType)):
        return {f.name: f.type for f in t.fields}
    return {}


def _known(types: dict, key: Any) -> bool:
    """``key in types``, false for an unhashable key (a hostile mapping's)."""
    try:
        return key in types
    except TypeError:
        return False


def _key(k: Any) -> str:
    return int_text(k) if type(k) is int else str(k)


# ----------------------------------------------------------------------------- events

def method_params(solution: Solution, event: Event, module: Any = None) -> tuple[ParamDef, ...] | None:
    """The parameters ``event``'s message holds, resolved as the decision function does.

    The server (``dst`` of a request, ``src`` of a response, error or security query)
    is named by task or class name, or by SID when ``module`` (a booted
    :class:`ksm.SecurityModule`) is given; its endpoint by name or RIID; the method by
    name or MID.  None when any of them is unknown or opaque: such a message is not
    decoded, and the decision function denies or takes it as it is.
    """
    kind = event.kind
    if type(kind) is not str or kind not in ("request", "response", "error", "security"):
        return None
    cls = _class_of(solution, event.dst if kind == "request" else event.src, module)
    if cls is None or cls.opaque:
        return None
    if kind == "security":
        iface = cls.security
    else:
        ep, ref = None, event.endpoint
        if type(ref) is str:
            ep = cls.endpoint(ref)
        elif type(ref) is int and 0 <= ref < len(cls.endpoints):
            ep = cls.endpoints[ref]
        iface = ep.interface if ep is not None else None
    if iface is None or iface.opaque:
        return None
    ref = event.method
    method = None
    if type(ref) is str:
        method = iface.method(ref)
    elif type(ref) is int and 0 <= ref < len(iface.methods):
        method = iface.methods[ref]
    return tuple(message_params(method, kind)) if method is not None else None


def _class_of(solution: Solution, ref: Any, module: Any):
    """The process class of a participant named by task, class name or SID."""
    name = None
    if module is not None and type(ref) in (str, int):
        proc = None
        if type(ref) is int:
            proc = module.processes.get(ref)
        else:
            proc = next((p for p in list(module.processes.values()) if p.task == ref), None)
        name = proc.cls if proc is not None else None
    if name is None and type(ref) is str:
        instance = solution.instance(ref)
        name = instance.cls if instance is not None else ref
    return solution.classes.get(name) if name is not None else None


def decode_event(solution: Solution, event: Event, module: Any = None) -> Event:
    """``event`` with its message decoded against the method it names (see :func:`method_params`).

    The event is returned as it is when the method is unknown or the message is not
    a mapping: the decision function then denies it with the reason.
    """
    params = method_params(solution, event, module)
    if params is None or not isinstance(event.message, Mapping):
        return event
    return Event(event.kind, event.src, event.dst, event.endpoint, event.method,
                 message_from_json(event.message, params))


def event_from_json(solution: Solution, data: Mapping | str, module: Any = None) -> Event:
    """The :class:`~ksm.events.Event` a JSON event stands for, its message decoded by IDL type.

    ``data`` is the parsed JSON object (or its text): ``kind``, ``src``, ``dst``,
    ``endpoint``, ``method``, ``message`` as ``ksm decide --event`` takes them and as
    counterexample steps, witnesses and ``ksm decide --format json`` write them.
    Other members (a step's ``expect``) are ignored; an execute without a method gets
    ``main``.  Pass the booted ``module`` when the event names processes by SID.
    Field values are not checked here: ``decide`` denies what is wrong, with the reason.

    Raises TypeError when ``solution`` is not a Solution or ``data`` not a JSON
    object (or its text), ValueError for text that is not JSON.
    """
    if not isinstance(solution, Solution):
        raise TypeError("event_from_json takes a loaded Solution first, e.g. "
                        f"event_from_json(ksm.load(path), data); got {type(solution).__name__}")
    if isinstance(data, (str, bytes, bytearray)):
        data = json.loads(data, parse_int=json_int)
    if not isinstance(data, Mapping):
        raise TypeError('an event is a JSON object such as {"kind": "request", "src": ..., "dst": ..., '
                        f'"endpoint": ..., "method": ..., "message": {{...}}}}; got {type(data).__name__}')
    kind = data.get("kind")
    message = data.get("message")
    event = Event(kind, data.get("src"), data.get("dst"), data.get("endpoint"),
                  data.get("method", "main" if kind == "execute" else None),
                  {} if message is None else message)
    return decode_event(solution, event, module)


def json_int(digits: str) -> int:
    """A JSON integer; one past Python's text-conversion limit keeps its magnitude only
    (wider than any IDL integer either way, so the event is denied as out of range)."""
    if len(digits) <= 1000:
        return int(digits)
    magnitude = 10 ** (len(digits.lstrip("-")) - 1)
    return -magnitude if digits.startswith("-") else magnitude


def event_to_json(event: Event) -> dict:
    """``event`` as a JSON object (the form :func:`event_from_json` reads)."""
    return {name: to_json(getattr(event, name)) for name in EVENT_FIELDS}


__all__ = ["json_int", "decode_event", "event_from_json", "event_to_json", "from_json", "message_from_json",
           "message_to_json", "method_params", "to_json"]
