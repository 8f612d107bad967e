"""The simulator's fast paths keep its behaviour: records built later show what was
sent, whatever happens to the values afterwards; the security module's call API is
used only when ``decide`` is its own; the scheduler's shortcut draws as
``random.choice`` does; a run can be continued; the benchmark checks its results.

(The full traces are pinned in test_sim_golden.py; the wire's sealer in
test_sim_wire.py.)  No test here measures time.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ksm.events import Decision, jsonable
from ksm.sim import Behaviour, IpcError, Kernel
from ksm.sim.behaviour import behaviours_of, load_module, start
from ksm.sim.kernel import _UNFROZEN, _chooser, _flat_json, _freeze, _thaw
from policy_lang import load

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"


@pytest.fixture(scope="module")
def echo():
    return load(MODELS / "echo")


@pytest.fixture(scope="module")
def lock():
    return load(MODELS / "smart_lock")


# ----------------------------------------------------------------------------- frozen message values
_scalars = st.one_of(st.integers(-2**300, 2**300), st.text(max_size=4), st.binary(max_size=4), st.booleans(),
                     st.none(), st.floats(allow_nan=False))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(st.text(max_size=3), inner, max_size=3), st.binary(max_size=3).map(bytearray),
), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_a_frozen_value_thaws_to_its_json_form(value):
    frozen = _freeze(value)
    assert frozen is not _UNFROZEN
    assert _thaw(frozen) == jsonable(value)
    assert _flat_json(("head", "k", frozen), 1) == jsonable({"k": value})


@pytest.mark.parametrize("value", [{1: "int key"}, {"a": {2: 3}}, {1, 2}, object(), [object()], {"a": [{3}]}])
def test_values_that_cannot_be_frozen_are_said_so(value):
    assert _freeze(value) is _UNFROZEN


def test_a_frozen_value_does_not_follow_later_changes():
    value = {"batch": [{"level": 1}], "blob": bytearray(b"ab")}
    frozen = _freeze(value)
    value["batch"][0]["level"] = 99
    value["batch"].append({"level": 2})
    value["blob"][0] = 0
    assert _thaw(frozen) == {"batch": [{"level": 1}], "blob": "6162"}


# ----------------------------------------------------------------------------- records show what was sent
def test_records_show_messages_as_sent_though_both_sides_change_them_afterwards(lock):
    """A raw server changes the request it received, the client changes the answer
    it got (a list inside it too): the trace keeps what travelled."""
    kept = []

    def crypto(k):
        req = k.recv()
        digest = [7] * 32
        k.reply(req, {"hash": digest})
        req.message["pin"] = "changed"
        digest[0] = 99

    def ui(k):
        got = k.call("crypto_channel", "engine", "HashPin", {"pin": "1234"})
        kept.append(got)
        got["hash"][0] = 42
        got["extra"] = 1

    k = Kernel(lock, seed=3)
    k.spawn("lock.Crypto", crypto, "crypto")
    k.spawn("lock.Ui", ui, "ui")
    assert k.run().ok
    msgs = [(r["op"], r.get("message")) for r in k.records if r.get("exchange")]
    assert msgs == [("call", {"pin": "1234"}), ("recv", {"pin": "1234"}), ("reply", {"hash": [7] * 32})]
    assert kept == [{"hash": [42] + [7] * 31, "extra": 1}]         # the client's own copy, changed


def test_records_read_during_a_run_are_the_start_of_the_final_ones(echo):
    seen = []

    class Client(Behaviour):
        process_class = "echo.Client"

        def main(self):
            server = self.proxy("server_connection")
            server.Ping(1)
            seen.append([dict(r) for r in self.kernel.records])
            server.Ping(2)

    class Server(Behaviour):
        process_class = "echo.Server"

        def Ping(self, value):
            return value + 1

    k = Kernel(echo, seed=1)
    start(k, {"echo.Client": Client, "echo.Server": Server})
    assert k.run().ok
    (early,) = seen
    assert 0 < len(early) < len(k.records) and k.records[:len(early)] == early


def test_a_run_continued_after_a_step_limit_is_the_run_made_at_once(lock):
    kinds = behaviours_of(load_module(MODELS / "smart_lock" / "sim" / "behaviours.py"), lock.classes)

    def run(limits):
        k = Kernel(lock, seed=2)
        start(k, kinds)
        return [(o.status, o.steps) for o in (k.run(max_steps=m) for m in limits)], k.records

    whole, records = run([10**5])
    parts, records_in_parts = run([20, 57, 10**5])
    assert parts[:2] == [("step-limit", 20), ("step-limit", 57)] and parts[-1] == whole[0]
    assert records_in_parts == records


# ----------------------------------------------------------------------------- the decision calls
def _echo_kernel(echo, **kw) -> Kernel:
    kinds = behaviours_of(load_module(MODELS / "echo" / "sim" / "behaviours.py"), echo.classes)
    k = Kernel(echo, seed=0, **kw)
    start(k, kinds)
    return k


def test_a_decide_replaced_on_the_module_sees_every_message(echo):
    k = _echo_kernel(echo)
    real, seen = k.module.decide, []

    def spy(event):
        seen.append((event.kind, event.method, dict(event.message)))
        return real(event)

    k.module.decide = spy
    assert k.run().ok
    assert k._ask_request is None
    assert seen == [("request", "Ping", {"value": 1}), ("response", "Ping", {"result": 2}),
                    ("request", "Ping", {"value": 100}), ("response", "Ping", {"result": 101}),
                    ("request", "Ping", {"value": 1000}), ("response", "Ping", {"result": 1001}),
                    ("request", "Ping", {"value": 5000})]


def test_the_call_api_gives_the_decisions_decide_gives(echo):
    """With the module's own decide, the kernel may ask through its call API; the
    trace, the notes and the IpcError's decision are those of decide()."""
    fast, slow = _echo_kernel(echo), _echo_kernel(echo)
    slow.module.decide = slow.module.decide          # the same function, but on the instance: the long way
    errors = []
    for k in (fast, slow):
        assert k.run().ok
        errors.append([r for r in k.records if r.get("decision") == "denied"])
    assert fast.records == slow.records and errors[0] == errors[1] and len(errors[0]) == 1


