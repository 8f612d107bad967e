"""Policy linting: a catalogue of rules run on the resolved solution (see docs/lint.md)."""
from .catalogue import RULES, Example, Rule, all_rules
from .config import LintConfig
from .runner import LintResult, lint

__all__ = ["Example", "LintConfig", "LintResult", "RULES", "Rule", "all_rules", "lint"]
