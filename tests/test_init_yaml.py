"""init.yaml loader: shapes, defaults, spans, unsafe YAML, templates."""
from __future__ import annotations

import textwrap

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from policy_lang.diagnostics import Diagnostics, Severity, code_info
from policy_lang.source import SourceText
from policy_lang.syntax.ast import InitFile
from policy_lang.syntax.init_yaml import MAX_NODES, parse_init
from policy_lang.templates import expand_template


def t(s: str) -> str:
    return textwrap.dedent(s).lstrip("\n")


def parse(text: str, path: str = "init.yaml"):
    diags = Diagnostics()
    return parse_init(SourceText(path, text), diags), diags


def where(diags) -> list[tuple[str, int, int]]:
    return [(d.code, d.span.line, d.span.column) for d in diags]


REALISTIC = t("""
    # Einit description of the acme solution
    entities:

      - name: acme.Hub
        env:
          VFS_FILESYSTEM_BACKEND: client:kl.VfsRamFs
          LOG_LEVEL: 2
        connections:
          - target: kl.VfsRamFs
            id: {var: _VFS_CONNECTION_ID, include: vfs/defs.h}

      - name: acme.Sensor
        task: frontSensor
        path: SensorBin
        args: ["--rate", 10, -v]
        connections:
          - target: acme.Hub
            id: hub_link
          - target: kl.VfsRamFs
            id:
              var: _VFS_CONNECTION_ID
              include: vfs/defs.h

      - name: acme.Sensor
        task: backSensor
        args:
          - --rate
          - "5"
        connections:
          - {target: acme.Hub, id: hub_link}

      - name: kl.VfsRamFs
""")


def test_realistic_file():
    init, diags = parse(REALISTIC)
    assert len(diags) == 0, diags.render()
    assert isinstance(init, InitFile)
    hub, front, back, vfs = init.entities

    assert (hub.name, hub.task, hub.path, hub.task_given) == ("acme.Hub", "acme.Hub", "Hub", False)
    assert hub.env == (("VFS_FILESYSTEM_BACKEND", "client:kl.VfsRamFs"), ("LOG_LEVEL", "2"))
    assert hub.args == ()
    (c,) = hub.connections
    assert (c.target, c.id, c.id_var, c.id_include) == ("kl.VfsRamFs", "_VFS_CONNECTION_ID", "_VFS_CONNECTION_ID",
                                                       "vfs/defs.h")
    assert (c.span.line, c.span.column) == (9, 9)
    assert (hub.span.line, hub.span.column) == (4, 5)

    assert (front.name, front.task, front.path, front.task_given) == ("acme.Sensor", "frontSensor", "SensorBin", True)
    assert front.args == ("--rate", "10", "-v")
    assert [(x.target, x.id, x.id_var) for x in front.connections] == [
        ("acme.Hub", "hub_link", None),
        ("kl.VfsRamFs", "_VFS_CONNECTION_ID", "_VFS_CONNECTION_ID"),
    ]
    assert [x.span.line for x in front.connections] == [17, 19]

    assert (back.task, back.path, back.args) == ("backSensor", "Sensor", ("--rate", "5"))
    assert back.connections[0].span.line == 30
    assert (vfs.name, vfs.task, vfs.path, vfs.connections) == ("kl.VfsRamFs", "kl.VfsRamFs", "VfsRamFs", ())
    assert init.source.path == "init.yaml"


def test_scalars_are_kept_as_written():
    init, diags = parse(t("""
        entities:
          - name: a.B
            args: [0x10, yes, 1.50, "", ~, 2001-01-01, =, <<]
            env: {A: 010, B: ~, C: no}
    """))
    assert len(diags) == 0
    e = init.entities[0]
    assert e.args == ("0x10", "yes", "1.50", "", "", "2001-01-01", "=", "<<")
    assert e.env == (("A", "010"), ("B", ""), ("C", "no"))


def test_defaults_for_task_and_path():
    init, _ = parse("entities:\n  - name: Client\n  - name: net.deep.Server\n    task: srv\n")
    a, b = init.entities
    assert (a.task, a.path, a.task_given) == ("Client", "Client", False)
    assert (b.task, b.path, b.task_given) == ("srv", "Server", True)


def test_empty_collections_from_templates_are_empty():
    init, diags = parse("entities:\n  - name: a.B\n    connections:\n    args:\n    env:\n")
    assert len(diags) == 0
    e = init.entities[0]
    assert (e.connections, e.args, e.env) == ((), (), ())


