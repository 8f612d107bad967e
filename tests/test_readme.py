"""The README's promises: the two set-up commands, and CI running the same test command."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [line.strip() for b in blocks[:2] for line in b.strip().splitlines()]


def test_readme_has_install_and_test_commands():
    main_cmd, test_cmd = _readme_commands()[:2]
    assert "pip install ." in main_cmd and "ksm verify models/" in main_cmd
    assert test_cmd.endswith("pytest") and "pip install -e '.[dev]'" in test_cmd


def test_ci_runs_the_readme_test_command_verbatim():
    test_cmd = _readme_commands()[1]
    tail = test_cmd.split("&&", 2)[-1].strip()  # after creating/activating the venv
    ci = (ROOT / ".ci" / "run").read_text()
    assert tail in ci, f"CI must run {tail!r}"


def test_readme_example_exists():
    main_cmd = _readme_commands()[0]
    model = re.search(r"ksm verify (models/\S+)", main_cmd).group(1)
    assert (ROOT / model).is_dir()


def test_readme_main_job_passes_on_the_bundled_example(capsys):
    """The set-up's main job (`ksm verify` on the bundled example) exits 0: every stage passes."""
    from ksm.cli import main

    model = re.search(r"ksm verify (models/\S+)", _readme_commands()[0]).group(1)
    assert main(["verify", str(ROOT / model)]) == 0
    out = capsys.readouterr().out
    for stage in ("check", "lint", "test", "prove", "flows"):
        assert re.search(rf"^{stage}\s+passed", out, re.M), out


def test_the_tests_run_the_checkout_not_an_installed_copy():
    """The README installs the checkout in editable mode: a stale copy in site-packages
    would make every test below test old code."""
    import ksm
    import policy_lang

    for package in (ksm, policy_lang):
        assert Path(package.__file__).resolve().is_relative_to(ROOT), package.__file__
