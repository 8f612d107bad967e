"""The language server's reload machinery, without a client (tests/test_lsp.py talks to it)."""
from __future__ import annotations

from pathlib import Path

from policy_lang import load
from ksm.lsp.server import KsmLanguageServer

REPO = Path(__file__).resolve().parent.parent


def test_a_lint_stops_between_rules_once_a_newer_change_supersedes_it():
    root = REPO / "models" / "smart_lock"
    sol = load(root)
    asked: list[int] = []

    def superseded() -> bool:
        asked.append(1)
        return len(asked) >= 2          # a change arrives while the second rule runs

    assert KsmLanguageServer._lint(root, sol, superseded) is None
    assert len(asked) == 2
    findings = KsmLanguageServer._lint(root, sol, lambda: False)
    assert findings is not None and all(d.code for d in findings)


def test_a_reload_parses_again_only_what_changed():
    root = REPO / "models" / "smart_lock"
    policy = str((root / "einit" / "src" / "security.psl").resolve())
    text = Path(policy).read_text()
    server = KsmLanguageServer()
    st = server.state_for((root / "einit" / "src" / "security.psl").as_uri())
    server._load(st.root, {policy: text}, st.reparser)
    files = st.reparser.stats["full"]                  # the policy and the files it includes
    sol, _ = server._load(st.root, {policy: text.replace("grant ()", "grant ( )", 1)}, st.reparser)
    assert st.reparser.stats == {"full": files, "partial": files}
    assert sol.ok


def test_a_description_that_exists_only_in_an_editor_buffer_is_found(tmp_path):
    import shutil

    root = tmp_path / "smart_lock"
    shutil.copytree(REPO / "models" / "smart_lock", root)
    policy = (root / "einit" / "src" / "security.psl").resolve()
    text = policy.read_text().replace("use EDL lock.NetAgent", "use EDL lock.NetAgent\nuse EDL lock.Extra", 1)
    unsaved = str((root / "resources" / "edl" / "Extra.edl").resolve())
    codes = lambda sol: [d.code for d in sol.diagnostics if "lock.Extra" in d.message]   # noqa: E731
    without, _ = KsmLanguageServer._load(root.resolve(), {str(policy): text})
    assert codes(without)                                   # not on disk: not found
    with_buffer, _ = KsmLanguageServer._load(root.resolve(), {str(policy): text, unsaved: "task class lock.Extra\n"})
    assert codes(with_buffer) == [] and "lock.Extra" in with_buffer.classes


def test_a_policy_with_another_name_and_no_solution_folder_is_its_own_solution(tmp_path):
    from ksm.lsp.server import find_root

    image = tmp_path / "repo" / "kos" / "einit" / "sim" / "src"
    image.mkdir(parents=True)
    (tmp_path / "repo" / ".git").mkdir()
    policy = image / "sim_offline.psl.in"
    policy.write_text("use nk.base._\n")
    assert find_root(policy) == policy
    (image / "security.psl").write_text("use nk.base._\n")
    assert find_root(policy) == tmp_path / "repo" / "kos"          # the folder holding einit
