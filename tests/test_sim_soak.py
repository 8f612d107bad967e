"""Soak tests of the simulator: many seeds of the smart lock, and random call graphs
driven through the kernel, checking what docs/simulation.md promises in "What a
run guarantees".

The CI size runs by default.  The large size is marked ``soak`` and skipped unless
``-m soak`` or ``KSM_SOAK=1`` is given (tests/conftest.py); it prints its figures:

    KSM_SOAK=1 python -m pytest -p no:cacheprovider tests/test_sim_soak.py -m soak -s
"""
from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import write_solution
from test_sim_reliability import WORK_IDL, check_exactly_once

from ksm.sim import IpcError, Kernel, Rc, ServerError
from ksm.sim.session import run_behaviours
from ksm.sim.transport import dispatch, handle, proxy
from policy_lang import load

ROOT = Path(__file__).resolve().parent.parent


def _report(capsys, line: str) -> None:
    """Print a figure even under pytest's capture (so a soak run can be quoted)."""
    with capsys.disabled():
        print(f"\n{line}")


# ============================================================================ the smart lock
@pytest.fixture(scope="module")
def lock():
    return load(ROOT / "models" / "smart_lock")


def _smart_lock_seeds(lock, seeds: range) -> dict:
    bad, totals = [], Counter()
    for seed in seeds:
        rep = run_behaviours(lock, None, seed=seed)
        if not rep.ok:
            bad.append(f"seed {seed}: {rep.outcome.status} {rep.outcome.cycle} {rep.outcome.errors} "
                       f"{rep.outcome.detail}")
            continue
        totals.update(check_exactly_once(rep.kernel.records, rep.outcome, rep.kernel.threads))
    assert not bad, "\n".join(bad)
    assert totals["unanswered"] == 0
    return totals


def test_smart_lock_finishes_ok_on_60_seeds(lock):
    totals = _smart_lock_seeds(lock, range(60))
    assert totals["requests"] == totals["answered"] > 60 * 20


@pytest.mark.soak
def test_smart_lock_finishes_ok_on_500_seeds(lock, capsys):
    t0 = time.monotonic()
    totals = _smart_lock_seeds(lock, range(500))
    _report(capsys, f"smart_lock soak: seeds 0..499, 500/500 OK, {totals['requests']} requests granted, "
                    f"{totals['answered']} answered once, losses=0, duplicates=0 "
                    f"({time.monotonic() - t0:.1f} s)")


# ============================================================================ random call graphs
PEERS = [f"p{i}" for i in range(6)]          # the random traffic: every peer is every other's client
GADGETS = ["x", "y", "z"]                   # x and y: mutual calls; z: never serves


def _files() -> dict:
    entities = []
    for p in PEERS:
        conns = [f"      - {{target: {q}, id: to_{q}}}" for q in PEERS if q != p] + ["      - {target: z, id: to_z}"]
        entities.append(f"  - name: sim.Node\n    task: {p}\n    connections:\n" + "\n".join(conns))
    entities.append("  - name: sim.Node\n    task: x\n    connections:\n      - {target: y, id: to_y}")
    entities.append("  - name: sim.Node\n    task: y\n    connections:\n      - {target: x, id: to_x}")
    entities.append("  - name: sim.Node\n    task: z")
    return {
        "resources/Work.idl": WORK_IDL,
        "resources/Node.edl": "task class sim.Node\nendpoints {\n    api : sim.Work\n}\n",
        "einit/src/security.psl": """use nk.base._
use EDL kl.core.Core
use EDL Einit
use EDL sim.Node
execute: kl.core.Execute
execute { grant () }
request { grant () }
request method=Forbidden { deny () }
response { grant () }
error { grant () }
""",
        "einit/src/init.yaml": "entities:\n" + "\n".join(entities) + "\n",
    }


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    return write_solution(tmp_path_factory.mktemp("mesh"), _files())


FAILS = ("server_error", "forbidden", "malformed", "bug")


@dataclass
class Node:
    """One request of the plan: sent to ``target``; its handler first calls the
    ``children`` (each to a peer after its own, so handlers never wait in a ring),
    then fails as ``fail`` says or answers; ``double``: the server answers it twice."""

    id: int
    target: str
    children: list[int] = field(default_factory=list)
    fail: str = ""
    double: bool = False


def _value(i: int) -> int:
    return (i * 2654435761 + 12345) % 2**32


def expected(node: Node) -> tuple:
    if node.fail == "server_error":
        return ("error", {"rc": -(node.id + 1)})
    if node.fail:                                # a failed handler: zero error-parameters
        return ("error", {"rc": 0})
    return ("ok", _value(node.id))


@dataclass
class Plan:
    seed: int
    nodes: dict[int, Node] = field(default_factory=dict)
    tops: dict[str, list[int]] = field(default_factory=dict)      # main thread -> its calls, in order
    threads: dict[str, int] = field(default_factory=dict)         # task -> server threads
    raw: set = field(default_factory=set)                         # tasks served by a hand-written loop
    stuck: set = field(default_factory=set)                       # threads that must end blocked in call
    cycle: set = field(default_factory=set)                       # the deadlock's cycle

    def add(self, target: str, **kw) -> Node:
        n = Node(len(self.nodes) + 1, target, **kw)
        self.nodes[n.id] = n
        return n


