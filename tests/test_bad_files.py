"""Bad input files never hang, eat memory or reach an internal error.

Two classes of user files used to do so:

* non-regular files (``/dev/zero``, ``/dev/urandom``, a FIFO) given as an input or
  lying in a solution: SRC004 was found, then the excerpt printer (or another
  reader) opened the stream and read it without end, or blocked on the FIFO;
* integer literals of more than 4,300 digits (policy, PAL test, property file,
  scenario YAML, a ``-D`` value put into the policy): Python's ``int()`` refused
  them with a bare ValueError, which surfaced as exit 3.

Every case must end quickly with exit 1 or 2, its diagnostic code, and no traceback
or "internal error".  The file and device cases run the CLI in a subprocess with a
timeout and an address-space limit, so a regression fails the test instead of
hanging it or filling the machine's memory; the integer cases run in-process.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ksm.cli import main
from policy_lang import source as source_mod
from policy_lang.literals import MAX_INT_BITS, oversized_int_digits
from policy_lang.regex_dialect import pattern_problem
from policy_lang.source import UserFileError, read_user_text

ROOT = Path(__file__).resolve().parent.parent
ECHO = ROOT / "models" / "echo"
TIMEOUT = 20            # seconds; a healthy run of any case below takes one or two
MEMORY = 3 << 30        # bytes of address space a subprocess may use: far above a healthy run

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="os.mkfifo is not available")
needs_dev = pytest.mark.skipif(not (os.path.exists("/dev/zero") and os.path.exists("/dev/urandom")),
                               reason="no /dev/zero or /dev/urandom")

_RUN_CLI = "import sys; from ksm.cli import main; sys.exit(main(sys.argv[1:]))"


def _limit_memory() -> None:   # pragma: no cover - runs in the child
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def ksm_subprocess(*args: str) -> tuple[int, str]:
    """Run the CLI in a child that cannot hang the suite or eat the machine's memory."""
    env = {k: v for k, v in os.environ.items() if k != "KSM_DEBUG"}
    start = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", _RUN_CLI, *args], capture_output=True, text=True,
                              timeout=TIMEOUT, env=env, stdin=subprocess.DEVNULL, cwd=ROOT,
                              preexec_fn=_limit_memory if os.name == "posix" else None)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ksm {' '.join(args)} did not finish in {TIMEOUT} s (reading a stream or blocked on a FIFO?)")
    assert time.monotonic() - start < TIMEOUT
    return done.returncode, done.stdout + done.stderr


def ksm_inprocess(capsys, *args: str) -> tuple[int, str]:
    start = time.monotonic()
    code = main(list(args))
    elapsed = time.monotonic() - start
    out, err = capsys.readouterr()
    assert elapsed < TIMEOUT, f"ksm {args[0]} took {elapsed:.1f} s"
    return code, out + err


def assert_diagnosed(code: int, output: str, diag: str) -> None:
    """The user-visible contract: exit 1 or 2, the code shown, no crash."""
    assert "Traceback" not in output, output[-3000:]
    assert "internal error" not in output, output[-3000:]
    assert code in (1, 2), (code, output[-3000:])
    assert f"[{diag}]" in output, output[-3000:]


@pytest.fixture
def echo(tmp_path: Path) -> Path:
    """A private copy of models/echo to break."""
    dst = tmp_path / "echo"
    shutil.copytree(ECHO, dst)
    return dst


