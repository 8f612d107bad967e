"""Struct model: .field, .[i], .handle, .rights and size."""
import pytest
from hypothesis import given, strategies as st

from policy_lang.solution import PolicyObjectDef
from ksm.security_models import ModelError
from ksm.security_models.struct import StructModel, field, handle, index, rights, size

OBJ = PolicyObjectDef("struct", "Struct", None, {}, None, builtin=True)
M = StructModel()
MSG = {"req": {"count": 3, "items": [10, 20, 30]}, "file": {"handle": 42, "rights": 0b101}, "name": "x"}


# --------------------------------------------------------------- .field

def test_field_access():
    assert field(MSG, "name") == "x"
    assert field(field(MSG, "req"), "count") == 3


def test_missing_field_runs_incorrectly():
    with pytest.raises(ModelError):
        field(MSG, "nope")


@pytest.mark.parametrize("value", [None, 5, "text", [1, 2], True])
def test_field_of_a_non_dictionary_runs_incorrectly(value):
    with pytest.raises(ModelError):
        field(value, "a")


# --------------------------------------------------------------- .[i]

def test_index_is_zero_based():
    items = MSG["req"]["items"]
    assert index(items, 0) == 10
    assert index(items, 2) == 30
    assert index((1, 2), 1) == 2


def test_index_out_of_range_runs_incorrectly():
    with pytest.raises(ModelError):
        index([10, 20, 30], 3)
    with pytest.raises(ModelError):
        index([], 0)


def test_negative_index_runs_incorrectly():
    with pytest.raises(ModelError):
        index([10, 20, 30], -1)


@pytest.mark.parametrize("i", [True, False, "0", None, 1.0])
def test_non_integer_index_runs_incorrectly(i):
    with pytest.raises(ModelError):
        index([10, 20, 30], i)


@pytest.mark.parametrize("value", ["abc", {"0": 1}, {1, 2}, None, 7])
def test_index_of_a_non_sequence_runs_incorrectly(value):
    with pytest.raises(ModelError):
        index(value, 0)


@given(st.lists(st.integers(), max_size=6), st.integers(min_value=-10, max_value=10))
def test_index_agrees_with_python_inside_bounds(xs, i):
    if 0 <= i < len(xs):
        assert index(xs, i) == xs[i]
    else:
        with pytest.raises(ModelError):
            index(xs, i)


# --------------------------------------------------------------- .handle / .rights

def test_handle_and_rights():
    assert handle(MSG["file"]) == 42
    assert rights(MSG["file"]) == 5


@pytest.mark.parametrize("h", [{"rights": 1}, 42, None])
def test_handle_of_a_non_descriptor_runs_incorrectly(h):
    with pytest.raises(ModelError):
        handle(h)


def test_rights_missing_runs_incorrectly():
    with pytest.raises(ModelError):
        rights({"handle": 1})


# --------------------------------------------------------------- size (unconfirmed)

@pytest.mark.parametrize("x,n", [([], 0), ([1, 2, 3], 3), ((1,), 1), ("abcd", 4), ("", 0), ({1, 2}, 2)])
def test_size(x, n):
    assert size(x) == n
    assert M.expression(OBJ, None, "size", x) == n


@pytest.mark.parametrize("x", [None, 3, True, {"a": 1}])
def test_size_of_a_non_container_runs_incorrectly(x):
    with pytest.raises(ModelError):
        size(x)


def test_unknown_expression_runs_incorrectly():
    with pytest.raises(ModelError):
        M.expression(OBJ, None, "length", [])


def test_choose_compares_the_size():
    assert M.choose(OBJ, None, "size", [1, 2], [1, 2, None]) == 1
