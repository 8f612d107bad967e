"""One JSON encoding of every IDL value (ksm/values.py), round-tripping exactly.

Writing a well-formed value and reading it back by its IDL type gives the same
value, which the structure check accepts; a counterexample with ``bytes<N>`` fields
can be pasted into ``ksm decide --event`` step by step, replayed with ``ksm simulate
--replay`` and read with ``ksm.event_from_json``, and all of them agree with it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ksm
from ksm.cli import main
from ksm.events import Event, jsonable
from ksm.structure import MalformedMessage, compile_message, compile_type
from ksm.values import (decode_event, event_from_json, event_to_json, from_json, message_from_json,
                        message_to_json, method_params, to_json)
from policy_lang.types import (
    INT_TYPES, ArrayType, BytesType, FieldDef, HandleType, ParamDef, SequenceType, StringType, StructType,
    UnionType,
)

ROOT = Path(__file__).resolve().parent.parent
ECHO = ROOT / "models" / "echo"
UINT32 = (1 << 32) - 1

# ----------------------------------------------------------------------------- random IDL types and values

_bounds = st.one_of(st.integers(1, 6), st.sampled_from([64, 4096]))
_names = st.from_regex(r"[a-z][a-zA-Z0-9_]{0,7}", fullmatch=True)
_leaf_types = st.one_of(
    st.sampled_from(sorted(INT_TYPES.values(), key=lambda t: t.name)),
    st.builds(BytesType, _bounds),
    st.builds(StringType, _bounds),
    st.builds(HandleType, st.sampled_from([None, "a.b.Iface"])),
)


def _fields(children):
    return st.lists(st.tuples(_names, children), min_size=1, max_size=4, unique_by=lambda f: f[0]).map(
        lambda fs: tuple(FieldDef(n, t) for n, t in fs))


def _containers(children):
    return st.one_of(
        st.builds(ArrayType, children, st.integers(1, 3)),
        st.builds(SequenceType, children, _bounds),
        st.builds(StructType, st.just("t.S"), _fields(children)),
        st.builds(UnionType, st.just("t.U"), _fields(children)),
    )


idl_types = st.recursive(_leaf_types, _containers, max_leaves=10)
_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)


def values(t) -> st.SearchStrategy:
    """Random well-formed values of IDL type ``t``, as the structure check returns them."""
    if t in INT_TYPES.values():
        return st.integers(t.min, t.max)
    if isinstance(t, StringType):
        return _text.filter(lambda s: len(s) <= t.bound) if t.bound < 8 else _text
    if isinstance(t, BytesType):
        return st.binary(max_size=min(t.bound, 16))
    if isinstance(t, HandleType):
        u32 = st.integers(0, UINT32)
        return st.one_of(u32, st.fixed_dictionaries({"handle": u32, "rights": u32}))
    if isinstance(t, ArrayType):
        return st.lists(values(t.element), min_size=t.length, max_size=t.length)
    if isinstance(t, SequenceType):
        return st.lists(values(t.element), max_size=min(t.bound, 3))
    if isinstance(t, StructType):
        return st.fixed_dictionaries({f.name: values(f.type) for f in t.fields})
    if isinstance(t, UnionType):
        return st.sampled_from(t.fields).flatmap(lambda f: values(f.type).map(lambda v: {f.name: v}))
    raise TypeError(t)


typed_values = idl_types.flatmap(lambda t: st.tuples(st.just(t), values(t)))


def same(a, b) -> bool:
    """Equal, and of the same Python types all the way down (``b"" == ""`` is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def through_json(v):
    return json.loads(json.dumps(v))          # plain json.dumps: no default=str to hide a non-JSON value


# ----------------------------------------------------------------------------- round trip

@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed_values)
def test_every_value_round_trips_exactly_and_passes_the_structure_check(tv):
    t, v = tv
    back = from_json(through_json(to_json(v, t)), t)
    assert same(back, v), (t, v, back)
    assert compile_type(t)(back, "v") == compile_type(t)(v, "v")       # accepted (it raises otherwise)
    assert to_json(v, t) == jsonable(v) == to_json(v)                    # one encoding, typed or not
    assert same(from_json(v, t), v)                                      # decoding a decoded value: no change


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(typed_values, min_size=0, max_size=4))
def test_whole_messages_round_trip_against_the_method_parameters(tvs):
    params = tuple(ParamDef(f"p{i}", "in", t, None) for i, (t, _) in enumerate(tvs))
    message = {p.name: v for p, (_, v) in zip(params, tvs)}
    back = message_from_json(through_json(message_to_json(message, params)), params)
    assert same(back, message)
    compile_message(params)(back)


