"""Pieces a solution names but does not contain: loaded as opaque, reported once each.

A real solution is built with the KasperskyOS SDK.  The SDK and the build supply
system programs, their components and interfaces, policy fragments and template
values that are not in the solution's repository.  Refusing such a solution would
refuse almost every real one, so the front end loads what it cannot see as
*opaque* (it exists; what it contains is unknown) and says so once per name:

* a name from the bundled SDK catalogue is a note (``SDK001``): expected, nothing to fix;
* any other name in an SDK namespace is a warning (``SDK002``): maybe a newer SDK,
  maybe a typo.

Nothing that depends on an opaque piece cascades into an error: a binding on an
opaque endpoint stays in the model, unchecked, and the back ends treat it soundly
(docs/semantics.md, "Opaque pieces").  The pieces are kept on the solution
(:attr:`policy_lang.solution.Solution.outside`) so reports can list them.
"""
from __future__ import annotations

from .diagnostics import Diagnostics, Span, define_code
from .sdk_catalogue import sdk_entry
from .solution import OutsidePiece

SDK_KNOWN = define_code(
    "SDK001", "note", "SDK piece outside the solution: loaded as opaque",
    "nothing to fix; pass --sdk DIR (the SDK's sysroot-*-kos/include folder) to check it against the "
    "SDK's own descriptions",
)
SDK_UNKNOWN = define_code(
    "SDK002", "warning", "piece outside the solution and not a known SDK name: loaded as opaque",
    "if the SDK or the build supplies it, pass --sdk DIR or -I DIR (the folder that holds it); "
    "otherwise check its spelling",
)

# What "opaque" means for each kind of piece, as the diagnostic says it.
_CONSEQUENCE = {
    "program": "loaded as opaque, its endpoints and messages are not checked",
    "component": "loaded as opaque, the endpoints it adds are not checked",
    "interface": "loaded as opaque, its methods and parameters are not checked",
    "package": "loaded as opaque, the types it defines are unknown, so parameters of those types are left out",
    "fragment": "loaded as opaque, the classes, objects and bindings it declares are taken as given",
    "fragment-builtin": "this toolkit reads its own implementation of it",
}
_KIND_WORD = {
    "program": "SDK program", "component": "SDK component", "interface": "SDK interface",
    "package": "SDK IDL package", "fragment": "SDK policy fragment", "fragment-builtin": "SDK policy fragment",
}


class Outside:
    """Collects the opaque pieces of one load, reporting each name the first time it is met."""

    def __init__(self, diags: Diagnostics):
        self.diags = diags
        self.pieces: dict[str, OutsidePiece] = {}

    def report(self, name: str, kind: str, at: Span | None, where: str = "") -> OutsidePiece:
        """Record ``name`` (a ``kind`` of piece) as outside the solution; diagnose it once.

        ``where`` adds how it came in ("named as a connection target").
        """
        piece = self.pieces.get(name)
        if piece is not None:
            return piece
        entry = sdk_entry(name, kind.split("-")[0])
        known = entry is not None
        piece = self.pieces[name] = OutsidePiece(name, kind, known, at)
        how = f" ({where})" if where else ""
        if known:
            self.diags.add(SDK_KNOWN, f"{name}{how}: {_KIND_WORD[kind]}, {entry.summary}; not in the solution: "
                                      f"{_CONSEQUENCE[kind]}", at)
        else:
            self.diags.add(SDK_UNKNOWN, f"{name}{how} is not in the solution and is not a name this toolkit knows "
                                        f"from the SDK: {_CONSEQUENCE[kind]}", at)
        return piece

    def all(self) -> tuple[OutsidePiece, ...]:
        return tuple(self.pieces.values())
