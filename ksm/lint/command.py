"""``ksm lint``: the command CI runs on a solution (argument handling and exit codes only).

Exit codes: 0 nothing at or above ``fail-on`` (default: warning); 1 findings at or
above it, or errors in the solution; 2 a usage error, or an error in the
configuration or baseline file; 3 a bug in ksm (a rule failed: LNT900).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from policy_lang.diagnostics import Diagnostic

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _codes(text: str) -> list[str]:
    """Comma-separated codes; an unknown one is a usage error (a typo must never turn
    every rule off and leave a green CI gate), with the closest code as a hint."""
    import difflib

    from .config import known_codes

    codes = [c.strip().upper() for c in text.split(",") if c.strip()]
    known = set(known_codes())
    for code in codes:
        if code not in known:
            close = difflib.get_close_matches(code, sorted(known), n=1, cutoff=0.6)
            raise argparse.ArgumentTypeError(
                f"unknown code {code!r}" + (f" (did you mean {close[0]}?)" if close else "")
                + "; `ksm codes` lists every code")
    if not codes:
        raise argparse.ArgumentTypeError("expected comma-separated codes, e.g. LNT001,LNT005")
    return codes


def add_lint_args(p: argparse.ArgumentParser) -> None:
    from ..cli.common import add_retired_timeout_ms, seconds

    p.add_argument("--format", choices=("text", "json", "sarif", "github", "junit"), default="text",
                   help="report format (default: text)")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE (the summary still goes to stdout)")
    p.add_argument("--select", type=_codes, metavar="CODES", help="run only these rules (comma-separated codes)")
    p.add_argument("--disable", type=_codes, metavar="CODES", help="never report these codes (comma-separated)")
    p.add_argument("--fail-on", choices=("error", "warning", "note", "never"),
                   help="lowest severity that makes the exit status 1 (default: warning)")
    p.add_argument("--baseline", metavar="FILE", help="findings recorded in FILE are reported but do not fail")
    p.add_argument("--write-baseline", metavar="FILE", help="record the current findings in FILE and exit 0")
    p.add_argument("--timeout", type=seconds, metavar="SECONDS",
                   help="time limit of each Z3 question of the semantic rules (default 2)")
    add_retired_timeout_ms(p)
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colour in text output")
    p.add_argument("--no-excerpt", action="store_true", help="do not quote source lines under findings")
    p.add_argument("--list-rules", action="store_true", help="list every rule and exit")
    p.add_argument("--explain", metavar="CODE", help="show a rule's documentation and examples and exit")


def _print_diags(diags: list[Diagnostic]) -> None:
    for d in diags:
        print(d.render(), file=sys.stderr)


def use_color(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def lint_setup(solution: str, config_file: str | None, *, want_baseline: bool = True, no_config: bool = False,
               **overrides):
    """(configuration, baseline or None) for a lint run, or EXIT_USAGE after printing why not.

    The configuration file is found upward from the solution unless one is given;
    command-line ``overrides`` (select, disable, fail_on, baseline, timeout_ms) win.
    """
    from .baseline import load_baseline
    from .config import load_config, merge_cli

    if no_config:
        from .config import LintConfig

        config, problems = LintConfig(), []
    else:
        config, problems = load_config(Path(solution), Path(config_file) if config_file else None)
    if problems:
        _print_diags(problems)
        return EXIT_USAGE
    config = merge_cli(config, **overrides)
    baseline = None
    if config.baseline and want_baseline:
        baseline, problems = load_baseline(Path(config.baseline))
        if problems:
            _print_diags(problems)
            return EXIT_USAGE
    return config, baseline


def cmd_lint(args: argparse.Namespace) -> int:
    from ksm.cli.common import load_solution, write_file
    from ksm.cli.progress import steps

    from .baseline import write_baseline
    from .docs import rule_listing, rule_page
    from .report import render, summary
    from .runner import lint

    if args.list_rules:
        print(rule_listing())
        return EXIT_OK
    if args.explain:
        page = rule_page(args.explain.upper())
        if page is None:
            print(f"ksm: error: no rule {args.explain}; see `ksm lint --list-rules`", file=sys.stderr)
            return EXIT_USAGE
        print(page)
        return EXIT_OK
    timeout_ms = None if args.timeout is None else max(1, round(args.timeout * 1000))
    setup = lint_setup(args.solution, args.config, select=args.select, disable=args.disable,
                       fail_on=args.fail_on, baseline=args.baseline, timeout_ms=timeout_ms,
                       want_baseline=not args.write_baseline, no_config=args.no_config)
    if isinstance(setup, int):
        return setup
    config, baseline = setup
    solution = load_solution(args)
    from .catalogue import all_rules

    with steps("linting", sum(1 for c, r in all_rules().items() if r.check and config.enabled(c))) as advance:
        result = lint(solution, config, baseline, advance)
    if args.write_baseline:
        try:
            write_baseline(result.findings, solution.root, Path(args.write_baseline))
        except OSError as exc:
            print(f"ksm: error: cannot write {args.write_baseline}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"wrote {len(result.findings)} finding(s) to {args.write_baseline}")
        return EXIT_OK
    color = args.format == "text" and not args.output and use_color(args.color)
    report = render(result, args.format, color=color, excerpts=not args.no_excerpt)
    if args.output:
        if write_file(args.output, report + "\n"):
            return EXIT_USAGE
        print(summary(result))
    elif report:
        print(report)
    if result.crashed:
        return EXIT_INTERNAL
    if not solution.ok or result.failing():
        return EXIT_FINDINGS
    return EXIT_OK


__all__ = ["add_lint_args", "cmd_lint", "lint_setup", "use_color"]