def test_hex_becomes_bytes_only_where_the_type_is_bytes():
    box = StructType("t.Box", (FieldDef("label", StringType(8)), FieldDef("blob", BytesType(8))))
    assert from_json({"label": "00ff", "blob": "00ff"}, box) == {"label": "00ff", "blob": b"\x00\xff"}
    assert from_json(["00", "FF", ""], SequenceType(BytesType(1), 3)) == [b"\x00", b"\xff", b""]
    assert from_json({"b": "0a"}, UnionType("t.U", (FieldDef("b", BytesType(1)),))) == {"b": b"\n"}
    assert from_json(7, INT_TYPES["UInt8"]) == 7 and from_json("7", INT_TYPES["UInt8"]) == "7"


@pytest.mark.parametrize("raw", ["abc", "zz", "0x00", "00 ff", " 00", "é0", 7, ["00"], None, {"hex": "00"}])
def test_what_does_not_decode_is_left_for_the_structure_check_to_deny(raw):
    t = BytesType(8)
    assert from_json(raw, t) is raw
    with pytest.raises(MalformedMessage, match=r"data: expected bytes<8>, got"):
        compile_type(t)(from_json(raw, t), "data")


def test_unknown_fields_and_parameters_are_kept():
    box = StructType("t.Box", (FieldDef("blob", BytesType(8)),))
    assert from_json({"blob": "00", "extra": "00"}, box) == {"blob": b"\x00", "extra": "00"}
    params = (ParamDef("data", "in", BytesType(4), None),)
    assert message_from_json({"data": "01", "other": "01"}, params) == {"data": b"\x01", "other": "01"}
    assert message_from_json({"data": "01"}, None) == {"data": "01"}          # unknown method: as is
    assert message_from_json(["data"], params) == ["data"]                     # not a message: as is


def test_untyped_encoding_is_jsonable_as_before():
    assert jsonable({"a": (1, b"\x01"), 2: bytearray(b"ab"), "s": "x", "t": True, "n": None}) == \
        {"a": [1, "01"], "2": "6162", "s": "x", "t": True, "n": None}
    assert jsonable(10 ** 70) == 10 ** 70                   # 233 bits: still a number
    assert jsonable([10 ** 5000]) == ["<16,610-bit integer>"]
    json.dumps(jsonable({10 ** 5000: 1}))                    # even as a key


# ----------------------------------------------------------------------------- a solution with bytes fields

IDL = """package blob.Api
struct Box { UInt8 n; bytes<4> blob; }
union Pick { bytes<3> raw; UInt8 n; }
typedef array<bytes<2>, 2> Pair;
interface {
    Upload(in bytes<8> data, in Box box, in Pair pair, in Pick pick, in sequence<Box, 2> more, out bytes<4> ack);
}
"""
POLICY = """use nk.base._
use EDL kl.core.Core
use EDL Einit
use EDL blob.Client
use EDL blob.Server
execute: kl.core.Execute
execute { grant () }
request dst=kl.core.Core { grant () }
request src=blob.Client, dst=blob.Server, method=Upload { assert (message.box.n < LIMIT) }
response src=blob.Server, dst=blob.Client, method=Upload { grant () }
"""
FILES = {
    "resources/Api.idl": IDL,
    "resources/Client.edl": "task class blob.Client\n",
    "resources/Server.edl": "task class blob.Server\nendpoints {\n    api : blob.Api\n}\n",
    "einit/src/init.yaml": "entities:\n  - name: blob.Client\n    task: client\n    connections:\n"
                           "      - target: server\n        id: c\n  - name: blob.Server\n    task: server\n",
}
PROPS = """property uploads_never_granted:
    never request src=client dst=server method=Upload
property uploads_always_granted:
    always request src=client dst=server method=Upload
property acks_never_granted:
    never response src=server dst=client method=Upload
"""
BYTES_FIELDS = {"data", "blob", "pair", "raw", "ack"}


