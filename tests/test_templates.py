"""Build-time template expansion: @VAR@, the Jinja dialect, and the line map back."""
from __future__ import annotations

import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_lang.diagnostics import Diagnostics, Severity, code_info
from policy_lang.templates import expand_template, needs_expansion


def expand(text: str, defines: dict | None = None, **kw):
    diags = Diagnostics()
    src = expand_template(text, "security.psl.in", defines or {}, diags, **kw)
    return src, diags


def lines_with_origin(src) -> list[tuple[int, str]]:
    lines = src.text.split("\n")
    origin = src.line_origin or tuple(range(1, len(lines) + 1))
    assert len(origin) == len(lines)
    return list(zip(origin, lines))


def t(s: str) -> str:
    return textwrap.dedent(s).lstrip("\n")


# ----------------------------------------------------------------------------- basics

@pytest.mark.parametrize(
    "text, expected",
    [
        ("use EDL kl.core.Core\n", False),
        ("contact: admin@example.com and bob@example.org\n", False),
        ("a @ b @ c", False),
        ("@INIT_EXTERNAL_ENTITIES@\n", True),
        ("@INIT_Client_ENTITY_CONNECTIONS+@", True),
        ("{% if X %}a{% endif %}", True),
        ("x = {{ y }}", True),
        ("{# note #}", True),
        ("request { grant () }", False),
    ],
)
def test_needs_expansion(text, expected):
    assert needs_expansion(text) is expected


def test_identity_fast_path_keeps_text_and_identity_map():
    text = "execute: kl.core.Execute\nuse nk.base._\n// mail: me@example.com\n"
    src, diags = expand(text)
    assert src.text is text
    assert src.line_origin == ()
    assert src.path == "security.psl.in"
    assert len(diags) == 0


def test_codes_are_defined_with_hints():
    for code, sev in [("TPL001", Severity.WARNING), ("TPL002", Severity.WARNING), ("TPL003", Severity.ERROR),
                      ("TPL004", Severity.ERROR), ("TPL005", Severity.ERROR)]:
        info = code_info(code)
        assert info.severity is sev and info.hint and info.title


# ----------------------------------------------------------------------------- @VAR@

def test_placeholder_with_value():
    src, diags = expand("use EDL @APP@\nuse EDL Einit\n", {"APP": "acme.Hub"})
    assert src.text == "use EDL acme.Hub\nuse EDL Einit\n"
    assert src.line_origin == (1, 2, 3)
    assert len(diags) == 0


def test_placeholder_name_with_plus():
    text = "  connections:\n@INIT_Client_ENTITY_CONNECTIONS+@\nend"
    src, diags = expand(text, {"INIT_Client_ENTITY_CONNECTIONS+": "  - target: kl.VfsRamFs"})
    assert src.text == "  connections:\n  - target: kl.VfsRamFs\nend"
    assert len(diags) == 0


def test_missing_placeholder_inside_a_line_warns_at_its_column_and_stands_as_its_name():
    # Expanding to nothing would leave `use EDL  //`: a syntax error the user never wrote.
    text = "use EDL Einit\nuse EDL @APP@ // for @WHO@\n"
    src, diags = expand(text, {"WHO": "me"})
    assert src.text == "use EDL Einit\nuse EDL APP // for me\n"
    assert src.stand_ins == {"APP"}
    assert diags.codes() == ["TPL001"]
    d = diags.items[0]
    assert d.severity is Severity.WARNING
    assert (d.span.file, d.span.line, d.span.column) == ("security.psl.in", 2, 9)
    assert (d.span.end_line, d.span.end_column) == (2, 14)
    assert "@APP@" in d.message


def test_defined_but_empty_placeholder_is_silent():
    src, diags = expand("a\n@INIT_EXTERNAL_ENTITIES@\nb", {"INIT_EXTERNAL_ENTITIES": ""})
    assert src.text == "a\n\nb"
    assert src.line_origin == (1, 2, 3)
    assert len(diags) == 0


def test_at_signs_that_are_not_placeholders_are_text():
    text = "// mail admin@example.com @ noon\n@X@\n"
    src, diags = expand(text, {"X": "x"})
    assert src.text == "// mail admin@example.com @ noon\nx\n"
    assert len(diags) == 0


