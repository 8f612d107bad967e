"""Resolution stage: every INC/CMP/PSL/SOL code and SRC001-SRC004, plus the resolved model.

Each code has a *firing* test (a minimal solution with exactly that problem: the code is
reported with its severity, a hint, and a span at the offending text of the user's file)
and a *quiet* test (the corrected or neighbouring form does not report it).  The
solutions are written into ``tmp_path`` from a dict of relative path -> text, starting
from the ``models/echo`` layout (policy in ``einit/src/security.psl``, init in
``einit/src/init.yaml``, descriptions under ``resources/``).

Tests marked ``xfail(strict=True)`` describe the *correct* behaviour of a known bug;
they start passing (and so fail as XPASS) once the bug is fixed.
"""
from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import pytest

import policy_lang.loader as loader_mod
import policy_lang.resolve as resolve_mod
import policy_lang.source as source_mod
from policy_lang import LoadOptions, Solution, load
from policy_lang.solution import MatchDef, SelectorSet, Target

# --------------------------------------------------------------------------- fixtures

ECHO_HEADER = """\
use nk.base._
use nk.basic._

use EDL kl.core.Core
use EDL Einit
use EDL echo.Client
use EDL echo.Server

execute: kl.core.Execute

execute { grant () }
"""

ECHO_INIT = """\
entities:
  - name: echo.Client
    connections:
      - target: echo.Server
        id: server_connection
  - name: echo.Server
"""

PING_IDL = """\
package echo.Ping

interface {
    Ping(in UInt32 value, out UInt32 result);
}
"""

ECHO_FILES = {
    "einit/src/security.psl": ECHO_HEADER,
    "einit/src/init.yaml": ECHO_INIT,
    "resources/edl/Client.edl": "task class echo.Client\n",
    "resources/edl/Server.edl": "task class echo.Server\n\ncomponents {\n    pingComp : echo.PingComp\n}\n",
    "resources/cdl/PingComp.cdl": "component echo.PingComp\n\nendpoints {\n    pingImpl : echo.Ping\n}\n",
    "resources/idl/Ping.idl": PING_IDL,
}

POLICY = "einit/src/security.psl"
INIT = "einit/src/init.yaml"
PING_REQ = "request src=echo.Client, dst=echo.Server, endpoint=pingComp.pingImpl, method=Ping"

# A richer solution: endpoints in the EDL itself and through two levels of components,
# a security interface, a `task class` alias, structs, sequences and handles.
HUB_HEADER = """\
use nk.base._
use nk.basic._

use EDL kl.core.Core
use EDL Einit
use EDL acme.Hub
use EDL acme.Sensor
task class acme.Mirror : acme.Hub

execute: kl.core.Execute

execute { grant () }
"""

HUB_INIT = """\
entities:
  - name: acme.Hub
  - name: acme.Sensor
    task: frontSensor
    path: SensorBin
    args: ["--rate", "10"]
    env:
      LOG: "2"
    connections:
      - target: acme.Hub
        id: hub_link
"""

HUB_FILES = {
    "einit/src/security.psl": HUB_HEADER,
    "einit/src/init.yaml": HUB_INIT,
    "resources/idl/Telemetry.idl": """\
package acme.Telemetry

struct Sample { UInt16 level; string<32> tag; }
typedef sequence<Sample, 8> Batch;

interface {
    Push(in Sample sample, error SInt32 rc);
    Flush(in Batch items, out UInt32 stored, error SInt32 rc);
    Grab(in Handle h, out Handle back);
}
""",
    # Methods deliberately not in alphabetical order: MIDs follow declaration order.
    "resources/idl/Store.idl": """\
package acme.Store

interface {
    Put(in UInt32 key, out UInt32 ok);
    Get(in UInt32 key, out UInt32 value);
}
""",
    "resources/idl/HubControl.idl": "package acme.HubControl\n\ninterface {\n    Ready(in UInt32 code);\n}\n",
    "resources/cdl/IngestComp.cdl": """\
component acme.IngestComp

endpoints {
    raw : acme.Telemetry
}

components {
    archive : acme.ArchiveComp
}
""",
    "resources/cdl/ArchiveComp.cdl": "component acme.ArchiveComp\n\nendpoints {\n    store : acme.Store\n}\n",
    # `components` written before `endpoints` on purpose: the EDL's own endpoints
    # still come first in RIID order.
    "resources/edl/Hub.edl": """\
task class acme.Hub

components {
    ingest : acme.IngestComp
    backup : acme.ArchiveComp
}

endpoints {
    feed : acme.Telemetry
    ctl : acme.Store
}

security acme.HubControl
""",
    "resources/edl/Sensor.edl": "task class acme.Sensor\n",
}

FLOW_DOOR = """\
policy object door : Flow {
    type State = "locked" | "open"
    config = { states : ["locked", "open"], initial : "locked", transitions : { "locked" : ["open"], "open" : ["locked"] } }
}
"""


def write_files(root: Path, files: dict) -> None:
    for rel, content in files.items():
        if content is None:
            continue
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")


@pytest.fixture
def make(tmp_path, monkeypatch):
    """make(files, base=ECHO_FILES) -> solution folder; None in files deletes a base file."""
    monkeypatch.chdir(tmp_path)
    counter = itertools.count()

    def _make(files: dict | None = None, base: dict = ECHO_FILES, name: str | None = None) -> Path:
        root = tmp_path / (name or f"sol{next(counter)}")
        write_files(root, {**base, **(files or {})})
        return root

    return _make


def solve(root: Path, **opts) -> Solution:
    return load(root, LoadOptions(**opts))


def policy(extra: str, header: str = ECHO_HEADER) -> str:
    return header + extra


def pos_of(text: str, needle: str, nth: int = 1) -> tuple[int, int]:
    """1-based (line, column) of the nth occurrence of needle in text."""
    idx = -1
    for _ in range(nth):
        idx = text.index(needle, idx + 1)
    line = text.count("\n", 0, idx) + 1
    col = idx - (text.rfind("\n", 0, idx) + 1) + 1
    return line, col


def rel_file(span, root: Path) -> str:
    p = Path(span.file).resolve()
    try:
        return p.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(p)


def render(sol: Solution) -> str:
    return "\n".join(d.render() for d in sol.diagnostics) or "(no diagnostics)"


def codes(sol: Solution) -> set[str]:
    return {d.code for d in sol.diagnostics}


def errors(sol: Solution) -> list:
    return [d for d in sol.diagnostics if d.severity.value == "error"]


def of(sol: Solution, code: str) -> list:
    return [d for d in sol.diagnostics if d.code == code]


def expect(sol: Solution, code: str, severity: str, root: Path, rel: str, at: tuple[int, int]):
    """Assert ``code`` is reported at rel:line:column with ``severity`` and a hint."""
    hits = of(sol, code)
    assert hits, f"{code} not reported:\n{render(sol)}"
    where = [(rel_file(d.span, root), d.span.line, d.span.column) if d.span else None for d in hits]
    want = (rel, *at)
    assert want in where, f"{code} expected at {want}, reported at {where}:\n{render(sol)}"
    d = hits[where.index(want)]
    assert d.severity.value == severity, render(sol)
    assert d.hint.strip(), f"{code} has an empty hint"
    assert d.message.strip()
    return d


def expect_unlocated(sol: Solution, code: str, severity: str):
    hits = of(sol, code)
    assert hits, f"{code} not reported:\n{render(sol)}"
    d = hits[0]
    assert d.severity.value == severity
    assert d.hint.strip()
    return d


def quiet(sol: Solution, code: str, *, clean: bool = True) -> None:
    assert code not in codes(sol), render(sol)
    if clean:
        assert not errors(sol), render(sol)


# --------------------------------------------------------------------------- helpers themselves


def test_pos_of_helper():
    assert pos_of("ab\ncd ef\n", "ef") == (2, 4)
    assert pos_of("x\nx\n", "x", nth=2) == (2, 1)


def test_base_fixtures_are_clean(make):
    for base in (ECHO_FILES, HUB_FILES):
        sol = solve(make(base=base))
        assert sol.diagnostics == (), render(sol)


# --------------------------------------------------------------------------- coverage of the catalogue


def _codes_defined_in(module) -> set[str]:
    return set(re.findall(r'define_code\(\s*"([A-Z]+\d+)"', Path(module.__file__).read_text()))


def test_every_resolve_and_loader_code_has_a_firing_and_a_quiet_test():
    wanted = _codes_defined_in(resolve_mod) | _codes_defined_in(loader_mod) | {"SRC001", "SRC002", "SRC003", "SRC004"}
    names = [n for n in globals() if n.startswith("test_")]
    missing = []
    for code in sorted(wanted):
        low = code.lower()
        if not any(n.startswith(f"test_{low}_fires") for n in names):
            missing.append(f"{code}: firing")
        if not any(n.startswith(f"test_{low}_quiet") for n in names):
            missing.append(f"{code}: quiet")
    assert not missing, missing


# =========================================================================== SRC


def test_src001_fires_for_missing_target(make):
    sol = load(Path("no/such/solution"))
    d = expect_unlocated(sol, "SRC001", "error")
    assert d.span is None
    assert not sol.classes


def test_src001_fires_for_missing_explicit_init(make):
    root = make()
    missing = root / "boot" / "init.yaml"
    sol = solve(root, init=missing)
    expect(sol, "SRC001", "error", root, "boot/init.yaml", (1, 1))
    assert "INC006" not in codes(sol)


def test_src001_quiet_for_existing_target_and_init(make):
    root = make()
    sol = solve(root, init=root / INIT)
    quiet(sol, "SRC001")
    assert len(sol.instances) == 2


def _padded_ping() -> bytes:
    return ("// " + "x" * 600 + "\n" + PING_IDL).encode()


