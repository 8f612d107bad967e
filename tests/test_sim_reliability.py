"""What a simulator run guarantees (docs/simulation.md, "What a run guarantees"):

* a handler that fails answers its caller with an error: the request is never
  silently dropped (defect 7: ``ksm simulate models/smart_lock`` reported seeds
  13, 14, 28, 32, 53, 59, 77 and 162 as deadlocks);
* a deadlock is a cycle of calls, or a call that can never be served; threads idle
  in ``recv`` are the normal end of a run (defect 8);
* a request is answered once: a second reply is refused and the caller keeps the
  first answer (defect 9).

:func:`check_exactly_once` is the trace check the soak tests use too.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import write_solution

from ksm.sim import IpcError, Kernel, Rc, ServerError
from ksm.sim.kernel import Outcome
from ksm.sim.session import run_behaviours
from ksm.sim.transport import dispatch, proxy
from policy_lang import load

ROOT = Path(__file__).resolve().parent.parent

WORK_IDL = """package sim.Work
interface {
    Work(in UInt32 id, out UInt32 result, error SInt32 rc);
    Forbidden(in UInt32 id);
}
"""

FILES = {
    "resources/Work.idl": WORK_IDL,
    "resources/Client.edl": "task class sim.Client\n",
    "resources/Node.edl": "task class sim.Node\nendpoints {\n    api : sim.Work\n}\n",
    "resources/Strict.edl": "task class sim.Strict\nendpoints {\n    api : sim.Work\n}\n",
    "einit/src/security.psl": """use nk.base._
use EDL kl.core.Core
use EDL Einit
use EDL sim.Client
use EDL sim.Node
use EDL sim.Strict
execute: kl.core.Execute
execute { grant () }
request { grant () }
request method=Forbidden { deny () }
response { grant () }
error { grant () }
error src=sim.Strict { assert (message.rc < 0) }
""",
    "einit/src/init.yaml": """entities:
  - name: sim.Client
    task: client
    connections:
      - {target: front, id: front}
      - {target: strict, id: strict}
      - {target: a, id: a}
  - name: sim.Node
    task: front
    connections:
      - {target: back, id: back}
  - name: sim.Node
    task: back
  - name: sim.Strict
    task: strict
    connections:
      - {target: back, id: back}
  - name: sim.Node
    task: a
    connections:
      - {target: b, id: peer}
  - name: sim.Node
    task: b
    connections:
      - {target: a, id: peer}
