"""StaticMap model: one test per documented rule outcome, plus properties.

Documented outcomes (KCE StaticMap pages): init/fini/set/commit/rollback grant or
deny; get (base copy) and get_uncommited (working copy) return a value or run
incorrectly.
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ksm.security_models import ModelError
from ksm.security_models.staticmap import StaticMapModel, StaticMapState, StaticMapTable, normalize_key
from policy_lang.solution import PolicyObjectDef


def obj(keys=None, pool_size=2, name="mmio"):
    keys = {"base": 0, "size": 16} if keys is None else keys
    return PolicyObjectDef(name, "StaticMap", {"keys": keys, "pool_size": pool_size}, types={}, span=None)


M = StaticMapModel()
O = obj()


def run(state, method, arg, model=M, o=O):
    return model.rule(o, state, method, arg)


def get(state, key, sid=1, method="get", o=O):
    return M.expression(o, state, method, {"sid": sid, "key": key})


def bound(sid=1, model=M, o=O):
    r = model.rule(o, model.initial_state(o), "init", {"sid": sid})
    assert r.granted
    return r.state


def snapshot(state):
    return {sid: (t.base, t.working) for sid, t in state.tables.items()}


# ------------------------------------------------------------------ config/state
def test_name_and_initial_state():
    assert StaticMapModel.name == "StaticMap"
    s = M.initial_state(O)
    assert isinstance(s, StaticMapState) and s.used == 0


@pytest.mark.parametrize("config", [
    None, {"keys": {}, "pool_size": 1}, {"keys": {"a": "x"}, "pool_size": 1}, {"keys": {"a": True}, "pool_size": 1},
    {"keys": {"a": 1}}, {"keys": {"a": 1}, "pool_size": 0}, {"pool_size": 1},
])
def test_bad_config_runs_incorrectly(config):
    with pytest.raises(ModelError):
        M.initial_state(PolicyObjectDef("bad", "StaticMap", config, types={}, span=None))


def test_state_is_immutable_and_hashable():
    s = bound()
    with pytest.raises(AttributeError):
        s.x = 1
    with pytest.raises(TypeError):
        s.tables[3] = None
    assert s == bound() and hash(s) == hash(bound()) and s != bound(2)


# ------------------------------------------------------------------------- init
def test_init_granted_sets_defaults_in_both_copies():
    s0 = M.initial_state(O)
    r = run(s0, "init", {"sid": 1})
    assert r.granted and r.reason.startswith("granted:")
    assert r.state.table(1) == StaticMapTable((0, 16), (0, 16))
    assert get(r.state, "base") == 0 and get(r.state, "size", method="get_uncommited") == 16
    assert s0.used == 0 and s0.table(1) is None


def test_init_denied_already_bound():
    s = bound()
    r = run(s, "init", {"sid": 1})
    assert not r.granted and r.state is s and "already bound" in r.reason


def test_init_denied_pool_exhausted():
    s = run(bound(1), "init", {"sid": 2}).state
    r = run(s, "init", {"sid": 3})
    assert not r.granted and r.state is s and "no free table" in r.reason


def test_init_denied_out_of_range():
    m = StaticMapModel(sid_limit=4)
    s = m.initial_state(O)
    r = m.rule(O, s, "init", {"sid": 4})
    assert not r.granted and r.state is s and "permissible range" in r.reason


def test_init_after_fini_resets_to_defaults():
    s = run(bound(), "set", {"sid": 1, "key": "base", "value": 7}).state
    s = run(s, "commit", {"sid": 1}).state
    s = run(s, "fini", {"sid": 1}).state
    s = run(s, "init", {"sid": 1}).state
    assert get(s, "base") == 0 and get(s, "base", method="get_uncommited") == 0


# ------------------------------------------------------------------------- fini
def test_fini_granted_frees_table():
    s = bound()
    r = run(s, "fini", {"sid": 1})
    assert r.granted and r.state.used == 0 and s.used == 1


def test_fini_denied_not_bound():
    s = bound()
    r = run(s, "fini", {"sid": 2})
    assert not r.granted and r.state is s and "not bound" in r.reason


def test_fini_denied_out_of_range():
    m = StaticMapModel(sid_limit=4)
    r = m.rule(O, m.initial_state(O), "fini", {"sid": 9})
    assert not r.granted and "permissible range" in r.reason


# -------------------------------------------------------------------------- set
def test_set_granted_writes_working_copy_only():
    s = bound()
    r = run(s, "set", {"sid": 1, "key": "base", "value": 0x1000})
    assert r.granted
    assert get(r.state, "base", method="get_uncommited") == 0x1000
    assert get(r.state, "base") == 0
    assert snapshot(s) == {1: ((0, 16), (0, 16))}


def test_set_granted_with_equal_value_overwrites():
    s = bound()
    r = run(s, "set", {"sid": 1, "key": "size", "value": 16})
    assert r.granted and r.state == s


def test_set_denied_unknown_key():
    s = bound()
    r = run(s, "set", {"sid": 1, "key": "colour", "value": 1})
    assert not r.granted and r.state is s and "not in the table" in r.reason


def test_set_denied_not_bound():
    s = bound()
    r = run(s, "set", {"sid": 2, "key": "base", "value": 1})
    assert not r.granted and r.state is s and "not bound" in r.reason


def test_set_denied_out_of_range():
    m = StaticMapModel(sid_limit=4)
    r = m.rule(O, m.initial_state(O), "set", {"sid": 4, "key": "base", "value": 1})
    assert not r.granted and "permissible range" in r.reason


def test_set_key_as_byte_list():
    s = bound()
    r = run(s, "set", {"sid": 1, "key": list(b"size"), "value": 3})
    assert r.granted and get(r.state, list(b"size"), method="get_uncommited") == 3
    r = run(s, "set", {"sid": 1, "key": [0xff, 0xfe], "value": 3})  # not UTF-8: names no key
    assert not r.granted and r.state is s


@pytest.mark.parametrize("arg", [
    {"sid": 1, "key": "base"}, {"sid": 1, "value": 1}, {"sid": 1, "key": "base", "value": "x"},
    {"sid": 1, "key": "base", "value": True}, {"sid": 1, "key": 5, "value": 1}, {"key": "base", "value": 1},
])
def test_set_malformed_runs_incorrectly(arg):
    with pytest.raises(ModelError):
        run(bound(), "set", arg)


def test_normalize_key():
    assert normalize_key("k") == "k" and normalize_key([107]) == "k" and normalize_key([0xff]) is None
    with pytest.raises(ModelError):
        normalize_key([300])


# ----------------------------------------------------------------------- commit
def test_commit_granted_copies_working_to_base():
    s = run(bound(), "set", {"sid": 1, "key": "base", "value": 5}).state
    r = run(s, "commit", {"sid": 1})
    assert r.granted and get(r.state, "base") == 5 and get(r.state, "base", method="get_uncommited") == 5
    assert get(s, "base") == 0


def test_commit_denied_not_bound():
    s = bound()
    r = run(s, "commit", {"sid": 2})
    assert not r.granted and r.state is s and "not bound" in r.reason


def test_commit_denied_out_of_range():
    m = StaticMapModel(sid_limit=1)
    r = m.rule(O, m.initial_state(O), "commit", {"sid": 1})
    assert not r.granted and "permissible range" in r.reason


# --------------------------------------------------------------------- rollback
def test_rollback_granted_copies_base_to_working():
    s = run(bound(), "set", {"sid": 1, "key": "base", "value": 5}).state
    r = run(s, "rollback", {"sid": 1})
    assert r.granted and get(r.state, "base", method="get_uncommited") == 0 and r.state == bound()
    assert get(s, "base", method="get_uncommited") == 5


def test_rollback_denied_not_bound():
    s = bound()
    r = run(s, "rollback", {"sid": 2})
    assert not r.granted and r.state is s and "not bound" in r.reason


def test_rollback_denied_out_of_range():
    m = StaticMapModel(sid_limit=1)
    r = m.rule(O, m.initial_state(O), "rollback", {"sid": 3})
    assert not r.granted and "permissible range" in r.reason


# -------------------------------------------------------------- get / uncommited
@pytest.mark.parametrize("method", ["get", "get_uncommited"])
def test_get_runs_incorrectly_unknown_key(method):
    with pytest.raises(ModelError, match="runs incorrectly.*not in the table"):
        get(bound(), "colour", method=method)


@pytest.mark.parametrize("method", ["get", "get_uncommited"])
def test_get_runs_incorrectly_not_bound(method):
    with pytest.raises(ModelError, match="not bound"):
        get(bound(), "base", sid=2, method=method)


@pytest.mark.parametrize("method", ["get", "get_uncommited"])
def test_get_runs_incorrectly_out_of_range(method):
    m = StaticMapModel(sid_limit=1)
    with pytest.raises(ModelError, match="permissible range"):
        m.expression(O, m.initial_state(O), method, {"sid": 1, "key": "base"})


@pytest.mark.parametrize("arg", [{"sid": 1}, {"key": "base"}, {"sid": 1, "key": 3}])
def test_get_malformed_runs_incorrectly(arg):
    with pytest.raises(ModelError):
        M.expression(O, bound(), "get", arg)


def test_unknown_methods_run_incorrectly():
    with pytest.raises(ModelError):
        run(bound(), "get", {"sid": 1, "key": "base"})
    with pytest.raises(ModelError):
        M.expression(O, bound(), "set", {"sid": 1, "key": "base"})


def test_choose_by_equality_on_get():
    s = bound()
    assert M.choose(O, s, "get", {"sid": 1, "key": "size"}, [0, 16, None]) == 1
    assert M.choose(O, s, "get", {"sid": 1, "key": "size"}, [0, None]) is None


def test_tables_of_different_sids_are_independent():
    s = run(bound(1), "init", {"sid": 2}).state
    s = run(s, "set", {"sid": 2, "key": "base", "value": 9}).state
    s = run(s, "commit", {"sid": 2}).state
    assert get(s, "base", sid=1) == 0 and get(s, "base", sid=2) == 9


# ------------------------------------------------------------------- properties
KEYS = {"a": 1, "b": 2, "c": 3}
op = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 2), st.sampled_from(["a", "b", "c", "zz"]), st.integers(0, 9)),
    st.tuples(st.sampled_from(["init", "fini", "commit", "rollback"]), st.integers(0, 2), st.just(None), st.just(None)),
)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 3), st.lists(op, max_size=40))
def test_property_get_changes_only_on_commit_and_rollback_restores(pool_size, seq):
    o = obj(KEYS, pool_size)
    s = M.initial_state(o)
    ref: dict[int, tuple[dict, dict]] = {}   # sid -> (base, working)
    for method, sid, key, value in seq:
        arg = {"sid": sid}
        if method == "set":
            arg.update(key=key, value=value)
        before, before_hash = snapshot(s), hash(s)
        r = M.rule(o, s, method, arg)
        if method == "init":
            ok = sid not in ref and len(ref) < pool_size
            if ok:
                ref[sid] = (dict(KEYS), dict(KEYS))
        elif sid not in ref:
            ok = False
        elif method == "fini":
            ok = True
            del ref[sid]
        elif method == "set":
            ok = key in KEYS
            if ok:
                ref[sid][1][key] = value
        elif method == "commit":
            ok = True
            ref[sid] = (dict(ref[sid][1]), dict(ref[sid][1]))
        else:
            ok = True
            ref[sid] = (dict(ref[sid][0]), dict(ref[sid][0]))
        assert r.granted == ok
        assert snapshot(s) == before and hash(s) == before_hash   # old state untouched
        if not r.granted:
            assert r.state is s                                     # (a)
        if r.granted and method == "set":
            # (d) get() reads the base copy: a set never changes it
            for k in KEYS:
                assert get(r.state, k, sid=sid, o=o) == get(s, k, sid=sid, o=o)
        if r.granted and method == "rollback":
            for k in KEYS:  # (d) working copy is the committed one again
                assert get(r.state, k, sid=sid, method="get_uncommited", o=o) == get(s, k, sid=sid, o=o)
        s = r.state
        for k2, (base, work) in ref.items():
            for k in KEYS:
                assert get(s, k, sid=k2, o=o) == base[k]
                assert get(s, k, sid=k2, method="get_uncommited", o=o) == work[k]
        assert set(s.tables) == set(ref)
