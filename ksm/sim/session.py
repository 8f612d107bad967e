"""One ``ksm simulate`` run: behaviours or a scenario, or the replay of
counterexamples, with the taint monitor, and what it reports.

Kept apart from the CLI so tests and embedding code get the same results the
command prints.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from policy_lang.props import Property
from policy_lang.solution import Solution

from .behaviour import behaviours_of, load_module, start
from .codes import SIM_BEHAVIOUR, SimInputError
from .kernel import Kernel, Outcome
from .replay import Replayed, load_traces, replay
from .scenario import Failure, install, load_scenario
from .taint import TaintMonitor, Violation
from .trace import channel_summary, render_summary, timeline

DEFAULT_BEHAVIOURS = Path("sim") / "behaviours.py"


@dataclass
class RunReport:
    """What one simulation run produced."""

    kernel: Kernel
    outcome: Outcome
    failures: list[Failure] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    title: str = "run"
    mismatches: list[str] = field(default_factory=list)      # replay: decisions that differ

    @property
    def ok(self) -> bool:
        return self.outcome.ok and not self.failures and not self.violations and not self.mismatches

    def denied(self) -> int:
        return sum(1 for r in self.kernel.records if r.get("decision") == "denied")

    def render(self, show_timeline: bool = True) -> str:
        out = [f"== {self.title}"]
        if show_timeline:
            out += [timeline(self.kernel.records), ""]
        out.append(render_summary(channel_summary(self.kernel.records)))
        o = self.outcome
        line = f"outcome: {o.status} after {o.steps} steps, {self.denied()} message(s) denied"
        if o.cycle:
            line += f"; wait-for cycle: {' -> '.join(o.cycle + o.cycle[:1])}"
        elif o.status == "deadlock":
            line += f"; blocked: {', '.join(o.blocked)}"
        out.append(line)
        if o.detail:
            out.append(o.detail)
        out += [f"crash: {e}" for e in o.errors]
        out += [f.render() for f in self.failures]
        out += [f"replay disagrees: {m}" for m in self.mismatches]
        out += [v.render() for v in self.violations]
        out.append("OK" if self.ok else "FAILED")
        return "\n".join(out)

    def to_json(self) -> dict:
        o = self.outcome
        return {"title": self.title, "ok": self.ok,
                "outcome": {"status": o.status, "steps": o.steps, "cycle": o.cycle, "blocked": o.blocked,
                            "errors": o.errors, "running": o.running, "detail": o.detail},
                "channels": channel_summary(self.kernel.records),
                "failures": [{"location": str(f.span), "message": f.message} for f in self.failures],
                "replay_mismatches": self.mismatches,
                "violations": [v.to_json() for v in self.violations],
                "records": self.kernel.records}


def _monitor(props: Iterable[Property] | None) -> TaintMonitor | None:
    props = list(props or ())
    return TaintMonitor(props) if props else None


def _kernel(solution: Solution, seed: int, props: Iterable[Property] | None) -> tuple[Kernel, list[Violation]]:
    """A kernel with the taint monitor attached when there are properties, and the
    list its violations will land in."""
    kernel = Kernel(solution, seed=seed)
    monitor = _monitor(props)
    if monitor is None:
        return kernel, []
    kernel.monitors.append(monitor)
    return kernel, monitor.violations


def run_behaviours(solution: Solution, module_path: str | Path | None, seed: int = 0, steps: int = 100_000,
                   timeout: float | None = None, props: Iterable[Property] | None = None) -> RunReport:
    """Run the behaviour module (default: ``sim/behaviours.py`` in the solution folder)."""
    if module_path is None:
        module_path = Path(solution.root) / DEFAULT_BEHAVIOURS
        if not module_path.is_file():
            raise SimInputError(SIM_BEHAVIOUR, f"no behaviours given and no {DEFAULT_BEHAVIOURS} in {solution.root}",
                                None, "pass --behaviours MODULE.py or --scenario FILE.yaml")
    kinds = behaviours_of(load_module(module_path), solution.classes)
    kernel, violations = _kernel(solution, seed, props)
    start(kernel, kinds)
    outcome = kernel.run(steps, timeout)
    return RunReport(kernel, outcome, violations=violations, title=f"{solution.root} with {module_path} (seed {seed})")


def run_scenario(solution: Solution, path: str | Path, seed: int | None = None, steps: int | None = None,
                 timeout: float | None = None, props: Iterable[Property] | None = None) -> RunReport:
    """Run a scenario file; the command line's seed and steps win over the file's."""
    scenario = load_scenario(path, solution)
    seed = seed if seed is not None else scenario.seed or 0
    kernel, violations = _kernel(solution, seed, props)
    failures = install(kernel, scenario)
    outcome = kernel.run(steps if steps is not None else scenario.steps or 100_000, timeout)
    return RunReport(kernel, outcome, failures, violations, title=f"{solution.root} scenario {path} (seed {seed})")


def run_replays(solution: Solution, path: str | Path, only: str | None = None,
                props: Iterable[Property] | None = None) -> list[RunReport]:
    """Re-enact every counterexample and witness in a ``ksm prove``/``ksm flows`` JSON file."""
    reports = []
    for trace in load_traces(path, solution, only):
        monitor = _monitor(props)
        done: Replayed = replay(solution, trace, [monitor] if monitor else [])
        outcome = Outcome("finished", len(trace.steps))
        reports.append(RunReport(done.kernel, outcome, violations=monitor.violations if monitor else [],
                                 title=f"replay of {trace.title}", mismatches=done.mismatches))
    return reports
