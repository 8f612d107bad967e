"""ksm diff (semantic policy difference) and ksm crosscheck (decision function vs Z3)."""
from __future__ import annotations

import json
import shutil

import pytest

from ksm.cli import main
from ksm.engine import SecurityModule
from ksm.verify.crosscheck import crosscheck
from ksm.verify.diff import diff
from policy_lang import LoadOptions, load

from conftest import MODEL_DIRS, read_defines
from test_engine import door_solution

BASE = 'request dst=kl.core.Core { grant () }\nrequest src=door.Client, dst=door.Server, method=Open { assert (message.code < 100) }\n'


def confirm(old, new, d):
    """A witness really is decided differently by the two decision functions."""
    mo, mn = SecurityModule(old), SecurityModule(new)
    mo.boot()
    mn.boot()
    return mo.decide(d.witness).granted, mn.decide(d.witness).granted


def test_identical_policies_have_no_difference(tmp_path):
    a, b = door_solution(tmp_path / "a", BASE), door_solution(tmp_path / "b", BASE)
    assert diff(a, b).differences == []


def test_widened_assert_is_a_new_grant_with_a_confirmed_witness(tmp_path):
    old = door_solution(tmp_path / "a", BASE)
    new = door_solution(tmp_path / "b", BASE.replace("< 100", "< 200"))
    (d,) = diff(old, new).differences
    assert d.change == "new-grant" and "method=Open" in d.group and "src=client" in d.group
    assert 100 <= d.witness.message["code"] < 200
    assert confirm(old, new, d) == (False, True)


def test_removed_binding_is_a_lost_grant(tmp_path):
    old = door_solution(tmp_path / "a", BASE + "request src=door.Client, dst=door.Server, method=Close { grant () }\n")
    new = door_solution(tmp_path / "b", BASE)
    (d,) = diff(old, new).differences
    assert d.change == "lost-grant" and "method=Close" in d.group
    assert confirm(old, new, d) == (True, False)


def test_cli_fail_on_new_grants(tmp_path, capsys):
    old = door_solution(tmp_path / "a", BASE)
    new = door_solution(tmp_path / "b", BASE.replace("< 100", "< 200"))
    assert main(["diff", old.root, new.root]) == 0                      # report only
    assert "NEW GRANT" in capsys.readouterr().out
    assert main(["diff", old.root, new.root, "--fail-on", "new-grants"]) == 1
    capsys.readouterr()
    assert main(["diff", new.root, old.root, "--fail-on", "new-grants"]) == 0   # only lost grants
    assert "LOST GRANT" in capsys.readouterr().out
    assert main(["diff", old.root, new.root, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["differences"][0]["witness"]["message"]["code"] >= 100


def test_added_process_is_listed(tmp_path):
    old = door_solution(tmp_path / "a", BASE)
    root = tmp_path / "b"
    shutil.copytree(tmp_path / "a", root)
    init = root / "einit/src/init.yaml"
    init.write_text(init.read_text() + "  - name: door.Server\n    task: spare\n")
    new = load(root)
    changes = {d.change for d in diff(old, new).differences}
    assert "added" in changes


# ------------------------------------------------------------------ crosscheck
@pytest.mark.parametrize("model", MODEL_DIRS, ids=lambda m: m.name)
def test_crosscheck_agrees_on_every_example(model):
    sol = load(model, LoadOptions(defines=read_defines(model)))
    r = crosscheck(sol, events=20, walk=1)
    assert r.disagreements == [], r.disagreements[0].describe()
    assert r.agreed > r.skipped and r.events == r.agreed + r.skipped


def test_crosscheck_finds_and_shrinks_a_planted_bug(tmp_path, monkeypatch):
    from ksm.verify import program

    real = program._BINARY["<"]
    monkeypatch.setitem(program._BINARY, "<", lambda a, b: real(a, b) if a.kind != "number" else
                        real(a, type(b)(b.z + 1)))          # `<` encoded as `<=`
    sol = door_solution(tmp_path, BASE)
    r = crosscheck(sol, events=30, walk=0)
    assert r.disagreements
    d = next(d for d in r.disagreements if d.event.method == "Open")
    assert d.event.message == {"code": 100}                  # the boundary, already minimal
    assert d.engine is False and d.z3 is True


def test_cli_crosscheck(capsys):
    assert main(["crosscheck", "models/echo", "--events", "5", "--walk", "0"]) == 0
    assert "0 disagreed" in capsys.readouterr().out



