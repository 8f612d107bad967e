"""Messages on the wire: proxies and dispatchers from the EDL/IDL, the kernel's
structure check on raw bytes, and run-time channels through the connection manager."""
from __future__ import annotations

import pytest

from ksm.sim import IpcError, Kernel, Rc, ServerError, wire
from ksm.sim.transport import dispatch, proxy
from conftest import write_solution

FILES = {
    "resources/Api.idl": """package sim.Api
interface {
    Put(in UInt32 v, out UInt32 r, error SInt32 rc);
    Name(in string<8> s, out string<8> t);
}
""",
    "resources/Client.edl": "task class sim.Client\n",
    "resources/Spy.edl": "task class sim.Spy\n",
    "resources/Server.edl": "task class sim.Server\nendpoints {\n    api : sim.Api\n    alt : sim.Api\n}\n",
    "einit/src/security.psl": """use nk.base._
use EDL kl.core.Core
use EDL Einit
use EDL sim.Client
use EDL sim.Spy
use EDL sim.Server
execute: kl.core.Execute
execute { grant () }
request dst=kl.core.Core { grant () }
request src=sim.Spy, dst=kl.core.Core, method=Connect { deny () }
response src=kl.core.Core { grant () }
error src=kl.core.Core { grant () }
request src=sim.Client, dst=sim.Server { grant () }
request src=sim.Spy, dst=sim.Server { grant () }
response src=sim.Server { grant () }
error src=sim.Server { grant () }
""",
    "einit/src/init.yaml": """entities:
  - name: sim.Client
    task: client
    connections:
      - target: server
        id: srv
  - name: sim.Spy
    task: spy
  - name: sim.Server
    task: server
""",
}


@pytest.fixture(scope="module")
def sol(tmp_path_factory):
    return write_solution(tmp_path_factory.mktemp("simwire"), FILES)


class Api:
    """One endpoint's implementation; ``tag`` tells the endpoints apart."""

    def __init__(self, tag: int):
        self.tag = tag

    def Put(self, v):
        if v == 13:
            raise ServerError(rc=-13)
        return v + self.tag                   # a bare value: the one out-parameter

    def Name(self, s):
        return {"t": s.upper()}


def run_client(sol, body, implementations=None, seed=0):
    k = Kernel(sol, seed=seed)
    got: list = []
    k.spawn("server", lambda kernel: dispatch(kernel, implementations or {"api": Api(1000), "alt": Api(2000)}))
    k.spawn("client", lambda kernel: body(kernel, got))
    out = k.run()
    return k, out, got


def test_proxy_calls_the_endpoint_named_and_the_dispatcher_finds_it_by_riid_and_mid(sol):
    def body(k, got):
        api, alt = proxy(k, "client", "srv", "api"), proxy(k, "client", "srv", "alt")
        got += [api.Put(1), alt.Put(v=1), api.Name("ab")]
    k, out, got = run_client(sol, body)
    assert out.status == "finished"
    assert got == [{"r": 1001}, {"r": 2001}, {"t": "AB"}]
    calls = [r for r in k.records if r["op"] == "call"]
    assert [(r["endpoint"], r["method"]) for r in calls] == [("api", "Put"), ("alt", "Put"), ("api", "Name")]


def test_proxy_needs_the_endpoint_when_the_server_has_several(sol):
    k = Kernel(sol)
    with pytest.raises(ValueError, match="2 endpoints"):
        proxy(k, "client", "srv")
    with pytest.raises(ValueError, match="no endpoint 'nope'"):
        proxy(k, "client", "srv", "nope")


def test_an_implementation_raising_server_error_sends_an_error_reply(sol):
    def body(k, got):
        try:
            proxy(k, "client", "srv", "api").Put(13)
        except ServerError as exc:
            got.append(exc.params)
    k, _, got = run_client(sol, body)
    assert got == [{"rc": -13}]
    assert any(r["op"] == "reply" and r["kind"] == "error" and r["decision"] == "granted" for r in k.records)


def test_a_value_that_does_not_fit_the_idl_type_cannot_be_marshalled(sol):
    def body(k, got):
        try:
            proxy(k, "client", "srv", "api").Name("far too long")      # string<8>
        except IpcError as exc:
            got.append((exc.rc, exc.decision.reason))
    k, _, got = run_client(sol, body)
    ((rc, reason),) = got
    assert rc == Rc.INVALID_ARGUMENT and "exceeds string<8>" in reason
    assert not any(r["op"] == "recv" for r in k.records)           # the server never saw it