def make_plan(seed: int, size: int, gadgets: bool = True) -> Plan:
    """Random traffic among the peers of about ``size`` requests: chains, fan-out,
    nested calls from handlers, failing handlers, double replies; and, when
    ``gadgets``, sometimes a genuine deadlock."""
    rng = random.Random(seed)
    plan = Plan(seed)
    bugs = Counter()

    def tree(t: int, depth: int) -> int:
        fail = rng.choice(FAILS) if rng.random() < 0.12 else ""
        node = plan.add(PEERS[t], fail=fail, double=rng.random() < 0.05)
        if fail == "bug":
            bugs[PEERS[t]] += 1
        if depth and t < len(PEERS) - 1:
            for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):          # fan-out; depth gives chains
                node.children.append(tree(rng.randrange(t + 1, len(PEERS)), depth - 1))
        return node.id

    mains = {p: [] for p in PEERS if rng.random() < 0.85} or {PEERS[0]: []}
    while len(plan.nodes) < size:
        me = rng.choice(list(mains))
        target = rng.choice([i for i, p in enumerate(PEERS) if p != me])
        mains[me].append(tree(target, rng.randrange(4)))
    plan.tops = {f"{p}/main": ids for p, ids in mains.items()}
    plan.threads = {p: 1 + rng.randrange(2) + bugs[p] for p in PEERS}   # a bug ends its thread
    plan.raw = {p for p in PEERS if rng.random() < 0.5}
    if gadgets and rng.random() < 0.3:                # a call to a process that never serves
        caller = rng.choice(list(mains))
        plan.tops[f"{caller}/main"].append(plan.add("z").id)
        plan.stuck.add(f"{caller}/main")
    if gadgets and rng.random() < 0.3:                # mutual calls, both blocked in call
        if rng.random() < 0.5:                        # two mains, no server threads
            plan.tops["x/main"] = [plan.add("y").id]
            plan.tops["y/main"] = [plan.add("x").id]
            plan.stuck |= {"x/main", "y/main"}
            plan.cycle = {"x/main", "y/main"}
        else:                                         # handlers: x's main -> y -> x -> y (busy)
            c = plan.add("y")
            b = plan.add("x", children=[c.id])
            a = plan.add("y", children=[b.id])
            plan.tops["x/main"] = [a.id]
            plan.threads.update(x=1, y=1)
            plan.stuck |= {"x/main", "x/server0", "y/server0"}
            plan.cycle = {"x/server0", "y/server0"}
    return plan


@dataclass
class Tally:
    handled: Counter = field(default_factory=Counter)       # node id -> times a handler ran it
    results: dict = field(default_factory=dict)             # node id -> what its caller got
    nested: int = 0
    refused: int = 0                                        # second replies the kernel refused


class Impl:
    """sim.Work.Work as the plan says, checking every answer it gets."""

    def __init__(self, kernel: Kernel, task: str, plan: Plan, tally: Tally):
        self.kernel, self.task, self.plan, self.tally = kernel, task, plan, tally
        self.proxies: dict[str, object] = {}

    def to(self, target: str):
        if target not in self.proxies:
            self.proxies[target] = proxy(self.kernel, self.task, f"to_{target}")
        return self.proxies[target]

    def Work(self, id):
        node = self.plan.nodes[id]
        assert node.target == self.task, f"request {id} for {node.target} delivered to {self.task}"
        self.tally.handled[id] += 1
        for c in node.children:
            got = call(self.to(self.plan.nodes[c].target), c, self.tally)
            assert got == expected(self.plan.nodes[c]), f"request {c} answered {got}"
            self.tally.nested += 1
        some = next(q for q in PEERS if q != self.task) if self.task in PEERS else ("y" if self.task == "x" else "x")
        if node.fail == "server_error":
            raise ServerError(rc=-(id + 1))
        if node.fail == "forbidden":
            self.to(some).Forbidden(id)                      # denied by the policy: IpcError, not caught
        if node.fail == "malformed":
            self.to(some).Work(-1)                           # cannot be marshalled: IpcError, not caught
        if node.fail == "bug":
            raise RuntimeError(f"planned bug in request {id}")
        return _value(id)


def call(p, i: int, tally: Tally) -> tuple:
    try:
        got = ("ok", p.Work(i)["result"])
    except ServerError as exc:
        got = ("error", exc.params)
    except IpcError as exc:
        got = (exc.rc.sdk_name, None)
    tally.results[i] = got
    return got


def _raw_server(impls: dict, plan: Plan, tally: Tally):
    """A hand-written server loop (``recv`` and the dispatcher's ``handle``) that
    answers some requests a second time, which the kernel must refuse."""
    def body(k):
        while True:
            req = k.recv()
            try:
                handle(k, req, impls)
            except IpcError:
                pass
            if plan.nodes[req.message["id"]].double:
                try:
                    k.reply(req, {"result": 0xBAD})
                    raise AssertionError(f"a second reply to request {req.message['id']} was accepted")
                except IpcError as exc:
                    assert exc.rc == Rc.INVALID_ARGUMENT
                    tally.refused += 1
    return body


