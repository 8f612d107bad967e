"""The simulator's kernel: Call/Recv/Reply through the security module, return codes,
start-up decisions, deterministic scheduling, deadlocks."""
from __future__ import annotations

import pytest

from ksm.sim import IpcError, Kernel, Rc, ServerError
from conftest import write_solution

FILES = {
    "resources/Api.idl": "package sim.Api\ninterface {\n    Put(in UInt32 v, out UInt32 r, error SInt32 rc);\n}\n",
    "resources/Client.edl": "task class sim.Client\n",
    "resources/Server.edl": "task class sim.Server\nendpoints {\n    api : sim.Api\n}\n",
    "resources/Peer.edl": "task class sim.Peer\nendpoints {\n    api : sim.Api\n}\n",
    "resources/Banned.edl": "task class sim.Banned\n",
    "einit/src/security.psl": """use nk.base._
use EDL kl.core.Core
use EDL Einit
use EDL sim.Client
use EDL sim.Server
use EDL sim.Peer
use EDL sim.Banned
execute: kl.core.Execute
execute { grant () }
execute dst=sim.Banned { deny () }
request src=sim.Client, dst=sim.Server, method=Put { assert (message.v < 10) }
response src=sim.Server { assert (message.r < 100) }
error src=sim.Server { grant () }
request src=sim.Peer, dst=sim.Peer { grant () }
response src=sim.Peer { grant () }
""",
    "einit/src/init.yaml": """entities:
  - name: sim.Client
    task: client
    connections:
      - target: server
        id: srv
  - name: sim.Client
    task: client2
    connections:
      - target: server
        id: srv
  - name: sim.Server
    task: server
  - name: sim.Peer
    task: peer1
    connections:
      - target: peer2
        id: p
  - name: sim.Peer
    task: peer2
    connections:
      - target: peer1
        id: p
  - name: sim.Banned
    task: banned
""",
}


@pytest.fixture(scope="module")
def sol(tmp_path_factory):
    return write_solution(tmp_path_factory.mktemp("sim"), FILES)


def calling(message: dict, channel: str = "srv", codes: list | None = None):
    """A client body that makes one call and notes the IPC error code, if any."""
    def body(kernel):
        try:
            kernel.call(channel, "api", "Put", message)
        except IpcError as exc:
            codes.append(exc.rc)
    return body


def serve(k: Kernel, answer=lambda v: {"r": v * 2}, times: int = 1, error: bool = False):
    def body(kernel):
        for _ in range(times):
            req = kernel.recv()
            kernel.reply(req, answer(req.message["v"]), error=error)
    return body


def test_round_trip_returns_out_parameters_and_records_both_decisions(sol):
    k = Kernel(sol)
    got = []
    k.spawn("server", serve(k))
    k.spawn("client", lambda kernel: got.append(kernel.call("srv", "api", "Put", {"v": 3})))
    out = k.run()
    assert out.status == "finished" and got == [{"r": 6}]
    ops = [(r["op"], r.get("decision")) for r in k.records if r["op"] != "execute"]
    assert ops == [("call", "granted"), ("recv", None), ("reply", "granted")]


def test_denied_request_gives_security_disallow_and_never_reaches_the_server(sol):
    k = Kernel(sol)
    seen, errors = [], []
    k.spawn("server", lambda kernel: seen.append(kernel.recv()))

    def client(kernel):
        try:
            kernel.call("srv", "api", "Put", {"v": 50})
        except IpcError as exc:
            errors.append(exc)
    k.spawn("client", client)
    out = k.run()
    assert out.status == "finished" and out.blocked == ["server#0"]     # the server idles in recv
    (exc,) = errors
    assert exc.rc == Rc.SECURITY_DISALLOW and "assert" in exc.decision.reason and not seen


def test_malformed_request_gives_invalid_argument(sol):
    k = Kernel(sol)
    codes: list = []
    k.spawn("server", serve(k))
    k.spawn("client", calling({"v": -1}, codes=codes))          # not a UInt32
    k.run()
    assert codes == [Rc.INVALID_ARGUMENT]