def _raw_request(sol, riid=0, mid=0, message=None):
    method = sol.classes["sim.Server"].endpoints[riid].interface.methods[mid]
    return wire.pack(riid, mid, "request", wire.layout(method, "request"), message or {"v": 5})


@pytest.mark.parametrize("mangle, problem", [
    (lambda b: b[:-1], "malformed message"),                                    # truncated
    (lambda b: b + b"\x00", "malformed message"),                               # a byte too many
    (lambda b: b[:4] + (7).to_bytes(4, "little") + b[8:], "no endpoint RIID 7"),    # RIID nobody serves
    (lambda b: b"\xff\xff" + b[2:], "malformed message"),                       # not a message header
    (lambda b: b[:12] + (0).to_bytes(4, "little") + (4).to_bytes(4, "little") + b[20:],
     "constant part of 0 bytes"),                                               # sizes that add up, split wrongly
])
def test_the_kernel_checks_raw_requests_and_refuses_malformed_ones(sol, mangle, problem):
    data = mangle(_raw_request(sol))

    def body(k, got):
        try:
            got.append(k.call_raw("srv", data))
        except IpcError as exc:
            got.append((exc.rc, exc.decision.reason))
    k, _, got = run_client(sol, body)
    ((rc, reason),) = got
    assert rc == Rc.INVALID_ARGUMENT and problem in reason
    assert not any(r["op"] == "recv" for r in k.records)


def test_a_well_formed_raw_request_is_decoded_and_delivered(sol):
    def body(k, got):
        got.append(k.call_raw("srv", _raw_request(sol, riid=1)))
    _, out, got = run_client(sol, body)
    assert out.status == "finished" and got == [{"r": 2005}]


def test_a_malformed_raw_reply_fails_both_sides(sol):
    codes = []

    def server(k):
        req = k.recv()
        try:
            k.reply_raw(req, b"\x4b\x4e\x01\x00" + bytes(12))       # a response header with wrong sizes
        except IpcError as exc:
            codes.append(("server", exc.rc))

    def client(k):
        try:
            k.call("srv", "api", "Put", {"v": 1})
        except IpcError as exc:
            codes.append(("client", exc.rc))
    k = Kernel(sol)
    k.spawn("server", server)
    k.spawn("client", client)
    assert k.run().status == "finished"
    assert sorted(codes) == [("client", Rc.INVALID_ARGUMENT), ("server", Rc.INVALID_ARGUMENT)]


# ---------------------------------------------------------------------------- run-time channels
def test_a_client_connects_to_a_published_service_and_the_waiting_server_serves_it(sol):
    k = Kernel(sol, seed=3)
    got = []

    def server(kernel):
        kernel.publish("svc", "api")
        dispatch(kernel, {"api": Api(1), "alt": Api(2)}, requests=1)  # already in recv when spy connects

    k.spawn("server", server)

    def client(kernel):
        while "svc" not in kernel.services:
            kernel.pause()
        channel = kernel.connect("svc")
        got.append(proxy(kernel, "client", channel, "api").Put(v=4))
    k.spawn("client", client)
    out = k.run()
    assert out.status == "finished" and got == [{"r": 5}]
    ops = [(r["op"], r.get("method")) for r in k.records if r.get("channel") == "kernel" or r["op"] == "connect"]
    assert ("call", "Listen") in ops and ("call", "Connect") in ops and ("connect", None) in ops


def test_the_policy_decides_who_may_connect(sol):
    k = Kernel(sol)
    codes = []
    k.spawn("server", lambda kernel: kernel.publish("svc", "api"))

    def spy(kernel):
        while "svc" not in kernel.services:
            kernel.pause()
        try:
            kernel.connect("svc")
        except IpcError as exc:
            codes.append((exc.rc, exc.decision.event.method))
    k.spawn("spy", spy)
    k.run()
    assert codes == [(Rc.SECURITY_DISALLOW, "Connect")]
    assert ("spy", "svc") not in k.channels


def test_connecting_to_an_unpublished_service_is_not_connected(sol):
    k = Kernel(sol)
    codes = []

    def client(kernel):
        try:
            kernel.connect("nobody")
        except IpcError as exc:
            codes.append(exc.rc)
    k.spawn("client", client)
    k.run()
    assert codes == [Rc.NOT_CONNECTED]
    assert any(r["op"] == "reply" and r.get("kind") == "response" for r in k.records)    # the kernel's answer (rc)
