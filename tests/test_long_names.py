"""Names the file system refuses (a part longer than 255 bytes is ENAMETOOLONG) are
ordinary missing files, never an OSError: issue 17, defect 4."""
import shutil
from pathlib import Path

import pytest

import policy_lang
from ksm.cli import main

ROOT = Path(__file__).resolve().parent.parent
LONG = "n" * 260


def _echo(tmp_path: Path) -> Path:
    sol = tmp_path / "echo"
    shutil.copytree(ROOT / "models" / "echo", sol)
    return sol


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("where", ["init", "use_edl", "use_fragment", "use_fragment_in_folder", "idl_import",
                                   "cmake"])
def test_a_long_name_is_a_diagnostic(tmp_path, capsys, where):
    sol = _echo(tmp_path)
    psl = sol / "einit" / "src" / "security.psl"
    if where == "init":
        _edit(sol / "einit" / "src" / "init.yaml", "name: echo.Client", f"name: echo.{LONG}")
    elif where == "use_edl":
        _edit(psl, "use EDL echo.Client", f"use EDL echo.{LONG}\nuse EDL echo.Client")
    elif where == "use_fragment":
        psl.write_text(psl.read_text() + f"\nuse {LONG}._\n")
    elif where == "use_fragment_in_folder":
        psl.write_text(psl.read_text() + f"\nuse x.{LONG}.y._\n")
    elif where == "idl_import":
        idl = next(sol.rglob("*.idl"))
        _edit(idl, "package echo.Ping", f"package echo.Ping\nimport echo.{LONG}")
    else:
        (sol / "einit" / "CMakeLists.txt").write_text(f'set (SECURITY_PSL_FILE "src/{LONG}.psl")\n')
    code = main(["check", str(sol), "--no-excerpt"])
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    assert "internal error" not in err and "OSError" not in out + err


def test_api_paths_the_file_system_refuses(tmp_path):
    missing = policy_lang.load(str(tmp_path / LONG))
    assert [d.code for d in missing.diagnostics] == ["SRC001"]
    assert policy_lang.load(str(ROOT / "models" / "echo"), include_dirs=[str(tmp_path / LONG)]).ok


def test_cli_paths_the_file_system_refuses(tmp_path, capsys):
    assert main(["check", str(tmp_path / LONG)]) == 2
    assert "no such file or folder" in capsys.readouterr().err
