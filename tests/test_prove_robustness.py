"""The prover's error paths, the concrete search before UNKNOWN, and crosscheck's time bound.

* Z3 answering unknown (a timeout) where a model was expected must cost nothing but
  that property's answer: never ``Z3Exception: model is not available`` for the run.
* Whatever goes wrong while proving one property makes that property UNKNOWN with
  the reason; the others keep their answers.
* A base case BMC could not decide is no base case for k-induction.
* Before UNKNOWN, boundary and random messages go through the decision function:
  bitwise and nonlinear conditions Z3 times out on are refuted with a replayed trace.
* ``ksm crosscheck`` bounds the Z3 time of each event key and says what it skipped.
"""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
import z3
from test_engine import door_solution
from test_prove import ISLANDS, props, replay

from ksm.cli import main
from ksm.engine import SecurityModule
from ksm.events import Event
from ksm.verify import prove as prove_mod
from ksm.verify.crosscheck import crosscheck
from ksm.verify.message import (
    Candidates,
    SymbolicMessage,
    int_candidates,
    plainest_model,
)
from ksm.verify.prove import PROVED, REFUTED, UNKNOWN, ProveOptions, Prover
from policy_lang import load
from policy_lang.types import IntType

ROOT = Path(__file__).resolve().parent.parent
ECHO = ROOT / "models" / "echo"


# ------------------------------------------------------------------ helpers
def prove(sol, text: str, **opts):
    prover = Prover(sol, ProveOptions(**opts))
    return prover.prove_all(props(sol, text))


ECHO_HEAD = """use nk.base._
use nk.basic._
use EDL kl.core.Core
use EDL Einit
use EDL echo.Client
use EDL echo.Server
execute: kl.core.Execute
execute src=kl.core.Core, dst=kl.core.Core { grant () }
execute src=kl.core.Core, dst=Einit        { grant () }
execute src=Einit, dst=echo.Client         { grant () }
execute src=Einit, dst=echo.Server         { grant () }
request dst=kl.core.Core { grant () }
response src=kl.core.Core { grant () }
error    src=kl.core.Core { grant () }
"""


