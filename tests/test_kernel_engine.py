"""The decision function on calls to the built-in kernel (``kl.core.Core`` from policy_lang/kernel.py).

The built-in description names endpoints, methods and parameters (by direction) but
gives no IDL types: the structure check checks names and what any IDL value can be,
and rules read the values the message carries.  One test per rule.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from test_engine import door_solution

from ksm.audit import MemorySink
from ksm.engine import MALFORMED_MESSAGE, SecurityModule
from ksm.events import Event
from policy_lang.kernel import ANY_PARAM, builtin_kernel_class
from policy_lang.solution import KERNEL_CLASS

KERNEL = KERNEL_CLASS
BLANKET = "request dst=kl.core.Core { grant () }\nresponse src=kl.core.Core { grant () }\n" \
          "error src=kl.core.Core { grant () }\n"


def untyped(endpoint: str, method: str, direction: str) -> tuple[str, ...]:
    """The parameter names the built-in description lists (the tests' preconditions)."""
    ep = builtin_kernel_class().endpoint(endpoint)
    assert ep is not None, f"the built-in kernel has no endpoint {endpoint}"
    m = next((m for m in ep.interface.methods if m.name == method), None)
    assert m is not None, f"the built-in {endpoint} has no method {method}"
    return m.untyped_names(direction)


def kernel_module(tmp_path: Path, policy: str, **kw) -> SecurityModule:
    m = SecurityModule(door_solution(tmp_path, policy), **kw)
    assert all(d.granted for d in m.boot())
    return m


def call(endpoint, method, message=None, src="client") -> Event:
    return Event("request", src, KERNEL, endpoint, method, {} if message is None else message)


def answer(endpoint, method, message=None, dst="client") -> Event:
    return Event("response", KERNEL, dst, endpoint, method, {} if message is None else message)


@pytest.fixture(scope="module")
def blanket(tmp_path_factory) -> SecurityModule:
    """The worst case: every kernel call and answer granted."""
    return kernel_module(tmp_path_factory.mktemp("blanket"), BLANKET)


def malformed(d) -> bool:
    return not d.granted and d.reason.startswith(MALFORMED_MESSAGE)


def test_preconditions_of_the_description():
    """The methods used below, as the description has them (a change there shows here first)."""
    assert set(untyped("sync.Sync", "Wait", "in")) == {"ptr", "val", "delay"}
    assert set(untyped("sync.Sync", "Wait", "out")) == {"outDelay", "rc"}
    assert {"addr", "size", "flags"} <= set(untyped("vmm.VMM", "Allocate", "in"))
    assert ANY_PARAM not in untyped("vmm.VMM", "Allocate", "in") + untyped("sync.Sync", "Wait", "in")
    assert {"va", "rc"} <= set(untyped("vmm.VMM", "Allocate", "out"))
    assert ANY_PARAM in untyped("sync.Sync", "Alloc", "in") and ANY_PARAM in untyped("sync.Sync", "Alloc", "out")


# 1. selectors -------------------------------------------------------------------------
def test_interface_selector_grants_its_methods_only(tmp_path):
    m = kernel_module(tmp_path, "request dst=kl.core.Core { match interface=kl.core.Sync { grant () } }\n")
    d = m.decide(call("sync.Sync", "Wait", {"ptr": 4096, "val": 0}))
    assert d.granted, d.explain()
    assert "interface=kl.core.Sync" in d.explain()          # the match section took part
    d = m.decide(call("vmm.VMM", "Allocate", {"size": 4096}))
    assert not d.granted and d.reason == "no rule applies to this event (default deny)"
    # The kernel by SID is the same process.
    kernel_sid = next(p.sid for p in m.processes.values() if p.task == KERNEL)
    assert m.decide(Event("request", "client", kernel_sid, "sync.Sync", "Wake", {"ptr": 1})).granted


def test_endpoint_selector(tmp_path):
    m = kernel_module(tmp_path, "request dst=kl.core.Core, endpoint=vmm.VMM { grant () }\n")
    assert m.decide(call("vmm.VMM", "Allocate", {"size": 1})).granted
    assert m.decide(call("vmm.VMM", "Decommit", {"va": 0, "size": 1})).granted
    d = m.decide(call("sync.Sync", "Wait", {"ptr": 1}))
    assert not d.granted and "default deny" in d.reason


def test_method_selector(tmp_path):
    m = kernel_module(tmp_path, "request dst=kl.core.Core, endpoint=vmm.VMM, method=Decommit { grant () }\n")
    assert m.decide(call("vmm.VMM", "Decommit", {"va": 0})).granted
    assert not m.decide(call("vmm.VMM", "Allocate", {"size": 1})).granted


def test_method_selector_without_endpoint_selects_that_name_on_every_endpoint(tmp_path):
    shared = [ep.name for ep in builtin_kernel_class().endpoints if any(x.name == "Free" for x in ep.interface.methods)]
    assert {"vmm.VMM", "sync.Sync"} <= set(shared)
    m = kernel_module(tmp_path, "request dst=kl.core.Core, method=Free { grant () }\n")
    assert all(m.decide(call(ep, "Free")).granted for ep in shared)
    assert not m.decide(call("sync.Sync", "Wait")).granted


# 2. addressing: names from the description, never numbers ------------------------------
@pytest.mark.parametrize("endpoint", ["vmm.VMMX", "kl.core.VMM", "VMM", "vmm.vmm", "", "vmm.VMM.Allocate"])
def test_unknown_endpoint_is_malformed(blanket, endpoint):
    d = blanket.decide(call(endpoint, "Allocate"))
    assert malformed(d), d.reason
    assert "has no endpoint" in d.reason and repr(endpoint) in d.reason


@pytest.mark.parametrize("endpoint,method", [("sync.Sync", "Nope"), ("sync.Sync", "Allocate"), ("vmm.VMM", "Wait"),
                                             ("vmm.VMM", "allocate"), ("vmm.VMM", "")])
def test_unknown_method_is_malformed(blanket, endpoint, method):
    d = blanket.decide(call(endpoint, method))
    assert malformed(d), d.reason
    assert "has no method" in d.reason and repr(method) in d.reason


def _index_of(endpoint: str, method: str) -> tuple[int, int]:
    eps = builtin_kernel_class().endpoints
    i = next(i for i, e in enumerate(eps) if e.name == endpoint)
    return i, next(j for j, m in enumerate(eps[i].interface.methods) if m.name == method)


@pytest.mark.parametrize("which", ["riid", "mid", "both", "bool", "none"])
def test_numeric_endpoint_or_method_is_denied(blanket, which):
    riid, mid = _index_of("sync.Sync", "Wait")        # numbers that would address Sync.Wait in this description
    endpoint, method = {"riid": (riid, "Wait"), "mid": ("sync.Sync", mid), "both": (riid, mid),
                        "bool": ("sync.Sync", True), "none": (None, "Wait")}[which]
    d = blanket.decide(call(endpoint, method, {"ptr": 1}))
    assert malformed(d), d.reason
    assert "name them" in d.reason


# 3. parameter names --------------------------------------------------------------------
def test_undocumented_parameter_name_is_malformed_and_the_reason_lists_the_documented(blanket):
    d = blanket.decide(call("sync.Sync", "Wait", {"ptr": 1, "bogus": 2}))
    assert malformed(d)
    assert "'bogus' is not a documented in-parameter of kl.core.Sync.Wait" in d.reason
    assert all(n in d.reason for n in ("ptr", "val", "delay"))


def test_parameter_of_the_other_direction_is_malformed(blanket):
    d = blanket.decide(call("sync.Sync", "Wait", {"rc": 0}))              # an out-parameter in a request
    assert malformed(d) and "'rc' is not a documented in-parameter" in d.reason
    d = blanket.decide(answer("sync.Sync", "Wait", {"ptr": 0}))           # an in-parameter in a response
    assert malformed(d) and "'ptr' is not a documented out-parameter" in d.reason and "outDelay, rc" in d.reason


def test_documented_parameters_may_be_left_out(blanket):
    assert blanket.decide(call("sync.Sync", "Wait")).granted
    assert blanket.decide(call("sync.Sync", "Wait", {"ptr": 1, "val": 2, "delay": 3})).granted
    assert blanket.decide(answer("sync.Sync", "Wait", {"outDelay": 0, "rc": 0})).granted


def test_method_without_documented_parameters_accepts_any_name(blanket):
    message = {"anything": 1, "x": [1, "two", b"\x01"], ANY_PARAM: {"nested": b"\x00"}}
    assert blanket.decide(call("sync.Sync", "Alloc", message)).granted
    assert blanket.decide(answer("sync.Sync", "Alloc", message)).granted
    # ... but only text names, and only values a message can hold.
    assert malformed(blanket.decide(call("sync.Sync", "Alloc", {7: 1})))
    assert malformed(blanket.decide(call("sync.Sync", "Alloc", {"a": 2 ** 64})))


def test_star_is_no_wildcard_for_a_documented_method(blanket):
    d = blanket.decide(call("sync.Sync", "Wait", {ANY_PARAM: 1}))
    assert malformed(d) and "'*' is not a documented in-parameter" in d.reason


def test_error_events_of_the_kernel_carry_no_documented_parameter(blanket):
    assert blanket.decide(Event("error", KERNEL, "client", "vmm.VMM", "Allocate", {})).granted
    d = blanket.decide(Event("error", KERNEL, "client", "vmm.VMM", "Allocate", {"rc": 5}))
    assert malformed(d) and "error-parameter" in d.reason


class _Name(str):
    pass


@pytest.mark.parametrize("name", [1, b"ptr", None, ("ptr",), True, _Name("ptr"), 10 ** 5000],
                         ids=["int", "bytes", "none", "tuple", "bool", "str-subclass", "huge-int"])
def test_parameter_name_that_is_not_text_is_malformed(blanket, name):
    d = blanket.decide(call("sync.Sync", "Wait", {name: 1}))
    assert malformed(d), d.reason
    assert "parameter names are text" in d.reason


@pytest.mark.parametrize("message", [[("ptr", 1)], "ptr=1", None, 7])
def test_message_that_is_not_a_mapping_is_malformed(blanket, message):
    d = blanket.decide(Event("request", "client", KERNEL, "sync.Sync", "Wait", message))
    assert malformed(d), d.reason


# 4. values no IDL message can hold -------------------------------------------------------
def _nest(levels: int):
    v = 0
    for _ in range(levels):
        v = [v]
    return v


def _cycle():
    x: list = []
    x.append(x)
    return x


@pytest.mark.parametrize("value,why", [
    (2 ** 64, "fits no IDL integer"),
    (-(2 ** 64), "fits no IDL integer"),
    (10 ** 5000, "fits no IDL integer"),
    ([1, {"a": 2 ** 70}], "fits no IDL integer"),
    (1.5, "is not an IDL value"),
    (None, "is not an IDL value"),
    (True, "is not an IDL value"),
    ({"a": [1, {"b": None}]}, "is not an IDL value"),
    (object(), "is not a message value"),
    ({1, 2}, "is not a message value"),
    (1j, "is not a message value"),
    ({"a": {2: 0}}, "field names are text"),
    (_nest(200), "nested deeper than"),
    (_cycle(), "nested deeper than"),
], ids=["2**64", "-2**64", "10**5000", "nested-wide-int", "float", "none", "bool", "nested-none", "object", "set",
        "complex", "int-field-name", "deep", "cycle"])
def test_unencodable_value_is_malformed(blanket, value, why):
    d = blanket.decide(call("sync.Sync", "Wait", {"ptr": value}))
    assert malformed(d), d.reason
    assert why in d.reason
    d.explain()                 # wording the denial never raises either
    repr(d)


@pytest.mark.parametrize("value", [2 ** 64 - 1, -(2 ** 63), 0, -1, "text", b"\x00", bytearray(b"x"),
                                   (1, 2), {"a": [1, {"b": "x"}]}, _nest(62)],
                         ids=lambda v: type(v).__name__)
def test_values_any_message_can_hold_pass(blanket, value):
    assert blanket.decide(call("sync.Sync", "Wait", {"ptr": value})).granted


def test_nesting_limit_is_64_levels(blanket):
    assert blanket.decide(call("sync.Sync", "Wait", {"ptr": _nest(63)})).granted
    assert malformed(blanket.decide(call("sync.Sync", "Wait", {"ptr": _nest(64)})))


@pytest.mark.parametrize("value", [-(2 ** 63) - 1, -(2 ** 64) + 1])
def test_negative_int_below_sint64_is_malformed(blanket, value):
    d = blanket.decide(call("sync.Sync", "Wait", {"ptr": value}))
    assert malformed(d), d.reason


def test_malformed_kernel_messages_are_audited_always(tmp_path):
    sink = MemorySink()
    m = kernel_module(tmp_path, BLANKET, audit_sink=sink)
    m.decide(call("sync.Sync", "Wait", {"bogus": 1}))
    assert any(r.get("always") and r["reason"].startswith(MALFORMED_MESSAGE) for r in sink.records), sink.records


# 5. rules read the values the message carries --------------------------------------------
ALLOCATE = "request dst=kl.core.Core, endpoint=vmm.VMM, method=Allocate { assert (message.size < 4096) }\n"


def test_rule_on_untyped_parameter_is_noted_by_the_loader(tmp_path):
    sol = door_solution(tmp_path, ALLOCATE)
    notes = [d for d in sol.diagnostics if d.code == "KRN002"]
    assert notes and "message.size" in notes[0].message


def test_rule_on_untyped_request_parameter_reads_the_concrete_value(tmp_path):
    m = kernel_module(tmp_path, ALLOCATE)
    assert m.decide(call("vmm.VMM", "Allocate", {"size": 4095})).granted
    assert m.decide(call("vmm.VMM", "Allocate", {"addr": 0, "size": 0, "flags": 3})).granted
    d = m.decide(call("vmm.VMM", "Allocate", {"size": 4096}))
    assert not d.granted and "base.assert denied" in d.reason
    assert not m.decide(call("vmm.VMM", "Allocate", {"size": 2 ** 64 - 1})).granted


@pytest.mark.parametrize("message,why", [
    ({}, "no field `size`"),                     # a documented parameter left out
    ({"size": "12"}, "compares numbers"),
    ({"size": [1]}, "compares numbers"),
], ids=["absent", "text", "list"])
def test_rule_on_untyped_parameter_of_the_wrong_kind_runs_incorrectly(tmp_path, message, why):
    m = kernel_module(tmp_path, ALLOCATE)
    d = m.decide(call("vmm.VMM", "Allocate", message))
    assert not d.granted and "runs incorrectly" in d.reason and why in d.reason, d.reason


def test_rule_on_untyped_response_parameter_reads_the_concrete_value(tmp_path):
    m = kernel_module(tmp_path, "response src=kl.core.Core, endpoint=vmm.VMM, method=Allocate "
                                "{ assert (message.rc == 0) }\n")
    assert m.decide(answer("vmm.VMM", "Allocate", {"va": 4096, "rc": 0})).granted
    d = m.decide(answer("vmm.VMM", "Allocate", {"va": 0, "rc": -1}))
    assert not d.granted and "base.assert denied" in d.reason
    d = m.decide(answer("vmm.VMM", "Allocate", {"size": 1, "rc": 0}))      # an in-parameter in a response
    assert malformed(d) and "'size' is not a documented out-parameter" in d.reason
    # The client's request is not selected by a response binding.
    assert not m.decide(call("vmm.VMM", "Allocate", {"size": 1})).granted


def test_malformed_message_is_denied_before_any_rule_runs(tmp_path):
    m = kernel_module(tmp_path, ALLOCATE)
    d = m.decide(call("vmm.VMM", "Allocate", {"size": 1, "bogus": 0}))
    assert malformed(d) and d.steps == ()
