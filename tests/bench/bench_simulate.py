"""Benchmark (not a test): IPC round trips per second in the simulator.

Run: python tests/bench/bench_simulate.py   (or: ksm bench simulate)
Goal: >= 100,000 round trips/s with decisions on and trace off; compare the ratio
to the bare Python call between runs.
"""
from ksm.sim.bench import bench_simulate

if __name__ == "__main__":
    print(bench_simulate().report())