def _fifo(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


# ----------------------------------------------------------------------------- non-regular files

@needs_dev
def test_dev_zero_as_init_is_src004(echo):
    code, out = ksm_subprocess("check", str(echo), "--init", "/dev/zero")
    assert_diagnosed(code, out, "SRC004")
    assert "/dev/zero" in out


@needs_dev
def test_dev_urandom_as_props_is_src004(echo):
    code, out = ksm_subprocess("prove", str(echo), "--props", "/dev/urandom")
    assert_diagnosed(code, out, "SRC004")


@needs_dev
def test_dev_zero_as_scenario_is_src004(echo):
    code, out = ksm_subprocess("simulate", str(echo), "--scenario", "/dev/zero")
    assert_diagnosed(code, out, "SRC004")


@needs_dev
def test_dev_zero_as_baseline_is_bas001(echo):
    code, out = ksm_subprocess("lint", str(echo), "--baseline", "/dev/zero")
    assert_diagnosed(code, out, "BAS001")


@needs_fifo
@pytest.mark.parametrize("how", ["folder", "file"])
def test_fifo_as_security_psl_is_src004(echo, how):
    fifo = _fifo(echo / "einit" / "src" / "security.psl")
    code, out = ksm_subprocess("check", str(echo if how == "folder" else fifo))
    assert_diagnosed(code, out, "SRC004")
    assert "security.psl" in out


@needs_fifo
@pytest.mark.parametrize("command", ["check", "test", "lint"])
def test_fifo_idl_in_the_solution_is_src004(echo, command):
    _fifo(echo / "resources" / "idl" / "Extra.idl")
    code, out = ksm_subprocess(command, str(echo))
    assert_diagnosed(code, out, "SRC004")
    assert "Extra.idl" in out


@needs_fifo
@pytest.mark.parametrize("name", ["resources/edl/Extra.edl", "resources/cdl/Extra.cdl"])
def test_fifo_component_file_is_src004(echo, name):
    _fifo(echo / name)
    code, out = ksm_subprocess("lint", str(echo))
    assert_diagnosed(code, out, "SRC004")


@needs_fifo
@pytest.mark.parametrize("command", ["test", "lint"])
def test_fifo_init_yaml_is_src004_not_a_missing_file(echo, command):
    _fifo(echo / "einit" / "src" / "init.yaml")
    code, out = ksm_subprocess(command, str(echo))
    assert_diagnosed(code, out, "SRC004")
    assert "INC006" not in out            # the file is there: it is unreadable, not missing


@needs_fifo
def test_fifo_included_policy_is_src004_at_the_use_line(echo):
    policy = echo / "einit" / "src" / "security.psl"
    policy.write_text(policy.read_text().replace("use nk.basic._", "use nk.basic._\nuse parts.extra._", 1))
    (echo / "einit" / "src" / "parts").mkdir()
    _fifo(echo / "einit" / "src" / "parts" / "extra.psl")
    code, out = ksm_subprocess("check", str(echo))
    assert_diagnosed(code, out, "SRC004")
    assert "security.psl:11:1" in out


@needs_fifo
@pytest.mark.parametrize("option, diag", [("--props", "SRC004"), ("--scenario", "SRC004"), ("--baseline", "BAS001")])
def test_fifo_named_as_an_input_file(echo, tmp_path, option, diag):
    fifo = _fifo(tmp_path / "input")
    command = {"--props": "prove", "--scenario": "simulate", "--baseline": "lint"}[option]
    code, out = ksm_subprocess(command, str(echo), option, str(fifo))
    assert_diagnosed(code, out, diag)


@needs_fifo
def test_fifo_props_file_in_the_solution_is_src004(echo):
    _fifo(echo / "einit" / "src" / "extra.props")
    code, out = ksm_subprocess("prove", str(echo))
    assert_diagnosed(code, out, "SRC004")


# ----------------------------------------------------------------------------- the shared reader

@needs_fifo
def test_reader_refuses_a_fifo_without_opening_it(tmp_path):
    # No writer ever opens the FIFO: an open() for reading would block this test forever.
    fifo = _fifo(tmp_path / "pipe.psl")
    with pytest.raises(UserFileError) as info:
        read_user_text(fifo)
    assert info.value.code == "SRC004" and "FIFO" in info.value.message("pipe.psl")


def test_reader_refuses_a_folder_and_reports_a_missing_file(tmp_path):
    with pytest.raises(UserFileError) as info:
        read_user_text(tmp_path)
    assert info.value.code == "SRC004"
    with pytest.raises(UserFileError) as info:
        read_user_text(tmp_path / "nope.psl")
    assert info.value.code == "SRC001"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 300), limit=st.integers(0, 300))
def test_reader_size_cap(tmp_path, monkeypatch, size, limit):
    path = tmp_path / "f.psl"
    path.write_bytes(b"x" * size)
    monkeypatch.setattr(source_mod, "MAX_FILE_BYTES", limit)
    if size <= limit:
        assert read_user_text(path) == "x" * size
    else:
        with pytest.raises(UserFileError) as info:
            read_user_text(path)
        assert info.value.code == "SRC002"


def test_excerpt_of_an_oversized_file_is_left_out(echo, monkeypatch, capsys):
    """Files over the cap are SRC002 and get no excerpt: the printer uses the same reader."""
    monkeypatch.setattr(source_mod, "MAX_FILE_BYTES", 100)     # every file of the echo model is larger
    code, out = ksm_inprocess(capsys, "check", str(echo))
    assert_diagnosed(code, out, "SRC002")
    assert not re.search(r"^ +\d+ \| ", out, re.MULTILINE), out      # an excerpt line: "     1 | text"


# ----------------------------------------------------------------------------- huge integer literals

def _literal(digits: int, hexadecimal: bool) -> str:
    return ("0x" + "f" * digits) if hexadecimal else "9" + "1" * (digits - 1)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _position(path: Path, needle: str) -> str:
    """``file:line:col`` of ``needle`` as the diagnostics print it (1-based)."""
    text = path.read_text()
    at = text.index(needle)
    line = text.count("\n", 0, at) + 1
    return f":{line}:{at - (text.rfind(chr(10), 0, at) + 1) + 1}:"


