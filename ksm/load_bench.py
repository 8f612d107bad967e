"""``ksm bench load``: parse + resolve generated solutions, against a word split of the same text.

Two workloads of about the same number of lines: a few large PSL files
(:func:`generate_solution`), and some 4,000 small IDL/CDL/EDL files with PSL groups
that use them (:func:`generate_many_file_solution`, where per-file costs show).  Each
reports lines/s, the same-run baseline and where the time goes (read, scan, parse
per language, resolve).  :func:`bench_load_gc` measures the collector's pass after a
100,000-binding load (``python tests/bench/bench_load_many.py``).
"""
from __future__ import annotations

import random
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from policy_lang import LoadOptions, load
from policy_lang.perf import phase_times


class _Rate:
    """Lines per second and the ratio to the word-split baseline, of a timed load."""

    total_lines: int
    seconds: float
    baseline_seconds: float

    @property
    def lines_per_second(self) -> float:
        return self.total_lines / self.seconds

    @property
    def ratio(self) -> float:
        return self.seconds / self.baseline_seconds


@dataclass
class ManyFileBench(_Rate):
    """The many-file workload: its shape, load time, baseline and where the time goes."""

    files: dict[str, int]          # language -> files
    lines: dict[str, int]          # language -> lines
    classes: int
    bindings: int
    seconds: float
    baseline_seconds: float
    errors: int
    phases: dict[str, float]       # phase -> seconds in the median run (see _phase_report)
    phase_files: dict[str, int]

    @property
    def total_lines(self) -> int:
        return sum(self.lines.values())

    def report(self) -> str:
        described = sum(n for lang, n in self.files.items() if lang in ("idl", "cdl", "edl"))
        shape = ", ".join(f"{self.files[lang]:,} {lang.upper()}" for lang in ("idl", "cdl", "edl", "psl")
                          if self.files.get(lang))
        return (
            f"load, many files: {sum(self.files.values()):,} files ({described:,} descriptions; {shape}; init.yaml), "
            f"{self.total_lines:,} lines, {self.classes:,} classes, {self.bindings:,} bindings\n"
            f"  parsed and resolved in {self.seconds:.2f} s = {self.lines_per_second:,.0f} lines/s; "
            f"baseline word split {self.baseline_seconds:.3f} s; ratio {self.ratio:.1f}x; errors {self.errors}\n"
            f"  phases: {_phase_report(self.phases, self.phase_files, self.seconds)}"
        )


@dataclass
class LoadBench(_Rate):
    policy_lines: int
    total_lines: int
    seconds: float
    baseline_seconds: float
    errors: int
    phases: dict[str, float] | None = None
    phase_files: dict[str, int] | None = None
    many: ManyFileBench | None = None

    def report(self) -> str:
        out = (
            f"load: {self.total_lines} lines ({self.policy_lines} PSL) parsed and resolved in {self.seconds:.2f} s "
            f"= {self.lines_per_second:,.0f} lines/s; baseline word split {self.baseline_seconds:.3f} s; "
            f"ratio {self.ratio:.1f}x; errors {self.errors}"
        )
        if self.phases is not None:
            out += f"\n  phases: {_phase_report(self.phases, self.phase_files or {}, self.seconds)}"
        if self.many is not None:
            out += "\n" + self.many.report()
        return out


#: Phases in the order a load meets them; "resolve" is what no other phase claims.
_PHASES = ("read", "scan", "parse psl", "parse idl", "parse cdl", "parse edl", "parse yaml", "resolve")

#: The Flow policy object both generated policies declare (``st``, three states).
_FLOW_OBJECT = (
    "policy object st : Flow {",
    '    type State = "idle" | "busy" | "done"',
    '    config = { states : ["idle", "busy", "done"], initial : "idle",',
    '               transitions : { "idle" : ["busy"], "busy" : ["idle", "done"] } }',
    "}",
)


def _phase_report(phases: dict[str, float], files: dict[str, int], total: float) -> str:
    parts = []
    for name in _PHASES:
        if name not in phases:
            continue
        n = files.get(name)
        count = f", {n:,} file{'s' if n != 1 else ''}" if n and name.startswith(("read", "parse")) else ""
        parts.append(f"{name} {phases[name]:.2f} s ({phases[name] / total:.0%}{count})")
    return "; ".join(parts)


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
        *_FLOW_OBJECT,
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


