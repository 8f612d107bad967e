"""Benchmark (not a test): lint of a generated 10,000-line policy.

Run: python tests/bench/bench_lint.py [LINES]   (or: ksm bench lint --lines N)
Goal: load + lint <= 2 s.  Compare the ratio lines between runs (same-run baselines).
"""
import sys

from ksm.lint.bench import bench_lint

if __name__ == "__main__":
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(bench_lint(lines).report())
