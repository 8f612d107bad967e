"""Benchmark (not a test): IPC round trips in the simulator, per call and per second.

Run: python tests/bench/bench_simulate.py   (or: ksm bench simulate)
Workloads: echo (one client, Ping) and smart_lock (three clients at once: strings,
arrays, sequences of structs, regex denials), each with decisions on (trace off and
on) and off; every run is checked against what its workload must produce.
Goals: >= 100,000 round trips/s with decisions on and trace off, >= 50,000 with the
trace on; compare the p50 ratio to the bare Python call between runs.
"""
from ksm.sim.bench import bench_simulate

if __name__ == "__main__":
    print(bench_simulate().report())
