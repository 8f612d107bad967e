"""Differential testing of the back ends on random valid solutions.

* :mod:`ksm.fuzz.generate` writes a complete, valid solution folder from a seed
  (IDL, CDL, EDL, init.yaml, a PSL policy over every security model, and a property
  file), deterministically per seed;
* :mod:`ksm.fuzz.harness` checks, per generated solution, that the decision
  function and the Z3 model agree (``crosscheck``), that every property the prover
  proves survives concrete probes, that every counterexample replays on a fresh
  decision function, and that nothing raises.  :func:`run_fuzz` runs many seeds and
  returns a :class:`FuzzReport`.

See "Differential testing" in docs/proving.md.  Reproduce one seed with
``python -m ksm.fuzz SEED [--out DIR]``.
"""
from __future__ import annotations

from .generate import GeneratedSolution, generate_solution
from .harness import Finding, FuzzOptions, FuzzReport, SeedResult, check_seed, run_fuzz

__all__ = [
           "Finding",
           "FuzzOptions",
           "FuzzReport",
           "GeneratedSolution",
           "SeedResult",
           "check_seed",
           "generate_solution",
           "run_fuzz",
]
