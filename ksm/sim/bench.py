"""``ksm bench simulate``: IPC round trips per second in the simulator.

The baseline is a bare Python call of the same server method (the echo server's
``Ping``) measured in the same run, so the ratio column survives a noisy machine.
One round trip is what a C client's ``Ping()`` costs on KasperskyOS: the proxy
marshals the request, the kernel checks its structure and asks the security
module, the server's dispatcher decodes it and calls the method, the reply is
marshalled, checked and decided, and the client decodes it.
"""
from __future__ import annotations

import time
from pathlib import Path

from policy_lang import load

from ..bench import DecideBench, _models_dir
from ..events import Decision
from .behaviour import Behaviour, start
from .kernel import Kernel


class _Server(Behaviour):
    process_class = "echo.Server"

    def Ping(self, value):
        return value + 1


def _bare(n: int) -> float:
    """Seconds per bare call of the server method (no IPC at all)."""
    server = _Server(None, "echo.Server")
    ping = server.Ping
    t0 = time.perf_counter()
    for i in range(n):
        ping(value=i % 1000)
    return (time.perf_counter() - t0) / n


def _round_trips(solution, n: int, trace: bool, decisions: bool) -> float:
    """Seconds per round trip through the simulator's kernel."""
    kernel = Kernel(solution, seed=1, trace=trace)
    if not decisions:       # the kernel and transport alone: every message granted unchecked
        kernel.module.decide = lambda e: Decision(True, "benchmark: decisions off", e)

    class _Client(Behaviour):
        process_class = "echo.Client"

        def main(self):
            ping = self.proxy("server_connection").Ping
            for i in range(n):
                ping(i % 1000)
    start(kernel, {"echo.Server": _Server, "echo.Client": _Client})
    t0 = time.perf_counter()
    out = kernel.run(max_steps=10 * n + 100)
    dt = time.perf_counter() - t0
    if not out.ok:
        raise RuntimeError(f"benchmark run ended {out.status}: {out.errors}")
    return dt / n


def bench_simulate(round_trips: int = 20_000, repeat: int = 3, models: Path | None = None) -> DecideBench:
    """Best of ``repeat`` runs for each configuration (the minimum is the least noisy)."""
    models = models or _models_dir()
    if models is None or not (models / "echo").is_dir():
        raise RuntimeError("the echo example (models/echo) is needed for this benchmark")
    sol = load(models / "echo")
    bare = min(_bare(round_trips * 5) for _ in range(repeat))
    rows: list[tuple[str, float, str]] = [("baseline: bare Python call of Server.Ping", bare * 1e6, "us")]
    for label, trace, decisions in (("decisions on, trace off", False, True),
                                    ("decisions on, trace on", True, True),
                                    ("decisions off (kernel + transport only)", False, False)):
        per = min(_round_trips(sol, round_trips, trace, decisions) for _ in range(repeat))
        rows.append((f"round trip, {label}", per * 1e6, "us"))
        rows.append(("  round trips per second (goal with decisions on, trace off: 100,000)", 1 / per, "/s"))
        rows.append(("  ratio to the bare call", per / bare, "x"))
    return DecideBench(rows)
