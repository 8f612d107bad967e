"""The KasperskyOS SDK's public names: what a solution may name without containing it.

Real solutions are built with the SDK, and the SDK (or its CMake build) supplies
pieces that are not in the solution's repository: system programs (VFS, network,
drivers, name server, DCM...), the components and interfaces those programs share
with the solution's own EDLs, ready-made policy fragments (``use kl.core.DCM._``) and
the values of the build's template placeholders (``@INIT_EXTERNAL_ENTITIES@``).

The catalogue (``data/sdk_catalogue.toml``) lists the names the public documentation
and public solutions show, each with a one-line summary written for this project.
It lets the front end say "this is the SDK's VFS network program, loaded as opaque"
once, as a note, instead of a warning per use, while a name that only *looks* like
the SDK's (``kl.Vfsnet``) is still warned about.  Nothing here describes endpoints:
with ``--sdk DIR`` the SDK's own EDL/CDL/IDL files are read instead.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

#: Namespaces of programs, components, interfaces and fragments the SDK ships.  A
#: name in one of them that the catalogue does not list is still taken to come from
#: outside the solution (a newer SDK, a third-party package), with a warning.
SDK_PREFIXES = ("kl.", "kos.")


@dataclass(frozen=True, slots=True)
class SdkEntry:
    """One public SDK name: ``kind`` is program, component, interface, package or fragment."""

    kind: str
    name: str
    summary: str


@dataclass(frozen=True)
class Catalogue:
    entries: dict[str, SdkEntry]                    # by name; a name listed under several kinds: the first
    fragment_roots: frozenset[str]                 # first segments of fragment names (kl, nonsecurity, logrr)
    placeholders: tuple[tuple[re.Pattern[str], str], ...]
    by_kind: dict[tuple[str, str], SdkEntry]       # by (kind, name): kl.core.DCM is a program and a fragment

    def get(self, name: str, kind: str | None = None) -> SdkEntry | None:
        """The entry for ``name``; with ``kind``, the one of that kind when the name has several."""
        return (self.by_kind.get((kind, name)) if kind else None) or self.entries.get(name)

    def placeholder(self, name: str) -> str | None:
        """Summary of a placeholder the SDK's build fills (``INIT_Client_ENTITY_CONNECTIONS+``), else None."""
        for pattern, summary in self.placeholders:
            if pattern.fullmatch(name):
                return summary
        return None


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    data = tomllib.loads(resources.files("policy_lang").joinpath("data/sdk_catalogue.toml").read_text("utf-8"))
    entries: dict[str, SdkEntry] = {}
    by_kind: dict[tuple[str, str], SdkEntry] = {}
    for kind in ("program", "component", "interface", "package", "fragment"):
        for item in data.get(kind, []):
            entry = by_kind[(kind, item["name"])] = SdkEntry(kind, item["name"], item["summary"])
            entries.setdefault(item["name"], entry)
    roots = frozenset(item["name"].split(".")[0] for item in data.get("fragment", []))
    placeholders = tuple((re.compile(item["pattern"]), item["summary"]) for item in data.get("placeholder", []))
    return Catalogue(entries, roots, placeholders, by_kind)


def sdk_entry(name: str, kind: str | None = None) -> SdkEntry | None:
    return catalogue().get(name, kind)


def is_sdk_name(name: str) -> bool:
    """A name the SDK (not the solution) provides: listed, or in an SDK namespace."""
    return name.startswith(SDK_PREFIXES) or name in catalogue().entries


def placeholder_summary(name: str) -> str | None:
    return catalogue().placeholder(name)
