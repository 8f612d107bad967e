"""The tables in docs/cli.md, generated from the argument parser itself.

Why generated: a hand-kept table of options drifts the first time someone adds one;
tests/test_cli_reference.py compares these tables with the document, so the
reference and the parser cannot disagree.
"""
from __future__ import annotations

import argparse

#: What exit status 1 means for each command (0, 2 and 3 mean the same everywhere).
EXIT_ONE = {
    "check": "the solution has errors",
    "fmt": "with --check or --diff: a file would be reformatted; or a file does not parse",
    "lint": "findings at or above `fail-on`, or errors in the solution",
    "test": "a PAL test failed",
    "prove": "a property is refuted or unknown",
    "flows": "a `never flow` property is refuted or unknown",
    "verify": "a stage failed",
    "decide": "the event is denied",
    "diff": "with `--fail-on`: the versions differ as it says",
    "crosscheck": "- (a disagreement is a bug in ksm: 3)",
    "graph": "the solution or a property file has errors",
    "kernel": "a class not marked trusted is granted a potentially dangerous kernel method always",
    "simulate": "the run failed (crash, deadlock, timeout, unmet expectation, observed forbidden flow)",
    "bench": "`bench fuzz` found a disagreement, a contradicted proof, a failed replay or a crash",
    "codes": "-",
    "completion": "-",
    "lsp": "standard input or output could not be used (it otherwise runs until the editor asks it to exit)",
}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return parser._ksm_subparsers  # type: ignore[attr-defined]


def _spelling(action: argparse.Action) -> str:
    shorts = [o for o in action.option_strings if not o.startswith("--")]
    longs = [o for o in action.option_strings if o.startswith("--")]
    return ", ".join(f"`{o}`" for o in shorts + longs)


def commands_table(parser: argparse.ArgumentParser) -> str:
    rows = ["| command | what it does | `--format` | exit 1 means |", "|---|---|---|---|"]
    helps = {a.dest: a for a in parser._subparsers._group_actions}  # type: ignore[union-attr]
    choices = {c.dest: c.help for a in helps.values() for c in a._choices_actions}  # type: ignore[attr-defined]
    for name, sub in _subparsers(parser).items():
        fmt = next((a for a in sub._actions if "--format" in a.option_strings), None)
        formats = ", ".join(fmt.choices) if fmt is not None and fmt.choices else "-"
        rows.append(f"| `ksm {name}` | {choices.get(name, '')} | {formats} | {EXIT_ONE.get(name, '-')} |")
    return "\n".join(rows)


def options_table(parser: argparse.ArgumentParser) -> str:
    """Every option (rows) against every command (columns)."""
    subs = _subparsers(parser)
    seen: dict[str, tuple[str, set[str]]] = {}
    for name, sub in subs.items():
        for action in sub._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction) \
                    or action.help == argparse.SUPPRESS:
                continue
            key = max(action.option_strings, key=len)
            spelled, used = seen.setdefault(key, (_spelling(action), set()))
            used.add(name)
    names = list(subs)
    rows = ["| option | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key in sorted(seen, key=lambda k: (-len(seen[k][1]), k)):
        spelled, used = seen[key]
        rows.append(f"| {spelled} | " + " | ".join("✓" if n in used else "" for n in names) + " |")
    return "\n".join(rows)


def option_reference(parser: argparse.ArgumentParser) -> str:
    """Each command's options with their help, as `ksm COMMAND --help` prints them."""
    out = []
    for name, sub in _subparsers(parser).items():
        out.append(f"### `ksm {name}`\n")
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            if action.option_strings:
                spelled = _spelling(action)
                if action.nargs != 0:
                    metavar = action.metavar or (f"{{{','.join(map(str, action.choices))}}}" if action.choices
                                                 else action.dest.upper())
                    spelled += f" {' '.join(metavar) if isinstance(metavar, tuple) else metavar}"
            else:
                spelled = f"`{action.metavar or action.dest}`"
                if action.choices:
                    spelled += f" ({', '.join(map(str, action.choices))})"
            text = (action.help or "").replace("|", "\\|").replace("\n", " ")
            out.append(f"- {spelled}: {text}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


#: marker in docs/cli.md -> the function generating what goes after it.
SECTIONS = {
    "ksm.cli.reference.commands_table": commands_table,
    "ksm.cli.reference.options_table": options_table,
    "ksm.cli.reference.option_reference": option_reference,
}


def render_doc(text: str) -> str:
    """``text`` (docs/cli.md) with every generated section brought up to date."""
    import re

    from . import build_parser

    parser = build_parser()
    for marker, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- generated: {re.escape(marker)} -->\n).*?(\n<!-- end -->)", re.S)
        text = pattern.sub(lambda m: m.group(1) + make(parser).rstrip("\n") + m.group(2), text)
    return text


if __name__ == "__main__":  # python -m ksm.cli.reference docs/cli.md: regenerate the tables
    import sys
    from pathlib import Path

    for name in sys.argv[1:]:
        path = Path(name)
        path.write_text(render_doc(path.read_text(encoding="utf-8")), encoding="utf-8")
