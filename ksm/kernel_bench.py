"""Benchmark of the kernel's cost: the access table, its lint rules and kernel decisions.

The built-in kernel adds well over a hundred methods that every process class may
call, so its cost grows with classes x methods.  The shapes that hurt are measured
(``ksm bench kernel``), each against a baseline from the same run:

* a generated solution of ``n`` classes whose kernel grants vary by class: a blanket
  grant, grants by interface, a grant conditional on an untyped parameter, a grant
  under a Flow state, process creation without an ``execute`` grant, and none;
* **access table** and **kernel lint rules** (LNT021-LNT023), first call, against the
  load of the same solution (the table is computed once per lint run);
* **kernel decisions**: random kernel traffic over every class and many methods,
  grants and denials, malformed messages among them, first calls (routes not cached)
  and warm ones, against decisions on the solution's own typed endpoint.

Every figure is checked: the verdict counts per kind of class, the lint findings,
and each decision against what its kind of class must get.
"""
from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from policy_lang import load

from .bench import DecideBench, _write_classes
from .engine import SecurityModule
from .events import Event
from .kernel_access import ALWAYS, CONDITIONAL, NEVER, kernel_access

# Kernel policy by class number modulo the number of shapes.
_SHAPES = ("blanket", "interfaces", "untyped", "flow", "creator", "none")


def _policy(n: int) -> str:
    lines = ["use nk.base._", "use nk.flow._", "use EDL kl.core.Core", "use EDL Einit",
             *[f"use EDL gen.C{i}" for i in range(n)], "execute: kl.core.Execute",
             "execute { grant () }", "response { grant () }", "error { grant () }",
             "policy object mode : Flow {",
             '    type State = "boot" | "run"',
             '    config = { states : ["boot", "run"], initial : "boot", transitions : { "boot" : ["run"], "run" : [] } }',
             "}",
             "request src=Einit dst=kl.core.Core { grant () }",
             "request dst=gen.C0 endpoint=api method=Get { assert (message.key < 1000) }"]
    for i in range(n):
        shape, c = _SHAPES[i % len(_SHAPES)], f"gen.C{i}"
        if shape == "blanket":
            lines.append(f"request src={c} dst=kl.core.Core {{ grant () }}")
        elif shape == "interfaces":
            lines.append(f"request src={c} dst=kl.core.Core {{ match interface=kl.core.Sync {{ grant () }} "
                         f"match endpoint=vmm.VMM, method=Free {{ grant () }} }}")
        elif shape == "untyped":
            lines.append(f"request src={c} dst=kl.core.Core endpoint=vmm.VMM, method=Allocate "
                         f"{{ assert (message.size <= 4096) }}")
        elif shape == "flow":
            lines.append(f"execute src=Einit, dst={c} {{ mode.init {{ sid : dst_sid }} }}")
            lines.append(f"request src={c} dst=kl.core.Core interface=kl.core.Thread "
                         f'{{ mode.allow {{ sid : src_sid, states : ["run"] }} }}')
        elif shape == "creator":
            lines.append(f"request src={c} dst=kl.core.Core endpoint=task.Task, method=Create {{ grant () }}")
    return "\n".join(lines) + "\n"


def _write(root: Path, n: int) -> None:
    _write_classes(root, n)
    (root / "einit" / "src" / "security.psl").write_text(_policy(n).replace("execute { grant () }",
                                                                             "execute src=kl.core.Core { grant () }\n"
                                                                             "execute src=Einit { grant () }"))
    init = "entities:\n" + "".join(f"  - name: gen.C{i}\n    task: c{i}\n" for i in range(n))
    (root / "einit" / "src" / "init.yaml").write_text(init)


@dataclass
class KernelBench(DecideBench):
    """Rows of (figure, value, unit), like the other benchmarks."""


def _expected(shape: str, total: int) -> dict[str, int]:
    """Verdict counts a class of this shape must get (``total``: kernel methods)."""
    from policy_lang.kernel import builtin_kernel_class

    sizes = {ep.name: len(ep.interface.methods) for ep in builtin_kernel_class().endpoints}
    granted = {"blanket": (total, 0), "interfaces": (sizes["sync.Sync"] + 1, 0), "untyped": (0, 1),
               "flow": (0, sizes["thread.Thread"]), "creator": (1, 0), "none": (0, 0)}[shape]
    return {ALWAYS: granted[0], CONDITIONAL: granted[1], NEVER: total - sum(granted)}


