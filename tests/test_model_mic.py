"""Mic model: one test per documented rule outcome, plus properties.

Documented outcomes (KCE Mic pages): create/execute/upgrade/call/invoke/read/write
grant or deny; query_level returns the level or runs incorrectly.  Both config
forms: a linear list of names and {degrees, categories} (partial order).
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ksm.security_models import ModelError
from ksm.security_models.mic import MicContext, MicLevel, MicModel, MicState, parse_config
from policy_lang.solution import PolicyObjectDef

LIN = ["LOW", "MEDIUM", "HIGH"]
PO = {"degrees": ["low", "high"], "categories": ["net", "log"]}


def obj(config, name="mic"):
    return PolicyObjectDef(name, "Mic", config, types={}, span=None)


M = MicModel()
OL = obj(LIN)
OP = obj(PO)


def lv(degree, *cats):
    return {"degree": degree, "categories": list(cats)}


def label(state, sid, level, level_r=None, o=OL, model=M):
    """Give subject ``sid`` a level with execute {image : ()}."""
    r = model.rule(o, state, "execute", {"image": None, "target": sid, "level": level, "levelR": level_r})
    assert r.granted, r.reason
    return r.state


def world(o=OL, model=M, **levels):
    """A state where sid N (named sN) has the given level (or (level, levelR))."""
    s = model.initial_state(o)
    for name, v in levels.items():
        level, level_r = v if isinstance(v, tuple) else (v, None)
        s = label(s, int(name[1:]), level, level_r, o, model)
    return s


def rule(state, method, o=OL, model=M, **arg):
    return model.rule(o, state, method, arg)


def level_of(state, sid, o=OL):
    return M.expression(o, state, "query_level", {"source": sid})


def denied(r, state, text):
    assert not r.granted, r.reason
    assert r.state is state
    assert r.reason.startswith("denied:")
    assert text in r.reason, r.reason


# ------------------------------------------------------------------ config/levels
def test_name_and_initial_state():
    assert MicModel.name == "Mic"
    assert isinstance(M.initial_state(OL), MicState) and dict(M.initial_state(OP).contexts) == {}


@pytest.mark.parametrize("config", [
    None, [], ["A", "A"], ["A", 1], {"degrees": [], "categories": []}, {"categories": ["x"]},
    {"degrees": ["a"], "categories": "x"}, {"degrees": ["a", "a"], "categories": []}, "LOW",
])
def test_bad_config_runs_incorrectly(config):
    with pytest.raises(ModelError):
        M.initial_state(obj(config))


def test_linear_order_is_list_order_ascending():
    lat = parse_config(OL)
    low, med, high = (lat.parse(x) for x in LIN)
    assert lat.leq(low, med) and lat.leq(med, high) and lat.leq(low, high)
    assert not lat.leq(high, low) and lat.exceeds(high, med) and not lat.incomparable(low, high)


def test_partial_order_from_docs_examples():
    lat = parse_config(OP)
    assert len(lat.all_levels()) == 8
    # {net,log}/high exceeds {log}/low; {net}/high and {log}/low are incomparable
    assert lat.exceeds(lat.parse(lv("high", "net", "log")), lat.parse(lv("low", "log")))
    assert lat.incomparable(lat.parse(lv("high", "net")), lat.parse(lv("low", "log")))
    # equal degree, more categories is higher; higher degree fewer categories: incomparable
    assert lat.exceeds(lat.parse(lv("low", "net")), lat.parse("low"))
    assert lat.incomparable(lat.parse(lv("high")), lat.parse(lv("low", "net")))


def test_level_argument_forms():
    lat = parse_config(OP)
    assert lat.parse("high") == MicLevel(1, frozenset())
    assert lat.parse({"degree": "high", "categories": ["log", "net"]}) == MicLevel(1, frozenset({"net", "log"}))
    assert lat.parse({"degree": None, "categories": ["net"]}) == MicLevel(0, frozenset({"net"}))  # () = lowest
    assert lat.parse({"degree": "high", "categories": None}) == MicLevel(1, frozenset())           # () = none
    assert lat.parse({"degree": "low"}) == MicLevel(0)
    assert parse_config(OL).parse({"degree": "HIGH", "categories": []}) == MicLevel(2)


@pytest.mark.parametrize("config,value", [
    (LIN, "TOP"), (LIN, {"degree": "HIGH", "categories": ["net"]}), (PO, {"degree": "mid"}),
    (PO, {"degree": "low", "categories": ["disk"]}), (PO, {"degree": "low", "cats": []}), (PO, 3),
    (PO, {"degree": "low", "categories": "net"}), (LIN, MicLevel(5)),
])
def test_bad_level_value_runs_incorrectly(config, value):
    with pytest.raises(ModelError):
        parse_config(obj(config)).parse(value)
    with pytest.raises(ModelError):
        M.rule(obj(config), M.initial_state(obj(config)), "execute", {"image": None, "target": 1, "level": value})


def test_state_is_immutable_and_hashable():
    s = world(s1="LOW")
    with pytest.raises(AttributeError):
        s.x = 1
    with pytest.raises(TypeError):
        s.contexts[2] = None
    assert s == world(s1="LOW") and hash(s) == hash(world(s1="LOW")) and s != world(s1="HIGH")


# ---------------------------------------------------------------------- execute
def test_execute_granted_image_unit_levelr_unit_defaults_to_level():
    s0 = M.initial_state(OL)
    r = rule(s0, "execute", image=None, target=1, level="MEDIUM", levelR=None)
    assert r.granted and r.reason.startswith("granted:")
    assert r.state.context(1) == MicContext(MicLevel(1), MicLevel(1))
    assert s0.context(1) is None


def test_execute_granted_with_explicit_levelr():
    s = world(s1=("HIGH", "LOW"))
    assert s.context(1) == MicContext(MicLevel(2), MicLevel(0))


def test_execute_levelr_field_absent_is_unit():
    r = rule(M.initial_state(OL), "execute", image=None, target=1, level="HIGH")
    assert r.granted and r.state.context(1).level_r == MicLevel(2)


def test_execute_granted_level_unit_takes_image_level():
    s = world(s9="MEDIUM")  # the executable file's label
    r = rule(s, "execute", image=9, target=1, level=None, levelR=None)
    assert r.granted and r.state.context(1) == MicContext(MicLevel(1), MicLevel(1))


def test_execute_granted_level_not_above_image():
    s = world(s9="MEDIUM")
    assert rule(s, "execute", image=9, target=1, level="LOW", levelR=None).granted
    assert rule(s, "execute", image=9, target=1, level="MEDIUM", levelR="LOW").granted


def test_execute_denied_level_exceeds_image():
    s = world(s9="MEDIUM")
    denied(rule(s, "execute", image=9, target=1, level="HIGH", levelR=None), s, "exceeds the level of image")


def test_execute_denied_level_incomparable_to_image():
    s = world(OP, s9=lv("high", "net"))
    r = rule(s, "execute", OP, image=9, target=1, level=lv("low", "log"), levelR=None)
    denied(r, s, "incomparable to the level of image")


def test_execute_denied_levelr_exceeds_level():
    s = M.initial_state(OL)
    denied(rule(s, "execute", image=None, target=1, level="LOW", levelR="HIGH"), s, "levelR HIGH exceeds level LOW")


def test_execute_denied_levelr_incomparable_to_level():
    s = M.initial_state(OP)
    r = rule(s, "execute", OP, image=None, target=1, level=lv("high", "net"), levelR=lv("low", "log"))
    denied(r, s, "incomparable")


def test_execute_denied_image_unassigned():
    s = M.initial_state(OL)
    denied(rule(s, "execute", image=9, target=1, level="LOW", levelR=None), s, "no integrity level was assigned to image")
    denied(rule(s, "execute", image=9, target=1, level=None, levelR=None), s, "image")


def test_execute_denied_out_of_range():
    m = MicModel(sid_limit=10)
    s = world(model=m, s9="HIGH")
    denied(rule(s, "execute", model=m, image=None, target=10, level="LOW"), s, "target sid 10 is outside")
    denied(rule(s, "execute", model=m, image=11, target=1, level="LOW"), s, "image sid 11 is outside")


def test_execute_image_unit_and_level_unit_runs_incorrectly():
    with pytest.raises(ModelError, match="needs a `level`"):
        rule(M.initial_state(OL), "execute", image=None, target=1, level=None, levelR=None)


def test_execute_denied_target_already_labelled_by_default():
    s = world(s1="LOW")
    denied(rule(s, "execute", image=None, target=1, level="HIGH"), s, "already labelled")


def test_execute_relabel_option_overwrites():
    m = MicModel(allow_relabel=True)
    s = world(model=m, s1="LOW")
    r = rule(s, "execute", model=m, image=None, target=1, level="HIGH")
    assert r.granted and r.state.context(1).level == MicLevel(2) and s.context(1).level == MicLevel(0)


@pytest.mark.parametrize("arg", [{"image": None, "level": "LOW"}, {"image": "x", "target": 1, "level": "LOW"},
                                 {"image": None, "target": -2, "level": "LOW"}])
def test_execute_malformed_runs_incorrectly(arg):
    with pytest.raises(ModelError):
        M.rule(OL, M.initial_state(OL), "execute", arg)


# ----------------------------------------------------------------------- create
def test_create_granted_labels_resource():
    s = world(s1="HIGH", s2="HIGH", s3="MEDIUM")
    r = rule(s, "create", source=1, target=50, container=3, driver=2, level="MEDIUM")
    assert r.granted and r.state.context(50) == MicContext(MicLevel(1), None)
    assert s.context(50) is None


def test_create_container_unit_is_root_no_container_check():
    s = world(s1="HIGH", s2="HIGH", s3="LOW")
    assert rule(s, "create", source=1, target=50, container=None, driver=2, level="HIGH").granted
    denied(rule(s, "create", source=1, target=50, container=3, driver=2, level="HIGH"), s, "level of container")


@pytest.mark.parametrize("who", ["source", "driver", "container"])
def test_create_denied_level_exceeds(who):
    levels = {"source": "HIGH", "driver": "HIGH", "container": "HIGH", who: "LOW"}
    s = world(s1=levels["source"], s2=levels["driver"], s3=levels["container"])
    r = rule(s, "create", source=1, target=50, container=3, driver=2, level="MEDIUM")
    denied(r, s, f"exceeds the level of {who}")


@pytest.mark.parametrize("who", ["source", "driver", "container"])
def test_create_denied_level_incomparable(who):
    top = lv("high", "net", "log")
    levels = {"source": top, "driver": top, "container": top, who: lv("high", "log")}
    s = world(OP, s1=levels["source"], s2=levels["driver"], s3=levels["container"])
    r = rule(s, "create", OP, source=1, target=50, container=3, driver=2, level=lv("low", "net"))
    denied(r, s, f"incomparable to the level of {who}")


@pytest.mark.parametrize("who,sid", [("source", 1), ("driver", 2), ("container", 3)])
def test_create_denied_unassigned(who, sid):
    levels = {f"s{i}": "HIGH" for i in (1, 2, 3) if i != sid}
    s = world(**levels)
    r = rule(s, "create", source=1, target=50, container=3, driver=2, level="LOW")
    denied(r, s, f"no integrity level was assigned to {who}")


@pytest.mark.parametrize("field", ["source", "target", "container", "driver"])
def test_create_denied_out_of_range(field):
    m = MicModel(sid_limit=100)
    s = world(model=m, s1="HIGH", s2="HIGH", s3="HIGH")
    arg = {"source": 1, "target": 50, "container": 3, "driver": 2, "level": "LOW", field: 100}
    denied(m.rule(OL, s, "create", arg), s, f"{field} sid 100 is outside")


def test_create_level_unit_is_meet_by_default():
    s = world(OP, s1=lv("high", "net", "log"), s2=lv("high", "net"), s3=lv("low", "net", "log"))
    r = rule(s, "create", OP, source=1, target=50, container=3, driver=2, level=None)
    assert r.granted and r.state.context(50).level == MicLevel(0, frozenset({"net"}))
    assert level_of(r.state, 50, OP) == {"degree": "low", "categories": ["net"]}


def test_create_level_unit_source_option():
    m = MicModel(create_unit_level="source")
    s = world(model=m, s1="MEDIUM", s2="HIGH")
    r = rule(s, "create", model=m, source=1, target=50, container=None, driver=2, level=None)
    assert r.granted and r.state.context(50).level == MicLevel(1)
    s = world(model=m, s1="HIGH", s2="MEDIUM")
    denied(rule(s, "create", model=m, source=1, target=50, container=None, driver=2, level=None), s, "driver")


def test_create_denied_target_already_labelled_by_default():
    s = world(s1="HIGH", s2="HIGH", s50="LOW")
    denied(rule(s, "create", source=1, target=50, container=None, driver=2, level="HIGH"), s, "already labelled")
    m = MicModel(allow_relabel=True)
    assert m.rule(OL, s, "create", dict(source=1, target=50, container=None, driver=2, level="HIGH")).granted


@pytest.mark.parametrize("arg", [
    {"source": 1, "target": 50, "container": None, "driver": None, "level": "LOW"},
    {"source": 1, "container": None, "driver": 2, "level": "LOW"},
    {"source": 1, "target": 50, "container": "c", "driver": 2, "level": "LOW"},
    {"source": 1, "target": 50, "container": None, "driver": 2, "level": "TOP"},
])
def test_create_malformed_runs_incorrectly(arg):
    with pytest.raises(ModelError):
        M.rule(OL, world(s1="HIGH", s2="HIGH"), "create", arg)


# ---------------------------------------------------------------------- upgrade
def up(state, o=OL, model=M, container=3, level="HIGH", source=1, target=50, driver=2):
    return model.rule(o, state, "upgrade", dict(source=source, target=target, container=container,
                                                driver=driver, level=level))


def test_upgrade_granted_raises_level_and_keeps_levelr():
    s = world(s1="HIGH", s2="HIGH", s3="HIGH", s50=("MEDIUM", "LOW"))
    r = up(s)
    assert r.granted and r.state.context(50) == MicContext(MicLevel(2), MicLevel(0))
    assert s.context(50).level == MicLevel(1)


def test_upgrade_container_unit_skips_container():
    s = world(s1="HIGH", s2="HIGH", s50="LOW")
    assert up(s, container=None).granted


@pytest.mark.parametrize("new", ["MEDIUM", "LOW"])
def test_upgrade_denied_level_does_not_exceed_target(new):
    s = world(s1="HIGH", s2="HIGH", s3="HIGH", s50="MEDIUM")
    denied(up(s, level=new), s, "does not exceed the target's level")


def test_upgrade_denied_level_incomparable_to_target():
    top = lv("high", "net", "log")
    s = world(OP, s1=top, s2=top, s3=top, s50=lv("low", "net"))
    denied(up(s, OP, level=lv("low", "log")), s, "does not exceed")


@pytest.mark.parametrize("who", ["source", "driver", "container"])
def test_upgrade_denied_level_exceeds(who):
    levels = {"source": "HIGH", "driver": "HIGH", "container": "HIGH", who: "MEDIUM"}
    s = world(s1=levels["source"], s2=levels["driver"], s3=levels["container"], s50="LOW")
    denied(up(s, level="HIGH"), s, f"exceeds the level of {who}")


def test_upgrade_target_above_source_is_always_caught():
    # The documented "target's level exceeds the source's" denial is implied by the
    # other two checks (level > L(target) and level <= L(source) give
    # L(target) < L(source)), so it can only show up together with them.
    o = obj(["L0", "L1", "L2", "L3"])
    s = world(o, s1="L1", s2="L3", s3="L3", s50="L2")
    denied(up(s, o, level="L3"), s, "exceeds the level of source")
    s = world(OP, s1=lv("high", "net"), s2=lv("high", "net", "log"), s50=lv("low", "net", "log"))
    denied(up(s, OP, container=None, level=lv("high", "net", "log")), s, "exceeds the level of source")


def test_upgrade_denied_level_incomparable_to_source_by_default():
    s = world(OP, s1=lv("high", "log"), s2=lv("high", "net", "log"), s50=lv("low"))
    denied(up(s, OP, container=None, level=lv("high", "net")), s, "incomparable to the level of source")


def test_upgrade_incomparable_option_off_grants_when_nothing_exceeds():
    m = MicModel(upgrade_deny_incomparable=False)
    s = world(OP, m, s1=lv("high", "net"), s2=lv("high", "net", "log"), s50=lv("low"))
    r = m.rule(OP, s, "upgrade", dict(source=1, target=50, container=None, driver=2, level=lv("low", "log")))
    assert r.granted
    r = M.rule(OP, world(OP, s1=lv("high", "net"), s2=lv("high", "net", "log"), s50=lv("low")), "upgrade",
               dict(source=1, target=50, container=None, driver=2, level=lv("low", "log")))
    assert not r.granted and "incomparable" in r.reason


def test_upgrade_denied_target_unassigned():
    s = world(s1="HIGH", s2="HIGH", s3="HIGH")
    denied(up(s), s, "no integrity level to upgrade")


@pytest.mark.parametrize("who,sid", [("source", 1), ("driver", 2), ("container", 3)])
def test_upgrade_denied_unassigned(who, sid):
    levels = {f"s{i}": "HIGH" for i in (1, 2, 3) if i != sid}
    s = world(s50="LOW", **levels)
    denied(up(s), s, f"no integrity level was assigned to {who}")


@pytest.mark.parametrize("field", ["source", "target", "container", "driver"])
def test_upgrade_denied_out_of_range(field):
    m = MicModel(sid_limit=100)
    s = world(model=m, s1="HIGH", s2="HIGH", s3="HIGH", s50="LOW")
    arg = {"source": 1, "target": 50, "container": 3, "driver": 2, "level": "HIGH", field: 100}
    denied(m.rule(OL, s, "upgrade", arg), s, f"{field} sid 100 is outside")


def test_upgrade_level_unit_runs_incorrectly():
    with pytest.raises(ModelError, match="needs a `level`"):
        up(world(s1="HIGH", s2="HIGH", s3="HIGH", s50="LOW"), level=None)


# ---------------------------------------------------------------- call / read
@pytest.mark.parametrize("method", ["call", "read"])
def test_receive_granted_source_not_above_target(method):
    s = world(s1="LOW", s2="HIGH")
    r = rule(s, method, source=1, target=2)
    assert r.granted and r.state is s
    assert rule(world(s1="MEDIUM", s2="MEDIUM"), method, source=1, target=2).granted


@pytest.mark.parametrize("method", ["call", "read"])
def test_receive_granted_source_above_but_levelr_not_above(method):
    s = world(s1=("HIGH", "LOW"), s2="MEDIUM")
    r = rule(s, method, source=1, target=2)
    assert r.granted and "levelR" in r.reason


@pytest.mark.parametrize("method", ["call", "read"])
def test_receive_denied_source_and_levelr_above(method):
    s = world(s1=("HIGH", "MEDIUM"), s2="LOW")
    denied(rule(s, method, source=1, target=2), s, "source level HIGH exceeds target level LOW")


@pytest.mark.parametrize("method", ["call", "read"])
def test_receive_partial_order_cases(method):
    # source above target, levelR incomparable -> denied
    s = world(OP, s1=(lv("high", "net", "log"), lv("low", "net")), s2=lv("high", "log"))
    denied(rule(s, method, OP, source=1, target=2), s, "levelR {net}/low is incomparable")
    # source incomparable, levelR not above -> granted
    s = world(OP, s1=(lv("high", "net"), lv("low")), s2=lv("low", "log"))
    assert rule(s, method, OP, source=1, target=2).granted
    # source incomparable, levelR above -> denied
    s = world(OP, s1=(lv("high", "net"), lv("low", "net")), s2=lv("low", "log"))
    denied(rule(s, method, OP, source=1, target=2), s, "is incomparable to target level")
    # source incomparable, levelR incomparable -> denied
    s = world(OP, s1=lv("high", "net"), s2=lv("low", "log"))
    denied(rule(s, method, OP, source=1, target=2), s, "incomparable")


@pytest.mark.parametrize("method", ["call", "read"])
def test_receive_resource_source_uses_its_level(method):
    s = world(s1="HIGH", s2="HIGH")
    s = rule(s, "create", source=1, target=50, container=None, driver=2, level="MEDIUM").state
    s = label(s, 3, "LOW")
    assert not rule(s, method, source=50, target=3).granted
    assert rule(s, method, source=50, target=1).granted


@pytest.mark.parametrize("method", ["call", "read", "invoke", "write"])
@pytest.mark.parametrize("missing", ["source", "target"])
def test_flow_rules_denied_unassigned(method, missing):
    s = world(s1="LOW") if missing == "target" else world(s2="LOW")
    denied(rule(s, method, source=1, target=2), s, f"no integrity level was assigned to {missing}")


@pytest.mark.parametrize("method", ["call", "read", "invoke", "write"])
def test_flow_rules_denied_out_of_range(method):
    m = MicModel(sid_limit=5)
    s = world(model=m, s1="LOW")
    denied(rule(s, method, model=m, source=1, target=5), s, "target sid 5 is outside")


@pytest.mark.parametrize("method", ["call", "read", "invoke", "write"])
def test_flow_rules_malformed_run_incorrectly(method):
    with pytest.raises(ModelError):
        M.rule(OL, world(s1="LOW"), method, {"source": 1})


# -------------------------------------------------------------- invoke / write
@pytest.mark.parametrize("method", ["invoke", "write"])
def test_send_granted_target_not_above_source(method):
    s = world(s1="HIGH", s2="LOW")
    r = rule(s, method, source=1, target=2)
    assert r.granted and r.state is s
    assert rule(world(s1="LOW", s2="LOW"), method, source=1, target=2).granted


@pytest.mark.parametrize("method", ["invoke", "write"])
def test_send_denied_target_above_source(method):
    s = world(s1=("LOW", "LOW"), s2="HIGH")
    denied(rule(s, method, source=1, target=2), s, "target level HIGH exceeds source level LOW")


@pytest.mark.parametrize("method", ["invoke", "write"])
def test_send_denied_incomparable(method):
    s = world(OP, s1=lv("high", "net"), s2=lv("low", "log"))
    denied(rule(s, method, OP, source=1, target=2), s, "is incomparable to source level")


@pytest.mark.parametrize("method", ["invoke", "write"])
def test_send_ignores_levelr(method):
    s = world(s1=("MEDIUM", "LOW"), s2="HIGH")
    assert not rule(s, method, source=1, target=2).granted


# ----------------------------------------------------------------- query_level
def test_query_level_linear_returns_name():
    assert level_of(world(s1="MEDIUM"), 1) == "MEDIUM"


def test_query_level_partial_returns_record():
    s = world(OP, s1=lv("high", "log", "net"))
    assert level_of(s, 1, OP) == {"degree": "high", "categories": ["net", "log"]}
    assert parse_config(OP).parse(level_of(s, 1, OP)) == s.context(1).level  # round trip


def test_query_level_runs_incorrectly_unassigned():
    with pytest.raises(ModelError, match="runs incorrectly.*no integrity level"):
        level_of(world(s1="LOW"), 2)


def test_query_level_runs_incorrectly_out_of_range():
    m = MicModel(sid_limit=2)
    with pytest.raises(ModelError, match="permissible range"):
        m.expression(OL, m.initial_state(OL), "query_level", {"source": 2})


def test_query_level_malformed_and_unknown_methods():
    with pytest.raises(ModelError):
        M.expression(OL, world(s1="LOW"), "query_level", {"sid": 1})
    with pytest.raises(ModelError):
        M.expression(OL, world(s1="LOW"), "level", {"source": 1})
    with pytest.raises(ModelError):
        M.rule(OL, world(s1="LOW"), "query_level", {"source": 1})


# ---------------------------------------------------------------------- choose
def test_choose_linear_by_name():
    s = world(s1="HIGH", s2="LOW")
    assert M.choose(OL, s, "query_level", {"source": 1}, ["LOW", "HIGH", None]) == 1
    assert M.choose(OL, s, "query_level", {"source": 2}, ["HIGH", None]) is None
    assert M.choose(OL, s, "query_level", {"source": 1}, ["TOP", {"degree": "HIGH"}]) == 1  # bad label skipped


def test_choose_partial_order_labels():
    s = world(OP, s1=lv("high"), s2=lv("high", "log", "net"))
    assert M.choose(OP, s, "query_level", {"source": 1}, [lv("high", "net"), "high"]) == 1
    cases = ["high", {"degree": "high", "categories": ["net", "log"]}, None]
    assert M.choose(OP, s, "query_level", {"source": 2}, cases) == 1
    assert M.choose(OP, s, "query_level", {"source": 2}, ["low", None]) is None


def test_choose_at_least_option():
    m = MicModel(query_level_match="at_least")
    s = world(model=m, s1="MEDIUM")
    assert m.choose(OL, s, "query_level", {"source": 1}, ["HIGH", "LOW", None]) == 1
    assert M.choose(OL, world(s1="MEDIUM"), "query_level", {"source": 1}, ["HIGH", "LOW", None]) is None


def test_choose_runs_incorrectly_unassigned():
    with pytest.raises(ModelError):
        M.choose(OL, M.initial_state(OL), "query_level", {"source": 1}, ["LOW", None])


def test_bad_options_rejected():
    with pytest.raises(ValueError):
        MicModel(create_unit_level="container")
    with pytest.raises(ValueError):
        MicModel(query_level_match="regex")


def test_showcase_scenario():
    o = obj(["LOW", "HIGH"], "integrity")
    s = world(o, s10="HIGH", s11="LOW", s12="HIGH", s13="LOW")   # hub, gateway, vault, sink
    assert rule(s, "call", o, source=11, target=10).granted       # gateway reads the hub's reply
    assert not rule(s, "invoke", o, source=11, target=10).granted  # gateway may not push into the hub
    assert rule(s, "invoke", o, source=10, target=13).granted      # hub logs to the low sink
    r = rule(s, "create", o, source=10, target=99, container=None, driver=12, level="HIGH")
    assert r.granted and M.choose(o, r.state, "query_level", {"source": 99}, ["HIGH", None]) == 0


# ------------------------------------------------------------------- properties
@st.composite
def mic_configs(draw):
    if draw(st.booleans()):
        n = draw(st.integers(1, 4))
        return [f"L{i}" for i in range(n)]
    return {"degrees": [f"d{i}" for i in range(draw(st.integers(1, 3)))],
            "categories": [f"c{i}" for i in range(draw(st.integers(0, 3)))]}


def raw_levels(config):
    """Every level of a config as a raw argument value."""
    if isinstance(config, list):
        return list(config)
    out = []
    cats = config["categories"]
    for mask in range(1 << len(cats)):
        for d in config["degrees"]:
            out.append({"degree": d, "categories": [c for i, c in enumerate(cats) if mask >> i & 1]})
    return out


def ref_leq(config, a, b):
    """Reference order written directly from the docs, on raw level values."""
    if isinstance(config, list):
        return config.index(a) <= config.index(b)
    degs = config["degrees"]
    return degs.index(a["degree"]) <= degs.index(b["degree"]) and set(a["categories"]) <= set(b["categories"])


@settings(max_examples=300, deadline=None)
@given(mic_configs(), st.data())
def test_property_flow_rules_agree_with_reference_order(config, data):
    o = obj(config)
    levels = raw_levels(config)
    s = M.initial_state(o)
    ref: dict[int, tuple] = {}          # sid -> (level, levelR) raw
    for sid in range(4):
        if data.draw(st.booleans()):
            level = data.draw(st.sampled_from(levels))
            level_r = data.draw(st.sampled_from(levels + [None]))
            r = M.rule(o, s, "execute", {"image": None, "target": sid, "level": level, "levelR": level_r})
            expect = level_r is None or ref_leq(config, level_r, level)
            assert r.granted == expect
            if r.granted:
                ref[sid] = (level, level if level_r is None else level_r)
                s = r.state
            else:
                assert r.state is s
    for src in range(5):
        for tgt in range(5):
            arg = {"source": src, "target": tgt}
            known = src in ref and tgt in ref
            for method in ("call", "read"):
                r = M.rule(o, s, method, arg)
                expect = known and (ref_leq(config, ref[src][0], ref[tgt][0]) or ref_leq(config, ref[src][1], ref[tgt][0]))
                assert r.granted == expect and r.state is s
            for method in ("invoke", "write"):
                r = M.rule(o, s, method, arg)
                expect = known and ref_leq(config, ref[tgt][0], ref[src][0])
                assert r.granted == expect and r.state is s


@settings(max_examples=300, deadline=None)
@given(mic_configs(), st.data())
def test_property_create_upgrade_agree_with_reference_and_keep_state_on_denial(config, data):
    o = obj(config)
    levels = raw_levels(config)
    s = M.initial_state(o)
    ref: dict[int, object] = {}
    for sid in range(3):
        level = data.draw(st.sampled_from(levels))
        s = label(s, sid, level, o=o)
        ref[sid] = level
    sids = st.integers(0, 5)
    for _ in range(data.draw(st.integers(1, 8))):
        method = data.draw(st.sampled_from(["create", "upgrade"]))
        src, tgt, drv = data.draw(sids), data.draw(sids), data.draw(sids)
        cont = data.draw(st.one_of(st.none(), sids))
        level = data.draw(st.sampled_from(levels))
        arg = {"source": src, "target": tgt, "container": cont, "driver": drv, "level": level}
        before, before_hash = dict(s.contexts), hash(s)
        r = M.rule(o, s, method, arg)
        assert dict(s.contexts) == before and hash(s) == before_hash
        bounds = [src, drv] + ([] if cont is None else [cont])
        ok = all(b in ref for b in bounds) and all(ref_leq(config, level, ref[b]) for b in bounds)
        if method == "create":
            ok = ok and tgt not in ref
        else:
            strictly_above = tgt in ref and ref_leq(config, ref[tgt], level) and not ref_leq(config, level, ref[tgt])
            ok = ok and strictly_above and ref_leq(config, ref[tgt], ref[src])
        assert r.granted == ok, (method, arg, ref, r.reason)
        if r.granted:
            ref[tgt] = level
            s = r.state
        else:
            assert r.state is s
        for sid, lvl in ref.items():
            assert parse_config(o).parse(level_of(s, sid, o)) == parse_config(o).parse(lvl)
