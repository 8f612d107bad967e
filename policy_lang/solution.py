"""The resolved solution: the one model every back end reads.

Everything here is immutable and fully resolved: class names point at classes,
endpoints carry their interface and RIID, bindings carry resolved selectors and
typed message paths, and every element keeps the :class:`Span` of the text it came
from so that back ends (decision function, Z3 model, channel graph, linter) can
report in terms of the user's files without ever re-reading them.

Expressions inside bindings are kept as the syntax-tree nodes of
:mod:`policy_lang.syntax.ast` (they are already immutable values); what resolution
adds is recorded beside them: which object and model method each call names
(:class:`CallDef`), and which selectors apply to each section (:class:`SelectorSet`).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Union

from .diagnostics import Diagnostic, Span
from .syntax import ast
from .types import IdlType, InterfaceDef, MethodDef

EVENT_KINDS = ("execute", "request", "response", "error", "security")
KERNEL_CLASS = "kl.core.Core"
EINIT_CLASS = "Einit"
EXECUTE_INTERFACE = "kl.core.Execute"


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of a process class, under its qualified name (``comp.sub.ep``).

    ``riid`` is its index among the class's endpoints (see docs/architecture.md for
    the numbering rule).
    """

    name: str
    interface: InterfaceDef
    riid: int
    span: Span | None
    components: tuple[str, ...] = ()   # CDL component types it lies in, outermost first (for `component=`)


@dataclass(frozen=True)
class ProcessClass:
    """A process class (EDL) with its endpoints flattened through nested components.

    ``opaque`` classes are named by the solution but have no description in the given
    folders (SDK programs, build-time generated EDLs): they exist, have no known
    endpoints, and any endpoint/method selector naming them cannot be checked.

    A described class can still be *partly* opaque: ``opaque_parts`` are the
    qualified names of component instances whose component is outside the solution
    (``components { klog : kl.Klog }`` gives ``("klog",)``), so any endpoint under
    ``klog.`` may exist; and an endpoint whose interface is outside the solution has
    unknown methods.
    """

    name: str
    endpoints: tuple[Endpoint, ...]
    security: InterfaceDef | None
    span: Span | None
    form: str = "task class"      # "task class", "entity", "builtin" or "opaque"
    opaque: bool = False
    edl_name: str = ""            # name written in the EDL (differs under `task class A : B`)
    opaque_parts: tuple[str, ...] = ()

    def endpoint(self, name: str) -> Endpoint | None:
        for ep in self.endpoints:
            if ep.name == name:
                return ep
        return None

    @property
    def partly_opaque(self) -> bool:
        """Some of its endpoints or methods are unknown (the whole class, or parts of it)."""
        return self.opaque or bool(self.opaque_parts) or any(ep.interface.opaque for ep in self.endpoints)

    def in_opaque_part(self, endpoint: str) -> bool:
        """Whether ``endpoint`` (a qualified name) can only be an endpoint nobody here describes."""
        return self.opaque or any(endpoint.startswith(p + ".") for p in self.opaque_parts)


@dataclass(frozen=True)
class Instance:
    """A process instance started by Einit (one ``entities`` entry of init.yaml).

    ``external`` instances are not in the init file: a connection names them as its
    target and the SDK build adds their entries (``@INIT_EXTERNAL_ENTITIES@``), as it
    does for the system programs a solution links.  Einit starts them after the
    others; their class is usually opaque.
    """

    task: str
    cls: str
    path: str
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    span: Span | None
    external: bool = False


@dataclass(frozen=True)
class OutsidePiece:
    """Something the solution names but does not contain (SDK or build), loaded as opaque.

    ``kind``: program, component, interface, package, fragment or fragment-builtin; ``known``: listed in
    the bundled SDK catalogue; ``span``: where it is first named.
    """

    name: str
    kind: str
    known: bool
    span: Span | None


@dataclass(frozen=True)
class Channel:
    """A static IPC channel: ``client`` owns the client handle, ``server`` serves."""

    id: str
    client: str
    server: str
    span: Span | None
    id_var: str | None = None
    id_include: str | None = None