def drive_plan(sol, plan: Plan, max_steps: int = 10**8, trace: bool = True) -> tuple[Kernel, Tally, object]:
    """Run the plan's servers and top-level calls in a kernel: (kernel, tally, outcome)."""
    k = Kernel(sol, seed=plan.seed, trace=trace)
    tally = Tally()
    for task, n in plan.threads.items():
        impls = {"api": Impl(k, task, plan, tally)}
        for j in range(n):
            body = _raw_server(impls, plan, tally) if task in plan.raw else (lambda kk, i=impls: dispatch(kk, i))
            k.spawn(task, body, f"{task}/server{j}")
    for thread, ids in plan.tops.items():
        task = thread.split("/")[0]

        def main(kk, task=task, ids=ids):
            impl = Impl(kk, task, plan, tally)
            for i in ids:
                call(impl.to(plan.nodes[i].target), i, tally)
        k.spawn(task, main, thread)
    if "z/main" not in plan.tops:
        k.spawn("z", lambda kk: [kk.pause() for _ in range(3)] and None, "z/main")   # runs, never serves
    return k, tally, k.run(max_steps=max_steps)


def run_plan(sol, plan: Plan) -> dict:
    """Drive the plan through a kernel and check every promise; returns the figures."""
    k, tally, out = drive_plan(sol, plan)
    where = f"seed {plan.seed}"
    stuck = {t.name for t in k.threads if not t.done and t.waits and t.waits[0] == "call"}
    counts = check_exactly_once(k.records, out, k.threads)
    if plan.stuck:
        assert out.status == "deadlock", (where, out)
        assert stuck == plan.stuck, (where, stuck, out.detail)
        assert set(out.cycle) == plan.cycle, (where, out.cycle)
    else:
        want = "crashed" if any(n.fail == "bug" for n in plan.nodes.values()) else "finished"
        assert out.status == want and out.cycle == [] and not stuck, (where, out)
    bugs = sorted(f"planned bug in request {n.id}" for n in plan.nodes.values() if n.fail == "bug")
    assert sorted(e.split(": ", 2)[2] for e in out.errors) == bugs, (where, out.errors)

    # Every request that could be answered was handled once and answered once, with its own answer.
    lost_ids = {t.waits[2].message["id"] for t in k.threads if not t.done and t.waits and t.waits[0] == "call"}
    duplicates = sum(n - 1 for n in tally.handled.values() if n > 1)
    losses = wrong = 0
    for node in plan.nodes.values():
        if node.id in lost_ids:
            continue
        if node.id not in tally.results:
            losses += 1
        elif tally.results[node.id] != expected(node):
            wrong += 1
    assert (losses, duplicates, wrong) == (0, 0, 0), (where, losses, duplicates, wrong)
    assert counts["requests"] == counts["answered"] + counts["unanswered"]
    assert counts["unanswered"] == len(lost_ids) and counts["refused"] == tally.refused
    return {"round trips": counts["answered"], "nested": tally.nested, "refused": tally.refused,
            "failed handlers": sum(1 for n in plan.nodes.values() if n.fail and n.id not in lost_ids),
            "deadlocks": int(bool(plan.stuck)), "losses": losses, "duplicates": duplicates, "wrong": wrong}


def soak_random(sol, seeds: range, size: int) -> Counter:
    total = Counter()
    for seed in seeds:
        total.update(run_plan(sol, make_plan(seed, size)))
        total["runs"] += 1
    return total


def test_random_call_graphs_every_request_answered_once(mesh):
    total = soak_random(mesh, range(24), 120)
    assert total["round trips"] >= 2000 and total["deadlocks"] >= 3 and total["refused"] > 0
    assert total["losses"] == total["duplicates"] == total["wrong"] == 0


@pytest.mark.parametrize("seed", range(3))
def test_random_traffic_without_a_genuine_deadlock_never_reports_one(mesh, seed):
    plan = make_plan(1000 + seed, 300, gadgets=False)
    assert not plan.stuck
    run_plan(mesh, plan)


@pytest.mark.soak
def test_random_call_graphs_large(mesh, capsys):
    t0 = time.monotonic()
    total = soak_random(mesh, range(60), 1800)
    _report(capsys, f"random call graphs soak: seeds 0..59 ({total['runs']} runs), {total['round trips']} round trips "
                    f"({total['nested']} nested from handlers, {total['failed handlers']} failed handlers, "
                    f"{total['refused']} second replies refused), {total['deadlocks']} genuine deadlocks "
                    f"reported as deadlocks, losses={total['losses']}, duplicates={total['duplicates']}, "
                    f"wrong caller={total['wrong']} ({time.monotonic() - t0:.1f} s)")
    assert total["round trips"] >= 100_000
    assert total["losses"] == total["duplicates"] == total["wrong"] == 0