# ------------------------------------------------------------------ many files
@dataclass
class ManyFileShape:
    """What :func:`generate_many_file_solution` wrote, and what loading it must give."""

    files: dict[str, int]          # language -> number of files
    lines: dict[str, int]          # language -> lines
    classes: int                   # process classes the solution must have (kernel and Einit included)
    bindings: int                  # top-level bindings
    tests: int                     # assert blocks
    instances: int
    channels: int

    @property
    def total_files(self) -> int:
        return sum(self.files.values())

    @property
    def total_lines(self) -> int:
        return sum(self.lines.values())

    @property
    def description_files(self) -> int:
        return sum(n for lang, n in self.files.items() if lang in ("idl", "cdl", "edl"))


#: (method name, IDL parameters, in-parameter asserts, out/error-parameter checks)
#: Each signature comes with PSL expressions over its own message fields, so the
#: bindings the generator writes check typed paths through structs, unions,
#: sequences, arrays, handles and strings.
_SIGS = (
    ("Get", "in UInt32 key, out UInt32 value, error SInt32 rc",
     ("message.key < {n}", "(message.key >= {k}) && (message.key != {n})"),
     ("message.value > {n}",), ("message.rc != -{k}",)),
    ("Put", "in Record rec, in Flags flags, out UInt8 ok",
     ("message.rec.count > {k}", "(message.rec.items.[0] != {k}) || (message.flags == 0)",
      "message.rec.where.x <= {n}"),
     ("message.ok == 1",), ()),
    ("Lookup", "in Label name, out Point where, error SInt32 rc",
     ("!pred.empty (message.name)",), ("message.where.y < {n}",), ("message.rc < 0",)),
    ("Send", "in Value v, in Mac mac, in UInt16 port",
     ("message.v.num < {n}", "(message.mac.[0] & 0x1) == 0", "message.port != {k}"), (), ()),
    ("Batch", "in sequence<Point, 16> items, in UInt8 mode, out UInt32 count",
     ("message.items.[1].x > {k}", "bool.any ([message.mode == 1, message.mode == {k}])"),
     ("message.count <= 16",), ()),
    ("Open", "in Label path, in UInt32 mode, out Handle file, error SInt32 rc",
     ("(message.mode & 0xF0) == 0",), ("(message.file.rights & 0x2) != 0",), ("message.rc != 0",)),
    ("Stat", "in Digest sum, out Record info, out SInt64 size",
     ("message.sum.[3] == {k}",), ("message.info.count < {n}", "message.size >= 0"), ()),
    ("Ping", "", (), (), ()),
)