def test_src002_fires_for_file_over_the_limit(make, monkeypatch):
    data = _padded_ping()
    root = make({"resources/idl/Ping.idl": data})
    monkeypatch.setattr(source_mod, "MAX_FILE_BYTES", len(data) - 1)
    sol = solve(root)
    expect(sol, "SRC002", "error", root, "resources/idl/Ping.idl", (1, 1))
    assert [rel_file(d.span, root) for d in of(sol, "SRC002")] == ["resources/idl/Ping.idl"]


def test_src002_quiet_at_exactly_the_limit(make, monkeypatch):
    data = _padded_ping()
    root = make({"resources/idl/Ping.idl": data})
    monkeypatch.setattr(source_mod, "MAX_FILE_BYTES", len(data))
    quiet(solve(root), "SRC002")


def test_src003_fires_for_invalid_utf8(make):
    text = b"package echo.Ping\n// bad \xff byte\n" + PING_IDL.split("\n", 1)[1].encode()
    root = make({"resources/idl/Ping.idl": text})
    sol = solve(root)
    # line 2: "// bad " is 7 bytes/characters, so the bad byte is column 8
    d = expect(sol, "SRC003", "error", root, "resources/idl/Ping.idl", (2, 8))
    assert "0xff" in d.message


def test_src003_fires_in_an_included_policy_file(make):
    root = make({
        POLICY: policy("use parts.extra._\n"),
        "einit/src/parts/extra.psl": b"response { grant () }\n  \xc3(\n",
    })
    sol = solve(root)
    expect(sol, "SRC003", "error", root, "einit/src/parts/extra.psl", (2, 3))


def test_src003_fires_at_column_after_bom(make):
    # the UTF-8 BOM is not a character of line 1
    root = make({"resources/idl/Ping.idl": b"\xef\xbb\xbf// \xff\n" + PING_IDL.encode()})
    sol = solve(root)
    expect(sol, "SRC003", "error", root, "resources/idl/Ping.idl", (1, 4))


def test_src003_fires_at_character_column_after_multibyte_text(make):
    # "// café " is 8 characters (9 bytes): the bad byte is character column 9
    root = make({"resources/idl/Ping.idl": "// café ".encode() + b"\xff\n" + PING_IDL.encode()})
    sol = solve(root)
    expect(sol, "SRC003", "error", root, "resources/idl/Ping.idl", (1, 9))


def test_src003_quiet_for_utf8_with_bom_and_accents(make):
    root = make({"resources/idl/Ping.idl": b"\xef\xbb\xbf// caf\xc3\xa9\n" + PING_IDL.encode()})
    quiet(solve(root), "SRC003")


def test_src004_fires_for_init_that_is_not_a_regular_file(make):
    root = make()
    (root / "boot.yaml").mkdir()
    sol = solve(root, init=root / "boot.yaml")
    expect(sol, "SRC004", "error", root, "boot.yaml", (1, 1))


def test_src004_quiet_for_regular_init_file_and_directory_named_init_is_skipped(make):
    root = make({INIT: None})
    (root / INIT).mkdir()  # a folder called init.yaml is not picked up as the init file
    sol = solve(root)
    assert "SRC004" not in codes(sol)
    assert "INC006" in codes(sol)
    root2 = make()
    quiet(solve(root2, init=root2 / INIT), "SRC004")


def test_crlf_line_endings_keep_positions(make):
    text = policy("request src=echo.Clint { grant () }\n")
    root = make({POLICY: text.replace("\n", "\r\n").encode()})
    sol = solve(root)
    expect(sol, "PSL001", "error", root, POLICY, pos_of(text, "echo.Clint"))


# =========================================================================== INC (loader)


def test_inc001_fires_without_any_policy(make):
    root = make({POLICY: None})
    sol = solve(root)
    d = expect_unlocated(sol, "INC001", "error")
    assert d.span is None
    assert sol.bindings == ()


def test_inc001_quiet_when_policy_is_found_in_a_deeper_folder(make):
    root = make({POLICY: None, "deploy/policy/security.psl": ECHO_HEADER})
    sol = solve(root)
    assert "INC001" not in codes(sol)
    assert sol.execute_interface == "kl.core.Execute"


def test_inc002_fires_for_two_candidate_policies(make):
    root = make({POLICY: None, "a/security.psl": ECHO_HEADER, "b/security.psl": ECHO_HEADER})
    sol = solve(root)
    d = expect_unlocated(sol, "INC002", "error")
    assert "a/security.psl" in d.message and "b/security.psl" in d.message


def test_inc002_quiet_for_psl_and_psl_in_side_by_side(make):
    root = make({"einit/src/security.psl.in": policy("request src=echo.Clint { grant () }\n")})
    sol = solve(root)
    assert "INC002" not in codes(sol)
    # the template is the source: its error is reported against security.psl.in
    assert [rel_file(d.span, root) for d in of(sol, "PSL001")] == ["einit/src/security.psl.in"]


def test_inc003_fires_for_include_cycle(make):
    b = "// b\nuse parts.a._\n"
    root = make({
        POLICY: policy("use parts.a._\n"),
        "einit/src/parts/a.psl": "use parts.b._\n",
        "einit/src/parts/b.psl": b,
    })
    sol = solve(root)
    d = expect(sol, "INC003", "error", root, "einit/src/parts/b.psl", pos_of(b, "use parts.a._"))
    assert "a.psl" in d.message and "b.psl" in d.message
    assert len(of(sol, "INC003")) == 1