@dataclass(frozen=True)
class SelectorSet:
    """Conjunction of selectors in force for a binding or nested section.

    ``None`` means "not restricted".  Values are resolved names: class names for
    src/dst, a qualified endpoint name, an interface (package) name, a method name.
    """

    src: str | None = None
    dst: str | None = None
    endpoint: str | None = None
    interface: str | None = None
    method: str | None = None
    component: str | None = None
    #: With ``component``: every (server class, qualified endpoint) that lies in an
    #: instance of that CDL component, resolved once so matching is a set lookup.
    component_endpoints: frozenset[tuple[str, str]] = frozenset()

    def narrowed(self, **kw) -> "SelectorSet":
        """These selectors with the given ones added (None values are ignored)."""
        kw = {k: v for k, v in kw.items() if v is not None}
        if not kw:
            return self
        if not kw.keys() <= _SELECTOR_FIELDS:
            return dataclasses.replace(self, **kw)     # the TypeError naming the unknown field
        # dataclasses.replace() without its overhead (the resolver narrows once per
        # binding and section): the same fields, set the way a frozen __init__ sets them.
        new = object.__new__(SelectorSet)
        state = new.__dict__
        state.update(self.__dict__)
        state.update(kw)
        return new

    def describe(self) -> str:
        parts = [f"{k}={v}" for k in ("src", "dst", "component", "endpoint", "interface", "method")
                 if (v := getattr(self, k))]
        return " ".join(parts) or "(any)"


_SELECTOR_FIELDS = frozenset(f.name for f in dataclasses.fields(SelectorSet))


@dataclass(frozen=True)
class Target:
    """One (class, endpoint, method) a request/response/error/security event can address."""

    cls: str
    endpoint: str | None
    interface: str
    method: MethodDef


def fast_init(cls):
    """A constructor that gives the same object as ``cls(...)`` for a frozen dataclass
    (same parameters and defaults), without the generated ``__init__``'s cost: that
    sets each field through ``object.__setattr__``; this fills the instance
    dictionary directly.  For the elements the resolver makes by the ten thousand
    (targets, bindings, sections, calls).  ``cls`` itself for any class this cannot
    copy exactly (slots, ``__post_init__``, default factories, fields outside
    ``__init__``).
    """
    fields = dataclasses.fields(cls)
    if ("__slots__" in vars(cls) or hasattr(cls, "__post_init__")
            or any(not f.init or f.default_factory is not dataclasses.MISSING for f in fields)):
        return cls
    env: dict = {"_new": object.__new__, "_cls": cls}
    params = []
    for f in fields:
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            env[f"_d_{f.name}"] = f.default
            params.append(f"{f.name}=_d_{f.name}")
    body = ["    o = _new(_cls)", "    d = o.__dict__"] + [f"    d[{f.name!r}] = {f.name}" for f in fields] + ["    return o"]
    exec(f"def new({', '.join(params)}):\n" + "\n".join(body), env)  # noqa: S102 - from the class's own fields
    new = env["new"]
    new.__name__ = new.__qualname__ = f"new_{cls.__name__}"
    return new


new_target = fast_init(Target)


@dataclass(frozen=True)
class CallDef:
    """A resolved model-method call used as a statement (a rule).

    ``object`` is the policy object's name (``base`` for a bare ``grant ()``),
    ``model`` its security model, ``method`` the model method; ``kind`` says whether
    the model method is a rule or an expression (an expression used as a statement
    votes nothing; the linter reports it).
    """

    object: str
    model: str
    method: str
    kind: str
    arg: ast.Expr
    span: Span
    node: ast.Call


@dataclass(frozen=True)
class MatchDef:
    """A nested ``match`` section; ``selectors`` include every enclosing one.

    ``satisfiable`` is False when the section repeats an enclosing selector with
    another value (``dst=A`` inside ``dst=B``): such a section never applies, and
    ``selectors`` then holds only a best-effort picture for messages.
    """

    selectors: SelectorSet
    audit: str | None
    body: tuple["StmtDef", ...]
    span: Span
    targets: tuple[Target, ...] = ()
    satisfiable: bool = True
    opaque: bool = False          # it may address endpoints or methods nobody here describes