def test_merge_keys_and_anchors():
    init, diags = parse(t("""
        common: &common
          path: Shared
          env: {MODE: fast}
        entities:
          - <<: *common
            name: a.One
          - <<: [*common]
            name: a.Two
            path: Own
    """))
    assert diags.codes() == ["YML009"]  # 'common' is not a documented top-level key
    one, two = init.entities
    assert (one.path, one.env) == ("Shared", (("MODE", "fast"),))
    assert (two.path, two.env) == ("Own", (("MODE", "fast"),))


def test_all_codes_have_hints():
    codes = [f"YML{n:03d}" for n in range(1, 25)]
    for code in codes:
        info = code_info(code)
        assert info.hint and info.title
    assert code_info("YML009").severity is Severity.WARNING
    assert code_info("YML001").severity is Severity.ERROR


# ----------------------------------------------------------------------------- error shapes

@pytest.mark.parametrize(
    "text, expected",
    [
        ("", [("YML004", 1, 1)]),
        ("- name: a.B\n", [("YML004", 1, 1)]),
        ("processes:\n  - name: a.B\n", [("YML009", 1, 1), ("YML004", 1, 1)]),
        ("entities: a.B\n", [("YML005", 1, 11)]),
        ("entities: {name: a.B}\n", [("YML005", 1, 11)]),
        ("entities:\n", [("YML023", 1, 1)]),
        ("entities: []\n", [("YML023", 1, 1)]),
        ("entities:\n  - a.B\n", [("YML006", 2, 5)]),
        ("entities:\n  - task: t\n", [("YML007", 2, 5)]),
        ("entities:\n  - name:\n", [("YML007", 2, 5)]),
        ("entities:\n  - name: [a]\n", [("YML012", 2, 11)]),
        ("entities:\n  - name: my-app\n", [("YML008", 2, 11)]),
        ("entities:\n  - name: 1abc\n", [("YML008", 2, 11)]),
        ("entities:\n  - name: a.B\n    taks: t\n", [("YML009", 3, 5)]),
        ("entities:\n  - name: a.B\n    name: a.C\n", [("YML010", 3, 5)]),
        ("entities:\n  - name: a.B\n    task:\n", [("YML012", 3, 10)]),
        ("entities:\n  - name: a.B\n    path: {x: 1}\n", [("YML012", 3, 11)]),
        ("entities:\n  - name: a.B\n  - name: a.B\n", [("YML011", 3, 5)]),
        ("entities:\n  - name: a.B\n    task: t\n  - name: c.D\n    task: t\n", [("YML011", 4, 5)]),
        ("entities:\n  - name: a.B\n    connections: {target: x, id: y}\n", [("YML013", 3, 18)]),
        ("entities:\n  - name: a.B\n    connections:\n      - x\n", [("YML014", 4, 9)]),
        ("entities:\n  - name: a.B\n    connections:\n      - id: c\n", [("YML015", 4, 9)]),
        ("entities:\n  - name: a.B\n    connections:\n      - target: s\n", [("YML016", 4, 9)]),
        ("entities:\n  - name: a.B\n    connections:\n      - target: s\n        id: [c]\n", [("YML012", 5, 13)]),
        ("entities:\n  - name: a.B\n    connections:\n      - target: s\n        id: {include: h.h}\n",
         [("YML017", 5, 13)]),
        ("entities:\n  - name: a.B\n    connections:\n      - target: s\n        id: {var: M}\n",
         [("YML018", 5, 13)]),
        ("entities:\n  - name: a.B\n    connections:\n      - target: s\n        id: c\n        kind: x\n",
         [("YML009", 6, 9)]),
        ("entities:\n  - name: a.B\n    connections:\n      - {target: s, id: c}\n      - {target: t, id: c}\n",
         [("YML019", 5, 9)]),
        ("entities:\n  - name: a.B\n    args: --verbose\n", [("YML020", 3, 11)]),
        ("entities:\n  - name: a.B\n    args: [[1]]\n", [("YML020", 3, 12)]),
        ("entities:\n  - name: a.B\n    env: [A=1]\n", [("YML021", 3, 10)]),
        ("entities:\n  - name: a.B\n    env: {A: [1]}\n", [("YML021", 3, 14)]),
        ("entities:\n  - name: a.B\n    <<: 5\n", [("YML024", 3, 9)]),
    ],
)
def test_error_shapes(text, expected):
    init, diags = parse(text)
    assert where(diags) == expected, diags.render()
    for d in diags:
        assert d.hint
    assert init is not None


