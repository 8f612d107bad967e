"""Regex model: re.match, re.select (choice), dialect checks, options."""
import re

import pytest
from hypothesis import given, strategies as st

from policy_lang.solution import PolicyObjectDef
from ksm.security_models import ModelError
from ksm.security_models import regex
from ksm.security_models.regex import RegexModel, compile_pattern, pattern_problem, select_index, translate

OBJ = PolicyObjectDef("re", "Regex", None, {}, None, builtin=True)
M = RegexModel()


def match(text, pattern):
    return M.expression(OBJ, None, "match", {"text": text, "pattern": pattern})


def select(text, cases):
    return M.choose(OBJ, None, "select", {"text": text}, cases)


# --------------------------------------------------------------- match

def test_match_is_a_whole_text_match_by_default():
    assert regex.FULL_MATCH is True
    assert match("xabcx", "abc") is False
    assert match("abc", "abc") is True
    assert match("12a", "[0-9]*") is False     # the KCE 1.4 example's reading
    assert match("abc", "^abc$") is True       # explicit anchors stay harmless


def test_match_can_search_instead(monkeypatch):
    monkeypatch.setattr(regex, "FULL_MATCH", False)
    assert match("xabcx", "abc") is True
    assert match("xabcx", "^abc$") is False
    assert match("abc", "^abc$") is True


def test_match_doc_example():
    pattern = "^[a-z0-9.-]{1,63}$"
    assert match("host.example-1", pattern) is True
    assert match("Host", pattern) is False          # case-sensitive
    assert match("", pattern) is False
    assert match("a" * 64, pattern) is False


def test_full_match_option(monkeypatch):
    monkeypatch.setattr(regex, "FULL_MATCH", True)
    assert match("xabcx", "abc") is False
    assert match("abc", "abc") is True
    assert match("12a", "[0-9]*") is False
    assert match("123", "[0-9]*") is True


def test_dollar_does_not_match_before_a_final_newline():
    assert match("abc\n", "^abc$") is False
    assert re.search("^abc$", "abc\n")                 # unlike Python's own `$`


def test_dot_and_newline_option(monkeypatch):
    assert match("a\nb", "^a.b$") is False
    monkeypatch.setattr(regex, "DOT_MATCHES_NEWLINE", True)
    assert match("a\nb", "^a.b$") is True


def test_posix_classes_and_escapes():
    assert match("Hello world!", "Hello\\ world\\!") is True
    assert match("abcXYZ", "^[[:alpha:]]+$") is True
    assert match("abc1", "^[[:alpha:]]+$") is False
    assert match("1f", "^[[:xdigit:]]{2}$") is True
    assert match("a b", "^\\w\\s\\w$") is True
    assert match("\u0661", "\\d") is False             # ASCII classes


@pytest.mark.parametrize("pattern", ["(", "[a-", "a{2,1}", "*a", "\\", "[[:nope:]]", "\\x4"])
def test_bad_pattern_runs_incorrectly(pattern):
    assert pattern_problem(pattern) is not None
    with pytest.raises(ModelError):
        match("abc", pattern)


@pytest.mark.parametrize("pattern", ["(?i)abc", "(?:ab)+", "(?=a)a", "(?P<x>a)", "(a)\\1", "a*+", "\\Ahi", "[[=a=]]"])
def test_strict_dialect_refuses_non_portable_constructs(pattern):
    with pytest.raises(ModelError):
        match("abc", pattern)


def test_non_strict_dialect_hands_them_to_python(monkeypatch):
    monkeypatch.setattr(regex, "STRICT_DIALECT", False)
    assert match("ABC", "(?i)abc") is True
    assert match("ababx", "^(?:ab)+x$") is True
    assert match("aa", "(a)\\1") is True


def test_lazy_quantifier_is_accepted():
    assert match("aaab", "a+?b") is True


