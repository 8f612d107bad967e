"""What the KasperskyOS SDK provides without any file in the solution.

``kl.core.Core`` (the kernel), ``Einit`` (the initializing program generated from
init.yaml) and the execute interface ``kl.core.Execute`` exist in every solution.
The kernel's endpoints live in SDK descriptions we do not ship, so the kernel is the
built-in description of :mod:`policy_lang.kernel` unless ``--sdk DIR`` (or an include
folder) holds the SDK's own ``kl/core/Core.edl``.  The other public names of the SDK
are in :mod:`policy_lang.sdk_catalogue`.
"""
from __future__ import annotations

from .solution import EINIT_CLASS, EXECUTE_INTERFACE, ProcessClass
from .types import InterfaceDef, MethodDef

EINIT = ProcessClass(EINIT_CLASS, (), None, None, form="builtin", opaque=False, edl_name=EINIT_CLASS)


def builtin_interfaces() -> dict[str, InterfaceDef]:
    """``kl.core.Execute``: one method ``main`` with no parameters (reserved)."""
    main = MethodDef(name="main", index=0, params=(), span=None)
    return {EXECUTE_INTERFACE: InterfaceDef(name=EXECUTE_INTERFACE, methods=(main,), span=None)}
