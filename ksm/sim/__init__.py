"""The runtime IPC simulator (issue 6): processes exchange Call/Recv/Reply through the
same decision function the other back ends use.

``kernel``  processes, threads (greenlets), channels, the blocking kernel calls, the
            seeded scheduler, deadlock detection and the trace.
"""
from .kernel import IpcError, Kernel, Outcome, Rc, Request, ServerError

__all__ = ["IpcError", "Kernel", "Outcome", "Rc", "Request", "ServerError"]
