"""Benchmark (not a test): the kernel access table, the kernel lint rules and kernel decisions.

Run: python tests/bench/bench_kernel.py   (or: ksm bench kernel)
Figures are ratios against baselines of the same run (the solution's load; typed decisions).
"""
from ksm.kernel_bench import bench_kernel

if __name__ == "__main__":
    print(bench_kernel().report())
