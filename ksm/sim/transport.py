"""Client proxies and server dispatchers built from the EDL/CDL/IDL, as nk-gen-c builds
them for C.

A :class:`Proxy` stands for one endpoint of the server at the other end of a
channel: it has one Python method per interface method, taking the in-parameters
(by position in IDL order, or by name), marshalling them into the wire layout and
returning the out-parameters as a dictionary.  A denied or failed exchange raises
:class:`~ksm.sim.kernel.IpcError`; an error reply raises
:class:`~ksm.sim.kernel.ServerError` with the error-parameters.

:func:`dispatch` is the server's loop: receive, find the implementation by the
request's RIID (endpoint) and MID (method), call it with the in-parameters, reply
with what it returns.  An implementation returns a dictionary of out-parameters, a
bare value when the method has exactly one out-parameter, or None when it has none;
raising :class:`ServerError` sends an error reply instead, and so, with zero
error-parameters, does any other exception (see :func:`handle`): every request
the dispatcher receives gets exactly one answer.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from policy_lang.solution import Endpoint
from policy_lang.types import MethodDef

from ..structure import default_value
from .kernel import IpcError, Kernel, Request, ServerError


class Proxy:
    """The client side of one endpoint on one channel (``proxy.Ping(value=3)``)."""

    def __init__(self, kernel: Kernel, channel: str, endpoint: Endpoint):
        self.kernel, self.channel, self.endpoint = kernel, channel, endpoint
        for m in endpoint.interface.methods:
            setattr(self, m.name, self._method(m))

    def _method(self, m: MethodDef) -> Callable[..., dict]:
        names = tuple(p.name for p in m.in_params)
        kernel, channel, ep, name = self.kernel, self.channel, self.endpoint.name, m.name
        count = len(names)

        def call(*args: Any, **kw: Any) -> dict:
            if len(args) > count:
                raise TypeError(f"{ep}.{name}() takes {count} in-parameters ({', '.join(names)})")
            message = dict(zip(names, args))
            message.update(kw)
            return kernel.call(channel, ep, name, message)

        if count == 1:
            # The common case, without zip: one parameter, by position or by name.
            (only,) = names

            def call(*args: Any, **kw: Any) -> dict:    # noqa: F811 - the general one above, specialised
                if not kw and len(args) == 1:
                    return kernel.call(channel, ep, name, {only: args[0]})
                if len(args) > count:
                    raise TypeError(f"{ep}.{name}() takes {count} in-parameters ({', '.join(names)})")
                message = {only: args[0]} if args else {}
                message.update(kw)
                return kernel.call(channel, ep, name, message)

        call.__name__ = name
        call.__doc__ = f"{ep}.{name}({', '.join(names)}) on channel {channel}"
        return call

    def __repr__(self) -> str:
        return f"<Proxy {self.endpoint.name} ({self.endpoint.interface.name}) on {self.channel}>"


def proxy(kernel: Kernel, task: str, channel: str, endpoint: str | None = None) -> Proxy:
    """A proxy for ``task``'s ``channel``: ``endpoint`` may be left out when the
    server's class has exactly one."""
    ch = kernel.channels.get((task, channel))
    if ch is None:
        raise ValueError(f"{task} has no channel {channel!r}")
    cls = kernel.process_class(ch.server)
    endpoints = cls.endpoints if cls is not None else ()
    if endpoint is None:
        if len(endpoints) != 1:
            names = ", ".join(e.name for e in endpoints) or "none"
            raise ValueError(f"{ch.server} has {len(endpoints)} endpoints ({names}): name the one to call")
        return Proxy(kernel, channel, endpoints[0])
    ep = next((e for e in endpoints if e.name == endpoint), None)
    if ep is None:
        names = ", ".join(e.name for e in endpoints) or "none"
        raise ValueError(f"{ch.server} has no endpoint {endpoint!r} (it has: {names})")
    return Proxy(kernel, channel, ep)


