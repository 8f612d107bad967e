"""Signatures of the KasperskyOS security models: our stand-in for the SDK's ``nk/*.psl``.

A real solution writes ``use nk.base._`` or ``use nk.flow._``; the SDK files those
name are not ours to ship, so this module declares, for each model, what such an
include makes available: the model, its pre-created objects, the names of its rules
and expressions, the shape of their argument, and which operators it provides.
The resolver checks calls against these signatures; the decision function and the
Z3 encoding (``ksm.security_models``) implement the semantics behind the same names.

Where the documentation leaves a name unconfirmed (Base ``set_level``, Bool ``cond``,
the 1.3+ Math casts beyond ``uint64``/``uint32``/``uint16``/``sint64``, ``size``),
the signature is marked ``confirmed=False``; the docs say so in
``docs/language-support.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True)
class Arg:
    """The one argument a model method takes.

    ``kind`` is ``unit`` (``()``), ``bool``, ``number``, ``text``, ``list``,
    ``any`` (any term), ``unit_or_bool`` (Base ``deny``) or ``record`` (a dictionary
    with the listed ``required`` and ``optional`` field names).
    """

    kind: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


@dataclass(frozen=True)
class MethodSig:
    name: str
    kind: str           # "rule" (votes granted/denied) or "expression" (returns a value)
    arg: Arg
    returns: str = ""   # for expressions: Boolean, Number, Text, State, Level, ...
    since: str = "1.1"
    confirmed: bool = True
    selector: bool = False   # expression meant as a `choice` selector (query, select, query_level)


@dataclass(frozen=True)
class ModelSig:
    name: str
    include: str                         # nk include path that provides it
    default_objects: tuple[str, ...]     # objects pre-created by the include
    methods: Mapping[str, MethodSig]
    type_params: tuple[str, ...] = ()    # `type X = ...` a user object must declare
    config_required: bool = False
    stateful: bool = False
    auditable: bool = False
    audit_keys: tuple[str, ...] = ()     # model-specific audit profile keys


def _m(*sigs: MethodSig) -> Mapping[str, MethodSig]:
    return MappingProxyType({s.name: s for s in sigs})


UNIT = Arg("unit")
SID = Arg("record", ("sid",))

BASE = ModelSig(
    "Base", "nk.base", ("base",),
    _m(
        MethodSig("grant", "rule", UNIT),
        MethodSig("deny", "rule", Arg("unit_or_bool")),
        MethodSig("assert", "rule", Arg("bool")),
        MethodSig("set_level", "rule", Arg("number"), confirmed=False),
    ),
    auditable=True,
)

PRED = ModelSig(
    "Pred", "nk.basic", ("pred",),
    _m(MethodSig("empty", "expression", Arg("any"), returns="Boolean")),
)

BOOL = ModelSig(
    "Bool", "nk.basic", ("bool",),
    _m(
        MethodSig("all", "expression", Arg("list"), returns="Boolean"),
        MethodSig("any", "expression", Arg("list"), returns="Boolean"),
        MethodSig("cond", "expression", Arg("record", ("if", "then", "else")), returns="ScalarLiteral", confirmed=False),
    ),
)

_CASTS = ("uint8", "uint16", "uint32", "uint64", "sint8", "sint16", "sint32", "sint64")
MATH = ModelSig(
    "Math", "nk.basic", ("math",),
    _m(
        MethodSig("neg", "expression", Arg("number"), returns="Signed"),
        MethodSig("abs", "expression", Arg("number"), returns="Signed"),
        MethodSig("sum", "expression", Arg("list"), returns="Number"),
        MethodSig("product", "expression", Arg("list"), returns="Number"),
        *(
            MethodSig(c, "expression", Arg("number"), returns=c.replace("u", "U", 1).replace("s", "S", 1).replace("int", "Int"),
                      since="1.3", confirmed=c in ("uint16", "uint32", "uint64", "sint64"))
            for c in _CASTS
        ),
    ),
)

STRUCT = ModelSig(
    "Struct", "nk.basic", ("struct",),
    _m(MethodSig("size", "expression", Arg("any"), returns="Number", confirmed=False)),
)

REGEX = ModelSig(
    "Regex", "nk.regex", ("re",),
    _m(
        MethodSig("match", "expression", Arg("record", ("text", "pattern")), returns="Boolean"),
        MethodSig("select", "expression", Arg("record", ("text",)), returns="Text", selector=True),
    ),
    auditable=True, audit_keys=("emit",),
)

HASHSET = ModelSig(
    "HashSet", "nk.hashmap", (),
    _m(
        MethodSig("init", "rule", SID),
        MethodSig("fini", "rule", SID),
        MethodSig("add", "rule", Arg("record", ("sid", "entry"))),
        MethodSig("remove", "rule", Arg("record", ("sid", "entry"))),
        MethodSig("contains", "expression", Arg("record", ("sid", "entry")), returns="Boolean"),
    ),
    type_params=("Entry",), config_required=True, stateful=True, auditable=True,
)

STATICMAP = ModelSig(
    "StaticMap", "nk.staticmap", (),
    _m(
        MethodSig("init", "rule", SID),
        MethodSig("fini", "rule", SID),
        MethodSig("set", "rule", Arg("record", ("sid", "key", "value"))),
        MethodSig("commit", "rule", SID),
        MethodSig("rollback", "rule", SID),
        MethodSig("get", "expression", Arg("record", ("sid", "key")), returns="Value"),
        MethodSig("get_uncommited", "expression", Arg("record", ("sid", "key")), returns="Value"),
    ),
    type_params=("Value",), config_required=True, stateful=True, auditable=True,
)

FLOW = ModelSig(
    "Flow", "nk.flow", (),
    _m(
        MethodSig("init", "rule", SID),
        MethodSig("fini", "rule", SID),
        MethodSig("enter", "rule", Arg("record", ("sid", "state"))),
        MethodSig("allow", "rule", Arg("record", ("sid", "states"))),
        MethodSig("query", "expression", SID, returns="State", selector=True),
    ),
    type_params=("State",), config_required=True, stateful=True, auditable=True, audit_keys=("omit",),
)

_MIC_CREATE = Arg("record", ("source", "target", "container", "driver", "level"))
MIC = ModelSig(
    "Mic", "nk.mic", (),
    _m(
        MethodSig("create", "rule", _MIC_CREATE),
        MethodSig("execute", "rule", Arg("record", ("target",), ("image", "level", "levelR"))),
        MethodSig("upgrade", "rule", _MIC_CREATE),
        MethodSig("call", "rule", Arg("record", ("source", "target"))),
        MethodSig("invoke", "rule", Arg("record", ("source", "target"))),
        MethodSig("read", "rule", Arg("record", ("source", "target"))),
        MethodSig("write", "rule", Arg("record", ("source", "target"))),
        MethodSig("query_level", "expression", Arg("record", ("source",)), returns="Level", selector=True),
    ),
    config_required=True, stateful=True, auditable=True,
)

MODELS: Mapping[str, ModelSig] = MappingProxyType(
    {m.name: m for m in (BASE, PRED, BOOL, MATH, STRUCT, REGEX, HASHSET, STATICMAP, FLOW, MIC)}
)

# nk include path -> models it provides.  `nk.basic` is the auxiliary-models file;
# `nk.hashset` is accepted as an alias because the model is named HashSet.
NK_INCLUDES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "nk.base": ("Base",),
    "nk.basic": ("Pred", "Bool", "Math", "Struct"),
    "nk.regex": ("Regex",),
    "nk.hashmap": ("HashSet",),
    "nk.hashset": ("HashSet",),
    "nk.staticmap": ("StaticMap",),
    "nk.flow": ("Flow",),
    "nk.mic": ("Mic",),
})

# Operators and the model that provides them (for "which include is missing" hints).
OPERATOR_MODEL: Mapping[str, str] = MappingProxyType({
    "==": "Pred", "!=": "Pred", "<": "Pred", "<=": "Pred", ">": "Pred", ">=": "Pred",
    "!": "Bool", "&&": "Bool", "||": "Bool", "==>": "Bool",
    "+": "Math", "-": "Math", "*": "Math", "|": "Math", "&": "Math", "~": "Math",
    "^": "Math", "<<": "Math", ">>": "Math",
})

# Methods callable without an object prefix, and the object they belong to.
UNPREFIXED: Mapping[str, str] = MappingProxyType({
    "grant": "base", "deny": "base", "assert": "base", "set_level": "base",
    "size": "struct",
})


def model_of_object(name: str) -> ModelSig | None:
    """The model of a pre-created object (``base``, ``re``, ``math`` ...), if any."""
    for model in MODELS.values():
        if name in model.default_objects:
            return model
    return None