def blob_solution(root: Path, limit: int = 10) -> Path:
    files = dict(FILES, **{"einit/src/security.psl": POLICY.replace("LIMIT", str(limit))})
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture(scope="module")
def blob(tmp_path_factory):
    """(solution folder, path of its `ksm prove --format json` output, the parsed output)."""
    root = blob_solution(tmp_path_factory.mktemp("blob"))
    props = root.parent / "blob.props"
    props.write_text(PROPS)
    cex = root.parent / "cex.json"
    assert main(["prove", str(root), "--props", str(props), "--format", "json", "--output", str(cex)]) == 1
    return root, cex, json.loads(cex.read_text())


def _steps(doc):
    for r in doc["results"]:
        assert r["status"] == "REFUTED", r
        yield from r["counterexample"]["steps"]


def _keys(v):
    if isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from _keys(x)
    elif isinstance(v, list):
        for x in v:
            yield from _keys(x)


def test_counterexample_steps_with_bytes_paste_into_decide(blob, capsys):
    root, _, doc = blob
    steps = list(_steps(doc))
    assert {s["expect"] for s in steps} == {"granted", "denied"}
    assert BYTES_FIELDS <= {k for s in steps for k in _keys(s["message"])}       # bytes at every depth
    for step in steps:
        code = main(["decide", str(root), "--event", json.dumps(step), "--format", "json"])
        out = json.loads(capsys.readouterr().out)
        assert code == (0 if step["expect"] == "granted" else 1), out["reason"]
        assert out["granted"] == (step["expect"] == "granted")
        assert "malformed" not in out["reason"]
        assert out["event"]["message"] == step["message"]                    # written back as it was read


