"""The simulator's observable output is pinned: full traces, outcomes, taint
violations and replayed decisions of echo, the smart lock (behaviours, scenarios,
the flawed policy with taint), random call graphs (nested calls, failing handlers,
second replies, deadlocks, several server threads) and injected events, compared
with golden files captured from the kernel before its speed-up (records built
eagerly as dictionaries, every switch through the scheduler greenlet).

Whatever the kernel does to go faster (lazy records, direct switches between
threads, decoding once), these must come out byte for byte the same: the records
with their key order, the outcome, the interleaving the seed chooses.

Regenerate only after an intended change of behaviour:
``UPDATE_GOLDEN=1 python -m pytest tests/test_sim_golden.py`` (the file says which
case differs first).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:          # run as a script (capturing with another ksm on PYTHONPATH)
    sys.path.insert(0, str(HERE))

from ksm.events import Event  # noqa: E402
from ksm.sim.kernel import Kernel  # noqa: E402
from ksm.sim.session import run_behaviours, run_scenario  # noqa: E402
from policy_lang import load  # noqa: E402
from policy_lang.props import find_property_files, load_properties  # noqa: E402

ROOT = HERE.parent
MODELS = ROOT / "models"
GOLDEN = HERE / "golden" / "sim_traces.json"
FULL = ("echo seed 0", "smart_lock seed 0", "mesh seed 2", "inject smart_lock")   # kept whole, for diffs


def _props(sol):
    return [p for f in find_property_files(sol) for p in load_properties(sol, f).properties]


def _outcome(o) -> dict:
    return {"status": o.status, "steps": o.steps, "cycle": o.cycle, "blocked": o.blocked, "errors": o.errors,
            "running": o.running, "detail": o.detail}


def _report(rep) -> dict:
    return {"records": rep.kernel.records, "outcome": _outcome(rep.outcome), "render": rep.render(),
            "violations": [v.to_json() for v in rep.violations], "failures": [f.render() for f in rep.failures]}


def _mesh(seed: int, size: int, trace: bool, tmp: Path) -> dict:
    """A random call graph of the soak tests (nested calls, failing handlers, second
    replies, deadlocks), driven as ``run_plan`` drives it, without its asserts."""
    from conftest import write_solution
    from test_sim_soak import _files, drive_plan, make_plan

    sol = write_solution(tmp / "mesh", _files())
    k, tally, out = drive_plan(sol, make_plan(seed, size), max_steps=10**6, trace=trace)
    return {"records": k.records, "outcome": _outcome(out), "results": sorted(tally.results.items()),
            "refused": tally.refused}


def _inject() -> dict:
    """Replay-style delivery (:meth:`Kernel.inject`): granted, denied, malformed and
    unmarshallable messages, execute and security events."""
    sol = load(MODELS / "smart_lock")
    k = Kernel(sol)
    events = [
        Event.request("lock.NetAgent", "lock.Parser", "intake", "Submit", {"text": "UNLOCK 1234", "nonce": 7}),
        Event.request("lock.NetAgent", "lock.Parser", "intake", "Submit", {"text": "UNLOCK; reboot", "nonce": 8}),
        Event.request("lock.NetAgent", "lock.Parser", "intake", "Submit", {"text": "x" * 90, "nonce": 9}),
        Event.request("lock.NetAgent", "lock.Parser", "intake", "Submit", {"text": "LOCK"}),
        Event.response("lock.Parser", "lock.NetAgent", "intake", "Submit", {"accepted": 1}),
        Event.request("lock.Crypto", "lock.KeyStore", "vault.secrets", "GetKey", {"keyId": 0x100}),
        Event.response("lock.KeyStore", "lock.Crypto", "vault.secrets", "GetKey", {"key": list(range(32))}),
        Event.error("lock.KeyStore", "lock.Crypto", "vault.secrets", "GetKey", {"rc": 5}),
        Event.request("lock.Updater", "lock.Storage", "files", "Install",
                      {"image": {"version": 0x10002, "signature": list(range(32)), "vendor": "acme"},
                       "data": b"\x7fELF"}),
        Event.request("lock.Ui", "lock.Controller", "core.door.control", "Status", {}),
        Event.security("lock.Controller", "CheckToken", {"tokenId": 42}),
        Event.execute("lock.Ui", src="Einit"),
        Event.request("lock.NetAgent", "lock.KeyStore", "vault.secrets", "VerifyPin",
                      {"pin": {"hash": [1] * 32, "attempt": 0}}),
    ]
    decisions = [(d.granted, d.reason) for d in map(k.inject, events)]
    return {"records": k.records, "decisions": decisions}


def cases(tmp: Path) -> dict:
    """name -> what the case produced (records, outcome, ...), as JSON values."""
    echo, lock, flawed = load(MODELS / "echo"), load(MODELS / "smart_lock"), load(MODELS / "smart_lock_flawed")
    lock_props, flawed_props = _props(lock), _props(flawed)
    out: dict = {}
    for seed in range(4):
        out[f"echo seed {seed}"] = _report(run_behaviours(echo, None, seed=seed))
    out["echo scenario"] = _report(run_scenario(echo, MODELS / "echo" / "sim" / "ping.yaml"))
    for seed in range(10):
        out[f"smart_lock seed {seed}"] = _report(run_behaviours(lock, None, seed=seed, props=lock_props))
    out["smart_lock step limit"] = _report(run_behaviours(lock, None, seed=1, steps=57))
    out["smart_lock scenario"] = _report(run_scenario(lock, MODELS / "smart_lock" / "sim" / "untrusted.yaml"))
    for seed in range(3):
        out[f"flawed taint seed {seed}"] = _report(
            run_behaviours(flawed, MODELS / "smart_lock" / "sim" / "behaviours.py", seed=seed, props=flawed_props))
    for seed in range(8):
        out[f"mesh seed {seed}"] = _mesh(seed, 60, True, tmp / f"m{seed}")
    out["mesh seed 3 trace off"] = _mesh(3, 60, False, tmp / "off")
    out["inject smart_lock"] = _inject()
    return out


def _text(value, tmp: Path) -> str:
    """The canonical text of a case: JSON in the records' own key order, with the
    machine's paths replaced."""
    text = json.dumps(value, default=repr, ensure_ascii=False)
    for path, name in ((str(tmp), "<tmp>"), (str(ROOT), "<root>")):
        text = text.replace(json.dumps(path)[1:-1], name)
    return text


