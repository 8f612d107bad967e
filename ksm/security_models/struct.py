"""Struct: access to structured data (``.field``, ``.[i]``, ``.handle``, ``.rights``, ``size``).

What the model does (KCE docs, "Struct security model", 1.1-1.4; our own words):

* ``<dictionary>.<field>`` gives the field's value (``message`` is the dictionary of
  the IDL method's parameters).
* ``<List | Set | Sequence | Array>.[<n>]`` gives element ``n``, numbered from zero;
  an index outside the data set makes the expression end with an error and KSM
  denies.
* ``<HandleDesc>.handle`` gives the SID (type ``Handle``) of a transferred handle;
  ``<HandleDesc>.rights`` gives its permissions mask (``UInt32``).
* One pre-created object ``struct``; no parameters, no audit, no rules.

The engine calls the helpers :func:`field`, :func:`index`, :func:`handle` and
:func:`rights` for the accessor syntax; :class:`StructModel` serves ``size (x)``
(called without a prefix, or as ``struct.size``).  Every failure raises
:class:`~ksm.security_models.ModelError` ("runs incorrectly"):

* ``field``: the value is not a dictionary, or has no such field.
* ``index``: the value is not a list/sequence/array (a Python ``list``/``tuple``);
  the index is not an integer (a Boolean is not one); the index is negative or
  ``>= len``.
* ``handle``/``rights``: the value is not a handle descriptor (a dictionary with
  that field).
* ``size``: the value is not a list/sequence/array, a set or text.

Open points (not stated by the docs; our choices)
-------------------------------------------------
1. ``size (x)``: seen in one 2025 Kaspersky example; provider and semantics
   **unconfirmed**.  We return the number of elements of a list/sequence/array or
   set, or the number of characters of text; ``()``, numbers, Booleans and
   dictionaries run incorrectly.
2. ``.[i]`` on a ``Set``: the docs allow it but sets have no documented order;
   a set that reaches us as a Python ``list``/``tuple`` is indexed in that order, a
   Python ``set``/``frozenset`` runs incorrectly.  Indexing text runs incorrectly
   (not documented).
3. A negative index runs incorrectly (no Python-style counting from the end).
"""
from __future__ import annotations

from typing import Any, ClassVar

import z3
from collections.abc import Callable, Mapping

from . import ModelError
from .base import StatelessModel, describe, is_number

__all__ = ["StructModel", "field", "index", "handle", "rights", "size"]


def field(value: Any, name: str) -> Any:
    """``value.name``; a non-dictionary or a missing field runs incorrectly."""
    if type(value) is dict and name in value:      # the validated-message fast path
        return value[name]
    if not isinstance(value, Mapping):
        raise ModelError(f"`.{name}` needs a dictionary, got {describe(value)}")
    try:
        return value[name]
    except KeyError:
        raise ModelError(f"no field `{name}` (fields: {', '.join(map(str, value)) or 'none'})") from None


def index(value: Any, i: Any) -> Any:
    """``value.[i]``, zero-based; out of range, negative or non-integer runs incorrectly."""
    if not isinstance(value, (list, tuple)):
        raise ModelError(f"`.[{describe(i)}]` needs a list, sequence or array, got {describe(value)}")
    if not is_number(i):
        raise ModelError(f"index must be an integer, got {describe(i)}")
    if not 0 <= i < len(value):
        raise ModelError(f"index {i} is out of bounds (size {len(value)})")
    return value[i]


def handle(h: Any) -> Any:
    """``h.handle``: the SID of a handle descriptor."""
    return field(h, "handle")


def rights(h: Any) -> Any:
    """``h.rights``: the permissions mask of a handle descriptor."""
    return field(h, "rights")


def size(x: Any) -> int:
    """``size (x)`` (unconfirmed): elements of a list/sequence/array/set, characters of text."""
    if isinstance(x, (list, tuple, set, frozenset, str)):
        return len(x)
    raise ModelError(f"size takes a list, sequence, array, set or text, got {describe(x)}")


class StructModel(StatelessModel):
    name: ClassVar[str] = "Struct"
    _expressions: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"size": size}


# ---- symbolic (Z3) encoding -----------------------------------------------------------
from .symbolic import FALSE, TRUE, Encoded, NotEncoded, SNum, SUnit, Sym, ite  # noqa: E402


def symbolic_field(value: Sym, name: str) -> Encoded:
    """``value.name``: a missing field (or a union member not carried) runs incorrectly."""
    if value.kind != "record" or name not in value.fields:
        return SUnit(), TRUE
    present = value.present[name] if value.present is not None else TRUE
    return value.fields[name], z3.Not(present) if not z3.is_true(present) else FALSE


def symbolic_index(value: Sym, i: Sym) -> Encoded:
    """``value.[i]``: an If-chain over the bounded items; out of range runs incorrectly."""
    if value.kind != "list" or i.kind != "number":
        return SUnit(), TRUE
    err = z3.Not(z3.And(i.z >= 0, i.z < value.length))
    if not value.items:
        return SUnit(), TRUE
    if z3.is_int_value(z3.simplify(i.z)):
        k = z3.simplify(i.z).as_long()
        if not 0 <= k < len(value.items):
            return value.items[0], TRUE
        return value.items[k], z3.simplify(err) if not z3.is_false(z3.simplify(err)) else FALSE
    out = value.items[-1]
    for k in range(len(value.items) - 2, -1, -1):
        out = ite(i.z == k, value.items[k], out)
    return out, err


def symbolic_expression(method: str, arg: Sym) -> Encoded:
    """``size``: list length or text length; anything else runs incorrectly."""
    if method != "size":
        raise NotEncoded(f"struct.{method}")
    if arg.kind == "list":
        return SNum(arg.length), FALSE
    if arg.kind == "text":
        return SNum(z3.Length(arg.z)), FALSE
    return SNum(z3.IntVal(0)), TRUE

