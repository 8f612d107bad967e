"""The examples in docs/ are run: `$ ksm ...` console lines and ```python blocks.

A console block's following lines (up to the next `$`) are the expected output when
given; otherwise only the exit status is checked: 0, or N when the command line ends
with `# exits N`.  Timings (`12 ms`) are compared as `N s`, and runs of spaces as one.
"""
import re
import shlex
from pathlib import Path

import pytest

from ksm.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))


def _console_examples():
    for doc in DOCS:
        for block in re.findall(r"```console\n(.*?)```", doc.read_text(), re.S):
            cmds = re.split(r"^\$ ", block, flags=re.M)[1:]
            for chunk in cmds:
                cmd, _, expected = chunk.partition("\n")
                yield pytest.param(cmd, expected.strip(), id=f"{doc.name}:{cmd[:40]}")


def _python_examples():
    for doc in DOCS:
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)):
            yield pytest.param(block, id=f"{doc.name}:python{i}")


@pytest.mark.parametrize("cmd,expected", list(_console_examples()))
def test_console_example(cmd, expected, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    cmd, _, marker = cmd.partition("# exits ")
    argv = shlex.split(cmd)
    assert argv[0] == "ksm"
    code = main(argv[1:])
    out = capsys.readouterr().out.strip()
    assert code == int(marker or 0), out
    if expected:
        assert _timeless(out) == _timeless(expected)


def _timeless(text: str) -> str:
    """Times become `N s`; so that a slow run cannot shift a table's columns, runs of
    spaces and of rule characters count as one."""
    text = re.sub(r"\b\d+(\.\d+)? m?s\b", "N s", text)
    return re.sub(r"─+", "─", re.sub(r" +", " ", text))


@pytest.mark.parametrize("block", list(_python_examples()))
def test_python_example(block, monkeypatch):
    monkeypatch.chdir(ROOT)
    exec(compile(block, "<doc>", "exec"), {})
