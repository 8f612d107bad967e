"""``ksm bench simulate``: IPC round trips in the simulator, per call and per second.

Two workloads, each run with decisions on and off and with the trace on and off:

* **echo**: one client thread calls ``Ping(value)`` on one server thread, values
  ``i % 1000`` (every one granted by the policy), and checks each answer.
* **smart_lock**: three client threads run at once and the seeded scheduler
  interleaves them: the network agent submits command text to the parser (one
  command in ten is an injection the policy's regular expression denies), the
  keypad UI has PINs hashed by the crypto service (a 32-byte digest comes back),
  and the door sensor reports a sequence of readings to the controller (levels
  above 100 are denied).  Strings, arrays, sequences of structs, regular
  expressions and denials: the messages of a real policy, not just integers.

One round trip is what a C client's call costs on KasperskyOS: the proxy
marshals the request, the kernel checks its structure and asks the security
module, the server's dispatcher decodes it and calls the method, the reply is
marshalled, checked and decided, and the client gets it back.  A denied request
is a call too (it ends at the kernel).

Every run is checked against what its workload must produce, computed here
independently of the simulator: the number of answers and denials per client,
every answered value (the digest of each PIN, the parser's ``accepted``), the
kernel's count of granted requests and, with the trace on, the granted and
denied calls and replies in the records.  A run that differs raises.

Timing: each client stamps ``perf_counter()`` when a call returns; the stamps are
cut into batches of :data:`BATCH` consecutive calls and each batch's time per
call (less the measured cost of one stamp) is a sample, so the p50 and p99 are
over batches, not a mean over the whole loop; with several clients at once a
batch holds their calls as the scheduler interleaved them.  Round trips per second
are whole runs (median of ``repeat``), by the wall clock and by the CPU time of
the thread running the simulation: on a machine shared with other work the wall
clock also counts the time slices the operating system gave to others (a p99
of a few milliseconds per batch is that), the CPU time does not.  The baseline is a bare Python call of the
same server methods measured in the same run, so the ratio column survives a
noisy machine.  With the trace on, the kernel keeps the records of ordinary
exchanges as tuples and builds the dictionaries when ``kernel.records`` is read;
that cost is measured separately, and added in the "with the records built" row.
"""
from __future__ import annotations

import gc
import hashlib
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from policy_lang import load

from ..bench import DecideBench, _models_dir
from ..events import Decision
from .behaviour import Behaviour, start
from .kernel import IpcError, Kernel, Rc

BATCH = 20                   # calls per timed batch
SEED = 1


@dataclass
class _Tally:
    """What the clients saw, and when each call returned."""

    stamps: list[float] = field(default_factory=list)
    answered: dict[str, int] = field(default_factory=dict)     # client -> calls answered with the right value
    denied: dict[str, int] = field(default_factory=dict)       # client -> calls refused with rcSecurityDisallow
    wrong: list[str] = field(default_factory=list)             # anything else, for the error message
    total: int = 0                                             # echo: the sum of the results

    def bump(self, table: dict, who: str) -> None:
        table[who] = table.get(who, 0) + 1


@dataclass
class _Run:
    seconds: float           # wall time of the run
    cpu: float               # CPU time of this thread during the run (every greenlet runs in it)
    stamps: list[float]
    build: float             # seconds to build the records (trace on)
    calls: int


# ---------------------------------------------------------------------------- echo
class _EchoServer(Behaviour):
    process_class = "echo.Server"

    def Ping(self, value):
        return value + 1


def _echo_kinds(n: int, tally: _Tally) -> dict:
    class Client(Behaviour):
        process_class = "echo.Client"

        def main(self):
            ping = self.proxy("server_connection").Ping
            stamp, clock = tally.stamps.append, time.perf_counter
            total = 0
            for i in range(n):
                total += ping(i % 1000)["result"]
                stamp(clock())
            tally.total = total
            tally.answered["echo.Client"] = n
    return {"echo.Server": _EchoServer, "echo.Client": Client}


