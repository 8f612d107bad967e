"""Shell completion scripts (ksm.completion): valid syntax in each shell, and completions that a
person pressing TAB would get, driven through the real shells where they are installed."""
import argparse
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from ksm.cli import build_parser
from ksm.completion import SHELLS, completion_script

# Characters special to one shell or another, all in one help string.
NASTY = "don't `rm` $HOME [now]: \"quoted\" \\ (x) 100%% sure; a|b &c"
ODD = ["it's", "$HOME", "a:b", "`x`", "[y]", "(p)"]


def toy_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ksm")
    p.add_argument("-C", metavar="DIR", help="run as if started in DIR")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help=NASTY)
    c.add_argument("solution", nargs="?", help="solution folder or top-level .psl")
    c.add_argument("--init", metavar="FILE", help=NASTY)
    c.add_argument("-I", "--include", metavar="DIR", action="append", help="include folder (repeatable)")
    c.add_argument("-D", dest="define", metavar="NAME=VALUE", action="append", help="a value (repeatable)")
    c.add_argument("--format", choices=["text", "json"], help="report format ('text' or 'json')")
    c.add_argument("--odd", choices=ODD, help=NASTY)
    c.add_argument("--behaviours", metavar="MODULE.py")
    c.add_argument("-v", "--verbose", action="count", help="say more (repeatable)")
    lint = sub.add_parser("lint", aliases=["li"], help="lint it")
    lint.add_argument("--format", choices=["text", "json", "sarif"])
    bench = sub.add_parser("bench", help="measure")
    bench.add_argument("what", choices=["load", "check"])
    sub.add_parser("secret", help=argparse.SUPPRESS)
    return p


PARSERS = {"toy": toy_parser, "real": build_parser}
HELP = NASTY.replace("%%", "%")  # as argparse's --help shows it


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return parser._option_string_actions[flag]


def bash_complete(script: str, line: str, cwd: Path | None = None) -> list[str]:
    """COMPREPLY for the command line `line` (cursor at its end), as bash's TAB computes it."""
    words = line.split(" ")
    if line.endswith("="):  # bash splits --opt=value at the '=' (COMP_WORDBREAKS)
        words = line[:-1].split(" ") + ["="]
    elif "=" in words[-1]:
        words = words[:-1] + [words[-1].split("=")[0], "=", words[-1].split("=", 1)[1]]
    driver = (f"{script}\nCOMP_WORDS=({' '.join(map(shlex.quote, words))}); COMP_CWORD={len(words) - 1}\n"
              f"COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}\n"
              '_ksm ksm; for w in "${COMPREPLY[@]}"; do printf "%s\\n" "$w"; done\n')
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", driver], capture_output=True,
                       text=True, cwd=cwd, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def bash_files(script: str, line: str, cwd: Path) -> list[str]:
    return sorted(bash_complete(script, line, cwd))  # compgen lists a folder in its own order


def fish_complete(script: Path, line: str, cwd: Path | None = None) -> dict[str, str]:
    """{completion: description} that fish offers for `line`."""
    cmd = f"source {shlex.quote(str(script))}; complete -C{shlex.quote(line)}"
    r = subprocess.run(["fish", "--no-config", "-c", cmd], capture_output=True, text=True,
                       cwd=cwd, timeout=30)
    assert r.returncode == 0, r.stderr
    return dict((ln.split("\t", 1) + [""])[:2] for ln in r.stdout.splitlines())


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "init.yaml").write_text("")
    (tmp_path / "include").mkdir()
    return tmp_path


def test_unknown_shell_is_a_value_error():
    with pytest.raises(ValueError, match="powershell"):
        completion_script(toy_parser(), "powershell")


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("which", PARSERS)
def test_deterministic(which, shell):
    assert completion_script(PARSERS[which](), shell) == completion_script(PARSERS[which](), shell)


@pytest.mark.parametrize("which", PARSERS)
@pytest.mark.parametrize("shell,check", [("bash", ["bash", "-n"]), ("zsh", ["zsh", "-n"]),
                                         ("fish", ["fish", "--no-execute"])])
