"""The Python API checks its arguments; the decision function fails closed with clear reasons.

Wrong *arguments* to ``load``/``LoadOptions``/``SecurityModule`` raise TypeError or
ValueError at once, naming what to pass.  ``decide`` never raises and never grants a
malformed call: a non-event or an event field of the wrong type is ``malformed
event: ...``, a message that does not fit the method ``malformed message: ...``, and
``internal-error`` is kept for bugs in ksm (docs/runtime.md, "Argument checking").
"""
from __future__ import annotations

import time
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ksm
import policy_lang
from ksm.engine import SecurityModule, SolutionNotLoadable
from ksm.events import Decision, Event
from policy_lang import LoadOptions

ROOT = Path(__file__).resolve().parent.parent
ECHO = ROOT / "models" / "echo"
HUGE = 10 ** 5000          # more than Python's 4,300 digits: str() of it raises


def _id(value) -> str:
    """Test ids: pytest's own would str() the huge integers."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"{'-' if value < 0 else ''}int{value.bit_length()}bits"
    try:
        return repr(value)[:40]
    except ValueError:      # a container holding one
        return "holds-a-huge-int"


def ping(value=7, src="echo.Client", dst="echo.Server", endpoint="pingComp.pingImpl", method="Ping") -> Event:
    return Event.request(src, dst, endpoint, method, {"value": value})


@pytest.fixture(scope="module")
def echo() -> SecurityModule:
    module = SecurityModule(ksm.load(ECHO))
    assert all(module.boot())
    return module


def assert_clear_denial(d: Decision, *fragments: str) -> None:
    assert not d.granted and d.reason and not d.reason.startswith("internal-error"), d.reason
    for fragment in fragments:
        assert fragment in d.reason, d.reason
    text = d.explain()           # never raises, and never prints a huge number
    assert text.startswith("DENIED") and len(text) < 2000


# 1. SecurityModule takes a loaded, error-free Solution --------------------------------------
@pytest.mark.parametrize("junk", ["models/echo", ECHO, None, 42, {"root": "x"}])
def test_security_module_refuses_what_is_not_a_solution(junk):
    with pytest.raises(TypeError) as err:
        SecurityModule(junk)
    assert str(err.value) == ("SecurityModule takes a loaded Solution, e.g. SecurityModule(ksm.load(path)); "
                              f"got {type(junk).__name__}")


def test_security_module_refuses_a_solution_with_errors_and_names_the_first():
    sol = ksm.load("/nonexistent/solution")
    assert not sol.ok and [d.code for d in sol.diagnostics] == ["SRC001"]   # a diagnostic, not a raise
    with pytest.raises(SolutionNotLoadable) as err:     # documented in docs/runtime.md; a ValueError
        SecurityModule(sol)
    assert isinstance(err.value, ValueError)
    assert "1 error" in str(err.value) and "no such file or folder" in str(err.value)


def test_security_module_checks_options_and_audit_sink():
    sol = ksm.load(ECHO)
    with pytest.raises(TypeError, match="ksm.Options"):
        SecurityModule(sol, {"transactional": False})
    with pytest.raises(TypeError, match="write"):
        SecurityModule(sol, audit_sink=[])


# 2. load() and LoadOptions ------------------------------------------------------------------
@pytest.mark.parametrize("load", [policy_lang.load, ksm.load], ids=["policy_lang", "ksm"])
def test_a_bare_folder_is_refused_at_once_not_scanned_character_by_character(load):
    t0 = time.perf_counter()
    with pytest.raises(TypeError) as err:
        load(ECHO, include_dirs="/tmp")
    assert str(err.value) == "include_dirs takes a list of folders, e.g. include_dirs=['/tmp']; got the string '/tmp'"
    with pytest.raises(TypeError, match=r"sdk_dirs takes a list of folders, e\.g\. sdk_dirs=\['/opt/sdk'\]; got the path"):
        load(ECHO, sdk_dirs=Path("/opt/sdk"))
    assert time.perf_counter() - t0 < 1


@pytest.mark.parametrize("kwargs,fragment", [
    ({"include_dirs": 5}, "include_dirs takes a list of folders"),
    ({"include_dirs": [Path("a"), 5]}, "include_dirs[1] must be a folder path"),
    ({"include_dirs": {"a", "b"}}, "ordered"),
    ({"include_dirs": b"/tmp"}, "include_dirs takes a list of folders"),
    ({"sdk_dirs": {"a": 1}}, "sdk_dirs takes a list of folders"),
    ({"defines": {"A": 1}}, "defines['A'] must be the text that replaces @A@"),
    ({"defines": {1: "1"}}, "defines keys are placeholder names"),
    ({"defines": "A=1"}, "defines takes a mapping"),
    ({"defines": [("A", "1")]}, "defines=dict("),
    ({"init": 5}, "init takes the path of the init.yaml file"),
    ({"init": ["init.yaml"]}, "init takes the path"),
])
def test_load_options_are_checked_with_an_example(kwargs, fragment):
    for make in (lambda: LoadOptions(**kwargs), lambda: policy_lang.load(ECHO, **kwargs), lambda: ksm.load(ECHO, **kwargs)):
        with pytest.raises(TypeError) as err:
            make()
        assert fragment in str(err.value)


def test_defines_given_as_name_value_strings_get_the_mapping_to_write():
    with pytest.raises(TypeError) as err:
        ksm.load(ECHO, defines=["A=1", "B=x=y"])
    assert "defines={'A': '1'}" in str(err.value)                       # the general example
    assert "write defines={'A': '1', 'B': 'x=y'}" in str(err.value)     # and theirs, converted


def test_an_empty_init_path_is_a_value_error():
    with pytest.raises(ValueError, match="empty string"):
        LoadOptions(init="")


@pytest.mark.parametrize("target", [None, 5, b"models/echo", ["models/echo"]])
def test_the_solution_path_must_be_a_path(target):
    for load in (policy_lang.load, ksm.load):
        with pytest.raises(TypeError, match=r"load\(\) takes the path of a solution folder"):
            load(target)


def test_options_come_as_one_object_or_as_keywords():
    with pytest.raises(TypeError, match="as a LoadOptions or as keywords"):
        policy_lang.load(ECHO, {"defines": {}})
    with pytest.raises(TypeError, match="not both"):
        policy_lang.load(ECHO, LoadOptions(), defines={})


def test_well_formed_arguments_of_every_accepted_shape_load():
    folders = (f for f in [ROOT / "models", "models"])                  # any ordered iterable, str or Path
    opts = LoadOptions(init=ECHO / "einit/src/init.yaml", include_dirs=folders, defines={"A": "1"}, sdk_dirs=None)
    assert opts.include_dirs == (ROOT / "models", Path("models")) and opts.sdk_dirs == () and opts.init.name == "init.yaml"
    assert policy_lang.load(str(ECHO), opts).ok
    assert policy_lang.load(ECHO, include_dirs=[ROOT / "models"], defines={}).ok
    assert ksm.load(ECHO, init=None, include_dirs=(), defines=None, sdk_dirs=[]).ok


# 3. decide() on what is not an event -----------------------------------------------------------
@pytest.mark.parametrize("junk", [None, "request", 42, {"kind": "request"}, ("request", "a", "b"), Decision])
def test_decide_denies_a_non_event_as_a_malformed_call(echo, junk):
    d = echo.decide(junk)
    assert_clear_denial(d)
    assert d.reason == f"malformed event: decide() takes a ksm.Event, got {type(junk).__name__}"
    assert d.event is junk and "not an event" in d.explain()


def test_decide_many_denies_each_junk_element_and_refuses_a_non_list(echo):
    decisions = echo.decide_many([ping(), None, ping(HUGE)])
    assert [d.granted for d in decisions] == [True, False, False]
    assert decisions[1].reason.startswith("malformed event:")
    for junk in (None, 5, ping()):
        with pytest.raises(TypeError, match="decide_many takes a list of ksm.Event"):
            echo.decide_many(junk)


# 4. huge ints, floats and bools: denied by magnitude and type, never printed ------------------
@pytest.mark.parametrize("value,fragment", [
    (HUGE, "value: <16,610-bit integer> out of range for UInt32"),
    (-HUGE, "value: <negative 16,610-bit integer> out of range for UInt32"),
    (2 ** 64, "value: 18446744073709551616 out of range for UInt32"),
    (float("nan"), "expected UInt32, got float"),
    (float("inf"), "expected UInt32, got float"),
    (1e400, "expected UInt32, got float"),
    (7.0, "expected UInt32, got float"),
    (True, "expected UInt32, got bool"),
], ids=_id)
def test_message_integers_are_checked_by_magnitude_and_type(echo, value, fragment):
    assert_clear_denial(echo.decide(ping(value)), "malformed message", fragment)


@pytest.mark.parametrize("position", ["src", "dst", "endpoint", "method"])
@pytest.mark.parametrize("value", [HUGE, -HUGE, float("nan"), float("inf"), 1e400, True, 3.0], ids=_id)
def test_names_of_the_wrong_kind_or_size_are_denied(echo, position, value):
    d = echo.decide(ping(**{position: value}))
    assert_clear_denial(d)
    assert "16,610-bit integer>" in d.reason or "16,610" not in d.reason
    assert "16,610" not in repr(d) or "16,610-bit integer>" in repr(d)    # printing a decision never raises


def test_a_cached_route_never_answers_for_a_float_or_a_bool_sid(echo):
    """1 == 1.0 == True hash alike: a route cached for a SID must not grant a float or a bool."""
    client = echo._by_task["echo.Client"]
    assert echo.decide(ping(src=client)).granted                       # caches the route of SID 3
    assert_clear_denial(echo.decide(ping(src=float(client))), "sender must be a task name or a SID, not float")
    kernel = echo._by_task["kl.core.Core"]
    assert kernel == 1
    assert echo.decide(Event.response(kernel, "echo.Client", "vmm.VMM", "Allocate")).granted   # caches SID 1
    assert_clear_denial(echo.decide(Event.response(True, "echo.Client", "vmm.VMM", "Allocate")),
                        "sender True is not a process")
    assert_clear_denial(echo.decide(Event.response(1.0, "echo.Client", "vmm.VMM", "Allocate")), "not float")


BOX_IDL = """package box.Api
struct Pair { UInt8 a; string<4> tag; }
union Choice { UInt16 small; SInt64 big; }
interface {
    Put(in UInt32 code, in sequence<Pair, 2> items, in Handle h, in Choice c, in array<UInt8, 2> two);
}
"""


@pytest.fixture(scope="module")
def box(tmp_path_factory) -> SecurityModule:
    """A server whose one method takes every kind of IDL value, and a policy that grants it."""
    root = tmp_path_factory.mktemp("box")
    files = {
        "resources/Api.idl": BOX_IDL,
        "resources/Client.edl": "task class box.Client\n",
        "resources/Server.edl": "task class box.Server\nendpoints {\n    api : box.Api\n}\n",
        "einit/src/init.yaml": ("entities:\n  - name: box.Client\n    task: client\n    connections:\n"
                                "      - target: server\n        id: c\n  - name: box.Server\n    task: server\n"
                                "  - name: kl.VfsRamFs\n    task: vfs\n"),
        "einit/src/security.psl": ("use nk.base._\nuse EDL kl.core.Core\nuse EDL Einit\nuse EDL box.Client\n"
                                   "use EDL box.Server\nuse EDL kl.VfsRamFs\nexecute: kl.core.Execute\n"
                                   "execute { grant () }\nrequest { grant () }\n"
                                   # an SDK program without --sdk is opaque: its messages reach rules unchecked
                                   "request dst=kl.VfsRamFs, method=Check { assert (message.x < 5) }\n"),
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    sol = ksm.load(root)
    assert sol.ok, [d.render() for d in sol.diagnostics]
    module = SecurityModule(sol)
    assert all(module.boot())
    return module


def put(**changes) -> Event:
    message = {"code": 1, "items": [{"a": 1, "tag": "x"}], "h": 5, "c": {"small": 1}, "two": [1, 2]}
    message.update(changes)
    return Event.request("client", "server", "api", "Put", message)


def test_the_box_method_grants_a_well_formed_message(box):
    assert box.decide(put()).granted


@pytest.mark.parametrize("changes,fragment", [
    ({"code": HUGE}, "code: <16,610-bit integer> out of range for UInt32"),
    ({"items": [{"a": 1, "tag": "x"}, {"a": -HUGE, "tag": "y"}]}, "items[1].a: <negative 16,610-bit integer> out of range for UInt8"),
    ({"h": HUGE}, "h: SID <16,610-bit integer> out of range"),
    ({"h": {"handle": HUGE, "rights": 0}}, "h: SID <16,610-bit integer> out of range"),
    ({"c": {"big": HUGE}}, "c.big: <16,610-bit integer> out of range for SInt64"),
    ({"two": [1, HUGE]}, "two[1]: <16,610-bit integer> out of range for UInt8"),
    ({"items": [{"a": 1, "tag": HUGE}]}, "items[0].tag: expected string<4>, got int"),
    ({"code": 2 ** 32}, "code: 4294967296 out of range for UInt32"),
], ids=_id)
def test_huge_integers_anywhere_in_a_message_are_out_of_range_for_their_type(box, changes, fragment):
    assert_clear_denial(box.decide(put(**changes)), "malformed message", fragment)


# 5. explain() stays short on a policy with thousands of bindings -------------------------------
def _many_bindings(root: Path, policy_tail: str) -> SecurityModule:
    files = {
        "resources/Api.idl": "package gen.Api\ninterface {\n    Get(in UInt32 key);\n    Ping();\n}\n",
        "resources/C0.edl": "task class gen.C0\n",
        "resources/C1.edl": "task class gen.C1\nendpoints {\n    api : gen.Api\n}\n",
        "einit/src/init.yaml": "entities:\n  - name: gen.C0\n    task: c0\n  - name: gen.C1\n    task: c1\n",
        "einit/src/security.psl": ("use nk.base._\nuse nk.basic._\nuse EDL kl.core.Core\nuse EDL Einit\nuse EDL gen.C0\n"
                                   "use EDL gen.C1\nexecute: kl.core.Execute\nexecute { grant () }\n" + policy_tail),
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    sol = ksm.load(root)
    assert sol.ok, [d.render() for d in sol.diagnostics[:3]]
    module = SecurityModule(sol)
    assert all(module.boot())
    return module


N_BINDINGS = 3000


def test_explain_summarises_thousands_of_bindings_that_select_the_event_but_run_nothing(tmp_path):
    idle = "request src=gen.C0, dst=gen.C1 { match method=Ping { grant () } }\n" * N_BINDINGS
    deciding = "request src=gen.C0, dst=gen.C1, method=Get { assert (message.key < 1000) }\n"
    module = _many_bindings(tmp_path, idle[: len(idle) // 2] + deciding + idle[len(idle) // 2:])
    for key, granted in ((7, True), (5000, False)):
        d = module.decide(Event.request("c0", "c1", "api", "Get", {"key": key}))
        assert d.granted is granted and len(d.steps) == N_BINDINGS + 2     # the decision keeps every step
        lines = d.explain().splitlines()
        assert len(lines) < 50, lines[:60]
        assert any("base.assert" in line and ("granted" if granted else "denied") in line for line in lines)
        assert lines[-1] == f"  … and {N_BINDINGS:,} other bindings that select this event but run no rule for it"
        assert len(d.explain(limit=None).splitlines()) == N_BINDINGS + 4    # all of it, on request


def test_explain_keeps_the_denial_among_thousands_of_granting_bindings(tmp_path):
    grants = "request src=gen.C0, dst=gen.C1, method=Get { grant () }\n" * N_BINDINGS
    module = _many_bindings(tmp_path, grants + "request src=gen.C0, dst=gen.C1, method=Get { assert (message.key < 1000) }\n")
    d = module.decide(Event.request("c0", "c1", "api", "Get", {"key": 5000}))
    assert not d.granted and d.reason == "base.assert denied: assert (false)"
    lines = d.explain().splitlines()
    assert len(lines) < 50 and any("denied" in line and "base.assert" in line for line in lines)
    assert lines[-1].startswith(f"  … and {N_BINDINGS - 19:,} other bindings that ran rules (all granted)")
    granted = module.decide(Event.request("c0", "c1", "api", "Get", {"key": 1}))
    assert granted.granted and len(granted.explain().splitlines()) < 50


def test_explain_with_few_steps_lists_every_step(echo):
    d = echo.decide(ping(5000))
    assert d.explain() == d.explain(limit=None) and len(d.explain().splitlines()) == 2 + len(d.steps)
    with pytest.raises(ValueError):
        d.explain(limit=0)


# 6. Event construction with odd values --------------------------------------------------------
@pytest.mark.parametrize("message", [[1, 2], "value=7", 7, [("value", 7)], b"x"])
def test_event_factories_refuse_a_message_that_is_not_a_mapping(message):
    for factory in (lambda m: Event.request("a", "b", "c", "d", m), lambda m: Event.response("a", "b", "c", "d", m),
                    lambda m: Event.error("a", "b", "c", "d", m), lambda m: Event.security("a", "d", m)):
        with pytest.raises(TypeError, match=r"an event message is a mapping of parameter names to values, e\.g\."):
            factory(message)


@pytest.mark.parametrize("kind", [None, 5, ["request"], HUGE, b"request", ""], ids=_id)
def test_an_event_of_an_odd_kind_is_accepted_and_denied_with_a_reason(echo, kind):
    event = Event(kind, "echo.Client", "echo.Server", "pingComp.pingImpl", "Ping", {"value": 7})
    d = echo.decide(event)
    assert_clear_denial(d)
    assert d.reason.startswith("malformed event: kind must be one of") or d.reason.startswith("unknown event kind")


@pytest.mark.parametrize("message", [None, [1], "value", 7, HUGE, ({"value": 7},)], ids=_id)
def test_a_raw_event_whose_message_is_not_a_mapping_is_denied(echo, message):
    event = Event("request", "echo.Client", "echo.Server", "pingComp.pingImpl", "Ping", message)
    assert_clear_denial(echo.decide(event), "malformed message: message must be a mapping of parameter values")
    kernel = Event("request", "echo.Client", "kl.core.Core", "vmm.VMM", "Allocate", message)   # untyped parameters
    assert_clear_denial(echo.decide(kernel), "malformed message: message must be a mapping of parameter values")


# Hypothesis: arbitrary junk is never granted, never raises, never internal-error ---------------
class Hostile:
    """An object whose every dunder a decision might call raises."""

    def __repr__(self):
        raise RuntimeError("repr")

    def __eq__(self, other):
        raise RuntimeError("eq")

    def __hash__(self):
        raise RuntimeError("hash")

    def _repr_pretty_(self, printer, cycle):     # how hypothesis shows a failing example
        printer.text("Hostile()")


# Built, not sampled: hypothesis reprs sampled constants, and neither repr works on these.
HUGE_INTS = st.tuples(st.integers(4400, 6000), st.sampled_from([1, -1])).map(lambda t: t[1] * 10 ** t[0])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.binary(max_size=8),
    HUGE_INTS, st.builds(Hostile), st.builds(object),
    st.sampled_from([2 ** 64, -1, float("nan"), float("inf"), 1e400, Decimal("7"), Fraction(7, 1), 7 + 0j,
                     Event, ..., range(3)]),
)
JSONISH = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
ANY = st.one_of(JSONISH, st.sampled_from([int, float, str, bytes, list, dict, tuple, complex, set]).flatmap(st.from_type))
PING_FIELDS = {"kind": "request", "src": "echo.Client", "dst": "echo.Server", "endpoint": "pingComp.pingImpl",
               "method": "Ping"}


def _is_valid(field: str, value) -> bool:
    """Whether ``value`` could make a well-formed Ping in ``field`` (exact types: 3.0 is no SID)."""
    if field == "message":
        v = value.get("value") if isinstance(value, dict) and set(value) == {"value"} else None
        return type(v) is int and 0 <= v <= 1000
    if type(value) is int:
        return 0 <= value <= 16          # a SID, RIID or MID that may well exist (SID 1 is the opaque kernel)
    return type(value) is str and value in {PING_FIELDS[field], "kl.core.Core", "Einit", "echo.Server"}


@st.composite
def junk_events(draw):
    """A Ping from the client with one field replaced by something that cannot be valid there."""
    field = draw(st.sampled_from([*PING_FIELDS, "message", "message value"]))
    fields = dict(PING_FIELDS, message={"value": 7})
    if field == "message value":
        fields["message"] = {"value": draw(ANY.filter(lambda v: not _is_valid("message", {"value": v})))}
    else:
        fields[field] = draw(ANY.filter(lambda v: not _is_valid(field, v)))
    return Event(fields["kind"], fields["src"], fields["dst"], fields["endpoint"], fields["method"], fields["message"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.filter_too_much])
@given(junk=st.one_of(ANY, junk_events()))
def test_decide_on_arbitrary_junk_denies_with_a_reason(echo, junk):
    d = echo.decide(junk)
    assert isinstance(d, Decision)
    assert not d.granted, d.reason
    assert d.reason and not d.reason.startswith("internal-error"), d.reason
    d.explain()
    repr(d)                                 # printing or logging a decision never raises either
    assert echo.decide(ping()).granted      # junk changes nothing for the next caller


@settings(max_examples=200, deadline=None)
@given(kind=ANY, src=ANY, dst=ANY, endpoint=ANY, method=ANY, message=ANY)
def test_event_constructors_raise_only_clear_type_errors(kind, src, dst, endpoint, method, message):
    Event(kind, src, dst, endpoint, method, message)            # the plain constructor takes anything
    try:
        event = Event.request(src, dst, endpoint, method, message)
    except TypeError as exc:
        assert "an event message is a mapping" in str(exc)
    else:
        assert event.describe()


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:      # a lone surrogate
        return False
    return True


# Where a junk value goes in a well-formed Put, and whether the value is then valid there.
PUT_SPOTS = {
    "code": (lambda v: {"code": v}, lambda v: type(v) is int and 0 <= v < 2 ** 32),
    "items[0].a": (lambda v: {"items": [{"a": v, "tag": "x"}]}, lambda v: type(v) is int and 0 <= v < 2 ** 8),
    "items[0].tag": (lambda v: {"items": [{"a": 1, "tag": v}]},
                     lambda v: type(v) is str and len(v) <= 4 and "\x00" not in v and _utf8(v)),
    "items": (lambda v: {"items": v}, lambda v: False),
    "h": (lambda v: {"h": v}, lambda v: type(v) is int and 0 <= v < 2 ** 32),
    "h.handle": (lambda v: {"h": {"handle": v, "rights": 0}}, lambda v: type(v) is int and 0 <= v < 2 ** 32),
    "c.big": (lambda v: {"c": {"big": v}}, lambda v: type(v) is int and -2 ** 63 <= v < 2 ** 63),
    "c": (lambda v: {"c": v}, lambda v: False),
    "two[1]": (lambda v: {"two": [1, v]}, lambda v: type(v) is int and 0 <= v < 2 ** 8),
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spot=st.sampled_from(sorted(PUT_SPOTS)), value=JSONISH)
def test_decide_on_junk_anywhere_in_a_message_of_every_idl_type_never_errs(box, spot, value):
    place, valid = PUT_SPOTS[spot]
    d = box.decide(put(**place(value)))
    assert not d.reason.startswith("internal-error"), d.reason
    if not (spot in ("items", "c") and d.granted):     # a list or union can happen to be well formed
        assert d.granted == valid(value), (spot, d.reason)
    d.explain()


def _nested(depth: int) -> list:
    """``[[[...]]]``, ``depth`` lists deep."""
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _holds(value, wanted) -> bool:
    """Whether ``wanted(v)`` holds for ``value`` or anything inside it (containers once each)."""
    stack, seen = [value], set()
    while stack:
        v = stack.pop()
        if wanted(v):
            return True
        if isinstance(v, (list, tuple, dict)) and id(v) not in seen:
            seen.add(id(v))
            stack.extend(list(v.keys()) + list(v.values()) if isinstance(v, dict) else v)
    return False


@pytest.mark.parametrize("message,fragment", [
    ({"x": HUGE}, "x: <16,610-bit integer> fits no IDL integer"),
    ({"x": [1, {"y": -HUGE}]}, "x[1].y: <negative 16,610-bit integer> fits no IDL integer"),
    ({HUGE: 1}, "message: field names are text, got int <16,610-bit integer>"),
    ({"x": Hostile()}, "x: Hostile is not a message value"),
    ({"x": _nested(80)}, "nested deeper than 64 levels"),
], ids=["huge", "nested-huge", "huge-key", "object", "deep"])
def test_unchecked_messages_to_opaque_endpoints_hold_only_what_a_message_can(box, message, fragment):
    """An SDK program without --sdk is opaque: the message is not structure-checked, yet no message holds these."""
    for method in ("Check", "Anything"):
        d = box.decide(Event.request("client", "vfs", "e", method, message))
        assert_clear_denial(d, "malformed message", fragment)
    assert box.decide(Event.request("client", "vfs", "e", "Anything", {"x": [2 ** 64 - 1, "s", b"", None]})).granted
    assert box.decide(Event.request("client", "vfs", "e", "Check", {"x": 4})).granted


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=st.dictionaries(st.one_of(st.sampled_from(["x", "y"]), st.integers(), HUGE_INTS, st.binary(max_size=4),
                                         st.none()), JSONISH, max_size=3))
def test_decide_on_junk_messages_to_an_opaque_endpoint_never_errs(box, message):
    d = box.decide(Event.request("client", "kl.core.Core", "e", "Check", message))
    assert not d.reason.startswith("internal-error"), d.reason
    if _holds(message, lambda v: isinstance(v, int) and v.bit_length() > 64):
        assert not d.granted
    repr(d), d.explain()