def test_inc003_fires_for_self_include(make):
    text = policy("use security._\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "INC003", "error", root, POLICY, pos_of(text, "use security._"))


def test_inc003_quiet_for_diamond_and_repeated_includes(make):
    root = make({
        POLICY: policy("use parts.a._\nuse parts.b._\nuse parts.a._\n"),
        "einit/src/parts/a.psl": "use parts.common._\n",
        "einit/src/parts/b.psl": "use parts.common._\n",
        "einit/src/parts/common.psl": "response { grant () }\n",
    })
    sol = solve(root)
    quiet(sol, "INC003")
    assert len([b for b in sol.bindings if b.event == "response"]) == 1  # included once


def test_inc004_fires_for_symlink_escaping_the_roots(make, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.psl").write_text("response { grant () }\n")
    text = policy("use parts.evil._\n")
    root = make({POLICY: text})
    (root / "einit/src/parts").mkdir()
    os.symlink(outside / "evil.psl", root / "einit/src/parts/evil.psl")
    sol = solve(root)
    expect(sol, "INC004", "error", root, POLICY, pos_of(text, "use parts.evil._"))
    assert not [b for b in sol.bindings if b.event == "response"]  # not loaded


def test_inc004_quiet_for_symlink_into_an_include_root(make, tmp_path):
    lib = tmp_path / "lib"
    (lib / "shared").mkdir(parents=True)
    (lib / "shared/ok.psl").write_text("response { grant () }\n")
    root = make({POLICY: policy("use parts.ok._\n")})
    (root / "einit/src/parts").mkdir()
    os.symlink(lib / "shared/ok.psl", root / "einit/src/parts/ok.psl")
    sol = solve(root, include_dirs=(lib,))
    quiet(sol, "INC004")
    assert [b.event for b in sol.bindings].count("response") == 1


def test_inc005_fires_for_missing_include(make):
    text = policy("use parts.nope._\n")
    root = make({POLICY: text, "einit/src/parts/ok.psl": "response { grant () }\n"})
    sol = solve(root)
    d = expect(sol, "INC005", "error", root, POLICY, pos_of(text, "use parts.nope._"))
    assert "parts/nope.psl" in d.message


def test_inc005_fires_for_a_typo_next_to_the_policy(make):
    text = policy("use trustd._\n")
    root = make({POLICY: text, "einit/src/trusted.psl": "response { grant () }\n"})
    expect(solve(root), "INC005", "error", root, POLICY, pos_of(text, "use trustd._"))


def test_inc010_fires_for_an_include_in_no_folder_of_the_solution(make):
    # Generated by the build (or shipped by an SDK this toolkit does not know): opaque, and
    # the classes it would declare load as opaque instead of failing as undeclared.
    text = policy("use generated.routes._\nrequest dst=gen.Router { grant () }\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "INC010", "warning", root, POLICY, pos_of(text, "use generated.routes._"))
    assert not errors(sol), render(sol)
    assert sol.classes["gen.Router"].opaque


def test_inc010_quiet_for_sdk_fragments_and_files_that_are_there(make):
    root = make({POLICY: policy("use kl.core.DCM._\nuse parts.ok._\n"), "einit/src/parts/ok.psl": "response { grant () }\n"})
    sol = solve(root)
    quiet(sol, "INC010")
    quiet(sol, "INC005")
    assert [p.name for p in sol.outside] == ["kl.core.DCM"]


def test_inc005_quiet_when_include_dir_provides_the_file(make, tmp_path):
    inc = tmp_path / "inc"
    (inc / "parts").mkdir(parents=True)
    (inc / "parts/extra.psl.in").write_text("response { grant () }\n")  # .psl.in is found too
    root = make({POLICY: policy("use parts.extra._\n")})
    sol = solve(root, include_dirs=(inc,))
    quiet(sol, "INC005")
    assert any(b.event == "response" for b in sol.bindings)


def test_inc006_fires_without_init(make):
    root = make({INIT: None})
    sol = solve(root)
    d = expect_unlocated(sol, "INC006", "warning")
    assert d.span is None
    assert sol.instances == () and sol.channels == ()


def test_inc006_quiet_with_explicit_init_elsewhere(make):
    root = make({INIT: None, "boot/my-init.yaml": ECHO_INIT})
    sol = solve(root, init=root / "boot/my-init.yaml")
    quiet(sol, "INC006")
    assert [i.task for i in sol.instances] == ["echo.Client", "echo.Server"]


def test_inc007_fires_for_unknown_nk_file(make):
    text = policy("use nk.nope._\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "INC007", "warning", root, POLICY, pos_of(text, "use nk.nope._"))


def test_inc007_quiet_when_sdk_dir_provides_the_nk_file(make, tmp_path):
    sdk = tmp_path / "sdk"
    (sdk / "nk").mkdir(parents=True)
    (sdk / "nk/extra.psl").write_text("response { grant () }\n")
    root = make({POLICY: policy("use nk.extra._\n")})
    sol = solve(root, sdk_dirs=(sdk,))
    quiet(sol, "INC007")
    assert any(b.event == "response" for b in sol.bindings)


def test_inc008_fires_for_two_edls_declaring_one_class(make):
    root = make({"resources/edl/Client2.edl": "task class echo.Client\n"})
    sol = solve(root)
    d = expect(sol, "INC008", "warning", root, POLICY, pos_of(ECHO_HEADER, "echo.Client"))
    assert "Client.edl" in d.message and "Client2.edl" in d.message


def test_inc008_fires_for_two_cdls_declaring_one_component(make):
    root = make({"resources/cdl/PingComp2.cdl": "component echo.PingComp\n\nendpoints {\n    other : echo.Ping\n}\n"})
    sol = solve(root)
    server = ECHO_FILES["resources/edl/Server.edl"]
    expect(sol, "INC008", "warning", root, "resources/edl/Server.edl", pos_of(server, "echo.PingComp"))
    # first hit wins
    assert [e.name for e in sol.classes["echo.Server"].endpoints] == ["pingComp.pingImpl"]


def test_inc008_quiet_for_distinct_names(make):
    root = make({"resources/edl/Client2.edl": "task class echo.Client2\n"})
    quiet(solve(root), "INC008")


def test_inc009_fires_for_too_many_description_files(make, monkeypatch):
    root = make()
    monkeypatch.setattr(loader_mod, "MAX_INDEXED_FILES", 3)  # echo has 4 .edl/.cdl/.idl files
    sol = solve(root)
    d = expect_unlocated(sol, "INC009", "error")
    assert d.span is None
    assert len(of(sol, "INC009")) == 1


def test_inc009_quiet_at_exactly_the_limit(make, monkeypatch):
    root = make()
    monkeypatch.setattr(loader_mod, "MAX_INDEXED_FILES", 4)
    quiet(solve(root), "INC009")


# =========================================================================== CMP


def test_cmp002_fires_for_use_edl_without_description(make):
    text = policy("use EDL echo.Missing\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "CMP002", "warning", root, POLICY, pos_of(text, "echo.Missing"))
    assert sol.classes["echo.Missing"].opaque


def test_cmp002_fires_for_task_class_alias_of_missing_edl(make):
    text = policy("task class echo.Alias : echo.Missing\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "CMP002", "warning", root, POLICY, pos_of(text, "echo.Missing"))
    assert sol.classes["echo.Alias"].opaque


def test_cmp002_fires_for_init_entity_without_description(make):
    init = ECHO_INIT + "  - name: echo.Nope\n"
    root = make({INIT: init})
    sol = solve(root)
    line, _ = pos_of(init, "name: echo.Nope")
    hits = [d for d in of(sol, "CMP002") if rel_file(d.span, root) == INIT]
    assert hits and hits[0].span.line == line and hits[0].severity.value == "warning"
    # the entity entry (the `name` key) or its value
    assert hits[0].span.column in (pos_of(init, "name: echo.Nope")[1], pos_of(init, "echo.Nope")[1])


def test_cmp002_fires_at_init_entity_name_when_task_comes_first(make):
    init = ECHO_INIT + "  - task: helper\n    name: echo.Nope\n"
    root = make({INIT: init})
    sol = solve(root)
    expect(sol, "CMP002", "warning", root, INIT, pos_of(init, "echo.Nope"))


def test_cmp002_fires_as_warning_for_a_class_generated_at_build_time(make):
    text = policy("use EDL echo.Generated\nrequest dst=echo.Generated { grant () }\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "CMP002", "warning", root, POLICY, pos_of(text, "echo.Generated"))
    assert sol.classes["echo.Generated"].opaque


def test_cmp002_quiet_for_an_undeclared_sdk_class_which_is_noted_once(make):
    # An SDK program the build declares (@INIT_EXTERNAL_ENTITIES@): one note, not a warning per use.
    text = policy("request dst=kl.VfsRamFs { grant () }\nresponse src=kl.VfsRamFs { grant () }\n")
    root = make({POLICY: text})
    sol = solve(root)
    quiet(sol, "CMP002")
    assert "PSL001" not in codes(sol)
    notes = [d for d in sol.diagnostics if d.code == "SDK001"]
    assert len(notes) == 1 and notes[0].severity.value == "note" and notes[0].span.line == pos_of(text, "kl.VfsRamFs")[0]
    assert [(p.name, p.kind, p.known) for p in sol.outside] == [("kl.VfsRamFs", "program", True)]


def test_sdk002_warns_for_an_sdk_looking_name_the_catalogue_does_not_know(make):
    text = policy("request dst=kl.VfsRamFS { grant () }\n")
    root = make({POLICY: text})
    sol = solve(root)
    d = expect(sol, "SDK002", "warning", root, POLICY, pos_of(text, "kl.VfsRamFS"))
    assert "opaque" in d.message


def test_cmp002_quiet_when_edl_found_by_declared_name_or_sdk_path(make, tmp_path):
    sdk = tmp_path / "sdk"
    (sdk / "kl").mkdir(parents=True)
    (sdk / "kl/VfsRamFs.edl").write_text("task class kl.VfsRamFs\n")
    root = make({POLICY: policy("use EDL kl.VfsRamFs\n")})
    sol = solve(root, sdk_dirs=(sdk,))
    quiet(sol, "CMP002")
    assert not sol.classes["kl.VfsRamFs"].opaque
    assert not sol.classes["echo.Server"].opaque  # resources/edl/Server.edl, found by declared name


def test_cmp003_fires_for_unknown_component(make):
    server = "task class echo.Server\n\ncomponents {\n    pingComp : echo.Nope\n}\n"
    root = make({"resources/edl/Server.edl": server})
    sol = solve(root)
    expect(sol, "CMP003", "error", root, "resources/edl/Server.edl", pos_of(server, "echo.Nope"))
    assert {d.code for d in errors(sol)} == {"CMP003"}


def test_cmp003_quiet_for_known_component(make):
    quiet(solve(make()), "CMP003")


def test_cmp004_fires_for_unknown_endpoint_interface(make):
    cdl = "component echo.PingComp\n\nendpoints {\n    pingImpl : echo.Nope\n}\n"
    root = make({"resources/cdl/PingComp.cdl": cdl})
    sol = solve(root)
    expect(sol, "CMP004", "error", root, "resources/cdl/PingComp.cdl", pos_of(cdl, "echo.Nope"))
    assert {d.code for d in errors(sol)} == {"CMP004"}


def test_cmp004_fires_for_unknown_security_interface(make):
    edl = "task class echo.Client\n\nsecurity echo.NoSuchIface\n"
    root = make({"resources/edl/Client.edl": edl})
    sol = solve(root)
    expect(sol, "CMP004", "error", root, "resources/edl/Client.edl", pos_of(edl, "echo.NoSuchIface"))


def test_cmp004_fires_for_unknown_interface_selector(make):
    text = policy("request dst=echo.Server, interface=echo.Nope { grant () }\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "CMP004", "error", root, POLICY, pos_of(text, "echo.Nope"))


def test_cmp004_quiet_for_known_interfaces(make):
    sol = solve(make({POLICY: policy("request dst=echo.Server, interface=echo.Ping { grant () }\n")}))
    quiet(sol, "CMP004")


def test_cmp005_fires_for_component_containing_itself(make):
    cdl = "component echo.PingComp\n\ncomponents {\n    me : echo.PingComp\n}\n"
    root = make({"resources/cdl/PingComp.cdl": cdl})
    sol = solve(root)
    expect(sol, "CMP005", "error", root, "resources/cdl/PingComp.cdl", pos_of(cdl, "echo.PingComp", nth=2))


def test_cmp005_fires_for_indirect_cycle(make):
    a = "component echo.PingComp\n\nendpoints {\n    pingImpl : echo.Ping\n}\n\ncomponents {\n    inner : echo.Other\n}\n"
    b = "component echo.Other\n\ncomponents {\n    back : echo.PingComp\n}\n"
    root = make({"resources/cdl/PingComp.cdl": a, "resources/cdl/Other.cdl": b})
    sol = solve(root)
    d = expect(sol, "CMP005", "error", root, "resources/cdl/Other.cdl", pos_of(b, "echo.PingComp"))
    assert "echo.PingComp -> echo.Other -> echo.PingComp" in d.message
    # the part before the cycle is still resolved
    assert [e.name for e in sol.classes["echo.Server"].endpoints] == ["pingComp.pingImpl"]


def test_cmp005_quiet_for_component_used_twice_without_cycle(make):
    sol = solve(make(base=HUB_FILES))  # ArchiveComp is in Hub directly and inside IngestComp
    quiet(sol, "CMP005")


def test_duplicate_endpoint_is_reported_once_by_the_parser(make):
    # A duplicate qualified endpoint always comes from a duplicate name at one level,
    # which the EDL/CDL parser reports (SYN206); the resolver keeps the first silently.
    edl = "task class echo.Server\n\nendpoints {\n    a : echo.Ping\n    a : echo.Ping\n}\n"
    root = make({"resources/edl/Server.edl": edl})
    sol = solve(root)
    expect(sol, "SYN206", "error", root, "resources/edl/Server.edl", pos_of(edl, "a : echo.Ping", nth=2))
    assert len(of(sol, "SYN206")) == 1
    assert [e.name for e in sol.classes["echo.Server"].endpoints] == ["a"]


def test_duplicate_component_instance_is_reported_once_at_the_instance(make):
    edl = "task class echo.Server\n\ncomponents {\n    c : echo.PingComp\n    c : echo.PingComp\n}\n"
    root = make({"resources/edl/Server.edl": edl})
    sol = solve(root)
    expect(sol, "SYN206", "error", root, "resources/edl/Server.edl", pos_of(edl, "c : echo.PingComp", nth=2))
    assert len(of(sol, "SYN206")) == 1


def test_same_endpoint_name_under_different_instances_is_fine(make):
    sol = solve(make(base=HUB_FILES))  # ingest.archive.store and backup.store
    quiet(sol, "SYN206")


def test_cmp007_fires_for_package_without_interface(make):
    cdl = "component echo.PingComp\n\nendpoints {\n    pingImpl : echo.Types\n}\n"
    root = make({
        "resources/idl/Types.idl": "package echo.Types\n\ntypedef UInt32 Value;\n",
        "resources/cdl/PingComp.cdl": cdl,
    })
    sol = solve(root)
    expect(sol, "CMP007", "error", root, "resources/cdl/PingComp.cdl", pos_of(cdl, "echo.Types"))
    assert {d.code for d in errors(sol)} == {"CMP007"}


def test_cmp007_quiet_for_package_with_interface(make):
    quiet(solve(make()), "CMP007")


# =========================================================================== PSL


def test_psl001_fires_for_undeclared_class(make):
    text = policy("request src=echo.Clint, dst=echo.Server { grant () }\n")
    root = make({POLICY: text})
    sol = solve(root)
    d = expect(sol, "PSL001", "error", root, POLICY, pos_of(text, "echo.Clint"))
    assert "echo.Client" in d.hint  # did you mean
    assert {e.code for e in errors(sol)} == {"PSL001"}


def test_psl001_fires_for_undeclared_class_in_pal_execute(make):
    text = policy('assert {\n    sequence {\n        c <- execute dst=echo.Other\n    }\n}\n')
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL001", "error", root, POLICY, pos_of(text, "echo.Other"))


def test_psl001_fires_for_edl_name_hidden_by_task_class_alias(make):
    # `task class acme.Mirror : acme.Hub` declares acme.Mirror, not acme.Hub
    header = HUB_HEADER.replace("use EDL acme.Hub\n", "")
    text = header + "request dst=acme.Hub { grant () }\n"
    root = make({POLICY: text, INIT: "entities:\n  - name: acme.Sensor\n"}, base=HUB_FILES)
    sol = solve(root)
    expect(sol, "PSL001", "error", root, POLICY, pos_of(text, "acme.Hub {"))


def test_psl001_fires_alone_for_mistyped_server_class(make):
    text = policy("request src=echo.Client, dst=echo.Srvr, endpoint=pingComp.pingImpl, method=Ping { grant () }\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL001", "error", root, POLICY, pos_of(text, "echo.Srvr"))
    assert {d.code for d in errors(sol)} == {"PSL001"}, render(sol)


def test_psl001_fires_only_as_warning_when_a_template_placeholder_is_undefined(make):
    text = policy("@INIT_EXTERNAL_ENTITIES@\nrequest dst=echo.Client2 { grant () }\n")
    root = make({POLICY: None, "einit/src/security.psl.in": text,
                 "resources/edl/Client2.edl": "task class echo.Client2\n"})
    sol = solve(root)
    assert "TPL006" in codes(sol)
    expect(sol, "PSL001", "warning", root, "einit/src/security.psl.in", pos_of(text, "echo.Client2"))


def test_psl001_quiet_for_declared_and_builtin_classes(make):
    text = policy("request src=echo.Client, dst=echo.Server { grant () }\n"
                  "execute src=kl.core.Core, dst=Einit { grant () }\n")
    quiet(solve(make({POLICY: text.replace("use EDL kl.core.Core\nuse EDL Einit\n", "")})), "PSL001")


def test_psl002_fires_for_unknown_endpoint(make):
    text = policy("request dst=echo.Server, endpoint=pingComp.pingImp { grant () }\n")
    root = make({POLICY: text})
    sol = solve(root)
    d = expect(sol, "PSL002", "error", root, POLICY, pos_of(text, "pingComp.pingImp"))
    assert "pingComp.pingImpl" in d.hint
    assert {e.code for e in errors(sol)} == {"PSL002"}


def test_psl002_fires_for_partial_qualified_name(make):
    text = HUB_HEADER + "request dst=acme.Hub, endpoint=archive.store { grant () }\n"
    root = make({POLICY: text}, base=HUB_FILES)
    sol = solve(root)
    expect(sol, "PSL002", "error", root, POLICY, pos_of(text, "archive.store"))


def test_psl002_fires_for_endpoint_of_the_client_in_a_request(make):
    # endpoint= is relative to the server: dst for request
    text = HUB_HEADER + "request src=acme.Hub, dst=acme.Sensor, endpoint=feed { grant () }\n"
    root = make({POLICY: text}, base=HUB_FILES)
    sol = solve(root)
    expect(sol, "PSL002", "error", root, POLICY, pos_of(text, "feed"))


def test_psl002_quiet_for_server_endpoint_in_response_and_error(make):
    # ... and src for response/error
    text = HUB_HEADER + ("response src=acme.Hub, dst=acme.Sensor, endpoint=feed { grant () }\n"
                         "error src=acme.Hub, dst=acme.Sensor, endpoint=ingest.archive.store { grant () }\n"
                         "request dst=kl.core.Core, endpoint=anything, method=Whatever { grant () }\n")
    quiet(solve(make({POLICY: text}, base=HUB_FILES)), "PSL002")


def test_psl003_fires_for_unknown_method(make):
    text = policy("request dst=echo.Server, method=Pong { grant () }\n")
    root = make({POLICY: text})
    sol = solve(root)
    d = expect(sol, "PSL003", "error", root, POLICY, pos_of(text, "Pong"))
    assert "Ping" in d.hint


def test_psl003_fires_for_interface_no_selected_class_serves(make):
    text = HUB_HEADER + "request dst=acme.Sensor, interface=acme.Store { grant () }\n"
    root = make({POLICY: text}, base=HUB_FILES)
    sol = solve(root)
    expect(sol, "PSL003", "error", root, POLICY, pos_of(text, "acme.Store"))


def test_psl003_quiet_for_selectors_that_only_together_address_nothing(make):
    # The SDK's compiler accepts it (each name exists); the linter reports it (LNT020).
    text = HUB_HEADER + "request dst=acme.Hub, endpoint=ctl, method=Push { grant () }\n"
    root = make({POLICY: text}, base=HUB_FILES)
    sol = solve(root)
    quiet(sol, "PSL003")
    b = sol.bindings[-1]
    assert b.targets == () and not b.opaque


def test_psl003_quiet_for_a_server_without_endpoints(make):
    root = make({POLICY: policy("request src=echo.Client dst=Einit { grant () }\nrequest dst=echo.Client { grant () }\n")})
    sol = solve(root)
    quiet(sol, "PSL003")
    assert not errors(sol), render(sol)


def test_psl003_fires_in_nested_match(make):
    text = HUB_HEADER + "request dst=acme.Hub, endpoint=ctl {\n    match method=Gett { grant () }\n}\n"
    root = make({POLICY: text}, base=HUB_FILES)
    sol = solve(root)
    d = expect(sol, "PSL003", "error", root, POLICY, pos_of(text, "Gett"))
    assert "Get" in d.hint


def test_psl003_quiet_for_existing_method_and_interface(make):
    text = HUB_HEADER + ("request dst=acme.Hub, interface=acme.Store, method=Get { grant () }\n"
                         "request dst=acme.Hub, endpoint=ctl { match method=Put { grant () } }\n")
    quiet(solve(make({POLICY: text}, base=HUB_FILES)), "PSL003")


def test_psl004_fires_for_dst_on_security_event(make):
    text = HUB_HEADER + "security src=acme.Hub, dst=acme.Sensor { grant () }\n"
    root = make({POLICY: text}, base=HUB_FILES)
    sol = solve(root)
    expect(sol, "PSL004", "error", root, POLICY, pos_of(text, "dst=acme.Sensor"))


def test_psl004_fires_for_endpoint_on_execute_event(make):
    text = policy("execute src=Einit, endpoint=pingComp.pingImpl { grant () }\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL004", "error", root, POLICY, pos_of(text, "endpoint=pingComp"))


def test_psl004_quiet_for_allowed_selectors(make):
    text = HUB_HEADER + ("security src=acme.Hub, interface=acme.HubControl, method=Ready { grant () }\n"
                         "execute src=Einit, dst=acme.Hub, method=main { grant () }\n"
                         "error src=acme.Hub, dst=acme.Sensor, endpoint=feed, interface=acme.Telemetry, method=Push { grant () }\n")
    quiet(solve(make({POLICY: text}, base=HUB_FILES)), "PSL004")


def test_psl005_fires_for_nested_match_contradicting_its_binding(make):
    text = policy("request dst=echo.Server {\n    match dst=echo.Client { grant () }\n}\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL005", "warning", root, POLICY, pos_of(text, "dst=echo.Client"))
    assert not errors(sol)
    # back ends must be able to tell that the section never applies
    section = [b for b in sol.bindings if b.event == "request" and b.selectors.dst == "echo.Server"][-1].body[0]
    assert isinstance(section, MatchDef) and section.satisfiable is False and section.targets == ()


def test_psl005_quiet_for_repeated_equal_selector_and_disjoint_siblings(make):
    text = policy("request dst=echo.Server {\n    match dst=echo.Server { grant () }\n"
                  "    match src=echo.Client { grant () }\n    match src=Einit { grant () }\n}\n")
    sol = solve(make({POLICY: text}))
    quiet(sol, "PSL005")
    sections = [s for b in sol.bindings for s in b.body if isinstance(s, MatchDef)]
    assert sections and all(s.satisfiable for s in sections)


def test_psl006_fires_for_unknown_object(make):
    text = policy("use nk.flow._\n" + FLOW_DOOR + "execute { dor.init {sid : dst_sid} }\n")
    root = make({POLICY: text})
    sol = solve(root)
    d = expect(sol, "PSL006", "error", root, POLICY, pos_of(text, "dor.init"))
    assert "door" in d.hint


def test_psl006_quiet_for_declared_object(make):
    text = policy("use nk.flow._\n" + FLOW_DOOR + "execute { door.init {sid : dst_sid} }\n")
    quiet(solve(make({POLICY: text})), "PSL006")


def test_psl007_fires_for_unknown_model_method(make):
    text = policy("request dst=echo.Server { base.grnt () }\n")
    root = make({POLICY: text})
    sol = solve(root)
    d = expect(sol, "PSL007", "error", root, POLICY, pos_of(text, "grnt"))
    assert "grant" in d.hint


def test_psl007_fires_for_unprefixed_non_base_method(make):
    text = policy("request dst=echo.Server { frob () }\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL007", "error", root, POLICY, pos_of(text, "frob"))


def test_psl007_quiet_for_known_methods(make):
    text = policy("request dst=echo.Server { base.grant () }\n"
                  "response src=echo.Server { deny (false) }\n")
    quiet(solve(make({POLICY: text})), "PSL007")


def test_psl008_fires_for_call_on_object_of_missing_include(make):
    text = policy('request dst=echo.Server { assert (re.match {text : "a", pattern : "a"}) }\n')
    root = make({POLICY: text})
    sol = solve(root)
    d = expect(sol, "PSL008", "error", root, POLICY, pos_of(text, "re.match"))
    assert "nk.regex" in d.hint


def test_psl008_fires_for_object_of_model_not_included(make):
    text = policy(FLOW_DOOR)
    root = make({POLICY: text})
    sol = solve(root)
    d = expect(sol, "PSL008", "error", root, POLICY, pos_of(text, "Flow"))
    assert "nk.flow" in d.hint


def test_psl008_quiet_with_includes(make):
    text = policy("use nk.regex._\nuse nk.flow._\n" + FLOW_DOOR
                  + 'request dst=echo.Server { assert (re.match {text : "a", pattern : "a"}) }\n')
    quiet(solve(make({POLICY: text})), "PSL008")


def test_psl008_quiet_for_base_rules_with_only_nk_basic(make):
    text = policy("request dst=echo.Server { grant () }\n").replace("use nk.base._\n", "")
    quiet(solve(make({POLICY: text})), "PSL008")


def test_psl009_fires_for_argument_to_unit_method(make):
    text = policy("request dst=echo.Server { grant (true) }\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL009", "error", root, POLICY, pos_of(text, "true"))


def test_psl009_fires_for_missing_and_unknown_record_fields(make):
    text = policy("use nk.flow._\n" + FLOW_DOOR + 'execute { door.enter {sid : dst_sid, stat : "open"} }\n')
    root = make({POLICY: text})
    sol = solve(root)
    d1 = expect(sol, "PSL009", "error", root, POLICY, pos_of(text, "{sid : dst_sid, stat"))
    assert "state" in d1.message
    d2 = expect(sol, "PSL009", "error", root, POLICY, pos_of(text, "stat :"))
    assert "stat" in d2.message and "state" in d2.hint


def test_psl009_quiet_for_fitting_arguments(make):
    text = policy("use nk.flow._\n" + FLOW_DOOR
                  + 'execute { door.enter {sid : dst_sid, state : "open"} }\n'
                  + "request dst=echo.Server { assert (true) }\n")
    quiet(solve(make({POLICY: text})), "PSL009")


def test_psl010_fires_for_unknown_message_field(make):
    text = policy(PING_REQ + " { assert (message.result == 1) }\n")
    root = make({POLICY: text})
    sol = solve(root)
    d = expect(sol, "PSL010", "error", root, POLICY, pos_of(text, "message.result"))
    assert "in-parameter" in d.message


def test_psl010_quiet_for_in_parameter_of_request(make):
    text = policy(PING_REQ + " { assert (message.value == 1) }\n")
    quiet(solve(make({POLICY: text})), "PSL010")


def test_psl011_fires_for_undefined_name(make):
    text = policy(PING_REQ + " { assert (foo == 1) }\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL011", "error", root, POLICY, pos_of(text, "foo"))


def test_psl011_fires_for_dst_sid_in_security_event(make):
    text = HUB_HEADER + "security src=acme.Hub, method=Ready { assert (dst_sid == 1) }\n"
    root = make({POLICY: text}, base=HUB_FILES)
    sol = solve(root)
    expect(sol, "PSL011", "error", root, POLICY, pos_of(text, "dst_sid"))


def test_psl011_quiet_for_sids_and_message(make):
    text = HUB_HEADER + ("security src=acme.Hub, method=Ready { assert (src_sid == message.code) }\n"
                         "request dst=acme.Hub { assert (dst_sid != src_sid) }\n")
    quiet(solve(make({POLICY: text}, base=HUB_FILES)), "PSL011")


def test_psl012_fires_for_expression_used_as_rule(make):
    text = policy(PING_REQ + ' { pred.empty ("") }\n')
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL012", "warning", root, POLICY, pos_of(text, "pred.empty"))
    call = sol.bindings[-1].body[0]
    assert call.kind == "expression" and call.model == "Pred"


def test_psl012_quiet_when_wrapped_in_assert(make):
    text = policy(PING_REQ + ' { assert (pred.empty ("")) }\n')
    quiet(solve(make({POLICY: text})), "PSL012")


def test_psl013_fires_for_rule_inside_expression(make):
    text = policy(PING_REQ + " { assert (bool.all ([grant ()])) }\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL013", "error", root, POLICY, pos_of(text, "grant ()]"))


def test_psl013_quiet_for_expressions_inside_expressions(make):
    text = policy(PING_REQ + " { assert (bool.all ([true, message.value > 3])) }\n")
    quiet(solve(make({POLICY: text})), "PSL013")


def test_psl014_fires_for_object_declared_twice(make):
    text = policy("use nk.regex._\npolicy object words : Regex { }\npolicy object words : Regex { }\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL014", "error", root, POLICY, pos_of(text, "words", nth=2))
    assert len(of(sol, "PSL014")) == 1


def test_psl014_quiet_for_distinct_names(make):
    text = policy("use nk.regex._\npolicy object words : Regex { }\npolicy object names : Regex { }\n")
    sol = solve(make({POLICY: text}))
    quiet(sol, "PSL014")
    assert {"words", "names"} <= set(sol.objects)


def test_psl015_fires_for_unknown_model(make):
    text = policy("policy object door : Flw { }\n")
    root = make({POLICY: text})
    sol = solve(root)
    d = expect(sol, "PSL015", "error", root, POLICY, pos_of(text, "Flw"))
    assert "Flow" in d.hint
    assert "door" not in sol.objects


def test_psl015_quiet_for_known_model(make):
    quiet(solve(make({POLICY: policy("use nk.flow._\n" + FLOW_DOOR)})), "PSL015")


def test_psl016_fires_for_flow_without_config(make):
    text = policy('use nk.flow._\npolicy object door : Flow {\n    type State = "a"\n}\n')
    root = make({POLICY: text})
    sol = solve(root)
    d = expect(sol, "PSL016", "error", root, POLICY, pos_of(text, "door"))
    assert "config" in d.message


def test_psl016_fires_for_initial_state_not_in_states(make):
    text = policy('use nk.flow._\npolicy object door : Flow {\n    type State = "a" | "b"\n'
                  '    config = { states : ["a", "b"], initial : "c", transitions : { "a" : ["b"] } }\n}\n')
    root = make({POLICY: text})
    sol = solve(root)
    d = expect(sol, "PSL016", "error", root, POLICY, pos_of(text, '{ states'))
    assert "'c'" in d.message


def test_psl016_quiet_for_complete_config(make):
    text = policy("use nk.flow._\nuse nk.hashmap._\nuse nk.staticmap._\n" + FLOW_DOOR
                  + "policy object seen : HashSet {\n    type Entry = UInt32\n    config = { set_size : 4, pool_size : 2 }\n}\n"
                  + "policy object limits : StaticMap {\n    type Value = SInt32\n    config = { keys : { low : -1 }, pool_size : 1 }\n}\n")
    sol = solve(make({POLICY: text}))
    quiet(sol, "PSL016")
    assert sol.objects["limits"].config == {"keys": {"low": -1}, "pool_size": 1}


def test_psl017_fires_for_non_constant_config(make):
    text = policy('use nk.flow._\npolicy object door : Flow {\n    type State = "a" | "b"\n'
                  '    config = { states : ["a", "b"], initial : message.x, transitions : { "a" : ["b"] } }\n}\n')
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL017", "error", root, POLICY, pos_of(text, "message.x"))


def test_psl017_fires_for_non_constant_pal_message(make):
    text = policy('assert {\n    setup {\n        core <- execute dst=kl.core.Core\n        e <- execute src=core dst=Einit\n'
                  '        c <- execute src=e dst=echo.Client\n        s <- execute src=e dst=echo.Server\n    }\n'
                  '    sequence {\n        request src=c dst=s endpoint=pingComp.pingImpl method=Ping { value : src_sid }\n    }\n}\n')
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL017", "error", root, POLICY, pos_of(text, "src_sid"))


def test_psl017_quiet_for_literals_lists_records(make):
    quiet(solve(make({POLICY: policy("use nk.flow._\n" + FLOW_DOOR)})), "PSL017")


def test_psl018_fires_for_unknown_default_profile(make):
    text = policy("audit default = nope 0\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL018", "error", root, POLICY, pos_of(text, "nope"))


def test_psl018_fires_for_unknown_binding_profile(make):
    text = policy("request dst=echo.Server {\n    audit nope\n    grant ()\n}\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL018", "error", root, POLICY, pos_of(text, "nope"))


def test_psl018_quiet_for_declared_and_builtin_empty_profile(make):
    text = policy('audit profile trace = { 0 : { base : { kss : ["denied"] } } }\naudit default = trace 0\n'
                  "request dst=echo.Server {\n    audit empty\n    grant ()\n}\n")
    sol = solve(make({POLICY: text}))
    quiet(sol, "PSL018")
    assert sol.audit_default == ("trace", 0)


def test_psl019_fires_for_bad_kss_value(make):
    text = policy('audit profile trace = { 0 : { base : { kss : ["maybe"] } } }\n')
    root = make({POLICY: text})
    sol = solve(root)
    d = expect(sol, "PSL019", "error", root, POLICY, pos_of(text, "{ 0 :"))
    assert "kss" in d.message


def test_psl019_fires_for_non_auditable_model(make):
    text = policy('audit profile trace = { 0 : { pred : { kss : ["denied"] } } }\n')
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL019", "error", root, POLICY, pos_of(text, "{ 0 :"))


def test_psl019_quiet_for_valid_profile(make):
    text = policy("use nk.flow._\n" + FLOW_DOOR
                  + 'audit profile trace = { 0 : { base : { kss : ["granted", "denied"] }, '
                    'door : { kss : ["denied"], omit : ["locked"] } } }\n')
    quiet(solve(make({POLICY: text})), "PSL019")


def test_psl020_fires_without_execute_declaration(make):
    text = ECHO_HEADER.replace("execute: kl.core.Execute\n", "")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL020", "warning", root, POLICY, (1, 1))
    assert sol.execute_interface is None


def test_psl020_fires_for_repeated_execute_declaration(make):
    text = policy("execute: kl.core.Execute\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL020", "warning", root, POLICY, pos_of(text, "execute: kl.core.Execute", nth=2))


def test_psl020_quiet_for_one_declaration_in_an_included_file(make):
    root = make({POLICY: ECHO_HEADER.replace("execute: kl.core.Execute\n", "use parts.exec._\n"),
                 "einit/src/parts/exec.psl": "execute: kl.core.Execute\n"})
    sol = solve(root)
    quiet(sol, "PSL020")
    assert sol.execute_interface == "kl.core.Execute"


def _flow_choice(case: str) -> str:
    return policy("use nk.flow._\n" + FLOW_DOOR + "request dst=echo.Server {\n"
                  "    choice (door.query {sid : dst_sid}) {\n"
                  f'        "{case}" : grant ()\n'
                  "        _ : deny ()\n    }\n}\n")


def test_psl021_fires_for_case_that_is_not_a_flow_state(make):
    text = _flow_choice("closed")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL021", "error", root, POLICY, pos_of(text, '"closed"'))


def test_psl021_quiet_for_flow_state_case(make):
    sol = solve(make({POLICY: _flow_choice("open")}))
    quiet(sol, "PSL021")
    choice = sol.bindings[-1].body[0]
    assert [a.case.value if a.case else None for a in choice.arms] == ["open", None]


PAL_SETUP = """\
assert "t" {
    setup {
        core <- execute dst=kl.core.Core
        einit <- execute src=core dst=Einit
    }
"""


def test_psl022_fires_for_unbound_variable(make):
    text = policy(PAL_SETUP + "    sequence {\n        request src=c dst=einit method=Ping { value : 1 }\n    }\n}\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL022", "error", root, POLICY, pos_of(text, "src=c dst"))
    assert len(of(sol, "PSL022")) == 1


def test_psl022_fires_for_variable_of_another_sequence(make):
    text = policy(PAL_SETUP
                  + '    sequence "one" {\n        c <- execute src=einit dst=echo.Client\n    }\n'
                  + '    sequence "two" {\n        any request src=c dst=einit\n    }\n'
                  + "    finally {\n        any request src=c dst=einit\n    }\n}\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL022", "error", root, POLICY, pos_of(text, "src=c dst"))
    assert len(of(sol, "PSL022")) == 1  # finally sees the variables of every sequence


def test_psl022_quiet_for_bound_variables(make):
    text = policy(PAL_SETUP + "    sequence {\n        c <- execute src=einit dst=echo.Client\n"
                  "        s <- execute src=einit dst=echo.Server\n"
                  "        deny request src=c dst=s endpoint=pingComp.pingImpl method=Ping { value : 1 }\n    }\n}\n")
    quiet(solve(make({POLICY: text})), "PSL022")


def _flow_only_policy(body: str) -> str:
    return (ECHO_HEADER.replace("use nk.base._\nuse nk.basic._\n", "use nk.flow._\n")
            .replace("execute { grant () }\n", "") + FLOW_DOOR + body)


def test_psl023_fires_once_for_operators_without_basic_models(make):
    text = _flow_only_policy("execute { door.init {sid : dst_sid + 1} }\nexecute { door.init {sid : dst_sid - 1} }\n")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "PSL023", "warning", root, POLICY, pos_of(text, "dst_sid + 1"))
    assert len(of(sol, "PSL023")) == 1


def test_psl023_quiet_with_nk_basic(make):
    text = _flow_only_policy("use nk.basic._\nexecute { door.init {sid : dst_sid + 1} }\n")
    quiet(solve(make({POLICY: text})), "PSL023")


# =========================================================================== SOL


def test_sol001_fires_for_connection_to_unknown_task(make):
    init = ECHO_INIT.replace("target: echo.Server", "target: echo.Srv")
    root = make({INIT: init})
    sol = solve(root)
    hits = of(sol, "SOL001")
    assert len(hits) == 1 and hits[0].severity.value == "error" and "echo.Server" in hits[0].hint
    assert rel_file(hits[0].span, root) == INIT
    line, key_col = pos_of(init, "target: echo.Srv")
    assert hits[0].span.line == line
    assert hits[0].span.column in (key_col, pos_of(init, "echo.Srv")[1])  # the entry or its value
    assert sol.channels == ()


def test_sol001_fires_for_target_naming_a_class_instead_of_its_task(make):
    init = HUB_INIT.replace("target: acme.Hub", "target: hub").replace("  - name: acme.Hub\n", "  - name: acme.Hub\n    task: hub\n")
    init += "  - name: acme.Sensor\n    task: rear\n    connections:\n      - target: acme.Hub\n        id: hub_link\n"
    root = make({INIT: init}, base=HUB_FILES)
    sol = solve(root)
    hits = of(sol, "SOL001")
    assert len(hits) == 1
    assert hits[0].span.line == pos_of(init, "target: acme.Hub")[0]
    assert [(c.client, c.server) for c in sol.channels] == [("frontSensor", "hub")]


def test_sol001_fires_at_target_value_when_id_comes_first(make):
    init = "entities:\n  - name: echo.Client\n    connections:\n      - id: server_connection\n        target: echo.Srv\n  - name: echo.Server\n"
    root = make({INIT: init})
    sol = solve(root)
    expect(sol, "SOL001", "error", root, INIT, pos_of(init, "echo.Srv"))


def test_sol001_quiet_for_target_task(make):
    quiet(solve(make()), "SOL001")


def test_sol002_fires_for_channel_to_class_without_endpoints(make):
    init = "entities:\n  - name: echo.Client\n  - name: echo.Server\n    connections:\n      - target: echo.Client\n        id: back\n"
    root = make({INIT: init})
    sol = solve(root)
    hits = of(sol, "SOL002")
    assert len(hits) == 1 and hits[0].severity.value == "warning" and hits[0].hint
    assert rel_file(hits[0].span, root) == INIT and hits[0].span.line == pos_of(init, "target: echo.Client")[0]
    assert [(c.client, c.server) for c in sol.channels] == [("echo.Server", "echo.Client")]  # still a channel


def test_sol002_quiet_for_server_with_endpoints_or_opaque_class(make):
    init = ECHO_INIT.replace("  - name: echo.Server\n", "  - name: echo.Server\n    connections:\n"
                             "      - target: kl.VfsRamFs\n        id: vfs\n  - name: kl.VfsRamFs\n")
    sol = solve(make({INIT: init}))
    quiet(sol, "SOL002")
    assert {(c.client, c.server) for c in sol.channels} == {("echo.Client", "echo.Server"), ("echo.Server", "kl.VfsRamFs")}


def _regex_choice(pattern: str) -> str:
    return policy("use nk.regex._\n" + PING_REQ + " {\n    choice (re.select {text : \"x\"}) {\n"
                  + f'        "{pattern}" : grant ()\n' + "        _ : deny ()\n    }\n}\n")


def test_sol003_fires_for_bad_regex_case(make):
    text = _regex_choice("[a-")
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "SOL003", "warning", root, POLICY, pos_of(text, '"[a-"'))


@pytest.mark.parametrize("pattern", ["a{4294967296}", "(" * 2000 + "a" + ")" * 2000])
def test_sol003_fires_instead_of_crashing_for_pathological_regex(make, pattern):
    text = _regex_choice(pattern)
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "SOL003", "warning", root, POLICY, pos_of(text, '"' + pattern[:10]))


def test_sol003_fires_for_bad_re_match_pattern(make):
    text = policy('use nk.regex._\nrequest dst=echo.Server { assert (re.match {text : "x", pattern : "[a-"}) }\n')
    root = make({POLICY: text})
    sol = solve(root)
    expect(sol, "SOL003", "warning", root, POLICY, pos_of(text, '"[a-"'))


@pytest.mark.parametrize("pattern", ["(?:ab)+", "(a)\\1", "\\Aab"])
def test_sol003_fires_for_python_only_constructs_the_runtime_refuses(make, pattern):
    # Python's re accepts these; the policy dialect (and so the runtime) does not.
    text = _regex_choice(pattern)
    root = make({POLICY: text})
    expect(solve(root), "SOL003", "warning", root, POLICY, pos_of(text, '"' + pattern[:3]))


def test_sol003_quiet_for_valid_regex(make):
    quiet(solve(make({POLICY: _regex_choice("^[a-z]+$")})), "SOL003")
    quiet(solve(make({POLICY: _regex_choice("[[:alpha:]]{2,4}\\.x")})), "SOL003")


# =========================================================================== resolved model


def test_riid_numbering_edl_endpoints_first_then_components_depth_first(make):
    sol = solve(make(base=HUB_FILES))
    hub = sol.classes["acme.Hub"]
    assert [(e.name, e.riid, e.interface.name) for e in hub.endpoints] == [
        ("feed", 0, "acme.Telemetry"),
        ("ctl", 1, "acme.Store"),
        ("ingest.raw", 2, "acme.Telemetry"),
        ("ingest.archive.store", 3, "acme.Store"),
        ("backup.store", 4, "acme.Store"),
    ]
    assert hub.endpoint("ingest.archive.store").riid == 3
    assert hub.security.name == "acme.HubControl"
    assert sol.classes["acme.Sensor"].endpoints == ()


def test_mids_follow_idl_declaration_order(make):
    sol = solve(make(base=HUB_FILES))
    assert [(m.name, m.index) for m in sol.interfaces["acme.Store"].methods] == [("Put", 0), ("Get", 1)]
    assert [(m.name, m.index) for m in sol.interfaces["acme.Telemetry"].methods] == [("Push", 0), ("Flush", 1), ("Grab", 2)]
    assert [(m.name, m.index) for m in sol.interfaces["kl.core.Execute"].methods] == [("main", 0)]


def test_qualified_endpoint_through_two_levels_of_components(make):
    text = HUB_HEADER + "request src=acme.Sensor, dst=acme.Hub, endpoint=ingest.archive.store, method=Put { assert (message.key < 9) }\n"
    sol = solve(make({POLICY: text}, base=HUB_FILES))
    assert not sol.diagnostics, render(sol)
    b = sol.bindings[-1]
    assert b.selectors == SelectorSet(src="acme.Sensor", dst="acme.Hub", endpoint="ingest.archive.store", method="Put")
    assert [(t.cls, t.endpoint, t.interface, t.method.name, t.method.index) for t in b.targets] == [
        ("acme.Hub", "ingest.archive.store", "acme.Store", "Put", 0)]


def test_task_class_alias_renames_the_class(make):
    text = HUB_HEADER + "request dst=acme.Mirror, endpoint=backup.store, method=Get { assert (message.key == 1) }\n"
    sol = solve(make({POLICY: text}, base=HUB_FILES))
    assert not sol.diagnostics, render(sol)
    mirror = sol.classes["acme.Mirror"]
    assert mirror.name == "acme.Mirror" and mirror.edl_name == "acme.Hub" and not mirror.opaque
    assert [e.name for e in mirror.endpoints] == [e.name for e in sol.classes["acme.Hub"].endpoints]
    assert "acme.Mirror" in sol.used_edl
    assert [t.cls for t in sol.bindings[-1].targets] == ["acme.Mirror"]


def test_init_entity_defaults_and_explicit_values(make):
    sol = solve(make(base=HUB_FILES))
    hub, sensor = sol.instances
    assert (hub.task, hub.cls, hub.path, hub.args, hub.env) == ("acme.Hub", "acme.Hub", "Hub", (), ())
    assert (sensor.task, sensor.cls, sensor.path, sensor.args, sensor.env) == (
        "frontSensor", "acme.Sensor", "SensorBin", ("--rate", "10"), (("LOG", "2"),))
    assert sol.instance("frontSensor") is sensor
    assert rel_file(hub.span, Path(sol.root)) == INIT
    assert hub.span.line == pos_of(HUB_INIT, "name: acme.Hub")[0]


def test_channels_client_owns_connections_server_is_target_task(make):
    init = HUB_INIT + ("  - name: acme.Hub\n    task: hub2\n"
                       "  - name: acme.Sensor\n    task: rear\n    connections:\n"
                       "      - target: hub2\n        id: rear_link\n"
                       "      - target: frontSensor\n        id: peer\n")
    sol = solve(make({INIT: init}, base=HUB_FILES))
    assert [(c.id, c.client, c.server) for c in sol.channels] == [
        ("hub_link", "frontSensor", "acme.Hub"),
        ("rear_link", "rear", "hub2"),
        ("peer", "rear", "frontSensor"),
    ]
    assert "SOL001" not in codes(sol)
    assert [d.code for d in sol.diagnostics] == ["SOL002"]  # frontSensor (acme.Sensor) serves nothing
    assert sol.channels[1].span.line == pos_of(init, "target: hub2")[0]


def test_binding_targets(make):
    text = HUB_HEADER + (
        "request dst=acme.Hub, interface=acme.Store, method=Get { grant () }\n"
        "response src=acme.Hub, endpoint=feed { grant () }\n"
        "security src=acme.Hub { grant () }\n"
        "request dst=kl.core.Core { grant () }\n"
    )
    sol = solve(make({POLICY: text}, base=HUB_FILES))
    assert not sol.diagnostics, render(sol)
    execute, get, resp, sec, kernel = sol.bindings
    assert execute.event == "execute" and execute.targets == ()
    assert [(t.endpoint, t.method.name) for t in get.targets] == [
        ("ctl", "Get"), ("ingest.archive.store", "Get"), ("backup.store", "Get")]
    assert [(t.cls, t.endpoint, t.interface, t.method.name) for t in resp.targets] == [
        ("acme.Hub", "feed", "acme.Telemetry", m) for m in ("Push", "Flush", "Grab")]
    assert [(t.cls, t.endpoint, t.interface, t.method.name) for t in sec.targets] == [
        ("acme.Hub", None, "acme.HubControl", "Ready")]
    # The built-in kernel description: every documented kernel method, none of them opaque.
    assert len(kernel.targets) > 100 and not kernel.opaque
    assert ("vmm.VMM", "kl.core.VMM", "Allocate") in {(t.endpoint, t.interface, t.method.name) for t in kernel.targets}
    assert isinstance(get.targets[0], Target)


def test_nested_match_narrows_selectors(make):
    text = HUB_HEADER + (
        "request dst=acme.Hub {\n"
        "    match endpoint=ingest.archive.store {\n"
        "        match method=Get { assert (message.key == 1) }\n"
        "    }\n"
        "    match src=acme.Sensor { grant () }\n"
        "}\n"
    )
    sol = solve(make({POLICY: text}, base=HUB_FILES))
    assert not sol.diagnostics, render(sol)
    b = sol.bindings[-1]
    assert b.selectors == SelectorSet(dst="acme.Hub")
    outer, sibling = b.body
    assert isinstance(outer, MatchDef) and isinstance(sibling, MatchDef)
    assert outer.selectors == SelectorSet(dst="acme.Hub", endpoint="ingest.archive.store")
    assert [t.method.name for t in outer.targets] == ["Put", "Get"]
    inner = outer.body[0]
    assert inner.selectors == SelectorSet(dst="acme.Hub", endpoint="ingest.archive.store", method="Get")
    assert [(t.endpoint, t.method.name) for t in inner.targets] == [("ingest.archive.store", "Get")]
    assert sibling.selectors == SelectorSet(src="acme.Sensor", dst="acme.Hub")
    assert inner.span.line == pos_of(text, "match method=Get")[0]


def test_nested_match_narrowing_is_used_for_message_paths(make):
    # `value` is an out-parameter of Get: wrong in a request, inside two match levels
    text = HUB_HEADER + (
        "request dst=acme.Hub {\n"
        "    match endpoint=ingest.archive.store {\n"
        "        match method=Get { assert (message.value == 1) }\n"
        "    }\n"
        "}\n"
    )
    root = make({POLICY: text}, base=HUB_FILES)
    sol = solve(root)
    expect(sol, "PSL010", "error", root, POLICY, pos_of(text, "message.value"))


MESSAGE_PATHS = [
    # (binding head, path, ok, direction named in the message)
    ("request dst=acme.Hub, endpoint=feed, method=Push", "message.sample.level", True, None),
    ("request dst=acme.Hub, endpoint=feed, method=Push", "message.sample.tag", True, None),
    ("request dst=acme.Hub, endpoint=feed, method=Push", "message.sample.lvl", False, "in"),
    ("request dst=acme.Hub, endpoint=feed, method=Push", "message.rc", False, "in"),
    ("request dst=acme.Hub, endpoint=feed, method=Flush", "message.items.[0].level", True, None),
    ("request dst=acme.Hub, endpoint=feed, method=Flush", "message.items.[0].lvl", False, None),
    ("request dst=acme.Hub, endpoint=feed, method=Flush", "message.stored", False, "in"),
    ("response src=acme.Hub, endpoint=feed, method=Flush", "message.stored", True, None),
    ("response src=acme.Hub, endpoint=feed, method=Flush", "message.items", False, "out"),
    ("response src=acme.Hub, endpoint=feed, method=Flush", "message.rc", False, "out"),
    ("error src=acme.Hub, endpoint=feed, method=Push", "message.rc", True, None),
    ("error src=acme.Hub, endpoint=feed, method=Push", "message.sample", False, "error"),
    ("error src=acme.Hub, endpoint=feed, method=Flush", "message.stored", False, "error"),
    ("request dst=acme.Hub, endpoint=feed, method=Grab", "message.h.handle", True, None),
    ("request dst=acme.Hub, endpoint=feed, method=Grab", "message.h.rights", True, None),
    ("request dst=acme.Hub, endpoint=feed, method=Grab", "message.h.sid", False, "in"),
    ("response src=acme.Hub, endpoint=feed, method=Grab", "message.back.handle", True, None),
    ("response src=acme.Hub, endpoint=feed, method=Grab", "message.h.handle", False, "out"),
    ("security src=acme.Hub, method=Ready", "message.code", True, None),
    ("security src=acme.Hub, method=Ready", "message.nope", False, "in"),
    ("request dst=acme.Hub, interface=acme.Store", "message.key", True, None),       # Put and Get both have it
    ("response src=acme.Hub, interface=acme.Store", "message.value", True, None),    # Get's out-parameter
    ("execute src=Einit, dst=acme.Hub", "message.x", False, None),
]


@pytest.mark.parametrize("head, path, ok, direction", MESSAGE_PATHS,
                         ids=[f"{h.split()[0]}-{p}" for h, p, _, _ in MESSAGE_PATHS])
def test_message_paths_per_event_kind(make, head, path, ok, direction):
    text = HUB_HEADER + f"{head} {{ assert ({path} == 1) }}\n"
    root = make({POLICY: text}, base=HUB_FILES)
    sol = solve(root)
    if ok:
        assert not sol.diagnostics, render(sol)
        return
    d = expect(sol, "PSL010", "error", root, POLICY, pos_of(text, path))
    if direction:
        assert f"{direction}-parameter" in d.message
    assert {e.code for e in errors(sol)} == {"PSL010"}


def test_message_paths_unchecked_for_opaque_classes(make):
    text = policy("use EDL echo.Gone\nrequest dst=echo.Gone, endpoint=x, method=y { assert (message.z.w == 1) }\n")
    sol = solve(make({POLICY: text}))
    assert not errors(sol), render(sol)
    assert codes(sol) == {"CMP002"}


def test_pal_test_blocks_and_variables(make):
    text = policy(PAL_SETUP
                  + '    sequence "ping" {\n'
                  + "        c <- execute src=einit dst=echo.Client\n"
                  + "        s <- execute src=einit dst=echo.Server\n"
                  + '        grant "small" request src=c dst=s endpoint=pingComp.pingImpl method=Ping { value : 100 }\n'
                  + "        deny request src=c dst=s endpoint=pingComp.pingImpl method=Ping { value : 1001 }\n"
                  + "    }\n"
                  + "    sequence {\n        any execute src=einit dst=echo.Client\n    }\n"
                  + "    finally {\n        any request src=c dst=s\n    }\n}\n")
    sol = solve(make({POLICY: text}))
    assert not sol.diagnostics, render(sol)
    (block,) = sol.tests
    assert block.name == "t"
    assert [(c.var, c.event, dict(c.selectors)) for c in block.setup] == [
        ("core", "execute", {"dst": "kl.core.Core"}),
        ("einit", "execute", {"src": "core", "dst": "Einit"}),
    ]
    one, two = block.sequences
    assert (one.name, two.name) == ("ping", "sequence 2")
    c_exec, s_exec, small, big = one.cases
    assert (c_exec.var, c_exec.expect) == ("c", "grant")  # omitted expectation means grant
    assert (small.expect, small.name, small.message) == ("grant", "small", {"value": 100})
    assert (big.expect, big.message) == ("deny", {"value": 1001})
    assert dict(big.selectors) == {"src": "c", "dst": "s", "endpoint": "pingComp.pingImpl", "method": "Ping"}
    assert two.cases[0].expect == "any"
    assert block.finally_[0].selectors["src"] == "c"
    assert small.span.line == pos_of(text, 'grant "small"')[0]


def test_multiple_errors_in_one_file_are_all_reported(make):
    text = policy(
        "request src=echo.Clint { grant () }\n"                               # PSL001
        "request dst=echo.Server, method=Pong { grant () }\n"                 # PSL003
        + PING_REQ + " { assert (message.result == 1) }\n"                    # PSL010
        "request dst=echo.Server { fooo.bar () }\n"                           # PSL006
        "audit default = nope 0\n"                                            # PSL018
        "use parts.missing._\n"                                               # INC005
    )
    root = make({POLICY: text, "einit/src/parts/ok.psl": "response { grant () }\n"})
    sol = solve(root)
    expect(sol, "PSL001", "error", root, POLICY, pos_of(text, "echo.Clint"))
    expect(sol, "PSL003", "error", root, POLICY, pos_of(text, "Pong"))
    expect(sol, "PSL010", "error", root, POLICY, pos_of(text, "message.result"))
    expect(sol, "PSL006", "error", root, POLICY, pos_of(text, "fooo"))
    expect(sol, "PSL018", "error", root, POLICY, pos_of(text, "nope"))
    expect(sol, "INC005", "error", root, POLICY, pos_of(text, "use parts.missing._"))
    assert len(errors(sol)) == 6
    # sorted by position
    lines = [d.span.line for d in sol.diagnostics]
    assert lines == sorted(lines)


def test_errors_in_all_files_are_reported_in_one_run(make):
    server = "task class echo.Server\n\ncomponents {\n    pingComp : echo.PingComp\n    extra : echo.Nope\n}\n"
    init = ECHO_INIT.replace("target: echo.Server", "target: echo.Srv")
    text = policy("request src=echo.Clint { grant () }\n")
    root = make({"resources/edl/Server.edl": server, INIT: init, POLICY: text})
    sol = solve(root)
    assert {"CMP003", "SOL001", "PSL001"} <= codes(sol)
    assert {rel_file(d.span, root) for d in errors(sol)} == {"resources/edl/Server.edl", INIT, POLICY}


PSL_IN = ECHO_HEADER + """\
{% if FEATURE %}
request dst=echo.Server { grant () }
{% else %}
request dst=echo.Server, method=Pong { grant () }
{% endif %}
{# a comment line that leaves nothing behind #}
request src=echo.Clint { grant () }
"""


@pytest.mark.parametrize("defines", [{}, {"FEATURE": "ON"}], ids=["undefined", "defined"])
def test_template_errors_point_at_original_lines(make, defines):
    root = make({POLICY: None, "einit/src/security.psl.in": PSL_IN})
    sol = solve(root, defines=defines)
    src = "einit/src/security.psl.in"
    expect(sol, "PSL001", "error", root, src, pos_of(PSL_IN, "echo.Clint"))
    if defines:
        assert "PSL003" not in codes(sol)
    else:
        expect(sol, "PSL003", "error", root, src, pos_of(PSL_IN, "Pong"))
    info = [f for f in sol.files if f.path.endswith("security.psl.in")]
    assert info and info[0].templated


def test_init_yaml_template_errors_point_at_original_lines(make):
    init = ("entities:\n{% if EXTRA %}\n  - name: echo.Extra\n{% endif %}\n"
            + ECHO_INIT.split("\n", 1)[1].replace("target: echo.Server", "target: echo.Srv"))
    root = make({INIT: None, "einit/src/init.yaml.in": init})
    sol = solve(root)
    hits = of(sol, "SOL001")
    assert hits and rel_file(hits[0].span, root) == "einit/src/init.yaml.in"
    assert hits[0].span.line == pos_of(init, "target: echo.Srv")[0]


# --------------------------------------------------------------------------- the policy the build compiles
_CMAKE_ONE = 'set (SECURITY_PSL_FILE "src/board.psl")\nbuild_kos_qemu_image (kos-qemu-image SECURITY_PSL ${SECURITY_PSL_FILE})\n'
_CMAKE_TWO = ('if (ARM)\n  set (SECURITY_PSL_FILE "src/security_arm.psl")\nelse ()\n'
              '  set (SECURITY_PSL_FILE "src/security_x86.psl")\nendif ()\n')


def test_inc011_fires_when_the_build_compiles_another_policy(make):
    text = policy("")
    root = make({"einit/src/board.psl": "use security._\n", "einit/CMakeLists.txt": _CMAKE_ONE, POLICY: text})
    sol = solve(root)
    d = next(d for d in sol.diagnostics if d.code == "INC011")
    assert d.severity.value == "note" and "board.psl" in d.message
    assert sol.policy.endswith("board.psl")


def test_inc011_quiet_when_the_build_compiles_security_psl(make):
    root = make({"einit/CMakeLists.txt": 'SECURITY_PSL "src/security.psl"\n'})
    sol = solve(root)
    quiet(sol, "INC011")
    quiet(sol, "INC012")
    assert sol.policy.endswith("security.psl")


def test_inc012_fires_when_the_build_chooses_among_several_policies(make):
    root = make({"einit/src/security_arm.psl": "use security._\n", "einit/src/security_x86.psl": "use security._\n",
                 "einit/CMakeLists.txt": _CMAKE_TWO})
    sol = solve(root)
    d = next(d for d in sol.diagnostics if d.code == "INC012")
    assert "security_arm.psl" in d.message and "security_x86.psl" in d.message
    assert sol.policy.endswith("security.psl")


def test_inc012_quiet_without_a_build_file(make):
    sol = solve(make({}))
    quiet(sol, "INC012")


def test_an_init_named_after_its_policy_is_found_beside_it(tmp_path):
    """Projects that build several images pair ``sim_offline.psl.in`` with
    ``sim_offline.yaml.in`` in one folder; with no init.yaml, that pair is used."""
    import shutil

    from policy_lang import load

    root = tmp_path / "echo"
    shutil.copytree(Path(__file__).resolve().parents[1] / "models" / "echo", root)
    src = root / "einit" / "src"
    (src / "security.psl").rename(src / "sim_offline.psl")
    (src / "init.yaml").rename(src / "sim_offline.yaml")
    sol = load(src / "sim_offline.psl")
    assert not [d for d in sol.diagnostics if d.code == "INC006"]
    original = load(Path(__file__).resolve().parents[1] / "models" / "echo")
    assert [(i.task, i.cls) for i in sol.instances] == [(i.task, i.cls) for i in original.instances]
    (src / "sim_offline.yaml").rename(src / "other.yaml")
    assert [d for d in load(src / "sim_offline.psl").diagnostics if d.code == "INC006"]