# Results that are certainly not mappings: checked by type first, because
# ``isinstance(x, Mapping)`` on a plain value walks the ABC registry (a microsecond).
_NOT_MAPPINGS = frozenset({int, str, bytes, bool, float, list, tuple, type(None)})


def out_message(method: MethodDef, result: Any) -> dict:
    """What an implementation returned, as the out-parameters of ``method``."""
    if type(result) is dict or (type(result) not in _NOT_MAPPINGS and isinstance(result, Mapping)):
        return dict(result)
    outs = method.out_params
    if result is None and not outs:
        return {}
    if len(outs) == 1:
        return {outs[0].name: result}
    raise TypeError(f"{method.name} has out-parameters {', '.join(p.name for p in outs) or 'none'}: "
                    f"return a dictionary of them (got {type(result).__name__})")


def failure_params(req: Request) -> dict:
    """The error-parameters of a request whose handler failed: each at its zero
    value (0, empty string, empty sequence; a union's first member).  A handler
    that wants others raises :class:`ServerError` with them."""
    method = req.address.method if req.address is not None else None
    return {p.name: default_value(p.type) for p in method.error_params} if method is not None else {}


def handle(kernel: Kernel, req: Request, implementations: Mapping[str, Any]) -> None:
    """Answer one request with the implementation of its endpoint and method.

    As in an nk-gen-c dispatcher, the request is always answered:

    * the implementation returns: a response with its out-parameters;
    * it raises :class:`ServerError`: an error reply with those error-parameters;
    * it raises anything else (an :class:`IpcError` from a call of its own that it
      did not catch, or a bug): an error reply with the error-parameters at their
      zero values (:func:`failure_params`), so the caller's ``call`` fails instead
      of waiting for ever.  A bug (anything but :class:`IpcError`) is then raised
      again: the thread is recorded as crashed.

    The security module decides the error reply like any other; if it denies it,
    the caller's ``call`` fails with that code.  Raises :class:`IpcError` when the
    kernel refuses the reply (the caller has then had its answer).
    """
    try:
        impl = implementations.get(req.endpoint)
        fn = getattr(impl, req.method, None) if impl is not None and req.method else None
        if fn is None:
            raise NotImplementedError(f"no implementation of {req.endpoint}.{req.method} "
                                      f"(server {kernel.current.task if kernel.current else '?'})")
        result = fn(**req.message)
        addr = req.address
        if addr is None:
            message = dict(result or {})
        elif type(result) is dict:
            message = dict(result)
        elif type(result) in _NOT_MAPPINGS and len(addr.outs) == 1:
            message = {addr.outs[0]: result}
        else:
            message = out_message(addr.method, result)
    except ServerError as exc:
        kernel.reply(req, exc.params, error=True)
        return
    except Exception as exc:          # not GreenletExit or SimTimeout: those belong to the scheduler
        why = f"IpcError {exc.rc.sdk_name}" if isinstance(exc, IpcError) else f"{type(exc).__name__}: {exc}"
        kernel.note(f"{req.endpoint}.{req.method} failed ({why}); exchange {req.id} is answered with an error")
        try:
            kernel.reply(req, failure_params(req), error=True)
        except IpcError:
            pass                      # the error reply was refused; the caller has its code
        if isinstance(exc, IpcError):
            return                    # as C code returning the failed call's code: not a crash
        raise
    kernel._reply(req, message, "response")        # reply() without its copy: the message is made here


def dispatch(kernel: Kernel, implementations: Mapping[str, Any], requests: int | None = None) -> None:
    """The server loop: receive and answer requests (forever, or ``requests`` of them).

    A request whose reply the security module denies does not stop the loop: the
    server's ``reply`` fails with the code, as in C, and the next request is served.
    Neither does a handler whose own call failed (:func:`handle` answers with an
    error reply); a handler with a bug answers with an error reply too, and then
    crashes its thread.
    """
    served = 0
    while requests is None or served < requests:
        req = kernel.recv()
        try:
            handle(kernel, req, implementations)
        except IpcError:
            pass                           # the reply was refused; recorded in the trace
        served += 1