def echo_copy(root: Path, signature: str, policy: str, properties: str = "") -> Path:
    """models/echo with another Ping signature and policy (no PAL tests: they use `value`)."""
    for name in ("resources/cdl/PingComp.cdl", "resources/edl/Client.edl", "resources/edl/Server.edl",
                 "einit/src/init.yaml"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text((ECHO / name).read_text())
    (root / "resources/idl").mkdir(parents=True, exist_ok=True)
    (root / "resources/idl/Ping.idl").write_text(f"package echo.Ping\n\ninterface {{\n    {signature};\n}}\n")
    (root / "einit/src/security.psl").write_text(ECHO_HEAD + policy)
    if properties:
        (root / "einit/src/echo.props").write_text(properties)
    return root


PING = "request src=echo.Client, dst=echo.Server, endpoint=pingComp.pingImpl, method=Ping {\n%s\n}\n"


# ================================================================== 2. unknown where a model was expected
class _FlakySolver(z3.Solver):
    """A solver whose every check after the first comes back unknown (as on a timeout)."""

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.last = None

    def check(self, *assumptions):
        self.calls += 1
        self.last = super().check(*assumptions) if self.calls == 1 else z3.unknown
        return self.last

    def model(self):
        if self.last != z3.sat:
            raise z3.Z3Exception("model is not available")
        return super().model()

    def reason_unknown(self):
        return "timeout"


def test_plainest_model_keeps_the_model_it_had_when_z3_answers_unknown():
    msg = SymbolicMessage(load(ECHO).classes["echo.Server"].endpoints[0].interface.methods[0].params, "m")
    value = msg.value.fields["value"].z
    s = _FlakySolver()
    s.add(msg.wellformed(), value > 5)
    assert s.check() == z3.sat
    m = plainest_model(s, [msg])              # every pin question and the final check: unknown
    assert m.eval(value, model_completion=True).as_long() > 5


BRIEF_POLICY = PING % """    assert (message.i0 == 1000)
    assert (((-message.i1) & 12352) >= 1000)
    choice (message.i0) {
        0 : assert ((message.i1 & (65535 + message.i0)) > 4294967296)
        _ : grant ()
    }"""
BRIEF_PROPS = """property p: always request src=echo.Client dst=echo.Server method=Ping where message.i1 > 7
property q: never request src=Einit dst=echo.Server method=Ping
"""


def test_brief_example_is_answered_not_a_crash(tmp_path, capsys):
    """The example of the report: `ksm prove` died with exit 3 (model is not available)."""
    root = echo_copy(tmp_path / "e", "Ping(in UInt16 i0, in UInt32 i1)", BRIEF_POLICY, BRIEF_PROPS)
    code = main(["prove", str(root), "--timeout", "2", "--format", "json"])
    out = capsys.readouterr()
    assert code == 1, out.err                                     # refuted, not a bug (3)
    results = {r["name"]: r for r in json.loads(out.out)["results"]}
    assert results["q"]["status"] == PROVED
    p = results["p"]
    assert p["status"] == REFUTED, p["how"]
    *before, last = p["counterexample"]["steps"]
    assert before == [] and last["expect"] == "denied" and last["message"]["i1"] > 7
    m = SecurityModule(load(root))
    m.boot()
    assert not m.decide(Event.request(last["src"], last["dst"], last["endpoint"], last["method"],
                                      last["message"])).granted


def test_one_property_failing_costs_the_others_nothing(islands, monkeypatch):
    real = prove_mod._Proof.run

    def run(self):
        if self.prop.name == "boom":
            raise KeyError("a bug")
        if self.prop.name == "z3":
            raise z3.Z3Exception("model is not available")
        return real(self)
    monkeypatch.setattr(prove_mod._Proof, "run", run)
    true = "never request src=client dst=server method=Open where message.code >= 100"
    a, boom, z, b = prove(islands, f"property a: {true}\nproperty boom: {true}\nproperty z3: {true}\n"
                                   "property b: never request src=client dst=server method=Open\n")
    assert a.status == PROVED and b.status == REFUTED
    assert boom.status == UNKNOWN and boom.how.startswith("internal error: KeyError: 'a bug'; concrete search: ")
    assert z.status == UNKNOWN and z.how.startswith("Z3 failed: model is not available; concrete search: ")


def test_cli_prove_survives_one_failing_property(islands, tmp_path, capsys, monkeypatch):
    real = prove_mod._Proof.run

    def run(self):
        if self.prop.name == "boom":
            raise RuntimeError("kaputt")
        return real(self)
    monkeypatch.setattr(prove_mod._Proof, "run", run)
    p = tmp_path / "p.props"
    p.write_text("property boom: never request src=client dst=server method=Open where message.code >= 100\n"
                 "property a: never request src=client dst=server method=Open where message.code >= 100\n")
    assert main(["prove", islands.root, "--props", str(p)]) == 1
    out = capsys.readouterr().out
    assert "UNKNOWN  boom" in out and "internal error: RuntimeError: kaputt; concrete search: no counterexample" in out
    assert "PROVED   a" in out


def test_z3_unknown_is_reported_with_its_reason(tmp_path):
    sol = door_solution(tmp_path, "request dst=kl.core.Core { grant () }\n"
                                  "request src=door.Client, dst=door.Server, method=Open {\n"
                                  "    assert (((-message.code) & 12352) >= 1000)\n"
                                  "    assert ((message.code * message.code) & 0xFF00 != 0x3100)\n}\n")
    (r,) = prove(sol, "property a: always request src=client dst=server method=Open where message.code > 7\n",
                 timeout_ms=1, search=False)
    assert r.status == UNKNOWN and r.how.startswith("Z3 returned unknown: "), r.how


# The door whose FSM has two islands (ISLANDS, from tests/test_prove.py): never jammed needs k = 2.
NEVER_JAMMED = 'property j: never state lock[server] == "jammed"\n'


@pytest.fixture(scope="module")
def islands(tmp_path_factory):
    return door_solution(tmp_path_factory.mktemp("islands"), ISLANDS)


def test_k_induction_needs_a_decided_base_case(islands, monkeypatch):
    """BMC answering unknown is no evidence that short traces are safe."""
    (r,) = prove(islands, NEVER_JAMMED, use_chc=False)
    assert r.status == PROVED and r.how == "k-induction, depth 2"

    def bmc(self, bad, depth):
        if depth >= 1:                       # as if Z3 timed out on every trace of 1+ events
            getattr(self, "unknown", {})[depth] = "timeout"
            return None
        return real(self, bad, depth)
    real = prove_mod._System.bmc
    monkeypatch.setattr(prove_mod._System, "bmc", bmc)
    (r,) = prove(islands, NEVER_JAMMED, use_chc=False)
    assert r.status == UNKNOWN, r.how
    assert r.how.startswith("bounded: no counterexample up to depth 0") and "Z3 returned unknown" in r.how


# ================================================================== 10. the concrete search
class _GivingUp(z3.Solver):
    """Z3 as on a hard bitwise/nonlinear question: every answer is unknown."""

    def check(self, *assumptions):
        return z3.unknown

    def reason_unknown(self):
        return "timeout"


@pytest.fixture
def z3_gives_up(monkeypatch):
    """Every solver of the prover answers unknown, and so does Spacer (deterministic,
    where a 1 ms timeout only usually is)."""
    def solver(self):
        return _GivingUp()
    monkeypatch.setattr(prove_mod._Proof, "solver", solver)
    monkeypatch.setattr(prove_mod._System, "chc", lambda self, bad: UNKNOWN)


BITWISE = PING % "    assert ((message.value & 0xF0) != 0x30)\n    assert (message.a * message.b < 1000)"


@pytest.fixture(scope="module")
def bitwise(tmp_path_factory):
    return load(echo_copy(tmp_path_factory.mktemp("bitwise"), "Ping(in UInt32 value, in UInt32 a, in UInt32 b)",
                          BITWISE))


@pytest.mark.parametrize("text,field", [
    ("always request src=echo.Client dst=echo.Server method=Ping", "value"),
    ("always request src=echo.Client dst=echo.Server method=Ping where message.a < 100 && message.b < 100", "a"),
    ("never request src=echo.Client dst=echo.Server method=Ping where message.a > 4000", "a"),
])
def test_one_line_bitwise_and_nonlinear_asserts_are_refuted(bitwise, text, field, z3_gives_up):
    """Z3 cannot answer; the concrete search refutes each (false) property."""
    (r,) = prove(bitwise, f"property p: {text}\n")
    assert r.status == REFUTED, r.how
    assert "found by a concrete search" in r.how and r.how.endswith("proof attempt: Z3 returned unknown: timeout")
    replay(bitwise, r)
    (step,) = r.counterexample.steps
    assert step.expect == ("granted" if text.startswith("never") else "denied")


def test_bitwise_asserts_with_a_real_z3_timeout(bitwise):
    """The same with Z3 given 1 ms: refuted either way, and the trace replays."""
    for text in ("always request src=echo.Client dst=echo.Server method=Ping",
                 "never request src=echo.Client dst=echo.Server method=Ping where message.a > 4000"):
        (r,) = prove(bitwise, f"property p: {text}\n", timeout_ms=1)
        assert r.status == REFUTED, r.how
        replay(bitwise, r)


def test_search_finds_a_literal_of_the_policy(tmp_path, z3_gives_up):
    sol = door_solution(tmp_path, "request dst=kl.core.Core { grant () }\n"
                                  "request src=door.Client, dst=door.Server, method=Open {\n"
                                  "    assert (((-message.code) & 12352) >= 1000)\n}\n")
    (r,) = prove(sol, "property a: always request src=client dst=server method=Open where message.code > 7\n",
                 timeout_ms=1)
    assert r.status == REFUTED, r.how
    replay(sol, r)
    code = r.counterexample.steps[-1].event.message["code"]
    assert code > 7 and ((-code) & 12352) < 1000


def test_search_never_refutes_a_true_property(bitwise, monkeypatch):
    """Malformed messages and messages outside `where` are no counterexamples."""
    def unknown(self):
        return self.result(UNKNOWN, "forced")
    monkeypatch.setattr(prove_mod._Proof, "run", unknown)
    r1, r2 = prove(bitwise, "property t1: never request src=echo.Client dst=echo.Server method=Ping "
                            "where message.a * message.b >= 1000\n"
                            "property t2: always request src=echo.Client dst=echo.Server method=Ping "
                            "where (message.value & 0xF0) != 0x30 && message.a == 0\n")
    for r in (r1, r2):
        assert r.status == UNKNOWN
        assert r.how.startswith("forced; concrete search: no counterexample among "), r.how


STATEFUL = """request dst=kl.core.Core { grant () }
request src=door.Client, dst=door.Server, method=Open {
    assert (((-message.code) & 12352) < 1000)
    fsm.enter { sid : dst_sid, state : "open" }
}
"""


def test_state_properties_are_searched_along_random_walks(tmp_path, z3_gives_up):
    sol = door_solution(tmp_path, STATEFUL)
    never, reach, inv = prove(sol, 'property n: never state fsm[server] == "open"\n'
                                   'property r: reachable state fsm[server] == "open"\n'
                                   'property i: invariant state fsm[server] == "closed"\n', timeout_ms=1)
    assert never.status == REFUTED and "found by a concrete search" in never.how, never.how
    assert reach.status == PROVED and "witness" in reach.how, reach.how
    assert inv.status == REFUTED, inv.how
    for r in (never, reach, inv):
        replay(sol, r)
        assert [s.event.method for s in r.counterexample.steps] == ["Open"]


def test_event_property_searched_after_a_walk(tmp_path, z3_gives_up):
    """`always Close` fails only once the door is open: one granted Open first."""
    sol = door_solution(tmp_path, STATEFUL + "request src=door.Client, dst=door.Server, method=Close {\n"
                                             "    assert (fsm.query { sid : dst_sid } == \"closed\")\n}\n")
    (r,) = prove(sol, "property c: always request src=client dst=server method=Close\n", timeout_ms=1)
    assert r.status == REFUTED, r.how
    replay(sol, r)
    assert [s.event.method for s in r.counterexample.steps] == ["Open", "Close"]


def test_int_candidates_are_boundaries_within_the_range():
    vals = int_candidates(IntType("UInt8", 8, False), [0x30, 1000])
    assert vals[:2] == [0, 1]
    assert {0, 1, 255, 254, 127, 128, 129, 0x30, 0x2F, 0x31} <= set(vals)
    assert all(0 <= v <= 255 for v in vals) and len(vals) == len(set(vals))
    signed = int_candidates(IntType("SInt16", 16, True), [12352])
    assert {-1, -32768, -32767, 32767, 12352, -12352, -(1 << 14) - 1} <= set(signed)
    assert all(-32768 <= v <= 32767 for v in signed)


def test_candidates_are_well_formed(tmp_path):
    """Every boundary and random message of a structured method passes the structure check."""
    sol = door_solution(tmp_path, "request dst=kl.core.Core { grant () }\nrequest { grant () }\n")
    m = SecurityModule(sol)
    m.boot()
    method = sol.classes["door.Server"].endpoints[0].interface.methods
    put = next(x for x in method if x.name == "Put")
    gen = Candidates(put.params, [3, 300], ["ab"], random.Random(1))
    messages = list(gen.boundary())[:300] + [gen.random() for _ in range(200)]
    assert len(messages) > 50
    for msg in messages:
        d = m.decide(Event.request("client", "server", "api", "Put", msg))
        assert d.granted, (msg, d.reason)


# ================================================================== crosscheck: a time bound per key
def generated_policy(root: Path, seed: int = 1, methods: int = 7) -> Path:
    """A 60-70 line policy of bitwise and nonlinear asserts (as in the report)."""
    rng = random.Random(seed)
    types = ["UInt8", "UInt16", "UInt32", "UInt64", "SInt32", "SInt64", "UInt32", "UInt16"]
    sigs, binds = [], []
    for m in range(methods):
        fields = [(f"f{i}", rng.choice(types)) for i in range(rng.randint(2, 4))]
        sigs.append(f"M{m}({', '.join(f'in {t} {n}' for n, t in fields)})")
        names = [n for n, _ in fields]

        def atom(names=names):
            a, b = rng.sample(names, 2)
            lit = rng.choice([0xF0, 0x30, 12352, 1000, 255, 65535, 7, 1 << rng.randint(3, 30)])
            return [f"((message.{a} & {hex(lit)}) != {hex(lit >> 2)})",
                    f"(message.{a} * message.{b} < {lit * 10})",
                    f"((message.{a} | message.{b}) != {lit})",
                    f"(((-message.{a}) & {lit}) >= {lit // 3})",
                    f"((message.{a} * {rng.randint(3, 99)} + message.{b}) != {lit})",
                    f"((message.{a} & message.{b}) <= {lit})",
                    f"(message.{a} * message.{a} != {lit * 7 + 1})"][rng.randrange(7)]
        body = [f"    assert {atom()}" for _ in range(rng.randint(1, 3))]
        body += [f"    choice (message.{rng.choice(names)} & 3) {{", f"        0 : assert {atom()}",
                 "        _ : grant ()", "    }"]
        binds.append(f"request src=echo.Client, dst=echo.Server, endpoint=pingComp.pingImpl, method=M{m} {{\n"
                     + "\n".join(body) + "\n}\n")
    echo_copy(root, ";\n    ".join(sigs), "".join(binds))
    return root


def test_crosscheck_of_a_bitwise_policy_takes_seconds_not_minutes(tmp_path):
    root = generated_policy(tmp_path / "g")
    assert 60 <= len((root / "einit/src/security.psl").read_text().splitlines()) <= 75
    sol = load(root)
    t0 = time.perf_counter()
    r = crosscheck(sol, 200, 0, 2)
    took = time.perf_counter() - t0
    assert r.disagreements == [], r.disagreements[0].describe()
    assert r.agreed > 500
    assert took < 60, took                    # was about two minutes; a few seconds now (loaded CI: slack)
    assert r.events == r.agreed + r.skipped


def test_crosscheck_says_what_its_time_budget_skipped(tmp_path, monkeypatch, capsys):
    root = generated_policy(tmp_path / "g", seed=2)
    r = crosscheck(load(root), 50, 0, 0, key_seconds=0.0)
    assert r.budget_keys and r.budget_events > 0
    assert any("method=M" in k for k in r.budget_keys)
    assert r.events == r.agreed + r.skipped        # skipped-for-time events are not counted as checked
    assert r.budget_events == sum(r.budget_keys.values())
    assert r.skipped_lines()[0] == (f"skipped: {r.budget_events} event(s) not checked, of {len(r.budget_keys)} "
                                    "event key(s) whose Z3 time budget (0 s per key) was used up:")

    from ksm.verify import crosscheck as cc
    monkeypatch.setattr(cc, "KEY_SECONDS", 0.0)
    assert main(["crosscheck", str(root), "--events", "20", "--walk", "0"]) == 0
    out = capsys.readouterr().out
    assert "0 disagreed" in out and "skipped: " in out and "Z3 time budget (0 s per key) was used up:" in out
    assert "method=M0: " in out and "event(s) not checked" in out
