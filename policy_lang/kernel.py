"""The kernel as the policy sees it: ``kl.core.Core``'s endpoints, built in.

Every process calls the kernel (memory, threads, handles, synchronisation, I/O,
time, processes) and each call is an IPC request to ``kl.core.Core`` that the
security module decides like any other.  The SDK describes the kernel in
``sysroot-*-kos/include/kl/core`` (``Core.edl`` plus CDL and IDL files), which a
solution's repository never contains; without them every kernel call would be
opaque, and a policy's most security-relevant part unchecked.

So the toolkit carries its own description of the kernel, written for this project
from the public KasperskyOS Community Edition documentation ("Methods of
KasperskyOS core endpoints" and one page per endpoint, SDK 1.1 to 1.4), one TOML
file per endpoint in ``data/kernel/``:

* each endpoint with its qualified name (``vmm.VMM``) and interface (``kl.core.VMM``);
* each method with the SDK versions whose documentation lists it, its parameter
  names and directions, and the documented *danger*: the ways a compromised
  process could abuse it (exhaust memory, hijack a device, covert channel, ...),
  empty for a method the documentation calls safe, unknown for one it omits;
* no parameter types: the documentation gives none, so parameters are known by name
  only (:attr:`policy_lang.types.MethodDef.untyped`) and their values are not
  structure-checked; we never guess a type.

With ``--sdk DIR`` the SDK's own ``Core.edl`` is loaded instead (typed, numbered as
the real module numbers it); the danger of each method still comes from here, by
interface and method name, so both routes classify a method the same way.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Mapping

from .diagnostics import define_code
from .solution import KERNEL_CLASS, Endpoint, ProcessClass
from .types import InterfaceDef, MethodDef

KRN_UNKNOWN = define_code(
    "KRN001", "warning", "kernel endpoint or method not in the built-in kernel description",
    "check the spelling; the built-in kernel has the endpoints the KasperskyOS CE 1.1-1.4 documentation "
    "lists (`ksm kernel --methods` prints them). If your SDK has it, pass --sdk DIR so that its Core.edl is read",
)
KRN_TRUST = define_code(
    "KRN003", "warning", "trust mark that marks nothing",
    "write `// ksm: trusted` (or `untrusted`) at the end of a `use EDL` line or alone on the line above it, "
    "and name classes the policy declares in [solution] trusted / --trusted",
)
KRN_UNTYPED = define_code(
    "KRN002", "note", "kernel parameter without a documented type",
    "the decision function reads the value the message carries, unchecked, and the prover cannot reason "
    "about it (its answers become UNKNOWN); pass --sdk DIR to use the SDK's IDL types",
)

#: Documentation versions the data covers.
DOC_VERSIONS = ("1.1", "1.2", "1.3", "1.4")

#: The danger classes, as a short phrase each (our words for what the documentation
#: lists per method).  Order matters only for display.
DANGER_CLASSES: Mapping[str, str] = MappingProxyType({
    "kernel-memory": "exhaust kernel memory by creating kernel objects",
    "ram": "exhaust RAM",
    "handles": "use up a process's handle values",
    "cpu": "monopolise processor time",
    "dos": "stop, freeze or terminate other threads, processes or the system",
    "covert-channel": "set up a covert channel",
    "device": "take control of an I/O device",
    "privilege": "gain privileges in the policy's eyes",
    "code": "load or run code",
    "info": "read what other processes or the system should not disclose",
    "time": "change the system time",
    "other": "other misuse (see the method's reason)",
})


@dataclass(frozen=True, slots=True)
class KernelMethod:
    """One method of a kernel endpoint, as the documentation describes it.

    ``danger`` is ``()`` for a method documented as safe and ``None`` when the
    documentation does not classify it (an undocumented method seen in a real
    build): the rules treat "unknown" as neither safe nor dangerous and say so.
    """

    interface: str
    endpoint: str
    name: str
    versions: tuple[str, ...]
    in_params: tuple[str, ...]
    out_params: tuple[str, ...]
    summary: str
    danger: tuple[str, ...] | None
    reason: str = ""
    notes: str = ""
    incomplete: str = ""          # what the documentation did not let us read, if anything

    @property
    def params_known(self) -> bool:
        """Whether the parameter names are known (every documented method has at least ``rc``)."""
        return bool(self.in_params or self.out_params)

    @property
    def documented(self) -> bool:
        return bool(self.versions)

    @property
    def dangerous(self) -> bool:
        return bool(self.danger)

    @property
    def label(self) -> str:
        """``vmm.VMM.Allocate``: how reports name a kernel method (endpoint, then method)."""
        return f"{self.endpoint or self.interface}.{self.name}"

    def danger_text(self) -> str:
        """The danger as a reader sees it: classes and reason, "safe" or "not classified"."""
        if self.danger is None:
            return "not classified by the documentation"
        if not self.danger:
            return "safe"
        text = ", ".join(self.danger)
        return f"{text}: {self.reason}" if self.reason else text


@dataclass(frozen=True, slots=True)
class KernelEndpoint:
    """One kernel endpoint: ``name`` is empty when no documentation page names it."""

    name: str
    interface: str
    summary: str
    page: str
    versions: tuple[str, ...]
    methods: tuple[KernelMethod, ...]
    notes: str = ""

    @property
    def component(self) -> str:
        """The component instance in ``Core.edl`` (``vmm`` of ``vmm.VMM``)."""
        return self.name.split(".")[0] if "." in self.name else ""


@dataclass(frozen=True)
class KernelDescription:
    """The whole built-in description: endpoints, and methods by (interface, name)."""

    endpoints: tuple[KernelEndpoint, ...]
    methods: Mapping[tuple[str, str], KernelMethod]

    def method(self, interface: str, name: str) -> KernelMethod | None:
        return self.methods.get((interface, name))

    def endpoint(self, name: str) -> KernelEndpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)

    @property
    def named_endpoints(self) -> tuple[KernelEndpoint, ...]:
        """Endpoints a policy can address by name (the documentation names them)."""
        return tuple(e for e in self.endpoints if e.name)

    def dangerous(self) -> tuple[KernelMethod, ...]:
        return tuple(m for m in self.methods.values() if m.dangerous)


class KernelDataError(ValueError):
    """A file of ``data/kernel`` is malformed: a bug of this package, caught by its tests."""


def _strings(value, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise KernelDataError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(value)


def _method(item: dict, interface: str, endpoint: str, where: str) -> KernelMethod:
    name = item.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise KernelDataError(f"{where}: a method needs a name, got {name!r}")
    where = f"{where}: {name}"
    danger = item.get("danger")
    if danger is not None:
        danger = _strings(danger, f"{where}.danger")
        unknown = [d for d in danger if d not in DANGER_CLASSES]
        if unknown:
            raise KernelDataError(f"{where}: unknown danger class {unknown[0]!r}")
    versions = _strings(item.get("versions", []), f"{where}.versions")
    if any(v not in DOC_VERSIONS for v in versions):
        raise KernelDataError(f"{where}: versions must be among {DOC_VERSIONS}")
    incomplete = str(item.get("incomplete", ""))
    if versions and danger is None and not incomplete:
        raise KernelDataError(f"{where}: a documented method needs a danger list ([] when safe) or `incomplete`")
    return KernelMethod(
        interface=interface, endpoint=endpoint, name=name, versions=versions,
        in_params=_strings(item.get("in", []), f"{where}.in"), out_params=_strings(item.get("out", []), f"{where}.out"),
        summary=str(item.get("summary", "")), danger=danger, reason=str(item.get("reason", "")),
        notes=str(item.get("notes", "")), incomplete=incomplete,
    )


def parse_endpoint(data: dict, where: str) -> KernelEndpoint:
    """One endpoint file's table as a :class:`KernelEndpoint` (raises :class:`KernelDataError`)."""
    interface = data.get("interface")
    if not isinstance(interface, str) or not interface.startswith("kl.core."):
        raise KernelDataError(f"{where}: interface must be kl.core.<Name>, got {interface!r}")
    name = data.get("endpoint", "")
    if not isinstance(name, str) or (name and name.count(".") != 1):
        raise KernelDataError(f"{where}: endpoint must be component.Endpoint or empty, got {name!r}")
    methods = tuple(_method(m, interface, name, where) for m in data.get("method", []))
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise KernelDataError(f"{where}: a method is listed twice")
    return KernelEndpoint(name=name, interface=interface, summary=str(data.get("summary", "")),
                          page=str(data.get("page", "")), versions=_strings(data.get("versions", []), where),
                          methods=methods, notes=str(data.get("notes", "")))


