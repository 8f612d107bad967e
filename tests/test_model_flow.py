"""Flow model: one test per documented rule outcome, plus properties.

Documented outcomes (KCE Flow pages): init/fini/enter/allow grant or deny; query
returns the current state or runs incorrectly.
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ksm.security_models import ModelError
from ksm.security_models.flow import FlowModel, FlowState
from policy_lang.solution import PolicyObjectDef

DOOR = {
    "states": ["locked", "unlocked", "jammed"],
    "initial": "locked",
    "transitions": {"locked": ["unlocked", "jammed"], "unlocked": ["locked", "jammed"], "jammed": ["locked"]},
}


def obj(config=None, name="door"):
    return PolicyObjectDef(name, "Flow", DOOR if config is None else config, types={}, span=None)


M = FlowModel()
O = obj()


def run(state, method, arg, model=M, o=O):
    return model.rule(o, state, method, arg)


def bound(sid=1, path=(), model=M, o=O):
    s = model.rule(o, model.initial_state(o), "init", {"sid": sid}).state
    for st_ in path:
        r = model.rule(o, s, "enter", {"sid": sid, "state": st_})
        assert r.granted
        s = r.state
    return s


def query(state, sid=1, o=O):
    return M.expression(o, state, "query", {"sid": sid})


# ------------------------------------------------------------------ config/state
def test_name_and_initial_state():
    assert FlowModel.name == "Flow"
    s = M.initial_state(O)
    assert isinstance(s, FlowState) and dict(s.fsms) == {}


@pytest.mark.parametrize("config", [
    None, {"states": [], "initial": "a", "transitions": {}},
    {"states": ["a"], "initial": "b", "transitions": {}},
    {"states": ["a"], "initial": "a"},
    {"states": ["a"], "initial": "a", "transitions": {"b": ["a"]}},
    {"states": ["a"], "initial": "a", "transitions": {"a": ["b"]}},
    {"states": ["a"], "initial": "a", "transitions": {"a": "a"}},
])
def test_bad_config_runs_incorrectly(config):
    with pytest.raises(ModelError):
        M.initial_state(PolicyObjectDef("bad", "Flow", config, types={}, span=None))


def test_state_is_immutable_and_hashable():
    s = bound()
    with pytest.raises(AttributeError):
        s.x = 1
    with pytest.raises(TypeError):
        s.fsms[1] = "jammed"
    assert s == bound() and hash(s) == hash(bound()) and s != bound(path=["jammed"])


# ------------------------------------------------------------------------- init
def test_init_granted_creates_fsm_in_initial_state():
    s0 = M.initial_state(O)
    r = run(s0, "init", {"sid": 4})
    assert r.granted and r.reason.startswith("granted:") and query(r.state, 4) == "locked"
    assert dict(s0.fsms) == {}


def test_init_denied_already_has_fsm():
    s = bound(path=["unlocked"])
    r = run(s, "init", {"sid": 1})
    assert not r.granted and r.state is s and "already has" in r.reason
    assert query(s) == "unlocked"


def test_init_denied_out_of_range():
    m = FlowModel(sid_limit=3)
    s = m.initial_state(O)
    r = m.rule(O, s, "init", {"sid": 3})
    assert not r.granted and r.state is s and "permissible range" in r.reason


def test_init_has_no_pool_limit():
    s = M.initial_state(O)
    for sid in range(50):
        s = run(s, "init", {"sid": sid}).state
    assert len(s.fsms) == 50


# ------------------------------------------------------------------------- fini
def test_fini_granted_destroys_fsm():
    s = bound(path=["jammed"])
    r = run(s, "fini", {"sid": 1})
    assert r.granted and r.state.current(1) is None and s.current(1) == "jammed"
    assert query(run(r.state, "init", {"sid": 1}).state) == "locked"  # a fresh FSM starts over


def test_fini_denied_no_fsm():
    s = bound()
    r = run(s, "fini", {"sid": 2})
    assert not r.granted and r.state is s and "no state machine" in r.reason


def test_fini_denied_out_of_range():
    m = FlowModel(sid_limit=3)
    r = m.rule(O, m.initial_state(O), "fini", {"sid": 5})
    assert not r.granted and "permissible range" in r.reason


# ------------------------------------------------------------------------ enter
def test_enter_granted_follows_transition():
    s = bound()
    r = run(s, "enter", {"sid": 1, "state": "unlocked"})
    assert r.granted and query(r.state) == "unlocked" and query(s) == "locked"


def test_enter_denied_transition_not_permitted():
    s = bound(path=["jammed"])
    r = run(s, "enter", {"sid": 1, "state": "unlocked"})
    assert not r.granted and r.state is s and "not permitted" in r.reason


def test_enter_denied_self_loop_not_listed():
    s = bound(path=["unlocked"])
    r = run(s, "enter", {"sid": 1, "state": "unlocked"})
    assert not r.granted and r.state is s


def test_enter_granted_self_loop_when_listed():
    o = obj({"states": ["a", "b"], "initial": "a", "transitions": {"a": ["a", "b"]}})
    s = bound(o=o)
    r = run(s, "enter", {"sid": 1, "state": "a"}, o=o)
    assert r.granted and r.state == s


def test_enter_denied_from_state_without_transitions():
    o = obj({"states": ["a", "end"], "initial": "a", "transitions": {"a": ["end"]}})
    s = bound(path=["end"], o=o)
    r = run(s, "enter", {"sid": 1, "state": "a"}, o=o)
    assert not r.granted and "none" in r.reason


def test_enter_denied_unknown_state():
    s = bound()
    r = run(s, "enter", {"sid": 1, "state": "open"})
    assert not r.granted and r.state is s and "not a state" in r.reason


def test_enter_denied_no_fsm():
    s = bound()
    r = run(s, "enter", {"sid": 2, "state": "unlocked"})
    assert not r.granted and r.state is s and "no state machine" in r.reason


def test_enter_denied_out_of_range():
    m = FlowModel(sid_limit=1)
    r = m.rule(O, m.initial_state(O), "enter", {"sid": 1, "state": "unlocked"})
    assert not r.granted and "permissible range" in r.reason


@pytest.mark.parametrize("arg", [{"sid": 1}, {"sid": 1, "state": 3}, {"state": "unlocked"}, {"sid": "1", "state": "x"}])
def test_enter_malformed_runs_incorrectly(arg):
    with pytest.raises(ModelError):
        run(bound(), "enter", arg)


# ------------------------------------------------------------------------ allow
def test_allow_granted_state_in_set_no_state_change():
    s = bound()
    r = run(s, "allow", {"sid": 1, "states": ["locked", "jammed"]})
    assert r.granted and r.state is s


def test_allow_denied_state_not_in_set():
    s = bound()
    r = run(s, "allow", {"sid": 1, "states": ["unlocked"]})
    assert not r.granted and r.state is s and "not in" in r.reason


def test_allow_denied_empty_set():
    s = bound()
    assert not run(s, "allow", {"sid": 1, "states": []}).granted


def test_allow_denied_no_fsm():
    s = bound()
    r = run(s, "allow", {"sid": 2, "states": ["locked"]})
    assert not r.granted and r.state is s and "no state machine" in r.reason


def test_allow_denied_out_of_range():
    m = FlowModel(sid_limit=1)
    r = m.rule(O, m.initial_state(O), "allow", {"sid": 2, "states": ["locked"]})
    assert not r.granted and "permissible range" in r.reason


@pytest.mark.parametrize("arg", [{"sid": 1}, {"sid": 1, "states": "locked"}, {"sid": 1, "states": [1]}])
def test_allow_malformed_runs_incorrectly(arg):
    with pytest.raises(ModelError):
        run(bound(), "allow", arg)


# ------------------------------------------------------------------------ query
def test_query_returns_current_state():
    assert query(bound(path=["jammed", "locked", "unlocked"])) == "unlocked"


def test_query_runs_incorrectly_no_fsm():
    with pytest.raises(ModelError, match="runs incorrectly.*no state machine"):
        query(bound(), sid=2)


def test_query_runs_incorrectly_out_of_range():
    m = FlowModel(sid_limit=1)
    with pytest.raises(ModelError, match="permissible range"):
        m.expression(O, m.initial_state(O), "query", {"sid": 1})


def test_unknown_methods_run_incorrectly():
    with pytest.raises(ModelError):
        run(bound(), "query", {"sid": 1})
    with pytest.raises(ModelError):
        M.expression(O, bound(), "enter", {"sid": 1, "state": "unlocked"})
    with pytest.raises(ModelError):
        M.expression(O, bound(), "query", {})


# ----------------------------------------------------------------------- choose
def test_choose_arm_equal_to_state():
    s = bound(path=["unlocked"])
    assert M.choose(O, s, "query", {"sid": 1}, ["locked", "unlocked", None]) == 1
    assert M.choose(O, s, "query", {"sid": 1}, ["jammed", None]) is None
    assert M.choose(O, s, "query", {"sid": 1}, []) is None


def test_choose_runs_incorrectly_no_fsm():
    with pytest.raises(ModelError):
        M.choose(O, bound(), "query", {"sid": 7}, ["locked", None])


def test_objects_are_independent():
    other = obj(name="other")
    s_door = bound(path=["jammed"])
    s_other = bound(o=other)
    assert query(s_door) == "jammed" and query(s_other, o=other) == "locked"


# ------------------------------------------------------------------- properties
@st.composite
def configs(draw):
    n = draw(st.integers(1, 5))
    states = [f"s{i}" for i in range(n)]
    trans = {}
    for s in states:
        if draw(st.booleans()):
            trans[s] = draw(st.lists(st.sampled_from(states), unique=True))
    return {"states": states, "initial": draw(st.sampled_from(states)), "transitions": trans}


@settings(max_examples=300, deadline=None)
@given(configs(), st.data())
def test_property_enter_sequences_follow_transitions(config, data):
    o = obj(config)
    states = config["states"]
    s = M.initial_state(o)
    seq = data.draw(st.lists(st.tuples(st.sampled_from(["init", "fini", "enter", "allow"]), st.integers(0, 2),
                                       st.sampled_from(states + ["bogus"]),
                                       st.lists(st.sampled_from(states), max_size=3)), max_size=40))
    for method, sid, target, subset in seq:
        arg = {"sid": sid, "state": target, "states": subset}
        before, before_hash = dict(s.fsms), hash(s)
        r = M.rule(o, s, method, arg)
        assert dict(s.fsms) == before and hash(s) == before_hash
        if not r.granted:
            assert r.state is s                                         # (a)
        elif method == "enter":
            # (b) every successful enter follows a listed transition
            assert target in config["transitions"].get(before[sid], [])
            assert r.state.current(sid) == target
        elif method == "allow":
            assert before[sid] in subset and r.state is s
        elif method == "init":
            assert sid not in before and r.state.current(sid) == config["initial"]
        if method == "enter" and sid in before:
            assert r.granted == (target in config["transitions"].get(before[sid], []))
        s = r.state
        assert all(v in states for v in s.fsms.values())                 # (b) state stays in `states`
