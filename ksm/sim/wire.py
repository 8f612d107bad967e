"""The byte layout of IPC messages, derived from the IDL as nk-gen-c derives it.

A KasperskyOS IPC message has a *constant part* (RIID, MID and every fixed-size
parameter) and an *arena* holding the variable-size data (sequences, strings,
bytes), each referenced from the constant part by an arena descriptor (offset,
size).  Only the used part of the arena travels, and the security module checks a
message's structure for the called method before any rule runs.  The simulator's
kernel marshals every message with :func:`pack` and decodes it with
:meth:`Layout.decode`, so the structure check works on real bytes.

Layout (the facts above are KasperskyOS's; the details are our choices):

* **Header** (:data:`HEADER`, 20 bytes): magic ``0x4E4B``, kind, a reserved zero
  byte, RIID, MID, size of the parameters' constant part, arena size.  Both sizes
  travel so a receiver can check the message length before decoding anything.
* **Little-endian**, as on the x86-64 and AArch64 targets KasperskyOS runs on.
* **Natural alignment** inside the constant part (offsets relative to the body),
  with zero padding, as a C compiler lays out the structs nk-gen-c emits.  Decode
  rejects nonzero padding, so the bytes of a message are determined by its value.
* **Structs**: fields in declaration order, size rounded up to the alignment (so
  arrays of them stay aligned).  A struct without fields takes one zero byte, as in
  C++, so that a sequence's size in bytes still counts its elements.
* **Arrays** inline: N copies of the element's layout.
* **Unions**: a UInt32 tag (the member's index) and then a slot, aligned for the
  most aligned member, as large as the largest member; unused slot bytes are zero.
* **Handle**: UInt32 handle (the SID) and UInt32 rights mask.
* **string / bytes / sequence**: an arena descriptor of two UInt32 (offset into the
  arena, size in bytes) in the constant part, the data in the arena.  A string's
  segment is its UTF-8 bytes and a terminating NUL; its bound counts characters,
  as in :mod:`ksm.structure`, so the segment may hold up to ``4 * bound + 1`` bytes
  and decode also checks the character count.  A sequence's segment is an array
  of the element's constant-part layout (size = count * element size); elements
  holding variable-size data put it in the arena too, descriptors always relative
  to the arena start.
* **Arena segments** are allocated in order of appearance (depth first: a
  sequence's segment before the data of its elements), each aligned to 8 bytes so
  any element type can be read in place; an empty sequence or bytes gets the
  descriptor (current end, 0) and takes no space (the empty string still has its
  NUL, a segment of 1 byte).

Decode accepts only this *canonical* arena: every segment must start exactly where
the encoder would put it, gaps hold zeros, and no byte follows the last segment.
Descriptors outside the arena or overlapping are rejected with it, and more: no
byte of an accepted message escapes what the security module decoded (no data
smuggled in gaps or unreferenced arena space), and ``encode(decode(b)) == b``.
The cost is nothing for the simulator, whose senders all marshal with this module.

Values follow :mod:`ksm.structure` (int, str, bytes, list, dict; a Handle as a SID
or ``{handle, rights}``), and for every message the structure check accepts,
``decode(encode(m))`` equals its normalisation (a ``str`` with a lone surrogate
is not UTF-8 text: both refuse it).

Speed: each (method, kind) is compiled once into closures over one precompiled
:class:`struct.Struct` for the whole constant part, so a message costs one
``pack``/``unpack`` plus the per-value checks (integer fields checked inline);
messages of integers alone get generated straight-line code with no per-parameter
calls (a Ping round trip is about half a microsecond).
"""
from __future__ import annotations

import functools
import itertools
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from policy_lang.types import (
    ArrayType, BytesType, HandleType, IdlType, IntType, MethodDef, SequenceType, StringType,
    StructType, UnionType,
)

from ..events import int_text


class WireError(Exception):
    """The bytes (or the value to marshal) do not fit the method's layout."""


