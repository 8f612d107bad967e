"""docs/cli.md's tables are the argument parser's: every subcommand, option, format and exit code."""
import argparse
from pathlib import Path

from ksm.cli import COMMANDS, build_parser
from ksm.cli.reference import EXIT_ONE, render_doc

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "cli.md"


def test_docs_cli_tables_match_the_parser():
    text = DOC.read_text(encoding="utf-8")
    assert render_doc(text) == text, "regenerate with: python -m ksm.cli.reference docs/cli.md"


def test_every_command_says_what_exit_one_means():
    assert set(EXIT_ONE) == set(COMMANDS)


def test_every_option_has_help_and_every_command_examples():
    parser = build_parser()
    for name, sub in parser._ksm_subparsers.items():
        assert sub.epilog and "ksm " in sub.epilog, f"`ksm {name} --help` has no examples"
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"ksm {name} {action.option_strings or action.dest}: no help text"


def test_loading_options_are_spelled_the_same_everywhere():
    """Every command that loads a solution takes the same loading options; every time limit is seconds."""
    parser = build_parser()
    loading = {"--init", "--include", "--define", "--defines", "--sdk", "--config", "--no-config"}
    for name, sub in parser._ksm_subparsers.items():
        options = {o for a in sub._actions for o in a.option_strings if a.help != argparse.SUPPRESS}
        if name not in ("bench", "codes", "completion", "fmt", "lsp"):   # fmt reads files; lsp finds each file's solution
            assert loading <= options, f"ksm {name} lacks {loading - options}"
            assert "--format" in options and "--output" in options, name
        assert "--timeout-ms" not in options
        for a in sub._actions:
            if "--timeout" in a.option_strings:
                assert a.metavar == "SECONDS", name