def test_non_empty_and_malformed_hex_in_decide(blob, capsys):
    root, _, doc = blob
    step = next(s for s in _steps(doc) if s["expect"] == "granted" and s["kind"] == "request")
    message = dict(step["message"], data="00FFab", box={"n": 3, "blob": "deadbeef"}, pair=["0001", "ffff"],
                   pick={"raw": "616263"}, more=[{"n": 1, "blob": ""}, {"n": 2, "blob": "ff"}])
    assert main(["decide", str(root), "--event", json.dumps(dict(step, message=message)), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["granted"] and out["event"]["message"]["data"] == "00ffab"
    for field, value, reason in [("data", "abc", "data: expected bytes<8>, got str"),
                                 ("box", {"n": 0, "blob": "xy"}, "box.blob: expected bytes<4>, got str"),
                                 ("pair", ["00", "000000"], "pair[1]: 3 bytes exceed bytes<2>"),
                                 ("pick", {"raw": 5}, "pick.raw: expected bytes<3>, got int")]:
        bad = dict(step, message=dict(step["message"], **{field: value}))
        assert main(["decide", str(root), "--event", json.dumps(bad)]) == 1
        assert f"because: malformed message: {reason}" in capsys.readouterr().out


def test_replay_of_the_same_file_agrees(blob, capsys):
    root, cex, doc = blob
    assert main(["simulate", str(root), "--replay", str(cex)]) == 0
    out = capsys.readouterr().out
    assert out.count("== replay of") == len(doc["results"]) and "disagree" not in out


def test_python_api_reads_the_same_steps(blob):
    root, _, doc = blob
    solution = ksm.load(root)
    module = ksm.SecurityModule(solution)
    module.boot()
    for step in _steps(doc):
        event = ksm.event_from_json(solution, step)
        assert isinstance(event, Event)
        decision = module.decide(event)
        assert ("granted" if decision.granted else "denied") == step["expect"], decision.explain()
        assert ksm.event_to_json(event) == {k: v for k, v in step.items() if k != "expect"}
        assert ksm.event_from_json(solution, json.dumps(step)) == event                # the text as well
    request = next(s for s in _steps(doc) if s["kind"] == "request")
    event = ksm.event_from_json(solution, request)
    assert event.message["data"] == b"" and event.message["box"]["blob"] == b""
    assert event.message["pair"] == [b"", b""] and event.message["pick"] == {"raw": b""}


def test_processes_named_by_sid_need_the_module(blob):
    root, _, doc = blob
    solution = ksm.load(root)
    module = ksm.SecurityModule(solution)
    module.boot()
    sid = next(p.sid for p in module.processes.values() if p.task == "server")
    step = dict(next(s for s in _steps(doc) if s["kind"] == "request"), dst=sid, endpoint=0, method=0)
    assert method_params(solution, event_from_json(solution, step)) is None        # SID: unknown without it
    event = event_from_json(solution, step, module)
    assert event.message["data"] == b"" and module.decide(event).granted


def test_events_naming_no_known_method_keep_their_message(blob):
    solution = ksm.load(blob[0])
    for change in ({"method": "Nope"}, {"endpoint": "nope"}, {"dst": "nobody"}, {"kind": "execute"},
                   {"method": 7}, {"kind": 3}):
        event = Event(**dict({"kind": "request", "src": "client", "dst": "server", "endpoint": "api",
                              "method": "Upload", "message": {"data": "00"}}, **change))
        assert decode_event(solution, event) is event


def test_api_argument_errors():
    solution = ksm.load(ECHO)
    with pytest.raises(TypeError, match="event_from_json takes a loaded Solution"):
        ksm.event_from_json(str(ECHO), {})
    with pytest.raises(TypeError, match="an event is a JSON object"):
        ksm.event_from_json(solution, [1])
    with pytest.raises(ValueError):
        ksm.event_from_json(solution, "{not json")
    assert ksm.event_from_json(solution, '{"kind": "execute", "dst": "echo.Server"}') == \
        Event("execute", None, "echo.Server", None, "main", {})
    huge = ksm.event_from_json(solution, '{"kind": "request", "src": %s}' % ("9" * 5000))
    assert event_to_json(huge)["src"] == "<16,607-bit integer>"


def test_decide_json_report_survives_a_huge_number(capsys):
    event = ('{"kind": "request", "src": %s, "dst": "echo.Server", "endpoint": "pingComp.pingImpl", '
             '"method": "Ping", "message": {"value": 1}}' % ("9" * 5000))
    assert main(["decide", str(ECHO), "--event", event, "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["event"]["src"] == "<16,607-bit integer>" and not out["granted"]


def test_diff_witness_with_bytes_reads_back(tmp_path, capsys):
    old = blob_solution(tmp_path / "old", limit=10)
    new = blob_solution(tmp_path / "new", limit=20)
    assert main(["diff", str(old), str(new), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    grants = [d for d in doc["differences"] if d["change"] == "new-grant"]
    assert len(grants) == 1 and grants[0]["witness"]["message"]["data"] == ""
    for root, granted in ((old, False), (new, True)):
        solution = ksm.load(root)
        module = ksm.SecurityModule(solution)
        module.boot()
        assert module.decide(ksm.event_from_json(solution, grants[0]["witness"])).granted is granted


def test_scenario_values_are_read_as_json_writes_them(tmp_path, capsys):
    """A scenario's `with:` and `serve:` values use the same encoding: bytes<N> as hex."""
    from ksm.cli import main

    scenario = tmp_path / "bytes.yaml"
    scenario.write_text(
        "seed: 1\n"
        "processes:\n"
        "  lock.Storage:\n"
        "    serve:\n"
        "      files.Append: {written: 3}\n"
        "  lock.Logger:\n"
        "    run:\n"
        "      - call: files.Append\n"
        "        channel: storage_channel\n"
        '        with: {name: "log", data: "48690a"}\n'
        "        expect: {written: 3}\n")
    root = Path(__file__).resolve().parent.parent
    code = main(["simulate", str(root / "models" / "smart_lock"), "--scenario", str(scenario), "-q"])
    out = capsys.readouterr().out
    assert code == 0 and "1 granted / 0 denied" in out, out