def test_macro_id_and_literal_id_are_different_channels():
    text = "entities:\n  - name: a.B\n    connections:\n      - {target: s, id: M}\n      - {target: s, id: {var: M, include: m.h}}\n"
    init, diags = parse(text)
    assert len(diags) == 0
    assert len(init.entities[0].connections) == 2


def test_duplicate_task_keeps_first_entity():
    init, diags = parse("entities:\n  - name: a.B\n    path: one\n  - name: a.B\n    path: two\n")
    assert [e.path for e in init.entities] == ["one"]
    assert "defaults to the class name" in diags.items[0].message


def test_errors_are_collected_not_raised_and_rest_is_read():
    text = "entities:\n  - 5\n  - name: ok.One\n  - task: x\n  - name: ok.Two\n"
    init, diags = parse(text)
    assert [e.name for e in init.entities] == ["ok.One", "ok.Two"]
    assert diags.codes() == ["YML006", "YML007"]


def test_targets_are_not_resolved_here():
    init, diags = parse("entities:\n  - name: a.B\n    connections:\n      - {target: nowhere, id: c}\n")
    assert len(diags) == 0
    assert init.entities[0].connections[0].target == "nowhere"


# ----------------------------------------------------------------------------- unsafe YAML

def test_python_object_tags_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    text = (
        "entities:\n"
        f"  - name: !!python/object/apply:os.system [\"touch {marker}\"]\n"
        "  - name: a.B\n"
        "    path: !!python/name:os.system\n"
    )
    init, diags = parse(text)
    assert not marker.exists()
    assert ("YML002", 2, 11) in where(diags)
    assert ("YML002", 4, 11) in where(diags)
    assert all(d.severity is Severity.ERROR for d in diags if d.code == "YML002")
    assert init is not None


@pytest.mark.parametrize("tag", ["!custom", "!!binary", "!!set", "!<tag:example.com,2000:app/foo>"])
def test_non_standard_tags_are_refused(tag):
    _, diags = parse(f"entities:\n  - name: a.B\n    env: {tag} {{}}\n")
    assert where(diags)[0] == ("YML002", 3, 10)


def test_standard_explicit_tags_are_fine():
    init, diags = parse("entities:\n  - name: !!str a.B\n    args: !!seq [!!int 1]\n")
    assert len(diags) == 0
    assert init.entities[0].args == ("1",)


def test_alias_bomb_is_refused():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append("entities:\n  - name: a.B\n    args: *i")
    init, diags = parse("\n".join(lines) + "\n")
    assert init is None
    assert diags.codes() == ["YML003"]
    assert diags.items[0].severity is Severity.ERROR


def test_recursive_alias_is_refused():
    init, diags = parse("entities: &e\n  - name: a.B\n    args: *e\n")
    assert init is None
    assert diags.codes() == ["YML003"]


def test_too_many_written_nodes(monkeypatch):
    """A memory guard only: the limit on what is written is far above any real file."""
    import policy_lang.syntax.init_yaml as iy

    assert iy.MAX_WRITTEN_NODES == 5_000_000
    monkeypatch.setattr(iy, "MAX_WRITTEN_NODES", 500)
    text = "entities:\n  - name: a.B\n    args: [" + ",".join(["x"] * 600) + "]\n"
    init, diags = parse(text)
    assert init is None
    assert where(diags) == [("YML003", 3, 12 + 2 * 492)]  # the 501st node: 8 before the list


def test_a_large_honest_file_loads_and_aliases_may_add_only_so_much(monkeypatch):
    """30,000 channels are some 300,000 nodes as written: no bomb. Aliases are what is bounded."""
    import policy_lang.syntax.init_yaml as iy

    assert MAX_NODES == 100_000
    conns = "".join(f"      - target: b\n        id: c{i}\n" for i in range(30_000))
    init, diags = parse("entities:\n  - name: a.A\n    task: a\n    connections:\n" + conns + "  - name: a.B\n    task: b\n")
    assert init is not None and not diags.codes(), diags.codes()
    assert len(init.entities[0].connections) == 30_000
    monkeypatch.setattr(iy, "MAX_NODES", 50)
    shared = "defaults: &d [" + ",".join(["x"] * 20) + "]\n"
    ok, diags = parse(shared + "entities:\n  - name: a.A\n    args: *d\n  - name: a.B\n    args: *d\n")
    assert ok is not None and "YML003" not in diags.codes()       # 2 aliases x 21 nodes: within 50
    many = "".join(f"  - name: a.C{i}\n    args: *d\n" for i in range(4))
    bad, diags = parse(shared + "entities:\n" + many)
    assert bad is None and "YML003" in diags.codes()                # 4 x 21 nodes added: over 50


