"""Base model: grant / deny / assert / set_level, the audit-level state, and the shared plumbing."""
from types import SimpleNamespace

import pytest
from hypothesis import given, strategies as st

from policy_lang import model_library as ml
from policy_lang.solution import PolicyObjectDef
from ksm.security_models import ModelError, RuleResult
from ksm.security_models import base
from ksm.security_models.arith import MathModel
from ksm.security_models.base import BaseModel, choose_by_value, initial_level, same_value
from ksm.security_models.boolean import BoolModel
from ksm.security_models.pred import PredModel
from ksm.security_models.regex import RegexModel
from ksm.security_models.struct import StructModel

OBJ = PolicyObjectDef("base", "Base", None, {}, None, builtin=True)
M = BaseModel()


def rule(method, arg, state=0, model=M):
    return model.rule(OBJ, state, method, arg)


# --------------------------------------------------------------- grant

def test_grant_unit_is_granted():
    res = rule("grant", None)
    assert isinstance(res, RuleResult) and res.granted and res.state == 0


def test_grant_with_an_argument_runs_incorrectly():
    with pytest.raises(ModelError):
        rule("grant", True)


# --------------------------------------------------------------- deny

def test_deny_unit_is_denied():
    res = rule("deny", None)
    assert not res.granted and res.state == 0


def test_deny_true_is_denied():
    assert not rule("deny", True).granted


def test_deny_false_is_granted():
    assert rule("deny", False).granted


@pytest.mark.parametrize("arg", [0, 1, "true", [], {"b": True}])
def test_deny_non_boolean_runs_incorrectly(arg):
    with pytest.raises(ModelError):
        rule("deny", arg)


# --------------------------------------------------------------- assert

def test_assert_true_is_granted():
    assert rule("assert", True).granted


def test_assert_false_is_denied():
    assert not rule("assert", False).granted


@pytest.mark.parametrize("arg", [1, 0, None, "true", [True]])
def test_assert_non_boolean_runs_incorrectly(arg):
    with pytest.raises(ModelError):
        rule("assert", arg)


@given(st.booleans())
def test_deny_is_the_negation_of_assert(b):
    assert rule("deny", b).granted == (not b)
    assert rule("assert", b).granted == b


# --------------------------------------------------------------- audit level (state)

def test_initial_level_defaults_to_zero():
    assert M.initial_state(OBJ) == base.DEFAULT_AUDIT_LEVEL == 0


def test_initial_level_from_model_default():
    assert BaseModel(default_level=3).initial_state(OBJ) == 3


def test_initial_level_from_object_config():
    assert M.initial_state(PolicyObjectDef("base", "Base", 2, {}, None)) == 2
    assert M.initial_state(PolicyObjectDef("base", "Base", {"audit_level": 5}, {}, None)) == 5
    # a Boolean is not a level
    assert M.initial_state(PolicyObjectDef("base", "Base", True, {}, None)) == 0


def test_bad_default_level_is_a_programming_error():
    with pytest.raises(ValueError):
        BaseModel(default_level=-1)


def test_initial_level_of_a_solution():
    assert initial_level(SimpleNamespace(audit_default=("trace", 4))) == 4
    assert initial_level(SimpleNamespace(audit_default=None)) == 0


def test_set_level_grants_and_changes_the_state():
    res = rule("set_level", 2, state=0)
    assert res.granted and res.state == 2


def test_other_rules_keep_the_level():
    for method, arg in (("grant", None), ("deny", None), ("deny", False), ("assert", True), ("assert", False)):
        assert rule(method, arg, state=7).state == 7


@pytest.mark.parametrize("arg", [-1, base.LEVEL_MAX + 1, True, "1", None, [1]])
def test_set_level_bad_level_runs_incorrectly(arg):
    with pytest.raises(ModelError):
        rule("set_level", arg)


def test_set_level_max_is_accepted():
    assert rule("set_level", base.LEVEL_MAX).state == base.LEVEL_MAX


# --------------------------------------------------------------- no expressions

def test_base_has_no_expressions():
    with pytest.raises(ModelError):
        M.expression(OBJ, 0, "grant", None)
    with pytest.raises(ModelError):
        M.choose(OBJ, 0, "grant", None, ["x", None])


def test_unknown_rule_runs_incorrectly():
    with pytest.raises(ModelError):
        rule("allow", None)


# --------------------------------------------------------------- shared plumbing

def test_same_value_keeps_booleans_and_numbers_apart():
    assert not same_value(True, 1)
    assert not same_value(0, False)
    assert not same_value(None, 0)
    assert same_value([1, {"a": True}], (1, {"a": True}))
    assert not same_value([1, {"a": True}], [1, {"a": 1}])


def test_choose_by_value_first_equal_literal():
    assert choose_by_value(1, [True, None, 1, 1]) == 2
    assert choose_by_value("x", ["y", None]) is None


def test_stateless_models_have_no_state_and_no_rules():
    obj = PolicyObjectDef("x", "Pred", None, {}, None)
    for model in (PredModel(), BoolModel(), MathModel(), StructModel(), RegexModel()):
        assert model.initial_state(obj) is None
        assert model.rules == frozenset()
        with pytest.raises(ModelError):
            model.rule(obj, None, "grant", None)


@pytest.mark.parametrize("model", [BaseModel(), PredModel(), BoolModel(), MathModel(), StructModel(), RegexModel()],
                         ids=lambda m: m.name)
def test_method_tables_match_the_model_library(model):
    sig = ml.MODELS[model.name]
    rules = {n for n, m in sig.methods.items() if m.kind == "rule"}
    exprs = {n for n, m in sig.methods.items() if m.kind == "expression"}
    assert model.rules == rules
    assert model.expressions == exprs