def test_syntax_is_valid(which, shell, check, tmp_path):
    if not shutil.which(check[0]):
        pytest.skip(f"{check[0]} is not installed")
    path = tmp_path / f"ksm.{shell}"
    path.write_text(completion_script(PARSERS[which](), shell))
    r = subprocess.run(check + [str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and not r.stderr, r.stderr


def test_every_real_subcommand_is_in_every_script():
    parser = build_parser()
    names = list(subparsers(parser))
    assert bash_complete(completion_script(parser, "bash"), "ksm ") == names
    zsh, fish = completion_script(parser, "zsh"), completion_script(parser, "fish")
    for name in names:
        assert re.search(rf"^ +'?{re.escape(name)}:", zsh, re.M), name  # _describe
        assert re.search(rf"^ +\({re.escape(name)}\)$", zsh, re.M), name  # its _arguments
        assert f"-n __fish_use_subcommand -a {name} " in fish, name
        assert re.search(rf"'__fish_seen_subcommand_from {re.escape(name)}[;']", fish), name


def test_bash_real_parser():
    parser = build_parser()
    script = completion_script(parser, "bash")
    assert "check" in bash_complete(script, "ksm ch")
    assert bash_complete(script, "ksm ch") == [n for n in subparsers(parser) if n.startswith("ch")]
    formats = list(option(subparsers(parser)["lint"], "--format").choices)
    assert {"text", "json", "sarif"} <= set(formats)
    assert bash_complete(script, "ksm lint --format ") == formats
    assert bash_complete(script, "ksm lint --format=") == formats
    assert bash_complete(script, "ksm lint --format=sa") == ["sarif"]
    check = subparsers(parser)["check"]
    got = bash_complete(script, "ksm check --i")
    assert "--init" in got
    assert sorted(got) == sorted(f for f in check._option_string_actions if f.startswith("--i"))
    if "-I" in check._option_string_actions:  # the include option, whatever its long name
        assert "-I" in bash_complete(script, "ksm check -")


def test_bash_toy_parser(files):
    script = completion_script(toy_parser(), "bash")
    assert bash_complete(script, "ksm ") == ["check", "lint", "li", "bench"]  # not the hidden one
    assert bash_complete(script, "ksm -C somewhere ch") == ["check"]  # -C's value is no subcommand
    assert bash_complete(script, "ksm -") == ["-h", "--help", "-C"]
    assert bash_complete(script, "ksm check --odd ") == ODD  # taken literally, nothing expanded
    assert bash_complete(script, "ksm check --odd $") == ["$HOME"]
    assert bash_complete(script, "ksm check --odd `") == ["`x`"]
    assert bash_complete(script, "ksm li --f") == ["--format"]
    assert bash_complete(script, "ksm bench ") == ["load", "check"]
    assert bash_complete(script, "ksm check -D ", files) == []  # NAME=VALUE is not a file
    assert bash_files(script, "ksm check --init i", files) == ["include", "init.yaml"]
    assert bash_files(script, "ksm check --behaviours i", files) == ["include", "init.yaml"]
    assert bash_files(script, "ksm check ", files) == ["include", "init.yaml"]
    assert bash_files(script, "ksm check -I ", files) == ["include"]
    assert bash_files(script, "ksm check --include=", files) == ["include"]
    assert bash_complete(script, "ksm check -v --verbose --v") == ["--verbose"]


def unescape(spec: str) -> str:
    """What _arguments makes of a backslashed description."""
    return re.sub(r"\\(.)", r"\1", spec)


def test_zsh_arguments_get_the_help_text_intact(tmp_path):
    """zsh's completion system needs a terminal to run, so stand-ins for _arguments and _describe
    print what they are given: that is the shell quoting; the backslashes _arguments removes
    are taken off here."""
    if not shutil.which("zsh"):
        pytest.skip("zsh is not installed")
    path = tmp_path / "_ksm"
    path.write_text(completion_script(toy_parser(), "zsh"))
    driver = ("_arguments() { print -rl -- \"$@\" --; state=$next; next= }\n"
              "_describe() { print -rl -- \"${(@P)4}\" --; }\n"
              "compdef() { : }\n"
              f"source {shlex.quote(str(path))}\n"
              "words=(check); next=command; _ksm; next=args; _ksm")
    r = subprocess.run(["zsh", "-f", "-c", driver], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    top, described, _, check, _ = r.stdout.split("--\n")
    assert "-C+[run as if started in DIR]:DIR:_files -/" in top.splitlines()
    assert f"check:{HELP}" in described.splitlines() and "li:lint it" in described.splitlines()
    assert "secret" not in described
    specs = check.splitlines()
    (init,) = [s for s in specs if s.startswith("--init=[")]
    assert init.endswith("]:FILE:_files") and unescape(init[len("--init=["):-len("]:FILE:_files")]) == HELP
    (odd,) = [s for s in specs if s.startswith("--odd=[")]
    choices = odd.rsplit(":(", 1)[1][:-1]  # zsh splits the list as shell words
    r = subprocess.run(["zsh", "-f", "-c", f"print -rl -- {choices}"], capture_output=True, text=True)
    assert r.stdout.splitlines() == ODD
    assert "*-I+[include folder (repeatable)]:DIR:_files -/" in specs
    assert "(-v --verbose)-v[say more (repeatable)]" not in specs  # count: may be repeated
    assert "*--verbose[say more (repeatable)]" in specs
    assert "::solution folder or top-level .psl:_files" in specs


def test_fish_completes(files):
    if not shutil.which("fish"):
        pytest.skip("fish is not installed")
    toy = files / "toy.fish"
    toy.write_text(completion_script(toy_parser(), "fish"))
    real = files / "real.fish"
    real.write_text(completion_script(build_parser(), "fish"))
    assert fish_complete(toy, "ksm ") == {"check": HELP, "lint": "lint it", "li": "lint it", "bench": "measure"}
    assert fish_complete(toy, "ksm check --in")["--init"] == HELP
    assert set(fish_complete(toy, "ksm check --odd ")) == set(ODD)
    assert set(fish_complete(toy, "ksm check --init i", files)) == {"include/", "init.yaml"}
    assert set(fish_complete(toy, "ksm check -I ", files)) == {"include/"}
    assert set(fish_complete(toy, "ksm bench ", files)) == {"load", "check"}
    assert "--init" not in fish_complete(toy, "ksm bench check --")  # bench's value, not `check`
    parser = build_parser()
    assert set(fish_complete(real, "ksm ")) == set(subparsers(parser))
    formats = option(subparsers(parser)["lint"], "--format").choices
    assert set(fish_complete(real, "ksm lint --format ")) == set(formats)
    assert "--init" in fish_complete(real, "ksm check --i")
