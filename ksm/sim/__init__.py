"""The runtime IPC simulator: processes exchange Call/Recv/Reply through the same
decision function the other back ends use.

``kernel``     processes, threads (greenlets), channels, the blocking kernel calls,
               run-time channels, the seeded scheduler, deadlock detection
``wire``       the byte layout of messages (constant part and arena) from the IDL
``transport``  client proxies and server dispatchers, as nk-gen-c generates them
``behaviour``  processes written as Python classes, one per process class
``scenario``   scripted runs from YAML
``trace``      timeline, JSON lines, Perfetto export, per-channel summary
``replay``     counterexamples of ``ksm prove`` / ``ksm flows`` re-enacted
``taint``      observed flows checked against ``never flow`` properties
``session``    one ``ksm simulate`` run and its report
"""
from .behaviour import Behaviour
from .codes import SimInputError
from .kernel import IpcError, Kernel, Outcome, Rc, Request, ServerError
from .transport import Proxy

__all__ = ["Behaviour", "IpcError", "Kernel", "Outcome", "Proxy", "Rc", "Request", "ServerError",
           "SimInputError"]
