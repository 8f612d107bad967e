"""Benchmark: parse_psl throughput on a generated, realistic and varied policy.

Not a test.  Run from the repository root::

    python tests/bench/bench_psl_parse.py [--lines 100000] [--seed 1] [--repeat 3] [--dump FILE]

The generator writes what real solutions contain, in proportions close to the
Kaspersky examples and community policies: includes, policy objects of every
stateful model, audit profiles, execute bindings with nested match sections,
request/response/error/security bindings with 1-4 selectors (commas or spaces),
Base/Regex/Flow/HashSet/StaticMap/Mic calls with record arguments, Pred/Bool/Math
expressions of random shape, choice sections, comments, and PAL test blocks.
Names, numbers, nesting and the number of statements vary, so declarations do not
repeat verbatim (their token-type shapes do repeat, as in real policies).

Prints lines/s for: lexing only, parse_psl with a cold shape cache, with a warm
cache (a second file of the same family), and with the cache disabled.
Times are CPU times (``time.process_time``), best of --repeat runs; they still
vary with machine load (shared caches, frequency scaling).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from policy_lang.diagnostics import Diagnostics  # noqa: E402
from policy_lang.source import SourceText  # noqa: E402
from policy_lang.syntax import psl  # noqa: E402
from policy_lang.syntax.lexing import lex  # noqa: E402

WORDS = ("net", "log", "store", "auth", "cfg", "ui", "cam", "gps", "hub", "dma", "fs", "crypto", "time",
         "bus", "nav", "power", "radio", "update", "vault", "sensor")
METHODS = ("Read", "Write", "Open", "Close", "Push", "Pull", "Get", "Set", "Ping", "Login", "Start",
           "Stop", "Reset", "Query", "Bind", "Listen", "Map", "Send", "Recv", "Status")
FIELDS = ("count", "size", "port", "level", "addr", "len", "mode", "flags", "id", "offset", "rate", "method",
          "type", "error")


class Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)
        self.out: list[str] = []
        self.classes = [f"{self.r.choice(WORDS)}.{w.capitalize()}{i}" for i, w in enumerate(WORDS * 3)]
        self.flows = [f"{w}Flow" for w in WORDS[:6]]

    # -- small pieces

    def cls(self) -> str:
        return self.r.choice(self.classes)

    def ep(self) -> str:
        r = self.r
        k = r.random()
        if k < 0.5:
            return r.choice(WORDS)
        if k < 0.85:
            return f"{r.choice(WORDS)}.{r.choice(WORDS).capitalize()}"
        return f"{r.choice(WORDS)}Comp.{r.choice(WORDS)}.{r.choice(WORDS)}Impl"

    def sep(self) -> str:
        return self.r.choice((", ", " ", ",  ", " "))

    def eq(self) -> str:
        return self.r.choice(("=", "=", " = "))

    def field(self) -> str:
        r = self.r
        path = "message." + r.choice(FIELDS)
        k = r.random()
        if k < 0.3:
            path += "." + r.choice(FIELDS)
        elif k < 0.4:
            path += f".[{r.randint(0, 7)}]"
        elif k < 0.45:
            path += f".[{r.randint(0, 3)}].{r.choice(FIELDS)}"
        return path

    def operand(self, depth: int) -> str:
        r = self.r
        k = r.random()
        if k < 0.45:
            return self.field()
        if k < 0.7:
            return str(r.choice((0, 1, 2, 10, 80, 443, 1024, 4096, 65535, "0xFF", "0x1000", -1)))
        if k < 0.8:
            return f"math.{r.choice(('neg', 'abs'))} ({self.field()})"
        if k < 0.85:
            return f"size ({self.field()})"
        if depth < 2:
            return f"({self.arith(depth + 1)})"
        return self.field()

    def arith(self, depth: int) -> str:
        r = self.r
        e = self.operand(depth)
        for _ in range(r.choice((0, 0, 0, 1, 1, 2))):
            e = f"{e} {r.choice(('+', '-', '*', '&', '|'))} {self.operand(depth)}"
        return e

    def cond(self, depth: int = 0) -> str:
        r = self.r
        k = r.random()
        if k < 0.55:
            c = f"{self.arith(depth)} {r.choice(('==', '!=', '<', '<=', '>', '>='))} {self.arith(depth)}"
        elif k < 0.65:
            c = f"!pred.empty ({self.field()})"
        elif k < 0.75:
            c = f're.match {{text : {self.field()}, pattern : "^[a-z0-9]{{1,{r.randint(4, 64)}}}$"}}'
        elif k < 0.85:
            items = ", ".join(self.simple_cond() for _ in range(r.randint(1, 3)))
            c = f"bool.{r.choice(('all', 'any'))} ([{items}])"
        else:
            c = self.simple_cond()
        if depth < 2 and r.random() < 0.35:
            c = f"({c}) {r.choice(('&&', '||', '==>'))} ({self.cond(depth + 1)})"
        return c

    def simple_cond(self) -> str:
        r = self.r
        return f"{self.field()} {r.choice(('==', '<', '>='))} {r.randint(0, 5000)}"

    def call(self, ind: str) -> str:
        r = self.r
        k = r.random()
        flow = r.choice(self.flows)
        if k < 0.3:
            return "grant ()"
        if k < 0.55:
            return f"assert ({self.cond()})"
        if k < 0.62:
            return f"deny ({self.cond()})"
        if k < 0.72:
            sid = r.choice(("dst_sid", "src_sid"))
            return f'{flow}.enter {{sid : {sid}, state : "{r.choice(("idle", "busy", "done"))}"}}'
        if k < 0.78:
            return f'{flow}.allow {{sid : dst_sid, states : ["idle", "busy"]}}'
        if k < 0.84:
            return f"ports.add {{sid : message.h.handle, entry : {self.field()}}}"
        if k < 0.88:
            return f"assert (ports.contains {{sid : src_sid, entry : {self.field()}}})"
        if k < 0.92:
            return (f'mmio.set {{sid : message.drv.handle, key : "{r.choice(("base", "size"))}", '
                    f"value : {self.field()}}}")
        if k < 0.96:
            return "mic.invoke {source : src_sid, target : dst_sid}"
        return f"assert {self.field()}"            # 1.1 paren-less form

    # -- declarations

    def emit(self, *lines: str) -> None:
        self.out.extend(lines)

    def header(self) -> None:
        r = self.r
        self.emit("execute: kl.core.Execute", "", "use nk.base._", "use nk.basic._", "use nk.flow._",
                  "use nk.regex._", "use nk.hashmap._", "use nk.staticmap._", "use nk.mic._", "",
                  "use EDL kl.core.Core", "use EDL Einit")
        for c in self.classes:
            self.emit(f"use EDL {c}")
        self.emit("task class acme.Alias : acme.Real", "")
        for f in self.flows:
            self.emit(f"policy object {f} : Flow {{",
                      '    type State = "idle" | "busy" | "done"',
                      '    config = { states : ["idle", "busy", "done"]',
                      '             , initial : "idle"',
                      '             , transitions : { "idle" : ["busy"], "busy" : ["idle", "done"] }',
                      "             }", "}", "")
        self.emit("policy object ports : HashSet {", "    type Entry = UInt16",
                  f"    config = {{ set_size : {r.randint(4, 64)}, pool_size : {r.randint(2, 16)} }}", "}",
                  "policy object mmio : StaticMap {", "    type Value = UInt64",
                  '    config = { keys : { "base" : 0, "size" : 0 }, pool_size : 3 }', "}",
                  'policy object mic : Mic { config = ["LOW", "MEDIUM", "HIGH"] }', "",
                  "type Pair = { first : UInt32, second : List<Text | ()> }",
                  "type Blob = Sequence<UInt8, 4096>", "")

    def audit_profile(self, i: int) -> None:
        r = self.r
        flow = r.choice(self.flows)
        self.emit(f"audit profile trace{i} =", '    { 0 : { base : { kss : ["denied"] } }',
                  '    , 1 : { base : { kss : ["granted", "denied"] }',
                  f'          , {flow} : {{ kss : ["denied"], omit : ["idle"] }} }}',
                  "    }")

    def execute_binding(self) -> None:
        r = self.r
        self.emit("execute {",
                  "    match src = kl.core.Core {",
                  "        match dst = kl.core.Core { grant () }",
                  "        match dst = Einit        { grant () }",
                  "    }",
                  "    match src = Einit {")
        for _ in range(r.randint(2, 12)):
            c = self.cls()
            k = r.random()
            if k < 0.5:
                self.emit(f"        match dst = {c} {{ grant () }}")
            elif k < 0.8:
                self.emit(f"        match dst = {c} {{ {r.choice(self.flows)}.init {{sid : dst_sid}} }}")
            else:
                self.emit(f"        match dst = {c} {{",
                          f"            mic.execute {{image : (), target : dst_sid, "
                          f'level : "{r.choice(("LOW", "HIGH"))}", levelR : ()}}',
                          "        }")
        self.emit("    }", "}")

    def selectors(self, event: str) -> str:
        r = self.r
        parts = []
        if event == "request":
            if r.random() < 0.8:
                parts.append(f"src{self.eq()}{self.cls()}")
            parts.append(f"dst{self.eq()}{self.cls()}")
        elif event in ("response", "error"):
            parts.append(f"src{self.eq()}{self.cls()}")
            if r.random() < 0.6:
                parts.append(f"dst{self.eq()}{self.cls()}")
        else:
            parts.append(f"src{self.eq()}{self.cls()}")
        if event != "security" and r.random() < 0.6:
            parts.append(f"endpoint{self.eq()}{self.ep()}")
        if r.random() < 0.7:
            parts.append(f"method{self.eq()}{r.choice(METHODS)}")
        if event == "request" and r.random() < 0.05:
            parts.append(f"interface{self.eq()}{r.choice(WORDS)}.{r.choice(WORDS).capitalize()}")
        s = parts[0]
        for p in parts[1:]:
            s += self.sep() + p
        return s

    def stmts(self, ind: str, depth: int) -> None:
        r = self.r
        for _ in range(r.choice((1, 1, 1, 2, 2, 3))):
            k = r.random()
            if depth < 2 and k < 0.15:
                self.emit(f"{ind}match {self.selectors_match()} {{")
                self.stmts(ind + "    ", depth + 1)
                self.emit(f"{ind}}}")
            elif depth < 2 and k < 0.25:
                self.choice(ind)
            else:
                self.emit(f"{ind}{self.call(ind)}")

    def selectors_match(self) -> str:
        r = self.r
        k = r.random()
        if k < 0.4:
            return f"src{self.eq()}{self.cls()}"
        if k < 0.7:
            return f"method{self.eq()}{r.choice(METHODS)}"
        if k < 0.9:
            return f"endpoint{self.eq()}{self.ep()}{self.sep()}method{self.eq()}{r.choice(METHODS)}"
        return f"interface{self.eq()}{r.choice(WORDS)}.{r.choice(WORDS).capitalize()}"

    def choice(self, ind: str) -> None:
        r = self.r
        flow = r.choice(self.flows)
        if r.random() < 0.7:
            self.emit(f"{ind}choice ({flow}.query {{sid : {r.choice(('dst_sid', 'src_sid'))}}}) {{")
            cases = ["idle", "busy", "done"]
        else:
            self.emit(f"{ind}choice (re.select {{text : {self.field()}}}) {{")
            cases = ["^ro$", "^rw$", "^debug"]
        for c in r.sample(cases, r.randint(1, 3)):
            if r.random() < 0.8:
                self.emit(f'{ind}    "{c}" : {self.call(ind)}')
            else:
                self.emit(f'{ind}    "{c}" : {{ {self.call(ind)} {self.call(ind)} }}')
        if r.random() < 0.7:
            self.emit(f"{ind}    _ : deny ()")
        self.emit(f"{ind}}}")

    def binding(self) -> None:
        r = self.r
        event = r.choices(("request", "response", "error", "security"), (70, 15, 8, 7))[0]
        sel = self.selectors(event)
        k = r.random()
        if k < 0.25:
            self.emit(f"{event} {sel} {{ {self.call('')} }}")
            return
        self.emit(f"{event} {sel} {{")
        if r.random() < 0.05:
            self.emit(f"    audit trace{r.randint(0, 3)}")
        self.stmts("    ", 0)
        self.emit("}")

    def server_block(self) -> None:
        """Kaspersky-example style: one binding per server with match sections per client."""
        r = self.r
        self.emit("request {", f"    match dst = {self.cls()} {{")
        for _ in range(r.randint(1, 4)):
            self.emit(f"        match src = {self.cls()} {{ grant () }}")
        self.emit("    }", "}")

    def comment(self) -> None:
        r = self.r
        if r.random() < 0.5:
            self.emit(f"// {r.choice(WORDS)} may only {r.choice(METHODS).lower()} with a small {r.choice(FIELDS)}")
        else:
            self.emit("/*", f" * {r.choice(WORDS)}: {r.choice(METHODS)} rules", " */")

    def test_block(self) -> None:
        r = self.r
        a, b = self.cls(), self.cls()
        self.emit(f'assert "{r.choice(WORDS)} tests {r.randint(0, 999)}" {{',
                  "    setup {",
                  "        core <- execute dst=kl.core.Core",
                  "        einit <- execute src=core dst=Einit",
                  f"        a <- execute src=einit dst={a}",
                  f"        b <- execute src=einit dst={b}",
                  "    }")
        for s in range(r.randint(1, 3)):
            self.emit(f'    sequence "case {s}" {{')
            for _ in range(r.randint(1, 4)):
                exp = r.choice(("grant", "deny", "any", ""))
                m = r.choice(METHODS)
                if r.random() < 0.15:
                    prefix = f"{exp} " if exp else ""
                    self.emit(f"        {prefix}a ~> b : {self.ep()}.{m} {{ {r.choice(FIELDS)} : {r.randint(0, 999)} }}")
                else:
                    payload = (f"{{ {r.choice(FIELDS)} : {r.randint(0, 999)}, "
                               f"{r.choice(('req', 'hdr'))} : {{ {r.choice(FIELDS)} : {r.randint(0, 9)} }} }}")
                    self.emit(f'        {exp} "{m.lower()} {r.randint(0, 99)}" request src=a dst=b '
                              f"endpoint={self.ep()} method={m} {payload}")
            self.emit("    }")
        self.emit("}")

    def policy(self, lines: int) -> str:
        self.header()
        for i in range(4):
            self.audit_profile(i)
        self.emit("audit default = trace0 0", "")
        while len(self.out) < lines:
            k = self.r.random()
            if k < 0.015:
                self.execute_binding()
            elif k < 0.08:
                self.server_block()
            elif k < 0.12:
                self.comment()
            elif k < 0.135:
                self.test_block()
            else:
                self.binding()
            if self.r.random() < 0.3:
                self.emit("")
        self.emit("response { grant () }", "error { grant () }")
        return "\n".join(self.out) + "\n"


def best(fn, repeat: int) -> float:
    """Best CPU time of ``repeat`` runs (process time: less disturbed by other load)."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dump", type=Path, help="also write the generated policy here")
    args = ap.parse_args()

    text = Gen(args.seed).policy(args.lines)
    text2 = Gen(args.seed + 1).policy(args.lines)
    if args.dump:
        args.dump.write_text(text, encoding="utf-8")
    src = SourceText("bench.psl", text)
    src2 = SourceText("bench2.psl", text2)
    nlines = text.count("\n")
    grammar = psl._tables().grammar

    d = Diagnostics()
    ntokens = len(lex(grammar, src, d))
    f = psl.parse_psl(src, d)
    if d.items:
        print(d.render()[:2000])
        print("generator produced diagnostics", file=sys.stderr)
        return 1
    print(f"policy: {nlines} lines, {ntokens} tokens, {len(f.decls)} declarations (seed {args.seed})")

    def lex_only():
        with psl.gc_paused():          # as inside parse_psl
            lex(grammar, src, Diagnostics())

    t_lex = best(lex_only, args.repeat)

    def cold():
        psl.clear_cache()
        psl.parse_psl(src, Diagnostics())

    t_cold = best(cold, args.repeat)
    info = psl.cache_info()
    t_warm = best(lambda: psl.parse_psl(src2, Diagnostics()), args.repeat)
    t_nocache = best(lambda: psl.parse_psl(src, Diagnostics(), use_cache=False), max(1, args.repeat - 1))

    def row(label, t):
        print(f"{label:<34} {t:7.3f} s  {nlines / t:>10,.0f} lines/s  {ntokens / t:>11,.0f} tokens/s")

    row("lex only", t_lex)
    row("parse_psl, cache disabled", t_nocache)
    row("parse_psl, cold cache", t_cold)
    row("parse_psl, warm cache (other file)", t_warm)
    print(f"after one cold parse: {info['entries']} declaration shapes "
          f"(hit rate {info['hits'] / max(1, info['hits'] + info['misses']):.1%}), "
          f"{info['group_entries']} bracket-group shapes "
          f"(hit rate {info['group_hits'] / max(1, info['group_hits'] + info['group_misses']):.1%})")
    print(f"parse without lexing: cold {nlines / max(1e-9, t_cold - t_lex):,.0f} lines/s, "
          f"warm {nlines / max(1e-9, t_warm - t_lex):,.0f} lines/s, "
          f"no cache {nlines / max(1e-9, t_nocache - t_lex):,.0f} lines/s")
    print(f"(CPU time, best of {args.repeat} runs; machine load still adds noise)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
