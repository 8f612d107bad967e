"""``ksm bench decide`` and ``ksm bench compare``: the decision function on allowlists,
against a frozenset lookup and other engines measured in the same run."""
from __future__ import annotations

import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from policy_lang import load


@dataclass
class DecideBench:
    rows: list[tuple[str, float, str]]

    def report(self) -> str:
        width = max(len(r[0]) for r in self.rows)
        return "\n".join(f"{name:<{width}}  {value:>10.3f}  {unit}" for name, value, unit in self.rows)


def _write_classes(root: Path, n: int) -> None:
    """``n`` classes ``gen.C{i}``, each serving ``api : gen.Api`` (Get with a key, and Ping)."""
    (root / "einit" / "src").mkdir(parents=True, exist_ok=True)
    res = root / "resources"
    res.mkdir(exist_ok=True)
    (res / "Api.idl").write_text("package gen.Api\ninterface {\n    Get(in UInt32 key, out UInt32 value);\n    Ping();\n}\n")
    for i in range(n):
        (res / f"C{i}.edl").write_text(f"task class gen.C{i}\nendpoints {{\n    api : gen.Api\n}}\n")


def _allowlist_solution(root: Path, bindings: int) -> list[tuple[str, str, str, str]]:
    """A solution whose policy is an allowlist of `bindings` (src, dst, endpoint, method) grants.

    Every class serves one endpoint ``api`` with ``Get(in UInt32 key, out UInt32 value)``
    and ``Ping()``; odd entries allow Get with an assert on the key (structure check +
    a condition), even entries allow Ping (match only).
    """
    import math

    n = max(2, math.isqrt(bindings) + 1)
    _write_classes(root, n)
    lines = ["use nk.base._", "use nk.basic._", "use EDL kl.core.Core", "use EDL Einit",
             *[f"use EDL gen.C{i}" for i in range(n)], "execute: kl.core.Execute", "execute { grant () }"]
    allow = []
    k = 0
    for i in range(n):
        for j in range(n):
            if k >= bindings:
                break
            method = "Get" if k % 2 else "Ping"
            body = "assert (message.key < 1000)" if method == "Get" else "grant ()"
            lines.append(f"request src=gen.C{i} dst=gen.C{j} endpoint=api method={method} {{ {body} }}")
            allow.append((f"c{i}", f"c{j}", "api", method))
            k += 1
    (root / "einit" / "src" / "security.psl").write_text("\n".join(lines) + "\n")
    (root / "einit" / "src" / "init.yaml").write_text(
        "entities:\n" + "".join(f"  - name: gen.C{i}\n    task: c{i}\n" for i in range(n)))
    return allow


def _p50_ns(fn, events, rounds: int = 7) -> float:
    """Median over rounds of the mean time per call (ns), after one warm-up pass."""
    for e in events:
        fn(e)
    per = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for e in events:
            fn(e)
        per.append((time.perf_counter_ns() - t0) / len(events))
    return statistics.median(per)


def bench_decide(small: int = 10, large: int = 100_000, sample: int = 2000) -> DecideBench:
    from ksm.engine import SecurityModule
    from ksm.events import Event

    rows: list[tuple[str, float, str]] = []
    results = {}
    for size in (small, large):
        with tempfile.TemporaryDirectory() as tmp:
            allow = _allowlist_solution(Path(tmp), size)
            t0 = time.perf_counter()
            sol = load(Path(tmp))
            module = SecurityModule(sol)
            module.boot()
            load_s = time.perf_counter() - t0
        rng = random.Random(size)
        picks = [allow[rng.randrange(len(allow))] for _ in range(sample)]
        ping = [Event.request(s, d, e, m) for s, d, e, m in picks if m == "Ping"]
        get = [Event.request(s, d, e, m, {"key": 7}) for s, d, e, m in picks if m == "Get"]
        allowset = frozenset(allow)
        keys = [(s, d, e, m) for s, d, e, m in picks if m == "Ping"]
        base = _p50_ns(lambda k: k in allowset, keys)
        t_ping = _p50_ns(module.decide, ping)
        t_get = _p50_ns(module.decide, get)
        t0 = time.perf_counter_ns()
        module.decide_many(get)
        many = (time.perf_counter_ns() - t0) / len(get)
        assert all(module.decide(e).granted for e in ping[:50] + get[:50]), "allowlist events must be granted"
        results[size] = (base, t_ping, t_get, many)
        rows += [
            (f"[{size} bindings] load + boot", load_s, "s"),
            (f"[{size} bindings] baseline: frozenset lookup", base / 1000, "us"),
            (f"[{size} bindings] decide, match-only allowlist (Ping)", t_ping / 1000, "us"),
            (f"[{size} bindings]   ratio to frozenset", t_ping / base, "x"),
            (f"[{size} bindings] decide, with structure check + assert (Get)", t_get / 1000, "us"),
            (f"[{size} bindings] decide_many, per event (Get)", many / 1000, "us"),
            (f"[{size} bindings]   decide_many throughput / loop", t_get / many, "x"),
        ]
    rows.append((f"growth {small} -> {large} bindings (Get)", results[large][2] / results[small][2], "x"))
    rows.append((f"growth {small} -> {large} bindings (Ping)", results[large][1] / results[small][1], "x"))
    return DecideBench(rows)


