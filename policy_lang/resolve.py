"""Resolution: syntax trees of a whole solution → one immutable :class:`Solution`.

This is where names meet meanings: ``use`` includes are followed (with cycle checks),
process classes are built from EDL/CDL with their endpoints flattened and numbered,
interfaces come from the IDL resolver, init.yaml becomes instances and channels, and
every binding's selectors, calls and ``message`` paths are checked against them.

The resolver is tolerant by design: a problem becomes a diagnostic and resolution
goes on, so one run reports everything; the returned solution is as complete as the
errors allow.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from . import model_library as ml
from .diagnostics import Diagnostics, Severity, Span, define_code
from .perf import gc_paused
from .regex_dialect import pattern_problem
from .loader import (
    INC_CYCLE, INC_NO_INIT, INC_OPAQUE_FRAGMENT, INC_UNKNOWN_NK, LoadOptions, Workspace,
    names_a_file, locate_init, locate_policy, present,
)
from .outside import Outside
from .kernel import KRN_TRUST, KRN_UNKNOWN, KRN_UNTYPED, builtin_kernel_class, builtin_kernel_interfaces, is_builtin_kernel
from .sdk import EINIT, builtin_interfaces
from .sdk_catalogue import catalogue as sdk_catalogue, is_sdk_name
from .solution import (
    ArmDef, AuditProfileDef, BindingDef, CallDef, Channel, ChoiceDef, Endpoint, Instance,
    MatchDef, PolicyObjectDef, ProcessClass, SelectorSet, Solution, SourceFileInfo, StmtDef,
    Target, TestBlockDef, TestCaseDef, fast_init, new_target, TestSequenceDef, EINIT_CLASS, EXECUTE_INTERFACE,
    KERNEL_CLASS, Suppression, Trust, TrustMark, message_params,
)
from .source import SourceText
from .suppressions import scan as scan_suppressions
from .syntax import ast
from .types import (
    ArrayType, HandleType, IdlResolver, IdlType, InterfaceDef, SequenceType, StructType,
    UnionType, type_str,
)

# --------------------------------------------------------------------------- codes
CMP_OPAQUE_CLASS = define_code(
    "CMP002", "warning", "process class has no description here; loaded as opaque",
    "SDK programs and EDLs generated at build time are fine; pass --sdk DIR or -I DIR to check its endpoints",
)
CMP_UNKNOWN_COMPONENT = define_code(
    "CMP003", "error", "component not found",
    "check the component name, or add the folder holding its .cdl with -I DIR",
)
CMP_UNKNOWN_INTERFACE = define_code(
    "CMP004", "error", "interface not found",
    "check the interface (IDL package) name, or add the folder holding its .idl with -I DIR",
)
CMP_COMPONENT_CYCLE = define_code(
    "CMP005", "error", "component contains itself",
    "a component cannot be nested inside itself, directly or through others",
)
CMP_NO_INTERFACE = define_code(
    "CMP007", "error", "IDL package defines no interface",
    "an endpoint or security interface must name a package with an `interface { }` block",
)
PSL_UNDECLARED_CLASS = define_code(
    "PSL001", "error", "process class is not declared in the policy",
    "add `use EDL <class>` to the policy",
)
PSL_UNKNOWN_ENDPOINT = define_code(
    "PSL002", "error", "endpoint does not exist",
    "use the qualified endpoint name: component instances from the EDL down, then the endpoint (e.g. comp.sub.ep)",
)
PSL_UNKNOWN_METHOD = define_code(
    "PSL003", "error", "method does not exist in the selected interfaces",
    "check the method name in the IDL of the selected endpoint or interface",
)
PSL_BAD_SELECTOR = define_code(
    "PSL004", "error", "selector not valid for this event",
    "execute takes src/dst (method=main), security takes src/method, request/response/error take all selectors",
)
PSL_IMPOSSIBLE_SECTION = define_code(
    "PSL005", "warning", "section can never match",
    "a nested match repeats a selector of its enclosing binding with a different value",
)
PSL_UNKNOWN_OBJECT = define_code(
    "PSL006", "error", "unknown policy object",
    "declare it with `policy object NAME : Model { ... }` or include the nk file that creates it",
)
PSL_UNKNOWN_MODEL_METHOD = define_code(
    "PSL007", "error", "model has no such method",
    "see docs/language-support.md for the methods of each security model",
)
PSL_MISSING_INCLUDE = define_code(
    "PSL008", "error", "security model not included",
    "add the `use nk.<file>._` line that provides the model",
)
PSL_BAD_ARGUMENT = define_code(
    "PSL009", "error", "argument does not fit the method",
    "see the method's signature in docs/language-support.md",
)
PSL_UNKNOWN_MESSAGE_FIELD = define_code(
    "PSL010", "error", "message has no such field for this event",
    "request/security messages hold in-parameters, response holds out-parameters, error holds error-parameters",
)
PSL_UNKNOWN_NAME = define_code(
    "PSL011", "error", "name not defined here",
    "binding bodies can use message.<param>, src_sid, dst_sid and model calls",
)
PSL_EXPR_AS_RULE = define_code(
    "PSL012", "warning", "expression used where a rule is expected",
    "wrap it: assert (<expression>)",
)
PSL_RULE_IN_EXPR = define_code(
    "PSL013", "error", "rule used inside an expression",
    "rules (grant, deny, enter, ...) vote on the event; only expressions return values",
)
PSL_DUPLICATE_OBJECT = define_code(
    "PSL014", "error", "policy object declared twice",
    "give each object a unique name",
)
PSL_UNKNOWN_MODEL = define_code(
    "PSL015", "error", "unknown security model",
    "models: Base, Pred, Bool, Math, Struct, Regex, HashSet, StaticMap, Flow, Mic",
)
PSL_BAD_CONFIG = define_code(
    "PSL016", "error", "object configuration does not fit its model",
    "see the model's parameters in docs/language-support.md",
)
PSL_NOT_CONSTANT = define_code(
    "PSL017", "error", "value must be a constant",
    "configuration, audit profiles and PAL messages take literals, lists and records only",
)
PSL_UNKNOWN_PROFILE = define_code(
    "PSL018", "error", "unknown audit profile",
    "declare it with `audit profile NAME = { ... }` (the profile `empty` is built in)",
)
PSL_BAD_AUDIT = define_code(
    "PSL019", "error", "audit profile entry does not fit",
    "levels are numbers; each names objects with { kss : [\"granted\", \"denied\"] } and model keys (Flow omit, Regex emit)",
)
PSL_EXECUTE_DECL = define_code(
    "PSL020", "warning", "execute interface declaration missing or repeated",
    "declare `execute: kl.core.Execute` exactly once",
)
PSL_BAD_CASE = define_code(
    "PSL021", "error", "choice case cannot be selected",
    "Flow query cases are states of the object; Regex select cases are patterns",
)
PSL_UNKNOWN_TEST_VAR = define_code(
    "PSL022", "error", "PAL test names an undefined process variable",
    "bind it first: `v <- execute dst=Class` in setup or earlier in the sequence",
)
PSL_BASIC_NOT_INCLUDED = define_code(
    "PSL023", "warning", "operator's model file not included",
    "operators come from the auxiliary models: add `use nk.basic._`",
)
SOL_UNKNOWN_TARGET = define_code(
    "SOL001", "error", "connection target is not a task",
    "`target` names the server's task (its `task`, or its `name` when `task` is omitted)",
)
SOL_SERVERLESS_CHANNEL = define_code(
    "SOL002", "warning", "channel to a process class without endpoints",
    "the target class serves no endpoint, so no request on this channel can be meaningful",
)
SOL_BAD_REGEX = define_code(
    "SOL003", "warning", "regular expression does not compile",
    "the pattern is outside the dialect the runtime accepts (docs/semantics.md, Regex); every rule using it denies",
)

# The elements resolution makes by the ten thousand, made without the frozen __init__'s cost.
_BindingDef = fast_init(BindingDef)
_MatchDef = fast_init(MatchDef)
_ArmDef = fast_init(ArmDef)
_ChoiceDef = fast_init(ChoiceDef)
_CallDef = fast_init(CallDef)

# The init.yaml placeholder through which the SDK build adds the system programs' entries.
EXTERNAL_ENTITIES = "INIT_EXTERNAL_ENTITIES"

# SDK fragments this toolkit implements itself (as it does the nk model files).
BUILTIN_FRAGMENTS = {"nonsecurity": Path(__file__).resolve().parent / "data" / "fragments" / "nonsecurity.psl"}

# Template warnings meaning "a placeholder had no value": the policy may then lack
# `use EDL` lines that the build would have inserted.
_UNDEFINED_PLACEHOLDER_CODES = frozenset({"TPL001", "TPL002", "TPL006", "TPL007"})

# Which selectors each event kind takes (security events have no destination).
_ALL_SELECTORS = ("src", "dst", "component", "endpoint", "interface", "method")
_SELECTORS_OF_EVENT = {"execute": ("src", "dst", "method"), "security": ("src", "method", "interface")}


@dataclass
class _Ctx:
    """What a body is checked against: the event kind, selectors and their targets."""

    event: str
    sel: SelectorSet
    targets: tuple[Target, ...]
    opaque: bool                # a selected class is opaque: message paths cannot be checked
    source: SourceText


@dataclass
class _PslUnit:
    path: Path
    file: ast.PslFile


class Resolver:
    def __init__(self, ws: Workspace, diags: Diagnostics):
        self.ws = ws
        self.diags = diags
        self.units: list[_PslUnit] = []
        self.nk_includes: set[str] = set()
        self.models: set[str] = set()
        self.classes: dict[str, ProcessClass] = {}
        self.interfaces: dict[str, InterfaceDef] = dict(builtin_interfaces())
        self.declared_classes: set[str] = {KERNEL_CLASS, EINIT_CLASS}
        self.used_edl: list[str] = []
        self.edl_uses: dict[str, Span] = {}
        self.objects: dict[str, PolicyObjectDef] = {}
        self.profiles: dict[str, AuditProfileDef] = {}
        self.outside = Outside(diags)
        # Plain functions, not bound methods of the resolver: the resolver holds the IDL
        # resolver, and a reference back would make a cycle that keeps every parsed file
        # alive until the cyclic collector runs (tests/test_load_fast_paths.py).
        self.idl = IdlResolver(ws.find_idl, diags, functools.partial(_outside_package, self.outside))
        self._component_cache: dict[str, ast.ComponentFile | None] = {}
        self.templated_gaps = False           # a placeholder had no value: `use EDL` lines may be missing
        self.fragment_gaps = False            # an included fragment is not here: `use EDL` lines may be missing
        self.build_adds_entities = False      # init.yaml leaves @INIT_EXTERNAL_ENTITIES@ to the build
        self._warned_undeclared: set[str] = set()
        self._warned_basic = False
        self._by_component: tuple[int, dict[str, list[tuple[str, str]]]] | None = None
        self._params: dict[tuple[int, str], tuple[object, dict]] = {}

    # ------------------------------------------------------------------ helpers
    def _stand_in(self, name: str) -> bool:
        """``name`` holds a stand-in of a template placeholder without a value (already reported)."""
        stand_ins = self.ws.stand_ins
        return bool(stand_ins) and any(part in stand_ins for part in name.split("."))

    def interface(self, name: str, at: Span | None) -> InterfaceDef | None:
        if name in self.interfaces:
            return self.interfaces[name]
        pkg = self.idl.package(name, at)
        if pkg is None:
            stand_in = self._stand_in(name)
            if is_sdk_name(name) or stand_in:
                if not stand_in:
                    self.outside.report(name, "interface", at)
                iface = self.interfaces[name] = InterfaceDef(name=name, methods=(), span=at, opaque=True)
                return iface
            self.diags.add(CMP_UNKNOWN_INTERFACE, f"interface {name} not found", at)
            return None
        if pkg.interface is None:
            self.diags.add(CMP_NO_INTERFACE, f"package {name} has no interface block", at)
            return None
        self.interfaces[name] = pkg.interface
        return pkg.interface

    # ------------------------------------------------------------------ PSL files
    def collect(self, top: Path) -> None:
        self._collect(top.resolve(), None, [])

    def _collect(self, path: Path, at: Span | None, stack: list[Path]) -> None:
        if path in stack:
            chain = " -> ".join(self.ws.shown(p) for p in stack[stack.index(path):] + [path])
            self.diags.add(INC_CYCLE, f"include cycle: {chain}", at)
            return
        if any(u.path == path for u in self.units):
            return  # a repeated include is idempotent
        f = self.ws.psl(path, at)
        if f is None:
            return
        self.units.append(_PslUnit(path, f))
        for decl in f.decls:
            if isinstance(decl, ast.UsePsl):
                dotted = decl.path.text
                where = f.source.span(decl.pos)
                if dotted == "nk" or dotted.startswith("nk."):
                    models = ml.NK_INCLUDES.get(dotted)
                    if models is None:
                        sdk_hit = self._sdk_psl(dotted)
                        if sdk_hit is not None:
                            self._collect(sdk_hit, where, stack + [path])
                        else:
                            self.diags.add(INC_UNKNOWN_NK, f"`use {dotted}._` is not a model file this toolkit knows", where)
                        continue
                    self.nk_includes.add(dotted)
                    self.models.update(models)
                    continue
                target = self.ws.resolve_use(dotted, where, report_missing=False)
                if target is not None:
                    self._collect(target, where, stack + [path])
                else:
                    self._missing_fragment(dotted, where)

    def _missing_fragment(self, dotted: str, at: Span) -> None:
        """``use <dotted>._`` found no file: the solution's own mistake, or a piece from outside.

        A fragment the SDK ships (``use kl.core.DCM._``, ``use nonsecurity._``) or one in
        no folder of the solution (the build generates it) loads as opaque; what it would
        declare is then taken as given.  A path into the solution's own folders (its
        first part is a folder or file there) is the user's: a missing file is an error.
        """
        first = dotted.split(".")[0]
        builtin = BUILTIN_FRAGMENTS.get(dotted)
        if builtin is not None:
            self.outside.report(dotted, "fragment-builtin", at, where=f"`use {dotted}._`")
            self._collect(builtin, at, [])
            return
        if is_sdk_name(dotted) or first in sdk_catalogue().fragment_roots:
            self.outside.report(dotted, "fragment", at, where=f"`use {dotted}._`")
        elif self._stand_in(dotted):
            pass  # the template placeholder was reported
        elif self._own_fragment(dotted):
            self.ws.resolve_use(dotted, at)  # reports INC005 with the folders searched
            return
        else:
            self.diags.add(INC_OPAQUE_FRAGMENT, f"`use {dotted}._`: no {dotted.replace('.', '/')}.psl in the solution; "
                                                "treated as an opaque fragment", at)
        self.fragment_gaps = True

    def _own_fragment(self, dotted: str) -> bool:
        """Whether ``use <dotted>._`` points into the solution's own files: its first part is a
        folder or file under an include root, or (a one-part name) it is close to a .psl file
        next to the policy (a typo, not a missing piece)."""
        first = dotted.split(".")[0]
        if any(present(root / first) or present(root / (first + ".psl")) or present(root / (first + ".psl.in"))
               for root in self.ws.include_roots()):
            return True
        if "." in dotted:
            return False
        names = [p.name.split(".")[0] for p in self.ws.policy_dir.glob("*.psl*")]
        return _closest(first, names) is not None

    def _sdk_psl(self, dotted: str) -> Path | None:
        rel = Path(*dotted.split("."))
        for root in self.ws.options.sdk_dirs:
            cand = root / (str(rel) + ".psl")
            if names_a_file(cand):
                return cand.resolve()
        return None

    def decls(self) -> Iterable[tuple[SourceText, object]]:
        for unit in self.units:
            for d in unit.file.decls:
                yield unit.file.source, d

    def model_available(self, model: str) -> bool:
        if model in self.models:
            return True
        # Kaspersky's own examples call Base rules with only nk.basic included, so
        # one of the two files pulls in the other: accept either for both.
        if model == "Base" and "nk.basic" in self.nk_includes:
            return True
        if model in ("Pred", "Bool", "Math", "Struct") and "nk.base" in self.nk_includes:
            return True
        return False

    # ------------------------------------------------------------------ classes
    def load_classes(self) -> None:
        self.classes[EINIT.name] = EINIT
        self.load_kernel()
        for src, d in self.decls():
            if isinstance(d, ast.UseEdl):
                name = d.cls.text
                self.declared_classes.add(name)
                self.used_edl.append(name)
                self.edl_uses.setdefault(name, src.span(d.pos, d.cls.pos + len(name)))
                self.ensure_class(name, name, src.span(d.cls.pos))
            elif isinstance(d, ast.TaskClassDecl):
                name = d.cls.text
                self.declared_classes.add(name)
                self.used_edl.append(name)
                self.edl_uses.setdefault(name, src.span(d.pos, d.edl.pos + len(d.edl.text)))
                self.ensure_class(name, d.edl.text, src.span(d.edl.pos))

    def load_kernel(self) -> None:
        """``kl.core.Core``: the SDK's own ``Core.edl`` when a folder holds it, else the built-in one.

        The SDK's description is the real one (typed, numbered as the module numbers
        it), so it wins; without it the documented endpoints of :mod:`policy_lang.kernel`
        stand in, and their interfaces answer ``interface=kl.core.Sync`` selectors.
        """
        if self.ws.find(KERNEL_CLASS, "class") is not None:
            self.ensure_class(KERNEL_CLASS, KERNEL_CLASS, None)
            return
        self.classes[KERNEL_CLASS] = builtin_kernel_class()
        for name, iface in builtin_kernel_interfaces().items():
            self.interfaces.setdefault(name, iface)

    def ensure_class(self, name: str, edl_name: str, at: Span | None, quiet: bool = False) -> ProcessClass:
        existing = self.classes.get(name)
        if existing is not None:
            return existing
        edl = self.ws.find_class(edl_name, at)
        if edl is None:
            if self._stand_in(edl_name):
                pass  # a placeholder without a value named it; that was reported
            elif is_sdk_name(edl_name):
                self.outside.report(edl_name, "program", at)
            elif not quiet:
                self.diags.add(
                    CMP_OPAQUE_CLASS,
                    f"no EDL for {edl_name} in the solution or include folders; treating it as an opaque class",
                    at,
                )
            cls = ProcessClass(name, (), None, at, form="opaque", opaque=True, edl_name=edl_name)
            self.classes[name] = cls
            return cls
        endpoints: list[Endpoint] = []
        seen: dict[str, Span | None] = {}

        def add(qname: str, iface_name: ast.Name, src: SourceText, components: tuple[str, ...] = ()) -> None:
            at2 = src.span(iface_name.pos)
            if qname in seen:
                return  # the parser already reported the duplicate name (SYN206)
            seen[qname] = at2
            iface = self.interface(iface_name.text, at2)
            if iface is None:
                # Keep the slot so that later endpoints keep their RIIDs; its methods are unknown.
                iface = InterfaceDef(name=iface_name.text, methods=(), span=at2, opaque=True)
            endpoints.append(Endpoint(qname, iface, len(endpoints), at2, components))

        for ep in edl.endpoints:
            add(ep.name.text, ep.interface, edl.source)
        security = None
        if edl.security is not None:
            security = self.interface(edl.security.text, edl.source.span(edl.security.pos))
        parts: list[str] = []
        for inst in edl.components:
            sec = self._flatten(inst, inst.name.text, edl.source, add, [edl_name], parts)
            security = security or sec
        cls = ProcessClass(
            name, tuple(endpoints), security, edl.source.span(edl.name.pos),
            form=edl.form, opaque=False, edl_name=edl.name.text, opaque_parts=tuple(parts),
        )
        self.classes[name] = cls
        return cls

    def _flatten(self, inst: ast.ComponentInstanceDecl, prefix: str, src: SourceText, add, stack: list[str],
                 parts: list[str]) -> InterfaceDef | None:
        """Add the endpoints of component instance ``prefix``; a component not found adds ``prefix`` to ``parts``."""
        comp_name = inst.component.text
        at = src.span(inst.component.pos)
        if comp_name in stack:
            self.diags.add(CMP_COMPONENT_CYCLE, f"component {comp_name} contains itself: " + " -> ".join(stack + [comp_name]), at)
            return None
        if comp_name not in self._component_cache:
            self._component_cache[comp_name] = self.ws.find_component(comp_name, at)
        comp = self._component_cache[comp_name]
        if comp is None:
            if is_sdk_name(comp_name):
                self.outside.report(comp_name, "component", at, where=f"embedded as {prefix}")
            elif not self._stand_in(comp_name):
                self.diags.add(CMP_UNKNOWN_COMPONENT, f"component {comp_name} not found", at)
            parts.append(prefix)  # its endpoints are unknown: no cascade of "no such endpoint"
            return None
        chain = tuple(stack[1:]) + (comp_name,)
        for ep in comp.endpoints:
            add(f"{prefix}.{ep.name.text}", ep.interface, comp.source, chain)
        security = None
        if comp.security is not None:
            security = self.interface(comp.security.text, comp.source.span(comp.security.pos))
        for sub in comp.components:
            sec = self._flatten(sub, f"{prefix}.{sub.name.text}", comp.source, add, stack + [comp_name], parts)
            security = security or sec
        return security

    def class_ref(self, name: ast.Name, src: SourceText) -> ProcessClass | None:
        """A class named in a selector or test: must be declared with `use EDL`."""
        text = name.text
        if text in self.declared_classes:
            return self.classes.get(text)
        at = src.span(name.pos)
        if is_sdk_name(text) or self._stand_in(text):
            # An SDK program (its `use EDL` comes from `@INIT_EXTERNAL_ENTITIES@` or an SDK
            # fragment), or a name a placeholder left: reported once, where it is outside.
            self.declared_classes.add(text)
            return self.ensure_class(text, text, at, quiet=True)
        close = _closest(text, self.declared_classes)
        if self.templated_gaps or (self.fragment_gaps and close is None):
            # A template expansion (`@INIT_EXTERNAL_ENTITIES@`) or a fragment we do not
            # have may declare it: load, warn, go on.
            cls = self.ensure_class(text, text, at, quiet=True)
            if text not in self._warned_undeclared:
                self._warned_undeclared.add(text)
                by = "a template expansion" if self.templated_gaps else "an included fragment that is not here"
                self.diags.add(
                    CMP_OPAQUE_CLASS if cls.opaque else PSL_UNDECLARED_CLASS,
                    f"{text} is not declared with `use EDL` here ({by} may declare it)"
                    + ("; treating it as an opaque class" if cls.opaque else ""),
                    at,
                    severity=Severity.WARNING,
                )
            self.declared_classes.add(text)
            return cls
        hint = None
        if close:
            hint = f"did you mean {close}? Otherwise add `use EDL {text}`"
        self.diags.add(PSL_UNDECLARED_CLASS, f"process class {text} is not declared in the policy", at, hint=hint)
        return None

    # ------------------------------------------------------------------ objects
    def load_objects(self) -> None:
        for model in ml.MODELS.values():
            if self.model_available(model.name):
                for obj in model.default_objects:
                    self.objects[obj] = PolicyObjectDef(obj, model.name, None, {}, None, builtin=True)
        for src, d in self.decls():
            if not isinstance(d, ast.PolicyObject):
                continue
            name = d.name.text
            at = src.span(d.name.pos)
            if name in self.objects:
                what = "is created by `use " + ml.MODELS[self.objects[name].model].include + "._`" \
                    if self.objects[name].builtin else "is declared twice"
                self.diags.add(PSL_DUPLICATE_OBJECT, f"policy object {name} {what}", at)
                continue
            model = ml.MODELS.get(d.model.text)
            if model is None:
                close = _closest(d.model.text, ml.MODELS)
                self.diags.add(PSL_UNKNOWN_MODEL, f"unknown security model {d.model.text}", src.span(d.model.pos),
                               hint=f"did you mean {close}?" if close else None)
                continue
            if not self.model_available(model.name):
                self.diags.add(PSL_MISSING_INCLUDE, f"model {model.name} is used but `use {model.include}._` is missing",
                               src.span(d.model.pos), hint=f"add `use {model.include}._`")
            types = {t.name.text: t.type for t in d.types}
            for tp in model.type_params:
                if tp not in types:
                    self.diags.add(PSL_BAD_CONFIG, f"{model.name} object {name} needs `type {tp} = ...`", at)
            config = None
            if d.config is not None:
                config = self.const_value(d.config, src)
            elif model.config_required:
                self.diags.add(PSL_BAD_CONFIG, f"{model.name} object {name} needs `config = ...`", at)
            if config is not None:
                self.check_config(model, name, config, types, src.span(d.config.pos) if d.config is not None else at)
            self.objects[name] = PolicyObjectDef(name, model.name, config, types, at)

    def const_value(self, e: ast.Expr, src: SourceText) -> object:
        if isinstance(e, ast.Lit):
            return e.value
        if isinstance(e, ast.ListExpr):
            return [self.const_value(i, src) for i in e.items]
        if isinstance(e, ast.RecordExpr):
            out: dict = {}
            for f in e.fields:
                key = f.key.text if isinstance(f.key, ast.Name) else f.key.value
                out[key] = self.const_value(f.value, src)
            return out
        if isinstance(e, ast.UnOp) and e.op == "-" and isinstance(e.operand, ast.Lit) and isinstance(e.operand.value, int):
            return -e.operand.value
        self.diags.add(PSL_NOT_CONSTANT, "expected a literal, list or record here", src.span(e.pos))
        return None

    def check_config(self, model: ml.ModelSig, name: str, config: object, types: dict, at: Span) -> None:
        def bad(msg: str) -> None:
            self.diags.add(PSL_BAD_CONFIG, f"{model.name} object {name}: {msg}", at)

        if model.name == "Flow":
            if not isinstance(config, dict):
                return bad("config must be a record with states, initial and transitions")
            for key in ("states", "initial", "transitions"):
                if key not in config:
                    bad(f"config needs `{key}`")
            states = config.get("states")
            if not isinstance(states, list) or not all(isinstance(s, str) for s in states):
                return bad("`states` must be a list of text literals")
            if len(set(states)) != len(states):
                bad("`states` lists a state twice")
            declared = _literal_members(types.get("State"))
            if declared is not None and set(declared) != set(states):
                bad(f"`states` {sorted(states)} differs from type State {sorted(declared)}")
            initial = config.get("initial")
            if initial is not None and initial not in states:
                bad(f"initial state {initial!r} is not in `states`")
            trans = config.get("transitions")
            if trans is not None:
                if not isinstance(trans, dict):
                    return bad("`transitions` must map a state to a list of states")
                for src_state, dsts in trans.items():
                    if src_state not in states:
                        bad(f"transition from unknown state {src_state!r}")
                    if not isinstance(dsts, list) or any(d not in states for d in dsts):
                        bad(f"transitions from {src_state!r} must list known states")
        elif model.name == "HashSet":
            if not isinstance(config, dict):
                return bad("config must be { set_size : N, pool_size : N }")
            for key in ("set_size", "pool_size"):
                v = config.get(key)
                if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                    bad(f"`{key}` must be a positive number")
        elif model.name == "StaticMap":
            if not isinstance(config, dict):
                return bad("config must be { keys : { ... }, pool_size : N }")
            keys = config.get("keys")
            if not isinstance(keys, dict) or not keys:
                bad("`keys` must be a non-empty record of key : default value")
            elif any(not isinstance(v, int) or isinstance(v, bool) for v in keys.values()):
                bad("default values in `keys` must be numbers")
            v = config.get("pool_size")
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                bad("`pool_size` must be a positive number")
        elif model.name == "Mic":
            if isinstance(config, list):
                if not config or not all(isinstance(x, str) for x in config) or len(set(config)) != len(config):
                    bad("a level list must be distinct text literals")
            elif isinstance(config, dict):
                deg, cats = config.get("degrees"), config.get("categories")
                if not isinstance(deg, list) or not deg or not all(isinstance(x, str) for x in deg):
                    bad("`degrees` must be a non-empty list of text literals")
                if not isinstance(cats, list) or not all(isinstance(x, str) for x in cats):
                    bad("`categories` must be a list of text literals")
            else:
                bad("config must be a list of levels or { degrees : [...], categories : [...] }")

    # ------------------------------------------------------------------ audit
    def load_audit(self) -> tuple[str, int] | None:
        default = None
        for src, d in self.decls():
            if isinstance(d, ast.AuditProfile):
                levels = self.const_value(d.levels, src)
                at = src.span(d.name.pos)
                self.check_profile(d.name.text, levels, src.span(d.levels.pos))
                self.profiles[d.name.text] = AuditProfileDef(d.name.text, levels, at)
        for src, d in self.decls():
            if isinstance(d, ast.AuditDefault):
                self.profile_ref(d.profile, src)
                default = (d.profile.text, d.level)
        return default

    def profile_ref(self, name: ast.Name | None, src: SourceText) -> str | None:
        if name is None:
            return None
        if name.text != "empty" and name.text not in self.profiles:
            self.diags.add(PSL_UNKNOWN_PROFILE, f"audit profile {name.text} is not declared", src.span(name.pos))
        return name.text

    def check_profile(self, name: str, levels: object, at: Span) -> None:
        def bad(msg: str) -> None:
            self.diags.add(PSL_BAD_AUDIT, f"audit profile {name}: {msg}", at)

        if not isinstance(levels, dict):
            return bad("must be a record of level : { object : { ... } }")
        for level, objs in levels.items():
            if not isinstance(level, int) or isinstance(level, bool) or level < 0:
                bad(f"level {level!r} is not a non-negative number")
            if not isinstance(objs, dict):
                bad(f"level {level!r} must map objects to settings")
                continue
            for obj, settings in objs.items():
                od = self.objects.get(obj)
                if od is None:
                    bad(f"unknown object {obj!r}")
                    continue
                model = ml.MODELS[od.model]
                if not model.auditable:
                    bad(f"objects of model {model.name} cannot be audited")
                if not isinstance(settings, dict):
                    bad(f"settings of {obj!r} must be a record")
                    continue
                for key, val in settings.items():
                    if key == "kss":
                        if not isinstance(val, list) or any(v not in ("granted", "denied") for v in val):
                            bad(f"{obj}.kss must list \"granted\" and/or \"denied\"")
                    elif key not in model.audit_keys:
                        bad(f"{obj}: {key!r} is not an audit key of model {model.name}")

    # ------------------------------------------------------------------ selectors
    def selectors(self, event: str, sels: tuple[ast.Selector, ...], outer: SelectorSet, src: SourceText) -> tuple[SelectorSet, bool]:
        """Narrow ``outer`` by ``sels``; returns (selectors, satisfiable)."""
        satisfiable = True
        updates: dict[str, str] = {}
        allowed = _SELECTORS_OF_EVENT.get(event, _ALL_SELECTORS)
        for s in sels:
            key = s.key
            if key not in allowed:
                self.diags.add(PSL_BAD_SELECTOR, f"`{s.key}=` does not apply to {event} events", src.span(s.pos))
                continue
            value = s.value.text
            prev = updates.get(key) or getattr(outer, key)
            if prev is not None and prev != value:
                self.diags.add(PSL_IMPOSSIBLE_SECTION, f"{key}={value} conflicts with {key}={prev} already in force",
                               src.span(s.pos))
                satisfiable = False
            if key in ("src", "dst"):
                self.class_ref(s.value, src)
            updates[key] = value
        if "component" in updates:
            # `component=` names a CDL component type: the messages through the endpoints
            # of its instances, at any depth, in whichever server class embeds it.
            updates["component_endpoints"] = frozenset(self._component_endpoints().get(updates["component"], ()))
        return outer.narrowed(**updates), satisfiable

    def _component_endpoints(self) -> dict[str, list[tuple[str, str]]]:
        """Component type -> (class, endpoint) of every endpoint inside an instance of it.

        Built once, and again only when a class was added since (classes are only
        ever added, never replaced).
        """
        if self._by_component is None or self._by_component[0] != len(self.classes):
            index: dict[str, list[tuple[str, str]]] = {}
            for c in self.classes.values():
                for ep in c.endpoints:
                    for comp in ep.components:
                        index.setdefault(comp, []).append((c.name, ep.name))
            self._by_component = (len(self.classes), index)
        return self._by_component[1]

    def check_selector_targets(self, event: str, sel: SelectorSet, sels: tuple[ast.Selector, ...], src: SourceText) -> tuple[tuple[Target, ...], bool]:
        """Targets addressed under ``sel``; reports each selector value that addresses nothing.

        Selectors are checked one at a time, widening the others, so the diagnostic
        lands on the value that is wrong (an unknown method, not its good endpoint).
        """
        targets, opaque = self.targets(event, sel)
        if event == "execute":
            for s in sels:
                if s.key == "method" and s.value.text != "main":
                    self.diags.add(PSL_UNKNOWN_METHOD, f"execute events have one method, main (of {EXECUTE_INTERFACE}), not {s.value.text}",
                                   src.span(s.value.pos, s.value.pos + len(s.value.text)))
            return targets, opaque
        if opaque or targets:
            return targets, opaque
        for s in sels:
            key = s.key
            if key not in ("component", "endpoint", "interface", "method"):
                continue
            value = s.value.text
            at = src.span(s.value.pos, s.value.pos + len(value))
            alone, _ = self.targets(event, SelectorSet(src=sel.src, dst=sel.dst, **{key: value}))
            if alone:
                continue
            if key == "component":
                server = sel.dst if event == "request" else sel.src
                self.diags.add(PSL_UNKNOWN_ENDPOINT, f"{server or 'no class'} has no endpoint in a component {value}", at,
                               hint="`component=` names a CDL component type that the server's EDL embeds")
            elif key == "endpoint":
                server = sel.dst if event == "request" else sel.src
                close = _closest(value, self._endpoint_names(server))
                if is_builtin_kernel(self.classes.get(server)):
                    self.diags.add(KRN_UNKNOWN, f"the kernel has no endpoint {value} in the built-in description"
                                   + (f"; did you mean {close}?" if close else ""), at)
                    continue
                self.diags.add(PSL_UNKNOWN_ENDPOINT, f"{server or 'no class'} has no endpoint {value}", at,
                               hint=f"did you mean {close}?" if close else None)
            elif key == "interface":
                server = sel.dst if event == "request" else sel.src
                if is_builtin_kernel(self.classes.get(server)) and value not in self.interfaces:
                    close = _closest(value, set(builtin_kernel_interfaces()))
                    self.diags.add(KRN_UNKNOWN, f"the kernel has no endpoint of interface {value} in the built-in "
                                   "description" + (f"; did you mean {close}?" if close else ""), at)
                    continue
                if self.interface(value, at) is not None:
                    self.diags.add(PSL_UNKNOWN_METHOD, f"no selected class has an endpoint of interface {value}", at)
            else:
                wider = SelectorSet(src=sel.src, dst=sel.dst, endpoint=sel.endpoint, interface=sel.interface)
                close = _closest(value, {t.method.name for t in self.targets(event, wider)[0]})
                server = sel.dst if event == "request" else sel.src
                if is_builtin_kernel(self.classes.get(server)):
                    self.diags.add(KRN_UNKNOWN, f"method {value} is not in the kernel interfaces these selectors "
                                   f"address (built-in description)" + (f"; did you mean {close}?" if close else ""), at)
                    continue
                self.diags.add(PSL_UNKNOWN_METHOD, f"method {value} is not in any interface these selectors address", at,
                               hint=f"did you mean {close}?" if close else None)
        # Each selector is fine alone but together they address nothing (`dst=Einit`, a
        # class without endpoints): the SDK's compiler accepts that, so the linter, not
        # the loader, reports it (LNT020).
        return targets, opaque

    def _endpoint_names(self, server: str | None) -> set[str]:
        classes = [self.classes[server]] if server in self.classes else list(self.classes.values())
        return {ep.name for c in classes for ep in c.endpoints}

    def targets(self, event: str, sel: SelectorSet) -> tuple[tuple[Target, ...], bool]:
        """All (class, endpoint, method) the selectors can address; flag if an opaque class is involved."""
        if event == "execute":
            return (), False
        if event == "security":
            if sel.src and sel.src not in self.classes:
                return (), True
            names = [sel.src] if sel.src else list(self.classes)
            out: list[Target] = []
            opaque = False
            for n in names:
                c = self.classes.get(n)
                if c is None:
                    continue
                opaque |= c.opaque or (c.security is not None and c.security.opaque)
                iface = c.security
                if iface is None or (sel.interface and iface.name != sel.interface):
                    continue
                for m in iface.methods:
                    if sel.method is None or m.name == sel.method:
                        out.append(Target(c.name, None, iface.name, m))
            return tuple(out), opaque
        server = sel.dst if event == "request" else sel.src
        if server and server not in self.classes:
            return (), True  # already reported as undeclared; nothing more can be checked
        names = [server] if server else list(self.classes)
        out = []
        opaque = False
        named = self.interfaces.get(sel.interface) if sel.interface else None
        if named is not None and named.opaque:
            opaque = True  # an interface from outside the solution: its methods are unknown
        endpoint, component, interface, method = sel.endpoint, sel.component, sel.interface, sel.method
        for n in names:
            c = self.classes.get(n)
            if c is None:
                continue
            opaque |= c.opaque
            if c.opaque_parts and (endpoint is None or c.in_opaque_part(endpoint)):
                opaque = True
            for ep in c.endpoints:
                if endpoint and ep.name != endpoint:
                    continue
                if component and component not in ep.components:
                    continue
                iface = ep.interface
                if interface and iface.name != interface:
                    continue
                opaque |= iface.opaque
                for m in iface.methods:
                    if method is None or m.name == method:
                        out.append(new_target(c.name, ep.name, iface.name, m))
        if server is None:
            opaque = opaque or any(c.partly_opaque for c in self.classes.values())
        return tuple(out), opaque

    # ------------------------------------------------------------------ bindings
    def load_bindings(self) -> tuple[BindingDef, ...]:
        out = []
        for src, d in self.decls():
            if not isinstance(d, ast.Binding):
                continue
            sel, ok = self.selectors(d.event, d.selectors, SelectorSet(), src)
            targets, opaque = self.check_selector_targets(d.event, sel, d.selectors, src)
            ctx = _Ctx(d.event, sel, targets, opaque, src)
            body = self.body(d.body, ctx)
            out.append(_BindingDef(d.event, sel, self.profile_ref(d.audit, src), body, src.span(d.pos), targets,
                                  opaque=opaque))
        return tuple(out)

    def body(self, stmts: tuple, ctx: _Ctx) -> tuple[StmtDef, ...]:
        out: list[StmtDef] = []
        for st in stmts:
            r = self.stmt(st, ctx)
            if r is not None:
                out.append(r)
        return tuple(out)

    def stmt(self, st, ctx: _Ctx) -> StmtDef | None:
        src = ctx.source
        if isinstance(st, ast.Match):
            sel, ok = self.selectors(ctx.event, st.selectors, ctx.sel, src)
            if ok:
                targets, opaque = self.check_selector_targets(ctx.event, sel, st.selectors, src)
            else:
                targets, opaque = (), True  # never matches: nothing inside can be checked against targets
            inner = _Ctx(ctx.event, sel, targets, opaque, src)
            return _MatchDef(sel, self.profile_ref(st.audit, src), self.body(st.body, inner), src.span(st.pos),
                            targets, satisfiable=ok, opaque=opaque and ok)
        if isinstance(st, ast.Choice):
            self.expr(st.expr, ctx)
            arms = []
            states = self._selector_cases(st.expr)
            for arm in st.arms:
                if arm.case is not None:
                    self._check_case(arm.case, states, src)
                arms.append(_ArmDef(arm.case, self.body(arm.body, ctx), src.span(arm.pos)))
            return _ChoiceDef(st.expr, self.profile_ref(st.audit, src), tuple(arms), src.span(st.pos))
        if isinstance(st, ast.Call):
            resolved = self.call(st, ctx)
            if resolved is None:
                return None
            obj, model, sig = resolved
            if sig.kind != "rule":
                self.diags.add(PSL_EXPR_AS_RULE, f"{obj}.{sig.name} is an expression; it grants or denies nothing", src.span(st.pos))
            return _CallDef(obj, model.name, sig.name, sig.kind, st.arg, src.span(st.pos), st)
        return None

    def _selector_cases(self, e: ast.Expr) -> tuple[str, object] | None:
        """For a choice on Flow query / Regex select: ('flow', states) or ('regex', None)."""
        if not isinstance(e, ast.Call):
            return None
        obj = e.object.text if e.object else ml.UNPREFIXED.get(e.method.text)
        od = self.objects.get(obj or "")
        if od is None:
            return None
        if od.model == "Flow" and e.method.text == "query" and isinstance(od.config, dict):
            return ("flow", od.config.get("states"))
        if od.model == "Regex" and e.method.text == "select":
            return ("regex", None)
        return None

    def _check_case(self, case: ast.Lit, kind, src: SourceText) -> None:
        if kind is None:
            return
        if kind[0] == "flow" and isinstance(kind[1], list) and case.value not in kind[1]:
            self.diags.add(PSL_BAD_CASE, f"{case.value!r} is not a state of this Flow object ({', '.join(kind[1])})", src.span(case.pos))
        if kind[0] == "regex" and isinstance(case.value, str):
            self._check_pattern(case.value, src.span(case.pos))

    def _check_pattern(self, pattern: str, at: Span) -> None:
        problem = pattern_problem(pattern)
        if problem:
            self.diags.add(SOL_BAD_REGEX, f"pattern {pattern!r}: {problem}", at)

    def call(self, c: ast.Call, ctx: _Ctx):
        src = ctx.source
        method = c.method.text
        if c.object is None:
            obj = ml.UNPREFIXED.get(method)
            if obj is None:
                self.diags.add(PSL_UNKNOWN_MODEL_METHOD, f"{method} needs an object prefix (object.{method})", src.span(c.pos))
                return None
        else:
            obj = c.object.text
        od = self.objects.get(obj)
        if od is None:
            builtin_model = ml.model_of_object(obj)
            if builtin_model is not None:
                self.diags.add(PSL_MISSING_INCLUDE, f"{obj}.{method} needs `use {builtin_model.include}._`", src.span(c.pos),
                               hint=f"add `use {builtin_model.include}._`")
                model = builtin_model
            else:
                close = _closest(obj, self.objects)
                self.diags.add(PSL_UNKNOWN_OBJECT, f"unknown policy object {obj}", src.span(c.object.pos if c.object else c.pos),
                               hint=f"did you mean {close}?" if close else None)
                self.expr(c.arg, ctx)
                return None
        else:
            model = ml.MODELS[od.model]
        sig = model.methods.get(method)
        if sig is None:
            self.diags.add(PSL_UNKNOWN_MODEL_METHOD, f"model {model.name} has no method {method}", src.span(c.method.pos),
                           hint="methods: " + ", ".join(sorted(model.methods)))
            self.expr(c.arg, ctx)
            return None
        self.check_arg(obj, sig, c.arg, ctx)
        if model.name == "Regex" and method == "match" and isinstance(c.arg, ast.RecordExpr):
            for f in c.arg.fields:
                if isinstance(f.key, ast.Name) and f.key.text == "pattern" and isinstance(f.value, ast.Lit) \
                        and isinstance(f.value.value, str):
                    self._check_pattern(f.value.value, src.span(f.value.pos))
        return obj, model, sig

    def check_arg(self, obj: str, sig: ml.MethodSig, arg: ast.Expr, ctx: _Ctx) -> None:
        src = ctx.source
        kind = sig.arg.kind
        is_unit = isinstance(arg, ast.Lit) and arg.kind == "unit"
        if kind == "unit" and not is_unit:
            self.diags.add(PSL_BAD_ARGUMENT, f"{obj}.{sig.name} takes ()", src.span(arg.pos))
        elif kind in ("bool", "number", "list", "any", "text") and is_unit:
            self.diags.add(PSL_BAD_ARGUMENT, f"{obj}.{sig.name} needs an argument", src.span(arg.pos))
        elif kind == "record":
            if not isinstance(arg, ast.RecordExpr):
                self.diags.add(PSL_BAD_ARGUMENT, f"{obj}.{sig.name} takes a record {{{', '.join(sig.arg.required)}}}", src.span(arg.pos))
            else:
                names = [f.key.text if isinstance(f.key, ast.Name) else str(f.key.value) for f in arg.fields]
                for req in sig.arg.required:
                    if req not in names:
                        self.diags.add(PSL_BAD_ARGUMENT, f"{obj}.{sig.name} needs field `{req}`", src.span(arg.pos))
                allowed = set(sig.arg.required) | set(sig.arg.optional)
                for n, f in zip(names, arg.fields):
                    if n not in allowed:
                        self.diags.add(PSL_BAD_ARGUMENT, f"{obj}.{sig.name} has no field `{n}`", src.span(f.pos),
                                       hint="fields: " + ", ".join(sig.arg.required + sig.arg.optional))
        self.expr(arg, ctx)

    def expr(self, e: ast.Expr, ctx: _Ctx) -> IdlType | None:
        """Check an expression; returns the IDL type when it is a message value."""
        src = ctx.source
        if isinstance(e, (ast.Lit,)):
            return None
        if isinstance(e, ast.ListExpr):
            for i in e.items:
                self.expr(i, ctx)
            return None
        if isinstance(e, ast.RecordExpr):
            for f in e.fields:
                self.expr(f.value, ctx)
            return None
        if isinstance(e, ast.Ref):
            return self.ref(e, ctx)
        if isinstance(e, ast.IndexExpr):
            base = self.expr(e.base, ctx)
            self.expr(e.index, ctx)
            if isinstance(base, (SequenceType, ArrayType)):
                return base.element
            return None
        if isinstance(e, ast.FieldAccess):
            base = self.expr(e.base, ctx)
            if base is None:
                return None
            t = _field_type(base, e.name)
            if t is None:
                self.diags.add(PSL_UNKNOWN_MESSAGE_FIELD, f"{type_str(base)} has no field {e.name}", src.span(e.pos))
            return t
        if isinstance(e, (ast.BinOp, ast.UnOp)):
            model = ml.OPERATOR_MODEL.get(e.op)
            if model and not self.model_available(model) and not self._warned_basic:
                self._warned_basic = True
                self.diags.add(PSL_BASIC_NOT_INCLUDED, f"operator {e.op} comes from model {model}; `use nk.basic._` is missing", src.span(e.pos))
            if isinstance(e, ast.BinOp):
                self.expr(e.left, ctx)
                self.expr(e.right, ctx)
            else:
                self.expr(e.operand, ctx)
            return None
        if isinstance(e, ast.Call):
            r = self.call(e, ctx)
            if r is not None and r[2].kind == "rule":
                self.diags.add(PSL_RULE_IN_EXPR, f"{r[0]}.{r[2].name} is a rule; it cannot give a value", src.span(e.pos))
            return None
        return None

    def ref(self, e: ast.Ref, ctx: _Ctx) -> IdlType | None:
        src = ctx.source
        head = e.path[0]
        if head in ("src_sid", "dst_sid") and len(e.path) == 1:
            if head == "dst_sid" and ctx.event == "security":
                self.diags.add(PSL_UNKNOWN_NAME, "security events have no destination: dst_sid is undefined", src.span(e.pos))
            return None
        if head != "message":
            self.diags.add(PSL_UNKNOWN_NAME, f"{'.'.join(e.path)} is not defined here", src.span(e.pos))
            return None
        if len(e.path) == 1:
            return None
        if ctx.opaque and not ctx.targets:
            return None
        if ctx.event == "execute":
            self.diags.add(PSL_UNKNOWN_MESSAGE_FIELD, "execute events carry no message parameters (kl.core.Execute.main has none)", src.span(e.pos))
            return None
        found: list[IdlType] = []
        for t in ctx.targets:
            typ = self._params_of(t.method, ctx.event).get(e.path[1])
            for seg in e.path[2:]:
                if typ is None:
                    break
                typ = _field_type(typ, seg)
            if typ is not None:
                found.append(typ)
        if not found:
            untyped = self._untyped_param(ctx, e.path[1])
            if untyped is not None:
                self.diags.add(KRN_UNTYPED, f"message.{e.path[1]} ({untyped}) has no documented IDL type", src.span(e.pos))
                return None
            if not ctx.targets or self._partly_opaque_server(ctx):
                return None  # the field may belong to a method nobody here describes
            direction = {"request": "in", "security": "in", "response": "out", "error": "error"}[ctx.event]
            methods = sorted({f"{t.interface}.{t.method.name}" for t in ctx.targets})
            shown = ", ".join(methods[:4]) + (", ..." if len(methods) > 4 else "")
            self.diags.add(PSL_UNKNOWN_MESSAGE_FIELD,
                           f"message.{'.'.join(e.path[1:])}: no {direction}-parameter path like this in {shown}", src.span(e.pos))
            return None
        return found[0]

    def _params_of(self, method, event: str) -> dict[str, IdlType]:
        """Name -> type of the parameters ``message`` holds for ``event`` on ``method`` (memoised)."""
        key = (id(method), event)
        hit = self._params.get(key)
        if hit is None or hit[0] is not method:
            hit = self._params[key] = (method, {p.name: p.type for p in message_params(method, event)})
        return hit[1]

    def trust(self, marks: list[TrustMark], settings: tuple[str, ...]) -> dict[str, Trust]:
        """Which classes are marked trusted or untrusted: comments on `use EDL` lines, then settings.

        A comment covers the `use EDL` (or `task class`) declaration on its line or the
        next code line; one that covers none is a warning, as is a class in the settings
        that the policy does not declare (nothing would be trusted: a typo).
        """
        by_line = {(span.file, span.line): cls for cls, span in self.edl_uses.items()}
        out: dict[str, Trust] = {}
        for m in marks:
            cls = by_line.get((m.file, m.line))
            if cls is None:
                self.diags.add(KRN_TRUST, f"`ksm: {'trusted' if m.trusted else 'untrusted'}` covers no `use EDL` "
                               "declaration; put it at the end of a `use EDL` line or alone on the line above", m.span)
                continue
            out[cls] = Trust(cls, m.trusted, "comment", m.span)
        for cls in settings:
            if cls not in self.declared_classes or cls not in self.classes:
                close = _closest(cls, self.declared_classes)
                self.diags.add(KRN_TRUST, f"trusted class {cls} (from the settings or --trusted) is not declared "
                               "by the policy" + (f"; did you mean {close}?" if close else ""), None)
                continue
            out.setdefault(cls, Trust(cls, True, "settings"))
        # Einit is generated by the SDK from init.yaml and starts every process: part of
        # the trusted base unless the policy says otherwise.
        out.setdefault(EINIT_CLASS, Trust(EINIT_CLASS, True, "default"))
        return out

    def _untyped_param(self, ctx: _Ctx, name: str) -> str | None:
        """``Interface.Method`` when ``name`` is a parameter some target knows by name only."""
        direction = {"request": "in", "response": "out"}.get(ctx.event)
        if direction is None:
            return None
        for t in ctx.targets:
            names = t.method.untyped_names(direction)
            if name in names or "*" in names:
                return f"a parameter of {t.interface}.{t.method.name}"
        return None

    def _partly_opaque_server(self, ctx: _Ctx) -> bool:
        """The selected server has endpoints or methods nobody here describes (beside known ones)."""
        server = ctx.sel.dst if ctx.event == "request" else ctx.sel.src
        cls = self.classes.get(server) if server else None
        return cls is not None and ctx.opaque and cls.partly_opaque

    # ------------------------------------------------------------------ init.yaml
    def load_init(self, path: Path | None) -> tuple[tuple[Instance, ...], tuple[Channel, ...]]:
        if path is None:
            self.diags.add(INC_NO_INIT, "no init.yaml(.in) next to the policy or in einit/src", None)
            return (), ()
        init = self.ws.init_file(path)
        loaded = self.ws.files.get(path.resolve())
        self.build_adds_entities = loaded is not None and EXTERNAL_ENTITIES in loaded.source.unset
        if init is None:
            return (), ()
        instances = []
        for ent in init.entities:
            cls = self.classes.get(ent.name)
            if cls is None:
                self.ensure_class(ent.name, ent.name, ent.name_span or ent.span)
            instances.append(Instance(ent.task, ent.name, ent.path, ent.args, ent.env, ent.span))
        tasks = {i.task: i for i in instances}
        channels = []
        external: list[Instance] = []
        for ent in init.entities:
            for con in ent.connections:
                server = tasks.get(con.target)
                if server is None and self._stand_in(con.target):
                    continue  # `target: @ROOTFS_ENTITY@` without a value: the server is unknown (reported)
                if server is None and is_sdk_name(con.target):
                    # A system program the SDK build adds to init.yaml (`@INIT_EXTERNAL_ENTITIES@`):
                    # its task is named after its class.
                    at = con.target_span or con.span
                    self.ensure_class(con.target, con.target, at, quiet=True)
                    server = tasks[con.target] = Instance(con.target, con.target, con.target.rsplit(".", 1)[-1],
                                                          (), (), at, external=True)
                    external.append(server)
                if server is None:
                    close = _closest(con.target, tasks)
                    self.diags.add(SOL_UNKNOWN_TARGET, f"connection {con.id}: no task named {con.target}", con.target_span or con.span,
                                   hint=f"did you mean {close}?" if close else None)
                    continue
                scls = self.classes.get(server.cls)
                if scls is not None and not scls.partly_opaque and not scls.endpoints and scls.name != KERNEL_CLASS:
                    self.diags.add(SOL_SERVERLESS_CHANNEL, f"connection {con.id}: {server.task} ({server.cls}) serves no endpoint", con.span)
                channels.append(Channel(con.id, ent.task, con.target, con.span, con.id_var, con.id_include))
        return tuple(instances + external), tuple(channels)

    def build_entities(self, instances: tuple[Instance, ...]) -> tuple[Instance, ...]:
        """Instances of the SDK programs the build adds where init.yaml leaves
        ``@INIT_EXTERNAL_ENTITIES@`` without a value: every SDK class the policy names
        that init.yaml does not start.  Einit starts them in reality, so the decision
        function, the prover and the channel graph start them too (after the others)."""
        if not self.build_adds_entities:
            return ()
        started = {i.cls for i in instances}
        return tuple(
            Instance(c.name, c.name, c.name.rsplit(".", 1)[-1], (), (), c.span or self.edl_uses.get(c.name), external=True)
            for c in self.classes.values()
            if c.name not in started and c.form != "builtin" and is_sdk_name(c.name))

    # ------------------------------------------------------------------ PAL tests
    def load_tests(self) -> tuple[TestBlockDef, ...]:
        blocks = []
        n = 0
        for src, d in self.decls():
            if not isinstance(d, ast.AssertBlock):
                continue
            n += 1
            env: set[str] = set()
            setup = tuple(self.case(c, src, env) for c in d.setup)
            seqs = []
            for i, seq in enumerate(d.sequences):
                seq_env = set(env)
                cases = tuple(self.case(c, src, seq_env) for c in seq.cases)
                seqs.append(TestSequenceDef(seq.name or f"sequence {i + 1}", cases, src.span(seq.pos)))
            fin_env = set(env)
            for seq in d.sequences:
                for c in seq.cases:
                    if c.var:
                        fin_env.add(c.var.text)
            fin = tuple(self.case(c, src, fin_env) for c in d.finally_)
            blocks.append(TestBlockDef(d.name or f"test {n}", setup, tuple(seqs), fin, src.span(d.pos)))
        return tuple(blocks)

    def case(self, c: ast.TestCase, src: SourceText, env: set[str]) -> TestCaseDef:
        sels: dict[str, str] = {}
        for s in c.selectors:
            key = "endpoint" if s.key == "component" else s.key
            sels[key] = s.value.text
            if c.event == "execute" and key == "dst":
                self.class_ref(s.value, src)
            elif key in ("src", "dst") and s.value.text not in env:
                if s.value.text in self.declared_classes and c.event == "execute":
                    continue
                self.diags.add(PSL_UNKNOWN_TEST_VAR, f"{key}={s.value.text}: no process variable {s.value.text} is bound yet", src.span(s.pos))
        message = self.const_value(c.message, src) if c.message is not None else None
        if c.var is not None:
            env.add(c.var.text)
        return TestCaseDef(
            c.var.text if c.var else None, c.expect or "grant", c.name, c.event, sels, message,
            src.span(c.pos), c.shorthand,
        )

    # ------------------------------------------------------------------ global
    def execute_interface(self) -> str | None:
        found = [(src, d) for src, d in self.decls() if isinstance(d, ast.ExecuteDecl)]
        if not found:
            if self.units:
                self.diags.add(PSL_EXECUTE_DECL, "the policy has no `execute: kl.core.Execute` declaration",
                               self.units[0].file.source.span(0))
            return None
        for src, d in found[1:]:
            self.diags.add(PSL_EXECUTE_DECL, "`execute:` is declared more than once", src.span(d.pos))
        src, d = found[0]
        name = d.interface.text
        if name != EXECUTE_INTERFACE:
            self.interface(name, src.span(d.interface.pos))
        return name


def _outside_package(outside: Outside, name: str, at: Span | None) -> bool:
    """An IDL package that is not here: outside the solution when the SDK provides it."""
    if not is_sdk_name(name):
        return False
    outside.report(name, "package", at)
    return True


def _literal_members(t: ast.PslType | None) -> list | None:
    if t is None:
        return None
    if isinstance(t, ast.LitType):
        return [t.lit.value]
    if isinstance(t, ast.UnionType):
        out = []
        for m in t.members:
            sub = _literal_members(m)
            if sub is None:
                return None
            out += sub
        return out
    return None


def _field_type(t: IdlType, name: str) -> IdlType | None:
    if isinstance(t, (StructType, UnionType)):
        for f in t.fields:
            if f.name == name:
                return f.type
        return None
    if isinstance(t, HandleType):
        from .types import IntType
        if name in ("handle", "rights"):
            return IntType("UInt32", 32, False)
    return None


def _closest(word: str, candidates) -> str | None:
    import difflib

    hits = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.75)
    return hits[0] if hits else None


def load(target: str | Path, options: LoadOptions | None = None) -> Solution:
    """Load, check and resolve a solution; never raises for problems in the user's files."""
    with gc_paused(freeze=True):
        return _load(target, options or LoadOptions())


