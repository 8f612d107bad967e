"""Least privilege on kernel calls: the documentation's requirements, checked.

The KasperskyOS documentation divides the kernel's methods into safe and
*potentially dangerous* ones (a compromised process could exhaust memory, hijack a
device, open a covert channel...) and asks that a dangerous method be granted only
to trusted components that need it, or under conditions that limit its misuse.
These rules read the kernel access table (:mod:`ksm.kernel_access`: per class and
kernel method, granted always, under conditions or never) and the trust marks
(``// ksm: trusted`` on a ``use EDL`` line, or ``[solution] trusted``; every other
class is untrusted).  A verdict Z3 cannot give is "conditional", which no rule here
reports on, so a finding is always backed by a proof of the unconditional grant.
"""
from __future__ import annotations

from typing import Iterator

from policy_lang.diagnostics import Diagnostic, Span
from policy_lang.solution import KERNEL_CLASS, BindingDef

from ...kernel_access import ALWAYS, PROCESS_CREATION, KernelAccess, KernelCall, kernel_access, may_start_processes
from ..catalogue import Example, rule
from ..context import LintContext

# How many methods a finding names before it says "and N more".
_SHOWN = 6

_KERNEL_PRELUDE = (
    "use nk.base._\n\n"
    "use EDL kl.core.Core\nuse EDL Einit\nuse EDL demo.Client\nuse EDL demo.Server\nuse EDL demo.Logger\n\n"
    "execute: kl.core.Execute\n\n"
    "execute { grant () }\n"
    "response src=kl.core.Core { grant () }\n"
    "request src=demo.Client dst=demo.Server endpoint=core.store method=Get { grant () }\n"
    "request dst=demo.Logger endpoint=log method=Write { grant () }\n"
    "response { grant () }\n"
    "error { grant () }\n"
)
_EVERYDAY = (
    "request dst=kl.core.Core {\n"
    "    match interface=kl.core.Sync { grant () }\n"
    "    match endpoint=vmm.VMM, method=Free { grant () }\n"
    "}\n"
)


def _access(ctx: LintContext) -> KernelAccess | None:
    found = ctx.memo.get("kernel-access")
    if found is None:
        found = ctx.memo["kernel-access"] = kernel_access(ctx.solution)
    return found


# Which dangers a finding names first: taking over the system before exhausting it.
_RANK = {d: i for i, d in enumerate(("privilege", "code", "device", "dos", "covert-channel", "time", "info", "cpu",
                                     "handles", "kernel-memory", "ram", "other"))}


def _severity(c: KernelCall) -> tuple:
    return (min(_RANK.get(d, 99) for d in c.facts.danger), c.label)


def _names(calls: list[KernelCall] | tuple[KernelCall, ...]) -> str:
    """The dangerous calls, worst first, each with its danger classes; the first few of them."""
    calls = sorted(calls, key=_severity)
    shown = [f"{c.label} ({', '.join(c.facts.danger)})" for c in calls[:_SHOWN]]
    more = len(calls) - _SHOWN
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _blanket_grants(ctx: LintContext) -> dict[Span, list[str]]:
    """Kernel request bindings that grant some untrusted class every kernel method, always.

    Only bindings whose own selectors name the kernel and nothing narrower count; the
    classes listed are the untrusted ones for which the binding is the whole story.
    """
    found = ctx.memo.get("kernel-blanket")
    if found is None:
        found = ctx.memo["kernel-blanket"] = {}
        access = _access(ctx)
        for b in ctx.solution.bindings:
            if not _blanket(b):
                continue
            for row in access.classes:
                if row.trusted or b.selectors.src not in (None, row.cls) or not row.calls:
                    continue
                if all(c.verdict == ALWAYS and b.span in c.bindings for c in row.calls):
                    found.setdefault(b.span, []).append(row.cls)
    return found


@rule(
    "LNT021", "kernel-danger-untrusted", "warning",
    "potentially dangerous kernel methods granted unconditionally to an untrusted class",
    "grant the class only the kernel methods it needs (`match endpoint=..., method=...`), add conditions "
    "that limit their misuse, or mark the class trusted with `// ksm: trusted` on its `use EDL` line",
    category="kernel",
    why="The kernel documentation calls some of its methods potentially dangerous: a compromised process "
        "could use them to exhaust kernel memory or RAM, take over a device, starve or stop other "
        "processes, or open a covert channel. It asks that such a method be granted only to trusted "
        "components that need it, or under conditions that limit its misuse. This rule lists, per class "
        "not marked trusted, the dangerous methods every message of which the policy grants (what a "
        "blanket `request dst=kl.core.Core` grants is reported once, by LNT022).",
    bad=Example(_KERNEL_PRELUDE + _EVERYDAY + "request src=demo.Client dst=kl.core.Core interface=kl.core.Thread "
                                              "{ grant () }\n"),
    good=Example(_KERNEL_PRELUDE.replace("use EDL demo.Client\n", "use EDL demo.Client  // ksm: trusted\n")
                 .replace("use EDL demo.Server\n", "use EDL demo.Server  // ksm: trusted\n")
                 .replace("use EDL demo.Logger\n", "use EDL demo.Logger  // ksm: trusted\n")
                 .replace("use EDL Einit\n", "use EDL Einit  // ksm: trusted\n")
                 + _EVERYDAY + "request src=demo.Client dst=kl.core.Core interface=kl.core.Thread { grant () }\n"),
)
def kernel_danger_untrusted(ctx: LintContext) -> Iterator[Diagnostic]:
    access = _access(ctx)
    blankets = _blanket_grants(ctx)
    for row in access.classes:
        if row.trusted:
            continue
        # What a blanket binding grants is LNT022's finding, reported once for all classes.
        mine = {span for span, classes in blankets.items() if row.cls in classes}
        by_site: dict[Span | None, list[KernelCall]] = {}
        for c in row.dangerous((ALWAYS,)):
            if not mine.intersection(c.bindings):
                by_site.setdefault(c.where, []).append(c)
        # One finding per place that grants: a suppression there accepts exactly those grants.
        for span, calls in sorted(by_site.items(), key=lambda item: item[0] or Span("", 0, 0)):
            yield ctx.finding(
                "LNT021", f"{row.cls} is not marked trusted, yet this grants it {len(calls)} potentially "
                          f"dangerous kernel method(s) without conditions: {_names(calls)}; "
                          f"`ksm kernel --class {row.cls}` lists them with the reasons", span)


