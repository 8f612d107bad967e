"""Processes that never start, and channels whose messages can never pass.

Start-up rules read the decision function's own start-up (the kernel, Einit, then
every init.yaml entity, as at boot).  Channel rules ask, per static channel and per
method the server serves, whether a request (and its response) can ever be granted:
first cheaply (no binding applies: denied; a default message granted: granted), then
with the Z3 prover.  A finding is made only on a proof; an answer the prover cannot
give in ``timeout_ms`` makes no finding.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from policy_lang.diagnostics import Diagnostic, Span
from policy_lang.solution import EINIT_CLASS, KERNEL_CLASS, Channel, Endpoint, message_params
from policy_lang.types import MethodDef

from ...events import Event
from ...flows.labels import DENIED, GRANTED
from ...structure import default_value
from ..catalogue import Example, rule
from ..context import LintContext

_SPARE_INIT = (
    "entities:\n"
    "  - name: demo.Client\n"
    "    connections:\n"
    "      - target: demo.Server\n"
    "        id: store\n"
    "      - target: demo.Logger\n"
    "        id: log\n"
    "      - target: demo.Spare\n"
    "        id: spare\n"
    "  - name: demo.Server\n"
    "    connections:\n"
    "      - target: demo.Logger\n"
    "        id: log\n"
    "  - name: demo.Logger\n"
    "  - name: demo.Spare\n"
)


def top_policy_span(ctx: LintContext) -> Span | None:
    """Where a finding about the policy as a whole points: line 1 of the top-level policy file."""
    for f in ctx.solution.files:
        if f.language == "psl":
            return Span(f.path, 1, 1)
    return None


# ------------------------------------------------------------------ start-up
@rule(
    "LNT001", "edl-never-started", "warning", "`use EDL` of a class that nothing starts",
    "start it from init.yaml, grant its start with an `execute dst=CLASS` binding if another process "
    "starts it, or remove the `use EDL` line and the bindings for it",
    category="processes",
    why="The policy declares a process class that init.yaml never starts and that no `execute` binding "
        "names as `dst`, so no process of it can ever exist. Its bindings are dead, and a class that "
        "was meant to run (a renamed entity, a forgotten init.yaml entry) silently does not.",
    bad=Example("use demo.prelude._\nuse EDL demo.Spare\n"),
    good=Example("use demo.prelude._\nuse EDL demo.Spare\n\n"
                 "request src=demo.Client dst=demo.Spare endpoint=log method=Write { grant () }\n"
                 "response src=demo.Spare { grant () }\n",
                 init=_SPARE_INIT),
)
def edl_never_started(ctx: LintContext) -> Iterator[Diagnostic]:
    if not ctx.has_init:
        return
    for name, span in ctx.solution.edl_uses.items():
        if name in ctx.started_classes or name in ctx.execute_targets:
            continue
        yield ctx.finding("LNT001", f"{name} is declared with `use EDL` but init.yaml never starts it "
                                    "and no `execute` binding names it", span)


@rule(
    "LNT002", "execute-denied", "error", "init.yaml starts a process the policy does not let start",
    "grant its start: `execute src=Einit, dst=CLASS { grant () }` (or the rules its start needs)",
    category="processes",
    why="Einit starts every init.yaml entity, and KSM decides each start as an `execute` event. If the "
        "policy denies it, the process never runs and every channel to or from it is dead: the "
        "solution boots without it.",
    bad=Example("use nk.base._\n\nuse EDL kl.core.Core\nuse EDL Einit\nuse EDL demo.Client\n"
                "use EDL demo.Server\nuse EDL demo.Logger\n\nexecute: kl.core.Execute\n\n"
                "execute src=kl.core.Core { grant () }\n"
                "execute src=Einit dst=demo.Client { grant () }\n"
                "execute src=Einit dst=demo.Logger { grant () }\n\n"
                "request src=demo.Client dst=demo.Logger endpoint=log method=Write { grant () }\n"
                "response src=demo.Logger { grant () }\nerror { grant () }\n",
                init="entities:\n  - name: demo.Client\n    connections:\n      - target: demo.Logger\n"
                     "        id: log\n  - name: demo.Server\n  - name: demo.Logger\n"),
    good=Example("use demo.prelude._\n"),
)
def execute_denied(ctx: LintContext) -> Iterator[Diagnostic]:
    boot = ctx.boot
    if not all(d.granted for d in boot[:2]):
        return                                  # LNT003: nothing else can start
    for inst, d in zip(ctx.solution.instances, boot[2:]):
        if not d.granted:
            who = inst.task if inst.task == inst.cls else f"{inst.task} ({inst.cls})"
            yield ctx.finding("LNT002", f"init.yaml starts {who} but the policy denies its start: {d.reason}",
                              inst.span)


@rule(
    "LNT003", "startup-denied", "error", "the kernel or Einit cannot start",
    "add `execute src=kl.core.Core, dst=kl.core.Core { grant () }` and "
    "`execute src=kl.core.Core, dst=Einit { grant () }` (or a plain `execute { grant () }`)",
    category="processes",
    why="The kernel's own start and its start of Einit are `execute` events like any other: a policy "
        "with no binding for them (often lost while splitting a policy into files) denies them, and "
        "the solution does not boot at all.",
    bad=Example("use nk.base._\n\nuse EDL kl.core.Core\nuse EDL Einit\nuse EDL demo.Client\n"
                "use EDL demo.Server\nuse EDL demo.Logger\n\nexecute: kl.core.Execute\n\n"
                "execute src=Einit { grant () }\n"),
    good=Example("use demo.prelude._\n"),
)
def startup_denied(ctx: LintContext) -> Iterator[Diagnostic]:
    kernel, einit = ctx.boot[:2]
    where = top_policy_span(ctx)
    if not kernel.granted:
        yield ctx.finding("LNT003", f"the kernel's start ({KERNEL_CLASS}) is denied: {kernel.reason}; "
                                    "nothing can run", where)
    elif not einit.granted:
        yield ctx.finding("LNT003", f"the kernel's start of {EINIT_CLASS} is denied: {einit.reason}; "
                                    "no init.yaml entity can start", where)


# ------------------------------------------------------------------ channels
@dataclass(frozen=True)
class Hop:
    """One method a static channel can carry, between two started processes."""

    channel: Channel
    client: object            # ksm.verify.universe.Proc
    server: object
    endpoint: Endpoint
    method: MethodDef

    def describe(self) -> str:
        return f"{self.endpoint.name}.{self.method.name}"


def channel_hops(ctx: LintContext) -> Iterator[tuple[Channel, list[Hop]]]:
    """Each static channel between started processes, with every method its server serves."""
    procs = {p.task: p for p in ctx.prover.universe.procs}
    for ch in ctx.solution.channels:
        client, server = procs.get(ch.client), procs.get(ch.server)
        cls = ctx.solution.classes.get(server.cls) if server else None
        if client is None or cls is None or cls.opaque or server.cls == KERNEL_CLASS:
            continue
        yield ch, [Hop(ch, client, server, ep, m) for ep in cls.endpoints for m in ep.interface.methods]


def hop_status(ctx: LintContext, kind: str, hop: Hop) -> str:
    """granted | denied | unknown for ``kind`` (request: client to server; response/error: back).

    Memoised per lint run: the dead-channel and response rules ask about the same hops.
    """
    key = ("hop", kind, hop.client.sid, hop.server.sid, hop.endpoint.name, hop.method.name)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = _hop_status(ctx, kind, hop)
    return found


def _hop_status(ctx: LintContext, kind: str, hop: Hop) -> str:
    src, dst = (hop.client, hop.server) if kind == "request" else (hop.server, hop.client)
    key = (kind, src.cls, dst.cls, hop.endpoint.name, hop.endpoint.interface.name, hop.method.name)
    module = ctx.prover.booted()
    # The decision function's compiled program of the key: built from its binding index
    # (by kind, src, dst) and cached, so no hop walks every binding of the policy.
    if not module._program(key).steps:
        return DENIED
    message = {p.name: default_value(p.type) for p in message_params(hop.method, kind)}
    ctor = {"request": Event.request, "response": Event.response, "error": Event.error}[kind]
    if module.decide(ctor(src.ref, dst.ref, hop.endpoint.name, hop.method.name, message)):
        return GRANTED
    return ctx.labeller.label(kind, src, dst, hop.endpoint.name, hop.method.name).status


@rule(
    "LNT005", "dead-channel", "warning", "static channel whose requests can never be granted",
    "grant the requests the client needs on it, or remove the connection from init.yaml",
    category="processes",
    why="init.yaml creates the channel at start-up, but for every method the server serves the policy "
        "provably denies the request: the channel is dead. Either a binding is missing (or names the "
        "wrong endpoint), or the connection is left over and only widens what a compromised client "
        "could try.",
    bad=Example("use demo.prelude._\nuse EDL demo.Spare\n", init=_SPARE_INIT),
    good=Example("use demo.prelude._\nuse EDL demo.Spare\n\n"
                 "request src=demo.Client dst=demo.Spare endpoint=log method=Write { grant () }\n"
                 "response src=demo.Spare { grant () }\n",
                 init=_SPARE_INIT),
)
def dead_channel(ctx: LintContext) -> Iterator[Diagnostic]:
    for ch, hops in channel_hops(ctx):
        if hops and all(hop_status(ctx, "request", h) == DENIED for h in hops):
            served = ", ".join(h.describe() for h in hops[:4]) + (", ..." if len(hops) > 4 else "")
            yield ctx.finding("LNT005", f"channel {ch.id} ({ch.client} -> {ch.server}) is dead: the policy "
                                        f"denies every request on it ({served})", ch.span)


@rule(
    "LNT006", "response-never-granted", "warning",
    "request can be granted but its response can never be",
    "grant the response (`response src=SERVER dst=CLIENT ... { grant () }`), or stop granting the request",
    category="processes",
    why="A granted request makes the server do the work, but if the policy denies every response to it "
        "the client always gets an error instead of the result: the call can never succeed, and the "
        "server's side effects happen anyway. The same holds for error replies of methods that declare "
        "error parameters, when the policy has `error` bindings but none lets these through.",
    bad=Example("use demo.prelude._\n\n"
                "request src=demo.Client dst=demo.Logger endpoint=log method=Write { grant () }\n"
                "response src=demo.Logger dst=demo.Client { deny () }\n"),
    good=Example("use demo.prelude._\n\n"
                 "request src=demo.Client dst=demo.Logger endpoint=log method=Write { grant () }\n"),
)
def response_never_granted(ctx: LintContext) -> Iterator[Diagnostic]:
    has_error_bindings = any(b.event == "error" for b in ctx.solution.bindings)
    for ch, hops in channel_hops(ctx):
        for h in hops:
            # The reply is asked first: it is usually granted by a plain probe, and then the
            # request (which may need Z3) need not be asked at all.
            if hop_status(ctx, "response", h) == DENIED:
                what = "response"
            elif has_error_bindings and h.method.error_params and hop_status(ctx, "error", h) == DENIED:
                what = "error reply"
            else:
                continue
            if hop_status(ctx, "request", h) == GRANTED:
                yield ctx.finding("LNT006", f"{ch.client} -> {ch.server} {h.describe()}: the request can be "
                                            f"granted but every {what} to it is denied", ch.span)


__all__ = ["Hop", "channel_hops", "hop_status", "top_policy_span"]
