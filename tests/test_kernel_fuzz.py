"""Malformed messages to the built-in kernel are denied, even by a policy granting every kernel call.

The oracle (:func:`ksm.fuzz.kernel.malformed`) is written from the kernel description
(endpoint, method and parameter names by direction) and the limits of any IDL value,
not from the engine.  Negative integers below SInt64's minimum that still have 64 bits
of magnitude are a known gap of the engine (see ``test_negative_int_below_sint64_is_denied``);
the other tests set that one category aside so that they keep guarding the rest.
"""
from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ksm.events import Event
from ksm.fuzz.__main__ import main as fuzz_main
from ksm.fuzz.kernel import (
    IDL_INT_MAX,
    IDL_INT_MIN,
    KernelCase,
    booted_module,
    check_kernel_messages,
    judge,
    kernel_methods,
    malformed,
)
from policy_lang.kernel import ANY_PARAM
from policy_lang.solution import KERNEL_CLASS

METHODS = kernel_methods()
ENDPOINTS = sorted(METHODS)
ALL_METHODS = sorted({m for ms in METHODS.values() for m in ms})
NAMES = sorted({n for ms in METHODS.values() for m in ms.values() for n, _ in m.untyped})


@pytest.fixture(scope="module")
def module():
    return booted_module()


def tolerated(case: KernelCase) -> bool:
    """No malformed event is tolerated (the negative-integer gap this test found is fixed)."""
    return False


# ------------------------------------------------------------------ hypothesis
_leaf = st.one_of(
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.sampled_from([IDL_INT_MIN, IDL_INT_MAX, IDL_INT_MAX + 1, IDL_INT_MIN - 1, -(2 ** 64), 10 ** 400, True]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=6),
    st.none(),
    st.sampled_from([object(), {1, 2}, 1j, frozenset(), range(2)]),
)
_values = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers(-2, 2), st.binary(max_size=2), st.none()),
                        inner, max_size=3),
    ),
    max_leaves=12,
)
_names = st.one_of(st.sampled_from(NAMES), st.just(ANY_PARAM), st.text(max_size=6),
                   st.one_of(st.integers(-2, 2), st.binary(max_size=3), st.none(), st.booleans()))


@st.composite
def kernel_events(draw):
    """Mostly addressed right (so that messages get looked at), with every kind of mistake."""
    kind = draw(st.sampled_from(["request", "request", "response", "error"]))
    if draw(st.integers(0, 9)) < 8:
        endpoint = draw(st.sampled_from(ENDPOINTS))
    else:
        endpoint = draw(st.one_of(st.sampled_from(ENDPOINTS).map(str.lower), st.text(max_size=10),
                                  st.integers(-1, len(ENDPOINTS) + 1), st.none()))
    own = sorted(METHODS.get(endpoint, {})) if isinstance(endpoint, str) else []
    if own and draw(st.integers(0, 9)) < 8:
        method = draw(st.sampled_from(own))
    else:
        method = draw(st.one_of(st.sampled_from(ALL_METHODS), st.text(max_size=8), st.integers(-1, 30), st.none()))
    mdef = METHODS.get(endpoint, {}).get(method) if isinstance(endpoint, str) and isinstance(method, str) else None
    direction = {"request": "in", "response": "out"}.get(kind)
    documented = sorted({n for n, d in mdef.untyped if d == direction and n != ANY_PARAM}) if mdef else []
    names = st.one_of(st.sampled_from(documented), st.sampled_from(documented), _names) if documented else _names
    if draw(st.integers(0, 19)) == 19:
        message = draw(st.sampled_from([None, [], "x", 0, [("ptr", 1)]]))
    else:
        message = draw(st.dictionaries(names, _values, max_size=4))
    client = draw(st.sampled_from(["client", 3]))
    kernel = draw(st.sampled_from([KERNEL_CLASS, 1]))
    src, dst = (client, kernel) if kind == "request" else (kernel, client)
    return Event(kind, src, dst, endpoint, method, message)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(event=kernel_events())