def test_deep_nesting():
    init, diags = parse("entities: " + "[" * 3000 + "]" * 3000 + "\n")
    assert init is None
    assert diags.codes() in (["YML022"], ["YML003"])


# ----------------------------------------------------------------------------- YAML syntax

@pytest.mark.parametrize(
    "text, pos",
    [
        ("entities:\n  - name: a.B\n   task: x\n", (3, 4)),
        ("entities: [a, b\nnext: 1\n", (2, 5)),
        ("entities:\n\t- name: a.B\n", (2, 1)),
        ("entities:\n  - name: \"open\n", (2, 11)),
        ("entities:\n  - {name: a\n", (2, 5)),
        ("entities:\n  - name: a\x07b\n", (2, 12)),
        ("entities: []\n---\nentities: []\n", (2, 1)),
        ("entities:\n  - name: *nothing\n", (2, 11)),
    ],
)
def test_yaml_syntax_error_position(text, pos):
    init, diags = parse(text)
    assert init is None
    assert diags.codes() == ["YML001"]
    assert (diags.items[0].span.line, diags.items[0].span.column) == pos


# ----------------------------------------------------------------------------- templates

INIT_IN = t("""
    entities:

    - name: echo.Client
      env:
        VFS_FILESYSTEM_BACKEND: client:kl.VfsRamFs
      connections:
      - target: echo.Server
        id: server_connection
    @INIT_Client_ENTITY_CONNECTIONS+@
    @INIT_Client_ENTITY_ARGS@

    - name: echo.Server
    @INIT_Server_ENTITY_CONNECTIONS@

    @INIT_EXTERNAL_ENTITIES@
""")


def load_template(text: str, defines: dict) -> tuple[InitFile | None, Diagnostics]:
    diags = Diagnostics()
    src = expand_template(text, "init.yaml.in", defines, diags)
    return parse_init(src, diags), diags


EMPTY_DEFINES = {
    "INIT_Client_ENTITY_CONNECTIONS+": "",
    "INIT_Client_ENTITY_ARGS": "",
    "INIT_Server_ENTITY_CONNECTIONS": "",
    "INIT_EXTERNAL_ENTITIES": "",
}

FULL_DEFINES = {
    "INIT_Client_ENTITY_CONNECTIONS+": "  - target: kl.VfsRamFs\n    id: {var: _VFS_CONNECTION_ID, include: vfs/defs.h}",
    "INIT_Client_ENTITY_ARGS": "  args:\n    - \"-v\"\n    - --mode=fast",
    "INIT_Server_ENTITY_CONNECTIONS": "  connections:\n  - target: kl.VfsRamFs\n    id: kl.VfsRamFs",
    "INIT_EXTERNAL_ENTITIES": "- name: kl.VfsRamFs\n  path: VfsRamFs\n  connections:\n"
                              "  - target: kl.drivers.BSP\n    id: kl.drivers.BSP\n- name: kl.drivers.BSP",
}


def test_template_with_empty_placeholders_still_loads():
    init, diags = load_template(INIT_IN, EMPTY_DEFINES)
    assert len(diags) == 0, diags.render()
    client, server = init.entities
    assert [(c.target, c.id) for c in client.connections] == [("echo.Server", "server_connection")]
    assert client.args == () and server.connections == ()
    assert (client.span.file, client.span.line, server.span.line) == ("init.yaml.in", 3, 12)


def test_template_with_undefined_placeholders_notes_and_loads():
    # The SDK build fills these: each is noted once (TPL006), never a warning per use.
    init, diags = load_template(INIT_IN, {})
    assert where(diags) == [("TPL006", 9, 1), ("TPL006", 10, 1), ("TPL006", 13, 1), ("TPL006", 15, 1)]
    assert [e.name for e in init.entities] == ["echo.Client", "echo.Server"]


