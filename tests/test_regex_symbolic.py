"""Regex model: the Z3 encoding of ``re.match`` checked against the concrete runtime.

Every check runs both sides: the concrete ``match`` (Python ``re`` after the
dialect's translation) and Z3 solving ``text == t`` with ``z3_match``.  Witnesses
Z3 produces are replayed through the concrete model, so a wrong encoding shows up
as a text on which the two disagree.
"""
import contextlib
import re

import pytest
import z3
from hypothesis import given, settings, strategies as st

from ksm.security_models import ModelError, regex
from ksm.security_models.regex import (text_from_z3, translate, z3_match, z3_max_char, z3_regex,
                                       z3_text_value)
from ksm.security_models.symbolic import NotEncoded

FEW = settings(max_examples=60, deadline=None)


def concrete(text: str, pattern: str) -> bool:
    return regex.match({"text": text, "pattern": pattern})


def z3_accepts(text: str, pattern: str) -> bool:
    """Z3's verdict on one concrete text: is ``s == text and match(s)`` satisfiable?"""
    s = z3.String("s")
    solver = z3.Solver()
    solver.add(s == z3_text_value(text), z3_match(s, pattern))
    verdict = solver.check()
    assert verdict != z3.unknown, (pattern, text)
    return verdict == z3.sat


def witnesses(pattern: str, accepted: bool, *extra, count: int = 1) -> list[str]:
    """Up to ``count`` texts of distinct lengths Z3 says ``pattern`` accepts (or rejects).

    ``extra`` are functions of the string variable giving more constraints.  Each new
    witness must have another length (blocking the text itself with ``s != value``
    sends Z3's sequence solver into minutes-long searches on ``.*abcdef.*``).
    """
    s = z3.String("s")
    solver = z3.Solver()
    m = z3_match(s, pattern)
    solver.add(m if accepted else z3.Not(m), *(f(s) for f in extra))
    found: list[str] = []
    while len(found) < count:
        verdict = solver.check()
        assert verdict != z3.unknown, pattern
        if verdict == z3.unsat:
            break
        value = solver.model().eval(s, model_completion=True)
        found.append(text_from_z3(value))
        solver.add(z3.Length(s) != len(found[-1]))      # another one next time
    return found


@contextlib.contextmanager
def options(**values):
    """Set module options for the body (hypothesis tests cannot use monkeypatch)."""
    saved = {k: getattr(regex, k) for k in values}
    try:
        for k, v in values.items():
            setattr(regex, k, v)
        yield
    finally:
        for k, v in saved.items():
            setattr(regex, k, v)


# ------------------------------------------------------------------- tables
# (pattern, accepted texts, rejected texts) under the default options.

FULL_TABLE = [
    ("^[0-9]*$", ["", "0", "0123456789"], ["12a", "a", " 1", "1\n", "\u0661"]),
    ("[0-9]*", ["", "42"], ["12a", "x"]),                       # KCE 1.4's whole-text reading
    ("^(LOCK|UNLOCK|STATUS)( [0-9]{1,8})?$",
     ["LOCK", "UNLOCK 1", "STATUS 12345678"],
     ["lock", "LOCK ", "LOCK 123456789", "LOCKUNLOCK", "LOCK  1", "STATUS 1a", "LOCK\n"]),
    ("[[:alpha:]]+", ["a", "abcXYZ"], ["", "abc1", "\u00e9", "a b"]),
    ("\\d{2,3}", ["12", "123"], ["1", "1234", "1a", "\u0661\u0662"]),
    ("\\.", ["."], ["a", "\\.", ""]),
    ("\\x41", ["A"], ["a", "\\x41", "x41"]),
    ("[^a-c]+", ["d", "xyz", "\n", "\\", "\u00e9\U0002ffff"], ["", "a", "xbx"]),
    ("a.b", ["axb", "a b", "a\tb", "a\u00e9b"], ["a\nb", "ab", "axxb"]),
    ("a{2}", ["aa"], ["", "a", "aaa"]),
    ("a{2,}", ["aa", "aaaaa"], ["", "a", "aab"]),
    ("a{0,3}", ["", "a", "aaa"], ["aaaa", "b"]),
    ("a+?b", ["ab", "aaab"], ["b", "aba", "a"]),
    ("", [""], ["a", "\n"]),
    ("^abc$", ["abc"], ["abc\n", "\nabc", "abcabc", "ab"]),
    ("\\w\\W\\s\\S\\D", ["a- xy", "_\t\n.."], ["a-  y", "\u00e9- xy", "a- x1"]),
    ("^a|b$", ["a", "b"], ["ab", "", "ba"]),
    ("a*^b", ["b"], ["ab", "a"]),                               # `^` after a part that matched ""
    ("(^a|b)+", ["a", "ab", "bb", "abb"], ["ba", "aa", ""]),    # an anchor inside a repetition
    ("(a$|b)*", ["", "a", "ba", "bba"], ["ab", "aa"]),
    ("\\\\u\\{41\\}", ["\\u{41}"], ["A", "u{41}"]),             # a backslash in the text
    ("[\\]a-]", ["]", "a", "-"], ["b", "\\"]),
    ("x{0}y", ["y"], ["xy", ""]),
]

