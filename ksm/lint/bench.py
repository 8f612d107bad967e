"""``ksm bench lint``: the linter on a generated policy, against same-run baselines.

The goal (issue 7) is a 10,000-line policy linted in at most 2 s.  The absolute
figure is reported, but because these machines are shared and noisy the figure to
compare between runs is the ratio to two baselines measured in the same run:
loading the same solution (``ksm check``'s work) and a plain word split of its text.
"""
from __future__ import annotations

import re
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from policy_lang import LoadOptions, load

from ..bench import generate_solution
from .runner import lint


@dataclass
class LintBench:
    policy_lines: int
    load_seconds: float          # parse + resolve (median)
    lint_seconds: float          # the lint rules alone, on the loaded solution (median)
    split_seconds: float         # word split of every file (median): the cheapest possible pass
    findings: Counter
    slowest: list[tuple[str, float]]

    @property
    def total(self) -> float:
        return self.load_seconds + self.lint_seconds

    def report(self) -> str:
        kinds = ", ".join(f"{c} x{n}" for c, n in sorted(self.findings.items())) or "none"
        slow = ", ".join(f"{c} {s * 1000:.0f} ms" for c, s in self.slowest)
        verdict = "meets" if self.total <= 2.0 else "MISSES"
        return "\n".join([
            f"lint: {self.policy_lines} PSL lines: load {self.load_seconds:.2f} s + rules {self.lint_seconds:.2f} s "
            f"= {self.total:.2f} s ({verdict} the 2 s goal)",
            f"  ratio to loading the same solution: {self.lint_seconds / self.load_seconds:.1f}x; "
            f"to a word split of its text ({self.split_seconds * 1000:.1f} ms): "
            f"{self.total / self.split_seconds:.0f}x",
            f"  slowest rules: {slow}",
            f"  findings: {kinds}",
        ])


def bench_lint(target_lines: int = 10_000, repeat: int = 3) -> LintBench:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        psl_lines = generate_solution(root, target_lines)
        texts = [p.read_text() for p in root.rglob("*") if p.is_file()]
        word = re.compile(r"\S+")
        loads, lints, splits = [], [], []
        result = None
        for _ in range(repeat):
            t0 = time.perf_counter()
            for t in texts:
                for _m in word.finditer(t):
                    pass
            t1 = time.perf_counter()
            sol = load(root, LoadOptions())
            t2 = time.perf_counter()
            result = lint(sol)
            t3 = time.perf_counter()
            splits.append(t1 - t0)
            loads.append(t2 - t1)
            lints.append(t3 - t2)
        slowest = sorted(result.seconds.items(), key=lambda kv: -kv[1])[:3]
        return LintBench(psl_lines, statistics.median(loads), statistics.median(lints), statistics.median(splits),
                         Counter(d.code for d in result.findings), slowest)