def _echo_expect(n: int, decisions: bool) -> dict:
    """What n pings must give (every value is at most 1000: granted either way)."""
    return {"answered": {"echo.Client": n}, "denied": {}, "total": sum(i % 1000 + 1 for i in range(n)),
            "granted requests": n,
            "records": {("call", "granted"): n, ("call", "denied"): 0, ("reply", "granted"): n,
                        ("reply", "denied"): 0, ("recv", None): n}}


# ---------------------------------------------------------------------------- smart_lock
PIN_COUNT = 50


def _pin(i: int) -> str:
    return str(100_000 + i % PIN_COUNT)


def _digest(pin: str) -> list[int]:
    return list(hashlib.sha256(pin.encode()).digest())


def _command(i: int) -> str:
    return "STATUS; reboot" if i % 10 == 0 else f"STATUS {i % 10_000}"


def _level(i: int) -> int:
    return i % 125


class _Parser(Behaviour):
    process_class = "lock.Parser"

    def Submit(self, text, nonce):
        return 1


class _Crypto(Behaviour):
    process_class = "lock.Crypto"

    def __init__(self, kernel, task):
        super().__init__(kernel, task)
        self.digests = {_pin(i): _digest(_pin(i)) for i in range(PIN_COUNT)}

    def HashPin(self, pin):
        return self.digests[pin]


class _Controller(Behaviour):
    process_class = "lock.Controller"

    def Report(self, batch):
        return None


def _lock_split(n: int) -> tuple[int, int, int]:
    """Calls of the agent, the UI and the sensor (n in all)."""
    a = n // 3
    return a, a, n - 2 * a


def _lock_kinds(n: int, tally: _Tally) -> dict:
    subs, hashes, reports = _lock_split(n)
    digests = {_pin(i): _digest(_pin(i)) for i in range(PIN_COUNT)}      # the client's own expectation

    def client(who: str, calls: int, do: Callable[[int], bool]) -> None:
        stamp, clock = tally.stamps.append, time.perf_counter
        for i in range(calls):
            try:
                ok = do(i)
            except IpcError as exc:
                if exc.rc == Rc.SECURITY_DISALLOW:
                    tally.bump(tally.denied, who)
                else:
                    tally.wrong.append(f"{who} call {i}: {exc}")
            else:
                if ok:
                    tally.bump(tally.answered, who)
                else:
                    tally.wrong.append(f"{who} call {i}: wrong answer")
            stamp(clock())

    class Agent(Behaviour):
        process_class = "lock.NetAgent"

        def main(self):
            submit = self.proxy("intake_channel").Submit
            client("lock.NetAgent", subs, lambda i: submit(text=_command(i), nonce=i + 1) == {"accepted": 1})

    class Ui(Behaviour):
        process_class = "lock.Ui"

        def main(self):
            hash_pin = self.proxy("crypto_channel").HashPin
            client("lock.Ui", hashes, lambda i: hash_pin(pin=_pin(i))["hash"] == digests[_pin(i)])

    class Sensor(Behaviour):
        process_class = "lock.Sensor"

        def main(self):
            if self.task != "doorSensor":
                return
            report = self.proxy("feed_channel", "feed").Report
            client("doorSensor", reports,
                   lambda i: report(batch=[{"sensorId": 1, "level": _level(i)}, {"sensorId": 2, "level": 7}]) == {})

    return {"lock.Parser": _Parser, "lock.Crypto": _Crypto, "lock.Controller": _Controller,
            "lock.NetAgent": Agent, "lock.Ui": Ui, "lock.Sensor": Sensor}


def _lock_expect(n: int, decisions: bool) -> dict:
    subs, hashes, reports = _lock_split(n)
    refused = sum(1 for i in range(subs) if i % 10 == 0) if decisions else 0
    too_high = sum(1 for i in range(reports) if _level(i) > 100) if decisions else 0
    answered = {"lock.NetAgent": subs - refused, "lock.Ui": hashes, "doorSensor": reports - too_high}
    denied = {k: v for k, v in (("lock.NetAgent", refused), ("doorSensor", too_high)) if v}
    granted = n - refused - too_high
    return {"answered": answered, "denied": denied, "total": 0, "granted requests": granted,
            "records": {("call", "granted"): granted, ("call", "denied"): refused + too_high,
                        ("reply", "granted"): granted, ("reply", "denied"): 0, ("recv", None): granted}}