_MAGIC = 0x4E4B
HEADER = struct.Struct("<HBBIIII")   # magic, kind, reserved, riid, mid, fixed_size, arena_size
_KINDS = ("request", "response", "error")
_KIND_CODE = {k: i for i, k in enumerate(_KINDS)}
_SEGMENT_ALIGN = 8
_INT_CODES = {8: "b", 16: "h", 32: "i", 64: "q"}

# A path is built lazily (it is only needed for an error): a parameter name, or a
# tuple (parent path, field name | element index).
Path = Any
# put(value, path, atoms, arena): validate, append the constant-part atoms, fill the arena;
# get(atoms iterator, path, arena): consume the atoms, read the arena, return the value.
# The arena is None in messages that have no variable-size data.
Put = Callable[[Any, Path, list, "bytearray | None"], None]
Get = Callable[[Any, Path, "_Arena | None"], Any]


def _render(path: Path) -> str:
    parts = []
    while type(path) is tuple:
        path, key = path
        parts.append(f"[{key}]" if type(key) is int else f".{key}")
    return path + "".join(reversed(parts))


def _fail(path: Path, what: str):
    raise WireError(f"{_render(path)}: {what}" if path else what)


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


@dataclass(frozen=True)
class _Codec:
    """One IDL type compiled: its constant-part layout and the closures that fill
    and read it.  ``fmt`` holds struct codes with padding as ``Ns`` atoms (so decode
    sees the padding bytes and can check them); ``arena_bound`` is the most arena
    bytes a value can need (segments counted at their bound rounded up to 8)."""

    size: int
    align: int
    fmt: str
    put: Put
    get: Get
    arena_bound: int = 0
    int_code: str | None = None     # set for integers: sequences and arrays of them take a fast path


class _Arena:
    """Decode-side view of the arena (``data[base:]``): a cursor that each
    descriptor must continue, so segments come in order, without overlap or gap."""

    __slots__ = ("data", "base", "pos", "size")

    def __init__(self, data: bytes, base: int):
        self.data, self.base, self.pos, self.size = data, base, 0, len(data) - base

    def take(self, off: int, size: int, path: Path) -> bytes:
        end = off + size
        if end > self.size:
            _fail(path, f"arena descriptor (offset {off}, size {size}) outside the arena of {self.size} bytes")
        pos = self.pos
        start = (pos + _SEGMENT_ALIGN - 1) & -_SEGMENT_ALIGN if size else pos
        if off != start:
            if size and off < pos:
                _fail(path, f"arena descriptor (offset {off}, size {size}) overlaps the segment before it, "
                            f"which ends at {pos}")
            _fail(path, f"arena descriptor (offset {off}, size {size}): the segment must start at {start} "
                        "(8-byte aligned, in order of appearance, no gaps)")
        base = self.base
        if start != pos and any(self.data[base + pos:base + start]):
            _fail(path, "nonzero padding in the arena")
        self.pos = end
        return self.data[base + off:base + end]


_GAPS = [bytes(n) for n in range(_SEGMENT_ALIGN)]


def _alloc(arena: bytearray, data: bytes | bytearray) -> int:
    """Append a segment (aligned to 8 unless empty); return its offset."""
    if data:
        arena += _GAPS[-len(arena) % _SEGMENT_ALIGN]
    off = len(arena)
    arena += data
    return off


# ----------------------------------------------------------------------------- scalars


def _int_codec(t: IntType) -> _Codec:
    lo, hi, name = t.min, t.max, t.name
    code = _INT_CODES[t.bits]
    code = code if t.signed else code.upper()

    def put(v: Any, path: Path, vals: list, arena: bytearray) -> None:
        if type(v) is not int:
            _fail(path, f"expected {name}, got {type(v).__name__}")
        if v < lo or v > hi:
            _fail(path, f"{int_text(v)} out of range for {name}")
        vals.append(v)

    def get(it: Any, path: Path, arena: _Arena) -> int:
        return next(it)          # the width is the range

    size = t.bits // 8
    return _Codec(size, size, code, put, get, int_code=code)