SEARCH_TABLE = [
    ("abc", ["abc", "xabcx"], ["ab", "axbc", ""]),
    ("^abc$", ["abc"], ["xabc", "abc\n", "abcx"]),
    ("^abc", ["abc", "abcx"], ["xabc"]),
    ("abc$", ["abc", "xabc"], ["abcx", "abc\n"]),
    ("[0-9]*", ["", "x", "12a"], []),                           # search: every text
    ("^a|b$", ["a", "ax", "xb"], ["xa", "bx", ""]),
    ("", ["", "anything\n"], []),
    ("a.b", ["xa-bx"], ["a\nb", "ab"]),
    ("\\d{2,3}", ["x1234y", "12"], ["1a2", ""]),
    ("^(LOCK|UNLOCK)$", ["LOCK"], ["LOCKS", "xLOCK"]),
    ("a*^b", ["b", "bx"], ["ab", "xb"]),
    ("[^a-c]", ["aaxa"], ["", "abc"]),
]


def _cases(table):
    for pattern, accepted, rejected in table:
        yield from (pytest.param(pattern, t, True, id=f"{pattern!r}-{t!r}-ok") for t in accepted)
        yield from (pytest.param(pattern, t, False, id=f"{pattern!r}-{t!r}-no") for t in rejected)


@pytest.mark.parametrize("pattern, text, expected", list(_cases(FULL_TABLE)))
def test_full_match_table(pattern, text, expected):
    assert regex.FULL_MATCH is True
    assert concrete(text, pattern) is expected
    assert z3_accepts(text, pattern) is expected


@pytest.mark.parametrize("pattern, text, expected", list(_cases(SEARCH_TABLE)))
def test_search_table(monkeypatch, pattern, text, expected):
    monkeypatch.setattr(regex, "FULL_MATCH", False)
    assert concrete(text, pattern) is expected
    assert z3_accepts(text, pattern) is expected


def test_dot_matches_newline_option(monkeypatch):
    assert z3_accepts("a\nb", "a.b") is False
    monkeypatch.setattr(regex, "DOT_MATCHES_NEWLINE", True)
    assert concrete("a\nb", "a.b") is True
    assert z3_accepts("a\nb", "a.b") is True


def test_non_strict_dialect_constructs_that_stay_regular(monkeypatch):
    monkeypatch.setattr(regex, "STRICT_DIALECT", False)
    for text, pattern, expected in [("ababx", "^(?:ab)+x$", True), ("abx", "^(?:ab){2}x$", False),
                                    ("a\nb", "(?s)a.b", True), ("a\nb", "a(?s:.)b", True)]:
        assert concrete(text, pattern) is expected
        assert z3_accepts(text, pattern) is expected


# ------------------------------------------------------------------- what is refused

@pytest.mark.parametrize("pattern", ["\\bfoo", "foo\\b", "a\\Bb", "^\\b$"])
def test_word_boundaries_are_not_encoded(pattern):
    assert isinstance(concrete("foo", pattern), bool)   # the runtime takes them
    with pytest.raises(NotEncoded, match="boundar"):
        z3_regex(pattern)


def test_large_repetition_of_an_anchored_part_is_not_encoded():
    assert z3_accepts("abbb", "(^a|b){4}") is concrete("abbb", "(^a|b){4}") is True
    with pytest.raises(NotEncoded):
        z3_regex("(^a|b){5}")
    with pytest.raises(NotEncoded):                     # cached refusals are raised again
        z3_match(z3.String("s"), "(^a|b){5}")


