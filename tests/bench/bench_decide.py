"""Benchmark (not a test): the decision function, and ksm beside cedarpy and pycasbin.

Run: python tests/bench/bench_decide.py [BINDINGS]   (or: ksm bench decide; ksm bench compare)
Per-call p50/p99 over random traffic, denials and first decisions included; every
figure has a frozenset lookup of the same keys, measured in the same run, beside it.
"""
import sys

from ksm.decide_bench import bench_decide, bench_decide_vs_others

if __name__ == "__main__":
    large = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(bench_decide(large=large).report())
    print()
    print(bench_decide_vs_others().report())
