"""Bad input never produces a traceback: mutated example files only ever give diagnostics.

KSM_FUZZ_EXAMPLES=2000 pytest tests/test_robustness.py runs a deeper search.
"""
import os
import shutil

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import MODEL_DIRS, read_defines
from policy_lang import LoadOptions, load

FILES = sorted(
    p for m in MODEL_DIRS for p in m.rglob("*")
    if p.is_file() and p.suffix in (".psl", ".in", ".yaml", ".edl", ".cdl", ".idl")
)
TOKENS = ["{", "}", "(", ")", "=", ",", ":", ";", "<-", "~>", "match", "request", "use", "EDL", "@X@",
          "{% if A %}", "{% endif %}", "{{ B }}", "message.", ".[", "\"", "/*", "-", "0x", "\x00", "é", "\n", "!!python/object:os.system", "&a", "*a"]


@st.composite
def mutation(draw):
    f = draw(st.sampled_from(FILES))
    text = f.read_text()
    kind = draw(st.sampled_from(["delete", "insert", "duplicate", "truncate"]))
    pos = draw(st.integers(0, len(text)))
    if kind == "delete":
        end = draw(st.integers(pos, min(len(text), pos + 40)))
        text = text[:pos] + text[end:]
    elif kind == "insert":
        text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
    elif kind == "duplicate":
        end = draw(st.integers(pos, min(len(text), pos + 80)))
        text = text[:end] + text[pos:end] + text[end:]
    else:
        text = text[:pos]
    return f, text


@settings(max_examples=int(os.environ.get("KSM_FUZZ_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation())
def test_mutated_examples_give_diagnostics_not_tracebacks(tmp_path_factory, mut):
    f, text = mut
    model = next(m for m in MODEL_DIRS if m in f.parents)
    dst = tmp_path_factory.mktemp("m") / model.name
    shutil.copytree(model, dst)
    (dst / f.relative_to(model)).write_text(text)
    sol = load(dst, LoadOptions(defines=read_defines(model)))
    for d in sol.diagnostics:
        assert d.code and d.message
        if d.span is not None:
            assert d.span.line >= 1 and d.span.column >= 1
