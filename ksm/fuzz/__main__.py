"""``python -m ksm.fuzz SEED [SEED...] [--out DIR] [--large]``: reproduce fuzz seeds.

Writes each seed's solution (under ``DIR/SEED`` with ``--out``, else a temporary
folder), runs the harness's checks on it and prints every finding.  ``--range A B``
checks seeds A..B-1 and prints the report of :func:`ksm.fuzz.run_fuzz`.  Exit
status: 0 when nothing was found, 1 otherwise.

``--kernel COUNT`` decides COUNT random (valid and malformed) kernel events per seed
on a policy granting every kernel call instead (:mod:`ksm.fuzz.kernel`).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from .harness import LARGE, FuzzOptions, FuzzReport, check_seed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ksm.fuzz", description=__doc__.splitlines()[0])
    ap.add_argument("seeds", nargs="*", type=int, help="seeds to check")
    ap.add_argument("--range", nargs=2, type=int, metavar=("FIRST", "END"), help="check seeds FIRST..END-1")
    ap.add_argument("--out", type=Path, help="write each solution under OUT/SEED and keep it")
    ap.add_argument("--large", action="store_true", help="the large sizes (as run_fuzz and KSM_FUZZ=1)")
    ap.add_argument("--in-process", action="store_true",
                    help="prove in this process (no time budget per property; for a debugger)")
    ap.add_argument("--kernel", type=int, metavar="COUNT",
                    help="decide COUNT random kernel events per seed (malformed ones must be denied)")
    args = ap.parse_args(argv)
    seeds = list(args.seeds) + (list(range(*args.range)) if args.range else [])
    if not seeds:
        ap.error("give at least one seed, or --range FIRST END")
    if args.kernel is not None:
        return _kernel(seeds, args.kernel)
    options = LARGE if args.large else FuzzOptions()
    if args.in_process:
        options = replace(options, isolate=False)
    report = FuzzReport()
    for seed in seeds:
        root = None
        if args.out is not None:
            root = args.out / str(seed) if len(seeds) > 1 else args.out
            root.mkdir(parents=True, exist_ok=True)
        r = check_seed(seed, options, root)
        report.results.append(r)
        report.seconds += r.seconds
        statuses = ", ".join(f"{v} {k.lower()}" for k, v in sorted(r.statuses.items()))
        print(f"seed {seed}: {r.seconds:.1f} s, {r.events} events compared, {r.properties} properties "
              f"({statuses}), {len(r.findings)} finding(s)" + (f"; solution in {root}" if root else ""))
        for f in r.findings:
            print(f.describe())
        sys.stdout.flush()
    if len(seeds) > 1:
        print(report.report())
    return 0 if report.ok else 1


def _kernel(seeds: list[int], count: int) -> int:
    from collections import Counter

    from .kernel import check_kernel_messages

    found = 0
    for seed in seeds:
        stats: Counter = Counter()
        findings = check_kernel_messages(seed, count, stats=stats)
        found += len(findings)
        print(f"seed {seed}: {stats['events']} kernel events, {stats['malformed']} malformed "
              f"({stats['malformed granted']} granted), {stats['wellformed']} well-formed, "
              f"{len(findings)} finding(s)")
        for f in findings:
            print(f"    {f}")
        sys.stdout.flush()
    return 0 if not found else 1


if __name__ == "__main__":
    sys.exit(main())
