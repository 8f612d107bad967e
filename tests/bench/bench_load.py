"""Benchmark (not a test): parse + resolve of a generated 100k-line policy.

Run: python tests/bench/bench_load.py [LINES]   (or: ksm bench load --lines N)
Goal: >= 50,000 lines/s on one core.  Compare the ratio column between runs.
"""
import sys

from ksm.bench import bench_load

if __name__ == "__main__":
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(bench_load(lines).report())
