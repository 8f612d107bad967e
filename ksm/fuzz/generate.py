"""Random valid solutions for differential testing, deterministic per seed.

:func:`generate_solution` writes a complete solution folder:

* ``resources/``: a types-only IDL package (constants computed with ``+ - * / %
  << >> & | ^``, typedefs, structs, unions), interface packages whose methods take
  integers of every width and signedness, ``string<N>``, ``bytes<N>``, arrays,
  sequences, structs, unions and handles as in-, out- and error-parameters,
  security interfaces, CDL components and EDL process classes with endpoints (some
  through components, so qualified names such as ``core.port``);
* ``einit/src/init.yaml``: one or two instances per class, with and without a
  ``task`` name, and static channels;
* ``einit/src/security.psl``: Flow, HashSet, StaticMap and Mic objects, execute
  bindings that give processes their model contexts, and request / response /
  error / security bindings with ``grant``/``deny``/``assert``, arithmetic and bit
  operations (``+ - * & | ~``, unary ``-``, Math functions and casts),
  comparisons, Bool and Pred expressions, Regex ``match``/``select``, nested
  ``match`` sections and ``choice`` over every kind of selector;
* ``einit/src/fuzz.props``: ``never``/``always`` event properties (some mirror a
  rule of the policy, so they tend to be provable), state properties and
  reachability over the policy's objects.

Everything written is meant to load with no error: a generated solution that does
not is a bug of the generator (or of the front end), which the harness reports.

PSL has no ``^``, ``<<`` or ``>>`` (docs/language-support.md: rejected, not
documented for PSL), so those operators appear in IDL constant expressions only.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

# ============================================================== IDL type model


@dataclass(frozen=True)
class IntT:
    name: str
    lo: int
    hi: int

    @property
    def ref(self) -> str:
        return self.name


def _int_types() -> dict[str, IntT]:
    out = {}
    for bits in (8, 16, 32, 64):
        out[f"UInt{bits}"] = IntT(f"UInt{bits}", 0, 2 ** bits - 1)
        out[f"SInt{bits}"] = IntT(f"SInt{bits}", -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return out


INTS = _int_types()


@dataclass(frozen=True)
class StrT:
    bound: int
    ref: str


@dataclass(frozen=True)
class BytesT:
    bound: int
    ref: str


@dataclass(frozen=True)
class ArrT:
    elem: object
    n: int
    ref: str


@dataclass(frozen=True)
class SeqT:
    elem: object
    n: int
    ref: str


@dataclass(frozen=True)
class StructT:
    name: str
    fields: tuple

    @property
    def ref(self) -> str:
        return self.name


@dataclass(frozen=True)
class UnionT:
    name: str
    fields: tuple

    @property
    def ref(self) -> str:
        return self.name


@dataclass(frozen=True)
class HandleT:
    @property
    def ref(self) -> str:
        return "Handle"


@dataclass
class Method:
    name: str
    ins: list
    outs: list
    errs: list

    def params(self, kind: str) -> list:
        return {"request": self.ins, "security": self.ins, "response": self.outs, "error": self.errs}[kind]


@dataclass
class Interface:
    name: str                 # package name, fz.IfN
    methods: list
    security: bool = False


@dataclass
class Klass:
    name: str                 # fz.CN
    endpoints: list = field(default_factory=list)     # (qualified endpoint, Interface)
    own: list = field(default_factory=list)           # (endpoint, Interface) declared in the EDL
    components: list = field(default_factory=list)    # (instance name, component name)
    security: Interface | None = None


@dataclass
class Instance:
    task: str
    cls: str
    named: bool               # task given explicitly in init.yaml


@dataclass
class FlowObj:
    name: str
    states: list
    initial: str
    transitions: dict


@dataclass
class HashSetObj:
    name: str
    entry: IntT
    set_size: int
    pool_size: int


@dataclass
class StaticMapObj:
    name: str
    value: IntT
    keys: list                # (key, default)
    pool_size: int


@dataclass
class MicObj:
    name: str
    degrees: list
    categories: list          # empty: a list configuration

    def level(self, rng: random.Random, at_most: int | None = None) -> str:
        """A level argument (text or record), of degree at most ``at_most``."""
        top = len(self.degrees) - 1 if at_most is None else at_most
        d = self.degrees[rng.randint(0, top)]
        if not self.categories or rng.random() < 0.4:
            return f'"{d}"'
        cats = [c for c in self.categories if rng.random() < 0.5]
        return f'{{degree : "{d}", categories : [{", ".join(chr(34) + c + chr(34) for c in cats)}]}}'


@dataclass
class Scope:
    kind: str
    src: str | None = None
    dst: str | None = None
    endpoint: str | None = None
    interface: str | None = None
    method: str | None = None

    def with_(self, **kw) -> Scope:
        d = dict(self.__dict__)
        d.update(kw)
        return Scope(**d)


@dataclass
class Fact:
    """An unconditional rule of a section: granted events of ``scope`` satisfy ``cond``."""

    scope: Scope
    cond: str


@dataclass
class GeneratedSolution:
    """What :func:`generate_solution` wrote, and what the harness probes with."""

    seed: int
    root: Path
    files: dict                                   # relative path -> text
    ints: list = field(default_factory=list)      # integer literals of the policy and properties
    texts: list = field(default_factory=list)     # text literals and samples of every regex
    features: set = field(default_factory=set)    # constructs used (for coverage figures)

    @property
    def policy(self) -> str:
        return self.files["einit/src/security.psl"]

    @property
    def props(self) -> str:
        return self.files["einit/src/fuzz.props"]


# ============================================================== regex patterns
_REGEX_CHARS = "abcxyz019-"
_ANY_CHARS = "abcxyzABC019 -_./:é漢\U0001F600"


class _Regex:
    """A tiny pattern language with a sampler, inside the documented dialect."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def atom(self, depth: int):
        r = self.rng.random()
        if r < 0.4:
            c = self.rng.choice(_REGEX_CHARS)
            return (c, lambda rng, c=c: c)
        if r < 0.65:
            lo, hi = self.rng.choice([("a", "c"), ("0", "9"), ("x", "z"), ("A", "C")])
            alphabet = [chr(i) for i in range(ord(lo), ord(hi) + 1)]
            return (f"[{lo}-{hi}]", lambda rng, a=alphabet: rng.choice(a))
        if r < 0.75:
            return ("[^a]", lambda rng: rng.choice("bcx09é"))
        if r < 0.85:
            return (".", lambda rng: rng.choice(_ANY_CHARS))
        if depth < 2:
            alts = [self.seq(depth + 1, 2) for _ in range(self.rng.randint(2, 3))]
            text = "(" + "|".join(a[0] for a in alts) + ")"
            return (text, lambda rng, alts=alts: rng.choice(alts)[1](rng))
        return ("b", lambda rng: "b")

    def piece(self, depth: int):
        text, sample = self.atom(depth)
        q = self.rng.choice(["", "", "", "*", "+", "?", "{2}", "{1,3}", "{0,2}"])
        lo, hi = {"": (1, 1), "*": (0, 3), "+": (1, 3), "?": (0, 1), "{2}": (2, 2), "{1,3}": (1, 3),
                  "{0,2}": (0, 2)}[q]
        return (text + q, lambda rng: "".join(sample(rng) for _ in range(rng.randint(lo, hi))))

    def seq(self, depth: int, most: int):
        pieces = [self.piece(depth) for _ in range(self.rng.randint(1, most))]
        return ("".join(p[0] for p in pieces), lambda rng: "".join(p[1](rng) for p in pieces))

    def pattern(self):
        body, sample = self.seq(0, 4)
        anchored = self.rng.random() < 0.5
        return (f"^{body}$" if anchored else body), sample


# ============================================================== the generator
_FIELD_NAMES = ["code", "level", "mode", "flags", "tag", "name", "count", "items", "key", "val", "ident",
                "data", "hdr", "opt", "port", "rate", "text", "seq", "vec", "blob"]