@lru_cache(maxsize=1)
def kernel_description() -> KernelDescription:
    """The built-in description, read once from the package's ``data/kernel/*.toml``."""
    folder = resources.files("policy_lang").joinpath("data/kernel")
    endpoints = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            endpoints.append(parse_endpoint(tomllib.loads(entry.read_text("utf-8")), f"data/kernel/{entry.name}"))
    endpoints.sort(key=lambda e: (e.name == "", e.name.lower(), e.interface))
    methods = {(m.interface, m.name): m for e in endpoints for m in e.methods}
    return KernelDescription(tuple(endpoints), MappingProxyType(methods))


def kernel_method(interface: str | None, method: str | None) -> KernelMethod | None:
    """The documented facts about ``interface.method`` (either route: built in or ``--sdk``)."""
    if not interface or not method:
        return None
    return kernel_description().method(interface, method)


#: The parameter name standing for "any": a method whose parameters nobody documents.
ANY_PARAM = "*"


def _untyped(m: KernelMethod) -> tuple[tuple[str, str], ...]:
    """The method's parameters by name; "any name" where the documentation was not fully read."""
    known = tuple((p, "in") for p in m.in_params) + tuple((p, "out") for p in m.out_params)
    if not m.params_known or m.incomplete:
        return known + ((ANY_PARAM, "in"), (ANY_PARAM, "out"))
    return known


def _interface(ep: KernelEndpoint) -> InterfaceDef:
    methods = tuple(MethodDef(m.name, i, (), None, untyped=_untyped(m)) for i, m in enumerate(ep.methods))
    return InterfaceDef(name=ep.interface, methods=methods, span=None)


@lru_cache(maxsize=1)
def builtin_kernel_class() -> ProcessClass:
    """``kl.core.Core`` from the built-in description: every named endpoint, methods by name.

    Its RIIDs and MIDs are this description's order, not the real module's, so events
    to it must name endpoints and methods (the decision function refuses numbers).
    """
    eps = tuple(Endpoint(e.name, _interface(e), i, None, (e.interface,))
                for i, e in enumerate(kernel_description().named_endpoints))
    return ProcessClass(KERNEL_CLASS, eps, None, None, form="builtin", opaque=False, edl_name=KERNEL_CLASS)


def builtin_kernel_interfaces() -> dict[str, InterfaceDef]:
    """The built-in kernel interfaces by name, for ``interface=kl.core.Sync`` selectors."""
    return {ep.interface.name: ep.interface for ep in builtin_kernel_class().endpoints}


def is_builtin_kernel(cls: ProcessClass | None) -> bool:
    """The class is the built-in description (not an SDK's ``Core.edl``)."""
    return cls is not None and cls.name == KERNEL_CLASS and cls.form == "builtin"
