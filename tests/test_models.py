"""Every bundled example loads with zero errors, and resolves to the checked-in golden model.

Regenerate goldens after an intended change: UPDATE_GOLDEN=1 pytest tests/test_models.py
"""
import json
import os
from pathlib import Path

import pytest

from conftest import MODEL_DIRS, read_defines
from policy_lang import LoadOptions, load
from policy_lang.dump import solution_model

GOLDEN = Path(__file__).parent / "golden"


def _load(model: Path):
    return load(model, LoadOptions(defines=read_defines(model)))


def test_three_examples_exist():
    names = {p.name for p in MODEL_DIRS}
    assert {"echo", "smart_lock", "showcase"} <= names


def test_model_loads_without_errors(model_dir):
    sol = _load(model_dir)
    errors = [d.render() for d in sol.diagnostics if d.severity.value == "error"]
    assert errors == []
    s = sol.summary()
    assert s["classes"] >= 2 and s["instances"] >= 2 and s["channels"] >= 1 and s["bindings"] >= 4


def test_model_matches_golden(model_dir, monkeypatch):
    monkeypatch.chdir(model_dir.parent.parent)  # spans relative to the repository root
    model = solution_model(_load(Path("models") / model_dir.name))
    path = GOLDEN / f"{model_dir.name}.json"
    text = json.dumps(model, indent=1, sort_keys=True, default=str) + "\n"
    if os.environ.get("UPDATE_GOLDEN") or not path.exists():
        path.write_text(text)
        if not os.environ.get("UPDATE_GOLDEN"):
            pytest.fail(f"golden file {path.name} was missing and has been written; review and commit it")
    assert json.loads(text) == json.loads(path.read_text())


def test_realistic_example_is_realistic():
    sol = _load(Path(__file__).parent.parent / "models" / "smart_lock")
    assert sol.summary()["classes"] >= 8
    # nested components give 3-segment qualified endpoint names
    assert any(ep.name.count(".") >= 2 for c in sol.classes.values() for ep in c.endpoints)
    assert any(o.model == "Flow" for o in sol.objects.values())
    assert len({i.cls for i in sol.instances}) < len(sol.instances)  # two tasks of one class
    assert sol.tests


def test_showcase_needs_its_defines():
    model = Path(__file__).parent.parent / "models" / "showcase"
    sol = load(model, LoadOptions())
    assert any(d.code.startswith("TPL") for d in sol.diagnostics)