def _handle_codec(t: HandleType) -> _Codec:
    def put(v: Any, path: Path, vals: list, arena: bytearray) -> None:
        if type(v) is int:
            sid, rights = v, 0
        elif isinstance(v, Mapping) and set(v) <= {"handle", "rights"} and type(v.get("handle")) is int:
            sid, rights = v["handle"], v.get("rights", 0)
            if type(rights) is not int or not 0 <= rights <= 0xFFFFFFFF:
                _fail(path, "handle rights must be a UInt32 mask")
        else:
            _fail(path, "expected a handle (a SID, or {handle, rights})")
        if not 0 <= sid <= 0xFFFFFFFF:
            _fail(path, f"SID {sid} out of range")
        vals.append(sid)
        vals.append(rights)

    def get(it: Any, path: Path, arena: _Arena) -> dict:
        return {"handle": next(it), "rights": next(it)}

    return _Codec(8, 4, "II", put, get)


# ----------------------------------------------------------------------------- arena types


def _string_codec(t: StringType) -> _Codec:
    bound = t.bound
    max_bytes = 4 * bound + 1

    def put(v: Any, path: Path, vals: list, arena: bytearray) -> None:
        if type(v) is not str:
            _fail(path, f"expected string<{bound}>, got {type(v).__name__}")
        if len(v) > bound:
            _fail(path, f"string of {len(v)} characters exceeds string<{bound}>")
        if "\x00" in v:
            _fail(path, "string contains a NUL character")
        try:
            data = v.encode("utf-8") + b"\x00"
        except UnicodeEncodeError as exc:
            _fail(path, f"string is not UTF-8 text ({exc.reason})")
        vals.append(_alloc(arena, data))
        vals.append(len(data))

    def get(it: Any, path: Path, arena: _Arena) -> str:
        off, size = next(it), next(it)
        if size > max_bytes:
            _fail(path, f"string segment of {size} bytes exceeds the {max_bytes} of string<{bound}>")
        seg = arena.take(off, size, path)
        if not size or seg[-1]:
            _fail(path, "string without its terminating NUL")
        try:
            s = str(seg[:-1], "utf-8")
        except UnicodeDecodeError as exc:
            _fail(path, f"string is not valid UTF-8 ({exc.reason} at byte {exc.start})")
        if "\x00" in s:
            _fail(path, "string contains a NUL character")
        if len(s) > bound:
            _fail(path, f"string of {len(s)} characters exceeds string<{bound}>")
        return s

    return _Codec(8, 4, "II", put, get, _align(max_bytes, _SEGMENT_ALIGN))


def _bytes_codec(t: BytesType) -> _Codec:
    bound = t.bound

    def put(v: Any, path: Path, vals: list, arena: bytearray) -> None:
        if not isinstance(v, (bytes, bytearray)):
            _fail(path, f"expected bytes<{bound}>, got {type(v).__name__}")
        if len(v) > bound:
            _fail(path, f"{len(v)} bytes exceed bytes<{bound}>")
        vals.append(_alloc(arena, v))
        vals.append(len(v))

    def get(it: Any, path: Path, arena: _Arena) -> bytes:
        off, size = next(it), next(it)
        if size > bound:
            _fail(path, f"{size} bytes exceed bytes<{bound}>")
        return bytes(arena.take(off, size, path))

    return _Codec(8, 4, "II", put, get, _align(bound, _SEGMENT_ALIGN))


def _int_list_problem(elem: _Codec, v: Any, path: Path) -> None:
    """Raise for the first element of ``v`` that is not a valid integer of ``elem``."""
    for i, x in enumerate(v):
        elem.put(x, (path, i), [], bytearray())


