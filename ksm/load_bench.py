"""``ksm bench load``: parse + resolve a generated solution, against a word split of the same text."""
from __future__ import annotations

import random
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from policy_lang import LoadOptions, load


@dataclass
class LoadBench:
    policy_lines: int
    total_lines: int
    seconds: float
    baseline_seconds: float
    errors: int

    @property
    def lines_per_second(self) -> float:
        return self.total_lines / self.seconds

    @property
    def ratio(self) -> float:
        return self.seconds / self.baseline_seconds

    def report(self) -> str:
        return (
            f"load: {self.total_lines} lines ({self.policy_lines} PSL) parsed and resolved in {self.seconds:.2f} s "
            f"= {self.lines_per_second:,.0f} lines/s; baseline word split {self.baseline_seconds:.3f} s; "
            f"ratio {self.ratio:.1f}x; errors {self.errors}"
        )


def generate_solution(root: Path, target_lines: int = 100_000, seed: int = 1) -> int:
    """Write a large, varied, valid solution under ``root``; returns its PSL line count.

    Shapes vary on purpose (different selector sets, nested matches, choices, asserts
    over message fields, Flow calls, PAL tests), so the figure is not the speed of
    parsing one line over and over.
    """
    rng = random.Random(seed)
    n_classes = max(4, target_lines // 600)
    (root / "einit" / "src").mkdir(parents=True, exist_ok=True)
    edl_dir = root / "resources"
    edl_dir.mkdir(exist_ok=True)
    for i in range(n_classes):
        (edl_dir / f"Svc{i}.idl").write_text(
            f"package gen.Svc{i}\n"
            f"const UInt32 Max{i} = 0x40;\n"
            f"struct Req{i} {{ UInt32 count; string<Max{i}> name; sequence<UInt16, 8> items; }}\n"
            "interface {\n"
            f"    Get(in UInt32 key, out UInt32 value, error SInt32 rc);\n"
            f"    Put(in Req{i} req, out UInt8 ok);\n"
            f"    Ping(in UInt8 v);\n"
            "}\n"
        )
        (edl_dir / f"Svc{i}Comp.cdl").write_text(
            f"component gen.Svc{i}Comp\nendpoints {{\n    api : gen.Svc{i}\n}}\n"
        )
        (edl_dir / f"Node{i}.edl").write_text(
            f"task class gen.Node{i}\ncomponents {{\n    core : gen.Svc{i}Comp\n}}\nendpoints {{\n    direct : gen.Svc{i}\n}}\n"
        )
    head = [
        "use nk.base._", "use nk.basic._", "use nk.flow._", "use nk.regex._",
        "use EDL kl.core.Core", "use EDL Einit",
        *[f"use EDL gen.Node{i}" for i in range(n_classes)],
        "execute: kl.core.Execute",
        "policy object st : Flow {",
        '    type State = "idle" | "busy" | "done"',
        '    config = { states : ["idle", "busy", "done"], initial : "idle",',
        '               transitions : { "idle" : ["busy"], "busy" : ["idle", "done"] } }',
        "}",
        "execute { grant () }",
        "response { grant () }",
        "error { grant () }",
    ]
    out = list(head)
    b = 0
    while len(out) < target_lines:
        b += 1
        i = rng.randrange(n_classes)
        j = rng.randrange(n_classes)
        ep = rng.choice(("core.api", "direct"))
        shape = rng.randrange(6)
        if shape == 0:
            out += [
                f"request src=gen.Node{j}, dst=gen.Node{i}, endpoint={ep}, method=Get {{",
                f"    assert (message.key < {rng.randrange(1, 10_000)})",
                "}",
            ]
        elif shape == 1:
            out += [
                f"request dst=gen.Node{i} {{",
                f"    match src=gen.Node{j} {{",
                f"        match endpoint={ep} method=Put {{",
                f"            assert ((message.req.count > {rng.randrange(100)}) && (message.req.items.[0] != 7))",
                f'            assert (re.match {{ text : message.req.name, pattern : "^[a-z]{{1,{rng.randrange(2, 30)}}}$" }})',
                "        }",
                "        match method=Ping { grant () }",
                "    }",
                "}",
            ]
        elif shape == 2:
            out += [
                f"request src=gen.Node{j} dst=gen.Node{i} endpoint={ep} method=Ping {{",
                "    choice (st.query { sid : dst_sid }) {",
                '        "idle" : grant ()',
                '        "busy" : st.enter { sid : dst_sid, state : "idle" }',
                "        _ : deny ()",
                "    }",
                "}",
            ]
        elif shape == 3:
            out += [
                f"response src=gen.Node{i}, endpoint={ep}, method=Get {{",
                f"    deny (message.value > {rng.randrange(1 << 20)})",
                "}",
            ]
        elif shape == 4:
            out += [
                f"// binding {b}: error replies of node {i}",
                f"error src=gen.Node{i} method=Get {{ assert (message.rc != {rng.randrange(-50, 0)}) }}",
            ]
        else:
            out += [
                f'assert "generated {b}" {{',
                "    setup {",
                "        k <- execute dst=kl.core.Core",
                "        e <- execute src=k dst=Einit",
                f"        a <- execute src=e dst=gen.Node{i}",
                f"        c <- execute src=e dst=gen.Node{j}",
                "    }",
                '    sequence "get" {',
                f"        grant request src=c dst=a endpoint={ep} method=Ping {{ v : {rng.randrange(256)} }}",
                "    }",
                "}",
            ]
    (root / "einit" / "src" / "security.psl").write_text("\n".join(out) + "\n")
    entities = ["entities:"]
    for i in range(min(n_classes, 50)):
        entities += [f"  - name: gen.Node{i}", f"    task: node{i}"]
        if i:
            entities += ["    connections:", f"      - target: node{i - 1}", f"        id: link{i}"]
    (root / "einit" / "src" / "init.yaml").write_text("\n".join(entities) + "\n")
    return len(out)


def bench_load(target_lines: int = 100_000, repeat: int = 3) -> LoadBench:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        psl_lines = generate_solution(root, target_lines)
        texts = [p.read_text() for p in root.rglob("*") if p.is_file()]
        total = sum(t.count("\n") for t in texts)
        word = re.compile(r"\S+")
        base = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            for t in texts:
                for _m in word.finditer(t):
                    pass
            base.append(time.perf_counter() - t0)
        runs = []
        errors = 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            sol = load(root, LoadOptions())
            runs.append(time.perf_counter() - t0)
            errors = sum(1 for d in sol.diagnostics if d.severity.value == "error")
        return LoadBench(psl_lines, total, statistics.median(runs), statistics.median(base), errors)