def _bare_lock(n: int) -> float:
    """Seconds per bare call of the smart_lock handlers, in the workload's mix."""
    parser, crypto, controller = _Parser(None, "p"), _Crypto(None, "c"), _Controller(None, "s")
    subs, hashes, reports = _lock_split(n)
    t0 = time.perf_counter()
    for i in range(subs):
        parser.Submit(text=_command(i), nonce=i + 1)
    for i in range(hashes):
        crypto.HashPin(pin=_pin(i))
    for i in range(reports):
        controller.Report(batch=[{"sensorId": 1, "level": _level(i)}, {"sensorId": 2, "level": 7}])
    return (time.perf_counter() - t0) / n


def _bare_echo(n: int) -> float:
    """Seconds per bare call of the echo server method (no IPC at all)."""
    ping = _EchoServer(None, "echo.Server").Ping
    t0 = time.perf_counter()
    for i in range(n):
        ping(value=i % 1000)
    return (time.perf_counter() - t0) / n


# ---------------------------------------------------------------------------- runs
def _echo_shape(n: int) -> list[tuple[str, int]]:
    return [("1 client thread, 1 server thread", n),
            ("  echo.Client -> echo.Server Ping(UInt32 value) -> UInt32, values i % 1000, all granted", n)]


def _lock_shape(n: int) -> list[tuple[str, int]]:
    subs, hashes, reports = _lock_split(n)
    return [("3 client threads at once (seed 1), 3 server threads", n),
            ("  NetAgent -> Parser Submit(string<64>, UInt32); 1 in 10 denied (regex)", subs),
            ("  Ui -> Crypto HashPin(string<12>) -> array<UInt8, 32>", hashes),
            ("  doorSensor -> Controller Report(sequence<Reading>, 2); 24 in 125 denied", reports)]


# name -> (model folder, behaviours, expectation, shape)
WORKLOADS = {
    "echo": ("echo", _echo_kinds, _echo_expect, _echo_shape),
    "smart_lock": ("smart_lock", _lock_kinds, _lock_expect, _lock_shape),
}


def _run(solution, workload: str, n: int, trace: bool, decisions: bool) -> _Run:
    """One run of ``workload``, checked against its expectation (raises if it differs)."""
    _, kinds, expect, _ = WORKLOADS[workload]
    tally = _Tally()
    kernel = Kernel(solution, seed=SEED, trace=trace)
    if not decisions:       # the kernel and transport alone: every message granted unchecked
        kernel.module.decide = lambda e: Decision(True, "benchmark: decisions off", e)
    start(kernel, kinds(n, tally))
    gc.collect()            # the previous run's kernel is garbage in cycles (greenlets): not this run's cost
    c0, t0 = time.thread_time(), time.perf_counter()
    out = kernel.run(max_steps=20 * n + 1000)
    seconds, cpu = time.perf_counter() - t0, time.thread_time() - c0
    t1 = time.perf_counter()
    records = kernel.records if trace else []
    build = time.perf_counter() - t1
    _check(workload, n, trace, decisions, out, kernel, tally, records, expect(n, decisions))
    return _Run(seconds, cpu, tally.stamps, build, n)


def _check(workload: str, n: int, trace: bool, decisions: bool, out, kernel: Kernel, tally: _Tally,
           records: list[dict], want: dict) -> None:
    where = f"{workload} (trace {'on' if trace else 'off'}, decisions {'on' if decisions else 'off'})"
    problems = []
    if not out.ok:
        problems.append(f"run ended {out.status}: {out.errors} {out.detail}")
    problems += tally.wrong[:5]
    got = {"answered": tally.answered, "denied": tally.denied, "total": tally.total,
           "granted requests": kernel.exchanges}
    for key, value in got.items():
        if value != want[key]:
            problems.append(f"{key}: got {value}, expected {want[key]}")
    if len(tally.stamps) != n:
        problems.append(f"{len(tally.stamps)} calls returned, expected {n}")
    if trace:
        counts = {key: 0 for key in want["records"]}
        for r in records:
            key = (r["op"], r.get("decision"))
            if key in counts and (r["op"] != "call" or r.get("channel") != "kernel"):
                counts[key] += 1
        if counts != want["records"]:
            problems.append(f"records: got {counts}, expected {want['records']}")
    if problems:
        raise RuntimeError(f"benchmark {where} did not produce what its workload must: " + "; ".join(problems))