def _load(target: str | Path, options: LoadOptions) -> Solution:
    diags = Diagnostics()
    target = Path(target)
    root, top = locate_policy(target, diags)
    ws = Workspace(root.resolve() if present(root) else root, options, diags)
    if top is None:
        return _empty_solution(str(target), diags)
    ws.policy_dir = top.parent.resolve()
    r = Resolver(ws, diags)
    r.collect(top)
    r.templated_gaps = any(d.code in _UNDEFINED_PLACEHOLDER_CODES for d in diags)
    r.load_classes()
    init_path = locate_init(root, top, options.init)
    instances, channels = r.load_init(init_path)
    r.load_objects()
    audit_default = r.load_audit()
    execute_iface = r.execute_interface()
    bindings = r.load_bindings()
    tests = r.load_tests()
    instances += r.build_entities(instances)
    files = tuple(
        SourceFileInfo(lf.source.path, lf.language, lf.source.text.count("\n") + 1, lf.templated)
        for lf in ws.files.values()
    )
    marks = [s for lf in ws.files.values() for s in scan_suppressions(lf.source, lf.language, diags)]
    suppressions = tuple(m for m in marks if isinstance(m, Suppression))
    trust = r.trust([m for m in marks if isinstance(m, TrustMark)], options.trusted)
    return Solution(
        root=str(root),
        classes=dict(r.classes),
        interfaces=dict(r.interfaces),
        instances=instances,
        channels=channels,
        objects=dict(r.objects),
        bindings=bindings,
        audit_profiles=dict(r.profiles),
        audit_default=audit_default,
        tests=tests,
        execute_interface=execute_iface,
        files=files,
        diagnostics=tuple(diags.sorted()),
        suppressions=suppressions,
        used_edl=tuple(r.used_edl),
        edl_uses=dict(r.edl_uses),
        includes=tuple(sorted(r.nk_includes)) + tuple(ws.shown(u.path) for u in r.units[1:]),
        outside=r.outside.all(),
        policy=ws.shown(top.resolve()),
        trust=trust,
    )


def _empty_solution(root: str, diags: Diagnostics) -> Solution:
    return Solution(root, {}, {}, (), (), {}, (), {}, None, (), None, (), tuple(diags.sorted()))