def bench_kernel(sizes: tuple[int, ...] = (24, 120), events: int = 4000, seed: int = 7) -> KernelBench:
    from .lint import LintConfig, lint

    rows: list[tuple[str, float, str]] = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            _write(root, n)
            t0 = time.perf_counter()
            sol = load(root)
            load_s = time.perf_counter() - t0
            assert sol.ok, [d.render() for d in sol.diagnostics if d.severity.value == "error"][:3]
            t0 = time.perf_counter()
            table = kernel_access(sol)
            access_s = time.perf_counter() - t0
            total = len(table.classes[0].calls)
            for row in table.classes:
                if not row.cls.startswith("gen.C"):
                    continue
                shape = _SHAPES[int(row.cls[5:]) % len(_SHAPES)]
                got = {v: len(row.with_verdict(v)) for v in (ALWAYS, CONDITIONAL, NEVER)}
                assert got == _expected(shape, total), (row.cls, shape, got, _expected(shape, total))
            t0 = time.perf_counter()
            result = lint(sol, LintConfig(enable=frozenset({"LNT021", "LNT022", "LNT023"})))
            lint_s = time.perf_counter() - t0
            codes = sorted(d.code for d in result.findings)
            per_shape = n // len(_SHAPES)
            assert codes.count("LNT022") >= per_shape and codes.count("LNT023") >= per_shape, codes
            rows += [(f"classes={n}: load (baseline)", load_s * 1000, "ms"),
                     (f"classes={n}: access table, {n} x {total} keys", access_s * 1000, "ms"),
                     (f"classes={n}: access table / load", access_s / load_s, "x"),
                     (f"classes={n}: kernel lint rules (table cached)", lint_s * 1000, "ms"),
                     (f"classes={n}: kernel lint / load", lint_s / load_s, "x")]
            rows += _decisions(sol, n, total, events, seed)
    return KernelBench(rows)


def _decisions(sol, n: int, total: int, events: int, seed: int) -> list[tuple[str, float, str]]:
    """Random kernel traffic (grants, denials, malformed) against typed traffic of the same run."""
    from policy_lang.kernel import builtin_kernel_class

    rng = random.Random(seed)
    methods = [(ep.name, m.name, m.untyped_names("in")) for ep in builtin_kernel_class().endpoints
               for m in ep.interface.methods]
    kernel, typed, open_names = [], [], []
    for _ in range(events):
        i = rng.randrange(n)
        ep, method, names = rng.choice(methods)
        message = {k: rng.randrange(8192) for k in names if k != "*" and rng.random() < 0.7}
        if rng.random() < 0.1:
            message["bogus"] = 1                       # malformed unless names are unknown
        kernel.append(Event.request(f"c{i}", "kl.core.Core", ep, method, message))
        open_names.append("*" in names)
        typed.append(Event.request(f"c{i}", "c0", "api", "Get", {"key": rng.randrange(2000)}))
    out = []
    for name, batch in (("kernel", kernel), ("typed baseline", typed)):
        module = SecurityModule(sol)
        assert all(module.boot())
        t0 = time.perf_counter()
        first = [module.decide(e) for e in batch]
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm_decisions = [module.decide(e) for e in batch]
        warm = time.perf_counter() - t0
        assert [d.granted for d in first] == [d.granted for d in warm_decisions]
        granted = sum(d.granted for d in first)
        assert 0 < granted < len(batch), (name, granted)
        if name == "kernel":
            for e, d, anything in zip(batch, first, open_names):
                shape = _SHAPES[int(e.src[1:]) % len(_SHAPES)]
                if d.granted:            # only where the policy grants, and never a malformed message
                    assert shape in ("blanket", "interfaces", "untyped", "creator"), (e.describe(), d.reason)
                    assert anything or "bogus" not in e.message, (e.describe(), d.reason)
                elif "bogus" in e.message and not anything:
                    assert d.reason.startswith("malformed"), (e.describe(), d.reason)
            kernel_cold, kernel_warm, kernel_granted = cold, warm, granted
        out += [(f"classes={n}: {name} decisions, first calls", cold / len(batch) * 1e6, "us/decision"),
                (f"classes={n}: {name} decisions, warm", warm / len(batch) * 1e6, "us/decision")]
    out += [(f"classes={n}: kernel / typed, first calls", kernel_cold / cold, "x"),
            (f"classes={n}: kernel / typed, warm", kernel_warm / warm, "x"),
            (f"classes={n}: kernel decisions granted", kernel_granted / len(kernel) * 100, "%")]
    return out