def _sequence_codec(t: SequenceType) -> _Codec:
    elem = _codec(t.element)
    bound, stride, code = t.bound, elem.size, elem.int_code
    packer = struct.Struct("<" + elem.fmt)

    def put(v: Any, path: Path, vals: list, arena: bytearray) -> None:
        if not isinstance(v, (list, tuple)):
            _fail(path, f"expected sequence of at most {bound}, got {type(v).__name__}")
        n = len(v)
        if n > bound:
            _fail(path, f"{n} elements exceed sequence bound {bound}")
        if code is not None:            # integers: one pack for the whole segment
            for x in v:
                if type(x) is not int:
                    _int_list_problem(elem, v, path)
            try:
                data = struct.pack(f"<{n}{code}", *v)
            except struct.error:
                _int_list_problem(elem, v, path)
                raise
            vals.append(_alloc(arena, data))
        else:                           # reserve the segment, then fill it (nested data follows it)
            off = _alloc(arena, bytes(n * stride))
            for i, x in enumerate(v):
                ev: list = []
                elem.put(x, (path, i), ev, arena)
                packer.pack_into(arena, off + i * stride, *ev)
            vals.append(off)
        vals.append(n * stride)

    def get(it: Any, path: Path, arena: _Arena) -> list:
        off, size = next(it), next(it)
        n, rest = divmod(size, stride)
        if rest:
            _fail(path, f"sequence segment of {size} bytes is not a multiple of the element size {stride}")
        if n > bound:
            _fail(path, f"sequence of {n} elements exceeds bound {bound}")
        seg = arena.take(off, size, path)
        if code is not None:
            return list(struct.unpack(f"<{n}{code}", seg))
        eget = elem.get
        return [eget(iter(atoms), (path, i), arena) for i, atoms in enumerate(packer.iter_unpack(seg))]

    return _Codec(8, 4, "II", put, get, _align(bound * stride, _SEGMENT_ALIGN) + bound * elem.arena_bound)


# ----------------------------------------------------------------------------- composites


def _zero_pad(n: int) -> bytes | None:
    return bytes(n) if n else None


def _field_table(named: list[tuple[str, IdlType]], codecs: list[_Codec], pads: list) -> list[tuple]:
    """(name, put, get, padding before, is_int, lo, hi) per field: integer fields
    are checked and read inline by structs and messages (most fields are integers)."""
    return [(name, c.put, c.get, pad, c.int_code is not None,
             *((t.min, t.max) if c.int_code is not None else (0, 0)))
            for (name, t), c, pad in zip(named, codecs, pads)]


def _array_codec(t: ArrayType) -> _Codec:
    elem = _codec(t.element)
    n, code = t.length, elem.int_code
    size = n * elem.size
    tail = None if size else b"\x00"      # array<T, 0> takes one byte, like an empty struct
    fmt = (f"{n}{code}" if code else elem.fmt * n) + ("1s" if tail else "")
    elem_lo, elem_hi = (t.element.min, t.element.max) if code else (0, 0)

    def put(v: Any, path: Path, vals: list, arena: bytearray) -> None:
        if not isinstance(v, (list, tuple)):
            _fail(path, f"expected array of {n}, got {type(v).__name__}")
        if len(v) != n:
            _fail(path, f"array needs exactly {n} elements, got {len(v)}")
        if code is not None:
            for x in v:
                if type(x) is not int or x < elem_lo or x > elem_hi:
                    _int_list_problem(elem, v, path)
            vals.extend(v)
        else:
            for i, x in enumerate(v):
                elem.put(x, (path, i), vals, arena)
        if tail:
            vals.append(tail)

    def get(it: Any, path: Path, arena: _Arena) -> list:
        if code is not None:            # integers: n atoms, read as they are (the width is the range)
            out = list(itertools.islice(it, n))
        else:
            out = [elem.get(it, (path, i), arena) for i in range(n)]
        if tail and next(it) != tail:
            _fail(path, "nonzero padding")
        return out

    return _Codec(max(size, 1), elem.align, fmt, put, get, n * elem.arena_bound)


