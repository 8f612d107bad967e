import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"


def read_defines(model: Path) -> dict[str, str]:
    """-D values a model's README command passes (models/<name>/defines.txt, NAME=VALUE lines)."""
    f = model / "defines.txt"
    out: dict[str, str] = {}
    if f.is_file():
        for line in f.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out


MODEL_DIRS = sorted(p for p in MODELS.iterdir() if p.is_dir()) if MODELS.is_dir() else []


@pytest.fixture(params=MODEL_DIRS, ids=lambda p: p.name)
def model_dir(request) -> Path:
    return request.param


def write_solution(root: Path, files: dict[str, str]):
    """Write ``{relative path: text}`` under ``root`` and load it (checked ok)."""
    from policy_lang import load

    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    sol = load(root)
    assert sol.ok, [d.render() for d in sol.diagnostics]
    return sol


def pytest_collection_modifyitems(config, items):
    """Tests marked ``soak`` run only when asked for: ``-m soak`` (any marker
    expression naming it) or ``KSM_SOAK=1``; otherwise they are skipped."""
    if os.environ.get("KSM_SOAK") == "1" or "soak" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="soak test: run with -m soak or KSM_SOAK=1")
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)
