"""Differential testing on generated solutions (ksm.fuzz): the back ends against each other.

Small in CI (a few seeds, well under a minute); large on demand:
``KSM_FUZZ=1 pytest tests/test_fuzz_harness.py -k large`` (seeds from ``KSM_FUZZ_SEEDS``,
``FIRST:END``, default 1000:1150).  Every failure message starts with its seed;
``python -m ksm.fuzz SEED --out DIR`` writes that solution and runs the checks again.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace

import pytest

from ksm.engine import SecurityModule
from ksm.events import Decision
from ksm.fuzz import FuzzOptions, check_seed, generate_solution, run_fuzz
from ksm.fuzz.harness import LARGE
from policy_lang import load
from policy_lang.props import load_properties

CI_SEEDS = range(8)
#: The CI size: one seed takes a second or two (a property the prover cannot settle
#: in 2 s is counted "over budget", not failed).
CI = FuzzOptions(events_per_key=3, walk=1, probes_per_key=8, probe_walks=3, walk_steps=6, probe_states=3,
                 timeout_ms=1000, depth=3, property_seconds=2.0)


def failure(r) -> str:
    return f"seed {r.seed}: {len(r.findings)} finding(s)\n" + "\n".join(f.describe() for f in r.findings)


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_back_ends_agree_on_a_generated_solution(seed):
    r = check_seed(seed, CI)
    assert r.loaded, failure(r)
    assert not r.findings, failure(r)
    assert r.properties > 0 and r.events > 0, f"seed {seed}: nothing was checked ({r.properties} properties, " \
                                              f"{r.events} events)"


def test_generated_solutions_load_and_are_deterministic(tmp_path):
    for seed in range(12):
        a = generate_solution(tmp_path / f"a{seed}", seed)
        b = generate_solution(tmp_path / f"b{seed}", seed)
        assert a.files == b.files, f"seed {seed}: two runs wrote different files"
        sol = load(tmp_path / f"a{seed}")
        assert sol.ok, f"seed {seed}: " + "\n".join(d.render() for d in sol.diagnostics
                                                     if d.severity.value == "error")
        props = load_properties(sol, tmp_path / f"a{seed}" / "einit/src/fuzz.props")
        assert props.ok and props.properties, f"seed {seed}: " + "\n".join(d.render() for d in props.diagnostics)
    assert generate_solution(tmp_path / "x", 1).files != generate_solution(tmp_path / "y", 2).files


def test_generated_solutions_cover_the_constructs(tmp_path):
    seen: Counter = Counter()
    for seed in range(40):
        seen.update(generate_solution(tmp_path / str(seed), seed).features)
    wanted = {
        "idl struct", "idl union", "idl array", "idl sequence", "idl handle", "idl typedef", "idl const <<",
        "idl const >>", "idl const ^", "component", "security interface", "several instances of a class",
        "static channels", "Flow", "HashSet", "StaticMap", "Mic", "Mic categories", "Regex match", "Regex select",
        "binding request", "binding response", "binding error", "binding security", "nested match",
        "choice int", "choice bool", "choice flow", "choice select", "choice mic",
        "op +", "op -", "op *", "op &", "op |", "op ~", "op neg", "op abs", "op sum", "op cast", "op &&", "op ||",
        "op ==>", "op !", "bit and offset idioms", "size", "rule assert", "rule deny_if", "rule grant",
        "rule enter", "rule allow", "rule add", "rule remove", "rule set", "rule commit", "rule mic",
        "property mirrored rule", "property never event", "property always event", "property never state",
        "property reachable state", "property invariant state",
    }
    missing = sorted(wanted - set(seen))
    assert not missing, f"seeds 0..39 never generate: {missing}"


def test_the_harness_notices_a_broken_decision_function(monkeypatch):
    """A decision function that grants every well-formed message it should deny must be
    caught: by the crosscheck, and by the probes of the `never` properties Z3 proves."""
    real = SecurityModule._decide

    def broken(self, event):
        d = real(self, event)
        if not d.granted and event.kind != "execute" and not d.reason.startswith("malformed"):
            return Decision(True, "mutant: granted anyway", event)
        return d
    monkeypatch.setattr(SecurityModule, "_decide", broken)
    checks: Counter = Counter()
    for seed in range(10):
        # the crosscheck shrinks every disagreement: once it has found some, the probes alone
        r = check_seed(seed, replace(CI, events_per_key=1, walk=0, crosscheck=not checks["crosscheck"]))
        checks.update(f.check for f in r.findings)
        assert all(f.describe().startswith(f"seed {seed}:") for f in r.findings)
        if checks["crosscheck"] and checks["proved-contradicted"]:
            break
    assert checks["crosscheck"] > 0, checks
    assert checks["proved-contradicted"] > 0, checks


def test_run_fuzz_reports_its_figures():
    rep = run_fuzz(range(5, 6), events_per_key=2, walk=0, options=CI)
    text = rep.report()
    f = rep.figures()
    assert rep.ok, text
    assert f["solutions"] == 1 and f["events compared"] > 0 and f["properties"] > 0
    for words in ("generated solutions", "events compared", "disagreements", "PROVED confirmed by",
                  "counterexamples", "crashes"):
        assert words in text, text


@pytest.mark.fuzz_large
@pytest.mark.skipif(os.environ.get("KSM_FUZZ") != "1", reason="large fuzz run: set KSM_FUZZ=1")
def test_large_fuzz_run():
    first, end = (int(x) for x in os.environ.get("KSM_FUZZ_SEEDS", "1000:1150").split(":"))
    done = []

    def progress(r):
        done.append(r)
        print(f"seed {r.seed}: {r.seconds:.1f} s, {len(r.findings)} finding(s)", flush=True)
    rep = run_fuzz(range(first, end), LARGE.events_per_key, LARGE.walk, progress=progress)
    print(rep.report())
    assert rep.ok, rep.report()


# ------------------------------------------------------------------ defects found by the fuzzer
UNION_TAG = {
    "resources/Api.idl": "package m.Api\nunion Choice {\n    UInt16 ident;\n    UInt64 tag;\n}\n"
                         "interface {\n    Query(in Choice mode);\n}\n",
    "resources/Server.edl": "task class m.Server\nendpoints {\n    api : m.Api\n}\n",
    "einit/src/init.yaml": "entities:\n  - name: m.Server\n    task: s\n",
    "einit/src/security.psl": "use nk.base._\nuse nk.basic._\nuse EDL kl.core.Core\nuse EDL Einit\n"
                              "use EDL m.Server\nexecute: kl.core.Execute\nexecute { grant () }\n"
                              "request src=m.Server dst=m.Server endpoint=api method=Query { grant () }\n",
}


def test_a_union_member_called_tag(tmp_path):
    """Fuzz seed 1073: the Z3 model named a union's discriminant `<path>.tag`, the same
    variable as a union member called `tag`, and proved a false property."""
    from policy_lang.props import parse_properties
    from policy_lang.source import SourceText

    from ksm.events import Event
    from ksm.verify.crosscheck import crosscheck
    from ksm.verify.prove import Prover

    for rel, text in UNION_TAG.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    sol = load(tmp_path)
    assert sol.ok
    module = SecurityModule(sol)
    module.boot()
    assert module.decide(Event.request("s", "s", "api", "Query", {"mode": {"tag": 6}})).granted
    prop = parse_properties(sol, SourceText("<t>.props", "property p: never request src=s dst=s endpoint=api "
                                                         "method=Query where message.mode.tag > 5\n")).properties[0]
    assert Prover(sol).prove(prop).status == "REFUTED"          # was PROVED: an unsound proof
    assert not crosscheck(sol, events=40, seed=0, walk=0).disagreements
