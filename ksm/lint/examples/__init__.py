"""The example solution the catalogue's examples are linted against.

``skeleton/`` is a complete small solution (a client, a key-value server, a logger,
and a described but unstarted ``demo.Spare``); an :class:`~ksm.lint.catalogue.Example`
supplies its ``security.psl`` (and maybe its init.yaml).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from policy_lang.resolve import load

from ..catalogue import Example
from ..config import LintConfig
from ..runner import LintResult, lint

SKELETON = Path(__file__).resolve().parent / "skeleton"
POLICY = Path("einit") / "src" / "security.psl"
INIT = Path("einit") / "src" / "init.yaml"


def materialize(example: Example, dest: Path) -> Path:
    """Write the example solution under ``dest`` (which must not exist); returns ``dest``."""
    shutil.copytree(SKELETON, dest, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / POLICY).write_text(example.policy, encoding="utf-8")
    if example.init is not None:
        (dest / INIT).write_text(example.init, encoding="utf-8")
    return dest


def lint_example(example: Example, config: LintConfig | None = None) -> LintResult:
    """Lint one example in a scratch folder; spans in the result name files under it."""
    with tempfile.TemporaryDirectory(prefix="ksm-lint-example-") as tmp:
        root = materialize(example, Path(tmp) / "example")
        return lint(load(root), config)