def test_multiline_value_maps_every_line_to_the_placeholder():
    text = t("""
        execute: kl.core.Execute
        @INIT_EXTERNAL_ENTITIES@
        use EDL acme.Hub
        policy object x : Base {}
    """)
    value = "use EDL kl.VfsRamFs\nuse EDL kl.drivers.BSP\nuse EDL kl.Ntpd"
    src, diags = expand(text, {"INIT_EXTERNAL_ENTITIES": value})
    assert lines_with_origin(src) == [
        (1, "execute: kl.core.Execute"),
        (2, "use EDL kl.VfsRamFs"),
        (2, "use EDL kl.drivers.BSP"),
        (2, "use EDL kl.Ntpd"),
        (3, "use EDL acme.Hub"),
        (4, "policy object x : Base {}"),
        (5, ""),
    ]
    # a span computed on the expanded text points back at the user's file
    off = src.text.index("use EDL acme.Hub")
    assert src.span(off).line == 3
    assert src.span(src.text.index("kl.Ntpd")).line == 2
    assert len(diags) == 0


def test_crlf_in_values_is_normalised():
    src, _ = expand("@V@\nz", {"V": "a\r\nb"})
    assert src.text == "a\nb\nz"
    assert src.line_origin == (1, 1, 2)


# ----------------------------------------------------------------------------- Jinja

IF_TEMPLATE = t("""
    use EDL acme.Hub
    {% if TARGET == "qemu" %}
    use EDL kl.drivers.Virtio
    {% elif TARGET == "rpi4" %}
    use EDL kl.drivers.Bcm2711
    use EDL kl.drivers.Gpio
    {% else %}
    use EDL kl.drivers.Generic
    {% endif %}
    execute: kl.core.Execute
""")


@pytest.mark.parametrize(
    "target, expected",
    [
        ("qemu", [(1, "use EDL acme.Hub"), (3, "use EDL kl.drivers.Virtio"), (10, "execute: kl.core.Execute"),
                  (10, "")]),
        ("rpi4", [(1, "use EDL acme.Hub"), (5, "use EDL kl.drivers.Bcm2711"), (6, "use EDL kl.drivers.Gpio"),
                  (10, "execute: kl.core.Execute"), (10, "")]),
        ("other", [(1, "use EDL acme.Hub"), (8, "use EDL kl.drivers.Generic"), (10, "execute: kl.core.Execute"),
                   (10, "")]),
    ],
)
def test_if_elif_else_line_origin(target, expected):
    src, diags = expand(IF_TEMPLATE, {"TARGET": target})
    assert lines_with_origin(src) == expected
    assert len(diags) == 0


def test_undefined_flag_in_if_is_false_without_warning():
    src, diags = expand(IF_TEMPLATE)
    assert "kl.drivers.Generic" in src.text
    assert len(diags) == 0


@pytest.mark.parametrize("value, on", [("ON", True), ("1", True), ("yes", True), ("qemu", True), ("OFF", False),
                                       ("0", False), ("", False), ("false", False), ("No", False),
                                       ("LIB-NOTFOUND", False)])
def test_flag_truth_follows_cmake(value, on):
    src, diags = expand("{% if USE_NET %}net{% else %}nonet{% endif %}\n", {"USE_NET": value})
    assert src.text == ("net\n" if on else "nonet\n")
    assert len(diags) == 0


def test_text_line_ending_in_a_tag_is_not_joined_to_the_next():
    text = "use EDL a.B {% if X %}// x{% endif %}\nuse EDL c.D\n  {% if X %}  \nuse EDL e.F\n{% endif %}\n"
    src, _ = expand(text, {"X": "1"})
    assert lines_with_origin(src) == [(1, "use EDL a.B // x"), (2, "use EDL c.D"), (4, "use EDL e.F"), (4, "")]
    src, _ = expand(text, {"X": "0"})
    assert lines_with_origin(src) == [(1, "use EDL a.B "), (2, "use EDL c.D"), (2, "")]


def test_values_stay_strings_in_comparisons_and_output():
    src, _ = expand('{% if N == "3" %}{{ N }}{{ N ~ "x" }}{% endif %}', {"N": "3"})
    assert src.text == "33x"


def test_for_loop_lines_map_to_the_body():
    text = t("""
        entities:
        {% for prog in ["Client", "Server"] %}
          - name: echo.{{ prog }}
            path: {{ prog }}
        {% endfor %}
        # end
    """)
    src, diags = expand(text)
    assert lines_with_origin(src) == [
        (1, "entities:"),
        (3, "  - name: echo.Client"),
        (4, "    path: Client"),
        (3, "  - name: echo.Server"),
        (4, "    path: Server"),
        (6, "# end"),
        (6, ""),
    ]
    assert len(diags) == 0