def _blanket(b: BindingDef) -> bool:
    """A request binding that may reach the kernel and that no endpoint, interface, component or method narrows.

    ``request dst=kl.core.Core { ... }`` and ``request { ... }`` (every server, the kernel
    included); whether it grants every kernel method is for the access table to say.
    """
    sel = b.selectors
    return (b.event == "request" and sel.dst in (None, KERNEL_CLASS) and sel.endpoint is None
            and sel.interface is None and sel.method is None and sel.component is None)


@rule(
    "LNT022", "kernel-blanket-grant", "warning",
    "a `request` binding grants every kernel method without conditions",
    "grant the kernel endpoints and methods each class needs (`match interface=kl.core.Sync { grant () }`, "
    "`match endpoint=vmm.VMM, method=Allocate { ... }`), or add conditions",
    category="kernel",
    why="A blanket `request dst=kl.core.Core { grant () }` (or a `request { grant () }` for every server) is "
        "the most common line of real policies and the widest: it lets the processes it names call every "
        "kernel method, including all the potentially "
        "dangerous ones (process creation, I/O ports, MMIO and DMA, interrupts, thread suspension, system "
        "time). The finding lists the dangerous methods it lets through and the untrusted classes it lets "
        "call them, so you can replace it with the methods each class needs. A blanket grant that reaches "
        "only classes marked trusted is not reported.",
    bad=Example(_KERNEL_PRELUDE + "request dst=kl.core.Core { grant () }\n"),
    good=Example(_KERNEL_PRELUDE + _EVERYDAY),
)
def kernel_blanket_grant(ctx: LintContext) -> Iterator[Diagnostic]:
    access = _access(ctx)
    for span, classes in _blanket_grants(ctx).items():
        b = next(b for b in ctx.solution.bindings if b.span == span)
        row = access.of(classes[0])
        danger = [c for c in row.calls if c.dangerous]
        shown = ", ".join(classes[:_SHOWN]) + (f" and {len(classes) - _SHOWN} more" if len(classes) > _SHOWN else "")
        who = f"every untrusted process ({shown})" if b.selectors.src is None else b.selectors.src
        yield ctx.finding(
            "LNT022", f"this binding lets {who} call every kernel method ({len(row.calls)}) without "
                      f"conditions, {len(danger)} of them potentially dangerous: {_names(danger)}", span)


@rule(
    "LNT023", "kernel-grant-unneeded", "warning",
    "process creation granted to a class whose process starts the policy always denies",
    "remove the grant of task.Task.Create for this class, or grant the `execute src=CLASS` events of the "
    "processes it is meant to start",
    category="kernel",
    why="A kernel method should be granted only to the processes that need it. Whether a program needs one "
        "cannot be seen from the policy, so this rule reports only what can be proven. A process that creates "
        "another one (`task.Task.Create`, a potentially dangerous method) starts it through an `execute` event "
        "with itself as `src`, which the policy decides. When no such event can ever be granted (proved for "
        "every class it could start), the process-creation grant is never needed: it only leaves a dangerous "
        "method open.",
    bad=Example(_KERNEL_PRELUDE.replace("execute { grant () }\n", "execute src=kl.core.Core { grant () }\n"
                                        "execute src=Einit { grant () }\n")
                + _EVERYDAY + "request src=demo.Client dst=kl.core.Core endpoint=task.Task, method=Create "
                              "{ grant () }  // ksm: disable=LNT021 the client is meant to start helpers\n"),
    good=Example(_KERNEL_PRELUDE.replace("execute { grant () }\n", "execute src=kl.core.Core { grant () }\n"
                                         "execute src=Einit { grant () }\nexecute src=demo.Client, dst=demo.Logger "
                                         "{ grant () }\n")
                 + _EVERYDAY + "request src=demo.Client dst=kl.core.Core endpoint=task.Task, method=Create "
                               "{ grant () }  // ksm: disable=LNT021 the client starts loggers\n"),
)
def kernel_grant_unneeded(ctx: LintContext) -> Iterator[Diagnostic]:
    access = _access(ctx)
    for row in access.classes:
        calls = [c for c in row.calls if c.granted and (c.interface, c.method) in PROCESS_CREATION]
        if not calls or may_start_processes(ctx.solution, row.cls) is not False:
            continue
        for c in calls:
            yield ctx.finding(
                "LNT023", f"{row.cls} may call {c.label} (create a process), but the policy grants no `execute "
                          f"src={row.cls}` event, so no process it creates can ever start", c.where)