def _record_layout(codecs: list[_Codec], pad_to_align: bool) -> tuple[str, list, bytes | None, int, int]:
    """Lay fields out in order at their natural alignment.

    Returns (fmt, padding before each field, trailing padding, size, alignment)."""
    fmt, pads, off, align = "", [], 0, 1
    for c in codecs:
        start = _align(off, c.align)
        pads.append(_zero_pad(start - off))
        fmt += (f"{start - off}s" if start > off else "") + c.fmt
        off, align = start + c.size, max(align, c.align)
    size = max(_align(off, align), 1) if pad_to_align else off
    tail = _zero_pad(size - off)
    fmt += f"{size - off}s" if tail else ""
    return fmt, pads, tail, size, align


def _struct_codec(t: StructType) -> _Codec:
    codecs = [_codec(f.type) for f in t.fields]
    fmt, pads, tail, size, align = _record_layout(codecs, pad_to_align=True)
    fields = _field_table([(f.name, f.type) for f in t.fields], codecs, pads)
    names, count = frozenset(f.name for f in t.fields), len(t.fields)

    def put(v: Any, path: Path, vals: list, arena: bytearray | None) -> None:
        if type(v) is not dict and not isinstance(v, Mapping):
            _fail(path, f"expected struct {t.name}, got {type(v).__name__}")
        if len(v) != count or not names.issuperset(v):
            extra = set(v) - names
            if extra:
                _fail(path, f"struct {t.name} has no field {sorted(map(str, extra))[0]}")
            missing = [f.name for f in t.fields if f.name not in v]
            _fail(path, f"struct {t.name} misses field {missing[0]}")
        for name, fput, _, pad, is_int, lo, hi in fields:
            if pad:
                vals.append(pad)
            x = v[name]
            if is_int and type(x) is int and lo <= x <= hi:
                vals.append(x)
            else:
                fput(x, (path, name), vals, arena)
        if tail:
            vals.append(tail)

    def get(it: Any, path: Path, arena: _Arena | None) -> dict:
        out = {}
        for name, _, fget, pad, is_int, _, _ in fields:
            if pad and next(it) != pad:
                _fail(path, f"nonzero padding before field {name}")
            out[name] = next(it) if is_int else fget(it, (path, name), arena)
        if tail and next(it) != tail:
            _fail(path, "nonzero padding at the end of the struct")
        return out

    return _Codec(size, align, fmt, put, get, sum(c.arena_bound for c in codecs))


def _union_codec(t: UnionType) -> _Codec:
    codecs = [_codec(f.type) for f in t.fields]
    slot_align = max((c.align for c in codecs), default=1)
    slot_off = _align(4, slot_align)
    align = max(4, slot_align)
    size = _align(slot_off + max((c.size for c in codecs), default=0), align)
    slot = size - slot_off
    gap = _zero_pad(slot_off - 4)
    fmt = "I" + (f"{slot_off - 4}s" if gap else "") + f"{slot}s"
    members = {f.name: (i, c) for i, (f, c) in enumerate(zip(t.fields, codecs))}
    by_tag = [(f.name, c, struct.Struct("<" + c.fmt)) for f, c in zip(t.fields, codecs)]

    def put(v: Any, path: Path, vals: list, arena: bytearray) -> None:
        if not isinstance(v, Mapping) or len(v) != 1:
            _fail(path, f"union {t.name} needs exactly one of {', '.join(members)}")
        (name, value), = v.items()
        member = members.get(name)
        if member is None:
            _fail(path, f"union {t.name} has no member {name}")
        tag, c = member
        mv: list = []
        c.put(value, (path, name), mv, arena)
        vals.append(tag)
        if gap:
            vals.append(gap)
        vals.append(by_tag[tag][2].pack(*mv).ljust(slot, b"\x00"))

    def get(it: Any, path: Path, arena: _Arena) -> dict:
        tag = next(it)
        if gap and next(it) != gap:
            _fail(path, "nonzero padding after the union tag")
        data = next(it)
        if tag >= len(by_tag):
            _fail(path, f"union {t.name} tag {tag} out of range (it has {len(by_tag)} members)")
        name, c, unpacker = by_tag[tag]
        if any(data[c.size:]):
            _fail(path, f"nonzero bytes after member {name} in the union slot")
        return {name: c.get(iter(unpacker.unpack_from(data)), (path, name), arena)}

    return _Codec(size, align, fmt, put, get, max((c.arena_bound for c in codecs), default=0))