@pytest.mark.parametrize("pattern", ["(?:a)", "(", "a{2,1}", "(a)\\1", "a*+", "[[:nope:]]", "\\Ahi"])
def test_dialect_refusals_are_model_errors(pattern):
    with pytest.raises(ModelError, match="bad regular expression"):
        z3_regex(pattern)


def test_non_text_pattern_is_a_model_error():
    with pytest.raises(ModelError):
        z3_regex(5)


@pytest.mark.parametrize("pattern, why", [("(a)\\1", "back-reference"), ("(?=a)a", "look-around"),
                                          ("(?i)abc", "flags"), ("(?m)^a", "flags"),
                                          ("(?>a)", "atomic"), ("a*+", "possessive")])
def test_non_strict_irregular_constructs_are_not_encoded(monkeypatch, pattern, why):
    monkeypatch.setattr(regex, "STRICT_DIALECT", False)
    assert regex.pattern_problem(pattern) is None        # the runtime accepts them...
    with pytest.raises(NotEncoded, match=why):           # ...the encoding says it cannot
        z3_regex(pattern)


def test_characters_beyond_z3_are_refused():
    top = z3_max_char()
    with pytest.raises(NotEncoded, match="beyond"):
        z3_regex(chr(top + 1))
    with pytest.raises(ValueError):
        z3_text_value("a" + chr(top + 1))


# ------------------------------------------------------------------- options and caching

def test_encoding_is_cached_per_pattern_and_options(monkeypatch):
    full = z3_regex("abc")
    assert z3_regex("abc") is full
    monkeypatch.setattr(regex, "FULL_MATCH", False)
    search = z3_regex("abc")
    assert search is not full
    assert z3_accepts("xabcx", "abc") is True
    monkeypatch.setattr(regex, "FULL_MATCH", True)
    assert z3_regex("abc") is full
    assert z3_accepts("xabcx", "abc") is False


def test_z3_match_takes_python_text_too():
    assert z3.is_true(z3.simplify(z3_match("LOCK 7", "^(LOCK|UNLOCK)( [0-9])?$")))
    assert z3.is_false(z3.simplify(z3_match("\\u{41}", "A")))    # not Z3's escape for "A"


def test_text_round_trip_through_z3():
    text = "\x00\\u{41}\"\n\u00e9\ud800\uffff\U0002ffff"
    s = z3.String("s")
    solver = z3.Solver()
    solver.add(s == z3_text_value(text))
    assert solver.check() == z3.sat
    assert text_from_z3(solver.model()[s]) == text


@pytest.mark.parametrize("escape", ["\\d", "\\w", "\\s"])
def test_class_escapes_are_the_runtime_ascii_sets(escape):
    """Over Z3's whole alphabet, \\d \\w \\s (and negations) hold the chars Python's re.ASCII says."""
    top = z3_max_char()
    python = re.compile(escape, re.ASCII)
    members = [c for c in range(top + 1) if python.fullmatch(chr(c))]
    assert max(members) < 128
    exact = z3.Union(*(z3.Re(z3_text_value(chr(c))) for c in members))
    s = z3.String("s")
    for pattern, inside in [(escape, True), (escape.upper(), False)]:
        solver = z3.Solver()        # a one-character text where Z3 and Python disagree
        solver.add(z3.Length(s) == 1, z3_match(s, pattern) != (z3.InRe(s, exact) == inside))
        assert solver.check() == z3.unsat, pattern


# ------------------------------------------------------------------- witnesses replayed

@pytest.mark.parametrize("full", [True, False], ids=["full", "search"])
@pytest.mark.parametrize("pattern, accepted, rejected", FULL_TABLE,
                         ids=[repr(row[0]) for row in FULL_TABLE])
def test_z3_witnesses_replay_through_the_concrete_model(monkeypatch, full, pattern, accepted, rejected):
    monkeypatch.setattr(regex, "FULL_MATCH", full)
    for want in (True, False):
        found = witnesses(pattern, want, count=3)
        known = [t for t in accepted + rejected if concrete(t, pattern) is want]
        if known:                   # a text of this kind exists, so Z3 must find one
            assert found, (pattern, want)
        for text in found:
            assert concrete(text, pattern) is want, (pattern, text)


# ------------------------------------------------------------------- properties

PATTERNS = [row[0] for row in FULL_TABLE] + [row[0] for row in SEARCH_TABLE]
SMALL_ALPHABET = "abcxyAKLOCNU019 .-_\n\t\\]{}\u00e9"