@dataclass(frozen=True)
class ArmDef:
    case: ast.Lit | None
    body: tuple["StmtDef", ...]
    span: Span


@dataclass(frozen=True)
class ChoiceDef:
    expr: ast.Expr
    audit: str | None
    arms: tuple[ArmDef, ...]
    span: Span


StmtDef = Union[CallDef, MatchDef, ChoiceDef]


@dataclass(frozen=True)
class BindingDef:
    """A top-level binding: the event kind, its selectors and its resolved body.

    ``targets`` lists every (class, endpoint, method) the binding can apply to, so a
    back end can index bindings without re-deriving the selector semantics.  It is
    empty for ``execute`` bindings and for bindings that name opaque classes.
    ``opaque``: the binding may also apply to endpoints or methods nobody here
    describes (an opaque class, component or interface), beyond ``targets``.
    """

    event: str
    selectors: SelectorSet
    audit: str | None
    body: tuple[StmtDef, ...]
    span: Span
    targets: tuple[Target, ...] = ()
    opaque: bool = False


@dataclass(frozen=True)
class PolicyObjectDef:
    """A security model object: user-declared or pre-created by an ``nk`` include.

    ``config`` is the configuration as a plain Python value (dicts, lists, ints,
    strings, bools, None for unit); ``types`` maps a model type parameter (``State``,
    ``Entry``, ``Value``) to its syntax-tree type.
    """

    name: str
    model: str
    config: object
    types: Mapping[str, ast.PslType]
    span: Span | None
    builtin: bool = False


@dataclass(frozen=True)
class AuditProfileDef:
    name: str
    levels: object          # {level: {object: {key: value}}} as plain Python values
    span: Span | None


@dataclass(frozen=True)
class TestCaseDef:
    var: str | None
    expect: str             # grant | deny | any
    name: str | None
    event: str
    selectors: Mapping[str, str]
    message: object | None  # plain Python dict, or None
    span: Span
    shorthand: bool = False


@dataclass(frozen=True)
class TestSequenceDef:
    name: str
    cases: tuple[TestCaseDef, ...]
    span: Span


@dataclass(frozen=True)
class TestBlockDef:
    name: str
    setup: tuple[TestCaseDef, ...]
    sequences: tuple[TestSequenceDef, ...]
    finally_: tuple[TestCaseDef, ...]
    span: Span


@dataclass(frozen=True)
class SourceFileInfo:
    path: str
    language: str           # psl | edl | cdl | idl | yaml
    lines: int
    templated: bool = False


@dataclass(frozen=True)
class Suppression:
    """A ``ksm: disable=CODE,...`` comment found in one of the solution's files.

    ``scope`` says what it covers: ``"line"`` (a comment after code: findings on its
    own line), ``"next"`` (a comment alone on its line: findings on the next line
    holding code) or ``"file"`` (``disable-file=``: the whole file).  ``line`` is the
    line covered (for ``"file"``, the comment's own line).  ``codes`` holds rule codes
    as written, or ``"all"``.  The linter reads these; the front end only collects
    them, so no back end has to re-read the user's text.
    """

    file: str
    line: int
    codes: tuple[str, ...]
    scope: str
    span: Span


@dataclass(frozen=True)
class TrustMark:
    """``ksm: trusted`` / ``ksm: untrusted`` in a comment: ``line`` is the line it covers.

    The front end ties it to the ``use EDL`` on that line; the kernel least-privilege
    rules read the result from :attr:`Solution.trust`.
    """

    file: str
    line: int
    trusted: bool
    span: Span


@dataclass(frozen=True)
class Trust:
    """Whether a process class is trusted, and who said so (a comment or the settings)."""

    cls: str
    trusted: bool
    source: str            # "comment", "settings" or "default" (Einit)
    span: Span | None = None