def generate_many_file_solution(root: Path, target_lines: int = 100_000, seed: int = 1) -> ManyFileShape:
    """Write a solution of many small files under ``root``: about 4 description files per 100 lines.

    Per process class: its own IDL package (constants, a struct and a typedef of its
    own, 3-6 methods of varied signatures over the group's shared types), a control
    IDL, a CDL component (endpoint, a nested shared logger component, sometimes a
    security interface) and the EDL (``task class`` or ``entity``, endpoints, the
    component).  Classes come in groups of 20; each group has a shared types IDL
    (constants, typedefs of strings, arrays, bytes and sequences, a struct, a union),
    a logger IDL and CDL, and a PSL file that ``use EDL``s its classes, declares a
    HashSet object and holds the group's bindings (selectors in every combination,
    nested matches, choices on Flow and Regex, asserts on message paths, security,
    response and error bindings, ``interface=`` and ``component=`` selectors) and a
    PAL test block.  The top-level policy includes the group files; init.yaml starts
    every class with a channel to its neighbour.
    """
    rng = random.Random(seed)
    n_classes = max(4, round(target_lines / 104))
    group_size = 20
    n_groups = (n_classes + group_size - 1) // group_size
    files = {"idl": 0, "cdl": 0, "edl": 0, "psl": 0, "yaml": 0}
    lines = dict.fromkeys(files, 0)
    bindings = 0
    tests = 0

    def write(path: Path, text: str, lang: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        files[lang] += 1
        lines[lang] += text.count("\n")

    src = root / "einit" / "src"
    top = [
        "/* generated: many small files */",
        "use nk.base._", "use nk.basic._", "use nk.flow._", "use nk.regex._", "use nk.hashmap._",
        "use EDL kl.core.Core", "use EDL Einit",
        "execute: kl.core.Execute",
        *_FLOW_OBJECT,
        'audit profile trace = { 0 : { base : { kss : ["denied"] } }, 1 : { st : { kss : ["granted", "denied"], omit : ["idle"] } } }',
        "audit default = trace 0",
    ]
    top_bindings = [
        "execute src=kl.core.Core { grant () }",
        "execute src=Einit { st.init { sid : dst_sid } }",
        "request src=Einit dst=kl.core.Core { grant () }",
        "response { grant () }",
        "error { match src=kl.core.Core { grant () } }",
    ]
    bindings += len(top_bindings)
    entities = ["entities:"]
    channels = 0
    for g in range(n_groups):
        pkg = f"gen.g{g}"
        res = root / "resources" / f"g{g}"
        members = range(g * group_size, min(n_classes, (g + 1) * group_size))
        lim = rng.randrange(8, 64)
        write(res / "idl" / "Types.idl", "\n".join([
            f"/* shared types of group {g} */",
            f"package {pkg}.Types",
            "",
            f"const UInt32 NameLen = 0x{lim:x};",
            f"const UInt32 Items = ({rng.randrange(2, 9)} << 2) + 1;   // shift and sum",
            "const UInt32 MacLen = 0o6;",
            f"const SInt32 Floor = -{rng.randrange(1, 99)};",
            "typedef string<NameLen> Label;",
            "typedef array<UInt8, MacLen> Mac;",
            "typedef array<UInt8, 16> Digest;",
            "typedef bytes<256> Frame;",
            "typedef UInt16 Flags;",
            "struct Point { SInt32 x; SInt32 y; }",
            "struct Record {",
            "    UInt32 count;",
            "    Label  name;",
            "    Point  where;",
            "    sequence<UInt16, Items> items;",
            "};",
            "union Value { UInt32 num; Label text; Frame raw; }",
            "",
        ]), "idl")
        write(res / "idl" / "Log.idl", "\n".join([
            f"package {pkg}.Log",
            f"import {pkg}.Types",
            "interface {",
            "    Write(in Label line, in UInt8 level, error SInt32 rc);",
            "    Flush();",
            "}",
            "",
        ]), "idl")
        write(res / "cdl" / "Logger.cdl", "\n".join([
            f"component {pkg}.Logger",
            "endpoints {",
            f"    log : {pkg}.Log",
            "}",
            "",
        ]), "cdl")
        psl = [f"/* group {g} */", "", f"policy object seen{g} : HashSet {{",
               "    type Entry = UInt32", f"    config = {{ set_size : {rng.randrange(4, 64)}, pool_size : 1 }}", "}", ""]
        sigs_of: dict[int, list[int]] = {}
        secured: set[int] = set()
        for i in members:
            picks = sorted(rng.sample(range(len(_SIGS)), rng.randrange(3, 7)))
            sigs_of[i] = picks
            local = rng.randrange(3)
            idl = [f"/* interface of node {i} */", f"package {pkg}.Api{i}", "", f"import {pkg}.Types", ""]
            if local == 0:
                idl += [f"const UInt32 Lim{i} = {rng.randrange(2, 40)} * 2;",
                        f"struct Req{i} {{ UInt32 id; string<Lim{i}> tag; Point at; }}",
                        f"typedef sequence<Req{i}, 4> Reqs{i};"]
            elif local == 1:
                idl += [f"typedef array<Point, {rng.randrange(2, 9)}> Path{i};",
                        f"union Key{i} {{ UInt64 id; Label name; }}"]
            else:
                idl += [f"const UInt16 Port{i} = 0x{rng.randrange(1, 0xFFFF):x};"]
            idl += ["", "interface {"]
            for s in picks:
                name, params = _SIGS[s][0], _SIGS[s][1]
                idl.append(f"    {name}({params});")
            if local == 0:
                idl.append(f"    Submit(in Req{i} req, in Reqs{i} more, out UInt8 ok);")
            elif local == 1:
                idl.append(f"    Route(in Path{i} hops, in Key{i} key, error SInt32 rc);")
            idl += ["}", ""]
            write(res / "idl" / f"Api{i}.idl", "\n".join(idl), "idl")
            write(res / "idl" / f"Ctl{i}.idl", "\n".join([
                f"package {pkg}.Ctl{i}", "",
                "interface {",
                "    Reset(in UInt8 level);",
                "    Status(out UInt32 state, error SInt32 rc);",
                "}", "",
            ]), "idl")
            sec = rng.randrange(4) == 0
            if sec:
                secured.add(i)
            write(res / "cdl" / f"Core{i}.cdl", "\n".join([
                f"/* core of node {i} */",
                f"component {pkg}.Core{i}",
                *([f"security {pkg}.Ctl{i}"] if sec else []),
                "endpoints {",
                f"    ctl : {pkg}.Ctl{i}",
                "}",
                "components {",
                f"    logger : {pkg}.Logger",
                "}", "",
            ]), "cdl")
            header = "entity" if i % 7 == 3 else "task class"
            sep = rng.choice(("\n", ";\n"))
            write(res / "edl" / f"Node{i}.edl", "\n".join([
                f"{header} {pkg}.Node{i}", "",
                "components {",
                f"    core : {pkg}.Core{i}",
                "}", "",
                "endpoints {",
                f"    api : {pkg}.Api{i}{sep.rstrip()}",
                "}", "",
            ]), "edl")
            psl.append(f"use EDL {pkg}.Node{i}")
        psl.append("")
        first = members[0]
        for i in members:
            cls = f"{pkg}.Node{i}"
            j = first + (i - first + 1) % len(members)   # neighbour in the group
            peer = f"{pkg}.Node{j}"
            plan = [(s, shape) for s in rng.sample(sigs_of[i], 2) for shape in rng.sample(range(10), 7)]
            for sig_index, shape in plan:
                name, _params, ins, outs, errs = _SIGS[sig_index]
                n, k = rng.randrange(10, 100_000), rng.randrange(1, 9)
                fill = {"n": n, "k": k}
                bindings += 1
                if shape == 0:
                    cond = (ins[0] if ins else "message.key < 1") if name != "Ping" else None
                    body = f"assert ({cond.format(**fill)})" if cond and ins else "grant ()"
                    psl += [f"request src={peer}, dst={cls}, endpoint=api, method={name} {{", f"    {body}", "}"]
                elif shape == 1:
                    checks = [f"            assert ({c.format(**fill)})" for c in ins] or ["            grant ()"]
                    psl += [f"request dst={cls} {{",
                            f"    match src={peer} {{",
                            f"        match endpoint=api method={name} {{", *checks, "        }",
                            "        match endpoint=core.ctl { grant () }",
                            "    }",
                            f"    match src={pkg}.Node{first} endpoint=core.logger.log method=Write {{",
                            '        assert (re.match { text : message.line, pattern : "^[a-z ]{1,%d}$" })' % rng.randrange(2, 80),
                            "    }",
                            "}"]
                elif shape == 2:
                    psl += [f"request src={peer} dst={cls} endpoint=core.ctl method=Reset {{",
                            "    choice (st.query { sid : dst_sid }) {",
                            f'        "idle" : assert (message.level < {k})',
                            '        "busy" : st.enter { sid : dst_sid, state : "idle" }',
                            "        _ : deny ()",
                            "    }",
                            "}"]
                elif shape == 3:
                    body = [f"    deny ({c.format(**fill)})" for c in outs] or ["    grant ()"]
                    psl += [f"response src={cls}, endpoint=api, method={name} {{", *body, "}"]
                elif shape == 4:
                    body = [f"assert ({c.format(**fill)})" for c in errs] or ["grant ()"]
                    psl += [f"// error replies of node {i}",
                            f"error src={cls} method={name} {{ {' '.join(body)} }}"]
                elif shape == 5:
                    psl += [f"request src={peer} dst={cls} interface={pkg}.Log {{",
                            "    match method=Write { assert ((message.level >= 1) && (message.level <= 7)) }",
                            "    match method=Flush { grant () }",
                            "}"]
                elif shape == 6:
                    psl += [f"request src={peer} dst={cls} endpoint=core.ctl method=Status {{ grant () }}",
                            f"response src={cls} dst={peer} endpoint=core.ctl method=Status {{",
                            f"    seen{g}.add {{ sid : src_sid, entry : message.state }}",
                            "}"]
                    bindings += 1
                elif shape == 7:
                    if i in secured:
                        psl += [f"security src={cls} method=Reset {{",
                                f"    assert (message.level <= {k})",
                                '    st.enter { sid : src_sid, state : "busy" }',
                                "}"]
                    else:
                        psl += [f"execute src=Einit, dst={cls} {{ seen{g}.init {{ sid : dst_sid }} }}"]
                elif shape == 8:
                    psl += [f"request src={peer} dst={cls} component={pkg}.Logger {{",
                            f"    assert (seen{g}.contains {{ sid : dst_sid, entry : {n} }})",
                            "}"]
                else:
                    psl += [f"request dst={cls} method=Ping {{ grant () }}" if "Ping" in [_SIGS[s][0] for s in sigs_of[i]]
                            else f"request dst={cls} endpoint=api {{ audit trace grant () }}"]
            entities += [f"  - name: {cls}", f"    task: n{i}"]
            if i % 5 == 0:
                entities += ["    args:", "      - --verbose", f"      - '{i}'", "    env:", f"      NODE: n{i}"]
            entities += ["    connections:", f"      - target: n{j}", f"        id: link{i}"]
            channels += 1
        tests += 1
        a, b = first, first + (1 % len(members))
        psl += [f'assert "group {g}" {{',
                "    setup {",
                "        k <- execute dst=kl.core.Core",
                "        e <- execute src=k dst=Einit",
                f"        a <- execute src=e dst={pkg}.Node{a}",
                f"        b <- execute src=e dst={pkg}.Node{b}",
                "    }",
                '    sequence "control" {',
                "        request src=a dst=b endpoint=core.ctl method=Status {}",
                '        deny "unknown" request src=b dst=a endpoint=core.logger.log method=Write { line : "x", level : 9 }',
                "    }",
                "}", ""]
        write(src / "gen" / f"g{g}.psl", "\n".join(psl), "psl")
        top.append(f"use gen.g{g}._")
    write(src / "security.psl", "\n".join(top + top_bindings) + "\n", "psl")
    write(src / "init.yaml", "\n".join(entities) + "\n", "yaml")
    return ManyFileShape(files, lines, n_classes + 2, bindings, tests, n_classes, channels)


def _word_split_seconds(texts: list[str], repeat: int) -> float:
    word = re.compile(r"\S+")
    base = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for t in texts:
            for _m in word.finditer(t):
                pass
        base.append(time.perf_counter() - t0)
    return statistics.median(base)


def _timed_loads(root: Path, repeat: int):
    """(median seconds, phases of the median run, phase file counts, last solution)."""
    runs = []
    sol = None
    for _ in range(repeat):
        sol = None                      # the previous solution is freed before the next load
        with phase_times() as rec:
            t0 = time.perf_counter()
            sol = load(root, LoadOptions())
            seconds = time.perf_counter() - t0
        phases = dict(rec.seconds)
        phases["resolve"] = seconds - sum(phases.values())
        runs.append((seconds, phases, dict(rec.files)))
    runs.sort(key=lambda r: r[0])
    seconds, phases, files = runs[len(runs) // 2]
    return seconds, phases, files, sol


def _errors(sol) -> list[str]:
    return [d.render() for d in sol.diagnostics if d.severity.value == "error"]


def bench_load_many(target_lines: int = 100_000, repeat: int = 3) -> ManyFileBench:
    """Parse + resolve the many-file solution of :func:`generate_many_file_solution`.

    Fails (AssertionError) unless the load gives no diagnostics at all and the
    classes, bindings, tests, instances and channels the generator wrote.
    """
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shape = generate_many_file_solution(root, target_lines)
        texts = [p.read_text() for p in root.rglob("*") if p.is_file()]
        assert len(texts) == shape.total_files and sum(t.count("\n") for t in texts) == shape.total_lines
        base = _word_split_seconds(texts, repeat)
        seconds, phases, files, sol = _timed_loads(root, repeat)
        found = (len(sol.classes), len(sol.bindings), len(sol.tests), len(sol.instances), len(sol.channels))
        wanted = (shape.classes, shape.bindings, shape.tests, shape.instances, shape.channels)
        assert found == wanted, f"many-file load: (classes, bindings, tests, instances, channels) {found}, expected {wanted}"
        assert not sol.diagnostics, "many-file load: " + "; ".join(d.render() for d in sol.diagnostics[:5])
        return ManyFileBench(shape.files, shape.lines, shape.classes, shape.bindings, seconds, base,
                             len(_errors(sol)), phases, files)


def bench_load(target_lines: int = 100_000, repeat: int = 3, many_files: bool = True) -> LoadBench:
    """Both load workloads: few large PSL files (:func:`generate_solution`), then many small
    files (:func:`generate_many_file_solution`) of about the same number of lines."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        psl_lines = generate_solution(root, target_lines)
        texts = [p.read_text() for p in root.rglob("*") if p.is_file()]
        total = sum(t.count("\n") for t in texts)
        base = _word_split_seconds(texts, repeat)
        seconds, phases, files, sol = _timed_loads(root, repeat)
        errors = len(_errors(sol))
        sol = None
    many = bench_load_many(target_lines, repeat) if many_files else None
    return LoadBench(psl_lines, total, seconds, base, errors, phases, files, many)


# ----------------------------------------------------------------------------- GC pause
@dataclass
class LoadGcBench:
    """What the collector costs after a large load: the first collection, and the module built next."""

    bindings: int
    load_seconds: float
    first_collect_seconds: float     # gc.collect() right after the load
    module_seconds: float            # SecurityModule(solution) + boot(), right after another load
    frozen: int                      # objects gc.freeze() moved out of the collector's way after the load
    unfrozen_collect_seconds: float = 0.0   # the first gc.collect() after a load that did not freeze

    def report(self) -> str:
        return (f"load gc: {self.bindings:,} bindings loaded in {self.load_seconds:.2f} s; first gc.collect() after it "
                f"{self.first_collect_seconds:.3f} s (without freezing: {self.unfrozen_collect_seconds:.3f} s); "
                f"SecurityModule + boot after a load {self.module_seconds:.2f} s; "
                f"frozen after the load: {self.frozen:,} objects")


def bench_load_gc(bindings: int = 100_000) -> LoadGcBench:
    """The collector's pass after a large load (an allowlist of ``bindings`` request bindings).

    Loads in one process, each after a full collection, with freezing as the ``ksm``
    command sets it (``FREEZE_MIN_OBJECTS``): after the first, the time of an explicit
    ``gc.collect()``; after the second, ``SecurityModule`` + ``boot()``, during which
    the automatic collections run.  A third load with the library's default (no
    freezing) gives the collection the freeze saves.
    """
    import gc

    from ksm.decide_bench import _allowlist_solution
    from ksm.engine import SecurityModule
    from policy_lang import perf

    saved = perf.FREEZE_MIN_OBJECTS
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _allowlist_solution(root, bindings)
        try:
            perf.FREEZE_MIN_OBJECTS = 100_000
            gc.collect()
            t0 = time.perf_counter()
            sol = load(root)
            load_seconds = time.perf_counter() - t0
            frozen = gc.get_freeze_count()
            assert sol.ok and len(sol.bindings) == bindings + 1, "allowlist solution did not load as generated"
            t0 = time.perf_counter()
            gc.collect()
            first = time.perf_counter() - t0
            sol = None
            gc.unfreeze()
            gc.collect()
            sol = load(root)
            t0 = time.perf_counter()
            SecurityModule(sol).boot()
            module = time.perf_counter() - t0
            sol = None
            gc.unfreeze()
            perf.FREEZE_MIN_OBJECTS = None
            gc.collect()
            sol = load(root)
            t0 = time.perf_counter()
            gc.collect()
            unfrozen = time.perf_counter() - t0
            sol = None
        finally:
            perf.FREEZE_MIN_OBJECTS = saved
            gc.unfreeze()
        return LoadGcBench(bindings, load_seconds, first, module, frozen, unfrozen)