_COMPILERS: dict[type, Callable[[Any], _Codec]] = {
    IntType: _int_codec, HandleType: _handle_codec, StringType: _string_codec, BytesType: _bytes_codec,
    SequenceType: _sequence_codec, ArrayType: _array_codec, StructType: _struct_codec, UnionType: _union_codec,
}


@functools.lru_cache(maxsize=None)
def _codec(t: IdlType) -> _Codec:
    """The codec of one IDL type (cached: types are frozen and shared between methods)."""
    return _COMPILERS[type(t)](t)


# ----------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Layout:
    """The wire layout of one method's request, response or error message.

    ``encode(message) -> bytes`` gives the body (constant part + arena, no header)
    and raises :class:`WireError` when a value does not fit its type;
    ``decode(body) -> dict`` is its inverse and raises :class:`WireError` on any
    malformation.  They are plain closures stored on the instance (not methods) so
    a call costs no extra frame.
    """

    params: tuple
    fixed_size: int
    arena_bound: int
    encode: Callable[[Mapping], bytes] = field(repr=False, compare=False)
    decode: Callable[[bytes | memoryview], dict] = field(repr=False, compare=False)
    # Messages of integers alone: the precompiled constant part, for :func:`sealer`.
    ints: struct.Struct | None = field(default=None, repr=False, compare=False)


def _check_shape(message: Any, params: tuple) -> None:
    """Raise unless the message is a mapping of exactly these parameters."""
    if not isinstance(message, Mapping):
        raise WireError("message must be a mapping of parameter values")
    names = {p.name for p in params}
    extra = set(message) - names
    if extra:
        raise WireError(f"unknown parameter {sorted(map(str, extra))[0]}")
    missing = [p.name for p in params if p.name not in message]
    if missing:
        raise WireError(f"missing parameter {missing[0]}")


def _compile(params: tuple) -> Layout:
    codecs = [_codec(p.type) for p in params]
    fmt, pads, _, fixed, _ = _record_layout(codecs, pad_to_align=False)
    const = struct.Struct("<" + fmt)
    arena_bound = sum(c.arena_bound for c in codecs)
    nameset = frozenset(p.name for p in params)
    fields = _field_table([(p.name, p.type) for p in params], codecs, pads)

    def encode_any(message: Mapping) -> bytes:
        if type(message) is not dict or message.keys() != nameset:
            _check_shape(message, params)
        vals: list = []
        arena = bytearray() if arena_bound else None      # flat messages never touch it
        for name, put, _, pad, is_int, lo, hi in fields:
            if pad:
                vals.append(pad)
            x = message[name]
            if is_int and type(x) is int and lo <= x <= hi:
                vals.append(x)
            else:
                put(x, name, vals, arena)
        return const.pack(*vals) + arena if arena else const.pack(*vals)

    def decode_any(body: bytes | memoryview) -> dict:
        if type(body) is not bytes:
            body = bytes(body)      # one copy; slices of bytes are what str() and bytes() take fastest
        n = len(body)
        if n != fixed:
            if n < fixed:
                raise WireError(f"body of {n} bytes is shorter than the constant part of {fixed} bytes")
            if n - fixed > arena_bound:
                raise WireError(f"arena of {n - fixed} bytes exceeds the largest this method needs ({arena_bound})")
        arena = _Arena(body, fixed) if arena_bound else None
        it = iter(const.unpack_from(body))
        out = {}
        for name, _, get, pad, is_int, _, _ in fields:
            if pad and next(it) != pad:
                raise WireError(f"nonzero padding before parameter {name}")
            out[name] = next(it) if is_int else get(it, name, arena)
        if arena is not None and arena.pos != arena.size:
            raise WireError(f"{arena.size - arena.pos} bytes in the arena after its last segment")
        return out

    if codecs and all(c.int_code for c in codecs) and not any(pads):
        return Layout(tuple(params), fixed, arena_bound, *_integers_only(params, const, encode_any), ints=const)
    return Layout(tuple(params), fixed, arena_bound, encode_any, decode_any)