""",
}


@pytest.fixture(scope="module")
def sol(tmp_path_factory):
    return write_solution(tmp_path_factory.mktemp("reliable"), FILES)


@pytest.fixture(scope="module")
def lock():
    return load(ROOT / "models" / "smart_lock")


# ----------------------------------------------------------------------------- the trace check
def check_exactly_once(records: list[dict], outcome: Outcome, threads=()) -> dict:
    """Every granted request in ``records`` got exactly one answer the security
    module decided (a response or an error, granted or denied), on the same
    channel and back to the process that sent it; a request left unanswered is
    allowed only when the run is a deadlock and its caller is still blocked in
    ``call`` waiting for exactly that exchange.  Returns the counts.
    """
    opened: dict[int, dict] = {}
    answers: Counter = Counter()
    refused = 0
    for r in records:
        ex = r.get("exchange")
        if r["op"] == "call" and ex:
            assert r["decision"] == "granted", r
            assert ex not in opened, f"exchange {ex} sent twice"
            opened[ex] = r
        elif r["op"] == "reply" and ex:
            assert ex in opened, f"a reply to exchange {ex}, which was never sent"
            if "decision" not in r:                    # refused by the kernel: not outstanding
                assert r["rc"] == "rcInvalidArgument", r
                refused += 1
                continue
            req = opened[ex]
            assert (r["dst"], r["src"], r["channel"]) == (req["src"], req["dst"], req["channel"]), (req, r)
            answers[ex] += 1
    duplicated = {ex: n for ex, n in answers.items() if n > 1}
    assert not duplicated, f"exchanges answered more than once: {duplicated}"
    lost = sorted(set(opened) - set(answers))
    if lost:
        assert outcome.status == "deadlock", f"exchanges never answered: {lost} ({outcome.status})"
        waiting = {t.waits[2].id for t in threads if not t.done and t.waits and t.waits[0] == "call"}
        assert set(lost) == waiting, (lost, waiting)
    return {"requests": len(opened), "answered": len(answers), "unanswered": len(lost), "refused": refused}


def _ops(k: Kernel, exchange: int) -> list[tuple]:
    return [(r["op"], r.get("kind"), r.get("decision"), r.get("rc")) for r in k.records
            if r.get("exchange") == exchange]


class Node:
    """The implementation of sim.Work for tests: ``plan[id]`` says what Work(id) does."""

    def __init__(self, kernel: Kernel, task: str, plan: dict):
        self.kernel, self.task, self.plan = kernel, task, plan

    def Work(self, id):
        what = self.plan.get(id, "ok")
        if what == "forbidden":           # a call of its own that the policy refuses, not caught
            proxy(self.kernel, self.task, "back").Forbidden(id)
        if what == "bug":
            raise KeyError("no such thing")
        if what == "nested":
            return proxy(self.kernel, self.task, "back").Work(id)["result"] + 1
        if what == "peer":                # calls the other peer, whose handler calls back
            return proxy(self.kernel, self.task, "peer").Work(id)["result"] + 1
        return id * 10


def server(task: str, plan: dict | None = None, requests: int | None = None):
    return lambda k: dispatch(k, {"api": Node(k, task, plan or {})}, requests)


def client_calls(channel: str, ids: list[int], got: list):
    """A client body calling Work(id) for each id, noting what came back."""
    def body(k):
        p = proxy(k, k.current.task, channel)
        for i in ids:
            try:
                got.append(("ok", p.Work(i)["result"]))
            except ServerError as exc:
                got.append(("error", exc.params))
            except IpcError as exc:
                got.append((exc.rc.sdk_name, None))
    return body


# ----------------------------------------------------------------------------- 7: handler failures
def test_a_handler_whose_own_call_is_refused_answers_its_caller_with_an_error(sol):
    """It used to be dropped: the client waited for ever and the run was a deadlock."""
    k = Kernel(sol, seed=1)
    got: list = []
    k.spawn("front", server("front", {1: "forbidden"}), "front/server0")
    k.spawn("back", server("back"), "back/server0")
    k.spawn("client", client_calls("front", [1, 2], got), "client/main")
    out = k.run()
    assert out.status == "finished" and not out.errors, out
    assert got == [("error", {"rc": 0}), ("ok", 20)]          # zero error-parameters; the server goes on
    (call,) = [r for r in k.records if r["op"] == "call" and r.get("method") == "Forbidden"]
    assert call["decision"] == "denied"
    ex = next(r["exchange"] for r in k.records if r["op"] == "call" and r.get("message") == {"id": 1})
    assert _ops(k, ex) == [("call", "request", "granted", None), ("recv", "request", None, None),
                           ("reply", "error", "granted", "rcOk")]
    assert any(r["op"] == "note" and f"exchange {ex} is answered with an error" in r["detail"]
               and "IpcError rcSecurityDisallow" in r["detail"] for r in k.records)
    check_exactly_once(k.records, out, k.threads)


def test_the_policy_decides_the_error_reply_of_a_failed_handler(sol):
    """sim.Strict's errors must carry rc < 0: the zero one is denied, and the
    client's call fails with rcSecurityDisallow (it is still answered)."""
    k = Kernel(sol, seed=2)
    got: list = []
    k.spawn("strict", server("strict", {1: "forbidden"}), "strict/server0")
    k.spawn("back", server("back"), "back/server0")
    k.spawn("client", client_calls("strict", [1, 3], got), "client/main")
    out = k.run()
    assert out.status == "finished", out
    assert got == [("rcSecurityDisallow", None), ("ok", 30)]
    check_exactly_once(k.records, out, k.threads)