def test_template_with_values_maps_spans_to_placeholder_lines():
    init, diags = load_template(INIT_IN, FULL_DEFINES)
    assert len(diags) == 0, diags.render()
    client, server, vfs, bsp = init.entities
    assert [(c.target, c.id, c.id_var, c.span.line) for c in client.connections] == [
        ("echo.Server", "server_connection", None, 7),
        ("kl.VfsRamFs", "_VFS_CONNECTION_ID", "_VFS_CONNECTION_ID", 9),
    ]
    assert client.args == ("-v", "--mode=fast")
    assert [(c.target, c.span.line) for c in server.connections] == [("kl.VfsRamFs", 13)]
    assert (vfs.name, vfs.path, vfs.span.line) == ("kl.VfsRamFs", "VfsRamFs", 15)
    assert (bsp.name, bsp.span.line) == ("kl.drivers.BSP", 15)
    assert vfs.connections[0].span.line == 15


def test_template_duplicate_channel_from_placeholder_points_at_placeholder():
    defines = dict(EMPTY_DEFINES)
    defines["INIT_Client_ENTITY_CONNECTIONS+"] = "  - target: echo.Server\n    id: server_connection"
    _, diags = load_template(INIT_IN, defines)
    assert where(diags) == [("YML019", 9, 5)]


def test_template_connections_key_twice_is_reported():
    text = INIT_IN.replace("@INIT_Client_ENTITY_CONNECTIONS+@", "@INIT_Client_ENTITY_CONNECTIONS@")
    defines = dict(EMPTY_DEFINES)
    defines["INIT_Client_ENTITY_CONNECTIONS"] = "  connections:\n  - target: kl.VfsRamFs\n    id: kl.VfsRamFs"
    init, diags = load_template(text, defines)
    assert where(diags) == [("YML010", 9, 3)]
    # the last value wins, as in PyYAML-based tools
    assert [c.target for c in init.entities[0].connections] == ["kl.VfsRamFs"]


def test_yaml_error_inside_expanded_value_points_at_placeholder():
    defines = dict(EMPTY_DEFINES)
    defines["INIT_EXTERNAL_ENTITIES"] = "- name: a.B\n  path: [oops"
    init, diags = load_template(INIT_IN, defines)
    assert init is None
    assert diags.codes() == ["YML001"]
    assert diags.items[0].span.line == 15  # where the unterminated '[' is, not the end of the file
    assert "started at line 15" in diags.items[0].message


def test_jinja_conditional_entities():
    text = t("""
        entities:
          - name: app.Main
        {% if WITH_NET %}
          - name: net.Stack
            connections:
              - {target: app.Main, id: main}
        {% endif %}
          - name: app.Log
            bogus: 1
    """)
    init, diags = load_template(text, {"WITH_NET": "ON"})
    assert [e.name for e in init.entities] == ["app.Main", "net.Stack", "app.Log"]
    assert init.entities[1].connections[0].span.line == 6
    assert where(diags) == [("YML009", 9, 5)]
    init, diags = load_template(text, {"WITH_NET": "OFF"})
    assert [e.name for e in init.entities] == ["app.Main", "app.Log"]
    assert where(diags) == [("YML009", 9, 5)]


# ----------------------------------------------------------------------------- robustness

_MUTATION = st.tuples(
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from(["insert", "delete", "replace"]),
    st.one_of(
        st.sampled_from([":", "-", " ", "\n", "  ", "[", "]", "{", "}", "&a", "*a", "!!python/object:x", "!t", "'",
                         '"', "#", "~", "<<: ", "name", "task", "id", "target", "connections:", "\t", "@X@", "{{",
                         "{% if X %}", "{% endif %}", ",", "? ", "|", ">", "%", "\x00"]),
        st.text(max_size=3),
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(_MUTATION, min_size=1, max_size=6))
@example(mutations=[(675, "delete", ":"), (1034, "insert", ".")])     # a name ending in '.' (path was empty)
def test_mutated_init_yaml_never_raises(mutations):
    text = REALISTIC + INIT_IN
    for pos, op, piece in mutations:
        pos %= len(text) + 1
        if op == "insert":
            text = text[:pos] + piece + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + len(piece) + 1:]
        else:
            text = text[:pos] + piece + text[pos + len(piece):]
    diags = Diagnostics()
    src = expand_template(text, "init.yaml.in", {"X": "  - name: a.B"}, diags)
    result = parse_init(src, diags)
    assert result is None or isinstance(result, InitFile)
    n_lines = text.count("\n") + 1
    for d in diags:
        assert d.span is not None and 1 <= d.span.line <= n_lines and d.span.column >= 1
    if result is not None:
        for e in result.entities:
            assert e.name and e.task and e.path
            assert all(isinstance(a, str) for a in e.args)
            for c in e.connections:
                assert c.target and c.id and 1 <= c.span.line <= n_lines