def test_macro_output_maps_to_the_macro_body():
    text = t("""
        {% macro allow(cls) %}
        request dst={{ cls }} { grant () }
        {% endmacro %}
        {{ allow("acme.Hub") }}
        {{ allow("acme.Log") }}
    """)
    src, _ = expand(text)
    pairs = [p for p in lines_with_origin(src) if p[1]]
    assert pairs == [(2, "request dst=acme.Hub { grant () }"), (2, "request dst=acme.Log { grant () }")]


def test_comment_and_whitespace_control():
    # the comment-only line and the tag-only line vanish; '{%-' joins line 3 to line 2
    text = "a {# note\nspanning #}b\n{# alone #}\n{%- if True %}\nc\n  {% endif %}  \nd"
    src, diags = expand(text)
    assert lines_with_origin(src) == [(1, "a b"), (5, "c"), (7, "d")]
    assert len(diags) == 0


def test_multiline_printed_value_maps_to_the_opening_line():
    text = "x\n{{ BLOCK }}\ny {{ BLOCK }} z\n"
    src, _ = expand(text, {"BLOCK": "p\nq"})
    assert lines_with_origin(src) == [(1, "x"), (2, "p"), (2, "q"), (3, "y p"), (3, "q z"), (3, "")]


def test_placeholders_and_jinja_compose_their_maps():
    text = "@HEAD@\n{% if A %}\n@BODY@\n{% endif %}\nlast"
    src, diags = expand(text, {"HEAD": "h1\nh2\nh3", "BODY": "b1\nb2", "A": "ON"})
    assert lines_with_origin(src) == [(1, "h1"), (1, "h2"), (1, "h3"), (3, "b1"), (3, "b2"), (5, "last")]
    assert len(diags) == 0


def test_undefined_printed_variable_warns_once_per_line():
    text = "a\nuse EDL {{ APP }}.{{ APP }}\n{{ OTHER | default('d') }}\n"
    src, diags = expand(text)
    assert src.text == "a\nuse EDL .\nd\n"
    assert diags.codes() == ["TPL002"]
    d = diags.items[0]
    assert d.severity is Severity.WARNING
    assert (d.span.line, d.span.column) == (2, 12)
    assert "APP" in d.message


def test_undefined_warning_inside_loop_points_at_body_line():
    text = "{% for i in [1, 2] %}\nx {{ MISSING }}\n{% endfor %}\n"
    _, diags = expand(text)
    assert [(d.code, d.span.line, d.span.column) for d in diags] == [("TPL002", 2, 6)]


def test_undefined_warning_line_follows_placeholder_expansion():
    text = "@MULTI@\nvalue {{ NOPE }}\n"
    _, diags = expand(text, {"MULTI": "1\n2\n3\n4"})
    assert [(d.code, d.span.line, d.span.column) for d in diags] == [("TPL002", 2, 10)]


def test_syntax_error_position_and_fallback_text():
    text = t("""
        use EDL acme.Hub
        @EXTRA@
        {% if X %}
        use EDL a.B
        {% elsif Y %}
        use EDL a.C
        {% endif %}
    """)
    src, diags = expand(text, {"EXTRA": "e1\ne2"})
    assert diags.codes() == ["TPL003"]
    d = diags.items[0]
    assert d.severity is Severity.ERROR
    assert (d.span.line, d.span.column) == (5, 1)
    assert "elsif" in d.message
    # every tag blanked, the literal text of both branches kept, the map still exact
    assert "{%" not in src.text
    assert lines_with_origin(src) == [
        (1, "use EDL acme.Hub"), (2, "e1"), (2, "e2"), (3, ""), (4, "use EDL a.B"), (5, ""),
        (6, "use EDL a.C"), (7, ""), (8, ""),
    ]


def test_unterminated_tag_is_a_syntax_error_with_tag_removed():
    src, diags = expand("a\nb {{ x\nc")
    assert diags.codes() == ["TPL003"]
    assert (diags.items[0].span.line, diags.items[0].span.column) == (2, 3)
    assert "{{" not in src.text
    assert src.text.split("\n")[0] == "a"


def test_block_left_open_is_reported_at_its_opening_tag():
    src, diags = expand("a\n{% for x in [1] %}\n  {% if x %}\nb\n{% endif %}\nc\nd\n")
    assert diags.codes() == ["TPL003"]
    assert (diags.items[0].span.line, diags.items[0].span.column) == (2, 1)
    assert "endfor" in diags.items[0].message