def _others(allow: list[tuple[str, str, str, str]], picks: list[tuple[str, str, str, str]]) -> list[tuple[str, float, str]]:
    """Per-decision time of cedarpy and pycasbin on the same allowlist, where they install.

    Both only see (principal, action = endpoint.method, resource); neither checks a
    message structure, so they are compared with ksm's match-only figure.
    """
    rows: list[tuple[str, float, str]] = []
    n = len(allow)
    try:
        import cedarpy
    except ImportError:
        rows.append((f"[{n} bindings] cedarpy: not installed (pip install '.[bench]')", 0.0, ""))
    else:
        text = "\n".join(
            f'permit(principal == Process::"{s}", action == Action::"{e}.{m}", resource == Process::"{d}");'
            for s, d, e, m in allow)
        # Parse once, as a serious embedder would (the per-call parse is Cedar's dominant cost).
        policies = cedarpy.PolicySet.from_str(text) if hasattr(cedarpy, "PolicySet") else text
        entities = cedarpy.Entities.from_json_str("[]") if hasattr(cedarpy, "Entities") else "[]"
        reqs = [{"principal": f'Process::"{s}"', "action": f'Action::"{e}.{m}"', "resource": f'Process::"{d}"',
                 "context": {}} for s, d, e, m in picks[:200]]
        assert all(cedarpy.is_authorized(r, policies, entities).allowed for r in reqs[:5])
        rows.append((f"[{n} bindings] cedarpy is_authorized", _p50_ns(lambda r: cedarpy.is_authorized(r, policies, entities),
                                                                       reqs, rounds=3) / 1000, "us"))
    try:
        import casbin
    except ImportError:
        rows.append((f"[{n} bindings] pycasbin: not installed (pip install '.[bench]')", 0.0, ""))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp) / "model.conf"
            model.write_text("[request_definition]\nr = sub, obj, act\n[policy_definition]\np = sub, obj, act\n"
                             "[policy_effect]\ne = some(where (p.eft == allow))\n"
                             "[matchers]\nm = r.sub == p.sub && r.obj == p.obj && r.act == p.act\n")
            policy = Path(tmp) / "policy.csv"
            policy.write_text("".join(f"p, {s}, {d}, {e}.{m}\n" for s, d, e, m in allow))
            enforcer = casbin.Enforcer(str(model), str(policy))
        keys = [(s, d, f"{e}.{m}") for s, d, e, m in picks[:200]]
        assert all(enforcer.enforce(*k) for k in keys[:5])
        rows.append((f"[{n} bindings] pycasbin enforce", _p50_ns(lambda k: enforcer.enforce(*k), keys, rounds=3) / 1000, "us"))
    return rows


def bench_decide_vs_others(sizes=(10, 1000)) -> DecideBench:
    """ksm's match-only decision next to cedarpy and pycasbin, same allowlists, same run."""
    from ksm.engine import SecurityModule
    from ksm.events import Event

    rows: list[tuple[str, float, str]] = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            allow = _allowlist_solution(Path(tmp), size)
            module = SecurityModule(load(Path(tmp)))
            module.boot()
        rng = random.Random(size)
        picks = [allow[rng.randrange(len(allow))] for _ in range(2000)]
        allowset = frozenset(allow)
        base = _p50_ns(lambda k: k in allowset, picks)
        ksm_t = _p50_ns(module.decide, [Event.request(s, d, e, m, {"key": 7} if m == "Get" else {}) for s, d, e, m in picks])
        rows += [(f"[{size} bindings] baseline: frozenset lookup", base / 1000, "us"),
                 (f"[{size} bindings] ksm decide (mixed Get/Ping)", ksm_t / 1000, "us")]
        for name, value, unit in _others(allow, picks):
            rows.append((name, value, unit))
            if unit == "us" and value:
                rows.append((f"[{size} bindings]   ratio to ksm decide", value * 1000 / ksm_t, "x"))
    return DecideBench(rows)