def snapshot(tmp: Path) -> dict:
    got = {}
    for name, value in cases(tmp).items():
        text = _text(value, tmp)
        entry = {"sha256": hashlib.sha256(text.encode()).hexdigest(), "records": len(value["records"])}
        if "outcome" in value:
            entry["outcome"] = json.loads(_text(value["outcome"], tmp))
        if name in FULL:
            entry["full"] = json.loads(text)
        got[name] = entry
    return got


def test_traces_outcomes_and_decisions_are_the_golden_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)             # rule locations in the explanations are relative to it
    got = snapshot(tmp_path)
    if os.environ.get("UPDATE_GOLDEN") == "1" or not GOLDEN.is_file():
        GOLDEN.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
        pytest.skip("golden simulator traces written; review and commit them")
    want = json.loads(GOLDEN.read_text())
    assert sorted(got) == sorted(want)
    for name in want:
        g, w = got[name], want[name]
        assert g.get("outcome") == w.get("outcome"), name
        assert g["records"] == w["records"], name
        if "full" in w:
            for i, (a, b) in enumerate(zip(g["full"]["records"], w["full"]["records"])):
                assert a == b and list(a) == list(b), (name, i)
            assert g["full"] == w["full"], name
        assert g["sha256"] == w["sha256"], name


def test_live_records_are_the_records_kept(tmp_path):
    """``on_record`` sees each record as it is made, equal to the one kept."""
    lock = load(MODELS / "smart_lock")
    from ksm.sim.behaviour import behaviours_of, load_module, start

    seen: list[dict] = []
    k = Kernel(lock, seed=4, on_record=seen.append)
    start(k, behaviours_of(load_module(MODELS / "smart_lock" / "sim" / "behaviours.py"), lock.classes))
    assert k.run().ok
    plain = run_behaviours(lock, None, seed=4)
    assert seen == k.records == plain.kernel.records
    assert [list(r) for r in seen] == [list(r) for r in plain.kernel.records]


if __name__ == "__main__":          # capture with the kernel on PYTHONPATH: python -P tests/test_sim_golden.py
    import tempfile

    os.chdir(ROOT)
    with tempfile.TemporaryDirectory() as d:
        GOLDEN.write_text(json.dumps(snapshot(Path(d)), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {GOLDEN}")