_METHOD_NAMES = ["Get", "Put", "Ping", "Open", "Close", "Send", "Query", "Set", "Reset", "Push", "Read",
                 "Write", "Sync", "Probe"]
_SEC_METHODS = ["Ready", "Halt", "Degrade", "Report", "Notify"]
_EP_NAMES = ["api", "ctl", "data", "io", "feed", "admin", "store"]
_STATES = ["idle", "busy", "done", "open", "locked", "jammed"]
_TEXTS = ["", "a", "abc", "x-1", "LOCK", "busy", "0", "zz9", "é", "a b"]
KERNEL, EINIT = "kl.core.Core", "Einit"


class _Gen:
    def __init__(self, seed: int):
        self.seed = seed
        self.rng = random.Random(seed)
        self.ints: set[int] = set()
        self.texts: set[str] = {"", "a"}
        self.features: set[str] = set()
        self.facts: list[Fact] = []
        self.bound_scopes: list[Scope] = []
        self.consts: dict[str, int] = {}

    # ---------------------------------------------------------------- helpers
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, seq):
        return seq[self.rng.randrange(len(seq))]

    def feature(self, name: str) -> None:
        self.features.add(name)

    # ================================================================ IDL
    def const_expr(self, depth: int = 0) -> tuple[str, int]:
        """A constant expression and its value (small positive results only)."""
        r = self.rng.random()
        if depth >= 2 or r < 0.35:
            if self.consts and self.chance(0.4):
                name = self.pick(sorted(self.consts))
                return name, self.consts[name]
            v = self.rng.randint(1, 9)
            form = self.rng.random()
            if form < 0.2:
                return hex(v), v
            if form < 0.3:
                return f"0o{v:o}", v
            return str(v), v
        a, va = self.const_expr(depth + 1)
        b, vb = self.const_expr(depth + 1)
        op = self.pick(["+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^"])
        if op not in ("+", "-", "*") and (va < 0 or vb <= 0):
            op = "+"              # C and Python disagree on negative operands: keep them out
        if op == "<<":
            vb = vb % 4
            b = str(vb)
        value = {"+": lambda: va + vb, "-": lambda: va - vb, "*": lambda: va * vb, "/": lambda: va // vb,
                 "%": lambda: va % vb, "<<": lambda: va << vb, ">>": lambda: va >> vb, "&": lambda: va & vb,
                 "|": lambda: va | vb, "^": lambda: va ^ vb}[op]()
        self.feature(f"idl const {op}")
        return f"({a} {op} {b})", value

    def bound(self, lo: int = 1, hi: int = 12) -> tuple[str, int]:
        """A bound: a literal or a constant of the types package within [lo, hi]."""
        fits = [n for n, v in sorted(self.consts.items()) if lo <= v <= hi]
        if fits and self.chance(0.5):
            n = self.pick(fits)
            return n, self.consts[n]
        v = self.rng.randint(lo, hi)
        return str(v), v

    def scalar_type(self):
        r = self.rng.random()
        if r < 0.7:
            return INTS[self.pick(sorted(INTS))]
        if r < 0.9:
            ref, n = self.bound(1, 8)
            return StrT(n, f"string<{ref}>")
        ref, n = self.bound(1, 16)
        return BytesT(n, f"bytes<{ref}>")

    def field_type(self, depth: int):
        r = self.rng.random()
        if depth > 0 and r < 0.25 and self.structs:
            return self.pick(self.structs)
        if depth > 0 and r < 0.35 and self.unions:
            return self.pick(self.unions)
        if r < 0.45 and self.aliases:
            return self.pick(self.aliases)
        if r < 0.55 and depth < 2:
            elem = self.field_type(depth + 1) if self.chance(0.3) else INTS[self.pick(sorted(INTS))]
            ref, n = self.bound(1, 4)
            if self.chance(0.5):
                self.feature("idl array")
                return ArrT(elem, n, f"array<{elem.ref}, {ref}>")
            self.feature("idl sequence")
            return SeqT(elem, n, f"sequence<{elem.ref}, {ref}>")
        if r < 0.6:
            self.feature("idl handle")
            return HandleT()
        return self.scalar_type()

    def names(self, k: int) -> list[str]:
        return self.rng.sample(_FIELD_NAMES, k)

    def types_package(self) -> str:
        lines = ["/* Shared types of the generated solution (no interface). */", "package fz.Types", ""]
        for i in range(self.rng.randint(2, 4)):
            for _ in range(20):
                text, value = self.const_expr()
                if 1 <= value <= 40:
                    break
            else:
                text, value = "4", 4
            name = f"K{i}"
            self.consts[name] = value
            lines.append(f"const UInt32 {name} = {text};")
        self.aliases: list = []
        self.structs: list = []
        self.unions: list = []
        for i in range(self.rng.randint(1, 3)):
            t = self.scalar_type() if self.chance(0.6) else self.field_type(1)
            name = f"Alias{i}"
            lines.append(f"typedef {t.ref} {name};")
            self.aliases.append(_Alias(name, t))
            self.feature("idl typedef")
        for i in range(self.rng.randint(1, 3)):
            fields = tuple((n, self.field_type(1)) for n in self.names(self.rng.randint(1, 4)))
            s = StructT(f"Rec{i}", fields)
            lines.append(f"struct {s.name} {{")
            lines += [f"    {t.ref} {n};" for n, t in fields]
            lines.append("}")
            self.structs.append(s)
            self.feature("idl struct")
        for i in range(self.rng.randint(0, 2)):
            fields = tuple((n, self.field_type(1)) for n in self.names(self.rng.randint(2, 3)))
            u = UnionT(f"Choice{i}", fields)
            lines.append(f"union {u.name} {{")
            lines += [f"    {t.ref} {n};" for n, t in fields]
            lines.append("}")
            self.unions.append(u)
            self.feature("idl union")
        return "\n".join(lines) + "\n"

    def method(self, name: str, security: bool) -> Method:
        names = iter(self.names(6))
        ins = [(next(names), self.field_type(1 if self.chance(0.5) else 0)) for _ in range(self.rng.randint(0, 3))]
        if security:
            return Method(name, ins, [], [])
        outs = [(next(names), self.field_type(1)) for _ in range(self.rng.randint(0, 2))]
        errs = [(next(names), self.pick([INTS["SInt32"], INTS["SInt16"], INTS["UInt8"], self.field_type(1)]))
                for _ in range(self.rng.randint(0, 1))]
        return Method(name, ins, outs, errs)

    def interface_file(self, iface: Interface) -> str:
        lines = [f"package {iface.name}", "", "import fz.Types", "", "interface {"]
        for m in iface.methods:
            ps = [f"in {t.ref} {n}" for n, t in m.ins] + [f"out {t.ref} {n}" for n, t in m.outs] \
                + [f"error {t.ref} {n}" for n, t in m.errs]
            lines.append(f"    {m.name}({', '.join(ps)});")
        lines.append("}")
        return "\n".join(lines) + "\n"

    # ================================================================ solution shape
    def shape(self, files: dict) -> None:
        files["resources/Types.idl"] = self.types_package()
        self.ifaces: list[Interface] = []
        for i in range(self.rng.randint(2, 3)):
            names = self.rng.sample(_METHOD_NAMES, self.rng.randint(1, 3))
            iface = Interface(f"fz.If{i}", [self.method(n, False) for n in names])
            self.ifaces.append(iface)
            files[f"resources/If{i}.idl"] = self.interface_file(iface)
        self.sec_ifaces: list[Interface] = []
        if self.chance(0.6):
            names = self.rng.sample(_SEC_METHODS, self.rng.randint(1, 2))
            iface = Interface("fz.Sec0", [self.method(n, True) for n in names], security=True)
            self.sec_ifaces.append(iface)
            files["resources/Sec0.idl"] = self.interface_file(iface)
            self.feature("security interface")
        comps = []
        if self.chance(0.5):
            iface = self.pick(self.ifaces)
            inner = None
            if self.chance(0.4):
                inner = ("sub", "fz.Leaf", self.pick(self.ifaces))
                files["resources/Leaf.cdl"] = f"component fz.Leaf\nendpoints {{\n    port : {inner[2].name}\n}}\n"
                self.feature("nested component")
            text = "component fz.Part\n"
            if inner:
                text += "components {\n    sub : fz.Leaf\n}\n"
            text += f"endpoints {{\n    port : {iface.name}\n}}\n"
            files["resources/Part.cdl"] = text
            eps = [("port", iface)] + ([("sub.port", inner[2])] if inner else [])
            comps.append(("fz.Part", eps))
            self.feature("component")
        self.classes: list[Klass] = []
        n = self.rng.randint(2, 4)
        for i in range(n):
            k = Klass(f"fz.C{i}")
            server = i == 0 or self.chance(0.7)
            if server:
                for ep in self.rng.sample(_EP_NAMES, self.rng.randint(1, 2)):
                    iface = self.pick(self.ifaces)
                    k.own.append((ep, iface))
                    k.endpoints.append((ep, iface))
                if comps and self.chance(0.6):
                    cname, eps = comps[0]
                    k.components.append(("core", cname))
                    k.endpoints += [(f"core.{e}", iface) for e, iface in eps]
            if self.sec_ifaces and self.chance(0.6):
                k.security = self.sec_ifaces[0]
            self.classes.append(k)
            files[f"resources/C{i}.edl"] = self.edl(k)
        if self.sec_ifaces and not any(k.security for k in self.classes):
            self.classes[-1].security = self.sec_ifaces[0]
            files[f"resources/C{len(self.classes) - 1}.edl"] = self.edl(self.classes[-1])
        # instances
        self.instances: list[Instance] = []
        t = 0
        for k in self.classes:
            count = 2 if self.chance(0.3) else 1
            for _ in range(count):
                named = count > 1 or self.chance(0.6)
                task = f"t{t}" if named else k.name
                t += 1
                self.instances.append(Instance(task, k.name, named))
        if len(self.instances) > len(self.classes):
            self.feature("several instances of a class")
        files["einit/src/init.yaml"] = self.init_yaml()

    def edl(self, k: Klass) -> str:
        form = "task class" if self.chance(0.8) else "entity"
        lines = [f"{form} {k.name}"]
        if k.components:
            lines += ["components {"] + [f"    {n} : {c}" for n, c in k.components] + ["}"]
        if k.security:
            lines.append(f"security {k.security.name}")
        if k.own:
            lines += ["endpoints {"] + [f"    {ep} : {i.name}" for ep, i in k.own] + ["}"]
        return "\n".join(lines) + "\n"

    def init_yaml(self) -> str:
        servers = [i for i in self.instances if self.klass(i.cls).endpoints]
        lines = ["# generated", "entities:"]
        ch = 0
        for inst in self.instances:
            lines.append(f"  - name: {inst.cls}")
            if inst.named:
                lines.append(f"    task: {inst.task}")
            targets = [s for s in servers if s.task != inst.task and self.chance(0.5)]
            if targets:
                lines.append("    connections:")
                for s in targets:
                    lines += [f"      - target: {s.task}", f"        id: chan{ch}"]
                    ch += 1
                self.feature("static channels")
        return "\n".join(lines) + "\n"

    def klass(self, name: str) -> Klass:
        return next(k for k in self.classes if k.name == name)

    def tasks_of(self, cls: str) -> list[str]:
        return [i.task for i in self.instances if i.cls == cls]

    # ================================================================ objects
    def objects(self) -> list[str]:
        lines: list[str] = []
        app = [k.name for k in self.classes]
        self.flows: list[FlowObj] = []
        self.hashsets: list[HashSetObj] = []
        self.maps: list[StaticMapObj] = []
        self.mic: MicObj | None = None
        self.ctx_classes: dict[str, list[str]] = {}     # object -> classes whose processes get a context
        for i in range(self.rng.choice([0, 1, 1, 2])):
            states = self.rng.sample(_STATES, self.rng.randint(2, 4))
            trans = {}
            for s in states:
                if self.chance(0.8):
                    trans[s] = [t for t in states if self.chance(0.5)]
            f = FlowObj(f"fsm{i}", states, states[0], trans)
            self.flows.append(f)
            ttext = ", ".join(f'"{s}" : [{", ".join(chr(34) + t + chr(34) for t in ts)}]' for s, ts in trans.items())
            lines += [f"policy object {f.name} : Flow {{",
                      f"    type State = {' | '.join(chr(34) + s + chr(34) for s in states)}",
                      f"    config = {{ states : [{', '.join(chr(34) + s + chr(34) for s in states)}], "
                      f"initial : \"{f.initial}\",",
                      f"               transitions : {{ {ttext} }} }}",
                      "}"]
            self.ctx_classes[f.name] = [c for c in app if self.chance(0.7)] or [app[0]]
            self.feature("Flow")
        if self.chance(0.5):
            entry = INTS[self.pick(["UInt8", "UInt16", "UInt32", "SInt16", "SInt32"])]
            cls = [c for c in app if self.chance(0.6)] or [app[0]]
            procs = sum(len(self.tasks_of(c)) for c in cls)
            pool = procs + self.rng.randint(0, 2) if self.chance(0.85) else max(1, procs - 1)
            h = HashSetObj("tbl", entry, self.rng.randint(1, 4), pool)
            self.hashsets.append(h)
            self.ctx_classes[h.name] = cls
            lines += [f"policy object {h.name} : HashSet {{", f"    type Entry = {entry.name}",
                      f"    config = {{ set_size : {h.set_size}, pool_size : {h.pool_size} }}", "}"]
            self.feature("HashSet")
        if self.chance(0.45):
            value = INTS[self.pick(["UInt8", "UInt16", "UInt32", "SInt32"])]
            keys = [(k, self.rng.randint(max(value.lo, -5), min(value.hi, 500)))
                    for k in self.rng.sample(["limit", "burst", "mode", "floor"], self.rng.randint(1, 3))]
            cls = [c for c in app if self.chance(0.6)] or [app[0]]
            procs = sum(len(self.tasks_of(c)) for c in cls)
            m = StaticMapObj("cfg", value, keys, procs + self.rng.randint(0, 1))
            self.maps.append(m)
            self.ctx_classes[m.name] = cls
            for _, v in keys:
                self.ints.add(v)
            ktext = ", ".join(f'"{k}" : {v}' for k, v in keys)
            lines += [f"policy object {m.name} : StaticMap {{", f"    type Value = {value.name}",
                      f"    config = {{ keys : {{ {ktext} }}, pool_size : {m.pool_size} }}", "}"]
            self.feature("StaticMap")
        if self.chance(0.4):
            if self.chance(0.5):
                mic = MicObj("integrity", ["LOW", "MEDIUM", "HIGH"][: self.rng.randint(2, 3)], [])
                lines += [f"policy object {mic.name} : Mic {{",
                          f"    config = [{', '.join(chr(34) + d + chr(34) for d in mic.degrees)}]", "}"]
            else:
                mic = MicObj("integrity", ["low", "high"], ["net", "log"][: self.rng.randint(1, 2)])
                lines += [f"policy object {mic.name} : Mic {{",
                          f"    config = {{ degrees : [{', '.join(chr(34) + d + chr(34) for d in mic.degrees)}], "
                          f"categories : [{', '.join(chr(34) + c + chr(34) for c in mic.categories)}] }}", "}"]
                self.feature("Mic categories")
            self.mic = mic
            self.ctx_classes[mic.name] = [c for c in app if self.chance(0.85)] or [app[0]]
            self.feature("Mic")
        return lines

    # ================================================================ execute
    def execute_bindings(self) -> list[str]:
        lines = []
        nested = self.chance(0.5)
        if nested:
            lines += ["execute {", "    match src=kl.core.Core {", "        match dst=kl.core.Core { grant () }",
                      "        match dst=Einit { grant () }", "    }"]
        else:
            lines += ["execute src=kl.core.Core, dst=kl.core.Core { grant () }",
                      "execute src=kl.core.Core dst=Einit { grant () }"]
        inner: list[str] = []
        outside: list[str] = []
        for k in self.classes:
            calls = []
            for f in self.flows:
                if k.name in self.ctx_classes[f.name]:
                    calls.append(f"{f.name}.init {{sid : dst_sid}}")
            for h in self.hashsets:
                if k.name in self.ctx_classes[h.name]:
                    calls.append(f"{h.name}.init {{sid : dst_sid}}")
            for m in self.maps:
                if k.name in self.ctx_classes[m.name]:
                    calls.append(f"{m.name}.init {{sid : dst_sid}}")
            if self.mic and k.name in self.ctx_classes[self.mic.name]:
                top = self.rng.randrange(len(self.mic.degrees))
                level = self.mic.level(self.rng, top)
                # levelR at most the level: () (= the level) or the lowest degree with no category
                level_r = "()" if self.chance(0.6) else f'"{self.mic.degrees[0]}"'
                if self.chance(0.05):
                    level_r = self.mic.level(self.rng)      # may exceed the level: the start is denied
                    self.feature("Mic levelR above level")
                calls.append(f"{self.mic.name}.execute {{image : (), target : dst_sid, level : {level}, "
                             f"levelR : {level_r}}}")
            if not calls or self.chance(0.2):
                calls.append("grant ()")
            if self.chance(0.015):
                calls = ["deny ()"]           # a class that never starts
                self.feature("denied start")
            anyone = self.chance(0.15)
            if anyone:
                self.feature("execute from any process")
            body = " ".join(calls)
            if nested and not anyone:
                inner.append(f"        match dst={k.name} {{ {body} }}")
            else:
                src = "" if anyone else "src=Einit, "
                outside.append(f"execute {src}dst={k.name} {{ {body} }}")
        if nested:
            if inner:
                lines += ["    match src=Einit {"] + inner + ["    }"]
            lines.append("}")
        return lines + outside

    # ================================================================ addresses
    def addresses(self, kind: str) -> list[tuple]:
        """(server class, endpoint, interface, method) of every message of a kind."""
        out = []
        if kind == "security":
            for k in self.classes:
                if k.security:
                    for m in k.security.methods:
                        out.append((k.name, None, k.security, m))
            return out
        for k in self.classes:
            for ep, iface in k.endpoints:
                for m in iface.methods:
                    out.append((k.name, ep, iface, m))
        return out

    def clients(self) -> list[str]:
        return [k.name for k in self.classes] + ([EINIT] if self.chance(0.1) else [])

    def targets(self, scope: Scope) -> list[tuple]:
        """(server, endpoint, interface, method) a scope selects (any client)."""
        out = []
        server = scope.src if scope.kind in ("response", "error", "security") else scope.dst
        for a in self.addresses(scope.kind):
            s, ep, iface, m = a
            if server is not None and s != server:
                continue
            if scope.endpoint is not None and ep != scope.endpoint:
                continue
            if scope.interface is not None and iface.name != scope.interface:
                continue
            if scope.method is not None and m.name != scope.method:
                continue
            out.append(a)
        return out

    def pinned(self, scope: Scope) -> list | None:
        """The message parameters when the scope selects exactly one method, else None."""
        ts = self.targets(scope)
        ms = {(iface.name, m.name) for _, _, iface, m in ts}
        if len(ms) != 1:
            return None
        return ts[0][3].params(scope.kind)

    # ================================================================ expressions
    def lit_int(self, t: IntT | None = None) -> str:
        r = self.rng.random()
        if t is not None and r < 0.6:
            v = self.pick([t.lo, t.hi, t.lo + 1, t.hi - 1, (t.lo + t.hi) // 2, 0, 1, 7, 100,
                           self.rng.randint(t.lo, t.hi)])
            v = min(max(v, t.lo), t.hi)
        elif r < 0.55:
            v = self.rng.randint(0, 10)
        elif r < 0.75:
            k = self.rng.randint(1, 63)
            v = 2 ** k + self.pick([-1, 0, 1])
        elif r < 0.85:
            v = -self.rng.randint(1, 200)
        else:
            v = self.rng.randint(0, 100_000)
        v = max(-(2 ** 63), min(v, 2 ** 64 - 1))
        self.ints.add(v)
        if v < 0:
            return f"(-{-v})"
        if v > 9 and self.chance(0.2):
            return hex(v)
        return str(v)

    def lit_text(self) -> str:
        t = self.pick(_TEXTS)
        self.texts.add(t)
        return f'"{t}"'

    def sids(self, scope: Scope) -> list[str]:
        if scope.kind == "security":
            return ["src_sid"]
        return ["src_sid", "dst_sid"]

    def good_sids(self, scope: Scope, obj: str) -> list[str]:
        """SID expressions of the scope whose process surely has a context of ``obj``."""
        out = []
        for s in self.sids(scope):
            cls = scope.src if s == "src_sid" else scope.dst
            if cls is not None and cls in self.ctx_classes.get(obj, ()):
                out.append(s)
        return out

    def sid_for(self, scope: Scope, obj: str | None) -> str:
        """A SID expression, preferring one whose process has a context of ``obj``."""
        options = self.sids(scope)
        if obj is not None:
            good = []
            for s in options:
                cls = scope.src if s == "src_sid" else scope.dst
                if cls is not None and cls in self.ctx_classes.get(obj, ()):
                    good.append(s)
            if good and self.chance(0.9):
                return self.pick(good)
        return self.pick(options)

    def message_paths(self, params) -> dict[str, list]:
        """Paths by kind: int (path, IntT), text, seq (sequences and texts, for size/empty)."""
        out: dict[str, list] = {"int": [], "text": [], "seq": [], "bytes": []}

        def walk(t, path: str, depth: int) -> None:
            if isinstance(t, _Alias):
                t = t.target
            if isinstance(t, IntT):
                out["int"].append((path, t))
            elif isinstance(t, StrT):
                out["text"].append((path, t))
                out["seq"].append((path, t))
            elif isinstance(t, BytesT):
                out["bytes"].append((path, t))
            elif isinstance(t, HandleT):
                out["int"].append((f"{path}.handle", INTS["UInt32"]))
                out["int"].append((f"{path}.rights", INTS["UInt32"]))
            elif isinstance(t, (StructT, UnionT)):
                for n, ft in t.fields:
                    walk(ft, f"{path}.{n}", depth + 1)
            elif isinstance(t, (ArrT, SeqT)):
                out["seq"].append((path, t))
                if depth < 4:
                    idx = [0] if t.n == 1 else [0, t.n - 1]
                    if isinstance(t, SeqT) or self.chance(0.1):
                        idx.append(t.n)      # may be out of range: runs incorrectly
                    for i in idx:
                        walk(t.elem, f"{path}.[{i}]", depth + 1)
        for n, t in params:
            walk(t, f"message.{n}", 0)
        return out

    def int_leaf(self, c: _Ctx, var: bool = False) -> str:
        """An integer leaf; with ``var``, one that depends on the event or the state."""
        opts = [] if var else [("lit", 3)]
        if c.paths and c.paths["int"]:
            opts.append(("path", 8))
        opts.append(("sid", 1.5 if not (c.paths and c.paths["int"]) else 0.5))
        if c.paths and c.paths["seq"]:
            opts.append(("size", 0.6))
        if self.maps:
            opts.append(("get", 1.0 if self.good_sids(c.scope, self.maps[0].name) else 0.1))
        if c.paths and c.paths["int"] and any(isinstance(t, (ArrT, SeqT)) for _, t in c.paths["seq"]):
            opts.append(("computed index", 0.4))
        what = _weighted(self.rng, opts)
        if what == "path":
            path, t = self.pick(c.paths["int"])
            c.typed.append(t)
            return path
        if what == "sid":
            c.typed.append(_SID)
            return self.pick(self.sids(c.scope))
        if what == "size":
            self.feature("size")
            path, t = self.pick(c.paths["seq"])
            c.typed.append(IntT("size", 0, _plain(t).bound if hasattr(_plain(t), "bound") else _plain(t).n))
            return f"size ({path})"
        if what == "get":
            m = self.pick(self.maps)
            key = self.pick(m.keys)[0]
            fn = "get" if self.chance(0.7) else "get_uncommited"
            self.feature(f"StaticMap {fn}")
            c.typed.append(m.value)
            return f"{m.name}.{fn} {{sid : {self.sid_for(c.scope, m.name)}, key : \"{key}\"}}"
        if what == "computed index":
            seqs = [(p, t) for p, t in c.paths["seq"] if isinstance(t, (ArrT, SeqT))
                    and isinstance(_plain(t.elem), IntT)]
            if seqs:
                p, t = self.pick(seqs)
                idx = self.pick(c.paths["int"])[0]
                self.feature("computed index")
                return f"{p}.[{idx}]"
            return self.pick(self.sids(c.scope))
        t = self.pick(c.typed) if c.typed and self.chance(0.5) else None
        return self.lit_int(t)

    def int_expr(self, c: _Ctx, d: int, var: bool = False) -> str:
        """An integer expression; with ``var``, its value depends on the event or the state."""
        if d <= 0 or self.chance(0.45):
            return self.int_leaf(c, var)
        op = _weighted(self.rng, [("+", 3), ("-", 2), ("*", 1.2), ("&", 2.5), ("|", 1.5), ("~", 0.8), ("neg", 0.6),
                                  ("abs", 0.5), ("mneg", 0.4), ("sum", 0.5), ("product", 0.3), ("cast", 0.6),
                                  ("cond", 0.2)])
        self.feature(f"op {op}")
        if op in ("+", "-", "*", "&", "|"):
            left = self.int_expr(c, d - 1, var)
            # mostly `field OP literal`, as policies write masks and offsets
            right = self.lit_int() if self.chance(0.6) else self.int_expr(c, d - 1)
            return f"({left} {op} {right})" if self.chance(0.8) else f"({right} {op} {left})"
        if op == "~":
            return f"(~{self.int_expr(c, d - 1, var)})"
        if op == "neg":
            return f"(-{self.int_expr(c, d - 1, var)})"
        if op == "abs":
            return f"math.abs ({self.int_expr(c, d - 1, var)})"
        if op == "mneg":
            return f"math.neg ({self.int_expr(c, d - 1, var)})"
        if op in ("sum", "product"):
            items = [self.int_expr(c, d - 1, var)] + [self.int_expr(c, d - 1) for _ in range(self.rng.randint(0, 2))]
            self.rng.shuffle(items)
            return f"math.{op} ([{', '.join(items)}])"
        if op == "cond":
            return (f"bool.cond {{if : {self.bool_expr(c, d - 1)}, then : {self.int_expr(c, d - 1, var)}, "
                    f"else : {self.int_expr(c, d - 1)}}}")
        cast = self.pick(["uint8", "uint16", "uint32", "uint64", "sint8", "sint16", "sint32", "sint64"])
        return f"math.{cast} ({self.int_expr(c, d - 1, var)})"

    def text_expr(self, c: _Ctx, query: bool = True) -> str:
        opts = [("lit", 1)]
        if c.paths and c.paths["text"]:
            opts.append(("path", 5))
        if self.flows and query:
            opts.append(("query", 0.5))
        what = _weighted(self.rng, opts)
        if what == "path":
            return self.pick(c.paths["text"])[0]
        if what == "query":
            f = self.pick(self.flows)
            return f"{f.name}.query {{sid : {self.sid_for(c.scope, f.name)}}}"
        return self.lit_text()

    def regex(self) -> str:
        pattern, sample = _Regex(self.rng).pattern()
        for _ in range(4):
            self.texts.add(sample(self.rng))
        return pattern

    def biased_cmp(self, path: str, t: IntT, bias: bool | None) -> str:
        """``path OP literal``; with a bias, true (or false) for most of the field's range.

        Either way the literal sits inside the range, so the boundary is where the
        probes and the crosscheck look (the literal and its neighbours)."""
        lo, hi = t.lo, t.hi
        span = hi - lo

        def at(frac_lo: float, frac_hi: float) -> int:
            v = lo + int(span * self.rng.uniform(frac_lo, frac_hi))
            if span > 1000 and self.chance(0.6):       # a rounder literal, as people write them
                unit = 10 ** max(0, len(str(abs(v))) - 2)
                v = min(max((v // unit) * unit, lo), hi)
            return v
        if bias is None:
            op = self.pick(["==", "!=", "<", "<=", ">", ">="])
            return f"({path} {op} {self.lit_int(t)})"
        if bias:
            op, v = self.pick([("<=", lambda: at(0.5, 1)), ("<", lambda: at(0.5, 1)), (">=", lambda: at(0, 0.3)),
                               (">", lambda: at(0, 0.3)), ("!=", lambda: at(0, 1))])
        else:
            op, v = self.pick([("==", lambda: at(0, 1)), (">", lambda: at(0.9, 1)), ("<", lambda: at(0, 0.1)),
                               (">=", lambda: at(0.95, 1)), ("<=", lambda: at(0, 0.05))])
        value = v()
        self.ints.add(value)
        return f"({path} {op} {value if value >= 0 else f'(-{-value})'})"

    def idiom(self, c: _Ctx) -> str:
        """Bit tests and offsets as policies write them: ``(flags & 0x8) != 0``, ``(len + 4) <= 64``."""
        path, t = self.pick(c.paths["int"])
        bits = max(1, (t.hi - t.lo).bit_length())
        k = self.rng.randrange(min(bits, 63))
        mask = self.pick([1 << k, (1 << (k + 1)) - 1, self.rng.getrandbits(min(bits, 16)) | 1,
                          ((1 << bits) - 1) ^ ((1 << k) - 1)])
        self.ints.add(mask)
        m = hex(mask) if self.chance(0.6) else str(mask)
        form = self.rng.randrange(9)
        self.feature("bit and offset idioms")
        if form == 0:
            return f"(({path} & {m}) == 0)"
        if form == 1:
            return f"(({path} & {m}) != 0)"
        if form == 2:
            return f"(({path} | {m}) == {path})"
        if form == 3:
            return f"(({path} & (~{m})) == 0)"
        if form == 4:
            sub = mask & self.rng.getrandbits(max(1, mask.bit_length()))
            return f"(({path} & {m}) == {sub})"
        k2 = self.rng.choice([1, 2, 4, 8, 16, 100])
        limit = self.lit_int(t)
        if form == 5:
            return f"(({path} + {k2}) <= {limit})"
        if form == 6:
            return f"(({path} - {k2}) >= {limit})"
        if form == 7:
            return f"(({path} * {k2}) < {limit})"
        other, _ = self.pick(c.paths["int"])
        return f"(({path} + {other}) {self.pick(['<=', '<', '>', '=='])} {limit})"

    def bool_leaf(self, c: _Ctx, bias: bool | None = None) -> str:
        opts = [("cmp", 6), ("lit", 0.2)]
        if c.paths and c.paths["text"]:
            opts += [("texteq", 1.5), ("re", 2)]
        if c.paths and c.paths["seq"]:
            opts.append(("empty", 0.6))
        if self.hashsets and self.good_sids(c.scope, self.hashsets[0].name):
            opts.append(("contains", 1.2))
        if self.flows and any(self.good_sids(c.scope, f.name) for f in self.flows):
            opts.append(("state", 1.2))
        what = _weighted(self.rng, opts)
        if what == "cmp":
            r = self.rng.random()
            if r < 0.5 and c.paths and c.paths["int"]:
                # the common shape: a field against a literal inside the field's range
                path, t = self.pick(c.paths["int"])
                return self.biased_cmp(path, t, bias)
            if r < 0.75 and c.paths and c.paths["int"]:
                return self.idiom(c)
            op = self.pick(["==", "!=", "<", "<=", ">", ">="])
            if r < 0.85:
                c.typed.clear()
                left = self.int_expr(c, 2 if bias is None else self.pick([0, 0, 1]), var=True)
                if bias is not None and c.typed:
                    return self.biased_cmp(left, c.typed[-1], bias)
                return f"({left} {op} {self.lit_int(c.typed[-1] if c.typed else None)})"
            if r < 0.98:
                return f"({self.int_expr(c, 2, var=True)} {op} {self.int_expr(c, 1, var=True)})"
            return f"({self.int_expr(c, 1)} {op} {self.int_expr(c, 1)})"     # constant, now and then
        if what == "texteq":
            op = {True: "!=", False: "=="}.get(bias, self.pick(["==", "!="]))
            return f"({self.text_expr(c)} {op} {self.text_expr(c)})"
        if what == "re":
            self.feature("Regex match")
            return f"re.match {{text : {self.text_expr(c)}, pattern : \"{self.regex()}\"}}"
        if what == "empty":
            return f"pred.empty ({self.pick(c.paths['seq'])[0]})"
        if what == "contains":
            h = self.hashsets[0]
            self.feature("HashSet contains")
            return f"{h.name}.contains {{sid : {self.sid_for(c.scope, h.name)}, entry : {self.entry(c, h)}}}"
        if what == "state":
            f = self.pick([f for f in self.flows if self.good_sids(c.scope, f.name)])
            op = {True: "!=", False: "=="}.get(bias, self.pick(["==", "!="]))
            return f"({f.name}.query {{sid : {self.sid_for(c.scope, f.name)}}} {op} \"{self.pick(f.states)}\")"
        if bias is not None:
            return "true" if bias else "false"
        return self.pick(["true", "false"])

    def bool_expr(self, c: _Ctx, d: int, bias: bool | None = None) -> str:
        """A condition; with ``bias``, built to be true (or false) for most messages."""
        if d <= 0 or self.chance(0.45):
            return self.bool_leaf(c, bias)
        op = _weighted(self.rng, [("&&", 3), ("||", 3), ("==>", 1), ("!", 1.5), ("all", 0.7), ("any", 0.7)])
        self.feature(f"op {op}")
        flip = None if bias is None else not bias
        if op in ("&&", "all"):
            # true: every part true; false: one part false
            n = 2 if op == "&&" else self.rng.randint(0, 3)
            if bias is False and n:
                k = self.rng.randrange(n)
                parts = [self.bool_expr(c, d - 1, False if i == k else None) for i in range(n)]
            else:
                parts = [self.bool_expr(c, d - 1, bias) for _ in range(n)]
        elif op in ("||", "any"):
            n = 2 if op == "||" else self.rng.randint(0, 3)
            if bias is True and n:
                k = self.rng.randrange(n)
                parts = [self.bool_expr(c, d - 1, True if i == k else None) for i in range(n)]
            else:
                parts = [self.bool_expr(c, d - 1, bias) for _ in range(n)]
        elif op == "==>":
            if bias is False:
                parts = [self.bool_expr(c, d - 1, True), self.bool_expr(c, d - 1, False)]
            else:
                parts = [self.bool_expr(c, d - 1), self.bool_expr(c, d - 1, bias)]
        else:
            return f"(!{self.bool_expr(c, d - 1, flip)})"
        if op in ("all", "any"):
            return f"bool.{op} ([{', '.join(parts)}])"
        return f"({parts[0]} {op} {parts[1]})"

    def entry(self, c: _Ctx, h: HashSetObj) -> str:
        if c.paths and c.paths["int"] and self.chance(0.7):
            fits = [p for p, t in c.paths["int"] if h.entry.lo <= t.lo and t.hi <= h.entry.hi]
            if fits:
                return self.pick(fits)
        v = self.rng.randint(max(h.entry.lo, -3), min(h.entry.hi, 12))
        self.ints.add(v)
        return f"(-{-v})" if v < 0 else str(v)

    # ================================================================ statements
    def rule(self, c: _Ctx, top: bool) -> str:
        s = c.scope
        if c.paths is None:       # a broad section (many methods): mostly a grant, lightly guarded
            opts = [("assert", 2), ("grant", 5), ("deny_if", 1), ("deny", 0.1)]
            strength = 0.95
        else:
            opts = [("assert", 5), ("grant", 2.5), ("deny_if", 2), ("deny", 0.2)]
            strength = 0.85

        def w(obj: str, weight: float) -> float:       # model rules: mostly on SIDs that have a context
            return weight if self.good_sids(s, obj) else weight * 0.1
        if self.flows:
            f0 = self.flows[0].name
            opts += [("enter", w(f0, 1.5)), ("allow", w(f0, 1)), ("flow_init_fini", w(f0, 0.1))]
        if self.hashsets:
            h0 = self.hashsets[0].name
            opts += [("add", w(h0, 1.5)), ("remove", w(h0, 0.6))]
        if self.maps:
            m0 = self.maps[0].name
            opts += [("set", w(m0, 1)), ("commit", w(m0, 0.7)), ("rollback", w(m0, 0.4))]
        if self.mic:
            opts += [("mic", w(self.mic.name, 1.2)), ("upgrade", w(self.mic.name, 0.2))]
        opts.append(("set_level", 0.1))
        what = _weighted(self.rng, opts)
        self.feature(f"rule {what}")
        if what == "assert":
            b = self.bool_expr(c, 2, True if self.chance(strength) else None)
            if top:
                self.facts.append(Fact(s, b))
            if self.chance(0.1):
                self.feature("1.1 call without parentheses")
                return f"assert {b}" if b.startswith("(") else f"assert ({b})"
            return f"assert ({b})"
        if what == "grant":
            return "grant ()"
        if what == "deny_if":
            b = self.bool_expr(c, 2, False if self.chance(strength) else None)
            if top:
                self.facts.append(Fact(s, f"(!{b})"))
            return f"deny ({b})"
        if what == "deny":
            return "deny ()"
        if what == "enter":
            f = self.pick(self.flows)
            return f"{f.name}.enter {{sid : {self.sid_for(s, f.name)}, state : \"{self.pick(f.states)}\"}}"
        if what == "allow":
            f = self.pick(self.flows)
            states = [x for x in f.states if self.chance(0.5)] or [f.states[0]]
            sid = self.sid_for(s, f.name)
            if top:
                cond = " || ".join(f'({f.name}.query {{sid : {sid}}} == "{x}")' for x in states)
                self.facts.append(Fact(s, f"({cond})"))
            return f"{f.name}.allow {{sid : {sid}, states : [{', '.join(chr(34) + x + chr(34) for x in states)}]}}"
        if what == "flow_init_fini":
            f = self.pick(self.flows)
            return f"{f.name}.{self.pick(['init', 'fini'])} {{sid : {self.sid_for(s, f.name)}}}"
        if what in ("add", "remove"):
            h = self.pick(self.hashsets)
            return f"{h.name}.{what} {{sid : {self.sid_for(s, h.name)}, entry : {self.entry(c, h)}}}"
        if what == "set":
            m = self.pick(self.maps)
            key = self.pick(m.keys)[0]
            if c.paths and c.paths["int"] and self.chance(0.7):
                value = self.pick(c.paths["int"])[0]
            else:
                value = self.int_expr(c, 1)
            return f"{m.name}.set {{sid : {self.sid_for(s, m.name)}, key : \"{key}\", value : {value}}}"
        if what in ("commit", "rollback"):
            m = self.pick(self.maps)
            return f"{m.name}.{what} {{sid : {self.sid_for(s, m.name)}}}"
        if what == "mic":
            op = self.pick(["call", "invoke", "read", "write"])
            self.feature(f"Mic {op}")
            sids = self.good_sids(s, self.mic.name) if self.chance(0.9) else []
            sids = sids or self.sids(s)
            return f"{self.mic.name}.{op} {{source : {self.pick(sids)}, target : {self.pick(sids)}}}"
        if what == "upgrade":
            sids = self.sids(s)
            return (f"{self.mic.name}.upgrade {{source : {self.pick(sids)}, target : {self.pick(sids)}, "
                    f"container : (), driver : {self.pick(sids)}, level : {self.mic.level(self.rng)}}}")
        return f"set_level ({self.rng.randint(0, 3)})"

    def choice(self, c: _Ctx, depth: int, indent: str) -> list[str]:
        opts = [("int", 3), ("bool", 1)]
        if self.flows:
            opts.append(("flow", 3 if any(self.good_sids(c.scope, f.name) for f in self.flows) else 0.2))
        if c.paths and c.paths["text"]:
            opts += [("select", 2.5), ("text", 1)]
        if self.mic and not self.mic.categories:
            opts.append(("mic", 1.5 if self.good_sids(c.scope, self.mic.name) else 0.2))
        what = _weighted(self.rng, opts)
        self.feature(f"choice {what}")
        if what == "int":
            c.typed.clear()
            head = self.int_expr(c, 2, var=True)
            near = c.typed[-1] if c.typed else None
            cases = []
            for _ in range(self.rng.randint(1, 3)):
                if near is not None and self.chance(0.6):
                    v = self.pick([near.lo, near.hi, near.lo + 1, 0, 1, 2, 3, 5])
                    v = min(max(v, near.lo), near.hi)
                else:
                    v = self.pick([0, 1, 2, 3, -1, 7, 255])
                if v not in cases:
                    cases.append(v)
            labels = [str(v) if v >= 0 else f"-{-v}" for v in cases]
            self.ints.update(cases)
        elif what == "bool":
            head = self.bool_expr(c, 2)
            labels = self.rng.sample(["true", "false"], self.rng.randint(1, 2))
        elif what == "flow":
            f = self.pick([f for f in self.flows if self.good_sids(c.scope, f.name)] or self.flows)
            head = f"{f.name}.query {{sid : {self.sid_for(c.scope, f.name)}}}"
            labels = [f'"{s}"' for s in self.rng.sample(f.states, self.rng.randint(1, len(f.states)))]
        elif what == "select":
            head = f"re.select {{text : {self.text_expr(c)}}}"
            labels = [f'"{self.regex()}"' for _ in range(self.rng.randint(1, 3))]
            labels = list(dict.fromkeys(labels))
            self.feature("Regex select")
        elif what == "text":
            head = self.text_expr(c, query=False)     # a Flow query would need state labels
            labels = list(dict.fromkeys(self.lit_text() for _ in range(self.rng.randint(1, 3))))
        else:
            head = f"{self.mic.name}.query_level {{source : {self.sid_for(c.scope, self.mic.name)}}}"
            labels = [f'"{d}"' for d in self.rng.sample(self.mic.degrees, self.rng.randint(1, len(self.mic.degrees)))]
        if self.chance(0.8):
            labels.append("_")
        if self.chance(0.3) and not head.startswith("("):
            line = f"{indent}choice {head} {{" if head.startswith("message.") and "[" not in head else \
                f"{indent}choice ({head}) {{"
        else:
            line = f"{indent}choice ({head}) {{"
        out = [line]
        for label in labels:
            body = self.stmts(c, depth + 1, indent + "        ", top=False, most=2)
            out.append(f"{indent}    {label} : {{")
            out += body
            out.append(f"{indent}    }}")
        out.append(f"{indent}}}")
        return out

    def stmts(self, c: _Ctx, depth: int, indent: str, top: bool, most: int = 3) -> list[str]:
        out: list[str] = []
        for _ in range(self.rng.randint(1, most)):
            r = self.rng.random()
            if depth < 2 and r < 0.15:
                out += self.choice(c, depth, indent)
            elif depth < 3 and r < 0.27:
                out += self.match(c, depth, indent, top)
            else:
                out.append(indent + self.rule(c, top))
        return out

    def refinements(self, scope: Scope) -> list[tuple[str, str]]:
        """(selector, value) pairs that narrow a scope towards one of its targets."""
        ts = self.targets(scope)
        if not ts:
            return []
        s, ep, iface, m = self.pick(ts)
        out = []
        server_key = "dst" if scope.kind == "request" else "src"
        if getattr(scope, server_key) is None:
            out.append((server_key, s))
        if scope.kind in ("response", "error") and scope.dst is None:
            out.append(("dst", self.pick(self.clients())))
        if scope.kind == "request" and scope.src is None:
            out.append(("src", self.pick(self.clients())))
        if scope.kind != "security" and scope.endpoint is None and scope.interface is None:
            out.append(("endpoint", ep) if self.chance(0.7) else ("interface", iface.name))
        elif scope.kind == "security" and scope.interface is None and self.chance(0.3):
            out.append(("interface", iface.name))
        if scope.method is None:
            out.append(("method", m.name))
        return out

    def match(self, c: _Ctx, depth: int, indent: str, top: bool = True) -> list[str]:
        """A nested section; its rules are unconditional facts only if the section itself is (``top``)."""
        options = self.refinements(c.scope)
        if not options:
            return [indent + self.rule(c, False)]
        chosen = [o for o in options if self.chance(0.5)] or [self.pick(options)]
        scope = c.scope.with_(**dict(chosen))
        if not self.targets(scope):
            return [indent + "grant ()"]
        self.feature("nested match")
        sels = " ".join(f"{k}={v}" for k, v in chosen)
        inner = _Ctx(scope, self.message_paths(p) if (p := self.pinned(scope)) is not None else None)
        return [f"{indent}match {sels} {{"] + self.stmts(inner, depth + 1, indent + "    ", top=top) + [f"{indent}}}"]

    def binding(self) -> list[str]:
        kinds = [("request", 5), ("response", 1.5), ("error", 1.2)]
        if any(k.security for k in self.classes):
            kinds.append(("security", 1.2))
        kind = _weighted(self.rng, kinds)
        addrs = self.addresses(kind)
        if not addrs:
            kind, addrs = "request", self.addresses("request")
        s, ep, iface, m = self.pick(addrs)
        full: list[tuple[str, str]] = []
        if kind == "security":
            full.append(("src", s))
            if self.chance(0.3):
                full.append(("interface", iface.name))
            full.append(("method", m.name))
        else:
            client = self.pick(self.clients())
            if kind == "request":
                full += [("src", client), ("dst", s)]
            else:
                full += [("src", s), ("dst", client)]
            full.append(("endpoint", ep) if self.chance(0.75) else ("interface", iface.name))
            full.append(("method", m.name))
        self.bound_scopes.append(Scope(kind, **dict(full)))
        keep = [sel for sel in full if self.chance(0.92 if sel[0] == "method" else 0.8)]
        head = [sel for sel in keep if self.chance(0.6)]
        scope = Scope(kind, **dict(head))
        self.feature(f"binding {kind}")
        params = self.pinned(scope)
        c = _Ctx(scope, self.message_paths(params) if params is not None else None)
        sep = ", " if self.chance(0.5) else " "
        sels = sep.join(f"{k}={v}" for k, v in head)
        lines = [f"{kind} {sels} {{" if sels else f"{kind} {{"]
        rest = [sel for sel in keep if sel not in head]
        if rest and self.chance(0.8):
            # the remaining selectors in one or two nested sections
            cut = self.rng.randint(1, len(rest))
            lines += self.section(c, rest[:cut], rest[cut:], "    ")
            if self.chance(0.4):
                lines += self.stmts(c, 1, "    ", top=True, most=2)
        else:
            lines += self.stmts(c, 0, "    ", top=True)
        lines.append("}")
        return lines

    def section(self, c: _Ctx, sels: list, later: list, indent: str) -> list[str]:
        scope = c.scope.with_(**dict(sels))
        if not self.targets(scope):
            return [indent + "grant ()"]
        params = self.pinned(scope)
        inner = _Ctx(scope, self.message_paths(params) if params is not None else None)
        lines = [f"{indent}match {' '.join(f'{k}={v}' for k, v in sels)} {{"]
        if later:
            lines += self.section(inner, later, [], indent + "    ")
            if self.chance(0.5):
                lines += self.stmts(inner, 2, indent + "    ", top=True, most=1)
        else:
            lines += self.stmts(inner, 1, indent + "    ", top=True)
        lines.append(f"{indent}}}")
        self.feature("nested match")
        return lines

    def policy(self) -> str:
        uses = ["use nk.base._", "use nk.basic._", "use nk.regex._"]
        if self.flows:
            uses.append("use nk.flow._")
        if self.hashsets:
            uses.append("use nk.hashmap._")
        if self.maps:
            uses.append("use nk.staticmap._")
        if self.mic:
            uses.append("use nk.mic._")
        lines = [f"/* Generated by ksm.fuzz, seed {self.seed}. */", ""] + uses + [
            "", "use EDL kl.core.Core", "use EDL Einit"] + [f"use EDL {k.name}" for k in self.classes] + [
            "", "execute: kl.core.Execute", ""]
        lines += self.object_lines + [""]
        lines += self.execute_bindings() + [""]
        if self.chance(0.7):
            lines += ["request dst=kl.core.Core { grant () }", "response src=kl.core.Core { grant () }", ""]
        if self.chance(0.2):
            lines += ["audit profile trace = { 0 : { base : { kss : [\"denied\"] } } }", "audit default = trace 0", ""]
            self.feature("audit profile")
        for _ in range(self.rng.randint(4, 10)):
            lines += self.binding() + [""]
        return "\n".join(lines) + "\n"

    # ================================================================ properties
    def pattern(self, scope: Scope, tasks: bool) -> str:
        """A property pattern for a scope; with ``tasks``, classes of one instance become tasks."""
        parts = [scope.kind]
        for key in ("src", "dst"):
            v = getattr(scope, key)
            if v is None:
                continue
            if tasks and v not in (EINIT,) and self.chance(0.5):
                v = self.pick(self.tasks_of(v))
            parts.append(f"{key}={v}")
        for key in ("endpoint", "interface", "method"):
            v = getattr(scope, key)
            if v is not None:
                parts.append(f"{key}={v}")
        return " ".join(parts)

    def random_scope(self) -> Scope:
        if self.bound_scopes and self.chance(0.75):       # mostly events some binding is about
            scope = self.pick(self.bound_scopes)
            if scope.interface is not None and self.chance(0.5):
                ts = self.targets(scope)
                if ts:
                    scope = scope.with_(interface=None, endpoint=self.pick(ts)[1])
            return scope
        kinds = [("request", 5), ("response", 1.5), ("error", 1.2)]
        if any(k.security for k in self.classes):
            kinds.append(("security", 1.2))
        kind = _weighted(self.rng, kinds)
        addrs = self.addresses(kind)
        if not addrs:
            kind, addrs = "request", self.addresses("request")
        s, ep, _iface, m = self.pick(addrs)
        if kind == "security":
            return Scope(kind, src=s, method=m.name)
        client = self.pick([k.name for k in self.classes])
        if kind == "request":
            return Scope(kind, src=client, dst=s, endpoint=ep, method=m.name)
        return Scope(kind, src=s, dst=client, endpoint=ep, method=m.name)

    def state_cond(self) -> str | None:
        """A condition over the objects' state of processes with a context."""
        opts = []
        for f in self.flows:
            opts.append(("flow", f))
        for h in self.hashsets:
            opts.append(("set", h))
        for m in self.maps:
            opts.append(("map", m))
        if self.mic and not self.mic.categories:
            opts.append(("mic", self.mic))
        if not opts:
            return None
        what, obj = self.pick(opts)
        classes = self.ctx_classes[obj.name] if self.chance(0.9) else [k.name for k in self.classes]
        task = self.pick([t for c in classes for t in self.tasks_of(c)])
        if what == "flow":
            return f'({obj.name}[{task}] {self.pick(["==", "!="])} "{self.pick(obj.states)}")'
        if what == "set":
            v = self.rng.randint(max(obj.entry.lo, -2), min(obj.entry.hi, 12))
            self.ints.add(v)
            return f"{obj.name}.contains {{sid : sid({task}), entry : {v if v >= 0 else f'(-{-v})'}}}"
        if what == "map":
            key = self.pick(obj.keys)[0]
            v = self.pick([d for _, d in obj.keys] + [0, 1, 100, 255, 65535, 4294967295])
            self.ints.add(v)
            fn = "get" if self.chance(0.8) else "get_uncommited"
            return f"({obj.name}.{fn} {{sid : sid({task}), key : \"{key}\"}} {self.pick(['==', '<=', '>', '!='])} {v})"
        return f'({obj.name}.query_level {{source : sid({task})}} == "{self.pick(obj.degrees)}")'

    def properties(self) -> str:
        lines = [f"# Generated by ksm.fuzz, seed {self.seed}.", ""]
        n = 0

        def add(body: str) -> None:
            nonlocal n
            lines.append(f"property p{n}:")
            lines.append(f"    {body}")
            n += 1

        # rules of the policy, mirrored: provable unless earlier rules of the event change what they read
        for fact in self.rng.sample(self.facts, min(len(self.facts), self.rng.randint(1, 4))):
            if not self.targets(fact.scope):
                continue
            # granted events of the scope satisfy fact.cond: never one where it fails
            where = f"!({fact.cond})"
            if self.chance(0.25):
                where = fact.cond         # the opposite: usually refuted
            elif self.chance(0.2):        # a variant: provable or not, the prover has to work it out
                extra = self.int_expr(_Ctx(fact.scope, self._paths(fact.scope)), 1)
                where = f"(!({fact.cond}) || ({extra} == 0))"
            add(f"never {self.pattern(fact.scope, tasks=False)} where {where}")
            self.feature("property mirrored rule")
        # random event properties
        for _ in range(self.rng.randint(2, 5)):
            scope = self.random_scope()
            if self.chance(0.2):
                scope = scope.with_(method=None, endpoint=None)
            c = _Ctx(scope, self._paths(scope))
            form = "never" if self.chance(0.75) else "always"
            where = ""
            if self.chance(0.75):
                cond = self.bool_expr(c, 2)
                if self.chance(0.3) and (sc := self.state_cond()):
                    cond = f"({cond} && {sc})"
                where = f" where {cond}"
            add(f"{form} {self.pattern(scope, tasks=True)}{where}")
            self.feature(f"property {form} event")
        if self.chance(0.3):
            k = self.pick(self.classes)
            src = self.pick([EINIT] + [i.task for i in self.instances])
            add(f"{self.pick(['never', 'always'])} execute src={src} dst={k.name}")
            self.feature("property execute")
        for _ in range(self.rng.randint(1, 4)):
            cond = self.state_cond()
            if cond is None:
                break
            if self.chance(0.3) and (other := self.state_cond()):
                cond = f"({cond} {self.pick(['&&', '||', '==>'])} {other})"
            form = self.pick(["never state", "reachable state", "invariant state"])
            add(f"{form} {cond}")
            self.feature(f"property {form}")
        return "\n".join(lines) + "\n"

    def _paths(self, scope: Scope):
        params = self.pinned(scope)
        return self.message_paths(params) if params is not None else None

    # ================================================================ all of it
    def run(self) -> dict:
        files: dict[str, str] = {}
        self.shape(files)
        self.object_lines = self.objects()
        files["einit/src/security.psl"] = self.policy()
        files["einit/src/fuzz.props"] = self.properties()
        return files


@dataclass(frozen=True)
class _Alias:
    name: str
    target: object

    @property
    def ref(self) -> str:
        return self.name


_SID = IntT("sid", 0, 12)       # SIDs of a generated solution are small


def _plain(t):
    return t.target if isinstance(t, _Alias) else t


class _Ctx:
    """What an expression may read: the scope and, when one method is selected, its paths."""

    def __init__(self, scope: Scope, paths: dict | None):
        self.scope = scope
        self.paths = paths
        self.typed: list = []         # types of fields used so far (literals near their bounds)


def _weighted(rng: random.Random, options: list[tuple]) -> str:
    total = sum(w for _, w in options)
    x = rng.random() * total
    for name, w in options:
        x -= w
        if x < 0:
            return name
    return options[-1][0]


def generate_solution(root: Path | str, seed: int) -> GeneratedSolution:
    """Write the solution of ``seed`` under ``root`` (created); same seed, same files."""
    root = Path(root)
    gen = _Gen(seed)
    files = gen.run()
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return GeneratedSolution(seed, root, files, sorted(gen.ints), sorted(gen.texts), set(gen.features))