def test_a_denied_request_raises_with_the_decision_and_its_event(echo):
    got = []

    class Client(Behaviour):
        process_class = "echo.Client"

        def main(self):
            try:
                self.proxy("server_connection").Ping(5000)
            except IpcError as exc:
                got.append(exc)

    k = Kernel(echo)
    start(k, {"echo.Client": Client})
    assert k.run().ok
    (exc,) = got
    d = exc.decision
    assert isinstance(d, Decision) and not d.granted and d.event is not None
    assert (d.event.kind, d.event.src, d.event.dst, d.event.method, dict(d.event.message)) == (
        "request", "echo.Client", "echo.Server", "Ping", {"value": 5000})
    assert str(exc).startswith("rcSecurityDisallow: request src=echo.Client dst=echo.Server")


# ----------------------------------------------------------------------------- the scheduler's draw
@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_the_schedulers_draw_is_random_choice(seed):
    a, b = random.Random(seed), random.Random(seed)
    below = _chooser(b)
    sizes = [2, 3, 2, 5, 17, 2, 64, 1000, 3] * 20
    assert [a.choice(range(n)) for n in sizes] == [below(n) for n in sizes]
    assert a.getstate() == b.getstate()


def test_a_generator_of_another_class_is_asked_through_choice():
    class Loaded(random.Random):
        def choice(self, seq):
            return seq[-1]

    assert _chooser(Loaded(1))(5) == 4


# ----------------------------------------------------------------------------- the benchmark's checks
def test_the_benchmark_expectations_are_counted_independently():
    from ksm.sim.bench import _command, _level, _lock_expect, _lock_split

    n = 1500
    subs, hashes, reports = _lock_split(n)
    assert subs + hashes + reports == n
    want = _lock_expect(n, decisions=True)
    refused = [i for i in range(subs) if ";" in _command(i)]
    too_high = [i for i in range(reports) if _level(i) > 100]
    assert len(refused) == 50 and len(too_high) == 96
    assert want["denied"] == {"lock.NetAgent": len(refused), "doorSensor": len(too_high)}
    assert want["granted requests"] == n - len(refused) - len(too_high)
    assert _lock_expect(n, decisions=False)["denied"] == {}


def test_the_benchmark_raises_when_a_run_differs_from_its_workload(echo):
    from ksm.sim import bench

    run = bench._run(echo, "echo", 50, True, True)
    assert len(run.stamps) == 50
    wrong = bench._echo_expect
    try:
        bench.WORKLOADS["echo"] = ("echo", bench._echo_kinds, lambda n, d: dict(wrong(n, d), total=0),
                                   bench._echo_shape)
        with pytest.raises(RuntimeError, match="total: got"):
            bench._run(echo, "echo", 50, False, True)
    finally:
        bench.WORKLOADS["echo"] = ("echo", bench._echo_kinds, wrong, bench._echo_shape)