@pytest.mark.parametrize("arg", [
    {"text": 5, "pattern": "a"},
    {"text": None, "pattern": "a"},
    {"text": "a", "pattern": 5},
    {"text": "a"},
    {"pattern": "a"},
    "a",
])
def test_match_bad_argument_runs_incorrectly(arg):
    with pytest.raises(ModelError):
        M.expression(OBJ, None, "match", arg)


def test_patterns_are_compiled_once():
    assert compile_pattern("^ab+c$") is compile_pattern("^ab+c$")


def test_translate_keeps_portable_patterns():
    assert translate("^[a-z]+$") == "^[a-z]+\\Z"


# --------------------------------------------------------------- select

def test_select_picks_the_first_matching_case_in_order():
    cases = ["^hello .*", ".*world$", None]
    assert select("hello world", cases) == 0
    assert select("hello world", [".*world$", "^hello .*", None]) == 0
    assert select("big world", cases) == 1


def test_select_with_no_match_returns_none():
    assert select("bye", ["^hello", "world$", None]) is None
    assert select("bye", []) is None


def test_select_skips_the_default_case():
    assert select("x", [None, "x"]) == 1


def test_select_expression_returns_the_text():
    assert M.expression(OBJ, None, "select", {"text": "abc"}) == "abc"


def test_select_bad_pattern_runs_incorrectly_even_after_a_match():
    with pytest.raises(ModelError):
        select("abc", ["abc", "("])


@pytest.mark.parametrize("cases", [[1, None], [True], [["a"]]])
def test_select_non_text_case_runs_incorrectly(cases):
    with pytest.raises(ModelError):
        select("abc", cases)


@pytest.mark.parametrize("arg", [{"text": 1}, {}, None, "abc"])
def test_select_bad_argument_runs_incorrectly(arg):
    with pytest.raises(ModelError):
        M.choose(OBJ, None, "select", arg, ["a"])
    with pytest.raises(ModelError):
        M.expression(OBJ, None, "select", arg)


def test_select_index_helper_full_match(monkeypatch):
    monkeypatch.setattr(regex, "FULL_MATCH", True)
    assert select_index("hello world", ["hello", "hello.*"]) == 1


def test_choose_on_match_compares_the_boolean():
    arg = {"text": "ro", "pattern": "^ro$"}
    assert M.choose(OBJ, None, "match", arg, [False, True]) == 1


def test_regex_has_no_rules():
    with pytest.raises(ModelError):
        M.rule(OBJ, None, "match", {"text": "a", "pattern": "a"})


# --------------------------------------------------------------- properties

PATTERNS = ["^[a-z]+$", "ab*c", "^a|b$", "[0-9]{2,3}", "(ab)+", "^$", "x?y", ".", "^\\d+$",
            "[^a-c]", "^(foo|bar)[0-9]*$", "a.{0,2}b", "\\.", "^[[:alnum:]_-]{1,8}$"]
ASCII_NO_NEWLINE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)


def _python_pattern(p):
    return p.replace("[[:alnum:]_-]", "[a-zA-Z0-9_-]")


@given(st.sampled_from(PATTERNS), ASCII_NO_NEWLINE)
def test_match_agrees_with_re_search(pattern, text):
    saved, regex.FULL_MATCH = regex.FULL_MATCH, False
    try:
        assert match(text, pattern) == bool(re.search(_python_pattern(pattern), text))
    finally:
        regex.FULL_MATCH = saved


@given(st.sampled_from(PATTERNS), ASCII_NO_NEWLINE)
def test_full_match_agrees_with_re_fullmatch(pattern, text):
    saved, regex.FULL_MATCH = regex.FULL_MATCH, True
    try:
        assert match(text, pattern) == bool(re.fullmatch(_python_pattern(pattern), text))
    finally:
        regex.FULL_MATCH = saved


@given(st.lists(st.sampled_from(PATTERNS), max_size=5), ASCII_NO_NEWLINE)
def test_select_is_the_first_matching_pattern(cases, text):
    expected = next((i for i, p in enumerate(cases) if re.fullmatch(_python_pattern(p), text)), None)
    assert select(text, cases) == expected