def test_kernel_events_are_decided_by_the_description(module, event):
    case = KernelCase(event, malformed(event, METHODS))
    granted, problem = judge(module, case)
    if problem is not None and tolerated(case) and problem[0].startswith("granted-malformed"):
        return                                  # the known gap, asserted on its own below
    assert problem is None, (problem, event)
    assert granted == case.wellformed


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(NAMES + [ANY_PARAM, "x", ""]), value=_values)
def test_one_parameter_anywhere(module, name, value):
    """A single parameter, of every name the description knows, in every direction of every method."""
    for ep, methods in METHODS.items():
        for mname in methods:
            for kind in ("request", "response"):
                src, dst = ("client", KERNEL_CLASS) if kind == "request" else (KERNEL_CLASS, "client")
                case = KernelCase(Event(kind, src, dst, ep, mname, {name: value}), [])
                case.problems = malformed(case.event, METHODS)
                _, problem = judge(module, case)
                if problem is not None and tolerated(case):
                    continue
                assert problem is None, (problem, case.event)


# ------------------------------------------------------------------ seeded runs
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seeded_kernel_messages(seed):
    stats: Counter = Counter()
    findings = check_kernel_messages(seed, 3000, stats=stats)
    assert findings == [], "\n".join(findings[:10])
    assert stats["events"] == 3000
    # The generator covers both sides and every kind of malformation.
    assert stats["malformed"] > 1000 and stats["wellformed"] > 500, stats
    categories = {k.split(" ", 1)[1] for k in stats if k.startswith("category ")}
    assert {"endpoint-not-text", "method-not-text", "unknown-endpoint", "unknown-method", "message-not-mapping",
            "name-not-text", "undocumented-name", "int-out-of-range", "not-plain", "field-name-not-text",
            "too-deep", "not-idl-value"} <= categories, categories
    assert stats["malformed granted"] == 0


def test_negative_int_below_sint64_is_denied():
    """Found by this fuzz: -(2**63)-1 .. -(2**64-1) have 64 bits of magnitude but fit no IDL integer."""
    findings = check_kernel_messages(0, 3000)
    assert [f for f in findings if "int-out-of-range" in f] == []


def test_the_fuzz_command_runs_kernel_events(capsys):
    fuzz_main(["--kernel", "300", "7"])
    out = capsys.readouterr().out
    assert out.startswith("seed 7: 300 kernel events, ") and "malformed" in out


def test_the_oracle_on_hand_made_events():
    """The oracle itself, on one event per rule (a wrong oracle would make the fuzz test vacuous)."""
    def why(ep, method, message, kind="request"):
        src, dst = ("client", KERNEL_CLASS) if kind == "request" else (KERNEL_CLASS, "client")
        problems = malformed(Event(kind, src, dst, ep, method, message), METHODS)
        return problems[0][0] if problems else None

    assert why("sync.Sync", "Wait", {"ptr": 1, "val": 2}) is None
    assert why("sync.Sync", "Wait", {"rc": 0}, "response") is None
    assert why(0, "Wait", {}) == "endpoint-not-text"
    assert why("sync.Sync", 0, {}) == "method-not-text"
    assert why("kl.core.Sync", "Wait", {}) == "unknown-endpoint"
    assert why("sync.Sync", "Allocate", {}) == "unknown-method"
    assert why("sync.Sync", "Wait", [1]) == "message-not-mapping"
    assert why("sync.Sync", "Wait", {1: 1}) == "name-not-text"
    assert why("sync.Sync", "Wait", {"rc": 0}) == "undocumented-name"
    assert why("sync.Sync", "Wait", {"ptr": 2 ** 64}) == "int-out-of-range"
    assert why("sync.Sync", "Wait", {"ptr": -(2 ** 63) - 1}) == "int-out-of-range"
    assert why("sync.Sync", "Wait", {"ptr": 0.5}) == "not-idl-value"
    assert why("sync.Sync", "Wait", {"ptr": [None]}) == "not-idl-value"
    assert why("sync.Sync", "Wait", {"ptr": {1}}) == "not-plain"
    assert why("sync.Sync", "Wait", {"ptr": {"a": {2: 0}}}) == "field-name-not-text"
    deep: list = []
    deep.append(deep)
    assert why("sync.Sync", "Wait", {"ptr": deep}) == "too-deep"
    assert why("sync.Sync", "Alloc", {"anything": [15, "none", b"x"]}) is None       # names unknown: any
