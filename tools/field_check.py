#!/usr/bin/env python3
"""Run ``ksm check``, ``ksm test`` and ``ksm verify`` on the field corpus and print one table.

The field corpus is a list of real public KasperskyOS solutions (``tools/field_corpus.toml``):
references only (repository, commit, paths), never their files.  Check the repositories
out under one folder, each as ``DIR/<owner>+<name>`` (or ``DIR/<owner>/<name>``), then::

    python tools/field_check.py DIR                 # every entry found under DIR
    python tools/field_check.py DIR --only drone    # entries whose name contains "drone"
    python tools/field_check.py DIR --json out.json # also keep every figure, to compare runs
    python tools/field_check.py DIR --compare before.json   # mark what changed since a run
    python tools/field_check.py DIR --clone         # git clone + checkout the missing entries first

The commands are run as a user runs them (a fresh ``ksm`` process each, no ``-D`` values, no
SDK), so start-up time, exit codes and internal errors all show.  Columns: errors by code
(``-`` none), warnings, the PAL cases passed/run, the verify outcome with its failing
stages, and the wall time of ``check`` and ``verify``.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

MANIFEST = Path(__file__).with_name("field_corpus.toml")


@dataclass
class Entry:
    name: str
    repo: str
    commit: str
    target: str
    policy: str
    init: str | None = None
    descriptions: list[str] = field(default_factory=list)
    note: str | None = None


@dataclass
class Row:
    name: str
    found: bool = True
    exit_check: int | None = None
    errors: dict[str, int] = field(default_factory=dict)
    warnings: int = 0
    policy_ok: bool = True
    pal_passed: int = 0
    pal_cases: int = 0
    pal_note: str = ""
    verify: str = ""
    verify_failed: list[str] = field(default_factory=list)
    check_s: float = 0.0
    verify_s: float = 0.0


def read_manifest(path: Path) -> list[Entry]:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return [Entry(**item) for item in data.get("solution", [])]


def checkout(base: Path, repo: str) -> Path | None:
    owner, name = repo.split("/", 1)
    for cand in (base / f"{owner}+{name}", base / owner / name, base / name):
        if cand.is_dir():
            return cand
    return None


def clone(base: Path, entries: list[Entry]) -> None:
    """git clone + checkout of every repository not yet under ``base`` (needs network access)."""
    done: set[str] = set()
    for e in entries:
        if e.repo in done or checkout(base, e.repo) is not None:
            continue
        done.add(e.repo)
        dest = base / e.repo.replace("/", "+", 1)
        url = f"https://github.com/{e.repo}.git"
        print(f"cloning {url} at {e.commit[:12]}", file=sys.stderr)
        if subprocess.run(["git", "clone", "--quiet", url, str(dest)]).returncode == 0:
            subprocess.run(["git", "-C", str(dest), "checkout", "--quiet", e.commit])


def _ksm(args: list[str], ksm: list[str], timeout: float) -> tuple[int, str, str, float]:
    start = time.perf_counter()
    try:
        p = subprocess.run(ksm + args, capture_output=True, text=True, timeout=timeout)
        code, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        code, out, err = -1, "", f"timed out after {timeout:.0f} s"
    return code, out, err, time.perf_counter() - start


def run_entry(e: Entry, root: Path, ksm: list[str], timeout: float) -> Row:
    row = Row(e.name)
    if not (root / e.policy).is_file():
        row.found = False
        return row
    args = [str(root / e.target)]
    if e.init:
        args += ["--init", str(root / e.init)]
    code, out, err, row.check_s = _ksm(["check", "--format", "json", *args], ksm, timeout)
    row.exit_check = code
    try:
        doc = json.loads(out)
    except ValueError:
        row.errors = {"CRASH" if code == 3 else "NO-OUTPUT": 1}
        row.pal_note = (err.strip().splitlines() or [""])[-1][:80]
        return row
    codes = Counter(d["code"] for d in doc["diagnostics"] if d["severity"] == "error")
    row.errors = dict(sorted(codes.items()))
    row.warnings = sum(d["severity"] == "warning" for d in doc["diagnostics"])
    chosen = doc.get("policy")
    if chosen and Path(chosen).resolve() != (root / e.policy).resolve():
        row.policy_ok = False
    code, out, err, _ = _ksm(["test", "--format", "json", *args], ksm, timeout)
    try:
        summary = json.loads(out)["summary"]
        row.pal_cases, row.pal_passed = summary["cases"], summary["cases_passed"]
    except (ValueError, KeyError):
        row.pal_note = "not run (errors)" if code == 1 else f"exit {code}"
    code, out, err, row.verify_s = _ksm(["verify", "--format", "json", *args], ksm, timeout)
    try:
        vdoc = json.loads(out)
        row.verify = {0: "OK", 1: "FAILED", 3: "BUG"}.get(vdoc["exit_code"], str(vdoc["exit_code"]))
        row.verify_failed = [s["name"] for s in vdoc["stages"] if s["status"] in ("failed", "bug")]
    except (ValueError, KeyError):
        row.verify = f"exit {code}"
    return row


def _errors_text(row: Row) -> str:
    if not row.found:
        return "absent"
    if not row.errors:
        return "-"
    return " ".join(f"{c}×{n}" if n > 1 else c for c, n in row.errors.items())


def render(rows: list[Row], before: dict[str, dict] | None = None) -> str:
    head = ("solution", "errors", "warn", "PAL", "verify", "check s", "verify s")
    lines = []
    for r in rows:
        pal = f"{r.pal_passed}/{r.pal_cases}" if r.pal_cases else (r.pal_note or "-")
        verify = r.verify + (f" ({','.join(r.verify_failed)})" if r.verify_failed else "")
        cells = [r.name + ("" if r.policy_ok else " [other policy]"), _errors_text(r), str(r.warnings) if r.found else "",
                 pal, verify, f"{r.check_s:.2f}" if r.found else "", f"{r.verify_s:.2f}" if r.verify_s else ""]
        if before is not None:
            old = before.get(r.name)
            was = "new" if old is None else ("" if _errors_text(Row(**old)) == cells[1] else f"was {_errors_text(Row(**old))}")
            cells.append(was)
        lines.append(cells)
    if before is not None:
        head += ("change",)
    widths = [max(len(h), *(len(c[i]) for c in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*c).rstrip() for c in lines]
    found = [r for r in rows if r.found]
    clean = sum(1 for r in found if not r.errors)
    cases = sum(r.pal_cases for r in found)
    passed = sum(r.pal_passed for r in found)
    ok = sum(1 for r in found if r.verify == "OK")
    out.append("")
    out.append(f"{len(found)} solutions found of {len(rows)}: {clean} load with zero errors; PAL {passed}/{cases} "
               f"cases passed; verify OK on {ok}; check {sum(r.check_s for r in found):.1f} s, "
               f"verify {sum(r.verify_s for r in found):.1f} s in all")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="folder holding the checked-out repositories")
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    ap.add_argument("--only", action="append", default=[], metavar="TEXT", help="entries whose name contains TEXT")
    ap.add_argument("--ksm", default=f"{shlex.quote(sys.executable)} -m ksm.cli",
                    help="the command that runs ksm (default: this Python's ksm.cli)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per command (default 600)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="write every figure as JSON")
    ap.add_argument("--compare", type=Path, metavar="FILE", help="a --json file of an earlier run: mark changes")
    ap.add_argument("--clone", action="store_true", help="git clone the missing repositories first")
    args = ap.parse_args(argv)
    entries = read_manifest(args.manifest)
    if args.only:
        entries = [e for e in entries if any(t in e.name for t in args.only)]
    if args.clone:
        args.folder.mkdir(parents=True, exist_ok=True)
        clone(args.folder, entries)
    ksm = shlex.split(args.ksm)
    rows = []
    for e in entries:
        root = checkout(args.folder, e.repo)
        row = run_entry(e, root, ksm, args.timeout) if root is not None else Row(e.name, found=False)
        rows.append(row)
        print(f"  {e.name}: {_errors_text(row)}", file=sys.stderr, flush=True)
    before = None
    if args.compare:
        before = {r["name"]: r for r in json.loads(args.compare.read_text(encoding="utf-8"))["rows"]}
    print(render(rows, before))
    if args.json:
        args.json.write_text(json.dumps({"rows": [asdict(r) for r in rows]}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    sys.exit(main())