def _stamp_cost(n: int = 20_000) -> float:
    """Seconds one ``stamps.append(perf_counter())`` costs (median of 5 loops)."""
    costs = []
    for _ in range(5):
        stamps: list[float] = []
        stamp, clock = stamps.append, time.perf_counter
        t0 = clock()
        for _ in range(n):
            stamp(clock())
        costs.append((clock() - t0) / n)
    return statistics.median(costs)


def _per_call(runs: list[_Run], stamp: float) -> list[float]:
    """Seconds per call in each batch of BATCH consecutive calls, less the stamp's cost."""
    out = []
    for run in runs:
        s = run.stamps
        out += [(s[i + BATCH] - s[i]) / BATCH - stamp for i in range(0, len(s) - BATCH, BATCH)]
    return out


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


CONFIGS = (("decisions on, trace off", False, True, " (goal 100,000)"),
           ("decisions on, trace on", True, True, " (goal 50,000)"),
           ("decisions off (kernel and transport), trace off", False, False, ""))


def bench_simulate(round_trips: int = 20_000, repeat: int = 3, models: Path | None = None) -> DecideBench:
    """Per-call p50/p99 and round trips per second of both workloads in every
    configuration, with the same-run baselines (see the module docstring)."""
    models = models or _models_dir()
    if models is None or not all((models / w).is_dir() for w in ("echo", "smart_lock")):
        raise RuntimeError("the echo and smart_lock examples (models/echo, models/smart_lock) are needed "
                           "for this benchmark")
    stamp = _stamp_cost()
    bare = {"echo": statistics.median(_bare_echo(round_trips * 5) for _ in range(repeat)),
            "smart_lock": statistics.median(_bare_lock(round_trips) for _ in range(repeat))}
    rows: list[tuple[str, float, str]] = [
        (f"p50/p99 over batches of {BATCH} calls; one timestamp (subtracted)", stamp * 1e6, "us"),
        ("baseline: bare Python call of echo Server.Ping", bare["echo"] * 1e6, "us"),
        ("baseline: bare Python calls of the smart_lock handlers, per call", bare["smart_lock"] * 1e6, "us"),
    ]
    for workload, (folder, _, _, shape) in WORKLOADS.items():
        solution = load(models / folder)
        (head, calls), *parts = shape(round_trips)
        rows.append((f"workload {workload}: {head}; every answer checked", calls, "calls"))
        rows += [(line, count, "calls") for line, count in parts]
        for label, trace, decisions, goal in CONFIGS:
            runs = [_run(solution, workload, round_trips, trace, decisions) for _ in range(repeat)]
            samples = _per_call(runs, stamp)
            p50, p99 = _quantile(samples, 0.5), _quantile(samples, 0.99)
            rate = statistics.median(r.calls / r.seconds for r in runs)
            cpu_rate = statistics.median(r.calls / r.cpu for r in runs if r.cpu > 0) if any(r.cpu for r in runs) else 0
            rows += [(f"{workload}, {label}: per call p50", p50 * 1e6, "us"),
                     (f"{workload}, {label}: per call p99", p99 * 1e6, "us"),
                     (f"{workload}, {label}: round trips/s, whole runs, wall time{goal}", rate, "/s"),
                     (f"{workload}, {label}: round trips/s, whole runs, CPU time", cpu_rate, "/s"),
                     (f"{workload}, {label}: p50 / bare call", p50 / bare[workload], "x")]
            if trace:
                build = statistics.median(r.build / r.calls for r in runs)
                with_build = statistics.median(r.calls / (r.seconds + r.build) for r in runs)
                rows += [(f"{workload}, {label}: + building the records, per call", build * 1e6, "us"),
                         (f"{workload}, {label}: round trips/s with the records built", with_build, "/s")]
    return DecideBench(rows)
