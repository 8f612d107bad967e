"""Issue 17, defect 1: nothing is granted by a route-cache lookup that bypasses the type
checks.  Names can be numbers (a SID for a process, a RIID for an endpoint, a MID for a
method), and 3 == 3.0 and 0 == 0.0 == False hash alike, so each numeric name is tried
with its float (and, for 0 and 1, its bool) after the genuine event warmed the cache,
and on a fresh module."""
from pathlib import Path

import pytest

import ksm
from ksm import Event, SecurityModule

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def module() -> SecurityModule:
    m = SecurityModule(ksm.load(str(ROOT / "models" / "echo")))
    m.boot()
    return m


def _numeric_names(module) -> dict:
    """The echo request with every name a number: SIDs, RIID 0, MID 0."""
    return {"src": module._by_task["echo.Client"], "dst": module._by_task["echo.Server"], "endpoint": 0, "method": 0}


@pytest.mark.parametrize("position", ["src", "dst", "endpoint", "method"])
@pytest.mark.parametrize("lookalike", [float, bool])
def test_a_lookalike_number_is_denied_warm_and_fresh(module, position, lookalike):
    names = _numeric_names(module)
    assert module.decide(Event.request(**names, message={"value": 7})).granted      # warms the cache
    if lookalike is bool and names[position] not in (0, 1):
        pytest.skip("only 0 and 1 have a bool that equals them")
    names[position] = lookalike(names[position])
    for target in (module, SecurityModule(module.solution)):
        if target is not module:
            target.boot()
        decision = target.decide(Event.request(**names, message={"value": 7}))
        assert not decision.granted, (position, lookalike, decision.reason)
        assert not decision.reason.startswith("internal-error"), decision.reason