def _texts_for(pattern: str):
    """Random small-alphabet texts, plus texts Python's own re accepts (to hit both verdicts)."""
    matching = st.from_regex(re.compile(translate(pattern), re.ASCII), fullmatch=True,
                             alphabet=st.characters(max_codepoint=z3_max_char()))
    return st.one_of(st.text(alphabet=SMALL_ALPHABET, max_size=8), matching.filter(lambda t: len(t) <= 12))


@FEW
@given(st.booleans(), st.sampled_from(PATTERNS).flatmap(lambda p: st.tuples(st.just(p), _texts_for(p))))
def test_z3_agrees_with_the_concrete_match_on_random_texts(full, pattern_text):
    pattern, text = pattern_text
    with options(FULL_MATCH=full):
        assert z3_accepts(text, pattern) == concrete(text, pattern), (full, pattern, text)


@FEW
@given(st.booleans(), st.sampled_from(PATTERNS), st.booleans(), st.integers(0, 6),
       st.sampled_from(SMALL_ALPHABET))
def test_z3_witnesses_of_a_given_shape_replay(full, pattern, want, length, char):
    """Witnesses under extra constraints (a length, a character they contain) stay faithful."""
    with options(FULL_MATCH=full):
        for text in witnesses(pattern, want, lambda s: z3.Length(s) == length,
                              lambda s: z3.Contains(s, z3_text_value(char)), count=2):
            assert len(text) == length and char in text
            assert concrete(text, pattern) is want, (full, pattern, text)


# Random patterns over {a, b}: nesting anchors, groups, alternation and quantifiers in
# ways no table lists, then compared with the runtime on every text over {a, b, "\n"}
# up to length 2 and a few longer ones.
_ATOMS = st.sampled_from(["a", "b", ".", "[ab]", "[^a]", "\\s", "^", "$"])
_QUANT = st.sampled_from(["", "", "*", "+", "?", "{2}", "{0,2}", "{1,}", "*?"])


def _quantified(base):
    """``base`` with a random quantifier (none on a bare anchor: ``^*`` does not compile)."""
    return st.tuples(base, _QUANT).map(lambda bq: bq[0] if bq[0] in ("^", "$") else bq[0] + bq[1])


_PATTERN = st.recursive(
    st.lists(_quantified(_ATOMS), min_size=0, max_size=3).map("".join),
    lambda inner: st.one_of(
        st.lists(st.one_of(_quantified(inner.map(lambda p: f"({p})")), _quantified(_ATOMS)),
                 min_size=1, max_size=3).map("".join),
        st.lists(inner, min_size=2, max_size=3).map("|".join),
    ),
    max_leaves=6,
)
_ALL_SHORT_TEXTS = [""] + [a for a in "ab\n"] + [a + b for a in "ab\n" for b in "ab\n"] + \
    [a + b + c for a in "ab" for b in "ab\n" for c in "ab"] + ["abab", "a\nb\n", "bbbb"]


@pytest.mark.parametrize("full", [True, False], ids=["full", "search"])
@pytest.mark.parametrize("pattern", ["(^a|b)*", "(a|b$)+", "(^|a)*b", "(a$|^b){0,2}", "(^a|b)*(a$|b)*",
                                     "(^a|b){2,}", "($|a)*", "(^)*a", "(b|$)*\n?", "(^|$)+"])
def test_anchors_inside_repetitions_agree_on_all_short_texts(full, pattern, monkeypatch):
    monkeypatch.setattr(regex, "FULL_MATCH", full)
    r = z3_regex(pattern)
    for text in _ALL_SHORT_TEXTS:
        assert z3.is_true(z3.simplify(z3.InRe(z3_text_value(text), r))) == concrete(text, pattern), text


@FEW
@given(st.booleans(), _PATTERN)
def test_z3_agrees_with_the_concrete_match_on_generated_patterns(full, pattern):
    with options(FULL_MATCH=full):
        if regex.pattern_problem(pattern) is not None:
            return                  # e.g. `a{2}*`: the dialect refuses it (tested above)
        r = z3_regex(pattern)
        for text in _ALL_SHORT_TEXTS:
            verdict = z3.simplify(z3.InRe(z3_text_value(text), r))
            assert z3.is_true(verdict) or z3.is_false(verdict), (pattern, text)
            assert z3.is_true(verdict) == concrete(text, pattern), (full, pattern, text)