def _integers_only(params: tuple, const: struct.Struct, general: Callable) -> tuple[Callable, Callable]:
    """encode/decode for a message of integers alone (most messages), generated as
    straight-line code: one dict comparison, a type test per value, one
    ``pack``/``unpack``.  ``struct`` itself rejects values outside the width, which
    is the IDL range; every problem is then explained by the general encoder."""
    vs = ", ".join(f"v{i}" for i in range(len(params)))
    src = f"""
def encode(m):
    if type(m) is dict and m.keys() == nameset:
        {vs}, = {", ".join(f"m[{p.name!r}]" for p in params)},
        if {" and ".join(f"type(v{i}) is int" for i in range(len(params)))}:
            try:
                return pack({vs})
            except error:
                pass
    return general(m)

def decode(body):
    if len(body) != {const.size}:
        raise WireError(f"body of {{len(body)}} bytes; a message of these integers has exactly {const.size}")
    {vs}, = unpack(body)
    return {{{", ".join(f"{p.name!r}: v{i}" for i, p in enumerate(params))}}}
"""
    scope = {"nameset": frozenset(p.name for p in params), "pack": const.pack, "unpack": const.unpack,
             "error": struct.error, "general": general, "WireError": WireError}
    exec(src, scope)
    return scope["encode"], scope["decode"]


_LAYOUTS: dict[tuple[int, str], tuple[MethodDef, Layout]] = {}


def layout(method: MethodDef, kind: str) -> Layout:
    """The layout of ``method``'s ``kind`` message (request, response or error), compiled once.

    Looked up by the method object's identity first (the entry keeps the object
    alive, so the id cannot be reused): hashing a frozen MethodDef walks all its
    types, which would cost more than marshalling a small message."""
    hit = _LAYOUTS.get((id(method), kind))
    if hit is not None and hit[0] is method:
        return hit[1]
    if kind not in _KIND_CODE:
        raise WireError(f"unknown message kind {kind!r}")
    from policy_lang.solution import message_params

    lay = _layout_of(tuple(message_params(method, kind)))
    _LAYOUTS[(id(method), kind)] = (method, lay)
    return lay


@functools.lru_cache(maxsize=None)
def _layout_of(params: tuple) -> Layout:
    """One Layout per parameter list, shared by equal methods."""
    return _compile(params)


def pack(riid: int, mid: int, kind: str, lay: Layout, message: Mapping) -> bytes:
    """The whole message: header and body."""
    code = _KIND_CODE.get(kind)
    if code is None:
        raise WireError(f"unknown message kind {kind!r}")
    body = lay.encode(message)
    try:
        return HEADER.pack(_MAGIC, code, 0, riid, mid, lay.fixed_size, len(body) - lay.fixed_size) + body
    except struct.error:
        raise WireError(f"RIID {riid} or MID {mid} is not a UInt32") from None


def unpack_header(data: bytes | memoryview) -> tuple[str, int, int, memoryview]:
    """(kind, riid, mid, body) of a message, after checking the header is consistent."""
    view = memoryview(data)
    if view.format != "B":
        view = view.cast("B")
    if len(view) < HEADER.size:
        raise WireError(f"message of {len(view)} bytes is shorter than the {HEADER.size}-byte header")
    magic, code, reserved, riid, mid, fixed, arena = HEADER.unpack_from(view)
    if magic != _MAGIC:
        raise WireError(f"bad magic 0x{magic:04X}")
    if reserved:
        raise WireError(f"reserved header byte is {reserved}, not 0")
    if code >= len(_KINDS):
        raise WireError(f"unknown message kind {code}")
    if fixed + arena != len(view) - HEADER.size:
        raise WireError(f"header announces {fixed} + {arena} bytes but the body has {len(view) - HEADER.size}")
    return _KINDS[code], riid, mid, view[HEADER.size:]


Sealer = Callable[[Mapping], "tuple[bytes, bytes, dict | None]"]