def test_denied_response_fails_both_the_reply_and_the_call(sol):
    k = Kernel(sol)
    codes = []

    def server(kernel):
        req = kernel.recv()
        try:
            kernel.reply(req, {"r": 500})                         # response src=sim.Server needs r < 100
        except IpcError as exc:
            codes.append(("server", exc.rc))

    def client(kernel):
        try:
            kernel.call("srv", "api", "Put", {"v": 1})
        except IpcError as exc:
            codes.append(("client", exc.rc))
    k.spawn("server", server)
    k.spawn("client", client)
    assert k.run().status == "finished"
    assert sorted(codes) == [("client", Rc.SECURITY_DISALLOW), ("server", Rc.SECURITY_DISALLOW)]


def test_error_reply_reaches_the_client_as_server_error(sol):
    k = Kernel(sol)
    got = []
    k.spawn("server", serve(k, answer=lambda v: {"rc": -v}, error=True))

    def client(kernel):
        try:
            kernel.call("srv", "api", "Put", {"v": 4})
        except ServerError as exc:
            got.append(exc.params)
    k.spawn("client", client)
    k.run()
    assert got == [{"rc": -4}]


def test_unknown_channel_is_not_connected(sol):
    k = Kernel(sol)
    codes: list = []
    k.spawn("client", calling({"v": 1}, channel="nowhere", codes=codes))
    k.run()
    assert codes == [Rc.NOT_CONNECTED]


def test_a_process_whose_start_is_denied_does_not_run(sol):
    k = Kernel(sol)
    starts = {r["event"]: r["decision"] for r in k.records if r["op"] == "execute"}
    assert any("banned" in e and d == "denied" for e, d in starts.items())
    with pytest.raises(ValueError, match="not running"):
        k.spawn("banned", lambda kernel: None)


def _two_clients(seed: int) -> list:
    from_server = []

    def build(sol):
        k = Kernel(sol, seed=seed)
        k.spawn("server", serve(k, times=2, answer=lambda v: (from_server.append(v), {"r": v})[1]))
        k.spawn("client", lambda kernel: kernel.call("srv", "api", "Put", {"v": 1}))
        k.spawn("client2", lambda kernel: kernel.call("srv", "api", "Put", {"v": 2}))
        return k
    return build


def test_the_same_seed_gives_the_same_trace_and_seeds_vary_the_order(sol):
    def trace(seed):
        k = _two_clients(seed)(sol)
        assert k.run().status == "finished"
        return [(r["op"], r["thread"], r.get("event")) for r in k.records]
    assert trace(7) == trace(7)
    orders = {tuple(t[1] for t in trace(s) if t[0] == "call") for s in range(12)}
    assert len(orders) == 2                       # both clients get to call first under some seed


def test_a_call_cycle_is_a_deadlock_with_its_wait_for_cycle(sol):
    k = Kernel(sol)
    for me in ("peer1", "peer2"):
        k.spawn(me, lambda kernel: kernel.call("p", "api", "Put", {"v": 1}))
    out = k.run()
    assert out.status == "deadlock"
    assert sorted(out.cycle) == ["peer1#0", "peer2#0"] and sorted(out.blocked) == ["peer1#0", "peer2#0"]


def test_a_call_nobody_serves_is_a_deadlock_without_a_cycle(sol):
    k = Kernel(sol)
    k.spawn("client", lambda kernel: kernel.call("srv", "api", "Put", {"v": 1}))
    out = k.run()
    assert out.status == "deadlock" and out.cycle == [] and out.blocked == ["client#0"]


def _endless(sol) -> Kernel:
    """A client calling the server for ever."""
    k = Kernel(sol)
    k.spawn("server", serve(k, times=10**9))

    def client(kernel):
        while True:
            kernel.call("srv", "api", "Put", {"v": 1})
    k.spawn("client", client)
    return k


def test_step_limit_stops_an_endless_exchange(sol):
    out = _endless(sol).run(max_steps=50)
    assert out.status == "step-limit" and out.steps == 50


def test_a_crashing_behaviour_is_reported_not_raised(sol):
    k = Kernel(sol)
    k.spawn("client", lambda kernel: 1 / 0)
    out = k.run()
    assert out.status == "crashed" and "ZeroDivisionError" in out.errors[0]


def test_a_wall_time_limit_stops_an_endless_exchange(sol):
    out = _endless(sol).run(max_steps=10**9, timeout=0.05)
    assert out.status == "timeout" and 0 < out.steps < 10**9 and not out.ok
