"""HashSet model: one test per documented rule outcome, plus properties.

Documented outcomes (KCE HashSet pages): init/fini/add/remove grant or deny,
contains returns a Boolean or runs incorrectly.  Rules deny by returning
granted=False with the unchanged state; the expression raises ModelError.
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ksm.security_models import ModelError, RuleResult
from ksm.security_models.hashset import HashSetModel, HashSetState, freeze_entry, thaw_entry
from policy_lang.solution import PolicyObjectDef


def obj(set_size=3, pool_size=2, name="ports"):
    return PolicyObjectDef(name, "HashSet", {"set_size": set_size, "pool_size": pool_size}, types={}, span=None)


M = HashSetModel()
O = obj()


def run(state, method, arg, model=M, o=O):
    return model.rule(o, state, method, arg)


def bound(sid=1, entries=(), model=M, o=O):
    s = model.initial_state(o)
    r = run(s, "init", {"sid": sid}, model, o)
    assert r.granted
    s = r.state
    for e in entries:
        r = run(s, "add", {"sid": sid, "entry": e}, model, o)
        assert r.granted
        s = r.state
    return s


def snapshot(state):
    """An independent copy of what the state holds (to prove it never changes)."""
    return {sid: sorted(map(repr, state.entries(sid))) for sid in state.tables}


# ------------------------------------------------------------------ config/state
def test_name_and_initial_state():
    assert HashSetModel.name == "HashSet"
    s = M.initial_state(O)
    assert isinstance(s, HashSetState) and s.used == 0 and dict(s.tables) == {}


@pytest.mark.parametrize("config", [
    None, [], {"set_size": 3}, {"pool_size": 3}, {"set_size": 0, "pool_size": 1},
    {"set_size": 2, "pool_size": -1}, {"set_size": True, "pool_size": 1}, {"set_size": "3", "pool_size": 1},
])
def test_bad_config_runs_incorrectly(config):
    with pytest.raises(ModelError):
        M.initial_state(PolicyObjectDef("bad", "HashSet", config, types={}, span=None))


def test_state_is_immutable_and_hashable():
    s = bound(1, [5])
    with pytest.raises(AttributeError):
        s.foo = 1
    with pytest.raises(TypeError):
        s.tables[2] = frozenset()  # read-only view
    assert hash(s) == hash(bound(1, [5])) and s == bound(1, [5])
    assert s != bound(1, [6]) and s != bound(2, [5])
    assert {s, bound(1, [5])} == {s}


# ------------------------------------------------------------------------- init
def test_init_granted_binds_empty_table_old_state_unchanged():
    s0 = M.initial_state(O)
    r = run(s0, "init", {"sid": 7})
    assert isinstance(r, RuleResult) and r.granted and r.reason.startswith("granted:")
    assert dict(r.state.tables) == {7: frozenset()} and r.state.used == 1
    assert dict(s0.tables) == {} and s0.used == 0


def test_init_denied_sid_already_bound():
    s = bound(1, [4])
    r = run(s, "init", {"sid": 1})
    assert not r.granted and r.state is s
    assert r.reason.startswith("denied:") and "already bound" in r.reason
    assert s.entries(1) == [4]


def test_init_denied_pool_exhausted():
    s = bound(1)
    s = run(s, "init", {"sid": 2}).state
    r = run(s, "init", {"sid": 3})
    assert not r.granted and r.state is s and "no free table" in r.reason


def test_init_denied_sid_out_of_range():
    m = HashSetModel(sid_limit=100)
    s = m.initial_state(O)
    r = m.rule(O, s, "init", {"sid": 100})
    assert not r.granted and r.state is s and "permissible range" in r.reason
    assert m.rule(O, s, "init", {"sid": 99}).granted


def test_init_after_fini_reuses_pool_and_clears_values():
    s = bound(1, [1, 2, 3])
    s = run(s, "init", {"sid": 2}).state
    s = run(s, "fini", {"sid": 1}).state
    r = run(s, "init", {"sid": 1})
    assert r.granted and r.state.entries(1) == []
    assert run(r.state, "init", {"sid": 3}).granted is False  # pool full again


# ------------------------------------------------------------------------- fini
def test_fini_granted_returns_table_old_state_unchanged():
    s = bound(1, [9])
    r = run(s, "fini", {"sid": 1})
    assert r.granted and r.state.table(1) is None and r.state.used == 0
    assert s.entries(1) == [9] and s.used == 1


def test_fini_denied_not_bound():
    s = bound(1)
    r = run(s, "fini", {"sid": 2})
    assert not r.granted and r.state is s and "not bound" in r.reason


def test_fini_denied_out_of_range():
    m = HashSetModel(sid_limit=10)
    s = m.rule(O, m.initial_state(O), "init", {"sid": 3}).state
    r = m.rule(O, s, "fini", {"sid": 12})
    assert not r.granted and r.state is s and "permissible range" in r.reason


# -------------------------------------------------------------------------- add
def test_add_granted_inserts_old_state_unchanged():
    s = bound(1, [1])
    r = run(s, "add", {"sid": 1, "entry": 2})
    assert r.granted and sorted(r.state.entries(1)) == [1, 2]
    assert s.entries(1) == [1]


def test_add_granted_when_already_present_state_equal():
    s = bound(1, [1])
    r = run(s, "add", {"sid": 1, "entry": 1})
    assert r.granted and r.state == s and "already" in r.reason


def test_add_denied_table_full():
    s = bound(1, [1, 2, 3])
    r = run(s, "add", {"sid": 1, "entry": 4})
    assert not r.granted and r.state is s and "full" in r.reason


def test_add_present_entry_to_full_table_granted_by_default():
    s = bound(1, [1, 2, 3])
    r = run(s, "add", {"sid": 1, "entry": 3})
    assert r.granted and r.state == s


def test_add_present_entry_to_full_table_option_denies():
    m = HashSetModel(add_present_when_full_granted=False)
    s = bound(1, [1, 2, 3], model=m)
    r = m.rule(O, s, "add", {"sid": 1, "entry": 3})
    assert not r.granted and r.state is s and "full" in r.reason
    assert m.rule(O, bound(1, [1], model=m), "add", {"sid": 1, "entry": 1}).granted


def test_add_denied_not_bound():
    s = bound(1)
    r = run(s, "add", {"sid": 2, "entry": 1})
    assert not r.granted and r.state is s and "not bound" in r.reason


def test_add_denied_out_of_range():
    m = HashSetModel(sid_limit=5)
    s = m.initial_state(O)
    r = m.rule(O, s, "add", {"sid": 5, "entry": 1})
    assert not r.granted and r.state is s and "permissible range" in r.reason


def test_add_record_and_list_entries_compare_structurally():
    o = obj(set_size=4)
    s = bound(1, [{"port": 80, "tcp": True}, [1, 2]], o=o)
    assert M.expression(o, s, "contains", {"sid": 1, "entry": {"tcp": True, "port": 80}})
    assert M.expression(o, s, "contains", {"sid": 1, "entry": (1, 2)})
    assert not M.expression(o, s, "contains", {"sid": 1, "entry": {"port": 80, "tcp": False}})
    assert not M.expression(o, s, "contains", {"sid": 1, "entry": [2, 1]})
    assert {"port": 80, "tcp": True} in s.entries(1)


def test_boolean_and_integer_entries_are_distinct():
    s = bound(1, [True])
    assert M.expression(O, s, "contains", {"sid": 1, "entry": True})
    assert not M.expression(O, s, "contains", {"sid": 1, "entry": 1})


def test_freeze_thaw_roundtrip():
    for v in [0, -3, True, "x", None, {"a": [1, {"b": False}]}, [[], {}]]:
        assert thaw_entry(freeze_entry(v)) == v
    with pytest.raises(ModelError):
        freeze_entry(1.5)


# ----------------------------------------------------------------------- remove
def test_remove_granted_deletes_old_state_unchanged():
    s = bound(1, [1, 2])
    r = run(s, "remove", {"sid": 1, "entry": 1})
    assert r.granted and r.state.entries(1) == [2]
    assert sorted(s.entries(1)) == [1, 2]


def test_remove_granted_when_absent_state_equal():
    s = bound(1, [1])
    r = run(s, "remove", {"sid": 1, "entry": 5})
    assert r.granted and r.state == s


def test_remove_denied_not_bound():
    s = bound(1)
    r = run(s, "remove", {"sid": 2, "entry": 1})
    assert not r.granted and r.state is s and "not bound" in r.reason


def test_remove_denied_out_of_range():
    m = HashSetModel(sid_limit=5)
    s = m.initial_state(O)
    r = m.rule(O, s, "remove", {"sid": 6, "entry": 1})
    assert not r.granted and r.state is s and "permissible range" in r.reason


def test_remove_frees_room_in_full_table():
    s = bound(1, [1, 2, 3])
    s = run(s, "remove", {"sid": 1, "entry": 2}).state
    assert run(s, "add", {"sid": 1, "entry": 4}).granted


# --------------------------------------------------------------------- contains
def test_contains_true_and_false():
    s = bound(1, [42])
    assert M.expression(O, s, "contains", {"sid": 1, "entry": 42}) is True
    assert M.expression(O, s, "contains", {"sid": 1, "entry": 43}) is False


def test_contains_runs_incorrectly_not_bound():
    with pytest.raises(ModelError, match="runs incorrectly.*not bound"):
        M.expression(O, bound(1), "contains", {"sid": 2, "entry": 1})


def test_contains_runs_incorrectly_out_of_range():
    m = HashSetModel(sid_limit=2)
    with pytest.raises(ModelError, match="permissible range"):
        m.expression(O, m.initial_state(O), "contains", {"sid": 2, "entry": 1})


def test_contains_does_not_change_state():
    s = bound(1, [1])
    before = snapshot(s)
    M.expression(O, s, "contains", {"sid": 1, "entry": 1})
    assert snapshot(s) == before


def test_choose_by_equality_on_contains():
    s = bound(1, [42])
    assert M.choose(O, s, "contains", {"sid": 1, "entry": 42}, [False, True]) == 1
    assert M.choose(O, s, "contains", {"sid": 1, "entry": 7}, [True, None]) is None
    with pytest.raises(ModelError):
        M.choose(O, s, "contains", {"sid": 9, "entry": 7}, [True, None])


# ------------------------------------------------------------------- malformed
@pytest.mark.parametrize("method,arg", [
    ("init", {}), ("init", {"sid": "x"}), ("init", {"sid": -1}), ("init", {"sid": True}), ("init", 5),
    ("add", {"sid": 1}), ("remove", {"sid": 1}), ("add", {"sid": 1, "entry": 1.5}),
    ("contains", {"sid": 1}), ("grant", {"sid": 1}),
])
def test_malformed_rule_call_runs_incorrectly(method, arg):
    with pytest.raises(ModelError):
        run(bound(1), method, arg)


@pytest.mark.parametrize("method,arg", [("contains", {}), ("contains", {"sid": 1}), ("add", {"sid": 1, "entry": 1})])
def test_malformed_expression_call_runs_incorrectly(method, arg):
    with pytest.raises(ModelError):
        M.expression(O, bound(1), method, arg)


def test_handle_desc_accepted_as_sid():
    s = bound(3)
    assert run(s, "add", {"sid": {"handle": 3, "rights": 1}, "entry": 1}).granted


def test_objects_and_sids_are_independent():
    a, b = obj(name="a"), obj(name="b")
    sa = bound(1, [1], o=a)
    sb = bound(1, [2], o=b)
    assert M.expression(a, sa, "contains", {"sid": 1, "entry": 1})
    assert not M.expression(b, sb, "contains", {"sid": 1, "entry": 1})
    s = run(sa, "init", {"sid": 2}, o=a).state
    s = run(s, "add", {"sid": 2, "entry": 5}, o=a).state
    assert not M.expression(a, s, "contains", {"sid": 1, "entry": 5})


# ------------------------------------------------------------------- properties
ops = st.lists(
    st.tuples(st.sampled_from(["init", "fini", "add", "remove", "contains"]),
              st.integers(0, 3), st.integers(0, 5)),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), ops)
def test_property_matches_reference_set_model(set_size, pool_size, seq):
    o = obj(set_size, pool_size)
    s = M.initial_state(o)
    ref: dict[int, set] = {}
    for method, sid, entry in seq:
        arg = {"sid": sid, "entry": entry}
        if method == "contains":
            if sid in ref:
                assert M.expression(o, s, method, arg) == (entry in ref[sid])
            else:
                with pytest.raises(ModelError):
                    M.expression(o, s, method, arg)
            continue
        before_hash, before = hash(s), snapshot(s)
        r = M.rule(o, s, method, arg)
        # reference decision
        if method == "init":
            ok = sid not in ref and len(ref) < pool_size
            if ok:
                ref[sid] = set()
        elif method == "fini":
            ok = sid in ref
            if ok:
                del ref[sid]
        elif method == "add":
            ok = sid in ref and (entry in ref[sid] or len(ref[sid]) < set_size)
            if ok:
                ref[sid].add(entry)
        else:
            ok = sid in ref
            if ok:
                ref[sid].discard(entry)
        assert r.granted == ok
        # the old state object never changes
        assert hash(s) == before_hash and snapshot(s) == before
        if not r.granted:
            assert r.state is s  # (a) a denied rule returns the state unchanged
        s = r.state
        assert {k: set(s.entries(k)) for k in s.tables} == ref
        assert all(len(t) <= set_size for t in s.tables.values())  # (c)
        assert s.used <= pool_size