def _huge_int_case(echo: Path, context: str, literal: str) -> tuple[list[str], str, str]:
    """(ksm arguments, expected code, expected position) with ``literal`` put into ``context``."""
    src = echo / "einit" / "src"
    if context == "policy":
        _edit(src / "security.psl", "message.value <= 1000)", f"message.value <= {literal})")
        return ["check", str(echo)], "SYN113", _position(src / "security.psl", literal)
    if context == "pal":
        _edit(src / "security.psl", "{ value : 1001 }", f"{{ value : {literal} }}")
        return ["test", str(echo)], "SYN113", _position(src / "security.psl", literal)
    if context == "props":
        _edit(src / "echo.props", "message.value > 1000", f"message.value > {literal}")
        return ["prove", str(echo)], "PRP005", _position(src / "echo.props", literal)
    if context == "scenario":
        scenario = echo / "sim" / "ping.yaml"
        _edit(scenario, "{value: 5000}", f"{{value: {literal}}}")
        return ["simulate", str(echo), "--scenario", str(scenario)], "SIM002", _position(scenario, literal)
    if context == "define":
        (src / "security.psl").rename(src / "security.psl.in")
        _edit(src / "security.psl.in", "message.value <= 1000)", "message.value <= @LIMIT@)")
        return ["check", str(echo), "-D", f"LIMIT={literal}"], "SYN113", _position(src / "security.psl.in", "@LIMIT@")
    raise AssertionError(context)


CONTEXTS = ["policy", "pal", "props", "scenario", "define"]


@pytest.mark.parametrize("context", CONTEXTS)
def test_5000_digit_literal_is_a_diagnostic(echo, capsys, monkeypatch, context):
    monkeypatch.delenv("KSM_DEBUG", raising=False)
    args, diag, where = _huge_int_case(echo, context, _literal(5000, hexadecimal=False))
    code, out = ksm_inprocess(capsys, *args)
    assert_diagnosed(code, out, diag)
    assert f"{where} error[{diag}]: integer literal out of range: 5000 digits" in out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(context=st.sampled_from(CONTEXTS), digits=st.integers(40, 12_000), hexadecimal=st.booleans())
def test_any_overlong_literal_is_a_diagnostic(tmp_path_factory, capsys, context, digits, hexadecimal):
    echo = tmp_path_factory.mktemp("m") / "echo"
    shutil.copytree(ECHO, echo)
    args, diag, where = _huge_int_case(echo, context, _literal(digits, hexadecimal))
    code, out = ksm_inprocess(capsys, *args)
    assert_diagnosed(code, out, diag)
    assert f"{where} error[{diag}]: integer literal out of range: {digits} digits" in out


def test_leading_zeros_do_not_make_a_literal_long(echo, capsys):
    """0000…0100 is 100: within range, whatever Python's digit limit says about the zeros."""
    _edit(echo / "einit" / "src" / "security.psl", "{ value : 100 }", "{ value : " + "0" * 6000 + "100 }")
    code, out = ksm_inprocess(capsys, "test", str(echo))
    assert code == 0 and "Traceback" not in out and "SYN113" not in out


def test_huge_count_in_a_baseline_is_bas001(echo, tmp_path, capsys):
    baseline = tmp_path / "baseline.json"
    baseline.write_text('{"version": 1, "tool": "ksm", "findings": [{"code": "X", "file": "f", "message": "m",\n'
                        '  "count": ' + "1" * 5000 + "}]}\n")
    code, out = ksm_inprocess(capsys, "lint", str(echo), "--baseline", str(baseline))
    assert_diagnosed(code, out, "BAS001")
    assert ":2:12: error[BAS001]: integer literal out of range: 5000 digits" in out


@pytest.mark.parametrize("pattern", ["a{" + "9" * 5000 + "}", "a{1," + "9" * 5000 + "}"])
def test_huge_regex_repetition_count_is_a_pattern_problem(pattern):
    assert "repetition count too large" in (pattern_problem(pattern) or "")


@given(st.sampled_from([(10, "", "0123456789"), (16, "0x", "0123456789abcdef"), (8, "0o", "01234567"),
                        (2, "0b", "01")]).flatmap(
    lambda b: st.tuples(st.just(b), st.text(alphabet=b[2], min_size=1, max_size=1300))))
def test_oversized_means_beyond_the_bit_limit(case):
    """What is refused cannot fit in MAX_INT_BITS bits; what is let through converts."""
    (base, prefix, _), digits = case
    value = int(digits, base)            # at most 1,300 digits: under Python's own limit
    refused = oversized_int_digits(prefix + digits)
    if refused is not None:
        assert value >= 1 << MAX_INT_BITS
        assert refused == len(digits.lstrip("0"))
    elif base == 10:
        assert len(digits.lstrip("0")) <= 39
    else:
        assert value < 1 << (MAX_INT_BITS + 4)
