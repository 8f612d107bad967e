"""The command line's conventions (docs/cli.md): pipes, encodings, exit codes, settings,
JSON, progress, verify's failure details, and no internal error on any argument."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ksm.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parent.parent
ECHO = str(ROOT / "models" / "echo")
KSM = [sys.executable, "-m", "ksm"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ksm_process(*argv, env=None, **kw):
    return subprocess.run(KSM + list(argv), capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, **(env or {})}, **kw)


# ----------------------------------------------------------------------------- pipes and encodings

@pytest.mark.parametrize("argv", [
    ["codes"], ["lint", "--list-rules"], ["check", "models/echo", "--format", "json", "--dump"],
    ["graph", "models/echo", "--format", "json"], ["flows", "models/smart_lock", "--matrix"],
    ["simulate", "models/echo"],
])
def test_a_closed_pipe_is_not_an_internal_error(argv):
    """`ksm codes | head -1`: the reader goes away; ksm finishes with its own status, silently."""
    proc = subprocess.Popen(KSM + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.close()                          # as `head` does once it has its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 1), err
    assert "Traceback" not in err and "internal error" not in err and "BrokenPipe" not in err, err


def test_an_ascii_terminal_gets_escapes_not_an_encoding_error():
    proc = ksm_process("verify", "models/echo", env={"PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "verify" in proc.stdout


def test_version(capsys):
    from ksm import __version__

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"ksm {__version__}"


# ----------------------------------------------------------------------------- usage errors (2), never 3

@pytest.mark.parametrize("argv", [
    ["lint", ECHO, "--timeout", "0"],
    ["lint", ECHO, "--timeout", "-1"],
    ["prove", ECHO, "--timeout", "nan"],
    ["diff", ECHO, ECHO, "--timeout", "-3"],
    ["lint", ECHO, "--select", "LNT1O"],
    ["lint", ECHO, "--disable", "NOPE"],
    ["lint", ECHO, "--select", ","],
    ["lint", ECHO, "--timeout-ms", "500"],
    ["prove", ECHO, "--only", "nope"],
    ["check", str(ROOT / "no" / "such" / "folder")],
    ["check", ECHO, "--init", "/no/such/init.yaml"],
    ["check", ECHO, "-I", "/no/such/dir"],
    ["prove", ECHO, "--props", "/no/such.props"],
    ["diff", ECHO, "/no/such/new"],
    ["simulate", ECHO, "--scenario", "/no/such.yaml"],
    ["crosscheck", ECHO, "--events", "9" * 5000],
    ["decide", ECHO, "--event", "[" * 50_000],
    ["decide", ECHO, "--event", '{"kind": null}'],
    ["decide", ECHO, "--event", '{"kind": "request", "message": 3}'],
    ["decide", ECHO, "--event", '{"kind": "request", "colour": 1}'],
    ["decide", ECHO, "--event", "@/dev/zero"],
    ["check", ECHO, "--defines", "/dev/zero"],
])
def test_bad_arguments_are_usage_errors(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert "internal error" not in err and "Traceback" not in err


def test_a_baseline_in_a_missing_folder_is_a_usage_error(capsys, tmp_path):
    code, _, err = run(capsys, "lint", ECHO, "--write-baseline", str(tmp_path / "no" / "dir" / "b.json"))
    assert code == 2 and "cannot write" in err


def test_a_huge_number_in_an_event_is_out_of_range(capsys):
    event = {"kind": "request", "src": "echo.Client", "dst": "echo.Server", "endpoint": "pingComp.pingImpl",
             "method": "Ping", "message": {"value": 0}}
    text = json.dumps(event).replace('"value": 0', '"value": ' + "9" * 5000)
    code, out, err = run(capsys, "decide", ECHO, "--event", text)
    assert code == 1 and "out of range" in out and "internal" not in out + err


def test_event_from_a_file(capsys, tmp_path):
    f = tmp_path / "e.json"
    f.write_text(json.dumps({"kind": "request", "src": "echo.Client", "dst": "echo.Server",
                             "endpoint": "pingComp.pingImpl", "method": "Ping", "message": {"value": 7}}))
    code, out, _ = run(capsys, "decide", ECHO, "--event", f"@{f}")
    assert code == 0 and out.startswith("GRANTED")


# ----------------------------------------------------------------------------- settings (ksm.toml)

def _echo_copy(tmp_path: Path, settings: str | None = None, name: str = "ksm.toml") -> Path:
    sol = tmp_path / "echo"
    shutil.copytree(ECHO, sol)
    if settings is not None:
        (sol / name).write_text(settings)
    return sol


def test_settings_give_the_showcase_its_template_values(capsys):
    assert run(capsys, "check", "models/showcase")[0] == 0
    code, out, _ = run(capsys, "check", "models/showcase", "--no-config", "--no-excerpt")
    assert code == 1 and "TPL001" in out


def test_template_diagnostic_comes_before_the_errors_it_causes(capsys):
    code, out, _ = run(capsys, "check", str(ROOT / "models" / "showcase"), "--no-config", "--no-excerpt")
    text = (ROOT / "models/showcase/einit/src/security.psl.in").read_text().splitlines()
    where = next(i for i, line in enumerate(text, 1) if "{{ MAX_LEVEL }}" in line)
    lines = [line for line in out.splitlines() if f":{where}:" in line]
    assert "TPL002" in lines[0] and "SYN001" in lines[1], lines


def test_command_line_wins_over_settings(capsys, tmp_path):
    sol = _echo_copy(tmp_path, '[prove]\nonly = ["nope"]\n')
    code, _, err = run(capsys, "prove", str(sol))
    assert code == 2 and "--only nope" in err                  # the file's value is used...
    code, out, _ = run(capsys, "prove", str(sol), "--only", "ping_is_bounded")
    assert code == 0 and "ping_is_bounded" in out               # ...and the command line wins


def test_solution_settings_reach_every_command(capsys, tmp_path):
    sol = _echo_copy(tmp_path, '[solution]\ninit = "no-such-init.yaml"\n')
    for argv in (["check", str(sol)], ["test", str(sol)], ["lint", str(sol)]):
        code, out, err = run(capsys, *argv)
        assert code == 1 and "no-such-init.yaml" in out + err, argv


@pytest.mark.parametrize("text,where", [
    ('[solution]\ndefine = { A = "1" }\n', "solution.define"),
    ("[prove]\ntimout = 3\n", "prove.timout"),
    ('[prove]\ndepth = "deep"\n', "prove.depth"),
    ("[prove]\ntimeout = -1\n", "prove.timeout"),
    ('[verify]\nskip = ["lnt"]\n', "verify.skip"),
    ("[proves]\nx = 1\n", "proves"),
    ('[check]\ninit = "x"\n', "check.init"),
    ("[lint]\nselect = [\"LNT1O\"]\n", "LNT1O"),
])
def test_a_mistake_in_the_settings_is_a_usage_error(capsys, tmp_path, text, where):
    sol = _echo_copy(tmp_path, text)
    code, _, err = run(capsys, "check", str(sol))
    assert code == 2 and where in err and "ksm.toml:" in err, err
    assert run(capsys, "check", str(sol), "--no-config")[0] == 0


def test_pyproject_tool_ksm_tables(capsys, tmp_path):
    sol = _echo_copy(tmp_path, '[project]\nname = "x"\n[tool.ksm.prove]\nonly = ["nope"]\n', "pyproject.toml")
    code, _, err = run(capsys, "prove", str(sol))
    assert code == 2 and "--only nope" in err


def test_settings_file_that_is_not_a_file(capsys):
    code, _, err = run(capsys, "check", ECHO, "--config", "/dev/zero")
    assert code == 2 and "CFG004" in err


# ----------------------------------------------------------------------------- JSON, --output, progress

@pytest.mark.parametrize("argv,schema", [
    (["check", ECHO, "--format", "json"], "ksm-check/1"),
    (["test", ECHO, "--format", "json"], "ksm-test/1"),
    (["crosscheck", ECHO, "--events", "20", "--walk", "0", "--format", "json"], "ksm-crosscheck/1"),
    (["codes", "--format", "json"], "ksm-codes/1"),
    (["lint", ECHO, "--format", "json"], "ksm-lint/1"),
])
def test_json_documents_name_their_schema(capsys, argv, schema):
    code, out, _ = run(capsys, *argv)
    assert code == 0 and json.loads(out)["schema"] == schema


def test_output_file_instead_of_stdout(capsys, tmp_path):
    target = tmp_path / "report.json"
    code, out, _ = run(capsys, "check", ECHO, "--format", "json", "--output", str(target))
    assert code == 0 and out == "" and json.loads(target.read_text())["ok"] is True


def test_progress_only_on_a_terminal(capsys, monkeypatch):
    from io import StringIO

    from rich.console import Console

    from ksm.cli import progress

    monkeypatch.delenv("KSM_PROGRESS", raising=False)
    assert run(capsys, "verify", ECHO)[2] == ""                  # a pipe: nothing added on stderr
    monkeypatch.setenv("KSM_PROGRESS", "1")
    buffer = StringIO()
    progress.use(Console(file=buffer, force_terminal=True, width=100))
    try:
        assert run(capsys, "verify", ECHO)[0] == 0
    finally:
        progress.use(None)
    assert "verifying" in buffer.getvalue()


# ----------------------------------------------------------------------------- verify shows what failed

def test_verify_lists_what_failed_and_how_to_see_the_rest(capsys):
    code, out, _ = run(capsys, "verify", "models/smart_lock_flawed", "--show", "1", "--skip", "lint")
    assert code == 1
    assert "prove: what failed" in out and "counterexample" in out
    assert "run `ksm prove models/smart_lock_flawed`" in out
    code, out, _ = run(capsys, "verify", "models/smart_lock_flawed", "--format", "json", "--skip", "lint")
    stage = {s["name"]: s for s in json.loads(out)["stages"]}["prove"]
    assert stage["status"] == "failed" and stage["problems"] and stage["rerun"].startswith("ksm prove")


def test_verify_lists_check_errors(capsys, tmp_path):
    sol = _echo_copy(tmp_path)
    psl = sol / "einit" / "src" / "security.psl"
    psl.write_text(psl.read_text().replace("method=Ping", "method=Pong", 1))
    code, out, _ = run(capsys, "verify", str(sol))
    assert code == 1 and "check: what failed" in out and "PSL003" in out


# ----------------------------------------------------------------------------- any argument: never 3

_FIFO_DIR = None


def _fifo() -> str:
    global _FIFO_DIR
    import tempfile

    if _FIFO_DIR is None:
        _FIFO_DIR = tempfile.mkdtemp()
        os.mkfifo(os.path.join(_FIFO_DIR, "fifo"))
    return os.path.join(_FIFO_DIR, "fifo")


_VALUES = st.sampled_from(["0", "-1", "1", "0.001", "nan", "inf", "9" * 5000, "", "x", "LNT001", "LNT1O",
                           "/dev/zero", "/dev/null", "/no/such", ECHO, "A=1", "=", "{}", "[]",
                           '{"kind": "execute", "dst": "echo.Client"}', "\u00e9\u2713", "--", "-"])
_WRITES = {"--output", "--trace", "--chrome", "--junit", "--sarif", "--write-baseline"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(sorted(COMMANDS)),
       options=st.lists(st.tuples(st.integers(0, 99), st.one_of(_VALUES, st.just("FIFO"))), max_size=4),
       target=st.sampled_from([ECHO, "/dev/zero", "FIFO", "/no/such", ECHO + "/einit/src/security.psl",
                               "load", "decide", "lint"]))
def test_any_arguments_never_reach_an_internal_error(capsys, monkeypatch, command, options, target):
    """Random options with random values (huge numbers, devices, FIFOs, missing paths)
    on every subcommand: exit 0, 1 or 2, never 3, no traceback, bounded time."""
    import tempfile

    from ksm.cli import build_parser

    monkeypatch.chdir(tempfile.gettempdir())    # reports named "0" or "{}" land there, not in the checkout
    sub = build_parser()._ksm_subparsers[command]
    flags = [o for a in sub._actions for o in a.option_strings if o not in ("-h", "--help")]
    argv = [command]
    if any(not a.option_strings for a in sub._actions):
        argv.append(_fifo() if target == "FIFO" else target)
    for index, value in options:
        if flags:
            flag = flags[index % len(flags)]
            if value == "FIFO":   # writing into a FIFO nobody reads blocks, as with any Unix tool
                value = "/dev/null" if flag in _WRITES else _fifo()
            argv += [flag, value]
    argv += ["--timeout", "1"] if "--timeout" in flags else []
    if command == "bench":     # a real benchmark, kept small: the last value of an option wins
        argv[1:2] = [str(target) if target in ("load", "decide", "lint") else "load"]
        argv += ["--lines", "100", "--repeat", "1", "--bindings", "20"]
    start = time.monotonic()
    code = main(argv)
    _, err = capsys.readouterr()
    assert code in (0, 1, 2), (argv, err)
    assert "Traceback" not in err and "internal error" not in err, (argv, err)
    assert time.monotonic() - start < 60, argv


# ----------------------------------------------------------------------------- simulator inputs

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("option", ["--behaviours", "--replay", "--scenario"])
def test_simulator_inputs_that_are_not_files(capsys, option):
    for target in ("/dev/zero", _fifo()):
        code, _, err = run(capsys, "simulate", ECHO, option, target)
        assert code == 1 and "not a regular file" in err, err


def test_replaying_a_huge_number_is_a_denial_not_a_crash(capsys, tmp_path):
    cex = {"results": [{"name": "p", "status": "REFUTED", "counterexample": {"setup": [], "steps": [
        {"kind": "request", "src": "echo.Client", "dst": "echo.Server", "endpoint": "pingComp.pingImpl",
         "method": "Ping", "message": {"value": 0}, "expect": "granted"}]}}]}
    f = tmp_path / "cex.json"
    f.write_text(json.dumps(cex).replace('"value": 0', '"value": ' + "9" * 5000))
    code, out, err = run(capsys, "simulate", ECHO, "--replay", str(f))
    assert code == 1 and "internal error" not in err and "Traceback" not in err, err


# ----------------------------------------------------------------------------- the README tour

def _tour() -> list[str]:
    import re

    text = (ROOT / "README.md").read_text()
    block = text.split("## 30-second tour", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines() if line.startswith("ksm ")]


@pytest.mark.parametrize("line", [t for t in _tour() if "path/to" not in t and "old/" not in t
                                  and " prove " not in t and "verify" not in t and "crosscheck" not in t])
def test_readme_tour_commands_work(capsys, monkeypatch, tmp_path, line):
    """Each tour line runs as written (slow proof lines are covered by their own tests)."""
    import shlex

    monkeypatch.chdir(ROOT)
    argv = shlex.split(line)[1:]
    if "--output" in argv:
        argv[argv.index("--output") + 1] = str(tmp_path / "out")
    if "--sarif" in argv:
        argv[argv.index("--sarif") + 1] = str(tmp_path / "out.sarif")
    expected = (0, 1) if "flawed" in line else (0,)
    assert main(argv) in expected, line