def _scalar_params(params: tuple) -> tuple[tuple[str, bool], ...] | None:
    """(name, is bytes) of each parameter when every one is an integer, a string or
    bytes (types whose accepted values decode unchanged: the encoder takes only an
    exact ``int`` or ``str``, and decoding gives ``bytes`` for any bytes-like), else None."""
    out = []
    for p in params:
        if isinstance(p.type, BytesType):
            out.append((p.name, True))
        elif isinstance(p.type, (IntType, StringType)):
            out.append((p.name, False))
        else:
            return None
    return tuple(out)


def sealer(riid: int, mid: int, kind: str, lay: Layout) -> Sealer:
    """:func:`pack` for one method's ``kind`` message, compiled once per address.

    ``seal(message)`` returns ``(data, body, decoded)``: the whole message (header
    and body, exactly the bytes :func:`pack` gives), its body, and the body decoded
    when that is known without decoding (else None: the caller decodes ``body``).
    Raises :class:`WireError` as :func:`pack` does for a value that cannot be
    marshalled.

    Why: the kernel marshals a message and then checks it by decoding, and the
    header it wrote itself needs no reading back.  For a message of integers alone
    that ``struct`` packed, decoding is known in advance: every value fitted its
    width, so ``unpack`` gives the same integers back, in parameter order (the
    property tests of this module hold it to ``decode(encode(m))``).  Other
    messages are decoded from the body as before.
    """
    code = _KIND_CODE.get(kind)
    if code is None:
        raise WireError(f"unknown message kind {kind!r}")
    fixed, encode = lay.fixed_size, lay.encode
    try:
        head = HEADER.pack(_MAGIC, code, 0, riid, mid, fixed, 0)
    except struct.error:
        def unsendable(message: Mapping) -> tuple:
            pack(riid, mid, kind, lay, message)         # raises, as pack() would: the value first, then the header
            raise WireError(f"RIID {riid} or MID {mid} is not a UInt32")
        return unsendable
    if lay.arena_bound:
        header = HEADER.pack
        scalars = _scalar_params(lay.params)
        if scalars is not None:
            # Integers, strings and bytes alone: what encode() accepted decodes to
            # the same values (the exact int and str it checked; bytes for bytearray).
            def seal_scalars(message: Mapping) -> tuple:
                body = encode(message)
                decoded = {name: bytes(message[name]) if is_bytes else message[name] for name, is_bytes in scalars}
                return header(_MAGIC, code, 0, riid, mid, fixed, len(body) - fixed) + body, body, decoded
            return seal_scalars

        def seal(message: Mapping) -> tuple:
            body = encode(message)
            return header(_MAGIC, code, 0, riid, mid, fixed, len(body) - fixed) + body, body, None
        return seal
    names = [p.name for p in lay.params]
    if not names:
        def seal_empty(message: Mapping) -> tuple:
            if type(message) is dict and not message:
                return head, b"", {}
            body = encode(message)
            return head + body, body, None
        return seal_empty
    if lay.ints is None:
        def seal_flat(message: Mapping) -> tuple:
            body = encode(message)
            return head + body, body, None
        return seal_flat
    vs = ", ".join(f"v{i}" for i in range(len(names)))
    # len(m) == N and every name present is m.keys() == {names}, without building a set
    src = f"""
def seal(m):
    if type(m) is dict and len(m) == {len(names)}:
        try:
            {vs}, = {", ".join(f"m[{n!r}]" for n in names)},
        except KeyError:
            pass
        else:
            if {" and ".join(f"type(v{i}) is int" for i in range(len(names)))}:
                try:
                    body = pack({vs})
                except error:
                    pass
                else:
                    return head + body, body, {{{", ".join(f"{n!r}: v{i}" for i, n in enumerate(names))}}}
    body = encode(m)
    return head + body, body, None
"""
    scope = {"pack": lay.ints.pack, "error": struct.error, "encode": encode, "head": head}
    exec(src, scope)
    return scope["seal"]
