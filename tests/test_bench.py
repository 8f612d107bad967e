"""Smoke tests of the benchmarks: they run on tiny inputs and report every figure.

They assert nothing about speed (timings belong to `ksm bench`, not to tests).
"""
from pathlib import Path

import pytest

from ksm.bench import bench_decide, bench_decide_vs_others, bench_load


def test_bench_load_reports_lines_per_second_and_ratio():
    b = bench_load(600, repeat=1)
    assert b.errors == 0 and b.total_lines >= 600 and b.lines_per_second > 0
    assert "lines/s" in b.report() and "ratio" in b.report()


def test_bench_decide_reports_every_figure():
    report = bench_decide(small=10, large=40, sample=60).report()
    for needle in ("frozenset", "match-only", "structure check", "decide_many", "growth 10 -> 40"):
        assert needle in report


def test_bench_compare_runs_with_or_without_the_other_engines():
    report = bench_decide_vs_others(sizes=(10,)).report()
    assert "ksm decide" in report and "cedarpy" in report and "pycasbin" in report


def test_bench_prove_reports_times_and_a_baseline():
    from ksm.bench import bench_prove

    report = bench_prove(sizes=(20,), models=Path(__file__).resolve().parent.parent / "models").report()
    assert "baseline: one trivial Z3 query" in report and "ratio to the trivial query" in report
    generated = [line for line in report.splitlines() if line.startswith("[20 instances]") and "(" in line]
    assert len(generated) == 4 and all("PROVED" in line for line in generated)


def test_bench_flows_reports_labelling_checks_and_baselines():
    from ksm.bench import bench_flows

    report = bench_flows(sizes=(30,), channels_per_instance=3, distinct=(12, 24)).report()
    for figure in ("baseline: one trivial Z3 query", "label", "flow checks",
                   "ratio to one walk", "derive the data-flow graphs", "peak resident memory",
                   "baseline: one proof per class key", "ratio of the baseline to shared labelling",
                   "growth 12 -> 24 classes"):
        assert figure in report, figure
    assert "[30 instances of 12 classes, 90 channels]" in report and "[24 instances of 24 classes, 72 channels]" in report
    # the benchmark checks every label against the generator's own expectation, and raises otherwise
    import ksm.flows.generate as gen

    real = gen.expected_statuses
    try:
        gen.expected_statuses = lambda sol: {**real(sol), ("error", "granted"): 1}
        with pytest.raises(AssertionError, match="differ from the generator"):
            bench_flows(sizes=(), channels_per_instance=2, distinct=(8,))
    finally:
        gen.expected_statuses = real


def test_bench_kernel_checks_every_verdict_and_decision():
    """Tiny sizes; the benchmark itself asserts the verdicts per kind of class and every decision."""
    from ksm.kernel_bench import bench_kernel

    b = bench_kernel(sizes=(6,), events=300)
    names = [name for name, _, _ in b.rows]
    assert "classes=6: access table / load" in names and "classes=6: kernel / typed, warm" in names
    assert all(value >= 0 for _, value, _ in b.rows)


def test_bench_channels_finds_exactly_the_dead_channels_and_unanswered_methods_it_generated():
    """The many-classes lint shape: the generator knows its LNT005/LNT006 findings; the bench asserts them."""
    from ksm.lint.bench import bench_channels

    b = bench_channels(classes=8, channels=60)
    assert b.findings["LNT005"] > 0 and b.findings["LNT006"] > 0
    assert "8 distinct classes and 60 channels" in b.report()


def test_bench_load_gc_restores_the_freezing_setting():
    from ksm.load_bench import bench_load_gc
    from policy_lang import perf

    before = perf.FREEZE_MIN_OBJECTS
    b = bench_load_gc(bindings=300)
    assert perf.FREEZE_MIN_OBJECTS == before
    assert "first gc.collect()" in b.report() and "without freezing" in b.report() and b.load_seconds > 0