def test_nesting_mistake_is_reported_at_the_stray_end_tag():
    src, diags = expand("a\n{% for x in [1] %}\n  {% if x %}\nb\n{% endfor %}\nc\n")
    assert diags.codes() == ["TPL003"]
    assert (diags.items[0].span.line, diags.items[0].span.column) == (5, 1)
    assert "'if'" in diags.items[0].message


def test_multiline_tag_syntax_error_keeps_line_count():
    src, diags = expand("a\n{% if\n  %}\nb\n{% endif %}")
    assert diags.codes() == ["TPL003"]
    assert src.text.count("\n") + 1 == len(src.line_origin) == 5


def test_evaluation_error():
    src, diags = expand("a\nb\n{{ 1 + MISSING }}\n")
    assert diags.codes() == ["TPL004"]
    assert diags.items[0].span.line == 3
    assert "{{" not in src.text


def test_sandbox_refuses_unsafe_attribute_access():
    _, diags = expand("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    assert diags.codes() == ["TPL004"]


@pytest.mark.parametrize("text", ["{{ 'x' * 100000000 }}", "{{ 'ab' * (10 ** 9) }}"])
def test_huge_values_are_refused(text):
    _, diags = expand(text)
    assert diags.codes() == ["TPL005"]


def test_huge_loops_are_refused():
    _, diags = expand("{% for i in range(100000) %}{% for j in range(100) %}{% endfor %}{% endfor %}")
    assert diags.codes() == ["TPL004"]


def test_output_limit(monkeypatch):
    import policy_lang.templates as tp

    monkeypatch.setattr(tp, "MAX_OUTPUT_CHARS", 1000)
    _, diags = expand("{% for i in range(500) %}line {{ i }}\n{% endfor %}")
    assert diags.codes() == ["TPL005"]


def test_jinja_disabled_applies_only_placeholders():
    src, diags = expand("@A@ {{ b }}\n", {"A": "a"}, jinja=False)
    assert src.text == "a {{ b }}\n"
    assert len(diags) == 0


def test_marker_characters_in_input_cannot_forge_origins():
    src, _ = expand("a\x00999\x01b\n{{ 'c' }}\n")
    assert all(1 <= o <= 3 for o in src.line_origin)
    assert "\x00" not in src.text


# ----------------------------------------------------------------------------- properties

_PIECES = st.sampled_from([
    "{%", "%}", "{{", "}}", "{#", "#}", "{%-", "-%}", " if ", " elif ", " else ", " endif ", " for x in ",
    " endfor ", " macro m() ", " endmacro ", " raw ", " endraw ", " set y = ", "X", "Y", "x", "m()", '"a"',
    " == ", "[1, 2]", "@", "@X@", "@Y+@", "@NOPE@", "\n", "\n", "\n", " ", "  - name: a.B", "use EDL a.B",
    "}", "{", "(", ")", "|", "~", "*", "range(3)",
])
_TEXT = st.one_of(
    st.lists(_PIECES, max_size=40).map("".join),
    st.text(max_size=80),
    st.lists(st.one_of(_PIECES, st.text(max_size=5)), max_size=30).map("".join),
)
_DEFINES = st.dictionaries(
    st.sampled_from(["X", "Y", "Y+", "A"]),
    st.one_of(st.sampled_from(["", "ON", "OFF", "a", "1\n2", "{{ X }}", "@X@", "\n"]), st.text(max_size=6)),
    max_size=4,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT, defines=_DEFINES)
def test_expansion_never_raises_and_maps_every_line(text, defines):
    diags = Diagnostics()
    src = expand_template(text, "f.in", defines, diags)
    n_orig = text.count("\n") + 1
    n_out = src.text.count("\n") + 1
    if src.line_origin:
        assert len(src.line_origin) == n_out
        assert all(1 <= o <= n_orig for o in src.line_origin)
    else:
        assert src.text == text
    for d in diags:
        assert d.code.startswith("TPL")
        assert 1 <= d.span.line <= n_orig
        assert d.span.column >= 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abc @{}%#\n", max_size=12), max_size=10))
def test_line_origin_is_monotonic_without_loops(chunks):
    """Without loops or macros, expansion never moves text backwards."""
    text = "\n".join(chunks)
    src = expand_template(text, "f.in", {}, Diagnostics())
    if src.line_origin and "for" not in text and "macro" not in text:
        assert list(src.line_origin) == sorted(src.line_origin)
