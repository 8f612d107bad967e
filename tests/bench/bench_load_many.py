"""Benchmark (not a test): parse + resolve of a generated many-file solution (~100k lines,
~4,000 small IDL/CDL/EDL files, PSL groups that `use` them, init.yaml), with a per-phase
breakdown, then the collector's pass after a 100,000-binding load.

Run: python tests/bench/bench_load_many.py [LINES] [BINDINGS]
Goal: >= 50,000 lines/s on one core.  Compare the ratio column between runs.
"""
import sys

from ksm.load_bench import bench_load_gc, bench_load_many

if __name__ == "__main__":
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    bindings = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    print(bench_load_many(lines).report())
    print(bench_load_gc(bindings).report())
