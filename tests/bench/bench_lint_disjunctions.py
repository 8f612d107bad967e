"""Benchmark (not a test): LNT010/LNT011 on conditions that are long disjunctions.

Run: python tests/bench/bench_lint_disjunctions.py [TERMS [REPEAT]]   (`ksm bench lint` reports the 190-term case)

Real policies allow-list message values with ~190-term deny conditions
(``assert (message.value == 0x1234 || message.value == 0x5678 || ...)``).  Each shape
prints the two rules' time (median) and its ratio to loading the same solution in
the same run; compare the ratios between runs.  Before the value-set and per-node
sharing fix the one-field shape was ~150-500x the load time (~9-10 s for five
190-term conditions) and grew with the square of the terms; it is now ~1-3x.
"""
import sys

from ksm.lint.bench import DISJUNCTION_TERMS, bench_disjunctions

if __name__ == "__main__":
    terms = int(sys.argv[1]) if len(sys.argv) > 1 else DISJUNCTION_TERMS
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    for arithmetic in (False, True):
        print(bench_disjunctions(terms, repeat, arithmetic=arithmetic).report().strip())
