"""The lint documentation, generated from the catalogue: rule pages, listing, index table.

Why generated: each page shows the rule's examples *and what the linter says about
them*, so the page is produced by running the linter.  ``tests/test_lint_rules.py``
regenerates every page and fails when ``docs/lint/`` differs; ``ksm lint --explain
CODE`` prints the same page in the terminal.  Regenerate with
``python -m ksm.lint.docs`` after changing a rule.
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from policy_lang.diagnostics import Diagnostic

from .catalogue import CATEGORIES, Example, all_rules
from .examples import INIT, POLICY, lint_example
from .fingerprint import relative_file

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs" / "lint"


def example_findings(example: Example) -> list[Diagnostic]:
    """The example's findings, with file names relative to the example solution's folder."""
    result = lint_example(example)
    root = result.solution.root
    return [d if d.span is None else replace(d, span=d.span._replace(file=relative_file(d.span.file, root)))
            for d in result.findings]


def _block(lang: str, text: str) -> str:
    return f"```{lang}\n{text.rstrip()}\n```"


def _example(ex: Example, findings: list[Diagnostic], fires: bool) -> list[str]:
    out = [f"`{POLICY.as_posix()}`:", "", _block("psl", ex.policy)]
    if ex.init is not None:
        out += ["", f"`{INIT.as_posix()}`:", "", _block("yaml", ex.init)]
    out.append("")
    if fires:
        out += ["`ksm lint` reports:", "", _block("text", "\n".join(d.render().splitlines()[0] for d in findings))]
    else:
        out.append("`ksm lint` reports nothing.")
    return out


def rule_page(code: str) -> str | None:
    """The Markdown page of one rule, or None when there is no such rule."""
    r = all_rules().get(code)
    if r is None:
        return None
    source = ("reported by the front end while it resolves the solution (also by `ksm check`)"
              if r.check is None else "reported by `ksm lint`")
    lines = [
        f"# {r.code} `{r.name}`: {r.title}", "",
        f"**Severity:** {r.severity.value} · **Category:** {CATEGORIES[r.category]} · {source}", "",
        r.why, "",
        f"**How to fix:** {r.hint}.", "",
        "## Fires on", "",
        "The examples are linted against the small example solution in `ksm/lint/examples/skeleton` "
        "(a client, a key-value server, a logger; `use demo.prelude._` holds what every example shares).", "",
        *_example(r.bad, example_findings(r.bad), True), "",
        "## Silent on", "",
        *_example(r.good, example_findings(r.good), False), "",
        "## Suppressing it", "",
        f"Put `// ksm: disable={r.code}` at the end of the reported line, or alone on the line above it "
        f"(`# ksm: disable={r.code}` in init.yaml); "
        f"`// ksm: disable-file={r.code}` anywhere in the file covers the whole file. To turn the rule off "
        f"for a whole solution, list `{r.code}` under `disable` in `ksm.toml` (see [lint.md](../lint.md)).",
    ]
    if r.check is None and r.severity.value == "error":
        lines[-1] = ("Errors of the front end cannot be suppressed or disabled: the solution cannot be checked "
                     "further until they are fixed.")
    return "\n".join(lines) + "\n"


def rule_listing() -> str:
    """One line per rule, for the terminal."""
    return "\n".join(f"{r.code}  {r.severity.value:<7}  {r.name:<28} {r.title}" for r in all_rules().values())


def rules_table() -> str:
    """The rule table of docs/lint.md, grouped by category."""
    out = []
    for cat, title in CATEGORIES.items():
        out += [f"### {title}", "", "| code | name | severity | what it reports |", "|---|---|---|---|"]
        for r in all_rules().values():
            if r.category == cat:
                out.append(f"| [{r.code}](lint/{r.code}.md) | `{r.name}` | {r.severity.value} | {r.title} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_pages(target: Path = DOCS_DIR) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for code in all_rules():
        path = target / f"{code}.md"
        path.write_text(rule_page(code), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    for p in write_pages():
        print(p, file=sys.stderr)