def _frozen(d: dict) -> Mapping:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class Solution:
    """A whole KasperskyOS solution, resolved.

    ``diagnostics`` are the problems found while loading; a solution with errors is
    still returned (as complete as the errors allow) so that tools can show the
    summary, but back ends should refuse one where ``ok`` is false.
    """

    root: str
    classes: Mapping[str, ProcessClass]
    interfaces: Mapping[str, InterfaceDef]
    instances: tuple[Instance, ...]
    channels: tuple[Channel, ...]
    objects: Mapping[str, PolicyObjectDef]
    bindings: tuple[BindingDef, ...]
    audit_profiles: Mapping[str, AuditProfileDef]
    audit_default: tuple[str, int] | None
    tests: tuple[TestBlockDef, ...]
    execute_interface: str | None
    files: tuple[SourceFileInfo, ...]
    diagnostics: tuple[Diagnostic, ...] = ()
    used_edl: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    edl_uses: Mapping[str, Span] = dataclasses.field(default_factory=dict)   # class -> its first `use EDL`
    suppressions: tuple[Suppression, ...] = ()
    outside: tuple[OutsidePiece, ...] = ()         # opaque pieces the SDK or the build supplies
    policy: str = ""                               # the top-level policy file, as shown
    trust: Mapping[str, Trust] = dataclasses.field(default_factory=dict)   # marked classes; others: untrusted

    def trusted(self, cls: str) -> bool:
        """Marked trusted (docs/kernel.md: every class is untrusted unless marked)."""
        mark = self.trust.get(cls)
        return mark is not None and mark.trusted

    @property
    def ok(self) -> bool:
        return not any(d.severity.value == "error" for d in self.diagnostics)

    def instance(self, task: str) -> Instance | None:
        """The init.yaml entity named ``task`` (the first one, if several share a name)."""
        try:
            return self._instances_by_task.get(task)
        except TypeError:              # an unhashable name names nothing
            return None

    @functools.cached_property
    def _instances_by_task(self) -> dict[str, Instance]:
        """Why an index: start-up looks every instance up, so a scan made boot O(n²)."""
        out: dict[str, Instance] = {}
        for inst in self.instances:
            out.setdefault(inst.task, inst)
        return out

    def summary(self) -> dict[str, int]:
        """Counts shown by ``ksm check``; kernel and Einit are not counted as classes."""
        user_classes = [c for c in self.classes.values() if c.form != "builtin"]
        kernel = self.classes.get(KERNEL_CLASS)
        hidden = {EXECUTE_INTERFACE} | ({ep.interface.name for ep in kernel.endpoints}
                                        if kernel is not None and kernel.form == "builtin" else set())
        methods = sum(len(i.methods) for n, i in self.interfaces.items() if n not in hidden)
        return {
            "classes": len(user_classes),
            "opaque_classes": sum(1 for c in user_classes if c.opaque),
            "outside": len(self.outside),
            "instances": len(self.instances),
            "channels": len(self.channels),
            "interfaces": len([n for n in self.interfaces if n not in hidden]),
            "methods": methods,
            "bindings": len(self.bindings),
            "objects": len([o for o in self.objects.values() if not o.builtin]),
            "audit_profiles": len(self.audit_profiles),
            "tests": sum(len(t.sequences) for t in self.tests),
            "files": len(self.files),
            "lines": sum(f.lines for f in self.files),
        }


def message_params(method: MethodDef, event: str) -> tuple:
    """Parameters the ``message`` dictionary holds for ``event`` on ``method``.

    In-parameters travel in requests (and security queries), out-parameters in
    responses, error-parameters in error responses.
    """
    if event in ("request", "security"):
        return method.in_params
    if event == "response":
        return method.out_params
    if event == "error":
        return method.error_params
    return ()


__all__ = [
    "ArmDef", "AuditProfileDef", "BindingDef", "CallDef", "Channel", "ChoiceDef", "Endpoint",
    "EVENT_KINDS", "Instance", "MatchDef", "OutsidePiece", "PolicyObjectDef", "ProcessClass", "SelectorSet",
    "Solution", "SourceFileInfo", "StmtDef", "Suppression", "Target", "TestBlockDef", "TestCaseDef",
    "TestSequenceDef", "Trust", "TrustMark", "message_params", "IdlType",
]