@pytest.mark.parametrize("seed", range(4))
def test_a_handler_bug_crashes_its_thread_and_releases_the_caller(sol, seed):
    k = Kernel(sol, seed=seed)
    got: list = []
    for n in range(2):                                          # the second thread serves on
        k.spawn("front", server("front", {1: "bug"}), f"front/server{n}")
    k.spawn("client", client_calls("front", [1, 2], got), "client/main")
    out = k.run()
    assert out.status == "crashed", out                         # not a deadlock
    assert got == [("error", {"rc": 0}), ("ok", 20)]
    assert len(out.errors) == 1 and "KeyError" in out.errors[0] and out.errors[0].startswith("front/server")
    assert [r["op"] for r in k.records if r["op"] in ("crash",)] == ["crash"]
    check_exactly_once(k.records, out, k.threads)


def test_a_missing_implementation_answers_with_an_error_too(sol):
    k = Kernel(sol)
    got: list = []
    k.spawn("front", lambda kk: dispatch(kk, {"api": object()}), "front/server0")
    k.spawn("client", client_calls("front", [5], got), "client/main")
    out = k.run()
    assert got == [("error", {"rc": 0})]
    assert out.status == "crashed" and "NotImplementedError" in out.errors[0]


SMART_LOCK_SEEDS = [13, 14, 28, 32, 53, 59, 77, 162]


@pytest.mark.parametrize("seed", SMART_LOCK_SEEDS)
def test_the_smart_lock_seeds_that_dropped_the_parsers_request_finish(lock, seed):
    """The keypad unlocks first; the parser's Unlock is then refused by the door's
    state machine, its Submit handler fails, and the network agent's Submit used to
    wait for ever (reported as a deadlock with a cycle through a thread in recv)."""
    rep = run_behaviours(lock, None, seed=seed)
    assert rep.ok and rep.outcome.status == "finished", rep.render(False)
    notes = [r["detail"] for r in rep.kernel.records if r["op"] == "note"]
    assert "remote 'UNLOCK 1234' refused: rcSecurityDisallow" in notes
    errors = [r for r in rep.kernel.records if r["op"] == "reply" and r.get("kind") == "error"
              and r["src"] == "lock.Parser"]
    assert len(errors) == 1 and errors[0]["message"] == {"rc": 0}
    check_exactly_once(rep.kernel.records, rep.outcome, rep.kernel.threads)


# ----------------------------------------------------------------------------- 8: what a deadlock is
def test_two_servers_that_are_each_others_clients_idle_in_recv_is_finished(sol):
    k = Kernel(sol)
    k.spawn("a", server("a"), "a/server0")
    k.spawn("b", server("b"), "b/server0")
    out = k.run()
    assert out.status == "finished" and out.cycle == [] and sorted(out.blocked) == ["a/server0", "b/server0"]
    assert k.wait_for_cycle() == []


@pytest.mark.parametrize("seed", range(6))
def test_two_mains_calling_each_others_servers_finish(sol, seed):
    k = Kernel(sol, seed=seed)
    got: dict = {"a": [], "b": []}
    for me in ("a", "b"):
        k.spawn(me, server(me), f"{me}/server0")
        k.spawn(me, client_calls("peer", [1, 2, 3], got[me]), f"{me}/main")
    out = k.run()
    assert out.status == "finished", out
    assert got == {"a": [("ok", 10), ("ok", 20), ("ok", 30)], "b": [("ok", 10), ("ok", 20), ("ok", 30)]}
    check_exactly_once(k.records, out, k.threads)


@pytest.mark.parametrize("seed", range(4))
def test_mutual_calls_from_handlers_are_a_deadlock_with_the_handlers_cycle(sol, seed):
    """a's main calls b; b's handler calls a; a's handler calls b, whose only
    server thread is busy: both handlers wait in call on each other."""
    k = Kernel(sol, seed=seed)
    for me in ("a", "b"):
        k.spawn(me, server(me, {1: "peer"}), f"{me}/server0")
    k.spawn("a", client_calls("peer", [1], []), "a/main")
    out = k.run()
    assert out.status == "deadlock"
    assert sorted(out.cycle) == ["a/server0", "b/server0"]
    assert sorted(out.blocked) == ["a/main", "a/server0", "b/server0"]
    assert "a/main waits in call for exchange 1 (peer -> b): b/server0 received it and waits in call itself" \
        in out.detail
    check_exactly_once(k.records, out, k.threads)


