"""A generator of large solutions for the flow benchmark (``ksm bench flows``).

The solution is a plausible shape, not noise: classes in four trust zones (network,
application, vault, log), every instance holding channels to random others (many of
them across zones the policy keeps apart), and a policy that grants by zone pair,
some of it conditionally.  Its ``never flow`` properties mix proofs (the network
never reaches the vault or the log except through the application zone) and
refutations (vault data comes back to the network through responses).
"""
from __future__ import annotations

import random
from pathlib import Path

ZONES = ("Net", "App", "Vault", "Log")

IDL = """package gen.Store
interface {
    Get(in UInt32 key, out UInt32 value);
    Put(in sequence<UInt8, 64> data);
    Ping();
}
"""

# (client zone, server zone) -> the rule body per method; absent: denied.
REQUESTS = {
    ("Net", "App"): {"Put": "grant ()", "Ping": "grant ()"},
    ("App", "App"): {"Get": "grant ()", "Put": "grant ()", "Ping": "grant ()"},
    ("App", "Vault"): {"Get": "assert (message.key < 1000)"},
    ("App", "Log"): {"Put": "grant ()"},
    ("Vault", "Log"): {"Put": "grant ()"},
}
RESPONSES = {("App", "Net"), ("Vault", "App"), ("App", "App")}     # (server zone, client zone)

PROPERTIES = """\
property net_never_reaches_vault_directly: never flow {net} -> {vault} unless via {app}
property net_never_reaches_log_directly: never flow {net} -> {log} unless via {app}
property log_is_a_sink: never flow {log} -> {net}
property vault_never_reaches_net: never flow {vault} -> {net}
property net_never_reaches_vault: never flow {net} -> {vault}
property vault_never_reaches_log: never flow {vault} -> {log}
"""


def class_name(zone: str, i: int) -> str:
    return f"gen.{zone}{i}"


def generate_flow_solution(root: Path, instances: int = 1000, channels_per_instance: int = 10,
                           classes_per_zone: int = 3, seed: int = 1, per_channel: bool = False) -> str:
    """Write the solution under ``root``; return its property text.

    ``instances * channels_per_instance`` channels in init.yaml, over
    ``4 * classes_per_zone`` classes.

    ``per_channel``: grant class pairs only where init.yaml connects them (what a
    policy over hundreds of distinct classes looks like: one rule per channel, not per
    zone pair), instead of every class pair of the allowed zone pairs.  With
    ``classes_per_zone = instances // 4`` every instance has a class of its own.
    """
    rng = random.Random(seed)
    res, src = root / "resources", root / "einit" / "src"
    res.mkdir(parents=True, exist_ok=True)
    src.mkdir(parents=True, exist_ok=True)
    (res / "Store.idl").write_text(IDL)
    classes = [(z, class_name(z, i)) for z in ZONES for i in range(classes_per_zone)]
    for _, cls in classes:
        (res / f"{cls.split('.')[1]}.edl").write_text(f"task class {cls}\nendpoints {{\n    api : gen.Store\n}}\n")
    lines = ["use nk.base._", "use EDL kl.core.Core", "use EDL Einit", *[f"use EDL {c}" for _, c in classes],
             "execute: kl.core.Execute", "execute { grant () }",
             "request dst=kl.core.Core { grant () }", "response src=kl.core.Core { grant () }"]
    tasks = [(f"t{i}", classes[i % len(classes)]) for i in range(instances)]
    init = ["entities:"]
    connected: dict[tuple, None] = {}        # (client class, server class), in order of first channel
    for i, (task, (_, cls)) in enumerate(tasks):
        init += [f"  - name: {cls}", f"    task: {task}"]
        targets = rng.sample(range(instances), min(channels_per_instance + 1, instances))
        targets = [t for t in targets if t != i][:channels_per_instance]
        if targets:
            init.append("    connections:")
            for n, t in enumerate(targets):
                init += [f"      - target: {tasks[t][0]}", f"        id: c{i}_{n}"]
                connected[(tasks[i][1], tasks[t][1])] = None
    pairs = connected if per_channel else {(c, s): None for c in classes for s in classes}
    for (cz, client), (sz, server) in pairs:
        for method, body in REQUESTS.get((cz, sz), {}).items():
            lines.append(f"request src={client} dst={server} endpoint=api method={method} {{ {body} }}")
        if (sz, cz) in RESPONSES:
            lines.append(f"response src={server} dst={client} {{ grant () }}")
    (src / "security.psl").write_text("\n".join(lines) + "\n")
    (src / "init.yaml").write_text("\n".join(init) + "\n")
    zone = {z.lower(): ", ".join(class_name(z, i) for i in range(classes_per_zone)) for z in ZONES}
    return PROPERTIES.format(**zone)


def expected_statuses(solution) -> dict[tuple[str, str], int]:
    """How many hops of each (kind, status) the channel graph of a generated solution has.

    Worked out from the generator's rules and the solution's channels and classes only
    (never from the labeller), so the benchmark can check every label it times: a request
    is granted when its zone pair grants its method (the App -> Vault assert can be
    met), its response when the request is and the reply's zone pair is listed, an error
    never (no rule); every process may call every kernel method and get its response.
    """
    from collections import Counter

    from policy_lang.solution import KERNEL_CLASS

    zone = {i.task: next(z for z in ZONES if i.cls.startswith(f"gen.{z}")) for i in solution.instances
            if i.cls.startswith("gen.")}
    methods = [m.name for m in solution.classes[class_name(ZONES[0], 0)].endpoints[0].interface.methods]
    out: Counter = Counter()
    pairs = {(ch.client, ch.server) for ch in solution.channels if ch.client in zone and ch.server in zone}
    for client, server in pairs:
        cz, sz = zone[client], zone[server]
        for m in methods:
            request = m in REQUESTS.get((cz, sz), {})
            out[("request", "granted" if request else "denied")] += 1
            out[("response", "granted" if request and (sz, cz) in RESPONSES else "denied")] += 1
            out[("error", "denied")] += 1
    kernel = solution.classes.get(KERNEL_CLASS)
    if kernel is not None:
        calls = sum(len(ep.interface.methods) for ep in kernel.endpoints)
        callers = sum(1 for i in solution.instances if i.cls != KERNEL_CLASS) + ("Einit" not in {
            i.task for i in solution.instances})          # Einit runs whether or not init.yaml lists it
        out[("request", "granted")] += calls * callers
        out[("response", "granted")] += calls * callers
        out[("error", "denied")] += calls * callers
    return dict(out)