def test_a_request_its_server_never_answers_is_a_deadlock_naming_it(sol):
    def drop(k):
        k.recv()                      # and never replies
        k.recv()

    k = Kernel(sol)
    k.spawn("front", drop, "front/server0")
    k.spawn("client", client_calls("front", [1], []), "client/main")
    out = k.run()
    assert out.status == "deadlock" and out.cycle == [] and out.blocked == ["front/server0", "client/main"]
    assert out.detail == ("client/main waits in call for exchange 1 (front -> front): "
                          "front/server0 received it and went back to recv without replying")


def test_a_call_to_a_process_that_never_serves_is_a_deadlock(sol):
    k = Kernel(sol)
    k.spawn("a", server("a"), "a/server0")                      # idle, not part of the deadlock
    k.spawn("client", client_calls("front", [1], []), "client/main")
    out = k.run()
    assert out.status == "deadlock" and out.cycle == []
    assert out.detail == ("client/main waits in call for exchange 1 (front -> front): "
                          "front has no running thread to serve it")


# ----------------------------------------------------------------------------- 9: one answer per request
def _replying_twice(stale: dict, codes: list):
    """Answers each request, then answers the previous one again."""
    def body(k):
        last = None
        while True:
            req = k.recv()
            if last is not None:
                try:
                    k.reply(last, stale)
                except IpcError as exc:
                    codes.append(exc.rc)
            k.reply(req, {"result": req.message["id"] * 10})
            last = req
    return body


@pytest.mark.parametrize("seed", range(8))
def test_a_second_reply_is_refused_and_the_caller_keeps_its_answers(sol, seed):
    """The stale reply used to be granted, recorded, and (when the client was
    already waiting in its next call) taken as the answer to that call."""
    k = Kernel(sol, seed=seed)
    got: list = []
    codes: list = []
    k.spawn("front", _replying_twice({"result": 999}, codes), "front/server0")
    k.spawn("client", client_calls("front", [1, 2, 3], got), "client/main")
    out = k.run()
    assert out.status == "finished", out
    assert got == [("ok", 10), ("ok", 20), ("ok", 30)]
    assert codes == [Rc.INVALID_ARGUMENT, Rc.INVALID_ARGUMENT]
    refused = [r for r in k.records if r["op"] == "reply" and "decision" not in r]
    assert len(refused) == 2 and all(r["rc"] == "rcInvalidArgument" and "already answered" in r["detail"]
                                     for r in refused)
    decided = [r for r in k.records if r["op"] == "reply" and "decision" in r]
    assert [r["message"] for r in decided] == [{"result": 10}, {"result": 20}, {"result": 30}]
    counts = check_exactly_once(k.records, out, k.threads)
    assert counts == {"requests": 3, "answered": 3, "unanswered": 0, "refused": 2}


def test_a_second_error_reply_is_refused_before_the_policy_sees_it(sol):
    decided: list = []
    k = Kernel(sol)
    k.monitors.append(lambda kind, src, dst, message: decided.append(kind))
    codes: list = []

    def twice(kk):
        req = kk.recv()
        kk.reply(req, {"result": 7})
        try:
            kk.reply(req, {"rc": -1}, error=True)
        except IpcError as exc:
            codes.append(exc.rc)
    got: list = []
    k.spawn("front", twice, "front/server0")
    k.spawn("client", client_calls("front", [1], got), "client/main")
    assert k.run().status == "finished"
    assert got == [("ok", 7)] and codes == [Rc.INVALID_ARGUMENT] and decided == ["request", "response"]


def test_only_the_server_that_received_a_request_may_answer_it(sol):
    held: list = []
    codes: list = []
    got: list = []

    def front(kk):
        held.append(kk.recv())
        kk.pause()
        kk.pause()
        kk.reply(held[0], {"result": 1})

    def intruder(kk):
        while not held:
            kk.pause()
        try:
            kk.reply(held[0], {"result": 666})
        except IpcError as exc:
            codes.append(exc.rc)
    k = Kernel(sol)
    k.spawn("front", front, "front/server0")
    k.spawn("back", intruder, "back/main")
    k.spawn("client", client_calls("front", [1], got), "client/main")
    assert k.run().status == "finished"
    assert got == [("ok", 1)] and codes == [Rc.INVALID_ARGUMENT]
